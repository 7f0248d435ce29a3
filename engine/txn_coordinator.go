package engine

import (
	"encoding/binary"
	"errors"
	"math"
	"slices"
	"strings"

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
// A transaction's life: InitProducerId (Empty), AddPartitionsToTxn
// (Ongoing), EndTxn (PrepareCommit or PrepareAbort, answered once
// written), then markers to every partition's leader (a peer request,
// opWriteMarker, or directly when this broker leads it), retried until
// each has applied, then CompleteCommit or CompleteAbort. A new
// coordinator resends the markers of every prepared transaction when it
// loads. An InitProducerId while a transaction is Ongoing, or a
// transaction older than its timeout, is aborted with the producer epoch
// bumped, which fences the old producer at every partition. The marker's
// coordinator epoch is this partition's raft term, so a deposed
// coordinator's markers are fenced by its successor's.
//
// To come (issue 10): AddOffsetsToTxn and TxnOffsetCommit, KIP-890's
// transactions v2, ListTransactions and DescribeTransactions,
// transactional.id.expiration.ms.
type txnCoordinator struct {
	coordLife
	ids map[string]*txnLogValue // applied state per transactional id

	// busy holds the ids with a change in flight (live state, while
	// loaded): a second request for one is CONCURRENT_TRANSACTIONS.
	busy         map[string]bool
	timeoutTimer *timer
}

// Marker delivery and transaction timeouts.
const (
	txnMarkerRetryMs   = 100   // pause before a marker is sent again
	txnMarkerTimeoutMs = 1_000 // a peer's answer to one marker (then it is sent again)
	txnTimeoutCheckMs  = 1_000 // how often the leader looks for expired transactions
)

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

// buildLive starts serving: the markers of every prepared transaction are
// sent again (the previous coordinator may have stopped halfway), and the
// timeout check starts.
func (c *txnCoordinator) buildLive() {
	c.busy = map[string]bool{}
	for _, id := range c.sortedIDs() {
		if s := c.ids[id].state; s == txnPrepareCommit || s == txnPrepareAbort {
			c.busy[id] = true
			c.later(func() { c.completeTxn(id) }) // once loaded
		}
	}
	c.scheduleTimeouts()
}

func (c *txnCoordinator) dropLive(int16) {
	c.busy = nil
	c.timeoutTimer.stop()
	c.timeoutTimer = nil
}

func (c *txnCoordinator) sortedIDs() []string {
	ids := make([]string, 0, len(c.ids))
	for id := range c.ids {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// scheduleTimeouts arms the leader's periodic look for transactions open
// longer than their timeout: each is aborted with a bumped epoch, decided
// by this leader's clock and carried in the record.
func (c *txnCoordinator) scheduleTimeouts() {
	c.timeoutTimer.stop()
	c.timeoutTimer = c.b().after(txnTimeoutCheckMs, func() {
		c.timeoutTimer = nil
		if !c.loaded {
			return
		}
		now := c.b().nowMillis()
		for _, id := range c.sortedIDs() {
			v := c.ids[id]
			if v.state == txnOngoing && !c.busy[id] && now-v.startMs > int64(v.timeoutMs) {
				c.fenceAndAbort(id, func(int16) {})
			}
		}
		c.scheduleTimeouts()
	})
}

// change proposes id's next state; fn gets the result once applied. The
// id is busy meanwhile.
func (c *txnCoordinator) change(id string, next *txnLogValue, fn func(code int16)) {
	if !c.loaded {
		fn(kerr.NotCoordinator.Code) // unloaded since the request came
		return
	}
	next.lastUpdateMs = c.b().nowMillis()
	rec, err := txnLogRecord(id, next, txnLogVersion)
	if err != nil {
		fn(kerr.UnknownServerError.Code)
		return
	}
	c.busy[id] = true
	c.propose([]batch.Record{rec}, func(code int16) {
		if c.busy != nil {
			delete(c.busy, id)
		}
		fn(code)
	})
}

// fenceAndAbort aborts id's open transaction with the producer epoch
// bumped (Kafka's PrepareEpochFence then PrepareAbort): the old
// producer's writes are fenced at every partition by the markers' epoch.
func (c *txnCoordinator) fenceAndAbort(id string, fn func(code int16)) {
	next := c.ids[id].clone()
	next.state = txnPrepareAbort
	if !txnEpochExhausted(next.producerEpoch) {
		next.producerEpoch++
	}
	c.change(id, next, func(code int16) {
		fn(code)
		if code == 0 {
			c.later(func() { c.completeTxn(id) })
		}
	})
}

// later runs fn after the current raft cycle: a callback that runs inside
// an apply must not propose (to this group or another) from there.
func (c *txnCoordinator) later(fn func()) { c.b().effects = append(c.b().effects, fn) }

// completeTxn sends the markers of id's prepared transaction, then writes
// its Complete state. The id stays busy until then; if this coordinator
// unloads first, its successor starts over from the prepared state.
func (c *txnCoordinator) completeTxn(id string) {
	v := c.ids[id]
	if !c.loaded || v == nil || v.state != txnPrepareCommit && v.state != txnPrepareAbort {
		return
	}
	commit := v.state == txnPrepareCommit
	m := txnMarker{pid: v.producerID, epoch: v.producerEpoch, commit: commit, coordEpoch: int32(c.p.term), timestampMs: c.b().nowMillis()}
	c.busy[id] = true
	loadSeq := c.loadSeq
	left := 0
	for _, t := range v.partitions {
		left += len(t.partitions)
	}
	finish := func() {
		if c.loadSeq != loadSeq || !c.loaded {
			return
		}
		next := c.ids[id].clone()
		next.state = txnCompleteAbort
		if commit {
			next.state = txnCompleteCommit
		}
		next.partitions = []txnLogPartitions{}
		delete(c.busy, id)
		c.change(id, next, func(int16) {})
	}
	if left == 0 {
		finish()
		return
	}
	for _, t := range v.partitions {
		for _, part := range t.partitions {
			c.sendMarker(t.topic, part, m, loadSeq, func() {
				if left--; left == 0 {
					c.later(finish)
				}
			})
		}
	}
}

// sendMarker has partition (topic, part)'s leader write m, retrying until
// it has; done runs once. A partition that no longer exists, or that has
// seen a newer producer epoch or coordinator (the marker is stale), needs
// no marker.
func (c *txnCoordinator) sendMarker(topic string, part int32, m txnMarker, loadSeq uint64, done func()) {
	if c.loadSeq != loadSeq || !c.loaded {
		return // unloaded: the next coordinator resends
	}
	b := c.b()
	retry := func() {
		b.after(txnMarkerRetryMs, func() { c.sendMarker(topic, part, m, loadSeq, done) })
	}
	result := func(code int16) {
		if c.loadSeq != loadSeq {
			return
		}
		switch code {
		case 0, kerr.InvalidProducerEpoch.Code, kerr.TransactionCoordinatorFenced.Code, kerr.UnknownTopicOrPartition.Code:
			done()
		default:
			retry()
		}
	}
	pm, ok := b.meta.partition(topic, part)
	if !ok {
		done()
		return
	}
	if p := b.parts[pm.Group]; p != nil && p.leader && !p.lost {
		p.serveMarker(m.encode(), result)
		return
	}
	if pm.Leader < 0 || !b.brokerAlive(pm.Leader) {
		retry() // the metadata will name a live leader
		return
	}
	b.callPeer(pm.Leader, pm.Group, opWriteMarker, m.encode(), txnMarkerTimeoutMs, func(body []byte, err error) {
		if err != nil || len(body) < 2 {
			result(kerr.RequestTimedOut.Code)
			return
		}
		result(int16(binary.BigEndian.Uint16(body)))
	})
}

// clone is a deep copy of v.
func (v *txnLogValue) clone() *txnLogValue {
	n := *v
	n.partitions = nil
	if v.partitions != nil {
		n.partitions = make([]txnLogPartitions, len(v.partitions))
		for i, t := range v.partitions {
			n.partitions[i] = txnLogPartitions{topic: t.topic, partitions: slices.Clone(t.partitions)}
		}
	}
	return &n
}

// has reports whether v's transaction holds (topic, part).
func (v *txnLogValue) has(topic string, part int32) bool {
	for _, t := range v.partitions {
		if t.topic == topic {
			return slices.Contains(t.partitions, part)
		}
	}
	return false
}

// add puts (topic, part) in v's transaction, keeping topics and partitions
// sorted.
func (v *txnLogValue) add(topic string, part int32) {
	i, found := slices.BinarySearchFunc(v.partitions, topic, func(t txnLogPartitions, name string) int { return strings.Compare(t.topic, name) })
	if !found {
		v.partitions = slices.Insert(v.partitions, i, txnLogPartitions{topic: topic})
	}
	ps := v.partitions[i].partitions
	if j, ok := slices.BinarySearch(ps, part); !ok {
		v.partitions[i].partitions = slices.Insert(ps, j, part)
	}
}

// txnProducerCheck validates a request's producer id and epoch against
// id's state: INVALID_PRODUCER_ID_MAPPING for an unknown id or another
// producer id, PRODUCER_FENCED for another epoch (INVALID_PRODUCER_EPOCH
// before the API version fencedFrom, KIP-588).
func txnProducerCheck(cur *txnLogValue, pid int64, epoch int16, version, fencedFrom int16) int16 {
	switch {
	case cur == nil || cur.producerID != pid:
		return kerr.InvalidProducerIDMapping.Code
	case cur.producerEpoch != epoch && version >= fencedFrom:
		return kerr.ProducerFenced.Code
	case cur.producerEpoch != epoch:
		return kerr.InvalidProducerEpoch.Code
	}
	return 0
}

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
		case txnOngoing:
			// A new producer takes over: the open transaction is aborted
			// with the epoch bumped, fencing the old producer; the caller
			// retries once it is complete.
			c.fenceAndAbort(id, func(int16) {})
			answer(kerr.ConcurrentTransactions.Code, 0, 0)
			return
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
		delete(c.busy, id)
		c.change(id, &next, func(code int16) { answer(code, next.producerID, next.producerEpoch) })
	}
	c.busy[id] = true // while a producer id is allocated
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
		c.later(commit)
	})
}

