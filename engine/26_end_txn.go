package engine

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// EndTxn, versions 0-5.
//
// Behavior:
//   - At the transactional id's coordinator, for its producer id and epoch
//     (as AddPartitionsToTxn; PRODUCER_FENCED from v2).
//   - An Ongoing transaction becomes PrepareCommit or PrepareAbort, a
//     __transaction_state record; the answer goes once it has applied,
//     and the coordinator then has every partition's leader write the
//     marker (txn_coordinator.go) and records CompleteCommit or
//     CompleteAbort. Until then the id is busy: CONCURRENT_TRANSACTIONS.
//   - A retry after the transaction completed the same way: success; the
//     other way, or with no transaction (Empty): INVALID_TXN_STATE.
//   - v5 (transactions v2, KIP-890): the producer epoch is bumped with the
//     prepare record, the markers carry the new epoch, and the answer
//     gives the producer id and epoch the next transaction uses; at an
//     exhausted epoch the id moves to a new producer id (epoch 0) once the
//     transaction completes. A producer's delayed write of the ended
//     transaction is then fenced everywhere. A retry with the epoch just
//     replaced, after the transaction completed the same way, gets the
//     same answer (the other way: INVALID_TXN_STATE; a commit of a
//     transaction the coordinator aborted on timeout: PRODUCER_FENCED).
//     An abort with no transaction open bumps the epoch too, fencing
//     writes still in flight.
//   - v4 adds only an error code (TRANSACTION_ABORTABLE) Gregor does not
//     answer here.

func init() { regKey(kmsg.EndTxn, 0, 5, (*Broker).handleEndTxn) }

func (b *Broker) handleEndTxn(token uint64, r *kmsg.EndTxnRequest) {
	resp := r.ResponseKind().(*kmsg.EndTxnResponse)
	resp.ProducerID, resp.ProducerEpoch = -1, -1
	answer := func(code int16, v *txnLogValue) {
		resp.ErrorCode = code
		if code == 0 && v != nil && r.Version >= 5 {
			resp.ProducerID, resp.ProducerEpoch = v.producerID, v.producerEpoch
			if v.nextProducerID >= 0 {
				resp.ProducerID, resp.ProducerEpoch = v.nextProducerID, v.nextProducerEpoch
			}
		}
		b.respond(token, resp)
	}
	if !b.authorized(opWrite, resTransactionalID, r.TransactionalID) {
		answer(kerr.TransactionalIDAuthorizationFailed.Code, nil)
		return
	}
	if r.TransactionalID == "" {
		// Kafka's coordinator: an empty transactional id is a bad request.
		answer(kerr.InvalidRequest.Code, nil)
		return
	}
	c, code := b.txnCoordinatorFor(r.TransactionalID)
	if code != 0 {
		answer(code, nil)
		return
	}
	id := r.TransactionalID
	cur := c.ids[id]
	bump := r.Version >= 5
	if bump && endTxnRetried(cur, r) {
		switch {
		case c.busy[id] || cur.state == txnPrepareCommit || cur.state == txnPrepareAbort:
			answer(kerr.ConcurrentTransactions.Code, nil)
		case cur.state == txnCompleteCommit && r.Commit, cur.state == txnCompleteAbort && !r.Commit:
			answer(0, cur)
		case cur.state == txnCompleteAbort:
			answer(kerr.ProducerFenced.Code, nil) // aborted by the coordinator
		default:
			answer(kerr.InvalidTxnState.Code, nil)
		}
		return
	}
	if code := txnProducerCheck(cur, r.ProducerID, r.ProducerEpoch, r.Version, 2); code != 0 && !b.unsafeFencedOK(cur, r.ProducerID, r.ProducerEpoch) {
		answer(code, nil)
		return
	}
	if c.busy[id] {
		answer(kerr.ConcurrentTransactions.Code, nil)
		return
	}
	next := cur.clone()
	// Kafka's clientTransactionVersion: 2 when this end bumps the epoch,
	// which makes the markers refuse to end a later transaction open at
	// their epoch (txnCoordinator.marker).
	next.clientTxnVersion = 0
	if bump {
		next.clientTxnVersion = 2
	}
	switch cur.state {
	case txnOngoing:
		next.state = txnPrepareAbort
		if r.Commit {
			next.state = txnPrepareCommit
		}
	case txnEmpty, txnCompleteCommit, txnCompleteAbort:
		if bump && !r.Commit {
			next.state, next.partitions = txnCompleteAbort, []txnLogPartitions{}
			break
		}
		switch {
		case cur.state == txnCompleteCommit && r.Commit, cur.state == txnCompleteAbort && !r.Commit:
			answer(0, nil)
		default:
			answer(kerr.InvalidTxnState.Code, nil)
		}
		return
	case txnPrepareCommit, txnPrepareAbort, txnPrepareEpochFence:
		answer(kerr.ConcurrentTransactions.Code, nil)
		return
	default:
		answer(kerr.InvalidTxnState.Code, nil)
		return
	}
	write := func() {
		if b.cfg.Unsafe.MarkerBeforePrepare && next.state != txnCompleteAbort {
			c.unsafeMarkersFirst(id, next, func(code int16) { answer(code, next) })
			return
		}
		c.change(id, next, func(code int16) {
			answer(code, next)
			if code == 0 && next.state != txnCompleteAbort {
				c.later(func() { c.completeTxn(id) })
			}
		})
	}
	if !bump {
		write()
		return
	}
	fail := func(code int16) { answer(code, nil) }
	if next.state == txnCompleteAbort {
		c.bumpNow(id, next, write, fail)
		return
	}
	c.bumpAtEnd(id, next, write, fail)
}

// endTxnRetried reports whether r (v5) is a retry of an EndTxn that has
// already bumped the epoch: it names the epoch just before the current
// one, or the producer id and exhausted epoch the id moved away from.
func endTxnRetried(cur *txnLogValue, r *kmsg.EndTxnRequest) bool {
	switch {
	case cur == nil:
		return false
	case r.ProducerID == cur.producerID:
		return r.ProducerEpoch+1 == cur.producerEpoch
	case r.ProducerID == cur.previousProducerID:
		return cur.producerEpoch == 0 && txnEpochExhausted(r.ProducerEpoch)
	}
	return false
}
