package engine

import (
	"encoding/binary"
	"errors"

	"github.com/gregor-streaming/gregor/engine/batch"
	"github.com/gregor-streaming/gregor/engine/producers"
	"github.com/gregor-streaming/gregor/engine/segment"
	"github.com/twmb/franz-go/pkg/kerr"
)

// Log compaction (cleanup.policy=compact): the latest record of every key
// is kept, older ones go, tombstones (a key with a null value) go after
// delete.retention.ms, aborted transactional records go.
//
// The decision is replicated, its execution is local. The leader decides
// when and what to clean and proposes a raft entry (opCompact) naming a
// step: the offsets [from, to) to clean now, the round's dirty section
// [dirtyFrom, mapTo) whose keys decide what is superseded, the leader's
// clock and the topic's delete.retention.ms. Every replica applies the
// step to its own segments with a function of the entry and of replicated
// state only (its log, which holds the same batches at the same offsets on
// every replica, and the producer state: the aborted transactions and each
// producer's last batch), so every replica keeps the same records, in
// byte-identical batches, whatever its own segment boundaries.
//
// A round cleans [log start, mapTo): mapTo is the end of the leader's
// last closed segment that is stable (below the last stable offset: no
// open transaction's records), older than min.compaction.lag.ms, and
// within CleanerRoundBytes of dirtyFrom (the end of the previous round,
// p.cleanedTo, replicated and in the checkpoint). A round starts when the
// dirty share of the closed segments reaches min.cleanable.dirty.ratio or
// the oldest dirty record passes max.compaction.lag.ms. The leader walks it
// in steps of its closed segments up to CleanerStepBytes, one entry each,
// so that no apply rewrites more than about that much: apply runs on the
// broker's raft loop. The last step moves cleanedTo to mapTo.
//
// What a step keeps of a batch in [from, to) (cleanBatch):
//   - a control batch (transaction marker): kept whole;
//   - a record of an aborted transaction: dropped;
//   - a record with a key that a later record in [dirtyFrom, mapTo) has:
//     dropped (superseded);
//   - a tombstone: kept, and its batch stamped with a delete horizon (now
//     + delete.retention.ms, KIP-534) the first time; dropped by a later
//     step whose clock is past the horizon;
//   - a batch left with no record is dropped, unless it is the last batch
//     of its producer (the producer's sequence must be rebuildable from
//     the log) or ends at to-1 (segments keep their end): then it stays as
//     Kafka's empty batch, a header without records (KAFKA-5443), which
//     clients step over.
//
// Batches keep their offsets, so a compacted log has gaps: a fetch in a
// gap answers from the next batch, as Kafka does. Nothing in the active
// segment is touched: a replica whose active segment starts below the
// step's end rolls it first (its segment boundaries are its own). Markers
// and the aborted-transaction index are never removed (Kafka removes
// markers once their transaction's data is gone; here they cost one small
// batch per transaction and partition). Internal topics are not compacted:
// their coordinators replay them whole.

// compactStep is the body of an opCompact entry.
type compactStep struct {
	from, to          int64
	dirtyFrom, mapTo  int64
	nowMs             int64
	deleteRetentionMs int64
}

var errBadCompact = errors.New("engine: corrupt compaction entry")

// errStopScan ends a scan of the log early.
var errStopScan = errors.New("engine: scan stopped")

func (s compactStep) encode() []byte {
	b := binary.AppendVarint(nil, s.from)
	b = binary.AppendVarint(b, s.to)
	b = binary.AppendVarint(b, s.dirtyFrom)
	b = binary.AppendVarint(b, s.mapTo)
	b = binary.AppendVarint(b, s.nowMs)
	return binary.AppendVarint(b, s.deleteRetentionMs)
}

func decodeCompactStep(b []byte) (compactStep, error) {
	r := &byteReader{b: b}
	s := compactStep{from: r.varint(), to: r.varint(), dirtyFrom: r.varint(), mapTo: r.varint(), nowMs: r.varint(), deleteRetentionMs: r.varint()}
	if r.err != nil || len(r.b) != 0 || s.from < 0 || s.from >= s.to || s.dirtyFrom > s.mapTo || s.to > s.mapTo || s.deleteRetentionMs < 0 {
		return compactStep{}, errBadCompact
	}
	return s, nil
}

// offsetMap is the latest offset of every key in a round's dirty section,
// cached by each replica for the round's steps.
type offsetMap struct {
	from, to int64
	latest   map[string]int64
}

// cleanRound is the leader's progress through a round.
type cleanRound struct {
	dirtyFrom, mapTo, next int64
}