// --- verification (KIP-890, part 1) ---

// txnVerify is a partition leader's question to a transaction coordinator
// before it stages a producer's first transactional write there: is this
// producer's transaction ongoing, at this epoch, and does it hold the
// partition? Without it, a producer fenced by an InitProducerId that has
// written no marker anywhere since could still write: the partition has
// not seen the new epoch, and the next transaction's marker would take
// the write in.
type txnVerify struct {
	id    string
	pid   int64
	epoch int16
	topic string
	part  int32
}

func (v txnVerify) encode() []byte {
	b := binary.AppendUvarint(nil, uint64(len(v.id)))
	b = append(b, v.id...)
	b = binary.AppendVarint(b, v.pid)
	b = binary.AppendVarint(b, int64(v.epoch))
	b = binary.AppendUvarint(b, uint64(len(v.topic)))
	b = append(b, v.topic...)
	return binary.AppendVarint(b, int64(v.part))
}

var errBadVerify = errors.New("engine: corrupt transaction verification request")

func decodeTxnVerify(b []byte) (txnVerify, error) {
	r := &byteReader{b: b}
	var v txnVerify
	v.id = string(r.bytes(r.uvarint()))
	v.pid = r.varint()
	v.epoch = int16(r.varint())
	v.topic = string(r.bytes(r.uvarint()))
	v.part = int32(r.varint())
	if r.err != nil || len(r.b) != 0 {
		return txnVerify{}, errBadVerify
	}
	return v, nil
}

