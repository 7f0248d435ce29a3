package batch

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"

	"github.com/twmb/franz-go/pkg/kerr"
)

// Offsets of the v2 batch header fields, in bytes from the start of the batch.
const (
	offBaseOffset           = 0
	offLength               = 8
	offPartitionLeaderEpoch = 12
	offMagic                = 16
	offCRC                  = 17
	offAttributes           = 21 // the CRC covers everything from here to the end
	offLastOffsetDelta      = 23
	offFirstTimestamp       = 27
	offMaxTimestamp         = 35
	offProducerID           = 43
	offProducerEpoch        = 51
	offBaseSequence         = 53
	offNumRecords           = 57
)

const (
	// HeaderBytes is the size of a v2 batch header: the smallest possible
	// batch (one with no record bytes).
	HeaderBytes = 61
	// LogOverheadBytes is the part of the header that batchLength does not
	// count: baseOffset and batchLength themselves.
	LogOverheadBytes = 12
	// Magic is the only record batch format Gregor accepts.
	Magic = 2
)

// Attribute bits of a v2 batch.
const (
	attrCompressionMask = 0x07
	attrLogAppendTime   = 0x08
	attrTransactional   = 0x10
	attrControl         = 0x20
	// attrDeleteHorizon (KIP-534): the log cleaner set FirstTimestamp to
	// the time after which the batch's tombstones may be removed.
	attrDeleteHorizon = 0x40
)

// Compression codecs, as Header.Compression reports them.
const (
	CompressionNone   int8 = 0
	CompressionGzip   int8 = 1
	CompressionSnappy int8 = 2
	CompressionLZ4    int8 = 3
	CompressionZstd   int8 = 4
)

// NoSequence is the base sequence (and NoProducerID the producer id) of a
// batch from a producer that is not idempotent.
const (
	NoSequence      int32 = -1
	NoProducerID    int64 = -1
	NoProducerEpoch int16 = -1
)

var crc32c = crc32.MakeTable(crc32.Castagnoli)

// Header is the decoded fixed-size header of a v2 record batch.
type Header struct {
	BaseOffset           int64
	Length               int32
	PartitionLeaderEpoch int32
	Magic                int8
	CRC                  uint32
	Attributes           int16
	LastOffsetDelta      int32
	FirstTimestamp       int64
	MaxTimestamp         int64
	ProducerID           int64
	ProducerEpoch        int16
	BaseSequence         int32
	NumRecords           int32
}

// Compression returns the codec from the low three attribute bits.
func (h Header) Compression() int8 { return int8(h.Attributes & attrCompressionMask) }

// Transactional reports whether the batch belongs to a transaction.
func (h Header) Transactional() bool { return h.Attributes&attrTransactional != 0 }

// Control reports whether the batch holds control records (transaction
// markers). Clients may not produce them.
func (h Header) Control() bool { return h.Attributes&attrControl != 0 }

// LogAppendTime reports whether the timestamp type is LogAppendTime, in
// which case every record's timestamp is MaxTimestamp.
func (h Header) LogAppendTime() bool { return h.Attributes&attrLogAppendTime != 0 }

// HasDeleteHorizon reports whether the log cleaner stamped the batch with
// a delete horizon (KIP-534); FirstTimestamp then holds it.
func (h Header) HasDeleteHorizon() bool { return h.Attributes&attrDeleteHorizon != 0 }

// Idempotent reports whether the batch carries a producer id.
func (h Header) Idempotent() bool { return h.ProducerID >= 0 }

// LastOffset is the offset of the batch's last record.
func (h Header) LastOffset() int64 { return h.BaseOffset + int64(h.LastOffsetDelta) }

// LastSequence is the sequence number of the batch's last record. Kafka
// sequences wrap from MaxInt32 to 0 (not to MinInt32), as
// DefaultRecordBatch.incrementSequence does; a batch without a sequence
// returns NoSequence.
func (h Header) LastSequence() int32 {
	if h.BaseSequence < 0 {
		return NoSequence
	}
	return IncrementSequence(h.BaseSequence, h.LastOffsetDelta)
}

// IncrementSequence adds n >= 0 to a non-negative sequence number, wrapping
// past MaxInt32 to 0.
func IncrementSequence(seq, n int32) int32 {
	return int32((int64(seq) + int64(n)) % (1 << 31))
}

