package batch

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
)

// Keep builds what the log cleaner keeps of batch b (header h): the same
// batch with only the records in keep, which must be some of b's own
// records in offset order. Everything Kafka's cleaner keeps stays (base
// offset, lastOffsetDelta, producer id, epoch and base sequence, leader
// epoch, attributes and codec), so the batch covers the same offsets and
// the producer's sequence numbers still add up; the records keep their
// offsets, timestamps, keys, values and headers. With no record kept, the
// result is the header alone (NumRecords 0, no compression, the batch's
// MaxTimestamp), as Kafka's cleaner keeps a producer's last batch: the
// cleaner keeps such a batch only where its offsets or producer fields
// must stay. A deleteHorizon >= 0 sets the KIP-534 flag and stores it in
// FirstTimestamp (record timestamps are written relative to it, so they
// do not change); a batch that has a horizon keeps it. The result is
// deterministic: every replica that keeps the same records of the same
// batch writes the same bytes.
func Keep(b []byte, h Header, keep []DecodedRecord, deleteHorizon int64) ([]byte, error) {
	attrs := uint16(h.Attributes)
	if len(keep) == 0 {
		attrs &^= attrCompressionMask // nothing to compress
	}
	first := h.FirstTimestamp
	switch {
	case h.HasDeleteHorizon():
	case deleteHorizon >= 0:
		attrs |= attrDeleteHorizon
		first = deleteHorizon
	}
	maxTS := h.MaxTimestamp
	if !h.LogAppendTime() && len(keep) > 0 {
		maxTS = -1
		for _, r := range keep {
			maxTS = max(maxTS, r.Timestamp)
		}
	}
	var body, rec []byte
	for _, r := range keep {
		delta := r.Offset - h.BaseOffset
		if delta < 0 || delta > int64(h.LastOffsetDelta) {
			return nil, fmt.Errorf("batch: keep: record at offset %d outside the batch at %d", r.Offset, h.BaseOffset)
		}
		tsDelta := r.Timestamp - first
		if h.LogAppendTime() {
			tsDelta = 0
		}
		rec = rec[:0]
		rec = append(rec, 0) // attributes
		rec = binary.AppendVarint(rec, tsDelta)
		rec = binary.AppendVarint(rec, delta)
		rec = appendBytes(rec, r.Key)
		rec = appendBytes(rec, r.Value)
		rec = binary.AppendVarint(rec, int64(len(r.Headers)))
		for _, hd := range r.Headers {
			rec = appendBytes(rec, []byte(hd.Key))
			rec = appendBytes(rec, hd.Value)
		}
		body = binary.AppendVarint(body, int64(len(rec)))
		body = append(body, rec...)
	}
	if len(keep) > 0 {
		var err error
		if body, err = Compress(h.Compression(), body); err != nil {
			return nil, err
		}
	}
	out := make([]byte, HeaderBytes, HeaderBytes+len(body))
	copy(out, b[:HeaderBytes])
	out = append(out, body...)
	be := binary.BigEndian
	be.PutUint32(out[offLength:], uint32(len(out)-LogOverheadBytes))
	be.PutUint16(out[offAttributes:], attrs)
	be.PutUint64(out[offFirstTimestamp:], uint64(first))
	be.PutUint64(out[offMaxTimestamp:], uint64(maxTS))
	be.PutUint32(out[offNumRecords:], uint32(len(keep)))
	be.PutUint32(out[offCRC:], crc32.Checksum(out[offAttributes:], crc32c))
	return out, nil
}
