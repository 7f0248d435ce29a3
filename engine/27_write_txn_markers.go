package engine

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// WriteTxnMarkers, versions 0-2: a transaction coordinator tells partition
// leaders to end a producer's transaction (txn_partition.go).
//
// Behavior:
//   - Each partition's marker is a raft entry on its leader, answered when
//     it applies: the control batch takes the next offset, or nothing is
//     written when the producer has no transaction open there (a marker
//     sent again is answered with success).
//   - A marker of an epoch older than the producer's: INVALID_PRODUCER_EPOCH;
//     from v2, one of TransactionVersion 2 (whose epoch the coordinator
//     bumped) of the producer's epoch while it has a transaction open
//     there too, as Kafka's ProducerAppendInfo (that transaction is a
//     later one).
//   - Not the leader: NOT_LEADER_OR_FOLLOWER; unknown partition:
//     UNKNOWN_TOPIC_OR_PARTITION; leadership lost while waiting:
//     NOT_LEADER_OR_FOLLOWER (the marker may still apply: markers are
//     idempotent, the coordinator sends it again); not applied within
//     markerTimeoutMs: REQUEST_TIMED_OUT.
//   - The marker's timestamp is the leader's clock when it proposes.
//   - NB: Kafka restricts this API to brokers (CLUSTER_ACTION); Gregor has
//     no ACLs yet, so any client may send it.

// markerTimeoutMs bounds how long WriteTxnMarkers waits for its markers.
const markerTimeoutMs = 10_000

func init() { regKey(kmsg.WriteTxnMarkers, 0, 2, (*Broker).handleWriteTxnMarkers) }

func (b *Broker) handleWriteTxnMarkers(token uint64, r *kmsg.WriteTxnMarkersRequest) {
	resp := r.ResponseKind().(*kmsg.WriteTxnMarkersResponse)
	rep := b.newReply(token, resp)
	// Only brokers (Kafka: ClusterAction on the cluster) write markers.
	denied := !b.authorizedCluster(opClusterAction)
	for _, m := range r.Markers {
		sm := kmsg.NewWriteTxnMarkersResponseMarker()
		sm.ProducerID = m.ProducerID
		for _, t := range m.Topics {
			st := kmsg.NewWriteTxnMarkersResponseMarkerTopic()
			st.Topic = t.Topic
			for _, part := range t.Partitions {
				sp := kmsg.NewWriteTxnMarkersResponseMarkerTopicPartition()
				sp.Partition = part
				sp.ErrorCode = -2 // not yet answered
				st.Partitions = append(st.Partitions, sp)
			}
			sm.Topics = append(sm.Topics, st)
		}
		resp.Markers = append(resp.Markers, sm)
	}
	var waiting []proposalRef
	now := b.nowMillis()
	for mi, m := range r.Markers {
		// Kafka's coordinator bumps the epoch at every transactions-v2
		// end (TransactionVersion, v2+).
		marker := txnMarker{pid: m.ProducerID, epoch: m.ProducerEpoch, commit: m.Committed, coordEpoch: m.CoordinatorEpoch, timestampMs: now,
			bumped: m.TransactionVersion >= 2}
		for ti, t := range m.Topics {
			for pi, part := range t.Partitions {
				out := &resp.Markers[mi].Topics[ti].Partitions[pi]
				if denied {
					out.ErrorCode = kerr.ClusterAuthorizationFailed.Code
					continue
				}
				if m.ProducerID < 0 {
					out.ErrorCode = kerr.InvalidProducerIDMapping.Code
					continue
				}
				p, kerrv := b.lookup(t.Topic, part)
				if kerrv != nil {
					out.ErrorCode = kerrv.Code
					continue
				}
				rep.add()
				seq, ok := p.proposeMarker(marker, func(res produceResult) {
					if rep.sent {
						return
					}
					out.ErrorCode = errCode(res.err)
					rep.done()
				})
				if ok {
					waiting = append(waiting, proposalRef{p, seq})
				}
			}
		}
	}
	if rep.outstanding > 1 {
		rep.timer = b.after(markerTimeoutMs, func() {
			for _, w := range waiting {
				w.p.pending.Cancel(w.seq)
			}
			for mi := range resp.Markers {
				for ti := range resp.Markers[mi].Topics {
					for pi := range resp.Markers[mi].Topics[ti].Partitions {
						if out := &resp.Markers[mi].Topics[ti].Partitions[pi]; out.ErrorCode == -2 {
							out.ErrorCode = kerr.RequestTimedOut.Code
						}
					}
				}
			}
			rep.send()
		})
	}
	rep.done()
}
