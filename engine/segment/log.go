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

const (
	// segmentBytesMaxDefault and indexIntervalBytesDefault are the Options
	// used when a field is zero.
	segmentBytesMaxDefault    = 64 << 20
	indexIntervalBytesDefault = 4 << 10
	// segmentBytesLimit bounds SegmentBytesMax: index positions are 32 bits.
	segmentBytesLimit = 1 << 31
	// readChunkBytes is how much a scan reads from a segment file at once.
	readChunkBytes = 64 << 10
	// baseOffsetDigits is the width of the base offset in file names.
	baseOffsetDigits = 20
)

const (
	extLog       = ".log"
	extIndex     = ".index"
	extTimeIndex = ".timeindex"
)

// ErrOffsetOutOfRange is returned for an offset below StartOffset or above
// EndOffset (Kafka's OFFSET_OUT_OF_RANGE).
var ErrOffsetOutOfRange = errors.New("segment: offset out of range")

// ErrCorrupt is returned when stored bytes fail their checksum or their
// framing: bit rot on the medium. The bad bytes are never returned; the
// replica should discard its log and catch up from a peer.
var ErrCorrupt = errors.New("segment: corrupt data")

// ErrClosed is returned by every method after Close.
var ErrClosed = errors.New("segment: log closed")

// Options tunes a Log. Zero fields take their defaults.
type Options struct {
	// SegmentBytesMax is the size past which the log rolls to a new
	// segment file (default 64 MiB, at most 2 GiB).
	SegmentBytesMax int64
	// IndexIntervalBytes is how many bytes of frames lie between two
	// entries of the sparse indexes (default 4 KiB).
	IndexIntervalBytes int64
}

// BatchMeta is what the store keeps about a batch besides its bytes.
type BatchMeta struct {
	// BaseOffset and LastOffset are the offsets of the batch's first and
	// last record.
	BaseOffset, LastOffset int64
	// MaxTimestamp is the batch's largest record timestamp.
	MaxTimestamp int64
	// Tag is opaque to the store: the caller stores the raft index that
	// produced the batch there.
	Tag uint64
}

// Log is one partition's log. It is not safe for concurrent use.
type Log struct {
	fs   vfs.FS
	dir  string
	opts Options

	// segs is never empty; segs[len(segs)-1] is the active segment.
	segs     []*segment
	dirDirty bool
	lastTag  uint64

	// failed is set when a write fails half-way; the log must be reopened.
	failed  error
	closed  bool
	readBuf []byte
	scratch []byte
}

type segment struct {
	base int64
	// end is the offset after the segment's last batch (base if empty).
	end  int64
	size int64
	log  vfs.File
	idx  vfs.File
	tidx vfs.File
	// entries mirrors the index files.
	entries []indexEntry
	// sinceIndex counts frame bytes written since the last index entry.
	sinceIndex int64
	// maxTs is the largest MaxTimestamp in the segment (minTimestamp if
	// empty).
	maxTs int64
	dirty bool
}

func segmentName(base int64, ext string) string {
	return fmt.Sprintf("%0*d%s", baseOffsetDigits, base, ext)
}

func (l *Log) file(base int64, ext string) string {
	return path.Join(l.dir, segmentName(base, ext))
}

// Open opens the log in dir, creating dir if needed, and recovers it after
// a crash: see format.go.
func Open(fsys vfs.FS, dir string, opts Options) (*Log, error) {
	if opts.SegmentBytesMax == 0 {
		opts.SegmentBytesMax = segmentBytesMaxDefault
	}
	if opts.IndexIntervalBytes == 0 {
		opts.IndexIntervalBytes = indexIntervalBytesDefault
	}
	if opts.SegmentBytesMax < 0 || opts.SegmentBytesMax > segmentBytesLimit || opts.IndexIntervalBytes < 0 {
		return nil, fmt.Errorf("segment: bad options %+v (SegmentBytesMax must be in 1..%d, IndexIntervalBytes >= 0)", opts, segmentBytesLimit)
	}
	if err := fsys.MkdirAll(dir); err != nil {
		return nil, fmt.Errorf("segment: open %s: %w", dir, err)
	}
	l := &Log{fs: fsys, dir: dir, opts: opts}
	if err := l.recover(); err != nil {
		l.closeFiles()
		return nil, err
	}
	return l, nil
}

