package batch

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/klauspost/compress/s2"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// kmsgBatch encodes records with franz-go's kmsg types (an encoder
// independent of Build), lets edit change the header, then fixes the length
// and the CRC.
func kmsgBatch(recs []kmsg.Record, edit func(*kmsg.RecordBatch)) []byte {
	var raw []byte
	for i := range recs {
		r := recs[i]
		r.Length = 0
		r.Length = int32(len(r.AppendTo(nil)) - 1) // a zero length is one varint byte
		raw = r.AppendTo(raw)
	}
	rb := kmsg.RecordBatch{
		PartitionLeaderEpoch: -1,
		Magic:                2,
		LastOffsetDelta:      int32(len(recs) - 1),
		FirstTimestamp:       1000,
		MaxTimestamp:         1000,
		ProducerID:           -1,
		ProducerEpoch:        -1,
		FirstSequence:        -1,
		NumRecords:           int32(len(recs)),
		Records:              raw,
	}
	if edit != nil {
		edit(&rb)
	}
	rb.Length = int32(HeaderBytes - LogOverheadBytes + len(rb.Records))
	b := rb.AppendTo(nil)
	fixCRC(b)
	return b
}

func fixCRC(b []byte) {
	binary.BigEndian.PutUint32(b[offCRC:], crc32.Checksum(b[offAttributes:], crc32.MakeTable(crc32.Castagnoli)))
}

// rawRecord frames a hand-encoded record body with its varint length.
func rawRecord(body ...[]byte) []byte {
	joined := bytes.Join(body, nil)
	return append(binary.AppendVarint(nil, int64(len(joined))), joined...)
}

func vi(v int64) []byte { return binary.AppendVarint(nil, v) }

// okBody is a valid record body for index i: attributes, timestampDelta,
// offsetDelta, key (null), value "v", no headers.
func okBody(i int64) []byte {
	return bytes.Join([][]byte{{0}, vi(0), vi(i), vi(-1), vi(1), []byte("v"), vi(0)}, nil)
}

func threeRecords() []kmsg.Record {
	return []kmsg.Record{
		{OffsetDelta: 0, Key: []byte("k0"), Value: []byte("v0")},
		{OffsetDelta: 1, TimestampDelta64: 5, Value: []byte("v1"), Headers: []kmsg.Header{{Key: "h", Value: []byte("x")}, {Key: "", Value: nil}}},
		{OffsetDelta: 2, TimestampDelta64: 3, Key: []byte{}, Value: nil},
	}
}

func TestBuildMatchesKmsg(t *testing.T) {
	got := Build(BuildOptions{FirstTimestamp: 1000, ProducerID: NoProducerID}, []Record{
		{Key: []byte("k0"), Value: []byte("v0")},
		{TimestampDelta: 5, Value: []byte("v1"), Headers: []RecordHeader{{Key: "h", Value: []byte("x")}, {Key: ""}}},
		{TimestampDelta: 3, Key: []byte{}},
	})
	want := kmsgBatch(threeRecords(), func(rb *kmsg.RecordBatch) { rb.MaxTimestamp = 1005 })
	if !bytes.Equal(got, want) {
		t.Fatalf("Build and kmsg differ:\n build %x\n kmsg  %x", got, want)
	}
}

func TestRecordsDecodes(t *testing.T) {
	b := kmsgBatch(threeRecords(), func(rb *kmsg.RecordBatch) { rb.FirstOffset = 40 })
	recs, err := Records(b)
	if err != nil {
		t.Fatal(err)
	}
	want := []DecodedRecord{
		{Offset: 40, Timestamp: 1000, Key: []byte("k0"), Value: []byte("v0")},
		{Offset: 41, Timestamp: 1005, Value: []byte("v1"), Headers: []RecordHeader{{Key: "h", Value: []byte("x")}, {Key: ""}}},
		{Offset: 42, Timestamp: 1003, Key: []byte{}},
	}
	if d := cmp.Diff(want, recs); d != "" {
		t.Fatalf("records (-want +got):\n%s", d)
	}
	if recs[2].Key == nil || recs[2].Value != nil {
		t.Fatalf("empty key must stay non-nil and null value nil: %#v", recs[2])
	}

	SetLogAppendTime(b, 7777)
	recs, err = Records(b)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if r.Timestamp != 7777 {
			t.Fatalf("LogAppendTime batch: record timestamp %d, want 7777", r.Timestamp)
		}
	}
}

