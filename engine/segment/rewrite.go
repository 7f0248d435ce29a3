package segment

import (
	"fmt"
	"path"
	"strings"

	"github.com/gregor-streaming/gregor/raftlog/vfs"
)

// Rewriting sealed segments (log compaction).
//
// Rewrite replaces the sealed segments that hold the offsets [from, to)
// by one segment holding what the caller keeps of their batches. Batches
// keep their offsets, so a rewritten segment has gaps: a frame then
// covers the offsets from the end of the frame before it to its batch's
// last offset (its BaseOffset is below the batch's own base offset), and
// the frame sequence of the log stays contiguous. A caller never drops
// the last batch of what it rewrites, so a segment still ends where it
// did and the segment after it still follows it.
//
// The swap survives a crash at any point (Kafka's .cleaned and .swap
// files): the new segment is written as B.log.cleaned, B.index.cleaned and
// B.timeindex.cleaned (B the first old segment's base) and synced; the
// index files and then the log file are renamed to .swap and the directory
// synced, which commits the rewrite; the old segments are removed and the
// .swap files renamed over their final names. Recovery (finishSwaps) drops
// .cleaned files and an uncommitted .swap (no B.log.swap), and completes a
// committed one: the old segments inside its offsets go, the .swap files
// become the segment.

const (
	extCleaned = ".cleaned"
	extSwap    = ".swap"
)

// Roll seals the active segment if it holds any batch and starts a new one
// at EndOffset, so that every batch appended so far lies in a sealed
// segment. Like Append, it is durable after Sync.
func (l *Log) Roll() error {
	if err := l.usable(); err != nil {
		return err
	}
	if s := l.segs[len(l.segs)-1]; s.size == 0 {
		return nil
	}
	return l.roll()
}

// RewriteFunc decides what a rewrite keeps of one batch: the batch as it
// is, another batch with the same base offset field and the same last
// offset (maxTs its largest timestamp), or nothing (keep false). batch is
// only valid during the call.
type RewriteFunc func(batch []byte, meta BatchMeta) (out []byte, maxTs int64, keep bool, err error)

// Rewrite passes every batch of [from, to) to fn and replaces the segments
// holding them by one segment with the batches fn keeps; the batches of
// those segments outside [from, to) are kept as they are. from and to must
// be batch boundaries (the base offset of a batch or of a covered gap)
// with to at most the active segment's base: Roll first. fn must keep the
// batch that ends at to-1. The rewrite is durable when Rewrite returns.
func (l *Log) Rewrite(from, to int64, fn RewriteFunc) error {
	if err := l.usable(); err != nil {
		return err
	}
	active := l.segs[len(l.segs)-1]
	if from < l.StartOffset() || from >= to || to > active.base {
		return fmt.Errorf("segment: rewrite [%d, %d): log holds [%d, %d) with the active segment at %d", from, to, l.StartOffset(), l.EndOffset(), active.base)
	}
	first, last := l.segmentFor(from), l.segmentFor(to-1)
	olds := l.segs[first : last+1]
	base, end := olds[0].base, olds[len(olds)-1].end

	w := rewriter{l: l, base: base, next: base}
	if err := w.create(); err != nil {
		return l.fail(err)
	}
	for _, s := range olds {
		_, err := l.scanSegment(s, 0, s.base, func(batch []byte, meta BatchMeta) (bool, error) {
			if meta.LastOffset < from || meta.BaseOffset >= to {
				return false, w.add(batch, meta)
			}
			out, maxTs, keep, err := fn(batch, meta)
			if err != nil || !keep {
				return err != nil, err
			}
			if len(out) < batchBytesMin || len(out) > frameBatchBytesMax || beUint64(out) != beUint64(batch) {
				return true, fmt.Errorf("segment: rewrite of batch at %d changed its base offset", meta.BaseOffset)
			}
			meta.MaxTimestamp = maxTs
			return false, w.add(out, meta)
		})
		if err != nil {
			w.abort()
			return err
		}
	}
	if w.next != end {
		w.abort()
		return fmt.Errorf("segment: rewrite of [%d, %d) ends at %d: the batch ending at %d must be kept", base, end, w.next, end-1)
	}
	if err := w.finish(); err != nil {
		w.abort()
		return l.fail(err)
	}
	// Commit: .cleaned becomes .swap, the log file last.
	for _, ext := range []string{extIndex, extTimeIndex, extLog} {
		if err := l.fs.Rename(l.file(base, ext)+extCleaned, l.file(base, ext)+extSwap); err != nil {
			return l.fail(fmt.Errorf("segment: rewrite: %w", err))
		}
	}
	if err := l.fs.SyncDir(l.dir); err != nil {
		return l.fail(fmt.Errorf("segment: rewrite: sync dir: %w", err))
	}
	for _, s := range olds {
		s.close()
	}
	if err := l.completeSwap(base, end); err != nil {
		return l.fail(err)
	}
	lastTag := l.lastTag // loadSegment sets it from the segment it scans
	s, cut, err := l.loadSegment(base, false)
	l.lastTag = lastTag
	if err != nil || cut {
		if s != nil {
			s.close()
		}
		return l.fail(fmt.Errorf("%w: rewritten segment %d does not load back (%v)", ErrCorrupt, base, err))
	}
	if err := s.seal(); err != nil {
		s.close()
		return l.fail(err)
	}
	segs := append([]*segment(nil), l.segs[:first]...)
	segs = append(segs, s)
	l.segs = append(segs, l.segs[last+1:]...)
	return nil
}

