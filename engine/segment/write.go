package segment

import (
	"fmt"
	"math"
	"sort"

	"github.com/gregor-streaming/gregor/raftlog/vfs"
)

// Append adds a batch at the end of the log. meta.BaseOffset must equal
// EndOffset, and batch is a Kafka record batch whose base offset field
// already holds meta.BaseOffset, or an offset above it (a compacted
// batch copied from a peer: the frame covers the gap before it). When the active segment would pass SegmentBytesMax, it is
// synced and a new segment started. The batch is durable after Sync.
func (l *Log) Append(batch []byte, meta BatchMeta) error {
	if err := l.usable(); err != nil {
		return err
	}
	switch {
	case meta.BaseOffset != l.EndOffset():
		return fmt.Errorf("segment: append at offset %d, log ends at %d", meta.BaseOffset, l.EndOffset())
	case meta.LastOffset < meta.BaseOffset:
		return fmt.Errorf("segment: append: last offset %d below base offset %d", meta.LastOffset, meta.BaseOffset)
	case len(batch) < batchBytesMin || len(batch) > frameBatchBytesMax:
		return fmt.Errorf("segment: append: batch of %d bytes (want %d..%d)", len(batch), batchBytesMin, frameBatchBytesMax)
	}
	if got := int64(beUint64(batch)); got < meta.BaseOffset || got > meta.LastOffset {
		return fmt.Errorf("segment: append: batch base offset field %d outside the frame's offsets %d..%d", got, meta.BaseOffset, meta.LastOffset)
	}
	frameLen := int64(frameHeaderBytes + len(batch))
	s := l.segs[len(l.segs)-1]
	byTime := l.opts.SegmentMs > 0 && meta.MaxTimestamp-s.firstTs > l.opts.SegmentMs
	if s.size > 0 && (s.size+frameLen > l.opts.SegmentBytesMax || meta.LastOffset-s.base > math.MaxUint32 || byTime) {
		if err := l.roll(); err != nil {
			return err
		}
		s = l.segs[len(l.segs)-1]
	}
	if s.size > 0 && s.sinceIndex >= l.opts.IndexIntervalBytes {
		e := indexEntry{rel: uint32(meta.BaseOffset - s.base), pos: uint32(s.size), tsBefore: s.maxTs}
		l.scratch = appendOffsetEntry(l.scratch[:0], s.base, e)
		if _, err := s.idx.Write(l.scratch); err != nil {
			return l.fail(fmt.Errorf("segment: write index of %d: %w", s.base, err))
		}
		l.scratch = appendTimeEntry(l.scratch[:0], s.base, e)
		if _, err := s.tidx.Write(l.scratch); err != nil {
			return l.fail(fmt.Errorf("segment: write time index of %d: %w", s.base, err))
		}
		s.entries = append(s.entries, e)
		s.sinceIndex = 0
	}
	if s.size == 0 {
		s.firstTs = meta.MaxTimestamp
	}
	l.scratch = appendFrame(l.scratch[:0], meta, batch)
	s.dirty = true
	if _, err := s.log.Write(l.scratch); err != nil {
		return l.fail(fmt.Errorf("segment: write %s: %w", l.file(s.base, extLog), err))
	}
	s.size += frameLen
	s.sinceIndex += frameLen
	s.end = meta.LastOffset + 1
	s.maxTs = max(s.maxTs, meta.MaxTimestamp)
	l.lastTag = meta.Tag
	return nil
}

func beUint64(b []byte) uint64 {
	return uint64(b[0])<<56 | uint64(b[1])<<48 | uint64(b[2])<<40 | uint64(b[3])<<32 |
		uint64(b[4])<<24 | uint64(b[5])<<16 | uint64(b[6])<<8 | uint64(b[7])
}

// roll syncs the active segment and starts a new one at EndOffset.
func (l *Log) roll() error {
	s := l.segs[len(l.segs)-1]
	if err := s.seal(); err != nil {
		return l.fail(err)
	}
	ns, err := l.createSegment(s.end)
	if err != nil {
		return l.fail(err)
	}
	l.segs = append(l.segs, ns)
	return nil
}

// seal syncs a segment that takes no more appends and closes its index
// files: their entries are in memory, and a log of 10,000 segments then
// holds 10,000 file handles rather than 30,000.
func (s *segment) seal() error {
	if err := s.sync(); err != nil {
		return err
	}
	for _, f := range []*vfs.File{&s.idx, &s.tidx} {
		if *f != nil {
			(*f).Close()
			*f = nil
		}
	}
	return nil
}

// Sync makes everything appended so far, and every segment creation and
// removal, durable.
func (l *Log) Sync() error {
	if err := l.usable(); err != nil {
		return err
	}
	for _, s := range l.segs {
		if err := s.sync(); err != nil {
			return l.fail(err)
		}
	}
	if l.dirDirty {
		if err := l.fs.SyncDir(l.dir); err != nil {
			return l.fail(fmt.Errorf("segment: sync dir %s: %w", l.dir, err))
		}
		l.dirDirty = false
	}
	return nil
}

// Reset drops every batch; the log becomes empty and starts at
// startOffset. Unlike the other mutations, Reset is durable when it
// returns. NB: on a real file system a crash inside Reset may leave a
// suffix of the old segments without the new empty one.
func (l *Log) Reset(startOffset int64) error {
	if err := l.usable(); err != nil {
		return err
	}
	if startOffset < 0 {
		return fmt.Errorf("segment: reset to negative offset %d", startOffset)
	}
	old := l.segs
	l.closeFiles()
	l.segs = nil
	for _, s := range old {
		if err := l.removeSegments([]int64{s.base}); err != nil {
			return l.fail(err)
		}
	}
	s, err := l.createSegment(startOffset)
	if err != nil {
		return l.fail(err)
	}
	l.segs = []*segment{s}
	l.lastTag = 0
	return l.Sync()
}

