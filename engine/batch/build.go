package batch

import (
	"encoding/binary"
	"hash/crc32"
)

// Record is one record to put in a batch with Build. A nil Key or Value is
// encoded as null.
type Record struct {
	Key, Value     []byte
	Headers        []RecordHeader
	TimestampDelta int64
}

// BuildOptions are the header fields Build writes.
//
// NB: the zero value is producer id 0, epoch 0: an idempotent batch. Set
// ProducerID to NoProducerID (-1) for a plain one; Build then writes
// producer epoch and base sequence -1 as Kafka clients do.
type BuildOptions struct {
	BaseOffset     int64
	FirstTimestamp int64
	ProducerID     int64
	ProducerEpoch  int16
	BaseSequence   int32
	Transactional  bool
	Control        bool // a control batch (transaction marker)
}

// Build encodes recs as one uncompressed v2 batch with a valid CRC, as a
// client would send it (partition leader epoch -1, MaxTimestamp the largest
// record timestamp). It is a helper for tests and the simulator; with no
// records it builds a batch that Validate rejects.
func Build(opts BuildOptions, recs []Record) []byte {
	b := make([]byte, HeaderBytes, HeaderBytes+64*len(recs))
	var body []byte
	maxTS := opts.FirstTimestamp
	for i, r := range recs {
		b, body = appendRecord(b, body, r.TimestampDelta, int64(i), r.Key, r.Value, r.Headers)
		if i == 0 || opts.FirstTimestamp+r.TimestampDelta > maxTS {
			maxTS = opts.FirstTimestamp + r.TimestampDelta
		}
	}
	epoch, seq := opts.ProducerEpoch, opts.BaseSequence
	if opts.ProducerID < 0 {
		epoch, seq = NoProducerEpoch, NoSequence
	}
	var attrs uint16
	if opts.Transactional {
		attrs |= attrTransactional
	}
	if opts.Control {
		attrs |= attrControl
	}
	be := binary.BigEndian
	be.PutUint64(b[offBaseOffset:], uint64(opts.BaseOffset))
	be.PutUint32(b[offLength:], uint32(len(b)-LogOverheadBytes))
	be.PutUint32(b[offPartitionLeaderEpoch:], 0xffffffff)
	b[offMagic] = Magic
	be.PutUint16(b[offAttributes:], attrs)
	be.PutUint32(b[offLastOffsetDelta:], uint32(int32(len(recs)-1)))
	be.PutUint64(b[offFirstTimestamp:], uint64(opts.FirstTimestamp))
	be.PutUint64(b[offMaxTimestamp:], uint64(maxTS))
	be.PutUint64(b[offProducerID:], uint64(opts.ProducerID))
	be.PutUint16(b[offProducerEpoch:], uint16(epoch))
	be.PutUint32(b[offBaseSequence:], uint32(seq))
	be.PutUint32(b[offNumRecords:], uint32(len(recs)))
	be.PutUint32(b[offCRC:], crc32.Checksum(b[offAttributes:], crc32c))
	return b
}

// appendRecord appends one v2 record, its length first, to dst; scratch
// is a buffer it reuses and returns.
func appendRecord(dst, scratch []byte, tsDelta, offDelta int64, key, value []byte, headers []RecordHeader) ([]byte, []byte) {
	rec := append(scratch[:0], 0) // attributes
	rec = binary.AppendVarint(rec, tsDelta)
	rec = binary.AppendVarint(rec, offDelta)
	rec = appendBytes(rec, key)
	rec = appendBytes(rec, value)
	rec = binary.AppendVarint(rec, int64(len(headers)))
	for _, h := range headers {
		rec = appendBytes(rec, []byte(h.Key))
		rec = appendBytes(rec, h.Value)
	}
	dst = binary.AppendVarint(dst, int64(len(rec)))
	return append(dst, rec...), rec
}

// appendBytes appends a varint length and v; nil is encoded as length -1.
func appendBytes(dst, v []byte) []byte {
	if v == nil {
		return binary.AppendVarint(dst, -1)
	}
	dst = binary.AppendVarint(dst, int64(len(v)))
	return append(dst, v...)
}