func TestHeader(t *testing.T) {
	b := Build(BuildOptions{BaseOffset: 9, FirstTimestamp: 50, ProducerID: 7, ProducerEpoch: 3, BaseSequence: 10, Transactional: true},
		[]Record{{Value: []byte("a")}, {Value: []byte("b"), TimestampDelta: 4}})
	h, err := Validate(b)
	if err != nil {
		t.Fatal(err)
	}
	want := Header{BaseOffset: 9, Length: int32(len(b) - 12), PartitionLeaderEpoch: -1, Magic: 2, CRC: h.CRC,
		Attributes: attrTransactional, LastOffsetDelta: 1, FirstTimestamp: 50, MaxTimestamp: 54,
		ProducerID: 7, ProducerEpoch: 3, BaseSequence: 10, NumRecords: 2}
	if d := cmp.Diff(want, h); d != "" {
		t.Fatalf("header (-want +got):\n%s", d)
	}
	if !h.Transactional() || !h.Idempotent() || h.Control() || h.LogAppendTime() || h.Compression() != CompressionNone {
		t.Fatalf("attribute accessors wrong for %+v", h)
	}
	if h.LastSequence() != 11 || h.LastOffset() != 10 {
		t.Fatalf("LastSequence %d LastOffset %d", h.LastSequence(), h.LastOffset())
	}
	if rh, err := ReadHeader(b); err != nil || rh != h {
		t.Fatalf("ReadHeader = %+v, %v", rh, err)
	}
}

func TestLastSequenceWraps(t *testing.T) {
	for _, tc := range []struct{ base, delta, want int32 }{
		{0, 0, 0},
		{5, 4, 9},
		{2147483647, 0, 2147483647},
		{2147483647, 1, 0},
		{2147483640, 9, 1},
		{-1, 3, NoSequence},
	} {
		h := Header{BaseSequence: tc.base, LastOffsetDelta: tc.delta}
		if got := h.LastSequence(); got != tc.want {
			t.Errorf("LastSequence(base %d, delta %d) = %d, want %d", tc.base, tc.delta, got, tc.want)
		}
	}
}

func TestSetFieldsOutsideCRC(t *testing.T) {
	b := Build(BuildOptions{ProducerID: NoProducerID}, []Record{{Value: []byte("x")}})
	SetBaseOffset(b, 123456789)
	SetPartitionLeaderEpoch(b, 42)
	h, err := Validate(b)
	if err != nil {
		t.Fatal(err)
	}
	if h.BaseOffset != 123456789 || h.PartitionLeaderEpoch != 42 {
		t.Fatalf("got %+v", h)
	}
	SetLogAppendTime(b, 99)
	h, err = ValidateStructure(b)
	if err != nil || !h.LogAppendTime() || h.MaxTimestamp != 99 {
		t.Fatalf("after SetLogAppendTime: %+v, %v", h, err)
	}
}

