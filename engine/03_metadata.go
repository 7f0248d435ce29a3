package engine

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Metadata, versions 0-12.
//
// Behavior:
//   - Brokers are the initial cluster, with addresses as registered in the
//     metadata log (or configured, before a broker registers): of each,
//     the address of the listener the request came through; a broker
//     without a listener of that name is left out, and a partition it
//     leads is answered LISTENER_NOT_FOUND with no leader (Kafka's
//     behaviour).
//   - The controller is the metadata group's raft leader.
//   - A partition's leader and epoch are what its raft leader last reported
//     to the metadata log; LEADER_NOT_AVAILABLE until one has. A broker
//     hosting a replica that knows a newer raft leader (a higher term)
//     answers that one instead (leaderOf): it is not held back by the
//     controller's commit of the report, nor by a controller election
//     when the old leader's broker was the controller too.
//   - A partition's offline replicas are those on brokers this one has not
//     heard from lately (Kafka lists a fenced broker's replicas), and the
//     leader leaves them out of its ISR.
//   - Topics are auto-created only if the broker is configured to and the
//     request allows it (v4+); the answer then is LEADER_NOT_AVAILABLE, as
//     in Kafka, and the client retries. A topic that does not exist and
//     whose name Kafka's rules refuse: INVALID_TOPIC_EXCEPTION (clients
//     give up instead of retrying), else UNKNOWN_TOPIC_OR_PARTITION.
//   - With the authorizer on, as Kafka: a topic the principal may not
//     Describe is left out of an all-topics answer and answered
//     TOPIC_AUTHORIZATION_FAILED when asked for (by id: with a null
//     name); auto-creation needs Create on the cluster or the topic, else
//     TOPIC_AUTHORIZATION_FAILED.
//   - v10+ topic ids are returned. A topic given with a non-zero id (v10+)
//     is looked up by id, whatever its name (null, or "" from the Java
//     client); an unknown id is answered UNKNOWN_TOPIC_ID with a null name.

func init() { regKey(kmsg.Metadata, 0, 12, (*Broker).handleMetadata) }