// verify answers a txnVerify from the loaded coordinator's state: 0, or
// INVALID_PRODUCER_EPOCH for another epoch of the producer (a fenced
// zombie), INVALID_PRODUCER_ID_MAPPING for another producer,
// INVALID_TXN_STATE when no transaction holding the partition is ongoing.
func (c *txnCoordinator) verify(v txnVerify) int16 {
	cur := c.ids[v.id]
	switch {
	case cur == nil || cur.producerID != v.pid:
		return kerr.InvalidProducerIDMapping.Code
	case cur.producerEpoch != v.epoch && !c.b().unsafeFencedOK(cur, v.pid, v.epoch):
		return kerr.InvalidProducerEpoch.Code
	case cur.state != txnOngoing || !cur.has(v.topic, v.part):
		return kerr.InvalidTxnState.Code
	}
	return 0
}

// serveVerifyTxn answers a peer's txnVerify on this __transaction_state
// partition.
func (p *partition) serveVerifyTxn(body []byte) int16 {
	v, err := decodeTxnVerify(body)
	if err != nil {
		return kerr.CorruptMessage.Code
	}
	c, code := p.b.txnCoordinatorFor(v.id)
	if code != 0 {
		return code
	}
	return c.verify(v)
}

// verifyTxn asks v.id's transaction coordinator (here or on its broker)
// whether v holds; fn gets 0 or the error code (NOT_COORDINATOR and the
// like when the coordinator cannot be asked: the client retries).
func (b *Broker) verifyTxn(v txnVerify, fn func(code int16)) {
	if c, code := b.txnCoordinatorFor(v.id); code == 0 {
		fn(c.verify(v))
		return
	}
	pm, ok := b.internalPartition(txnStateTopic, v.id)
	if !ok || pm.Leader < 0 || !b.brokerAlive(pm.Leader) || pm.Leader == b.cfg.ID {
		fn(kerr.CoordinatorNotAvailable.Code)
		return
	}
	b.callPeer(pm.Leader, pm.Group, opVerifyTxn, v.encode(), txnMarkerTimeoutMs, func(body []byte, err error) {
		if err != nil || len(body) < 2 {
			fn(kerr.CoordinatorNotAvailable.Code)
			return
		}
		fn(int16(binary.BigEndian.Uint16(body)))
	})
}
