package producers

import (
	"cmp"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
)

// batchesRetained is how many of a producer's latest batches are kept for
// duplicate detection: Kafka's ProducerStateEntry.NUM_BATCHES_TO_RETAIN,
// which matches the client's max.in.flight.requests.per.connection limit of
// 5 for idempotent producers.
const batchesRetained = 5

// noSequence is a batch's base sequence when it has none (Kafka's
// RecordBatch.NO_SEQUENCE).
const noSequence = -1

// batchMeta is what is remembered of one appended batch.
type batchMeta struct {
	firstSeq, lastSeq int32
	baseOffset        int64
	// maxTimestamp is the batch's largest record timestamp as stored (the
	// leader's clock on a LogAppendTime topic), or -1 when not known (a
	// state decoded from version 3 or older, but for its last batch):
	// what Kafka answers a duplicate's LogAppendTime with
	// (BatchMetadata.timestamp).
	maxTimestamp int64
}

// producer is one producer id's state in this partition.
type producer struct {
	epoch int16
	// lastTimestamp is the largest record timestamp of its last appended
	// batch, or the timestamp of its last transaction marker if that came
	// later (Kafka's ProducerStateEntry.lastTimestamp): what expiry is
	// judged by. It comes from the batch, so every replica has the same.
	lastTimestamp int64
	// batches are the latest appended batches of this epoch, oldest first.
	// Empty only for an entry decoded that way (no Record call leaves it so).
	batches []batchMeta
	// txnFirst is the offset of the producer's first batch in its ongoing
	// transaction in this partition, or -1 when none is open (Kafka's
	// ProducerStateEntry.currentTxnFirstOffset).
	txnFirst int64
	// coordEpoch is the coordinator epoch of the producer's last marker,
	// or -1: a marker from an older coordinator is fenced.
	coordEpoch int32
}

// lastSeq is the sequence of the producer's last appended record, or -1.
func (p *producer) lastSeq() int32 {
	if len(p.batches) == 0 {
		return -1
	}
	return p.batches[len(p.batches)-1].lastSeq
}

// State is the idempotent producer state of one partition. The zero value
// is not usable; call New or Decode.
type State struct {
	producers map[int64]*producer
	// aborted lists the aborted transactions, in the order their abort
	// markers were appended (so by LastOffset): Kafka's aborted
	// transaction index, which read_committed fetches are answered from.
	aborted []AbortedTxn
	// open counts the producers with a transaction open, so that a fetch
	// finds the last stable offset without a look at every producer when
	// none is (the usual case).
	open int
}

// AbortedTxn is one aborted transaction of a partition: its producer, the
// offset of its first batch and the offset of its abort marker.
type AbortedTxn struct {
	PID         int64
	FirstOffset int64
	LastOffset  int64
}

// New returns the state of a partition no producer has written to.
func New() *State {
	return &State{producers: make(map[int64]*producer)}
}

// Verdict is what Check decides about a batch.
type Verdict struct {
	// Duplicate means the batch was appended before: answer the Produce
	// request with success and BaseOffset, and append nothing.
	Duplicate bool
	// BaseOffset is the original base offset of a duplicate.
	BaseOffset int64
	// Timestamp is the original's max timestamp (-1 if not known): Kafka
	// answers it as a duplicate's LogAppendTime, whatever the topic's
	// timestamp type (UnifiedLog.append).
	Timestamp int64
	// Err is the kerr value to answer with (compare with ==, or
	// errors.Is), or nil.
	Err error
}

// inSequence reports whether next directly follows last. Sequences wrap from
// MaxInt32 to 0, as Kafka's ProducerAppendInfo.inSequence has it.
func inSequence(last, next int32) bool {
	return int64(next) == int64(last)+1 || (next == 0 && last == 1<<31-1)
}

