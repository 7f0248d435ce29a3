package engine

import (
	"encoding/binary"
	"errors"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
)

// The log start offset clients see. It starts at the segments' first
// offset and moves forward only, by a raft entry of the partition
// (opDeleteRecords) that carries the new start the leader decided
// (DeleteRecords, 21_delete_records.go, or retention below): every
// replica applies the same
// move, drops the segments wholly below it, and makes it durable at once
// (a checkpoint in the apply), since the entry stores no batch whose tag
// would say it was applied. Records below it are gone for clients: Fetch
// is OFFSET_OUT_OF_RANGE there and ListOffsets' earliest is it. Producer
// state and leader epochs live in the checkpoint, so they outlive the
// batches they were built from.

// startOffset is the log start offset clients see.
func (p *partition) startOffset() int64 { return max(p.logStart, p.log.StartOffset()) }

var errBadDeleteRecords = errors.New("engine: corrupt delete-records entry")

// checkpointBefore writes the checkpoint as of the entry before the one
// applying, before that entry changes the segments without appending to
// them (DeleteRecords, a compaction step). Recovery rebuilds producer
// state from the checkpoint and the batches after its end offset, and
// re-applies only entries past the last batch's tag: a crash inside the
// change, with an older checkpoint, would rebuild from batches the change
// had already dropped (an aborted transaction's, a producer's older
// ones), or find the segments no longer reaching the checkpoint's end.
// With this checkpoint the change's segments lie below its end offset,
// and the entry applies again (both changes are idempotent).
func (p *partition) checkpointBefore() error {
	p.applied--
	_, _ = p.Sync()
	p.applied++
	if p.storageErr != nil {
		return kerr.KafkaStorageError
	}
	return nil
}

// applyDeleteRecords moves the log start to the entry's offset (never
// back, never past the end); the result's base is the start after it.
func (p *partition) applyDeleteRecords(body []byte) produceResult {
	off, n := binary.Varint(body)
	if n <= 0 || n != len(body) || off < 0 {
		return produceResult{err: errBadDeleteRecords}
	}
	off = min(off, p.log.EndOffset())
	if off <= p.startOffset() {
		return produceResult{base: p.startOffset()}
	}
	if err := p.checkpointBefore(); err != nil {
		return produceResult{err: err}
	}
	p.logStart = off
	if err := p.log.TruncatePrefix(off); err != nil {
		p.storageFailed(err, p.log.EndOffset(), p.applied)
		return produceResult{err: kerr.KafkaStorageError}
	}
	if _, err := p.Sync(); err != nil || p.storageErr != nil {
		return produceResult{err: kerr.KafkaStorageError}
	}
	return produceResult{base: p.logStart}
}

// proposeDeleteRecords proposes moving the log start to offset; fn gets
// the start once the entry applies here, or the error.
func (p *partition) proposeDeleteRecords(offset int64, fn func(produceResult)) (uint64, bool) {
	return p.proposeOp(opDeleteRecords, binary.AppendVarint(nil, offset), fn)
}

// Retention (Kafka's retention.ms and retention.bytes, for topics whose
// cleanup.policy includes delete). Time never enters Apply: the leader
// looks every RetentionCheckIntervalMs at its segments, oldest first, and
// finds the closed ones to drop: a segment whose newest batch timestamp is
// older than retention.ms, or one without which the log is still at least
// retention.bytes. It proposes the first offset it keeps as the new start
// (the same entry as DeleteRecords), so every replica drops the same
// records whatever its own segment boundaries. The active segment is
// never dropped.

// maybeRetain runs on the leader's ticks.
func (p *partition) maybeRetain() {
	now := p.b.nowMillis()
	if p.lost || p.retaining || p.life != nil || now < p.nextRetentionCheck {
		return
	}
	p.nextRetentionCheck = now + p.b.cfg.RetentionCheckIntervalMs
	target, more := p.retentionTarget(now)
	if target <= p.startOffset() {
		return
	}
	if more {
		p.nextRetentionCheck = now // the rest at the next tick
	}
	if _, ok := p.proposeDeleteRecords(target, func(produceResult) { p.retaining = false }); ok {
		p.retaining = true
	}
}

// retentionSegmentsPerStep bounds the segments one retention entry drops:
// every replica removes their files in apply, on the broker's raft loop
// (10,000 segments take about 2 s on the project's disk:
// BenchmarkRetention10k). The rest goes in the next entries.
const retentionSegmentsPerStep = 500

// retentionTarget is the first offset retention keeps now, and whether
// more is due than one step drops.
func (p *partition) retentionTarget(now int64) (int64, bool) {
	pol := p.b.topicPolicy(p.topic)
	if !pol.deletes {
		return 0, false
	}
	retentionMs, retentionBytes := pol.retentionMs, pol.retentionBytes
	segs := p.log.Segments()
	var total int64
	for _, s := range segs {
		total += s.Size
	}
	target := p.startOffset()
	for i, s := range segs[:len(segs)-1] {
		byTime := retentionMs >= 0 && s.MaxTimestamp < now-retentionMs
		bySize := retentionBytes >= 0 && total-s.Size >= retentionBytes
		if !byTime && !bySize {
			break
		}
		if i == retentionSegmentsPerStep {
			return target, true
		}
		total -= s.Size
		target = max(target, s.End)
	}
	return target, false
}

// configInt is a topic config's integer value, or def when unset (the
// catalog validated what is set).
func configInt(cfgs map[string]string, name string, def int64) int64 {
	if v, ok := cfgs[name]; ok {
		if n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64); err == nil {
			return n
		}
	}
	return def
}
