package batch

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/twmb/franz-go/pkg/kerr"
	"pgregory.net/rapid"
)

// genBytes draws a nil (null) or possibly empty byte slice.
func genBytes(t *rapid.T, label string, maxLen int) []byte {
	if rapid.Bool().Draw(t, label+"Null") {
		return nil
	}
	return rapid.SliceOfN(rapid.Byte(), 0, maxLen).Draw(t, label)
}

func genBatch(t *rapid.T) (BuildOptions, []Record) {
	opts := BuildOptions{
		BaseOffset:     rapid.Int64Range(0, math.MaxInt64/2).Draw(t, "baseOffset"),
		FirstTimestamp: rapid.Int64Range(-1, 1<<42).Draw(t, "firstTimestamp"),
		ProducerID:     NoProducerID,
	}
	if rapid.Bool().Draw(t, "idempotent") {
		opts.ProducerID = rapid.Int64Range(0, math.MaxInt64).Draw(t, "pid")
		opts.ProducerEpoch = rapid.Int16Range(0, math.MaxInt16).Draw(t, "epoch")
		opts.BaseSequence = rapid.Int32Range(0, math.MaxInt32).Draw(t, "seq")
		opts.Transactional = rapid.Bool().Draw(t, "transactional")
	}
	n := rapid.IntRange(1, 20).Draw(t, "records")
	recs := make([]Record, n)
	for i := range recs {
		recs[i] = Record{
			Key:            genBytes(t, "key", 20),
			Value:          genBytes(t, "value", 300),
			TimestampDelta: rapid.Int64Range(-1000, 1<<40).Draw(t, "tsDelta"),
		}
		for range rapid.IntRange(0, 3).Draw(t, "headers") {
			recs[i].Headers = append(recs[i].Headers, RecordHeader{
				Key:   rapid.StringN(0, 10, -1).Draw(t, "headerKey"),
				Value: genBytes(t, "headerValue", 10),
			})
		}
	}
	return opts, recs
}

// TestPropertyBuiltBatchesValidate: whatever Build makes, Validate accepts
// and Records decodes back to what went in.
func TestPropertyBuiltBatchesValidate(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		opts, recs := genBatch(t)
		b := Build(opts, recs)
		h, err := Validate(b)
		if err != nil {
			t.Fatalf("Validate: %v", err)
		}
		if h.NumRecords != int32(len(recs)) || h.BaseOffset != opts.BaseOffset || h.ProducerID != opts.ProducerID || h.Transactional() != opts.Transactional {
			t.Fatalf("header %+v for %+v", h, opts)
		}
		got, err := Records(b)
		if err != nil {
			t.Fatalf("Records: %v", err)
		}
		want := make([]DecodedRecord, len(recs))
		for i, r := range recs {
			want[i] = DecodedRecord{Offset: opts.BaseOffset + int64(i), Timestamp: opts.FirstTimestamp + r.TimestampDelta, Key: r.Key, Value: r.Value, Headers: r.Headers}
		}
		if d := cmp.Diff(want, got); d != "" {
			t.Fatalf("records (-want +got):\n%s", d)
		}
		if split, err := Split(b); err != nil || len(split) != 1 {
			t.Fatalf("Split: %d batches, %v", len(split), err)
		}
	})
}

// TestPropertyByteFlipsRejected: changing any byte the CRC covers (or the
// CRC itself) is caught as CORRUPT_MESSAGE; changing the fields outside it
// (base offset, partition leader epoch) is not an error.
func TestPropertyByteFlipsRejected(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		opts, recs := genBatch(t)
		b := Build(opts, recs)
		i := rapid.IntRange(offCRC, len(b)-1).Draw(t, "index")
		x := rapid.ByteRange(1, 255).Draw(t, "xor")
		b[i] ^= x
		if _, err := Validate(b); !errors.Is(err, kerr.CorruptMessage) {
			t.Fatalf("flip of byte %d by %#x: err = %v", i, x, err)
		}
		b[i] ^= x

		j := rapid.SampledFrom([]int{0, 1, 2, 3, 4, 5, 6, 7, 12, 13, 14, 15}).Draw(t, "outside")
		b[j] ^= x
		if _, err := Validate(b); err != nil {
			t.Fatalf("flip of byte %d outside the CRC: %v", j, err)
		}
	})
}

