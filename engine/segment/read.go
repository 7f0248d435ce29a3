package segment

import (
	"errors"
	"fmt"
	"io"
	"math"
	"sort"

	"github.com/gregor-streaming/gregor/raftlog/vfs"
)

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
	return l.ReadBelow(offset, math.MaxInt64, maxBytes)
}

// ReadBelow is Read, stopping before the first batch that starts at or
// beyond end: a read_committed fetch reads below the last stable offset.
func (l *Log) ReadBelow(offset, end int64, maxBytes int) ([]byte, error) {
	var out []byte
	err := l.scan(offset, func(batch []byte, meta BatchMeta) (bool, error) {
		if meta.BaseOffset >= end || (len(out) > 0 && len(out)+len(batch) > maxBytes) {
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

// EndsBatch reports whether a stored frame ends at offset-1, so that
// offset is a batch boundary (Rewrite's from and to must be). After a
// rewrite dropped batches, a frame covers the gap before its batch, so an
// offset that was a boundary may no longer be one.
func (l *Log) EndsBatch(offset int64) (bool, error) {
	if offset <= l.StartOffset() || offset > l.EndOffset() {
		return offset == l.StartOffset(), nil
	}
	ends := false
	err := l.scan(offset-1, func(_ []byte, meta BatchMeta) (bool, error) {
		ends = meta.LastOffset == offset-1
		return true, nil
	})
	return ends, err
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
