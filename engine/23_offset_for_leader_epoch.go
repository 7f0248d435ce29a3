package engine

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// OffsetForLeaderEpoch, versions 2-4.
//
// Behavior:
//   - For each partition, the largest leader epoch at or below the one
//     asked, and the offset where that epoch's records end (the next
//     epoch's first offset, or the log end for the newest epoch), so a
//     client that saw a deposed leader's log can tell where to truncate
//     (KIP-101, KIP-320), as Kafka's LeaderEpochFileCache.endOffsetFor:
//     the leader's current term is the latest epoch, even before it has a
//     batch; an epoch after it, or -1: LeaderEpoch and EndOffset -1; an
//     epoch below every epoch in the log: itself, ending where the log's
//     first epoch starts.
//   - Leader only: NOT_LEADER_OR_FOLLOWER elsewhere,
//     UNKNOWN_TOPIC_OR_PARTITION for an unknown partition.
//     CurrentLeaderEpoch is checked as in Fetch (FENCED_LEADER_EPOCH,
//     UNKNOWN_LEADER_EPOCH).
//   - Answered from this replica's applied state, without a ReadIndex
//     round.

func init() { regKey(kmsg.OffsetForLeaderEpoch, 2, 4, (*Broker).handleOffsetForLeaderEpoch) }

func (b *Broker) handleOffsetForLeaderEpoch(token uint64, r *kmsg.OffsetForLeaderEpochRequest) {
	resp := r.ResponseKind().(*kmsg.OffsetForLeaderEpochResponse)
	mayDo := b.authorizer(opDescribe, resTopic)
	for _, rt := range r.Topics {
		st := kmsg.NewOffsetForLeaderEpochResponseTopic()
		st.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			sp := kmsg.NewOffsetForLeaderEpochResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.LeaderEpoch, sp.EndOffset = -1, -1
			p, kerrv := b.lookupLeader(rt.Topic, rp.Partition, rp.CurrentLeaderEpoch)
			if !mayDo(rt.Topic) {
				p, kerrv = nil, kerr.TopicAuthorizationFailed
			}
			if kerrv != nil {
				sp.ErrorCode = kerrv.Code
			} else {
				sp.LeaderEpoch, sp.EndOffset = p.epochEnd(rp.LeaderEpoch)
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	b.respond(token, resp)
}
