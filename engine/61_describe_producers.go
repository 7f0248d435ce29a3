package engine

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DescribeProducers, version 0 (KIP-664): the producers with state in a
// partition, and the open transactions that hold its last stable offset
// back.
//
// Behavior:
//   - Leader only (NOT_LEADER_OR_FOLLOWER elsewhere; unknown partition:
//     UNKNOWN_TOPIC_OR_PARTITION), answered after a ReadIndex round as
//     Fetch is, so a deposed leader never describes old state.
//   - Per producer: id, epoch, last sequence (-1 when none is
//     remembered), last timestamp, the coordinator epoch of its last
//     marker (-1 before any) and the first offset of its open transaction
//     (-1 when none), sorted by producer id.

func init() { regKey(kmsg.DescribeProducers, 0, 0, (*Broker).handleDescribeProducers) }

func (b *Broker) handleDescribeProducers(token uint64, r *kmsg.DescribeProducersRequest) {
	resp := r.ResponseKind().(*kmsg.DescribeProducersResponse)
	for _, rt := range r.Topics {
		st := kmsg.NewDescribeProducersResponseTopic()
		st.Topic = rt.Topic
		for _, part := range rt.Partitions {
			sp := kmsg.NewDescribeProducersResponseTopicPartition()
			sp.Partition = part
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	rep := b.newReply(token, resp)
	mayDo := b.authorizer(opRead, resTopic)
	for ti, rt := range r.Topics {
		for pi, part := range rt.Partitions {
			out := &resp.Topics[ti].Partitions[pi]
			p, kerrv := b.lookup(rt.Topic, part)
			if !mayDo(rt.Topic) {
				p, kerrv = nil, kerr.TopicAuthorizationFailed
			}
			if err := validTopicName(rt.Topic); err != nil && kerrv == kerr.UnknownTopicOrPartition {
				// A name no topic can have, as Kafka answers it.
				out.ErrorCode, out.ErrorMessage = kerr.InvalidTopicException.Code, kmsg.StringPtr(err.Error())
				continue
			}
			if kerrv != nil {
				out.ErrorCode = kerrv.Code
				continue
			}
			rep.add()
			p.read(func(code int16) {
				out.ErrorCode = code
				if code == 0 {
					for _, d := range p.producers.Describe() {
						ap := kmsg.NewDescribeProducersResponseTopicPartitionActiveProducer()
						ap.ProducerID, ap.ProducerEpoch, ap.LastSequence = d.PID, int32(d.Epoch), d.LastSequence
						ap.LastTimestamp, ap.CoordinatorEpoch, ap.CurrentTxnStartOffset = d.LastTimestamp, d.CoordinatorEpoch, d.TxnStartOffset
						out.ActiveProducers = append(out.ActiveProducers, ap)
					}
				}
				rep.done()
			})
		}
	}
	rep.maybeSend()
}