// completeSwap finishes a committed rewrite of the segments in [base, end):
// the old segments go, the .swap files take the final names, and that is
// synced.
func (l *Log) completeSwap(base, end int64) error {
	names, err := l.fs.List(l.dir)
	if err != nil {
		return fmt.Errorf("segment: rewrite: %w", err)
	}
	for _, n := range names {
		b, ext, ok := parseName(n)
		if ok && ext == extLog && b > base && b < end {
			if err := l.removeSegments([]int64{b}); err != nil {
				return err
			}
		}
	}
	for _, ext := range []string{extIndex, extTimeIndex, extLog} {
		swap := l.file(base, ext) + extSwap
		if !l.fs.Exists(swap) {
			continue
		}
		if err := l.fs.Rename(swap, l.file(base, ext)); err != nil {
			return fmt.Errorf("segment: rewrite: %w", err)
		}
	}
	l.dirDirty = true
	if err := l.fs.SyncDir(l.dir); err != nil {
		return fmt.Errorf("segment: rewrite: sync dir: %w", err)
	}
	l.dirDirty = false
	return nil
}

// finishSwaps is the start of recovery: it drops the files of rewrites a
// crash interrupted before their commit and completes the committed ones.
func (l *Log) finishSwaps() error {
	names, err := l.fs.List(l.dir)
	if err != nil {
		return fmt.Errorf("segment: open %s: %w", l.dir, err)
	}
	var committed []int64
	for _, n := range names {
		stem, ok := strings.CutSuffix(n, extCleaned)
		if !ok {
			stem, ok = strings.CutSuffix(n, extSwap)
		}
		if !ok {
			continue
		}
		base, ext, ok := parseName(stem)
		if !ok {
			continue
		}
		switch {
		case strings.HasSuffix(n, extSwap) && ext == extLog:
			committed = append(committed, base)
		case strings.HasSuffix(n, extSwap) && l.fs.Exists(l.file(base, extLog)+extSwap):
			// Part of a committed rewrite: completeSwap renames it.
		default:
			if err := l.remove(path.Join(l.dir, n)); err != nil {
				return err
			}
		}
	}
	for _, base := range committed {
		end, err := l.swapEnd(base)
		if err != nil {
			return err
		}
		if err := l.completeSwap(base, end); err != nil {
			return err
		}
	}
	return nil
}

// swapEnd is the offset after the last frame of a committed .swap log,
// which was synced whole before its commit.
func (l *Log) swapEnd(base int64) (int64, error) {
	name := l.file(base, extLog) + extSwap
	f, err := l.fs.Open(name)
	if err != nil {
		return 0, fmt.Errorf("segment: open %s: %w", name, err)
	}
	defer f.Close()
	size, err := f.Size()
	if err != nil {
		return 0, fmt.Errorf("segment: %s: %w", name, err)
	}
	r := frameReader{f: f, end: size}
	next := base
	for r.pos < size {
		meta, _, err := r.next()
		if err != nil || meta.BaseOffset != next {
			return 0, fmt.Errorf("%w: committed rewrite %s unreadable at position %d (%v)", ErrCorrupt, name, r.pos, err)
		}
		next = meta.LastOffset + 1
	}
	return next, nil
}

// rewriter writes the .cleaned files of a rewrite.
type rewriter struct {
	l    *Log
	base int64
	// next is the offset the next frame covers from.
	next int64
	s    *segment
	buf  []byte
}

func (w *rewriter) create() error {
	w.s = &segment{base: w.base, end: w.base, maxTs: minTimestamp}
	for _, f := range []struct {
		dst *vfs.File
		ext string
	}{{&w.s.log, extLog}, {&w.s.idx, extIndex}, {&w.s.tidx, extTimeIndex}} {
		name := w.l.file(w.base, f.ext) + extCleaned
		var err error
		if *f.dst, err = w.l.fs.Create(name); err != nil {
			return fmt.Errorf("segment: create %s: %w", name, err)
		}
	}
	return nil
}

// add appends a frame for batch covering the offsets from w.next to the
// batch's last offset.
func (w *rewriter) add(batch []byte, meta BatchMeta) error {
	meta.BaseOffset = w.next
	s := w.s
	frameLen := int64(frameHeaderBytes + len(batch))
	if s.size > 0 && s.sinceIndex >= w.l.opts.IndexIntervalBytes {
		e := indexEntry{rel: uint32(meta.BaseOffset - s.base), pos: uint32(s.size), tsBefore: s.maxTs}
		s.entries = append(s.entries, e)
		s.sinceIndex = 0
	}
	w.buf = appendFrame(w.buf[:0], meta, batch)
	if _, err := s.log.Write(w.buf); err != nil {
		return fmt.Errorf("segment: rewrite %d: %w", w.base, err)
	}
	s.size += frameLen
	s.sinceIndex += frameLen
	s.maxTs = max(s.maxTs, meta.MaxTimestamp)
	w.next = meta.LastOffset + 1
	return nil
}

// finish writes the index files and syncs all three.
func (w *rewriter) finish() error {
	var ob, tb []byte
	for _, e := range w.s.entries {
		ob = appendOffsetEntry(ob, w.base, e)
		tb = appendTimeEntry(tb, w.base, e)
	}
	if _, err := w.s.idx.Write(ob); err != nil {
		return fmt.Errorf("segment: rewrite %d: %w", w.base, err)
	}
	if _, err := w.s.tidx.Write(tb); err != nil {
		return fmt.Errorf("segment: rewrite %d: %w", w.base, err)
	}
	w.s.dirty = true
	if err := w.s.sync(); err != nil {
		return err
	}
	w.s.close()
	return nil
}

// abort closes and removes the .cleaned files.
func (w *rewriter) abort() {
	w.s.close()
	for _, ext := range []string{extLog, extIndex, extTimeIndex} {
		name := w.l.file(w.base, ext) + extCleaned
		if w.l.fs.Exists(name) {
			_ = w.l.fs.Remove(name)
		}
	}
}
