package engine

import (
	"encoding/binary"
	"errors"
	"maps"
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
// Transactions v2 (KIP-890, 26_end_txn.go): EndTxn v5 bumps the epoch
// with the prepare record, and partitions join a transaction when its
// producer first writes there (verify with add). An id idle for
// transactional.id.expiration.ms with no transaction open is forgotten.
type txnCoordinator struct {
	coordLife
	ids map[string]*txnLogValue // applied state per transactional id

	// busy holds the ids with a change in flight (live state, while
	// loaded): a second request for one is CONCURRENT_TRANSACTIONS.
	busy   map[string]bool
	adding map[string]*txnAdding // implicit adds waiting on a change in flight (live state)
	// parked holds, per id, implicit adds waiting for the id's prepared
	// transaction to complete (live state).
	parked map[string][]txnVerifyWait
	// bumped remembers, per id, the last epoch bump a producer asked for
	// itself (KIP-360), so that its retry gets the same answer and no one
	// else's does (live state: after a move, a retry is fenced, as in
	// Kafka, whose lastProducerEpoch is not in the log either).
	bumped map[string]txnBump
	// loadedAt is this coordinator's clock when it loaded; inherited holds
	// the start and last-update times each id had then (live state: see
	// localTimes).
	loadedAt     int64
	inherited    map[string][2]int64
	timeoutTimer *timer
}

// Marker delivery and transaction timeouts.
const (
	txnMarkerRetryMs   = 100   // pause before a marker is sent again
	txnMarkerTimeoutMs = 1_000 // a peer's answer to one marker (then it is sent again)
	txnTimeoutCheckMs  = 1_000 // how often the leader looks for expired transactions
	txnExpireMax       = 100   // transactional ids forgotten in one record batch
	txnParkMaxMs       = 1_000 // how long an implicit add waits for the previous transaction's markers
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
	c.adding, c.parked, c.bumped = map[string]*txnAdding{}, map[string][]txnVerifyWait{}, map[string]txnBump{}
	c.loadedAt, c.inherited = c.b().nowMillis(), make(map[string][2]int64, len(c.ids))
	for id, v := range c.ids {
		c.inherited[id] = [2]int64{v.startMs, v.lastUpdateMs}
	}
	for _, id := range c.sortedIDs() {
		if s := c.ids[id].state; s == txnPrepareCommit || s == txnPrepareAbort {
			c.busy[id] = true
			c.later(func() { c.completeTxn(id) }) // once loaded
		}
	}
	c.scheduleTimeouts()
}

func (c *txnCoordinator) dropLive(int16) {
	for _, id := range slices.Sorted(maps.Keys(c.parked)) {
		for _, w := range c.parked[id] {
			w.fn(kerr.NotCoordinator.Code)
		}
	}
	c.busy, c.adding, c.parked, c.bumped, c.inherited = nil, nil, nil, nil, nil
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
// longer than their timeout, each aborted with a bumped epoch, and for
// transactional ids idle longer than transactional.id.expiration.ms,
// forgotten: decided by this leader's clock and carried in the records.
func (c *txnCoordinator) scheduleTimeouts() {
	c.timeoutTimer.stop()
	c.timeoutTimer = c.b().after(txnTimeoutCheckMs, func() {
		c.timeoutTimer = nil
		if !c.loaded {
			return
		}
		now, expiry := c.b().nowMillis(), c.b().cfg.TransactionalIDExpirationMs
		var expired []string
		for _, id := range c.sortedIDs() {
			v := c.ids[id]
			start, updated := c.localTimes(id, v)
			switch {
			case c.busy[id]:
			case v.state == txnOngoing && now-start > int64(v.timeoutMs):
				c.fenceAndAbort(id, func(int16) {})
			case (v.state == txnEmpty || v.state == txnCompleteCommit || v.state == txnCompleteAbort) &&
				now-updated > expiry && len(expired) < txnExpireMax:
				expired = append(expired, id)
			}
		}
		c.expire(expired)
		c.scheduleTimeouts()
	})
}

// expire forgets ids, idle and with no transaction open: one batch of
// tombstones. Each is busy until it has applied.
func (c *txnCoordinator) expire(ids []string) {
	if len(ids) == 0 {
		return
	}
	recs := make([]batch.Record, 0, len(ids))
	for _, id := range ids {
		rec, err := txnLogRecord(id, nil, txnLogVersion)
		if err != nil {
			continue
		}
		c.busy[id] = true
		recs = append(recs, rec)
	}
	loadSeq := c.loadSeq
	c.propose(recs, func(int16) {
		if c.loadSeq == loadSeq {
			for _, id := range ids {
				delete(c.busy, id)
			}
		}
	})
}

// localTimes are when id's transaction started and when it last changed,
// by this coordinator's clock: the times in the record, unless a
// predecessor wrote them (they are unchanged since this coordinator
// loaded), in which case the load time. Another broker's clock may be
// ahead or behind by any amount (docs/fault-model.md): comparing it with
// ours could abort a live transaction at once, or never time one out
// (TestRegression_TxnTimeoutAcrossClockSkew). A transaction a coordinator
// inherits gets its full timeout again from the load.
func (c *txnCoordinator) localTimes(id string, v *txnLogValue) (start, updated int64) {
	start, updated = v.startMs, v.lastUpdateMs
	if in, ok := c.inherited[id]; ok && in == [2]int64{v.startMs, v.lastUpdateMs} {
		start, updated = c.loadedAt, c.loadedAt
	}
	return start, updated
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
	loadSeq := c.loadSeq
	c.propose([]batch.Record{rec}, func(code int16) {
		if c.loadSeq == loadSeq {
			delete(c.busy, id) // not a later load's
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
// its Complete state (or, under transactions v2, the next transaction's
// Ongoing state when its first writes are already waiting). The id stays busy until then; if this coordinator
// unloads first, its successor starts over from the prepared state.
// txnCompleteRetryMs is how long a coordinator waits before it tries
// again to complete a prepared transaction whose Complete record failed.
const txnCompleteRetryMs = 100

func (c *txnCoordinator) completeTxn(id string) {
	v := c.ids[id]
	if !c.loaded || v == nil || v.state != txnPrepareCommit && v.state != txnPrepareAbort {
		return
	}
	commit := v.state == txnPrepareCommit
	m := c.marker(v)
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
		if next.nextProducerID >= 0 { // the epoch was exhausted (bumpAtEnd)
			next.previousProducerID, next.producerID, next.producerEpoch = next.producerID, next.nextProducerID, next.nextProducerEpoch
			next.nextProducerID, next.nextProducerEpoch = -1, -1
		}
		// Transactions v2: the producer's next transaction may have begun
		// already (its first writes wait in parked). Its partitions are
		// added by this same record, which then says Ongoing instead of
		// Complete: one raft round fewer between two transactions. Every
		// marker is written at this point, so nothing of the ended
		// transaction is left to do.
		for _, w := range c.parked[id] {
			if w.v.add && w.v.pid == next.producerID && w.v.epoch == next.producerEpoch {
				if next.state != txnOngoing {
					next.state, next.startMs = txnOngoing, c.b().nowMillis()
				}
				next.add(w.v.topic, w.v.part)
			}
		}
		delete(c.busy, id)
		c.change(id, next, func(code int16) {
			if c.loadSeq != loadSeq {
				return // unloaded: the parked were answered
			}
			if code != 0 {
				// The Complete record was not written (a new raft term of
				// this same leader fails the proposals in flight, and the
				// coordinator stays loaded): the transaction is still
				// prepared, and nothing else would finish it. Try again,
				// markers and all (they are idempotent); the parked wait.
				c.b().after(txnCompleteRetryMs, func() {
					if c.loadSeq == loadSeq {
						c.completeTxn(id)
					}
				})
				return
			}
			parked := c.parked[id]
			delete(c.parked, id)
			if len(parked) > 0 {
				c.later(func() { c.reverify(parked) })
			}
		})
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

// marker is the marker that ends v's prepared transaction, from this
// coordinator (its epoch is the partition's raft term). It is bumped
// (txnMarker.bumped) when v's ClientTransactionVersion is 2, which EndTxn
// v5 writes with the epoch bump of its prepare record (bumpAtEnd) and a
// fencing abort keeps (fenceAndAbort bumps the epoch too), unless the
// epoch is exhausted: bumpAtEnd and fenceAndAbort leave an exhausted
// epoch as it is, so the marker may be of its transaction's own epoch,
// and it is taken as not bumped, as before transactions v2 (it ends
// whatever is open at its epoch). So is a fencing abort's marker when the
// id's producer never ended a transaction with v5.
func (c *txnCoordinator) marker(v *txnLogValue) txnMarker {
	return txnMarker{pid: v.producerID, epoch: v.producerEpoch, commit: v.state == txnPrepareCommit,
		coordEpoch: int32(c.p.term), timestampMs: c.b().nowMillis(),
		bumped: v.clientTxnVersion >= 2 && !txnEpochExhausted(v.producerEpoch)}
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
			switch bump := c.bumped[id]; {
			case r.ProducerID == cur.producerID && r.ProducerEpoch == cur.producerEpoch:
				// The producer bumps its own epoch (KIP-360).
			case bump == txnBump{fromPID: r.ProducerID, fromEpoch: r.ProducerEpoch, toPID: cur.producerID, toEpoch: cur.producerEpoch}:
				// A retry of the bump this producer made, the id unchanged
				// since: the same answer. (An epoch bumped by anyone else
				// fences it, as Kafka's lastProducerEpoch decides.)
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
	selfBump := cur != nil && r.Version >= 3 && r.ProducerID >= 0
	commit := func() {
		delete(c.busy, id)
		delete(c.bumped, id)
		c.change(id, &next, func(code int16) {
			if code == 0 && selfBump && c.bumped != nil {
				c.bumped[id] = txnBump{fromPID: r.ProducerID, fromEpoch: r.ProducerEpoch, toPID: next.producerID, toEpoch: next.producerEpoch}
			}
			answer(code, next.producerID, next.producerEpoch)
		})
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

// --- verification and implicit adds (KIP-890) ---

// txnVerify is a partition leader's question to a transaction coordinator
// before it stages a producer's first transactional write there: is this
// producer's transaction ongoing, at this epoch, and does it hold the
// partition? Without it, a producer fenced by an InitProducerId that has
// written no marker anywhere since could still write: the partition has
// not seen the new epoch, and the next transaction's marker would take
// the write in. With add (transactions v2: Produce v12+, TxnOffsetCommit
// v5+), a partition the transaction does not hold yet joins it, as
// AddPartitionsToTxn would have added it.
type txnVerify struct {
	id    string
	pid   int64
	epoch int16
	topic string
	part  int32
	add   bool
}

func (v txnVerify) encode() []byte {
	b := binary.AppendUvarint(nil, uint64(len(v.id)))
	b = append(b, v.id...)
	b = binary.AppendVarint(b, v.pid)
	b = binary.AppendVarint(b, int64(v.epoch))
	b = binary.AppendUvarint(b, uint64(len(v.topic)))
	b = append(b, v.topic...)
	b = binary.AppendVarint(b, int64(v.part))
	if v.add {
		b = append(b, 1)
	}
	return b
}

var errBadVerify = errors.New("engine: corrupt transaction verification request")

// decodeTxnVerify reads a txnVerify; the add flag is a trailing 1 (a body
// without it, as brokers before transactions v2 send, only verifies).
func decodeTxnVerify(b []byte) (txnVerify, error) {
	r := &byteReader{b: b}
	var v txnVerify
	v.id = string(r.bytes(r.uvarint()))
	v.pid = r.varint()
	v.epoch = int16(r.varint())
	v.topic = string(r.bytes(r.uvarint()))
	v.part = int32(r.varint())
	if r.err == nil && len(r.b) == 1 && r.b[0] == 1 {
		v.add, r.b = true, nil
	}
	if r.err != nil || len(r.b) != 0 {
		return txnVerify{}, errBadVerify
	}
	return v, nil
}

// verify answers a txnVerify from the loaded coordinator's state, as
// Kafka's coordinator answers AddPartitionsToTxn v4+: 0;
// INVALID_PRODUCER_ID_MAPPING for another producer; INVALID_PRODUCER_EPOCH
// for another epoch of it (a fenced zombie); CONCURRENT_TRANSACTIONS while
// its transaction is being ended; TRANSACTION_ABORTABLE when no ongoing
// transaction holds the partition and v does not add it. An add waits
// behind another add of the same id in flight and joins the next change,
// so a producer writing to many partitions at once is not refused.
func (c *txnCoordinator) verify(v txnVerify, fn func(code int16)) {
	cur := c.ids[v.id]
	switch {
	case cur == nil || cur.producerID != v.pid:
		fn(kerr.InvalidProducerIDMapping.Code)
	case cur.producerEpoch != v.epoch && !c.b().unsafeFencedOK(cur, v.pid, v.epoch):
		fn(kerr.InvalidProducerEpoch.Code)
	case (cur.state == txnPrepareCommit || cur.state == txnPrepareAbort) && v.add && c.busy[v.id]:
		// Transactions v2: the producer's next transaction begins (at the
		// epoch EndTxn bumped) while the last one's markers are on their
		// way; it waits for them instead of retrying.
		c.park(v, fn)
	case cur.state == txnPrepareCommit || cur.state == txnPrepareAbort || cur.state == txnPrepareEpochFence:
		fn(kerr.ConcurrentTransactions.Code)
	case cur.state == txnOngoing && cur.has(v.topic, v.part):
		fn(0)
	case !v.add:
		fn(kerr.TransactionAbortable.Code)
	case c.adding[v.id] != nil:
		c.adding[v.id].waiting = append(c.adding[v.id].waiting, txnVerifyWait{v, fn})
	case c.busy[v.id]:
		fn(kerr.ConcurrentTransactions.Code)
	default:
		c.addParts(v.id, []txnLogPartitions{{topic: v.topic, partitions: []int32{v.part}}}, fn)
	}
}

// txnBump is a KIP-360 epoch bump: from the producer id and epoch the
// producer named to the ones it was given.
type txnBump struct {
	fromPID, toPID     int64
	fromEpoch, toEpoch int16
}

// txnAdding is an add to an id's transaction in flight, and the implicit
// adds that came meanwhile: they are verified again once it has applied.
type txnAdding struct{ waiting []txnVerifyWait }

type txnVerifyWait struct {
	v  txnVerify
	fn func(int16)
}

// addParts adds parts to id's transaction, opening one (Ongoing, started
// now) if none is; fn gets the result once applied. The caller checked
// the producer and that no change of id is in flight.
func (c *txnCoordinator) addParts(id string, parts []txnLogPartitions, fn func(int16)) {
	cur := c.ids[id]
	next := cur.clone()
	if cur.state != txnOngoing {
		next.state, next.startMs, next.partitions = txnOngoing, c.b().nowMillis(), []txnLogPartitions{}
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
		fn(0)
		return
	}
	a, loadSeq := &txnAdding{}, c.loadSeq
	c.adding[id] = a
	c.change(id, next, func(code int16) {
		if c.loadSeq == loadSeq {
			delete(c.adding, id)
		}
		fn(code)
		if len(a.waiting) > 0 {
			c.later(func() { c.reverify(a.waiting) })
		}
	})
}

// park holds v until id's prepared transaction completes, or answers
// CONCURRENT_TRANSACTIONS (retriable) after txnParkMaxMs: a partition
// the markers cannot reach must not hold the producer's writes forever.
func (c *txnCoordinator) park(v txnVerify, fn func(int16)) {
	done := false
	once := func(code int16) {
		if !done {
			done = true
			fn(code)
		}
	}
	c.parked[v.id] = append(c.parked[v.id], txnVerifyWait{v, once})
	c.b().after(txnParkMaxMs, func() { once(kerr.ConcurrentTransactions.Code) })
}

// reverify answers verifications that waited, from the state now.
func (c *txnCoordinator) reverify(ws []txnVerifyWait) {
	for _, w := range ws {
		if !c.loaded {
			w.fn(kerr.NotCoordinator.Code)
			continue
		}
		c.verify(w.v, w.fn)
	}
}

// serveVerifyTxn answers a peer's txnVerify on this __transaction_state
// partition.
func (p *partition) serveVerifyTxn(body []byte, fn func(code int16)) {
	v, err := decodeTxnVerify(body)
	if err != nil {
		fn(kerr.CorruptMessage.Code)
		return
	}
	c, code := p.b.txnCoordinatorFor(v.id)
	if code != 0 {
		fn(code)
		return
	}
	c.verify(v, fn)
}

// verifyTxn asks v.id's transaction coordinator (here or on its broker)
// whether v holds; fn gets 0 or the error code (NOT_COORDINATOR and the
// like when the coordinator cannot be asked: the caller retries).
func (b *Broker) verifyTxn(v txnVerify, fn func(code int16)) {
	if c, code := b.txnCoordinatorFor(v.id); code == 0 {
		c.verify(v, fn)
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

// --- the epoch bump of transactions v2 (KIP-890) ---

// bumpAtEnd bumps next's producer epoch for the end of its transaction
// (the prepare record and its markers carry the new epoch), then runs
// then. At an exhausted epoch the epoch stays and a new producer id is
// allocated for the id to move to once the transaction completes
// (nextProducerID, as Kafka's log records it); fail gets the error if
// that cannot be done.
func (c *txnCoordinator) bumpAtEnd(id string, next *txnLogValue, then func(), fail func(int16)) {
	if !txnEpochExhausted(next.producerEpoch) {
		next.producerEpoch++
		then()
		return
	}
	c.allocateFor(id, func(pid int64) { next.nextProducerID, next.nextProducerEpoch = pid, 0 }, then, fail)
}

// bumpNow bumps next's producer epoch for a record with no markers to
// follow (an abort with no transaction open): at an exhausted epoch the
// id moves to a new producer id at once.
func (c *txnCoordinator) bumpNow(id string, next *txnLogValue, then func(), fail func(int16)) {
	if !txnEpochExhausted(next.producerEpoch) {
		next.producerEpoch++
		then()
		return
	}
	c.allocateFor(id, func(pid int64) {
		next.previousProducerID, next.producerID, next.producerEpoch = next.producerID, pid, 0
	}, then, fail)
}

// allocateFor allocates a producer id for id, hands it to set, and runs
// then after the current cycle; id is busy meanwhile. fail gets
// NOT_COORDINATOR if this coordinator unloads first, or the allocation's
// error.
func (c *txnCoordinator) allocateFor(id string, set func(pid int64), then func(), fail func(int16)) {
	c.busy[id] = true
	loadSeq := c.loadSeq
	c.b().allocateProducerID(func(pid int64, err error) {
		if c.loadSeq != loadSeq || !c.loaded {
			fail(kerr.NotCoordinator.Code)
			return
		}
		delete(c.busy, id)
		if err != nil {
			fail(errCode(err))
			return
		}
		set(pid)
		c.later(then)
	})
}
