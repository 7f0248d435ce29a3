package segment

// On-disk format.
//
// A partition's log is one directory of segments. A segment with base
// offset B (the offset of its first batch, or the offset its first batch
// will get if it is empty) is three files, B written as 20 decimal digits:
//
//	00000000000000000000.log        frames, back to back
//	00000000000000000000.index      sparse offset index
//	00000000000000000000.timeindex  sparse time index
//
// Segments are contiguous: the next segment's base is the end offset of the
// one before. Only the last (active) segment is appended to, and it is
// synced when a new segment is rolled, so every segment but the last is
// fully durable. An empty log (after Open of an empty directory, or Reset)
// is one empty .log file named by its start offset, which keeps that offset
// across a restart.
//
// Frame (all integers big-endian), one per stored batch:
//
//	off size field
//	  0    4 crc         CRC-32C (Castagnoli) of bytes [4, 40+length)
//	  4    4 length      length of the batch bytes, at most frameBatchBytesMax
//	  8    8 baseOffset  offset of the batch's first record, or below it:
//	                     a rewrite (rewrite.go) that dropped batches
//	                     before this one extends it back over the gap
//	 16    8 lastOffset  offset of its last record, >= baseOffset
//	 24    8 maxTimestamp
//	 32    8 tag         opaque to the store (the raft index that applied it)
//	 40    n batch       the Kafka record batch exactly as appended (or as a
//	                     rewrite kept it); its own first 8 bytes are its
//	                     base offset, in [baseOffset, lastOffset]
//
// Offset index entry, 12 bytes, one for roughly every IndexIntervalBytes of
// frames (the entry points at the first frame that starts once at least that
// many bytes were written since the previous entry; position 0 has none):
//
//	  0    4 relOffset   baseOffset of the frame minus the segment's base
//	  4    4 position    byte position of the frame in the .log file
//	  8    4 crc         CRC-32C of segmentBase(8) relOffset(4) position(4)
//
// Time index entry, 16 bytes, written together with the offset index entry
// for the same frame (entry i of both files names the same frame):
//
//	  0    8 maxTimestampBefore  largest MaxTimestamp of all frames of the
//	                             segment before this one (MinInt64 if none)
//	  8    4 relOffset
//	 12    4 crc         CRC-32C of segmentBase(8) maxTimestampBefore(8) relOffset(4)
//
// Because maxTimestampBefore only grows, a lookup for timestamp ts starts
// scanning at the last entry whose maxTimestampBefore < ts: every batch
// before it has a smaller MaxTimestamp.
//
// Recovery (Open): index files are read up to the first entry that fails
// its CRC or ordering checks, or points past the end of the .log file, or
// disagrees with the other index file; the rest is rebuilt from the frames.
// The last segment is scanned from position 0 and every frame's CRC checked;
// earlier segments are scanned from their last valid index entry (their
// middles are checked when read). The first frame that is torn, fails its
// CRC or breaks offset contiguity is cut off with everything after it, and
// so is every later segment. Repairs are synced before Open returns. A
// corrupt frame met by Read, Batches or OffsetForTimestamp is an
// ErrCorrupt error; its bytes are never returned.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
)

