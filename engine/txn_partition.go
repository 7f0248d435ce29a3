package engine

import (
	"encoding/binary"
	"errors"

	"github.com/gregor-streaming/gregor/engine/batch"
	"github.com/gregor-streaming/gregor/engine/segment"
	"github.com/twmb/franz-go/pkg/kerr"
)

// Transactions, the partition side (KIP-98). A transactional batch is
// appended like any idempotent one and opens its producer's transaction in
// the partition (producers.State.BeginTxn); a transaction marker, a
// control batch of one record, ends it. The marker is a raft entry of its
// own (opTxnMarker) naming the producer, its epoch, commit or abort, the
// coordinator epoch and the leader's clock for its timestamp: every
// replica builds the same batch from it at apply and gives it the next
// offset. The last stable offset is the first offset of the earliest open
// transaction, or the high watermark; the aborted transactions are
// remembered for read_committed fetches. All of it is producer state, so
// it is in every checkpoint and state transfer.
//
// A marker for a producer with no transaction open here appends nothing
// and succeeds: a coordinator (or its successor) may send a marker again.
// One of an epoch older than the producer's is refused with
// INVALID_PRODUCER_EPOCH, one from a coordinator older than the last
// marker's with TRANSACTION_COORDINATOR_FENCED, as Kafka's
// ProducerAppendInfo does; so is one whose epoch the coordinator bumped
// for the end (txnMarker.bumped) while a transaction of that same epoch
// is open here: that is the producer's next transaction, and the marker a
// late copy of the previous one's.

// Control record types (the record key's second int16).
const (
	controlAbort  int16 = 0
	controlCommit int16 = 1
)

// txnMarker is the body of an opTxnMarker entry.
type txnMarker struct {
	pid         int64
	epoch       int16
	commit      bool
	coordEpoch  int32
	timestampMs int64
	// bumped: the coordinator bumped the producer epoch to end this
	// transaction (transactions v2, a fencing abort), so its batches are
	// of an older epoch than the marker's, and a transaction open at the
	// marker's epoch is a later one, which the marker must not end
	// (producers.State.Marker; TestRegression_LateMarkerEndsNextTxn).
	// Encoded as a trailing byte 1, absent when false, so that entries
	// written before it read as they were.
	bumped bool
}

var errBadMarker = errors.New("engine: corrupt transaction marker entry")

func (m txnMarker) encode() []byte {
	b := binary.AppendVarint(nil, m.pid)
	b = binary.AppendVarint(b, int64(m.epoch))
	c := byte(0)
	if m.commit {
		c = 1
	}
	b = append(b, c)
	b = binary.AppendVarint(b, int64(m.coordEpoch))
	b = binary.AppendVarint(b, m.timestampMs)
	if m.bumped {
		b = append(b, 1)
	}
	return b
}

func decodeMarker(b []byte) (txnMarker, error) {
	r := &byteReader{b: b}
	var m txnMarker
	m.pid = r.varint()
	m.epoch = int16(r.varint())
	c := r.bytes(1)
	m.coordEpoch = int32(r.varint())
	m.timestampMs = r.varint()
	if r.err == nil && len(r.b) == 1 && r.b[0] == 1 {
		m.bumped, r.b = true, r.b[1:]
	}
	if r.err != nil || len(r.b) != 0 || len(c) != 1 || c[0] > 1 || m.pid < 0 {
		return txnMarker{}, errBadMarker
	}
	m.commit = c[0] == 1
	return m, nil
}

// controlBatch is the marker as Kafka writes it: a transactional control
// batch of the producer at the marker's epoch, one record whose key is
// (version 0, type) and whose value is (version 0, coordinator epoch).
func (m txnMarker) controlBatch() []byte {
	typ := controlAbort
	if m.commit {
		typ = controlCommit
	}
	key := binary.BigEndian.AppendUint16(binary.BigEndian.AppendUint16(nil, 0), uint16(typ))
	val := binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint16(nil, 0), uint32(m.coordEpoch))
	return batch.Build(batch.BuildOptions{
		ProducerID: m.pid, ProducerEpoch: m.epoch, BaseSequence: -1,
		FirstTimestamp: m.timestampMs, Transactional: true, Control: true,
	}, []batch.Record{{Key: key, Value: val}})
}