// ReadHeader decodes the header of the batch at the start of b without
// checking the CRC or that b holds the whole batch; it is for batches that
// were validated before they were stored.
func ReadHeader(b []byte) (Header, error) {
	if len(b) < HeaderBytes {
		return Header{}, fmt.Errorf("batch: %d bytes is shorter than a %d-byte header: %w", len(b), HeaderBytes, kerr.CorruptMessage)
	}
	h := Header{
		BaseOffset:           int64(binary.BigEndian.Uint64(b[offBaseOffset:])),
		Length:               int32(binary.BigEndian.Uint32(b[offLength:])),
		PartitionLeaderEpoch: int32(binary.BigEndian.Uint32(b[offPartitionLeaderEpoch:])),
		Magic:                int8(b[offMagic]),
		CRC:                  binary.BigEndian.Uint32(b[offCRC:]),
		Attributes:           int16(binary.BigEndian.Uint16(b[offAttributes:])),
		LastOffsetDelta:      int32(binary.BigEndian.Uint32(b[offLastOffsetDelta:])),
		FirstTimestamp:       int64(binary.BigEndian.Uint64(b[offFirstTimestamp:])),
		MaxTimestamp:         int64(binary.BigEndian.Uint64(b[offMaxTimestamp:])),
		ProducerID:           int64(binary.BigEndian.Uint64(b[offProducerID:])),
		ProducerEpoch:        int16(binary.BigEndian.Uint16(b[offProducerEpoch:])),
		BaseSequence:         int32(binary.BigEndian.Uint32(b[offBaseSequence:])),
		NumRecords:           int32(binary.BigEndian.Uint32(b[offNumRecords:])),
	}
	if h.Length < HeaderBytes-LogOverheadBytes {
		return h, fmt.Errorf("batch: batchLength %d is shorter than the header: %w", h.Length, kerr.CorruptMessage)
	}
	if h.Magic != Magic {
		return h, fmt.Errorf("batch: magic %d, only %d is supported: %w", h.Magic, Magic, kerr.UnsupportedForMessageFormat)
	}
	return h, nil
}

// Split cuts a Produce partition's Records field into whole batches, as
// sub-slices of records (no copy). Only the framing is checked here:
// validate each batch with Validate. An empty field or an incomplete
// trailing batch is an error.
//
// NB: Kafka (ProduceRequest.validateRecords) rejects a Produce v3+
// partition holding more than one batch with INVALID_RECORD; Split accepts
// several and leaves that policy to the Produce handler.
func Split(records []byte) ([][]byte, error) {
	if len(records) == 0 {
		return nil, fmt.Errorf("batch: produce partition holds no record batch: %w", kerr.InvalidRecord)
	}
	var out [][]byte
	for rest := records; len(rest) > 0; {
		if len(rest) < LogOverheadBytes {
			return nil, fmt.Errorf("batch: %d trailing bytes do not hold a batch length: %w", len(rest), kerr.CorruptMessage)
		}
		n := int64(int32(binary.BigEndian.Uint32(rest[offLength:])))
		if n < HeaderBytes-LogOverheadBytes {
			return nil, fmt.Errorf("batch: batchLength %d is shorter than the header: %w", n, kerr.CorruptMessage)
		}
		if n > int64(len(rest)-LogOverheadBytes) {
			return nil, fmt.Errorf("batch: batchLength %d but only %d bytes follow: %w", n, len(rest)-LogOverheadBytes, kerr.CorruptMessage)
		}
		end := LogOverheadBytes + int(n)
		out = append(out, rest[:end:end])
		rest = rest[end:]
	}
	return out, nil
}

// ValidateStructure checks that b is exactly one well-formed v2 batch: the
// lengths agree, the magic is 2, the CRC-32C matches, the compression codec
// is known, the record count fits lastOffsetDelta, and for an uncompressed
// batch every record parses, offsetDeltas increase up to lastOffsetDelta
// and the records fill the batch exactly. It accepts what the broker itself
// writes (control batches, LogAppendTime, batches the log cleaner rewrote
// with fewer records than offsets, or none); Validate adds the rules for batches
// that come from clients.
//
// NB: a compressed batch (gzip, snappy, lz4, zstd) is checked up to its
// header and CRC only: its records are not decompressed, so a client can
// store a compressed batch whose records are malformed. Consumers then see
// the corruption. Decompressing on the way in is future work.
func ValidateStructure(b []byte) (Header, error) {
	return validate(b, false)
}