// applyCompact applies one step.
func (p *partition) applyCompact(body []byte) produceResult {
	st, err := decodeCompactStep(body)
	if err != nil {
		return produceResult{err: err}
	}
	from := max(st.from, p.log.StartOffset())
	if st.mapTo > p.log.EndOffset() || from >= st.to {
		return produceResult{base: p.cleanedTo}
	}
	// A step planned from a leader's state that lagged its log (a new
	// leader that had not applied the previous steps yet) may end where
	// an applied step has since dropped the batch ending at to-1: to is
	// then inside a frame, on every replica alike (frames are the same
	// everywhere), and the step is stale: skip it. Regression: seed 71
	// (TestRegression_StaleCompactStep), whose replicas failed the
	// rewrite and retried it forever.
	if ok, err := p.log.EndsBatch(st.to); err != nil {
		p.storageFailed(err, p.log.EndOffset(), p.applied)
		return produceResult{err: kerr.KafkaStorageError}
	} else if !ok {
		return produceResult{base: p.cleanedTo}
	}
	if err := p.checkpointBefore(); err != nil {
		return produceResult{err: err}
	}
	if err := p.cleanStep(st, from); err != nil {
		p.storageFailed(err, p.log.EndOffset(), p.applied)
		return produceResult{err: kerr.KafkaStorageError}
	}
	if st.to == st.mapTo {
		p.cleanedTo = max(p.cleanedTo, st.mapTo)
		p.cleanMap = nil
	}
	// The entry stores no batch whose tag would show it applied: the
	// checkpoint says so (as for DeleteRecords).
	if _, err := p.Sync(); err != nil || p.storageErr != nil {
		return produceResult{err: kerr.KafkaStorageError}
	}
	return produceResult{base: p.cleanedTo}
}

// cleanStep rewrites [from, st.to) of the local segments.
func (p *partition) cleanStep(st compactStep, from int64) error {
	if segs := p.log.Segments(); segs[len(segs)-1].Base < st.to {
		if err := p.log.Roll(); err != nil {
			return err
		}
	}
	latest, err := p.offsetMap(st.dirtyFrom, st.mapTo)
	if err != nil {
		return err
	}
	aborted := p.producers.Aborted(from, st.to)
	return p.log.Rewrite(from, st.to, func(b []byte, _ segment.BatchMeta) ([]byte, int64, bool, error) {
		return p.cleanBatch(b, st, latest, aborted)
	})
}

// offsetMap builds (or reuses) the latest offset of every key in
// [dirtyFrom, mapTo), aborted records left out (Kafka's OffsetMap).
func (p *partition) offsetMap(dirtyFrom, mapTo int64) (map[string]int64, error) {
	if m := p.cleanMap; m != nil && m.from == dirtyFrom && m.to == mapTo {
		return m.latest, nil
	}
	latest := map[string]int64{}
	from := max(dirtyFrom, p.log.StartOffset())
	if from < mapTo {
		aborted := p.producers.Aborted(from, mapTo)
		err := p.log.Batches(from, func(b []byte, meta segment.BatchMeta) error {
			if meta.BaseOffset >= mapTo {
				return errStopScan
			}
			h, err := batch.ReadHeader(b)
			if err != nil || h.Control() || (h.Transactional() && inAborted(aborted, h.ProducerID, h.BaseOffset)) {
				return nil
			}
			recs, err := batch.Records(b)
			if err != nil {
				return nil // kept as it is by the cleaner too
			}
			for _, r := range recs {
				if r.Key != nil && r.Offset >= from && r.Offset < mapTo {
					latest[string(r.Key)] = r.Offset
				}
			}
			return nil
		})
		if err != nil && err != errStopScan {
			return nil, err
		}
	}
	p.cleanMap = &offsetMap{from: dirtyFrom, to: mapTo, latest: latest}
	return latest, nil
}

// inAborted reports whether producer pid's batch at offset belongs to one
// of the aborted transactions.
func inAborted(aborted []producers.AbortedTxn, pid, offset int64) bool {
	for _, a := range aborted {
		if a.PID == pid && a.FirstOffset <= offset && offset <= a.LastOffset {
			return true
		}
	}
	return false
}

