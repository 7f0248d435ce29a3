package segment

import (
	"errors"
	"fmt"
	"path"

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
	// SegmentMs rolls the active segment when a batch's MaxTimestamp is
	// more than this past that of the segment's first batch (Kafka's
	// segment.ms, judged by record timestamps as Kafka's
	// LogSegment.shouldRoll does, so every replica rolls alike on its
	// own log); 0: never by time.
	SegmentMs int64
}

// BatchMeta is what the store keeps about a batch besides its bytes.
type BatchMeta struct {
	// BaseOffset and LastOffset are the offsets of the batch's first and
	// last record. After a rewrite (compaction) dropped batches before it,
	// BaseOffset is the end of the frame before: the frames of a log
	// always cover its offsets without a gap, while the batch's own base
	// offset field is where its records start.
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
	// empty); firstTs is its first batch's (segment.ms counts from it).
	maxTs   int64
	firstTs int64
	dirty   bool
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

func (s *segment) close() {
	for _, f := range []vfs.File{s.log, s.idx, s.tidx} {
		if f != nil {
			f.Close()
		}
	}
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

// Close closes the files. It does not sync.
func (l *Log) Close() error {
	if l.closed {
		return ErrClosed
	}
	l.closed = true
	l.closeFiles()
	return nil
}

// SegmentInfo describes one segment: its offsets [Base, End), its size in
// bytes and its largest batch timestamp (math.MinInt64 when empty).
type SegmentInfo struct {
	Base, End, Size, MaxTimestamp int64
}

// Segments describes every segment, oldest first; the last is the active
// one.
func (l *Log) Segments() []SegmentInfo {
	out := make([]SegmentInfo, len(l.segs))
	for i, s := range l.segs {
		out[i] = SegmentInfo{Base: s.base, End: s.end, Size: s.size, MaxTimestamp: s.maxTs}
	}
	return out
}

// SetSegmentMs changes segment.ms (0: never roll by time).
func (l *Log) SetSegmentMs(ms int64) { l.opts.SegmentMs = max(ms, 0) }

// SetSegmentBytesMax changes the size past which the log rolls (a topic's
// segment.bytes changed); 0 restores the default. Segments already rolled
// keep their size.
func (l *Log) SetSegmentBytesMax(n int64) {
	if n <= 0 || n > segmentBytesLimit {
		n = segmentBytesMaxDefault
	}
	l.opts.SegmentBytesMax = n
}
