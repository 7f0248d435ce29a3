package segment

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"path"
	"sort"
	"strconv"
	"strings"

	"github.com/gregor-streaming/gregor/raftlog/vfs"
)

// recover loads the segments in l.dir and repairs them.
func (l *Log) recover() error {
	if err := l.finishSwaps(); err != nil {
		return err
	}
	names, err := l.fs.List(l.dir)
	if err != nil {
		return fmt.Errorf("segment: open %s: %w", l.dir, err)
	}
	logs := map[int64]bool{}
	var bases []int64
	type indexFile struct {
		base int64
		name string
	}
	var indexes []indexFile
	for _, n := range names {
		base, ext, ok := parseName(n)
		if !ok {
			continue
		}
		if ext == extLog {
			logs[base] = true
			bases = append(bases, base)
		} else {
			indexes = append(indexes, indexFile{base, n})
		}
	}
	sort.Slice(bases, func(i, j int) bool { return bases[i] < bases[j] })
	repaired := false
	for _, ix := range indexes {
		if !logs[ix.base] {
			if err := l.remove(path.Join(l.dir, ix.name)); err != nil {
				return err
			}
			repaired = true
		}
	}
	if len(bases) == 0 {
		s, err := l.createSegment(0)
		if err != nil {
			return err
		}
		l.segs = []*segment{s}
		return nil
	}
	for i, base := range bases {
		if n := len(l.segs); n > 0 && l.segs[n-1].end != base {
			// A gap: this segment and every later one are not part of
			// the log.
			if err := l.removeSegments(bases[i:]); err != nil {
				return err
			}
			repaired = true
			break
		}
		last := i == len(bases)-1
		s, cut, err := l.loadSegment(base, last)
		if err != nil {
			return err
		}
		if cut && !last {
			// A synced, rolled segment whose frames fail their checks is
			// bit rot, not a torn write. Dropping it and every later
			// segment would leave a log that ends early, and its owner
			// would re-append what followed at other offsets. Refuse
			// instead, and leave the files as they are: the owner
			// replaces the whole log from a healthy copy.
			s.close()
			l.closeFiles()
			return fmt.Errorf("%w: segment %d of %s fails its checks before its end", ErrCorrupt, base, l.dir)
		}
		l.segs = append(l.segs, s)
		if cut {
			// A torn or corrupt tail: everything after it goes.
			repaired = true
			if err := l.removeSegments(bases[i+1:]); err != nil {
				return err
			}
			break
		}
	}
	// What the files hold may not be durable yet (a Close without Sync):
	// the next Sync syncs the active segment and the directory.
	l.segs[len(l.segs)-1].dirty = true
	l.dirDirty = true
	if repaired {
		if err := l.Sync(); err != nil {
			return err
		}
	}
	for _, s := range l.segs[:len(l.segs)-1] {
		if err := s.seal(); err != nil {
			return fmt.Errorf("segment: open %s: %w", l.dir, err)
		}
	}
	return nil
}

// parseName splits a segment file name into base offset and extension.
func parseName(n string) (base int64, ext string, ok bool) {
	dot := strings.IndexByte(n, '.')
	if dot != baseOffsetDigits {
		return 0, "", false
	}
	ext = n[dot:]
	if ext != extLog && ext != extIndex && ext != extTimeIndex {
		return 0, "", false
	}
	for _, c := range n[:dot] {
		if c < '0' || c > '9' {
			return 0, "", false
		}
	}
	base, err := strconv.ParseInt(n[:dot], 10, 64)
	if err != nil {
		return 0, "", false
	}
	return base, ext, true
}

// openOrCreate opens name, creating it if it does not exist.
func (l *Log) openOrCreate(name string) (vfs.File, error) {
	f, err := l.fs.Open(name)
	if errors.Is(err, fs.ErrNotExist) {
		l.dirDirty = true
		f, err = l.fs.Create(name)
	}
	if err != nil {
		return nil, fmt.Errorf("segment: open %s: %w", name, err)
	}
	return f, nil
}

func readAll(f vfs.File) ([]byte, error) {
	size, err := f.Size()
	if err != nil {
		return nil, err
	}
	buf := make([]byte, size)
	n, err := f.ReadAt(buf, 0)
	if err != nil && !(errors.Is(err, io.EOF) && int64(n) == size) {
		return nil, err
	}
	return buf, nil
}