// Check decides whether a batch from producer pid with the given epoch and
// sequence range may be appended. It does not change the state: call Record
// once the batch has been appended. A batch with pid < 0 is not idempotent
// and always passes.
//
// The rules are Kafka's (UnifiedLog.analyzeAndValidateProducerState, then
// ProducerAppendInfo.checkProducerEpoch and checkSequence):
//   - same epoch and the exact range of one of the last 5 batches: a
//     duplicate, answered with that batch's offset. Duplicates are looked
//     for first, as Kafka does, so a retry never fails on sequence.
//   - an older epoch: INVALID_PRODUCER_EPOCH (a fenced zombie; since Kafka
//     2.7 this replaces PRODUCER_FENCED in Produce responses).
//   - a newer epoch (KIP-360 bump): the sequence restarts at 0, else
//     OUT_OF_ORDER_SEQUENCE_NUMBER.
//   - the same epoch: firstSeq must follow the last appended sequence, else
//     OUT_OF_ORDER_SEQUENCE_NUMBER.
//   - an unknown pid: firstSeq must be 0, else OUT_OF_ORDER_SEQUENCE_NUMBER.
//   - no sequence (firstSeq -1, a coordinator's own batch): only an
//     older epoch is refused.
//     Kafka before 2.5 answered UNKNOWN_PRODUCER_ID here, and Kafka since
//     KIP-360 accepts any sequence for a legacy producer, because its
//     producer state can vanish with retention or DeleteRecords; for
//     transactions-v2 producers it requires 0 with
//     OUT_OF_ORDER_SEQUENCE_NUMBER, which we follow for everyone. Gregor
//     keeps producer state in the replicated state machine and its
//     snapshots, so it is never lost that way, and a non-zero first sequence
//     means an earlier batch never arrived: accepting it would hide that
//     loss.
func (s *State) Check(pid int64, epoch int16, firstSeq, lastSeq int32) Verdict {
	if pid < 0 {
		return Verdict{}
	}
	p, ok := s.producers[pid]
	if firstSeq == noSequence {
		// A coordinator's own transactional batch (TxnOffsetCommit) has no
		// sequence: only a fenced epoch is refused. Clients cannot send
		// one (batch.Validate refuses it).
		if ok && epoch < p.epoch {
			return Verdict{Err: kerr.InvalidProducerEpoch}
		}
		return Verdict{}
	}
	if !ok {
		if firstSeq != 0 {
			return Verdict{Err: kerr.OutOfOrderSequenceNumber}
		}
		return Verdict{}
	}
	if epoch == p.epoch {
		for _, b := range p.batches {
			if b.firstSeq == firstSeq && b.lastSeq == lastSeq {
				return Verdict{Duplicate: true, BaseOffset: b.baseOffset, Timestamp: b.maxTimestamp}
			}
		}
	}
	switch {
	case epoch < p.epoch:
		return Verdict{Err: kerr.InvalidProducerEpoch}
	case epoch > p.epoch:
		if firstSeq != 0 {
			return Verdict{Err: kerr.OutOfOrderSequenceNumber}
		}
	case !inSequence(p.lastSeq(), firstSeq):
		return Verdict{Err: kerr.OutOfOrderSequenceNumber}
	}
	return Verdict{}
}

// Record notes that a batch of producer pid was appended at baseOffset,
// its largest record timestamp being timestamp. A
// new epoch forgets the batches of the old one, as Kafka's
// ProducerStateEntry does. A pid < 0 is ignored. Record does not check the
// batch: call Check first.
func (s *State) Record(pid int64, epoch int16, firstSeq, lastSeq int32, baseOffset, timestamp int64) {
	if pid < 0 {
		return
	}
	p, ok := s.producers[pid]
	if !ok {
		p = &producer{batches: make([]batchMeta, 0, batchesRetained), txnFirst: -1, coordEpoch: -1}
		s.producers[pid] = p
	}
	if epoch != p.epoch {
		p.epoch = epoch
		p.batches = p.batches[:0]
	}
	if len(p.batches) == batchesRetained {
		copy(p.batches, p.batches[1:])
		p.batches = p.batches[:batchesRetained-1]
	}
	p.batches = append(p.batches, batchMeta{firstSeq: firstSeq, lastSeq: lastSeq, baseOffset: baseOffset, maxTimestamp: timestamp})
	p.lastTimestamp = timestamp
}

// Expiry names a producer whose state may be dropped, with the timestamp
// it was judged by.
type Expiry struct {
	PID           int64
	LastTimestamp int64
}

