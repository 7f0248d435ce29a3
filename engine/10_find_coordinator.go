package engine

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// FindCoordinator, versions 0-6 (batched keys from v4).
//
// Behavior:
//   - Groups (key type 0) map to a partition of __consumer_offsets by
//     Kafka's hash; the coordinator is that partition's leader as the
//     metadata this broker has applied names it. A stale answer costs the
//     client one NOT_COORDINATOR and another FindCoordinator.
//   - Transactional ids (key type 1) map the same way to a partition of
//     __transaction_state, whose leader is their transaction coordinator.
//   - The first request of a type creates its topic (OffsetsTopicPartitions
//     or TransactionStatePartitions partitions, min(3, brokers) replicas by
//     default, compacted) and answers COORDINATOR_NOT_AVAILABLE until the
//     partition has a leader. Other key types: INVALID_REQUEST.
//   - The coordinator's address is that of the listener the request came
//     through; a coordinator without a listener of that name (or not
//     alive as this broker sees it): COORDINATOR_NOT_AVAILABLE.

func init() { regKey(kmsg.FindCoordinator, 0, 6, (*Broker).handleFindCoordinator) }

func (b *Broker) handleFindCoordinator(token uint64, r *kmsg.FindCoordinatorRequest) {
	resp := r.ResponseKind().(*kmsg.FindCoordinatorResponse)
	keys := r.CoordinatorKeys
	if r.Version < 4 {
		keys = []string{r.CoordinatorKey}
	}
	for _, key := range keys {
		c := kmsg.NewFindCoordinatorResponseCoordinator()
		c.Key, c.NodeID = key, -1
		switch r.CoordinatorType {
		case 0:
			c.NodeID, c.ErrorCode = b.coordinatorNode(offsetsTopic, key)
			if !b.authorized(opDescribe, resGroup, key) {
				c.ErrorCode = kerr.GroupAuthorizationFailed.Code
			}
		case 1:
			c.NodeID, c.ErrorCode = b.coordinatorNode(txnStateTopic, key)
			if !b.authorized(opDescribe, resTransactionalID, key) {
				c.ErrorCode = kerr.TransactionalIDAuthorizationFailed.Code
			}
		default:
			c.ErrorCode = kerr.InvalidRequest.Code
		}
		if c.ErrorCode == 0 {
			c.ErrorCode = kerr.CoordinatorNotAvailable.Code
			for _, bi := range b.liveBrokers() {
				if host, port, ok := b.endpointFor(bi); ok && bi.ID == c.NodeID {
					c.Host, c.Port, c.ErrorCode = host, port, 0
				}
			}
		}
		if c.ErrorCode != 0 {
			c.NodeID = -1
			msg := kerr.ErrorForCode(c.ErrorCode).Error()
			c.ErrorMessage = &msg
		} else {
			// Kafka's message on success is Errors.NONE's, not null.
			c.ErrorMessage = kmsg.StringPtr("NONE")
		}
		resp.Coordinators = append(resp.Coordinators, c)
	}
	if r.Version < 4 && len(resp.Coordinators) == 1 {
		c := resp.Coordinators[0]
		resp.ErrorCode, resp.ErrorMessage, resp.NodeID, resp.Host, resp.Port = c.ErrorCode, c.ErrorMessage, c.NodeID, c.Host, c.Port
		resp.Coordinators = nil
	}
	b.respond(token, resp)
}

// coordinatorNode is the broker leading key's partition of the internal
// topic (__consumer_offsets or __transaction_state).
func (b *Broker) coordinatorNode(topic, key string) (int32, int16) {
	pm, ok := b.internalPartition(topic, key)
	if !ok {
		b.createInternalTopic(topic)
		return -1, kerr.CoordinatorNotAvailable.Code
	}
	// This broker's own replica knows best whether it leads.
	if p := b.parts[pm.Group]; p != nil && p.leader && !p.lost {
		return b.cfg.ID, 0
	}
	if l, _ := b.leaderOf(pm); l >= 0 && b.brokerAlive(l) {
		return l, 0
	}
	return -1, kerr.CoordinatorNotAvailable.Code
}

// offsetsPartition is group's __consumer_offsets partition, as this
// broker's applied metadata has it; false before the topic exists.
func (b *Broker) offsetsPartition(group string) (partMeta, bool) {
	return b.internalPartition(offsetsTopic, group)
}

// internalPartition is key's partition of an internal topic, by Kafka's
// hash (the same for groups and transactional ids); false before the
// topic exists.
func (b *Broker) internalPartition(topic, key string) (partMeta, bool) {
	t, ok := b.meta.st.Topics[topic]
	if !ok || len(t.Partitions) == 0 {
		return partMeta{}, false
	}
	return t.Partitions[groupPartition(key, len(t.Partitions))], true
}

// createInternalTopic proposes an internal topic, once at a time.
func (b *Broker) createInternalTopic(topic string) {
	if b.creating[topic] {
		return
	}
	if b.creating == nil {
		b.creating = map[string]bool{}
	}
	b.creating[topic] = true
	parts, rf := b.cfg.OffsetsTopicPartitions, b.cfg.OffsetsTopicReplicationFactor
	if topic == txnStateTopic {
		parts, rf = b.cfg.TransactionStatePartitions, b.cfg.TransactionStateReplicationFactor
	}
	b.proposeMeta(metaCmd{CreateTopic: &createTopicCmd{
		Name: topic, Partitions: parts, Replication: min(rf, int16(len(b.cfg.Cluster))),
		Configs: map[string]string{"cleanup.policy": "compact"},
	}}, 10_000, func(metaResult) { delete(b.creating, topic) })
}

// coordinatorFor finds the loaded coordinator of group on this broker, or
// the error a client should see: NOT_COORDINATOR if this broker does not
// lead the group's partition, COORDINATOR_LOAD_IN_PROGRESS while a new
// leader confirms its state, COORDINATOR_NOT_AVAILABLE before the topic
// exists or while its storage fails.
func (b *Broker) coordinatorFor(group string) (*coordinator, int16) {
	p, code := b.coordinatorPartition(offsetsTopic, group)
	if code != 0 {
		return nil, code
	}
	return p.coord, 0
}

// coordinatorPartition is the partition of an internal topic whose loaded
// coordinator here serves key, or coordinatorFor's errors.
func (b *Broker) coordinatorPartition(topic, key string) (*partition, int16) {
	pm, ok := b.internalPartition(topic, key)
	if !ok {
		return nil, kerr.CoordinatorNotAvailable.Code
	}
	p := b.parts[pm.Group]
	if p == nil || p.life == nil || !p.leader || p.lost {
		return nil, kerr.NotCoordinator.Code
	}
	if p.storageErr != nil || b.host.Stalled() != nil {
		return nil, kerr.CoordinatorNotAvailable.Code
	}
	if !p.life.loaded {
		return nil, kerr.CoordinatorLoadInProgress.Code
	}
	return p, 0
}