func (b *Broker) handleMetadata(token uint64, r *kmsg.MetadataRequest) {
	resp := r.ResponseKind().(*kmsg.MetadataResponse)
	listed := map[int32]bool{}
	unregistered := map[int32]bool{} // live, but no listeners known yet
	for _, bi := range b.liveBrokers() {
		host, port, ok := b.endpointFor(bi)
		if !ok {
			unregistered[bi.ID] = len(bi.Listeners) == 0
			continue
		}
		listed[bi.ID] = true
		mb := kmsg.NewMetadataResponseBroker()
		mb.NodeID, mb.Host, mb.Port, mb.Rack = bi.ID, host, port, bi.rack()
		resp.Brokers = append(resp.Brokers, mb)
	}
	cid := b.cfg.ClusterID
	resp.ClusterID = &cid
	resp.ControllerID = b.controllerID()

	var names []string
	all := r.Topics == nil || (r.Version == 0 && len(r.Topics) == 0)
	if all {
		names = b.meta.topicNames()
	}
	askedByID := map[string]bool{}
	byID := map[[16]byte]string{}
	for _, t := range b.meta.st.Topics {
		byID[t.ID] = t.Name
	}
	for _, rt := range r.Topics {
		// A non-zero id decides, whatever the name: the Java client sends
		// an empty (not null) name with the id, and Kafka looks up by id.
		if rt.Topic != nil && rt.TopicID == ([16]byte{}) {
			names = append(names, *rt.Topic)
			continue
		}
		if name, ok := byID[rt.TopicID]; ok {
			names = append(names, name)
			askedByID[name] = true
			continue
		}
		mt := kmsg.NewMetadataResponseTopic()
		mt.TopicID = rt.TopicID
		mt.ErrorCode = kerr.UnknownTopicID.Code
		resp.Topics = append(resp.Topics, mt)
	}
	autoCreate := b.cfg.AutoCreateTopics && (r.Version < 4 || r.AllowAutoTopicCreation)
	mayDescribe := b.authorizer(opDescribe, resTopic)
	mayCreate := b.authorizer(opCreate, resTopic)
	for _, name := range names {
		mt := kmsg.NewMetadataResponseTopic()
		n := name
		mt.Topic = &n
		if !mayDescribe(name) {
			// As Kafka: listing all topics leaves it out; asked by
			// name it is refused, by id refused without its name.
			if all {
				continue
			}
			if askedByID[name] {
				mt.Topic, mt.TopicID = nil, b.meta.st.Topics[name].ID
			}
			mt.ErrorCode = kerr.TopicAuthorizationFailed.Code
			resp.Topics = append(resp.Topics, mt)
			continue
		}
		t, ok := b.meta.st.Topics[name]
		if !ok && autoCreate && validTopicName(name) == nil && !b.authorizedCluster(opCreate) && !mayCreate(name) {
			// Auto-creation needs Create on the cluster or the topic.
			mt.ErrorCode = kerr.TopicAuthorizationFailed.Code
			resp.Topics = append(resp.Topics, mt)
			continue
		}
		if !ok {
			mt.ErrorCode = kerr.UnknownTopicOrPartition.Code
			if validTopicName(name) != nil {
				// As Kafka: clients give up on it instead of retrying.
				mt.ErrorCode = kerr.InvalidTopicException.Code
			} else if autoCreate {
				// UNKNOWN_TOPIC_OR_PARTITION until it exists, as Kafka 4
				// answers (clients retry it).
				b.autoCreate(name)
			}
			resp.Topics = append(resp.Topics, mt)
			continue
		}
		mt.TopicID = t.ID
		mt.IsInternal = isInternalTopic(name)
		for i, pm := range t.Partitions {
			mp := kmsg.NewMetadataResponseTopicPartition()
			mp.Partition = int32(i)
			mp.Leader, mp.LeaderEpoch = b.leaderOf(pm)
			mp.Replicas = append([]int32(nil), pm.Replicas...)
			mp.ISR = append([]int32(nil), pm.ISR...)
			for _, r := range pm.Replicas {
				// A replica on a broker this one has not heard from
				// lately is offline, as Kafka lists the replicas of a
				// fenced broker.
				if !b.brokerAlive(r) {
					mp.OfflineReplicas = append(mp.OfflineReplicas, r)
				}
			}
			if mp.LeaderEpoch != pm.Epoch && mp.Leader == b.cfg.ID {
				// Elected here, not yet in the metadata log.
				mp.ISR = b.parts[pm.Group].isr()
			}
			if mp.Leader >= 0 && !b.brokerAlive(mp.Leader) {
				// Its broker is gone: a new leader reports itself shortly.
				mp.Leader = -1
			}
			if mp.Leader >= 0 && unregistered[mp.Leader] {
				// Its broker has not registered its listeners yet (a
				// cluster starting): as Kafka, whose leaders are always
				// registered brokers, the leader is not available yet.
				// Clients retry this one; kafkajs does not retry
				// LISTENER_NOT_FOUND.
				mp.Leader = -1
			}
			if mp.Leader < 0 {
				mp.ErrorCode = kerr.LeaderNotAvailable.Code
				mp.ISR = append([]int32(nil), pm.Replicas...)
			} else if !listed[mp.Leader] {
				// The leader has no listener of the client's name.
				mp.Leader, mp.ErrorCode = -1, kerr.ListenerNotFound.Code
			}
			mt.Partitions = append(mt.Partitions, mp)
		}
		resp.Topics = append(resp.Topics, mt)
	}
	b.respond(token, resp)
}

// rack is the broker's rack for a response: null when unset.
func (bi BrokerInfo) rack() *string {
	if bi.Rack == "" {
		return nil
	}
	r := bi.Rack
	return &r
}

// controllerID is the metadata group's leader, or -1 while none is known.
func (b *Broker) controllerID() int32 {
	if b.meta.lead == 0 {
		return -1
	}
	return int32(b.meta.lead)
}

func (b *Broker) autoCreate(name string) {
	rf := min(b.cfg.DefaultReplicationFactor, int16(len(b.cfg.Cluster)))
	b.proposeMeta(metaCmd{CreateTopic: &createTopicCmd{
		Name: name, Partitions: b.cfg.DefaultPartitions, Replication: rf,
	}}, 10_000, func(metaResult) {})
}