// Expired lists, by pid, at most max producers whose last timestamp is at
// least expiryMs before nowMs. Only a leader calls it, with its clock; what
// it finds is proposed, and every replica then calls Expire.
func (s *State) Expired(nowMs, expiryMs int64, max int) []Expiry {
	var out []Expiry
	for pid, p := range s.producers {
		// A producer with an open transaction is never expired (Kafka's
		// ProducerStateManager.isProducerExpired): its first offset holds
		// the last stable offset back until a marker ends it.
		if nowMs-p.lastTimestamp >= expiryMs && p.txnFirst < 0 {
			out = append(out, Expiry{pid, p.lastTimestamp})
		}
	}
	slices.SortFunc(out, func(a, b Expiry) int { return cmp.Compare(a.PID, b.PID) })
	if len(out) > max {
		out = out[:max]
	}
	return out
}

// Expire drops producer pid's state if its last timestamp is still the one
// the expiry was decided on: a batch appended since (before the expiry
// entry applied) keeps it. It reports whether the state was dropped.
func (s *State) Expire(pid, lastTimestamp int64) bool {
	p, ok := s.producers[pid]
	if !ok || p.lastTimestamp != lastTimestamp || p.txnFirst >= 0 {
		return false
	}
	delete(s.producers, pid)
	return true
}

// Producers returns how many producer ids have state in this partition.
func (s *State) Producers() int { return len(s.producers) }

// Epoch returns the current epoch of producer pid and whether it is known.
func (s *State) Epoch(pid int64) (int16, bool) {
	p, ok := s.producers[pid]
	if !ok {
		return 0, false
	}
	return p.epoch, true
}

// LastBatchOffset returns the base offset of producer pid's last appended
// batch, and false if it has none remembered. The log cleaner keeps that
// batch, so the producer's sequence can be rebuilt from the log.
func (s *State) LastBatchOffset(pid int64) (int64, bool) {
	p, ok := s.producers[pid]
	if !ok || len(p.batches) == 0 {
		return 0, false
	}
	return p.batches[len(p.batches)-1].baseOffset, true
}

// BeginTxn notes that producer pid appended a transactional batch at
// offset: the first one opens its transaction in this partition. Call it
// after Record.
func (s *State) BeginTxn(pid, offset int64) {
	p, ok := s.producers[pid]
	if ok && p.txnFirst < 0 {
		p.txnFirst = offset
		s.open++
	}
}

// Marker decides whether a transaction marker (commit or abort) of
// producer pid at epoch, from a coordinator at coordEpoch, is appended, as
// Kafka's ProducerAppendInfo.appendEndTxnMarker does: a marker of an older
// epoch than the producer's is refused with INVALID_PRODUCER_EPOCH, one
// from an older coordinator than the last marker's with
// TRANSACTION_COORDINATOR_FENCED. Write reports whether it is appended:
// when the producer has a transaction open here, and also when the
// partition has not seen the producer or the marker's epoch (a marker
// that fences: a write of the older epoch that the coordinator verified
// before it aborted, and that applies after the marker, is then refused
// instead of opening a transaction no marker will end). A marker that
// changes nothing is not written, which makes a coordinator's resent
// markers idempotent.
//
// bumped says the coordinator bumped the producer's epoch to end the
// transaction (transactions v2, KIP-890, or a fencing abort): the
// transaction's batches are of an older epoch than the marker's. A
// transaction open here at the marker's own epoch is then a later one,
// begun after this marker's transaction completed, and the marker is a
// late copy (a duplicate or delayed request, a resend): it is refused
// with INVALID_PRODUCER_EPOCH, as Kafka's ProducerAppendInfo refuses a
// transactions-v2 marker whose epoch is not above the producer's while a
// transaction is open. Writing it would end the later transaction with
// the earlier one's outcome, a commit its producer never asked for.
func (s *State) Marker(pid int64, epoch int16, coordEpoch int32, bumped bool) (write bool, err error) {
	p, ok := s.producers[pid]
	if !ok {
		return true, nil
	}
	if epoch < p.epoch || bumped && epoch == p.epoch && p.txnFirst >= 0 {
		return false, kerr.InvalidProducerEpoch
	}
	if coordEpoch < p.coordEpoch {
		return false, kerr.TransactionCoordinatorFenced
	}
	return p.txnFirst >= 0 || epoch > p.epoch, nil
}