// recover loads the segments in l.dir and repairs them.
func (l *Log) recover() error {
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
		return l.Sync()
	}
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
	defer func() {
		if err != nil {
			s.close()
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

func (s *segment) close() {
	for _, f := range []vfs.File{s.log, s.idx, s.tidx} {
		if f != nil {
			f.Close()
		}
	}
}

func (s *segment) sync() error {
	if !s.dirty {
		return nil
	}
	for _, f := range []vfs.File{s.log, s.idx, s.tidx} {
		if err := f.Sync(); err != nil {
			return fmt.Errorf("segment: sync segment %d: %w", s.base, err)
		}
	}
	s.dirty = false
	return nil
}

func (l *Log) closeFiles() {
	for _, s := range l.segs {
		s.close()
	}
}

func (l *Log) usable() error {
	if l.closed {
		return ErrClosed
	}
	return l.failed
}

// fail records err as fatal: the files may be in a state this Log does not
// know, so it refuses further work until reopened.
func (l *Log) fail(err error) error {
	if l.failed == nil {
		l.failed = fmt.Errorf("segment: log unusable until reopened: %w", err)
	}
	return err
}

// StartOffset returns the offset of the first stored batch (EndOffset if
// the log is empty).
func (l *Log) StartOffset() int64 { return l.segs[0].base }

// EndOffset returns the offset the next appended batch must start at.
func (l *Log) EndOffset() int64 { return l.segs[len(l.segs)-1].end }

// LastTag returns the Tag of the last batch, or 0 if the log is empty.
func (l *Log) LastTag() uint64 {
	if l.StartOffset() == l.EndOffset() {
		return 0
	}
	return l.lastTag
}

// Append adds a batch at the end of the log. batch is a Kafka record batch
// whose base offset field already holds meta.BaseOffset, which must equal
// EndOffset. When the active segment would pass SegmentBytesMax, it is
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
	if got := int64(beUint64(batch)); got != meta.BaseOffset {
		return fmt.Errorf("segment: append: batch base offset field %d, meta says %d", got, meta.BaseOffset)
	}
	frameLen := int64(frameHeaderBytes + len(batch))
	s := l.segs[len(l.segs)-1]
	if s.size > 0 && (s.size+frameLen > l.opts.SegmentBytesMax || meta.LastOffset-s.base > math.MaxUint32) {
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
	if err := s.sync(); err != nil {
		return l.fail(err)
	}
	ns, err := l.createSegment(s.end)
	if err != nil {
		return l.fail(err)
	}
	l.segs = append(l.segs, ns)
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

// Close closes the files. It does not sync.
func (l *Log) Close() error {
	if l.closed {
		return ErrClosed
	}
	l.closed = true
	l.closeFiles()
	return nil
}

// segmentFor returns the index of the segment holding offset, which must
// be in [StartOffset, EndOffset).
func (l *Log) segmentFor(offset int64) int {
	return sort.Search(len(l.segs), func(i int) bool { return l.segs[i].base > offset }) - 1
}

// scan calls fn for every batch from the one containing from to the end of
// the log, until fn returns stop or an error. Every frame passed to fn has
// had its CRC checked. batch aliases a read buffer valid only during fn.
func (l *Log) scan(from int64, fn func(batch []byte, meta BatchMeta) (stop bool, err error)) error {
	if err := l.usable(); err != nil {
		return err
	}
	if from < l.StartOffset() || from > l.EndOffset() {
		return fmt.Errorf("%w: %d not in [%d, %d]", ErrOffsetOutOfRange, from, l.StartOffset(), l.EndOffset())
	}
	if from == l.EndOffset() {
		return nil
	}
	i := l.segmentFor(from)
	s := l.segs[i]
	pos, next := int64(0), s.base
	if k := sort.Search(len(s.entries), func(k int) bool { return s.base+int64(s.entries[k].rel) > from }); k > 0 {
		pos, next = int64(s.entries[k-1].pos), s.base+int64(s.entries[k-1].rel)
	}
	for ; i < len(l.segs); i++ {
		s = l.segs[i]
		stop, err := l.scanSegment(s, pos, next, func(batch []byte, meta BatchMeta) (bool, error) {
			if meta.LastOffset < from {
				return false, nil
			}
			return fn(batch, meta)
		})
		if stop || err != nil {
			return err
		}
		pos, next = 0, s.end
	}
	return nil
}

// scanSegment calls fn for the frames of s from pos, whose first frame must
// start at offset next.
func (l *Log) scanSegment(s *segment, pos, next int64, fn func(batch []byte, meta BatchMeta) (bool, error)) (bool, error) {
	// Take the buffer, so that a nested read from fn gets its own.
	r := frameReader{f: s.log, pos: pos, end: s.size, buf: l.readBuf}
	l.readBuf = nil
	defer func() { l.readBuf = r.buf[:0] }()
	for r.pos < s.size {
		at := r.pos
		meta, batch, err := r.next()
		if err == nil && meta.BaseOffset != next {
			err = fmt.Errorf("batch at offset %d, expected %d", meta.BaseOffset, next)
		}
		if err != nil {
			if errors.Is(err, vfs.ErrCrashed) || errors.Is(err, vfs.ErrClosed) {
				return true, err
			}
			return true, fmt.Errorf("%w: %s position %d: %v", ErrCorrupt, l.file(s.base, extLog), at, err)
		}
		next = meta.LastOffset + 1
		if stop, err := fn(batch, meta); stop || err != nil {
			return true, err
		}
	}
	if next != s.end {
		return true, fmt.Errorf("%w: %s ends at offset %d, expected %d", ErrCorrupt, l.file(s.base, extLog), next, s.end)
	}
	return false, nil
}

// Read returns whole stored batches, concatenated, starting with the batch
// that contains offset and stopping before the batch that would take the
// result past maxBytes; the first batch is returned whatever its size
// (Kafka semantics). It returns nothing when offset == EndOffset and
// ErrOffsetOutOfRange outside [StartOffset, EndOffset]. A batch that fails
// its checksum is ErrCorrupt.
func (l *Log) Read(offset int64, maxBytes int) ([]byte, error) {
	var out []byte
	err := l.scan(offset, func(batch []byte, _ BatchMeta) (bool, error) {
		if len(out) > 0 && len(out)+len(batch) > maxBytes {
			return true, nil
		}
		out = append(out, batch...)
		return false, nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Batches calls fn for every stored batch, starting with the one that
// contains from, until fn returns an error. batch is only valid during the
// call: copy it to keep it.
func (l *Log) Batches(from int64, fn func(batch []byte, meta BatchMeta) error) error {
	return l.scan(from, func(batch []byte, meta BatchMeta) (bool, error) {
		err := fn(batch, meta)
		return err != nil, err
	})
}

// OffsetForTimestamp returns the base offset of the first batch whose
// MaxTimestamp >= ts (Kafka ListOffsets by time), and false if there is no
// such batch. NB: a read error also yields false; LookupTimestamp reports
// it.
func (l *Log) OffsetForTimestamp(ts int64) (offset int64, ok bool) {
	offset, ok, err := l.LookupTimestamp(ts)
	if err != nil {
		return 0, false
	}
	return offset, ok
}

// LookupTimestamp is OffsetForTimestamp with the read error.
func (l *Log) LookupTimestamp(ts int64) (offset int64, ok bool, err error) {
	if err := l.usable(); err != nil {
		return 0, false, err
	}
	for _, s := range l.segs {
		if s.end == s.base || s.maxTs < ts {
			continue
		}
		pos, next := int64(0), s.base
		if k := sort.Search(len(s.entries), func(k int) bool { return s.entries[k].tsBefore >= ts }); k > 0 {
			pos, next = int64(s.entries[k-1].pos), s.base+int64(s.entries[k-1].rel)
		}
		_, err := l.scanSegment(s, pos, next, func(_ []byte, meta BatchMeta) (bool, error) {
			if meta.MaxTimestamp >= ts {
				offset, ok = meta.BaseOffset, true
				return true, nil
			}
			return false, nil
		})
		if err != nil {
			return 0, false, err
		}
		if ok {
			return offset, true, nil
		}
		return 0, false, fmt.Errorf("%w: segment %d has max timestamp %d but no batch reaches %d", ErrCorrupt, s.base, s.maxTs, ts)
	}
	return 0, false, nil
}

// frameReader reads frames from a file through a buffer.
type frameReader struct {
	f        vfs.File
	pos, end int64
	buf      []byte // holds file bytes [bufAt, bufAt+len(buf))
	bufAt    int64
}

// window returns the n file bytes at r.pos, reading ahead up to
// readChunkBytes.
func (r *frameReader) window(n int64) ([]byte, error) {
	if r.pos+n > r.end {
		return nil, fmt.Errorf("%w: %d bytes at position %d pass the end %d", errFrame, n, r.pos, r.end)
	}
	if r.pos >= r.bufAt && r.pos+n <= r.bufAt+int64(len(r.buf)) {
		return r.buf[r.pos-r.bufAt : r.pos-r.bufAt+n], nil
	}
	want := min(max(n, readChunkBytes), r.end-r.pos)
	if int64(cap(r.buf)) < want {
		r.buf = make([]byte, want)
	}
	r.buf = r.buf[:want]
	got, err := r.f.ReadAt(r.buf, r.pos)
	if int64(got) < want {
		r.buf = r.buf[:0]
		if err == nil {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	r.bufAt = r.pos
	return r.buf[:n], nil
}

// next decodes the frame at r.pos and moves past it.
func (r *frameReader) next() (BatchMeta, []byte, error) {
	hdr, err := r.window(frameHeaderBytes)
	if err != nil {
		return BatchMeta{}, nil, err
	}
	_, batchLen, err := decodeFrameHeader(hdr)
	if err != nil {
		return BatchMeta{}, nil, err
	}
	b, err := r.window(int64(frameHeaderBytes + batchLen))
	if err != nil {
		return BatchMeta{}, nil, err
	}
	meta, batch, n, err := decodeFrame(b)
	if err != nil {
		return BatchMeta{}, nil, err
	}
	r.pos += int64(n)
	return meta, batch, nil
}
