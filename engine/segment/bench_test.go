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