// TruncatePrefix deletes every segment whose batches all lie below offset
// (retention). The active segment is never deleted, so StartOffset becomes
// the base of the first remaining segment. The deletions are durable after
// Sync; a crash before may bring deleted segments back.
func (l *Log) TruncatePrefix(offset int64) error {
	if err := l.usable(); err != nil {
		return err
	}
	n := 0
	for n < len(l.segs)-1 && l.segs[n+1].base <= offset {
		n++
	}
	for _, s := range l.segs[:n] {
		s.close()
		if err := l.removeSegments([]int64{s.base}); err != nil {
			return l.fail(err)
		}
	}
	l.segs = append([]*segment(nil), l.segs[n:]...)
	return nil
}

// createSegment creates the empty segment based at base.
func (l *Log) createSegment(base int64) (*segment, error) {
	s := &segment{base: base, end: base, maxTs: minTimestamp}
	var err error
	for _, f := range []struct {
		dst *vfs.File
		ext string
	}{{&s.log, extLog}, {&s.idx, extIndex}, {&s.tidx, extTimeIndex}} {
		if *f.dst, err = l.fs.Create(l.file(base, f.ext)); err != nil {
			s.close()
			return nil, fmt.Errorf("segment: create %s: %w", l.file(base, f.ext), err)
		}
	}
	l.dirDirty = true
	return s, nil
}

func (s *segment) sync() error {
	if !s.dirty {
		return nil
	}
	for _, f := range []vfs.File{s.log, s.idx, s.tidx} {
		if f == nil {
			continue
		}
		if err := f.Sync(); err != nil {
			return fmt.Errorf("segment: sync segment %d: %w", s.base, err)
		}
	}
	s.dirty = false
	return nil
}

// removeSegments removes the files of the segments with the given bases.
func (l *Log) removeSegments(bases []int64) error {
	for _, b := range bases {
		for _, ext := range []string{extIndex, extTimeIndex, extLog} {
			name := l.file(b, ext)
			if l.fs.Exists(name) {
				if err := l.remove(name); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func (l *Log) remove(name string) error {
	if err := l.fs.Remove(name); err != nil {
		return fmt.Errorf("segment: remove %s: %w", name, err)
	}
	l.dirDirty = true
	return nil
}

// TruncateSuffix drops every batch at or after offset, which must be the
// base offset of a stored batch or EndOffset, and makes that durable before
// it returns (a crash must not bring the dropped batches back). Its use is
// to undo a partial append that a write error interrupted.
func (l *Log) TruncateSuffix(offset int64) error {
	if err := l.usable(); err != nil {
		return err
	}
	if offset == l.EndOffset() {
		return nil
	}
	if offset < l.StartOffset() || offset > l.EndOffset() {
		return fmt.Errorf("%w: truncate to %d, log holds [%d, %d)", ErrOffsetOutOfRange, offset, l.StartOffset(), l.EndOffset())
	}
	i := l.segmentFor(offset)
	s := l.segs[i]
	pos := int64(-1)
	next := s.base
	at := int64(0)
	if k := sort.Search(len(s.entries), func(k int) bool { return s.base+int64(s.entries[k].rel) > offset }); k > 0 {
		at, next = int64(s.entries[k-1].pos), s.base+int64(s.entries[k-1].rel)
	}
	r := frameReader{f: s.log, pos: at, end: s.size, buf: l.readBuf}
	for r.pos < s.size && next <= offset {
		start := r.pos
		meta, _, err := r.next()
		if err != nil {
			l.readBuf = r.buf[:0]
			return fmt.Errorf("%w: truncate %s at %d: %v", ErrCorrupt, l.file(s.base, extLog), offset, err)
		}
		if meta.BaseOffset == offset {
			pos = start
			break
		}
		next = meta.LastOffset + 1
	}
	l.readBuf = r.buf[:0]
	if pos < 0 {
		return fmt.Errorf("segment: truncate to %d: not the base offset of a batch", offset)
	}
	// Drop whole segments after it (and this one if the cut is at its
	// start, unless it is the first), cut this one's log file, then reload
	// from the files: recovery rebuilds the last segment's indexes, its
	// largest timestamp and the last tag.
	drop := l.segs[i+1:]
	keep := i + 1
	if pos == 0 && i > 0 {
		drop, keep = l.segs[i:], i
	}
	var bases []int64
	for _, d := range drop {
		bases = append(bases, d.base)
	}
	if keep == i+1 {
		if err := s.log.Truncate(pos); err != nil {
			return l.fail(fmt.Errorf("segment: truncate %s: %w", l.file(s.base, extLog), err))
		}
		if err := s.log.Sync(); err != nil {
			return l.fail(fmt.Errorf("segment: sync %s: %w", l.file(s.base, extLog), err))
		}
	}
	l.closeFiles()
	l.segs = nil
	// Remove the later segments newest first, syncing the directory after
	// each, so a crash leaves a contiguous log.
	for j := len(bases) - 1; j >= 0; j-- {
		if err := l.removeSegments(bases[j : j+1]); err != nil {
			return l.fail(err)
		}
		if err := l.fs.SyncDir(l.dir); err != nil {
			return l.fail(err)
		}
	}
	if err := l.recover(); err != nil {
		return l.fail(err)
	}
	return l.Sync()
}
