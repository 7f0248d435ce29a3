package engine

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// AddPartitionsToTxn, versions 0-5: v0-3 the client's form, v4+ the
// brokers' batched form (KIP-890), which Gregor's own brokers do not need
// (they ask over the peer transport) but answer for any caller.
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
//   - v4+: each transaction of the request is answered on its own, each
//     partition as the coordinator's verification answers it
//     (txn_coordinator.go verify): with VerifyOnly, 0 if the ongoing
//     transaction holds it, TRANSACTION_ABORTABLE if not; without, the
//     partition joins the transaction. A fenced epoch is
//     INVALID_PRODUCER_EPOCH, another producer INVALID_PRODUCER_ID_MAPPING,
//     and a transactional id this broker does not coordinate
//     NOT_COORDINATOR. v5 only allows TRANSACTION_ABORTABLE.

func init() { regKey(kmsg.AddPartitionsToTxn, 0, 5, (*Broker).handleAddPartitionsToTxn) }

func (b *Broker) handleAddPartitionsToTxn(token uint64, r *kmsg.AddPartitionsToTxnRequest) {
	resp := r.ResponseKind().(*kmsg.AddPartitionsToTxnResponse)
	if r.Version >= 4 {
		// Kafka's brokers send v4+ (ClusterAction); Gregor's verify
		// between brokers travels as a peer operation.
		if !b.authorizedCluster(opClusterAction) {
			resp.ErrorCode = kerr.ClusterAuthorizationFailed.Code
			b.respond(token, resp)
			return
		}
		b.addPartitionsBatched(token, r, resp)
		return
	}
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
	if !b.authorized(opWrite, resTransactionalID, r.TransactionalID) {
		answer(kerr.TransactionalIDAuthorizationFailed.Code)
		return
	}
	// A topic without Write: TOPIC_AUTHORIZATION_FAILED, and the rest
	// OPERATION_NOT_ATTEMPTED, as unknown topics are.
	mayWrite := b.authorizer(opWrite, resTopic)
	unknown := false
	for ti, rt := range r.Topics {
		for pi, p := range rt.Partitions {
			if !mayWrite(rt.Topic) {
				resp.Topics[ti].Partitions[pi].ErrorCode = kerr.TopicAuthorizationFailed.Code
				unknown = true
			} else if _, ok := b.meta.partition(rt.Topic, p); !ok || isInternalTopic(rt.Topic) && rt.Topic != offsetsTopic {
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
	if id == "" {
		// Kafka's coordinator: an empty transactional id is a bad request.
		answer(kerr.InvalidRequest.Code)
		return
	}
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
	c.addParts(id, parts, answer)
}

// addPartitionsBatched answers v4+: every partition of every transaction
// through its coordinator's verify, the response once all have answered.
func (b *Broker) addPartitionsBatched(token uint64, r *kmsg.AddPartitionsToTxnRequest, resp *kmsg.AddPartitionsToTxnResponse) {
	left := 1 // this function's own hold, released at the end
	release := func() {
		if left--; left == 0 {
			b.respond(token, resp)
		}
	}
	for _, rt := range r.Transactions {
		st := kmsg.NewAddPartitionsToTxnResponseTransaction()
		st.TransactionalID = rt.TransactionalID
		for _, t := range rt.Topics {
			tt := kmsg.NewAddPartitionsToTxnResponseTransactionTopic()
			tt.Topic = t.Topic
			tt.Partitions = make([]kmsg.AddPartitionsToTxnResponseTransactionTopicPartition, len(t.Partitions))
			for i, p := range t.Partitions {
				tt.Partitions[i] = kmsg.NewAddPartitionsToTxnResponseTransactionTopicPartition()
				tt.Partitions[i].Partition = p
			}
			st.Topics = append(st.Topics, tt)
		}
		resp.Transactions = append(resp.Transactions, st)
	}
	for ti, rt := range r.Transactions {
		c, code := b.txnCoordinatorFor(rt.TransactionalID)
		for tj, t := range rt.Topics {
			for pi, p := range t.Partitions {
				out := &resp.Transactions[ti].Topics[tj].Partitions[pi]
				if code != 0 {
					out.ErrorCode = code
					continue
				}
				if _, ok := b.meta.partition(t.Topic, p); !ok || isInternalTopic(t.Topic) && t.Topic != offsetsTopic {
					out.ErrorCode = kerr.UnknownTopicOrPartition.Code
					continue
				}
				left++
				v := txnVerify{id: rt.TransactionalID, pid: rt.ProducerID, epoch: rt.ProducerEpoch, topic: t.Topic, part: p, add: !rt.VerifyOnly}
				c.verify(v, func(code int16) {
					if code == kerr.TransactionAbortable.Code && r.Version < 5 {
						code = kerr.InvalidTxnState.Code
					}
					out.ErrorCode = code
					release()
				})
			}
		}
	}
	release()
}
