package segment

import (
	"testing"

	"github.com/gregor-streaming/gregor/raftlog/vfs"
)

const benchBatchBytes = 1 << 10

func BenchmarkAppend(b *testing.B) {
	l, err := Open(vfs.OS(b.TempDir()), "p", Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	payload := make([]byte, benchBatchBytes-8)
	b.SetBytes(benchBatchBytes)
	b.ResetTimer()
	for i := range b.N {
		base := int64(i)
		if err := l.Append(fakeBatch(base, payload), BatchMeta{BaseOffset: base, LastOffset: base, MaxTimestamp: base, Tag: uint64(i)}); err != nil {
			b.Fatal(err)
		}
	}
	if err := l.Sync(); err != nil {
		b.Fatal(err)
	}
}

func BenchmarkRead(b *testing.B) {
	const batches = 16 << 10 // 16 MiB
	l, err := Open(vfs.OS(b.TempDir()), "p", Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	payload := make([]byte, benchBatchBytes-8)
	for i := range batches {
		base := int64(i)
		if err := l.Append(fakeBatch(base, payload), BatchMeta{BaseOffset: base, LastOffset: base, MaxTimestamp: base}); err != nil {
			b.Fatal(err)
		}
	}
	const fetchBytes = 1 << 20
	b.SetBytes(fetchBytes)
	b.ResetTimer()
	off := int64(0)
	for range b.N {
		out, err := l.Read(off, fetchBytes)
		if err != nil || len(out) != fetchBytes {
			b.Fatalf("read %d bytes at %d: %v", len(out), off, err)
		}
		off = (off + fetchBytes/benchBatchBytes) % (batches - fetchBytes/benchBatchBytes)
	}
}

// BenchmarkReadCompacted is BenchmarkRead over a log a rewrite left with
// a gap before every batch (every other batch dropped, as compaction
// leaves offsets): fetch from a compacted topic, compared with
// BenchmarkRead in the same run.
func BenchmarkReadCompacted(b *testing.B) {
	const batches = 32 << 10 // 32 MiB before, 16 MiB kept
	l, err := Open(vfs.OS(b.TempDir()), "p", Options{SegmentBytesMax: 4 << 20})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	payload := make([]byte, benchBatchBytes-8)
	for i := range batches {
		base := int64(i)
		if err := l.Append(fakeBatch(base, payload), BatchMeta{BaseOffset: base, LastOffset: base, MaxTimestamp: base}); err != nil {
			b.Fatal(err)
		}
	}
	if err := l.Roll(); err != nil {
		b.Fatal(err)
	}
	keepOdd := func(batch []byte, meta BatchMeta) ([]byte, int64, bool, error) {
		return batch, meta.MaxTimestamp, meta.LastOffset%2 == 1, nil
	}
	for _, s := range l.Segments() {
		if s.End > s.Base && s.End <= batches {
			if err := l.Rewrite(s.Base, s.End, keepOdd); err != nil {
				b.Fatal(err)
			}
		}
	}
	const fetchBytes = 1 << 20
	b.SetBytes(fetchBytes)
	b.ResetTimer()
	off := int64(0)
	for range b.N {
		out, err := l.Read(off, fetchBytes)
		if err != nil || len(out) != fetchBytes {
			b.Fatalf("read %d bytes at %d: %v", len(out), off, err)
		}
		off = (off + 2*fetchBytes/benchBatchBytes) % (batches - 2*fetchBytes/benchBatchBytes)
	}
}