// EndTxn applies a marker Marker decided to write, appended at offset
// with timestamp (the marker record's): it ends producer pid's open
// transaction, if any (an aborted one joins the aborted index), and moves
// the producer to the marker's epoch (KIP-890 bumps it; a new epoch
// forgets the old one's batches, as Record does), coordinator epoch and
// timestamp, as Kafka's ProducerAppendInfo.appendEndTxnMarker updates its
// entry (DescribeProducers then shows the marker's time, and expiry is
// judged from it).
func (s *State) EndTxn(pid int64, epoch int16, coordEpoch int32, commit bool, offset, timestamp int64) {
	p, ok := s.producers[pid]
	if !ok {
		p = &producer{batches: make([]batchMeta, 0, batchesRetained), txnFirst: -1, epoch: epoch}
		s.producers[pid] = p
	}
	if p.txnFirst >= 0 {
		if !commit {
			s.aborted = append(s.aborted, AbortedTxn{PID: pid, FirstOffset: p.txnFirst, LastOffset: offset})
		}
		p.txnFirst = -1
		s.open--
	}
	p.coordEpoch, p.lastTimestamp = coordEpoch, timestamp
	if epoch != p.epoch {
		p.epoch = epoch
		p.batches = p.batches[:0]
	}
}

// TxnOpen reports whether producer pid has a transaction open here at
// epoch (a batch of another epoch does not belong to it).
func (s *State) TxnOpen(pid int64, epoch int16) bool {
	p, ok := s.producers[pid]
	return ok && p.txnFirst >= 0 && p.epoch == epoch
}

// HasOpenTxn reports whether producer pid has a transaction open here, at
// any epoch.
func (s *State) HasOpenTxn(pid int64) bool {
	p, ok := s.producers[pid]
	return ok && p.txnFirst >= 0
}

// FirstUnstable returns the first offset of the earliest open transaction,
// and false if none is open: the last stable offset is that offset, or the
// high watermark when there is none.
func (s *State) FirstUnstable() (int64, bool) {
	first, ok := int64(0), false
	if s.open == 0 {
		return first, ok
	}
	for _, p := range s.producers {
		if p.txnFirst >= 0 && (!ok || p.txnFirst < first) {
			first, ok = p.txnFirst, true
		}
	}
	return first, ok
}

// Open lists the open transactions: producer id and first offset, by pid.
func (s *State) Open() []AbortedTxn {
	var out []AbortedTxn
	for pid, p := range s.producers {
		if p.txnFirst >= 0 {
			out = append(out, AbortedTxn{PID: pid, FirstOffset: p.txnFirst, LastOffset: -1})
		}
	}
	slices.SortFunc(out, func(a, b AbortedTxn) int { return cmp.Compare(a.PID, b.PID) })
	return out
}

// Aborted returns the aborted transactions a read_committed fetch of
// [from, to) must be told of: those whose data may lie in that range
// (LastOffset >= from and FirstOffset < to), as Kafka's
// LogSegment.collectAbortedTxns finds them.
func (s *State) Aborted(from, to int64) []AbortedTxn {
	i, _ := slices.BinarySearchFunc(s.aborted, from, func(a AbortedTxn, off int64) int { return cmp.Compare(a.LastOffset, off) })
	var out []AbortedTxn
	for _, a := range s.aborted[i:] {
		if a.FirstOffset < to {
			out = append(out, a)
		}
	}
	return out
}

// ProducerInfo is one producer's state in a partition, as DescribeProducers
// reports it.
type ProducerInfo struct {
	PID              int64
	Epoch            int16
	LastSequence     int32 // -1 when no batch is remembered
	LastTimestamp    int64
	CoordinatorEpoch int32 // of its last marker, or -1
	TxnStartOffset   int64 // first offset of its open transaction, or -1
}

// Describe lists every producer with state here, by pid.
func (s *State) Describe() []ProducerInfo {
	out := make([]ProducerInfo, 0, len(s.producers))
	for pid, p := range s.producers {
		out = append(out, ProducerInfo{PID: pid, Epoch: p.epoch, LastSequence: p.lastSeq(), LastTimestamp: p.lastTimestamp,
			CoordinatorEpoch: p.coordEpoch, TxnStartOffset: p.txnFirst})
	}
	slices.SortFunc(out, func(a, b ProducerInfo) int { return cmp.Compare(a.PID, b.PID) })
	return out
}