// controlType reads a control batch's record: commit (true) or abort and
// the coordinator epoch, and false if the batch is not a well-formed
// marker.
func controlType(b []byte) (commit bool, coordEpoch int32, ok bool) {
	recs, err := batch.Records(b)
	if err != nil || len(recs) != 1 || len(recs[0].Key) < 4 || len(recs[0].Value) < 6 {
		return false, 0, false
	}
	coordEpoch = int32(binary.BigEndian.Uint32(recs[0].Value[2:]))
	switch int16(binary.BigEndian.Uint16(recs[0].Key[2:])) {
	case controlCommit:
		return true, coordEpoch, true
	case controlAbort:
		return false, coordEpoch, true
	}
	return false, 0, false
}

// proposeMarker proposes a marker on this leader; fn gets the marker's
// offset (-1 when nothing was open) or the error.
func (p *partition) proposeMarker(m txnMarker, fn func(produceResult)) (uint64, bool) {
	if p.b.cfg.Unsafe.LateMarker {
		m.bumped = false
	}
	if v := p.verifying[m.pid]; v != nil && !v.add && !p.producers.HasOpenTxn(m.pid) {
		if p.markedWhileVerifying == nil {
			p.markedWhileVerifying = map[int64]bool{}
		}
		p.markedWhileVerifying[m.pid] = true
	}
	return p.proposeOp(opTxnMarker, m.encode(), fn)
}

// applyMarker appends a marker entry's control batch if producers.Marker
// decides it changes something here.
func (p *partition) applyMarker(body []byte, index uint64, epoch int32) produceResult {
	m, err := decodeMarker(body)
	if err != nil {
		return produceResult{err: err}
	}
	write, err := p.producers.Marker(m.pid, m.epoch, m.coordEpoch, m.bumped)
	if err != nil {
		return produceResult{err: err}
	}
	if !write {
		return produceResult{base: -1}
	}
	b := m.controlBatch()
	off := p.log.EndOffset()
	batch.SetBaseOffset(b, off)
	batch.SetPartitionLeaderEpoch(b, epoch)
	h, err := batch.ReadHeader(b)
	if err != nil {
		return produceResult{err: err}
	}
	meta := segment.BatchMeta{BaseOffset: off, LastOffset: off, MaxTimestamp: h.MaxTimestamp, Tag: index}
	if err := p.log.Append(b, meta); err != nil {
		p.storageFailed(err, off, index)
		return produceResult{err: kerr.KafkaStorageError}
	}
	p.noteBatch(b, h, off)
	if p.life != nil {
		p.life.applyBatches([][]byte{b}) // a group coordinator's staged offsets
	}
	return produceResult{base: off}
}

// noteMarker ends the transaction a stored marker ends (apply and
// recovery). A stored marker passed applyMarker's checks when it was
// written, bumped or not; the control batch does not say which, and
// without it the checks only accept more.
func (p *partition) noteMarker(b []byte, h batch.Header, base int64) {
	commit, coordEpoch, ok := controlType(b)
	if !ok || !h.Idempotent() {
		return
	}
	if write, err := p.producers.Marker(h.ProducerID, h.ProducerEpoch, coordEpoch, false); write && err == nil {
		p.producers.EndTxn(h.ProducerID, h.ProducerEpoch, coordEpoch, commit, base, h.MaxTimestamp)
	}
}

// lastStable is the last stable offset: the first offset of the earliest
// open transaction, or the high watermark.
func (p *partition) lastStable() int64 {
	if first, ok := p.producers.FirstUnstable(); ok {
		return first
	}
	return p.highWatermark()
}

// serveMarker writes a marker a transaction coordinator on another broker
// sent (peer op opWriteMarker); fn gets the Kafka error code once it has
// applied, or at once when this replica cannot write it.
func (p *partition) serveMarker(body []byte, fn func(code int16)) {
	m, err := decodeMarker(body)
	switch {
	case err != nil:
		fn(kerr.CorruptMessage.Code)
		return
	case p.storageErr != nil || p.b.host.Stalled() != nil:
		fn(kerr.KafkaStorageError.Code)
		return
	case !p.leader || p.lost:
		fn(kerr.NotLeaderForPartition.Code)
		return
	}
	p.proposeMarker(m, func(res produceResult) { fn(errCode(res.err)) })
}

