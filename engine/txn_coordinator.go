package engine

import (
	"errors"
	"math"

	"github.com/gregor-streaming/gregor/engine/batch"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// A txnCoordinator is the transaction coordinator of one
// __transaction_state partition: every replica folds the partition's
// records (txn_store.go, Kafka's format) into the applied state of each
// transactional id; the loaded leader serves, through the lifecycle every
// coordinator shares (coordLife). Each change of a transactional id's
// state is one record, proposed and answered once applied, so a new
// coordinator resumes from exactly what clients were told.
//
// Built so far: FindCoordinator key type 1 and InitProducerId with a
// transactional id. To come (issue 10): AddPartitionsToTxn,
// AddOffsetsToTxn, EndTxn and the markers it sends (WriteTxnMarkers is
// already served by partition leaders), TxnOffsetCommit, the fencing
// abort of an open transaction, transaction timeouts, ListTransactions
// and DescribeTransactions.
type txnCoordinator struct {
	coordLife
	ids map[string]*txnLogValue // applied state per transactional id

	// busy holds the ids with a change in flight (live state, while
	// loaded): a second request for one is CONCURRENT_TRANSACTIONS.
	busy map[string]bool
}

// txnLogVersion is the value version Gregor writes (flexible, with
// KIP-890's tagged fields), as Kafka 4 does.
const txnLogVersion = txnValueV1

func newTxnCoordinator(p *partition) *txnCoordinator {
	c := &txnCoordinator{ids: map[string]*txnLogValue{}}
	c.coordLife = coordLife{p: p, kind: c}
	return c
}

func (c *txnCoordinator) resetStore() { c.ids = map[string]*txnLogValue{} }

// applyBatch folds one batch's records in: a value sets the id's state, a
// tombstone removes it. Records of a version not known here are skipped
// (a log written by a newer version still loads); control batches carry
// no state.
func (c *txnCoordinator) applyBatch(bb []byte) error {
	if h, err := batch.ReadHeader(bb); err == nil && h.Control() {
		return nil
	}
	recs, err := batch.Records(bb)
	if err != nil {
		return err
	}
	for _, r := range recs {
		id, v, _, err := decodeTxnLogRecord(r.Key, r.Value)
		switch {
		case errors.Is(err, errTxnUnknownVersion):
			continue
		case err != nil:
			return err
		case v == nil:
			delete(c.ids, id)
		default:
			c.ids[id] = v
		}
	}
	return nil
}

func (c *txnCoordinator) buildLive()      { c.busy = map[string]bool{} }
func (c *txnCoordinator) dropLive(int16) { c.busy = nil }

// txnCoordinatorFor is the loaded transaction coordinator of id here, or
// the error a client should see (as coordinatorFor).
func (b *Broker) txnCoordinatorFor(id string) (*txnCoordinator, int16) {
	p, code := b.coordinatorPartition(txnStateTopic, id)
	if code != 0 {
		return nil, code
	}
	return p.txn, 0
}

// txnEpochExhausted is Kafka's test for a producer epoch that may not be
// bumped again: the id then gets a new producer id.
func txnEpochExhausted(epoch int16) bool { return epoch >= math.MaxInt16-1 }

// initTransactional answers InitProducerId for a transactional id (the
// rules are in 22_init_producer_id.go).
func (b *Broker) initTransactional(token uint64, r *kmsg.InitProducerIDRequest, resp *kmsg.InitProducerIDResponse) {
	id := *r.TransactionalID
	answer := func(code int16, pid int64, epoch int16) {
		resp.ErrorCode = code
		if code == 0 {
			resp.ProducerID, resp.ProducerEpoch = pid, epoch
		}
		b.respond(token, resp)
	}
	if id == "" {
		answer(kerr.InvalidRequest.Code, 0, 0)
		return
	}
	if r.TransactionTimeoutMillis <= 0 || r.TransactionTimeoutMillis > b.cfg.TransactionMaxTimeoutMs {
		answer(kerr.InvalidTransactionTimeout.Code, 0, 0)
		return
	}
	c, code := b.txnCoordinatorFor(id)
	if code != 0 {
		answer(code, 0, 0)
		return
	}
	if c.busy[id] {
		answer(kerr.ConcurrentTransactions.Code, 0, 0)
		return
	}
	cur := c.ids[id]
	if cur != nil {
		switch cur.state {
		case txnEmpty, txnCompleteCommit, txnCompleteAbort:
		default:
			answer(kerr.ConcurrentTransactions.Code, 0, 0)
			return
		}
		if r.Version >= 3 && r.ProducerID >= 0 {
			switch {
			case r.ProducerID == cur.producerID && r.ProducerEpoch == cur.producerEpoch:
				// The producer bumps its own epoch (KIP-360).
			case r.ProducerID == cur.producerID && r.ProducerEpoch+1 == cur.producerEpoch,
				r.ProducerID == cur.previousProducerID && cur.producerEpoch == 0:
				// A retry of a bump already made: the same answer.
				answer(0, cur.producerID, cur.producerEpoch)
				return
			default:
				fenced := kerr.ProducerFenced.Code
				if r.Version < 4 {
					fenced = kerr.InvalidProducerEpoch.Code
				}
				answer(fenced, 0, 0)
				return
			}
		}
	}
	next := newTxnLogValue()
	next.timeoutMs, next.state = r.TransactionTimeoutMillis, txnEmpty
	next.startMs = -1
	commit := func() {
		next.lastUpdateMs = b.nowMillis()
		rec, err := txnLogRecord(id, &next, txnLogVersion)
		if err != nil {
			delete(c.busy, id)
			answer(kerr.UnknownServerError.Code, 0, 0)
			return
		}
		c.propose([]batch.Record{rec}, func(code int16) {
			if c.busy != nil {
				delete(c.busy, id)
			}
			answer(code, next.producerID, next.producerEpoch)
		})
	}
	c.busy[id] = true
	if cur != nil && !txnEpochExhausted(cur.producerEpoch) {
		next.producerID, next.producerEpoch = cur.producerID, cur.producerEpoch+1
		commit()
		return
	}
	loadSeq := c.loadSeq
	b.allocateProducerID(func(pid int64, err error) {
		if c.loadSeq != loadSeq || !c.loaded {
			answer(kerr.NotCoordinator.Code, 0, 0) // unloaded meanwhile
			return
		}
		if err != nil {
			delete(c.busy, id)
			answer(errCode(err), 0, 0)
			return
		}
		next.producerID, next.producerEpoch = pid, 0
		if cur != nil {
			next.previousProducerID = cur.producerID
		}
		commit()
	})
}