func TestValidate(t *testing.T) {
	one := []kmsg.Record{{Value: []byte("v")}}
	// withRecords builds a one-record batch whose records region is raw.
	withRecords := func(raw ...[]byte) []byte {
		return kmsgBatch(nil, func(rb *kmsg.RecordBatch) {
			rb.Records = bytes.Join(raw, nil)
			rb.NumRecords, rb.LastOffsetDelta = 1, 0
		})
	}
	valid := kmsgBatch(one, nil)
	tests := []struct {
		name       string
		b          []byte
		want       *kerr.Error // nil: accepted
		structural bool        // ValidateStructure accepts it
	}{
		{name: "one record", b: valid},
		{name: "three records with headers, null and empty keys", b: kmsgBatch(threeRecords(), nil)},
		{name: "idempotent", b: kmsgBatch(one, func(rb *kmsg.RecordBatch) { rb.ProducerID, rb.ProducerEpoch, rb.FirstSequence = 4, 0, 0 })},
		{name: "transactional", b: kmsgBatch(one, func(rb *kmsg.RecordBatch) {
			rb.ProducerID, rb.ProducerEpoch, rb.FirstSequence, rb.Attributes = 4, 0, 0, 0x10
		})},
		{name: "nonzero base offset is overwritten, not rejected", b: kmsgBatch(one, func(rb *kmsg.RecordBatch) { rb.FirstOffset = 77 })},
		// NB: compressed batches are only checked up to the CRC.
		{name: "zstd with garbage records passes", b: kmsgBatch(one, func(rb *kmsg.RecordBatch) { rb.Attributes = 4; rb.Records = []byte{1, 2, 3} })},

		{name: "empty", b: nil, want: kerr.CorruptMessage},
		{name: "shorter than a header", b: valid[:60], want: kerr.CorruptMessage},
		{name: "truncated", b: valid[:len(valid)-1], want: kerr.CorruptMessage},
		{name: "trailing byte", b: append(append([]byte{}, valid...), 0), want: kerr.CorruptMessage},
		{name: "negative length", b: func() []byte {
			b := bytes.Clone(valid)
			binary.BigEndian.PutUint32(b[offLength:], 0xfffffff0)
			return b
		}(), want: kerr.CorruptMessage},
		{name: "magic 1", b: kmsgBatch(one, func(rb *kmsg.RecordBatch) { rb.Magic = 1 }), want: kerr.UnsupportedForMessageFormat},
		{name: "magic 3", b: kmsgBatch(one, func(rb *kmsg.RecordBatch) { rb.Magic = 3 }), want: kerr.UnsupportedForMessageFormat},
		{name: "crc mismatch", b: func() []byte {
			b := bytes.Clone(valid)
			b[len(b)-1] ^= 1
			return b
		}(), want: kerr.CorruptMessage},
		{name: "compression 5", b: kmsgBatch(one, func(rb *kmsg.RecordBatch) { rb.Attributes = 5 }), want: kerr.CorruptMessage},
		{name: "no records", b: kmsgBatch(nil, nil), want: kerr.InvalidRecord},
		{name: "negative record count", b: kmsgBatch(one, func(rb *kmsg.RecordBatch) { rb.NumRecords = -1 }), want: kerr.InvalidRecord},
		// A cleaned batch covers more offsets than it has records: the
		// store accepts it, a producer may not send it.
		{name: "lastOffsetDelta too large", b: kmsgBatch(one, func(rb *kmsg.RecordBatch) { rb.LastOffsetDelta = 1 }), want: kerr.InvalidRecord, structural: true},
		{name: "compressed lastOffsetDelta mismatch", b: kmsgBatch(one, func(rb *kmsg.RecordBatch) { rb.Attributes = 1; rb.LastOffsetDelta = 3 }), want: kerr.InvalidRecord, structural: true},
		{name: "lastOffsetDelta below the record count", b: kmsgBatch([]kmsg.Record{{OffsetDelta: 0}, {OffsetDelta: 1}}, func(rb *kmsg.RecordBatch) { rb.LastOffsetDelta = 0 }), want: kerr.InvalidRecord},
		{name: "delete horizon from a client", b: kmsgBatch(one, func(rb *kmsg.RecordBatch) { rb.Attributes = 0x40 }), want: kerr.InvalidRecord, structural: true},
		{name: "control batch from a client", b: kmsgBatch(one, func(rb *kmsg.RecordBatch) { rb.Attributes = 0x20 }), want: kerr.InvalidRecord, structural: true},
		{name: "LogAppendTime from a client", b: kmsgBatch(one, func(rb *kmsg.RecordBatch) { rb.Attributes = 0x08 }), want: kerr.InvalidTimestamp, structural: true},
		{name: "idempotent without sequence", b: kmsgBatch(one, func(rb *kmsg.RecordBatch) { rb.ProducerID, rb.ProducerEpoch = 4, 0 }), want: kerr.InvalidRecord, structural: true},
		{name: "transactional without producer id", b: kmsgBatch(one, func(rb *kmsg.RecordBatch) { rb.Attributes = 0x10 }), want: kerr.InvalidProducerIDMapping, structural: true},

		{name: "offsetDelta not its index", b: kmsgBatch([]kmsg.Record{{OffsetDelta: 0}, {OffsetDelta: 2}}, nil), want: kerr.InvalidRecord},
		{name: "fewer records than counted", b: kmsgBatch(one, func(rb *kmsg.RecordBatch) { rb.NumRecords, rb.LastOffsetDelta = 2, 1 }), want: kerr.InvalidRecord},
		{name: "bytes after the last record", b: withRecords(rawRecord(okBody(0)), []byte{0}), want: kerr.InvalidRecord},
		{name: "record length past the batch", b: withRecords(append(vi(100), okBody(0)...)), want: kerr.InvalidRecord},
		{name: "negative record length", b: withRecords(append(vi(-3), okBody(0)...)), want: kerr.InvalidRecord},
		{name: "bytes after the headers", b: withRecords(rawRecord(okBody(0), []byte{9})), want: kerr.InvalidRecord},
		{name: "record ends inside the value", b: withRecords(rawRecord([]byte{0}, vi(0), vi(0), vi(-1), vi(5), []byte("ab"))), want: kerr.InvalidRecord},
		{name: "empty record", b: withRecords(rawRecord()), want: kerr.InvalidRecord},
		{name: "key length -2", b: withRecords(rawRecord([]byte{0}, vi(0), vi(0), vi(-2), vi(-1), vi(0))), want: kerr.InvalidRecord},
		{name: "value length past the record", b: withRecords(rawRecord([]byte{0}, vi(0), vi(0), vi(-1), vi(9), vi(0))), want: kerr.InvalidRecord},
		{name: "negative header count", b: withRecords(rawRecord([]byte{0}, vi(0), vi(0), vi(-1), vi(-1), vi(-1))), want: kerr.InvalidRecord},
		{name: "header count past the record", b: withRecords(rawRecord([]byte{0}, vi(0), vi(0), vi(-1), vi(-1), vi(3), vi(0), vi(0))), want: kerr.InvalidRecord},
		{name: "null header key", b: withRecords(rawRecord([]byte{0}, vi(0), vi(0), vi(-1), vi(-1), vi(1), vi(-1), vi(-1))), want: kerr.InvalidRecord},
		{name: "varint longer than 5 bytes", b: withRecords(rawRecord([]byte{0}, vi(0), []byte{0x80, 0x80, 0x80, 0x80, 0x80, 0x00}, vi(-1), vi(-1), vi(0))), want: kerr.InvalidRecord},
		{name: "varint overflowing int32", b: withRecords(rawRecord([]byte{0}, vi(0), []byte{0x80, 0x80, 0x80, 0x80, 0x10}, vi(-1), vi(-1), vi(0))), want: kerr.InvalidRecord},
		{name: "timestamp varint longer than 10 bytes", b: withRecords(rawRecord([]byte{0}, bytes.Repeat([]byte{0xff}, 10), []byte{0}, vi(0), vi(-1), vi(-1), vi(0))), want: kerr.InvalidRecord},
		{name: "record body truncated at timestampDelta", b: withRecords(rawRecord([]byte{0, 0x80})), want: kerr.InvalidRecord},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Validate(tc.b)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("rejected: %v", err)
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if Code(err) != tc.want.Code {
				t.Fatalf("Code = %d, want %d", Code(err), tc.want.Code)
			}
			if _, serr := ValidateStructure(tc.b); (serr == nil) != tc.structural {
				t.Fatalf("ValidateStructure err = %v, structural = %v", serr, tc.structural)
			}
		})
	}
}