// cleanBatch decides what a step keeps of one batch (see the top of the
// file): the batch as it is, a rebuilt one, or nothing.
func (p *partition) cleanBatch(b []byte, st compactStep, latest map[string]int64, aborted []producers.AbortedTxn) ([]byte, int64, bool, error) {
	h, err := batch.ReadHeader(b)
	if err != nil || h.Control() {
		return b, h.MaxTimestamp, true, nil
	}
	recs, err := batch.Records(b)
	if err != nil || len(recs) == 0 {
		return b, h.MaxTimestamp, true, nil // never drop what cannot be read
	}
	isAborted := h.Transactional() && inAborted(aborted, h.ProducerID, h.BaseOffset)
	keep := make([]batch.DecodedRecord, 0, len(recs))
	for _, r := range recs {
		if isAborted {
			continue
		}
		if r.Key != nil {
			if lo, ok := latest[string(r.Key)]; ok && p.superseded(lo, r.Offset) {
				continue
			}
			if r.Value == nil && h.HasDeleteHorizon() && st.nowMs > h.FirstTimestamp {
				continue // a tombstone past its horizon
			}
		}
		keep = append(keep, r)
	}
	if len(keep) == 0 {
		last, ok := p.producers.LastBatchOffset(h.ProducerID)
		if h.LastOffset() != st.to-1 && !(h.Idempotent() && ok && last == h.BaseOffset) {
			return nil, 0, false, nil
		}
		// Kept empty (KAFKA-5443): its header holds the offsets and the
		// producer's sequence.
	}
	horizon := int64(-1)
	if !h.HasDeleteHorizon() {
		for _, r := range keep {
			if r.Key != nil && r.Value == nil {
				horizon = st.nowMs + st.deleteRetentionMs
				break
			}
		}
	}
	if len(keep) == len(recs) && horizon < 0 {
		return b, h.MaxTimestamp, true, nil
	}
	out, err := batch.Keep(b, h, keep, horizon)
	if err != nil {
		return nil, 0, false, err
	}
	oh, _ := batch.ReadHeader(out)
	return out, oh.MaxTimestamp, true, nil
}

// superseded reports whether a record at offset is older than its key's
// latest record at latest. Unsafe.CompactLatest also drops the latest
// one, a cleaner that loses every key's current value.
func (p *partition) superseded(latest, offset int64) bool {
	if p.b.cfg.Unsafe.CompactLatest {
		return latest >= offset
	}
	return latest > offset
}

// proposeCompact proposes one step; fn gets the result once it applies
// here.
func (p *partition) proposeCompact(st compactStep, fn func(produceResult)) (uint64, bool) {
	return p.proposeOp(opCompact, st.encode(), fn)
}

// maybeCompact runs on the leader's ticks: it proposes the next step of
// the round in progress, or starts a round when the log is dirty enough.
func (p *partition) maybeCompact() {
	now := p.b.nowMillis()
	if p.lost || p.compacting || p.life != nil || now < p.nextCompactCheck {
		return
	}
	pol := p.b.topicPolicy(p.topic)
	if !pol.compacts {
		p.round = nil
		return
	}
	if p.round == nil {
		p.nextCompactCheck = now + p.b.cfg.CleanerBackoffMs
		if p.round = p.newRound(now, pol); p.round == nil {
			return
		}
	}
	r := p.round
	from := max(r.next, p.log.StartOffset())
	to := r.mapTo
	var size int64
	for _, s := range p.log.Segments() {
		if s.End <= from || s.Base >= r.mapTo {
			continue
		}
		size += s.Size
		if size >= p.b.cfg.CleanerStepBytes && s.End < r.mapTo {
			to = s.End
			break
		}
	}
	if from >= to {
		p.round = nil
		return
	}
	st := compactStep{from: from, to: to, dirtyFrom: r.dirtyFrom, mapTo: r.mapTo, nowMs: now, deleteRetentionMs: pol.deleteRetentionMs}
	term := p.term
	if _, ok := p.proposeCompact(st, func(res produceResult) {
		p.compacting = false
		if res.err != nil || p.round != r || p.term != term {
			p.round = nil
			return
		}
		r.next = to
		if to >= r.mapTo {
			p.round = nil
		}
	}); ok {
		p.compacting = true
	}
}

// newRound decides whether to clean now and what: nil if not.
func (p *partition) newRound(now int64, pol *topicPolicy) *cleanRound {
	segs := p.log.Segments()
	closed := segs[:len(segs)-1]
	dirtyFrom := max(p.cleanedTo, p.startOffset())
	stable := p.log.EndOffset()
	if first, ok := p.producers.FirstUnstable(); ok {
		stable = first
	}
	var cleanBytes, dirtyBytes int64
	mapTo := int64(-1)
	oldestDirty := int64(-1)
	for _, s := range closed {
		if s.End <= dirtyFrom {
			cleanBytes += s.Size
			continue
		}
		if s.End > stable || s.MaxTimestamp > now-pol.minCompactionLagMs || (mapTo >= 0 && dirtyBytes+s.Size > p.b.cfg.CleanerRoundBytes) {
			break
		}
		if oldestDirty < 0 {
			oldestDirty = s.MaxTimestamp
		}
		dirtyBytes += s.Size
		mapTo = s.End
	}
	if mapTo <= dirtyFrom {
		return nil
	}
	ratio := float64(dirtyBytes) / float64(max(1, cleanBytes+dirtyBytes))
	overdue := pol.maxCompactionLagMs < now && oldestDirty < now-pol.maxCompactionLagMs
	if ratio < pol.minCleanableDirtyRatio && !overdue {
		return nil
	}
	return &cleanRound{dirtyFrom: dirtyFrom, mapTo: mapTo, next: p.log.StartOffset()}
}