const (
	// frameHeaderBytes is the size of a frame's header.
	frameHeaderBytes = 40
	// frameBatchBytesMax bounds one stored batch, so a corrupt length field
	// cannot make a reader allocate gigabytes.
	frameBatchBytesMax = 128 << 20
	// batchBytesMin is the smallest batch accepted: its base offset field.
	batchBytesMin = 8
	// offsetEntryBytes and timeEntryBytes are the index entry sizes.
	offsetEntryBytes = 12
	timeEntryBytes   = 16
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// errFrame is what the decoders return for bytes that are not a valid frame
// or entry; callers wrap it into ErrCorrupt or treat it as a torn tail.
var errFrame = errors.New("segment: invalid frame")

// putFrameHeader writes the header of a frame holding batch into dst[:40].
func putFrameHeader(dst []byte, meta BatchMeta, batch []byte) {
	binary.BigEndian.PutUint32(dst[4:], uint32(len(batch)))
	binary.BigEndian.PutUint64(dst[8:], uint64(meta.BaseOffset))
	binary.BigEndian.PutUint64(dst[16:], uint64(meta.LastOffset))
	binary.BigEndian.PutUint64(dst[24:], uint64(meta.MaxTimestamp))
	binary.BigEndian.PutUint64(dst[32:], meta.Tag)
	crc := crc32.Update(crc32.Checksum(dst[4:frameHeaderBytes], castagnoli), castagnoli, batch)
	binary.BigEndian.PutUint32(dst[0:], crc)
}

// appendFrame appends the frame for batch to dst.
func appendFrame(dst []byte, meta BatchMeta, batch []byte) []byte {
	n := len(dst)
	dst = append(dst, make([]byte, frameHeaderBytes)...)
	dst = append(dst, batch...)
	putFrameHeader(dst[n:], meta, batch)
	return dst
}

// decodeFrameHeader reads a frame header without checking the CRC; it
// returns the meta and the length of the batch.
func decodeFrameHeader(b []byte) (meta BatchMeta, batchLen int, err error) {
	if len(b) < frameHeaderBytes {
		return meta, 0, fmt.Errorf("%w: header needs %d bytes, have %d", errFrame, frameHeaderBytes, len(b))
	}
	n := binary.BigEndian.Uint32(b[4:])
	meta = BatchMeta{
		BaseOffset:   int64(binary.BigEndian.Uint64(b[8:])),
		LastOffset:   int64(binary.BigEndian.Uint64(b[16:])),
		MaxTimestamp: int64(binary.BigEndian.Uint64(b[24:])),
		Tag:          binary.BigEndian.Uint64(b[32:]),
	}
	switch {
	case n < batchBytesMin || n > frameBatchBytesMax:
		return meta, 0, fmt.Errorf("%w: batch length %d", errFrame, n)
	case meta.BaseOffset < 0 || meta.LastOffset < meta.BaseOffset:
		return meta, 0, fmt.Errorf("%w: offsets %d..%d", errFrame, meta.BaseOffset, meta.LastOffset)
	}
	return meta, int(n), nil
}

// decodeFrame decodes the frame at the start of b, checking its CRC and that
// the batch's own base offset field lies in the frame's offsets (it equals
// the frame's BaseOffset unless a rewrite left a gap before the batch). It returns the batch (aliasing
// b) and the frame's total length.
func decodeFrame(b []byte) (meta BatchMeta, batch []byte, n int, err error) {
	meta, batchLen, err := decodeFrameHeader(b)
	if err != nil {
		return meta, nil, 0, err
	}
	n = frameHeaderBytes + batchLen
	if len(b) < n {
		return meta, nil, 0, fmt.Errorf("%w: frame needs %d bytes, have %d", errFrame, n, len(b))
	}
	if want, got := binary.BigEndian.Uint32(b), crc32.Checksum(b[4:n], castagnoli); want != got {
		return meta, nil, 0, fmt.Errorf("%w: crc %08x, stored %08x", errFrame, got, want)
	}
	batch = b[frameHeaderBytes:n]
	if got := int64(binary.BigEndian.Uint64(batch)); got < meta.BaseOffset || got > meta.LastOffset {
		return meta, nil, 0, fmt.Errorf("%w: batch base offset %d outside the frame's offsets %d..%d", errFrame, got, meta.BaseOffset, meta.LastOffset)
	}
	return meta, batch, n, nil
}

// indexEntry is one sparse index point: the frame at pos has base offset
// segmentBase+rel, and every frame before it has MaxTimestamp <= tsBefore.
type indexEntry struct {
	rel      uint32
	pos      uint32
	tsBefore int64
}

func offsetEntryCRC(segBase int64, rel, pos uint32) uint32 {
	var b [16]byte
	binary.BigEndian.PutUint64(b[0:], uint64(segBase))
	binary.BigEndian.PutUint32(b[8:], rel)
	binary.BigEndian.PutUint32(b[12:], pos)
	return crc32.Checksum(b[:], castagnoli)
}

func timeEntryCRC(segBase, tsBefore int64, rel uint32) uint32 {
	var b [20]byte
	binary.BigEndian.PutUint64(b[0:], uint64(segBase))
	binary.BigEndian.PutUint64(b[8:], uint64(tsBefore))
	binary.BigEndian.PutUint32(b[16:], rel)
	return crc32.Checksum(b[:], castagnoli)
}

func appendOffsetEntry(dst []byte, segBase int64, e indexEntry) []byte {
	dst = binary.BigEndian.AppendUint32(dst, e.rel)
	dst = binary.BigEndian.AppendUint32(dst, e.pos)
	return binary.BigEndian.AppendUint32(dst, offsetEntryCRC(segBase, e.rel, e.pos))
}

func appendTimeEntry(dst []byte, segBase int64, e indexEntry) []byte {
	dst = binary.BigEndian.AppendUint64(dst, uint64(e.tsBefore))
	dst = binary.BigEndian.AppendUint32(dst, e.rel)
	return binary.BigEndian.AppendUint32(dst, timeEntryCRC(segBase, e.tsBefore, e.rel))
}

// decodeOffsetEntry decodes one offset index entry of the segment based at
// segBase.
func decodeOffsetEntry(b []byte, segBase int64) (rel, pos uint32, err error) {
	if len(b) < offsetEntryBytes {
		return 0, 0, fmt.Errorf("%w: offset entry needs %d bytes, have %d", errFrame, offsetEntryBytes, len(b))
	}
	rel = binary.BigEndian.Uint32(b[0:])
	pos = binary.BigEndian.Uint32(b[4:])
	if want, got := binary.BigEndian.Uint32(b[8:]), offsetEntryCRC(segBase, rel, pos); want != got {
		return 0, 0, fmt.Errorf("%w: offset entry crc %08x, stored %08x", errFrame, got, want)
	}
	return rel, pos, nil
}

// decodeTimeEntry decodes one time index entry of the segment based at
// segBase.
func decodeTimeEntry(b []byte, segBase int64) (tsBefore int64, rel uint32, err error) {
	if len(b) < timeEntryBytes {
		return 0, 0, fmt.Errorf("%w: time entry needs %d bytes, have %d", errFrame, timeEntryBytes, len(b))
	}
	tsBefore = int64(binary.BigEndian.Uint64(b[0:]))
	rel = binary.BigEndian.Uint32(b[8:])
	if want, got := binary.BigEndian.Uint32(b[12:]), timeEntryCRC(segBase, tsBefore, rel); want != got {
		return 0, 0, fmt.Errorf("%w: time entry crc %08x, stored %08x", errFrame, got, want)
	}
	return tsBefore, rel, nil
}

// decodeIndex decodes the longest valid prefix of a segment's two index
// files: entries whose CRCs hold, whose offsets and positions strictly
// grow, whose positions lie inside a .log file of logSize bytes, and which
// agree between the two files.
func decodeIndex(offsets, times []byte, segBase, logSize int64) []indexEntry {
	var out []indexEntry
	var prev indexEntry
	for len(offsets) >= offsetEntryBytes && len(times) >= timeEntryBytes {
		rel, pos, err := decodeOffsetEntry(offsets, segBase)
		if err != nil {
			break
		}
		ts, trel, err := decodeTimeEntry(times, segBase)
		if err != nil || trel != rel || pos == 0 || int64(pos) >= logSize {
			break
		}
		if len(out) > 0 && (rel <= prev.rel || pos <= prev.pos || ts < prev.tsBefore) {
			break
		}
		prev = indexEntry{rel: rel, pos: pos, tsBefore: ts}
		out = append(out, prev)
		offsets, times = offsets[offsetEntryBytes:], times[timeEntryBytes:]
	}
	return out
}

// minTimestamp is the running maximum timestamp of an empty segment.
const minTimestamp = math.MinInt64