func TestSplit(t *testing.T) {
	a := Build(BuildOptions{ProducerID: NoProducerID}, []Record{{Value: []byte("a")}})
	b := Build(BuildOptions{ProducerID: NoProducerID}, []Record{{Value: []byte("bb")}, {Value: []byte("c")}})
	both := append(append([]byte{}, a...), b...)

	got, err := Split(both)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || !bytes.Equal(got[0], a) || !bytes.Equal(got[1], b) {
		t.Fatalf("Split gave %d batches", len(got))
	}
	if &got[1][0] != &both[len(a)] {
		t.Fatal("Split copied instead of slicing")
	}
	if len(append(got[0], 0xff)) > 0 && both[len(a)] != b[0] {
		t.Fatal("appending to one batch overwrote the next")
	}

	for _, tc := range []struct {
		name string
		b    []byte
		want *kerr.Error
	}{
		{"empty", nil, kerr.InvalidRecord},
		{"partial trailing batch", both[:len(both)-1], kerr.CorruptMessage},
		{"trailing bytes shorter than the length field", append(bytes.Clone(a), 1, 2, 3), kerr.CorruptMessage},
		{"length shorter than a header", func() []byte {
			c := bytes.Clone(a)
			binary.BigEndian.PutUint32(c[offLength:], 10)
			return c
		}(), kerr.CorruptMessage},
		{"negative length", func() []byte {
			c := bytes.Clone(a)
			binary.BigEndian.PutUint32(c[offLength:], 0x80000000)
			return c
		}(), kerr.CorruptMessage},
	} {
		if _, err := Split(tc.b); !errors.Is(err, tc.want) {
			t.Errorf("%s: err = %v, want %v", tc.name, err, tc.want)
		}
	}
}