func validate(b []byte, strict bool) (Header, error) {
	h, err := ReadHeader(b)
	if err != nil {
		return h, err
	}
	if int64(h.Length) != int64(len(b)-LogOverheadBytes) {
		return h, fmt.Errorf("batch: batchLength %d but the batch has %d bytes after it: %w", h.Length, len(b)-LogOverheadBytes, kerr.CorruptMessage)
	}
	if crc := crc32.Checksum(b[offAttributes:], crc32c); crc != h.CRC {
		return h, fmt.Errorf("batch: crc %08x, computed %08x: %w", h.CRC, crc, kerr.CorruptMessage)
	}
	if h.Compression() > CompressionZstd {
		return h, fmt.Errorf("batch: unknown compression codec %d: %w", h.Compression(), kerr.CorruptMessage)
	}
	// Kafka's LogValidator.validateBatch: INVALID_RECORD for a count that
	// disagrees with the offset range. A cleaned batch keeps its offset
	// range with fewer records, or none (Keep); a client's has one at
	// least.
	if h.NumRecords < 0 || strict && h.NumRecords == 0 && !h.Control() {
		return h, fmt.Errorf("batch: record count %d: %w", h.NumRecords, kerr.InvalidRecord)
	}
	if h.NumRecords < 0 || h.LastOffsetDelta < 0 || int64(h.NumRecords) > int64(h.LastOffsetDelta)+1 ||
		(strict && h.NumRecords > 0 && h.LastOffsetDelta != h.NumRecords-1) {
		return h, fmt.Errorf("batch: lastOffsetDelta %d with %d records: %w", h.LastOffsetDelta, h.NumRecords, kerr.InvalidRecord)
	}
	if h.Compression() != CompressionNone {
		return h, nil // NB: records not checked, see above.
	}
	if err := walkRecords(b[HeaderBytes:], h, strict, nil); err != nil {
		return h, err
	}
	return h, nil
}

// Validate checks a batch from a Produce request: everything
// ValidateStructure checks, plus Kafka's rules for client batches
// (LogValidator.validateBatch and validateTimestamp): no control batches,
// no LogAppendTime timestamps, an idempotent batch has a sequence, a
// transactional batch has a producer id. It never panics, whatever b holds.
//
// Error codes follow Kafka: CORRUPT_MESSAGE (retriable) for bytes that do
// not add up (lengths, CRC), INVALID_RECORD (not retriable) for a batch
// whose CRC matches but whose content breaks the format, as Kafka's
// DefaultRecord.readFrom does ("Found invalid record structure").
func Validate(b []byte) (Header, error) {
	h, err := validate(b, true)
	if err != nil {
		return h, err
	}
	switch {
	case h.Control():
		return h, fmt.Errorf("batch: clients may not write control batches: %w", kerr.InvalidRecord)
	case h.LogAppendTime():
		return h, fmt.Errorf("batch: producers may not set the LogAppendTime timestamp type: %w", kerr.InvalidTimestamp)
	case h.HasDeleteHorizon():
		return h, fmt.Errorf("batch: producers may not set the delete horizon flag: %w", kerr.InvalidRecord)
	case h.Idempotent() && h.BaseSequence < 0:
		return h, fmt.Errorf("batch: producer %d sent base sequence %d: %w", h.ProducerID, h.BaseSequence, kerr.InvalidRecord)
	case h.Transactional() && !h.Idempotent():
		// As kfake does; Kafka's own clients cannot build such a batch.
		return h, fmt.Errorf("batch: transactional batch without a producer id: %w", kerr.InvalidProducerIDMapping)
	}
	return h, nil
}

// SetBaseOffset writes the offset of the batch's first record. The field
// sits outside the CRC, so the batch stays valid. b must hold a header.
func SetBaseOffset(b []byte, off int64) {
	binary.BigEndian.PutUint64(b[offBaseOffset:], uint64(off))
}

// SetPartitionLeaderEpoch writes the leader epoch (raft term) the batch was
// appended under. The field sits outside the CRC. b must hold a header.
func SetPartitionLeaderEpoch(b []byte, epoch int32) {
	binary.BigEndian.PutUint32(b[offPartitionLeaderEpoch:], uint32(epoch))
}

// SetLogAppendTime marks the batch's timestamps as LogAppendTime and sets
// MaxTimestamp (the timestamp every record then reports) to ts, as Kafka's
// setMaxTimestamp does for topics with message.timestamp.type=LogAppendTime.
// Both fields are covered by the CRC, so it is recomputed: one pass over the
// batch. b must be a whole, validated batch.
func SetLogAppendTime(b []byte, ts int64) {
	attrs := binary.BigEndian.Uint16(b[offAttributes:])
	binary.BigEndian.PutUint16(b[offAttributes:], attrs|attrLogAppendTime)
	binary.BigEndian.PutUint64(b[offMaxTimestamp:], uint64(ts))
	binary.BigEndian.PutUint32(b[offCRC:], crc32.Checksum(b[offAttributes:], crc32c))
}

// Code returns the Kafka error code an error from this package carries:
// 0 for nil, UNKNOWN_SERVER_ERROR for an error without a kerr value.
func Code(err error) int16 {
	if err == nil {
		return 0
	}
	var ke *kerr.Error
	if errors.As(err, &ke) {
		return ke.Code
	}
	return kerr.UnknownServerError.Code
}
