package engine

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// AddPartitionsToTxn, versions 0-3 (the client's form; v4+'s
// broker-to-broker verification comes with KIP-890).
//
// Behavior:
//   - At the transactional id's coordinator (NOT_COORDINATOR elsewhere,
//     COORDINATOR_LOAD_IN_PROGRESS while it loads), for the producer id and
//     epoch the id has: another producer id (or an unknown transactional
//     id) is INVALID_PRODUCER_ID_MAPPING, another epoch PRODUCER_FENCED
//     (INVALID_PRODUCER_EPOCH before v2).
//   - The partitions join the transaction, which becomes Ongoing (its
//     start time the coordinator's clock when it opens); the change is a
//     __transaction_state record, answered once applied. Partitions the
//     transaction holds already are answered at once.
//   - While the previous transaction's markers are being written, or
//     another change of the id is in flight: CONCURRENT_TRANSACTIONS.
//   - A partition that does not exist: UNKNOWN_TOPIC_OR_PARTITION, and
//     every other partition of the request OPERATION_NOT_ATTEMPTED.
//   - Every error is answered for each partition of the request.

func init() { regKey(kmsg.AddPartitionsToTxn, 0, 3, (*Broker).handleAddPartitionsToTxn) }

func (b *Broker) handleAddPartitionsToTxn(token uint64, r *kmsg.AddPartitionsToTxnRequest) {
	resp := r.ResponseKind().(*kmsg.AddPartitionsToTxnResponse)
	for _, rt := range r.Topics {
		st := kmsg.NewAddPartitionsToTxnResponseTopic()
		st.Topic = rt.Topic
		for _, p := range rt.Partitions {
			sp := kmsg.NewAddPartitionsToTxnResponseTopicPartition()
			sp.Partition = p
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	answer := func(code int16) {
		for ti := range resp.Topics {
			for pi := range resp.Topics[ti].Partitions {
				resp.Topics[ti].Partitions[pi].ErrorCode = code
			}
		}
		b.respond(token, resp)
	}
	unknown := false
	for ti, rt := range r.Topics {
		for pi, p := range rt.Partitions {
			if _, ok := b.meta.partition(rt.Topic, p); !ok || isInternalTopic(rt.Topic) && rt.Topic != offsetsTopic {
				resp.Topics[ti].Partitions[pi].ErrorCode = kerr.UnknownTopicOrPartition.Code
				unknown = true
			}
		}
	}
	if unknown {
		for ti := range resp.Topics {
			for pi := range resp.Topics[ti].Partitions {
				if out := &resp.Topics[ti].Partitions[pi]; out.ErrorCode == 0 {
					out.ErrorCode = kerr.OperationNotAttempted.Code
				}
			}
		}
		b.respond(token, resp)
		return
	}
	var parts []txnLogPartitions
	for _, rt := range r.Topics {
		parts = append(parts, txnLogPartitions{topic: rt.Topic, partitions: rt.Partitions})
	}
	b.addToTxn(r.TransactionalID, r.ProducerID, r.ProducerEpoch, r.Version, parts, answer)
}

// addToTxn adds partitions to id's transaction, making it Ongoing (the
// rules of AddPartitionsToTxn and AddOffsetsToTxn, both of which fence
// with PRODUCER_FENCED from v2).
func (b *Broker) addToTxn(id string, pid int64, epoch, version int16, parts []txnLogPartitions, answer func(int16)) {
	c, code := b.txnCoordinatorFor(id)
	if code != 0 {
		answer(code)
		return
	}
	cur := c.ids[id]
	if code := txnProducerCheck(cur, pid, epoch, version, 2); code != 0 && !b.unsafeFencedOK(cur, pid, epoch) {
		answer(code)
		return
	}
	if c.busy[id] || cur.state == txnPrepareCommit || cur.state == txnPrepareAbort || cur.state == txnPrepareEpochFence {
		answer(kerr.ConcurrentTransactions.Code)
		return
	}
	next := cur.clone()
	if cur.state != txnOngoing {
		next.state, next.startMs, next.partitions = txnOngoing, b.nowMillis(), []txnLogPartitions{}
	}
	added := false
	for _, t := range parts {
		for _, p := range t.partitions {
			if !next.has(t.topic, p) {
				next.add(t.topic, p)
				added = true
			}
		}
	}
	if !added && cur.state == txnOngoing {
		answer(0)
		return
	}
	c.change(id, next, answer)
}
