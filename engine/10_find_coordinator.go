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
//   - The first request creates __consumer_offsets
//     (OffsetsTopicPartitions partitions, OffsetsTopicReplicationFactor
//     replicas, compacted) and answers COORDINATOR_NOT_AVAILABLE until its
//     partition has a leader.
//   - Transactional ids (key type 1) are not supported yet:
//     COORDINATOR_NOT_AVAILABLE. Other key types: INVALID_REQUEST.

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
			c.NodeID, c.ErrorCode = b.groupCoordinatorNode(key)
			if c.ErrorCode == 0 {
				for _, bi := range b.liveBrokers() {
					if bi.ID == c.NodeID {
						c.Host, c.Port = bi.Host, bi.Port
					}
				}
			}
		case 1:
			c.ErrorCode = kerr.CoordinatorNotAvailable.Code
		default:
			c.ErrorCode = kerr.InvalidRequest.Code
		}
		if c.ErrorCode != 0 {
			c.NodeID = -1
			msg := kerr.ErrorForCode(c.ErrorCode).Error()
			c.ErrorMessage = &msg
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

// groupCoordinatorNode is the broker leading group's partition.
func (b *Broker) groupCoordinatorNode(group string) (int32, int16) {
	pm, ok := b.offsetsPartition(group)
	if !ok {
		b.createOffsetsTopic()
		return -1, kerr.CoordinatorNotAvailable.Code
	}
	// This broker's own replica knows best whether it leads.
	if p := b.parts[pm.Group]; p != nil && p.leader && !p.lost {
		return b.cfg.ID, 0
	}
	if pm.Leader < 0 || !b.brokerAlive(pm.Leader) {
		return -1, kerr.CoordinatorNotAvailable.Code
	}
	return pm.Leader, 0
}

// offsetsPartition is group's __consumer_offsets partition, as this
// broker's applied metadata has it; false before the topic exists.
func (b *Broker) offsetsPartition(group string) (partMeta, bool) {
	t, ok := b.meta.st.Topics[offsetsTopic]
	if !ok || len(t.Partitions) == 0 {
		return partMeta{}, false
	}
	return t.Partitions[groupPartition(group, len(t.Partitions))], true
}

// createOffsetsTopic proposes __consumer_offsets, once at a time.
func (b *Broker) createOffsetsTopic() {
	if b.creatingOffsets {
		return
	}
	b.creatingOffsets = true
	rf := min(b.cfg.OffsetsTopicReplicationFactor, int16(len(b.cfg.Cluster)))
	b.proposeMeta(metaCmd{CreateTopic: &createTopicCmd{
		Name: offsetsTopic, Partitions: b.cfg.OffsetsTopicPartitions, Replication: rf,
		Configs: map[string]string{"cleanup.policy": "compact"},
	}}, 10_000, func(metaResult) { b.creatingOffsets = false })
}

// coordinatorFor finds the loaded coordinator of group on this broker, or
// the error a client should see: NOT_COORDINATOR if this broker does not
// lead the group's partition, COORDINATOR_LOAD_IN_PROGRESS while a new
// leader confirms its state, COORDINATOR_NOT_AVAILABLE before the topic
// exists or while its storage fails.
func (b *Broker) coordinatorFor(group string) (*coordinator, int16) {
	pm, ok := b.offsetsPartition(group)
	if !ok {
		return nil, kerr.CoordinatorNotAvailable.Code
	}
	p := b.parts[pm.Group]
	if p == nil || p.coord == nil || !p.leader || p.lost {
		return nil, kerr.NotCoordinator.Code
	}
	if p.storageErr != nil || b.host.Stalled() != nil {
		return nil, kerr.CoordinatorNotAvailable.Code
	}
	if !p.coord.loaded {
		return nil, kerr.CoordinatorLoadInProgress.Code
	}
	return p.coord, 0
}
