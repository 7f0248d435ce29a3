package batch

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
)

// RecordHeader is one key/value header of a record. A nil Value is a null
// header value; Kafka does not allow a null key.
type RecordHeader struct {
	Key   string
	Value []byte
}

// DecodedRecord is one record of a batch with its absolute offset and
// timestamp. Key and Value alias the batch bytes; nil means null.
type DecodedRecord struct {
	Offset    int64
	Timestamp int64
	Key       []byte
	Value     []byte
	Headers   []RecordHeader
}

// Records validates b with ValidateStructure and decodes its records,
// decompressing them if needed. Offsets are BaseOffset+offsetDelta;
// timestamps are FirstTimestamp+timestampDelta, or MaxTimestamp for a
// LogAppendTime batch. Key, Value and header values alias b or the
// decompressed bytes.
func Records(b []byte) ([]DecodedRecord, error) {
	h, err := ValidateStructure(b)
	if err != nil {
		return nil, err
	}
	body, err := Decompress(h.Compression(), b[HeaderBytes:])
	if err != nil {
		return nil, err
	}
	out := make([]DecodedRecord, 0, min(int(h.NumRecords), len(body)))
	if err := walkRecords(body, h, false, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// recordCorrupt reports a malformed record inside a batch whose CRC matched:
// INVALID_RECORD, as Kafka's DefaultRecord.readFrom does.
func recordCorrupt(i int32, what string) error {
	return fmt.Errorf("batch: record %d: %s: %w", i, what, kerr.InvalidRecord)
}

// walkRecords parses the h.NumRecords records in body (the bytes after the
// header of an uncompressed batch, or the decompressed ones) and checks
// that they fill it exactly and that offsetDeltas increase up to
// lastOffsetDelta; strict (a client's batch) wants each offsetDelta to be
// its index. If out is not nil the records are appended to it.
func walkRecords(body []byte, h Header, strict bool, out *[]DecodedRecord) error {
	pos := 0
	prev := int32(-1)
	for i := int32(0); i < h.NumRecords; i++ {
		n, p, ok := readVarint32(body, pos)
		if !ok {
			return recordCorrupt(i, "bad length varint")
		}
		if n < 0 || int64(n) > int64(len(body)-p) {
			return recordCorrupt(i, fmt.Sprintf("length %d with %d bytes left", n, len(body)-p))
		}
		rec := body[p : p+int(n)]
		pos = p + int(n)
		if err := parseRecord(rec, i, h, strict, &prev, out); err != nil {
			return err
		}
	}
	if pos != len(body) {
		return fmt.Errorf("batch: %d bytes after the last of %d records: %w", len(body)-pos, h.NumRecords, kerr.InvalidRecord)
	}
	return nil
}

// parseRecord parses the body of record i (after its length varint).
func parseRecord(rec []byte, i int32, h Header, strict bool, prev *int32, out *[]DecodedRecord) error {
	if len(rec) < 1 {
		return recordCorrupt(i, "missing attributes")
	}
	p := 1 // attributes: unused in v2
	tsDelta, p, ok := readVarint64(rec, p)
	if !ok {
		return recordCorrupt(i, "bad timestampDelta")
	}
	offDelta, p, ok := readVarint32(rec, p)
	if !ok {
		return recordCorrupt(i, "bad offsetDelta")
	}
	if (strict && offDelta != i) || offDelta <= *prev || offDelta > h.LastOffsetDelta {
		return recordCorrupt(i, fmt.Sprintf("offsetDelta %d", offDelta))
	}
	*prev = offDelta
	key, p, ok := readBytes(rec, p)
	if !ok {
		return recordCorrupt(i, "bad key")
	}
	value, p, ok := readBytes(rec, p)
	if !ok {
		return recordCorrupt(i, "bad value")
	}
	nh, p, ok := readVarint32(rec, p)
	if !ok || nh < 0 {
		return recordCorrupt(i, "bad header count")
	}
	var headers []RecordHeader
	if out != nil && nh > 0 {
		// Each header takes at least two bytes, which bounds the allocation.
		headers = make([]RecordHeader, 0, min(int(nh), (len(rec)-p)/2))
	}
	for j := int32(0); j < nh; j++ {
		var hk, hv []byte
		hk, p, ok = readBytes(rec, p)
		if !ok || hk == nil {
			return recordCorrupt(i, fmt.Sprintf("bad key of header %d", j))
		}
		hv, p, ok = readBytes(rec, p)
		if !ok {
			return recordCorrupt(i, fmt.Sprintf("bad value of header %d", j))
		}
		if out != nil {
			headers = append(headers, RecordHeader{Key: string(hk), Value: hv})
		}
	}
	if p != len(rec) {
		return recordCorrupt(i, fmt.Sprintf("%d bytes after the headers", len(rec)-p))
	}
	if out != nil {
		ts := h.FirstTimestamp + tsDelta
		if h.LogAppendTime() {
			ts = h.MaxTimestamp
		}
		*out = append(*out, DecodedRecord{
			Offset:    h.BaseOffset + int64(offDelta),
			Timestamp: ts,
			Key:       key,
			Value:     value,
			Headers:   headers,
		})
	}
	return nil
}

// readUvarint reads an unsigned LEB128 value of at most maxBytes bytes whose
// last byte carries at most lastBits significant bits, so the value fits the
// target width (Kafka's ByteUtils rejects longer varints too).
func readUvarint(b []byte, pos, maxBytes int, lastBits uint) (uint64, int, bool) {
	var v uint64
	for i := 0; i < maxBytes; i++ {
		if pos >= len(b) {
			return 0, pos, false
		}
		c := b[pos]
		pos++
		if i == maxBytes-1 && c>>lastBits != 0 {
			return 0, pos, false
		}
		v |= uint64(c&0x7f) << (7 * i)
		if c < 0x80 {
			return v, pos, true
		}
	}
	return 0, pos, false
}

// readVarint32 reads a zigzag varint that must fit an int32 (at most 5 bytes).
func readVarint32(b []byte, pos int) (int32, int, bool) {
	u, pos, ok := readUvarint(b, pos, 5, 4)
	x := uint32(u)
	return int32(x>>1) ^ -int32(x&1), pos, ok
}

// readVarint64 reads a zigzag varint that must fit an int64 (at most 10 bytes).
func readVarint64(b []byte, pos int) (int64, int, bool) {
	u, pos, ok := readUvarint(b, pos, 10, 1)
	return int64(u>>1) ^ -int64(u&1), pos, ok
}

// readBytes reads a varint length and that many bytes; length -1 is null.
func readBytes(b []byte, pos int) ([]byte, int, bool) {
	n, pos, ok := readVarint32(b, pos)
	if !ok || n < -1 || int64(n) > int64(len(b)-pos) {
		return nil, pos, false
	}
	if n == -1 {
		return nil, pos, true
	}
	end := pos + int(n)
	return b[pos:end:end], end, true
}