func TestCode(t *testing.T) {
	if Code(nil) != 0 || Code(errors.New("x")) != kerr.UnknownServerError.Code {
		t.Fatal("Code of nil or a plain error")
	}
	if _, err := Validate(nil); Code(err) != kerr.CorruptMessage.Code {
		t.Fatalf("Code(%v) = %d", err, Code(err))
	}
}

// TestRecordsDecompress decodes batches compressed by franz-go's own
// compressor (the bytes its producers send) with every codec, and what
// Keep recompresses.
func TestRecordsDecompress(t *testing.T) {
	recs := threeRecords()
	plain := kmsgBatch(recs, nil)
	want, err := Records(plain)
	if err != nil {
		t.Fatal(err)
	}
	for _, codec := range []kgo.CompressionCodec{kgo.GzipCompression(), kgo.SnappyCompression(), kgo.Lz4Compression(), kgo.ZstdCompression()} {
		c, err := kgo.DefaultCompressor(codec)
		if err != nil {
			t.Fatal(err)
		}
		body, typ := c.Compress(new(bytes.Buffer), plain[HeaderBytes:])
		b := kmsgBatch(recs, func(rb *kmsg.RecordBatch) { rb.Attributes = int16(typ); rb.Records = body })
		got, err := Records(b)
		if err != nil {
			t.Fatalf("codec %d: %v", typ, err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("codec %d: (-want +got)\n%s", typ, diff)
		}
		h, _ := ReadHeader(b)
		kept, err := Keep(b, h, got[1:], -1)
		if err != nil {
			t.Fatal(err)
		}
		again, err := Records(kept)
		if err != nil {
			t.Fatalf("codec %d: kept batch: %v", typ, err)
		}
		if diff := cmp.Diff(want[1:], again); diff != "" {
			t.Fatalf("codec %d: kept (-want +got)\n%s", typ, diff)
		}
		if kh, _ := ReadHeader(kept); kh.Compression() != h.Compression() || kh.LastOffsetDelta != h.LastOffsetDelta || kh.NumRecords != 2 {
			t.Fatalf("codec %d: kept header %+v", typ, kh)
		}
	}
	// xerial framing, as the Java client writes snappy.
	block := s2.EncodeSnappy(nil, plain[HeaderBytes:])
	x := append([]byte{130, 83, 78, 65, 80, 80, 89, 0, 0, 0, 0, 1, 0, 0, 0, 1}, binary.BigEndian.AppendUint32(nil, uint32(len(block)))...)
	x = append(x, block...)
	got, err := Records(kmsgBatch(recs, func(rb *kmsg.RecordBatch) { rb.Attributes = 2; rb.Records = x }))
	if err != nil || !cmp.Equal(want, got) {
		t.Fatalf("xerial: %v %v", got, err)
	}
	// Garbage is CORRUPT_MESSAGE, not a panic.
	for codec := int16(1); codec <= 4; codec++ {
		b := kmsgBatch(recs, func(rb *kmsg.RecordBatch) { rb.Attributes = codec; rb.Records = []byte("not compressed at all") })
		if _, err := Records(b); !errors.Is(err, kerr.CorruptMessage) {
			t.Fatalf("codec %d garbage: err = %v", codec, err)
		}
	}
}

// TestKeepNone: a batch the cleaner keeps with no record is its header
// alone, covering the same offsets with the same producer fields and both
// timestamps the max one (Kafka's writeEmptyHeader), which
// the broker reads back (ValidateStructure, Records) and a producer may
// not send (Validate).
func TestKeepNone(t *testing.T) {
	b := Build(BuildOptions{BaseOffset: 40, ProducerID: 7, ProducerEpoch: 2, BaseSequence: 5, FirstTimestamp: 1000},
		[]Record{{Key: []byte("k"), Value: []byte("v")}, {Key: []byte("k"), TimestampDelta: 4}})
	h, _ := ReadHeader(b)
	kept, err := Keep(b, h, nil, -1)
	if err != nil {
		t.Fatal(err)
	}
	kh, err := ValidateStructure(kept)
	if err != nil {
		t.Fatal(err)
	}
	if len(kept) != HeaderBytes || kh.NumRecords != 0 || kh.BaseOffset != 40 || kh.LastOffset() != 41 || kh.ProducerID != 7 ||
		kh.ProducerEpoch != 2 || kh.BaseSequence != 5 || kh.LastSequence() != 6 || kh.MaxTimestamp != h.MaxTimestamp || kh.FirstTimestamp != h.MaxTimestamp {
		t.Fatalf("header %+v (%d bytes), from %+v", kh, len(kept), h)
	}
	if recs, err := Records(kept); err != nil || len(recs) != 0 {
		t.Fatalf("records %v, %v", recs, err)
	}
	if _, err := Validate(kept); !errors.Is(err, kerr.InvalidRecord) {
		t.Fatalf("a producer's batch with no record: err = %v", err)
	}
}

// TestKeepDeleteHorizon: the horizon goes into FirstTimestamp and the flag
// is set, while every record keeps its timestamp.
func TestKeepDeleteHorizon(t *testing.T) {
	b := kmsgBatch(threeRecords(), nil)
	h, _ := ReadHeader(b)
	recs, _ := Records(b)
	kept, err := Keep(b, h, recs[:1], 999_999)
	if err != nil {
		t.Fatal(err)
	}
	kh, _ := ReadHeader(kept)
	if !kh.HasDeleteHorizon() || kh.FirstTimestamp != 999_999 || kh.LastOffsetDelta != 2 || kh.NumRecords != 1 {
		t.Fatalf("header %+v", kh)
	}
	got, err := Records(kept)
	if err != nil || !cmp.Equal(recs[:1], got) || kh.MaxTimestamp != recs[0].Timestamp {
		t.Fatalf("records %v %v, max timestamp %d", got, err, kh.MaxTimestamp)
	}
	if _, err := Validate(kept); err == nil {
		t.Fatal("a producer may not send a cleaned batch")
	}
}
