package engine

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// EndTxn, versions 0-3.
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

func init() { regKey(kmsg.EndTxn, 0, 3, (*Broker).handleEndTxn) }

func (b *Broker) handleEndTxn(token uint64, r *kmsg.EndTxnRequest) {
	resp := r.ResponseKind().(*kmsg.EndTxnResponse)
	answer := func(code int16) {
		resp.ErrorCode = code
		b.respond(token, resp)
	}
	c, code := b.txnCoordinatorFor(r.TransactionalID)
	if code != 0 {
		answer(code)
		return
	}
	id := r.TransactionalID
	cur := c.ids[id]
	if code := txnProducerCheck(cur, r.ProducerID, r.ProducerEpoch, r.Version, 2); code != 0 && !b.unsafeFencedOK(cur, r.ProducerID, r.ProducerEpoch) {
		answer(code)
		return
	}
	if c.busy[id] {
		answer(kerr.ConcurrentTransactions.Code)
		return
	}
	switch cur.state {
	case txnOngoing:
	case txnCompleteCommit:
		answer(map[bool]int16{true: 0, false: kerr.InvalidTxnState.Code}[r.Commit])
		return
	case txnCompleteAbort:
		answer(map[bool]int16{false: 0, true: kerr.InvalidTxnState.Code}[r.Commit])
		return
	case txnPrepareCommit, txnPrepareAbort, txnPrepareEpochFence:
		answer(kerr.ConcurrentTransactions.Code)
		return
	default:
		answer(kerr.InvalidTxnState.Code)
		return
	}
	next := cur.clone()
	next.state = txnPrepareAbort
	if r.Commit {
		next.state = txnPrepareCommit
	}
	if b.cfg.Unsafe.MarkerBeforePrepare && c.unsafeMarkersFirst(token, r, id, next) {
		return
	}
	c.change(id, next, func(code int16) {
		answer(code)
		if code == 0 {
			c.later(func() { c.completeTxn(id) })
		}
	})
}