func FuzzValidate(f *testing.F) {
	plain := Build(BuildOptions{ProducerID: NoProducerID, FirstTimestamp: 1}, []Record{{Key: []byte("k"), Value: []byte("v")}})
	rich := Build(BuildOptions{BaseOffset: 5, ProducerID: 3, ProducerEpoch: 1, BaseSequence: 9, Transactional: true}, []Record{
		{Value: []byte("a"), Headers: []RecordHeader{{Key: "h", Value: []byte("x")}, {Key: "n"}}},
		{TimestampDelta: -4, Key: []byte{}},
		{TimestampDelta: 1 << 40, Value: bytes.Repeat([]byte("z"), 200)},
	})
	compressed := bytes.Clone(plain)
	compressed[offAttributes+1] = byte(CompressionZstd)
	fixCRC(compressed)
	f.Add(plain, int64(0), false)
	f.Add(rich, int64(1<<40), false)
	f.Add(compressed, int64(-1), false)
	f.Add(plain[:len(plain)-1], int64(7), true)
	f.Add(append(bytes.Clone(plain), 0), int64(7), true)
	f.Add([]byte{}, int64(0), false)
	f.Add(append(bytes.Clone(plain), rich...), int64(0), true)

	f.Fuzz(func(t *testing.T, b []byte, off int64, fix bool) {
		if fix && len(b) >= HeaderBytes {
			// Repair the CRC so the fuzzer gets past it into the records.
			b = bytes.Clone(b)
			fixCRC(b)
		}
		_, _ = ReadHeader(b)
		_, _ = Split(b)
		_, _ = Records(b)
		_, serr := ValidateStructure(b)
		h, err := Validate(b)
		if err == nil && serr != nil {
			t.Fatalf("Validate accepted what ValidateStructure rejected: %v", serr)
		}
		if err != nil {
			if Code(err) == kerr.UnknownServerError.Code {
				t.Fatalf("error without a Kafka code: %v", err)
			}
			return
		}
		if split, err := Split(b); err != nil || len(split) != 1 || len(split[0]) != len(b) {
			t.Fatalf("accepted batch does not split into itself: %v", err)
		}
		c := bytes.Clone(b)
		SetBaseOffset(c, off)
		SetPartitionLeaderEpoch(c, int32(off))
		h2, err := Validate(c)
		if err != nil {
			t.Fatalf("SetBaseOffset broke a valid batch: %v", err)
		}
		h.BaseOffset, h.PartitionLeaderEpoch = off, int32(off)
		if h2 != h {
			t.Fatalf("header after SetBaseOffset %+v, want %+v", h2, h)
		}
		SetLogAppendTime(c, off)
		if _, err := ValidateStructure(c); err != nil {
			t.Fatalf("SetLogAppendTime broke a valid batch: %v", err)
		}
		if h.Compression() == CompressionNone {
			recs, err := Records(c)
			if err != nil || len(recs) != int(h.NumRecords) {
				t.Fatalf("Records of a valid batch: %d records, %v", len(recs), err)
			}
			for i, r := range recs {
				if r.Offset != off+int64(i) || r.Timestamp != off {
					t.Fatalf("record %d: offset %d timestamp %d", i, r.Offset, r.Timestamp)
				}
			}
		}
	})
}

func BenchmarkValidate(b *testing.B) {
	recs := make([]Record, 100)
	for i := range recs {
		recs[i] = Record{Key: []byte("key-0000"), Value: bytes.Repeat([]byte{byte(i)}, 100), TimestampDelta: int64(i)}
	}
	batch := Build(BuildOptions{ProducerID: 1, BaseSequence: 0}, recs)
	b.SetBytes(int64(len(batch)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Validate(batch); err != nil {
			b.Fatal(err)
		}
	}
}

// FuzzRecordsKeep feeds stored-batch bytes (compressed or not) to Records
// and Keep: no panic, and what Keep writes of a decodable batch decodes to
// the records it was given.
func FuzzRecordsKeep(f *testing.F) {
	recs := []Record{{Key: []byte("k"), Value: []byte("v")}, {Key: []byte("k2")}, {TimestampDelta: 3, Value: []byte("w")}}
	plain := Build(BuildOptions{ProducerID: NoProducerID, FirstTimestamp: 1}, recs)
	f.Add(plain, uint8(5), int64(-1))
	for codec := CompressionGzip; codec <= CompressionZstd; codec++ {
		body, err := Compress(codec, plain[HeaderBytes:])
		if err != nil {
			f.Fatal(err)
		}
		b := append(bytes.Clone(plain[:HeaderBytes]), body...)
		binary.BigEndian.PutUint32(b[offLength:], uint32(len(b)-LogOverheadBytes))
		b[offAttributes+1] = byte(codec)
		fixCRC(b)
		f.Add(b, uint8(3), int64(100))
	}
	f.Fuzz(func(t *testing.T, b []byte, mask uint8, horizon int64) {
		if len(b) >= HeaderBytes {
			b = bytes.Clone(b)
			fixCRC(b)
		}
		got, err := Records(b)
		if err != nil {
			if Code(err) == kerr.UnknownServerError.Code {
				t.Fatalf("error without a Kafka code: %v", err)
			}
			return
		}
		h, _ := ReadHeader(b)
		var keep []DecodedRecord
		for i, r := range got {
			if mask&(1<<(i%8)) != 0 {
				keep = append(keep, r)
			}
		}
		out, err := Keep(b, h, keep, horizon)
		if err != nil {
			t.Fatalf("Keep of a decodable batch: %v", err)
		}
		again, err := Records(out)
		if err != nil {
			t.Fatalf("Keep wrote an undecodable batch: %v", err)
		}
		if len(again) != len(keep) {
			t.Fatalf("kept %d records, decoded %d", len(keep), len(again))
		}
		for i := range keep {
			a, k := again[i], keep[i]
			if a.Offset != k.Offset || !bytes.Equal(a.Key, k.Key) || !bytes.Equal(a.Value, k.Value) || (a.Key == nil) != (k.Key == nil) || (a.Value == nil) != (k.Value == nil) || (!h.LogAppendTime() && a.Timestamp != k.Timestamp) {
				t.Fatalf("record %d: kept %+v, decoded %+v", i, k, a)
			}
		}
	})
}
