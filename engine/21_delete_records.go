package engine

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DeleteRecords, versions 0-2.
//
// Behavior:
//   - At each partition's leader (NOT_LEADER_OR_FOLLOWER elsewhere,
//     UNKNOWN_TOPIC_OR_PARTITION for one that does not exist): the log
//     start offset moves to Offset (-1: the high watermark). Below the
//     current start, nothing changes; above the high watermark, or another
//     negative value: OFFSET_OUT_OF_RANGE.
//   - The move is a raft entry of the partition (records.go), answered
//     once it has applied, with the start after it as LowWatermark: every
//     replica has then the same start (Kafka waits for its followers to
//     catch up; raft commits the entry on a majority, and the others apply
//     the same entry).
//   - A topic whose cleanup.policy does not include delete (compact only;
//     the internal topics, which Kafka compacts): POLICY_VIOLATION.
//   - Not applied within TimeoutMillis: REQUEST_TIMED_OUT.

func init() { regKey(kmsg.DeleteRecords, 0, 2, (*Broker).handleDeleteRecords) }

func (b *Broker) handleDeleteRecords(token uint64, r *kmsg.DeleteRecordsRequest) {
	resp := r.ResponseKind().(*kmsg.DeleteRecordsResponse)
	rep := b.newReply(token, resp)
	for _, rt := range r.Topics {
		st := kmsg.NewDeleteRecordsResponseTopic()
		st.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			sp := kmsg.NewDeleteRecordsResponseTopicPartition()
			sp.Partition, sp.LowWatermark, sp.ErrorCode = rp.Partition, -1, -2 // -2: not yet answered
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	var waiting []proposalRef
	mayDo := b.authorizer(opDelete, resTopic)
	for ti, rt := range r.Topics {
		for pi, rp := range rt.Partitions {
			out := &resp.Topics[ti].Partitions[pi]
			out.ErrorCode = 0
			if !b.topicDeletes(rt.Topic) {
				out.ErrorCode = kerr.PolicyViolation.Code
				continue
			}
			p, kerrv := b.lookup(rt.Topic, rp.Partition)
			if !mayDo(rt.Topic) {
				p, kerrv = nil, kerr.TopicAuthorizationFailed
			}
			if kerrv != nil {
				out.ErrorCode = kerrv.Code
				continue
			}
			off, hw := rp.Offset, p.highWatermark()
			if off == -1 {
				off = hw
			}
			if off < 0 || off > hw {
				out.ErrorCode = kerr.OffsetOutOfRange.Code
				continue
			}
			out.ErrorCode = -2
			rep.add()
			seq, ok := p.proposeDeleteRecords(off, func(res produceResult) {
				if rep.sent {
					return
				}
				if out.ErrorCode = errCode(res.err); out.ErrorCode == 0 {
					out.LowWatermark = res.base
				}
				rep.done()
			})
			if ok {
				waiting = append(waiting, proposalRef{p, seq})
			}
		}
	}
	if rep.outstanding > 1 {
		rep.timer = b.after(timeoutMs(r.TimeoutMillis), func() {
			for _, w := range waiting {
				w.p.pending.Cancel(w.seq)
			}
			for ti := range resp.Topics {
				for pi := range resp.Topics[ti].Partitions {
					if out := &resp.Topics[ti].Partitions[pi]; out.ErrorCode == -2 {
						out.ErrorCode = kerr.RequestTimedOut.Code
					}
				}
			}
			rep.send()
		})
	}
	rep.done()
}

// topicDeletes reports whether the topic's cleanup.policy includes
// delete (an internal topic's does not: Kafka compacts them).
func (b *Broker) topicDeletes(topic string) bool { return b.topicPolicy(topic).deletes }