// whenVerified runs then(0) at once, unless h is a producer's first
// transactional batch here at its epoch, from a request naming its
// transactional id (txnID): its coordinator must first confirm that the
// transaction holds the partition, or with add make it hold it (KIP-890's
// verification and transactions v2; txn_coordinator.go), and then gets
// the answer. The producer's later batches wait behind a verification in
// flight, so that their sequences keep their order: those of the same
// epoch share its answer, the others are looked at again after it (under
// transactions v2 the next transaction's first write, at the bumped
// epoch, may come while the previous one's marker is still on its way,
// and must not join the transaction that marker ends). A marker of the
// producer proposed meanwhile, while it has no transaction open here,
// makes the answer stale (INVALID_TXN_STATE): the transaction it
// confirmed may have ended here (an abort whose marker found nothing
// open), and a batch appended after that marker would open a transaction
// nobody ends (TestRegression_VerifiedBatchAfterFencingMarker). A marker
// that ends an older transaction open here is the previous transaction's
// (transactions v2): the answer stands. So does every answer to an add
// (Produce v12+, transactions v2): there every end of a transaction
// bumps the epoch (EndTxn v5, timeouts, fencing), so a marker that ends
// the confirmed transaction fences the batch at apply by its epoch, and a
// marker of the epoch verified is the previous transaction's, which the
// coordinator held the add back for (it answers once that transaction
// completed). Flagging those failed franz-go's TestTxnEtl: its next
// transaction's first writes got INVALID_TXN_STATE.
func (p *partition) whenVerified(txnID *string, h batch.Header, topic string, add bool, then func(code int16)) {
	pid := h.ProducerID
	if inFlight := p.verifying[pid]; inFlight != nil {
		inFlight.queue = append(inFlight.queue, verifyWaiter{epoch: h.ProducerEpoch, then: then,
			again: func() { p.whenVerified(txnID, h, topic, add, then) }})
		return
	}
	if !h.Transactional() || txnID == nil || p.producers.TxnOpen(pid, h.ProducerEpoch) {
		then(0)
		return
	}
	if p.verifying == nil {
		p.verifying = map[int64]*verification{}
	}
	inFlight := &verification{add: add}
	p.verifying[pid] = inFlight
	v := txnVerify{id: *txnID, pid: pid, epoch: h.ProducerEpoch, topic: topic, part: p.index, add: add}
	p.b.verifyTxn(v, func(code int16) {
		queue := inFlight.queue
		delete(p.verifying, pid)
		if p.markedWhileVerifying[pid] && code == 0 {
			code = kerr.InvalidTxnState.Code
		}
		delete(p.markedWhileVerifying, pid)
		then(code)
		for _, w := range queue {
			if w.epoch == v.epoch {
				w.then(code)
			} else {
				w.again()
			}
		}
	})
}

// verification is a producer's transaction verification in flight.
type verification struct {
	add   bool // it also adds the partition (transactions v2)
	queue []verifyWaiter
}

// verifyWaiter is a produce waiting behind a verification in flight.
type verifyWaiter struct {
	epoch int16
	then  func(code int16)
	again func() // look again, for another epoch than the one verified
}

// produceVerifyCode is what a Produce request of version v answers for a
// failed verification, as Kafka's ReplicaManager maps it: a fenced epoch
// is INVALID_PRODUCER_EPOCH; TRANSACTION_ABORTABLE only from v11 (before,
// INVALID_TXN_STATE); a coordinator that could not answer (moving,
// loading, busy ending the transaction) NOT_ENOUGH_REPLICAS, which every
// client retries without refreshing metadata.
func produceVerifyCode(code, v int16) int16 {
	switch code {
	case kerr.ProducerFenced.Code:
		return kerr.InvalidProducerEpoch.Code
	case kerr.TransactionAbortable.Code:
		if v < 11 {
			return kerr.InvalidTxnState.Code
		}
	case kerr.ConcurrentTransactions.Code, kerr.CoordinatorNotAvailable.Code, kerr.CoordinatorLoadInProgress.Code,
		kerr.NotCoordinator.Code, kerr.RequestTimedOut.Code, kerr.NetworkException.Code:
		return kerr.NotEnoughReplicas.Code
	}
	return code
}