// loadSegment opens the segment based at base, validates its indexes, scans
// its tail (the whole segment when full is set) and cuts off a torn or
// corrupt tail. cut reports whether frames were cut off.
func (l *Log) loadSegment(base int64, full bool) (s *segment, cut bool, err error) {
	s = &segment{base: base, end: base, maxTs: minTimestamp}
	opened := s // the returns below set s to nil on an error
	defer func() {
		if err != nil {
			opened.close()
		}
	}()
	if s.log, err = l.openOrCreate(l.file(base, extLog)); err != nil {
		return nil, false, err
	}
	if s.idx, err = l.openOrCreate(l.file(base, extIndex)); err != nil {
		return nil, false, err
	}
	if s.tidx, err = l.openOrCreate(l.file(base, extTimeIndex)); err != nil {
		return nil, false, err
	}
	if s.size, err = s.log.Size(); err != nil {
		return nil, false, fmt.Errorf("segment: %s: %w", l.file(base, extLog), err)
	}
	offBytes, err := readAll(s.idx)
	if err != nil {
		return nil, false, fmt.Errorf("segment: read %s: %w", l.file(base, extIndex), err)
	}
	timeBytes, err := readAll(s.tidx)
	if err != nil {
		return nil, false, fmt.Errorf("segment: read %s: %w", l.file(base, extTimeIndex), err)
	}
	onDisk := decodeIndex(offBytes, timeBytes, base, s.size)
	if s.size >= frameHeaderBytes {
		// segment.ms counts from the first batch's timestamp; a torn or
		// corrupt first frame is cut by the scan below.
		hdr := make([]byte, frameHeaderBytes)
		if _, err := s.log.ReadAt(hdr, 0); err == nil {
			if meta, _, err := decodeFrameHeader(hdr); err == nil {
				s.firstTs = meta.MaxTimestamp
			}
		}
	}

	// Scan from the last trusted entry; fall back to a full scan if the
	// entry does not point at the frame it names.
	var kept []indexEntry
	if !full {
		kept = onDisk
	}
	for {
		s.entries = kept
		pos, next, ts := int64(0), base, int64(minTimestamp)
		if n := len(kept); n > 0 {
			e := kept[n-1]
			pos, next, ts = int64(e.pos), base+int64(e.rel), e.tsBefore
		}
		s.sinceIndex = 0
		s.maxTs = ts
		end, good, err := l.recoverScan(s, pos, next)
		if err != nil {
			return nil, false, err
		}
		if good == pos && len(kept) > 0 && good < s.size {
			// The last entry points at garbage: rebuild everything.
			kept = nil
			continue
		}
		s.end = end
		if good < s.size {
			if err := s.log.Truncate(good); err != nil {
				return nil, false, fmt.Errorf("segment: truncate %s: %w", l.file(base, extLog), err)
			}
			s.size = good
			s.dirty = true
			cut = true
		}
		break
	}
	if err := l.rewriteIndex(s, onDisk, offBytes, timeBytes); err != nil {
		return nil, false, err
	}
	return s, cut, nil
}

// recoverScan scans the frames of s from pos, expecting offset next, adding
// index entries as Append would. It returns the end offset and the position
// after the last good frame; only a failure to read is an error.
func (l *Log) recoverScan(s *segment, pos, next int64) (end, good int64, err error) {
	r := frameReader{f: s.log, pos: pos, end: s.size, buf: l.readBuf}
	defer func() { l.readBuf = r.buf[:0] }()
	for r.pos < s.size {
		at := r.pos
		meta, _, err := r.next()
		if err != nil && !errors.Is(err, errFrame) {
			return 0, 0, fmt.Errorf("segment: recover %s: %w", l.file(s.base, extLog), err)
		}
		if err != nil || meta.BaseOffset != next || (at > 0 && meta.LastOffset-s.base > math.MaxUint32) {
			return next, at, nil
		}
		if at > 0 && s.sinceIndex >= l.opts.IndexIntervalBytes {
			s.entries = append(s.entries, indexEntry{rel: uint32(meta.BaseOffset - s.base), pos: uint32(at), tsBefore: s.maxTs})
			s.sinceIndex = 0
		}
		s.sinceIndex += r.pos - at
		s.maxTs = max(s.maxTs, meta.MaxTimestamp)
		l.lastTag = meta.Tag
		next = meta.LastOffset + 1
	}
	return next, r.pos, nil
}

// rewriteIndex makes the index files hold s.entries, keeping the prefix of
// the files that already does.
func (l *Log) rewriteIndex(s *segment, onDisk []indexEntry, offBytes, timeBytes []byte) error {
	same := 0
	for same < len(onDisk) && same < len(s.entries) && onDisk[same] == s.entries[same] {
		same++
	}
	if int64(len(offBytes)) == int64(same*offsetEntryBytes) && int64(len(timeBytes)) == int64(same*timeEntryBytes) && same == len(s.entries) {
		return nil
	}
	s.dirty = true
	if err := s.idx.Truncate(int64(same * offsetEntryBytes)); err != nil {
		return fmt.Errorf("segment: truncate index of %d: %w", s.base, err)
	}
	if err := s.tidx.Truncate(int64(same * timeEntryBytes)); err != nil {
		return fmt.Errorf("segment: truncate time index of %d: %w", s.base, err)
	}
	var ob, tb []byte
	for _, e := range s.entries[same:] {
		ob = appendOffsetEntry(ob, s.base, e)
		tb = appendTimeEntry(tb, s.base, e)
	}
	if _, err := s.idx.Write(ob); err != nil {
		return fmt.Errorf("segment: write index of %d: %w", s.base, err)
	}
	if _, err := s.tidx.Write(tb); err != nil {
		return fmt.Errorf("segment: write time index of %d: %w", s.base, err)
	}
	return nil
}
