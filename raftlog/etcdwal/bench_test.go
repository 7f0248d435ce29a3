package etcdwal

import (
	"fmt"
	"path/filepath"
	"testing"

	"go.etcd.io/etcd/server/v3/storage/wal"
	"golang.org/x/sync/errgroup"
)

// The two ways the design allows to persist one Ready cycle for every group
// on a broker with one round of fsyncs (docs/storage-wal.md has the numbers):
// one shared WAL written with one Save, or one WAL per partition, all saved
// in parallel. Both run on the real disk with fsync on.

// benchRecordBytes is what each partition persists per cycle.
const benchRecordBytes = 10 << 10

// benchSegmentBytes is the segment size for both benchmarks. Smaller than
// etcd's 64 MB so that 256 per-partition WALs (each preallocating two
// segments) fit on the disk; the shared WAL cuts a segment every
// benchSegmentBytes/(P*benchRecordBytes) cycles, which the numbers include.
const benchSegmentBytes = 16 << 20

var benchPartitions = []int{1, 16, 256}

// withSegmentBytes sets etcd's process-wide segment size for one benchmark;
// benchmarks run one at a time, after the tests.
func withSegmentBytes(b *testing.B, n int64) {
	old := wal.SegmentSizeBytes
	SetSegmentBytes(n)
	b.Cleanup(func() { SetSegmentBytes(old) })
}

func benchRecords(p int) [][]byte {
	rs := make([][]byte, p)
	for i := range rs {
		rs[i] = rec(i, benchRecordBytes)
	}
	return rs
}

func reportCycles(b *testing.B) {
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "cycles/s")
}

// BenchmarkCycleShared: each iteration is one cycle, one 10 KiB record for
// each of P partitions appended to one shared WAL with one Save (one fsync).
func BenchmarkCycleShared(b *testing.B) {
	for _, p := range benchPartitions {
		b.Run(fmt.Sprintf("partitions=%d", p), func(b *testing.B) {
			withSegmentBytes(b, benchSegmentBytes)
			w, err := Open(filepath.Join(b.TempDir(), "wal"))
			if err != nil {
				b.Fatal(err)
			}
			defer w.Close()
			rs := benchRecords(p)
			b.SetBytes(int64(p * benchRecordBytes))
			for b.Loop() {
				if err := w.Append(rs); err != nil {
					b.Fatal(err)
				}
			}
			reportCycles(b)
		})
	}
}

// BenchmarkCyclePerPartition: each iteration is one cycle, P WALs each
// appending its partition's 10 KiB record in its own goroutine, so P fsyncs
// run in parallel and the cycle ends when the last one returns.
func BenchmarkCyclePerPartition(b *testing.B) {
	for _, p := range benchPartitions {
		b.Run(fmt.Sprintf("partitions=%d", p), func(b *testing.B) {
			withSegmentBytes(b, benchSegmentBytes)
			dir := b.TempDir()
			ws := make([]*WAL, p)
			for i := range ws {
				w, err := Open(filepath.Join(dir, fmt.Sprintf("wal-%04d", i)))
				if err != nil {
					b.Fatal(err)
				}
				ws[i] = w
			}
			defer func() {
				for _, w := range ws {
					w.Close()
				}
			}()
			rs := benchRecords(p)
			b.SetBytes(int64(p * benchRecordBytes))
			for b.Loop() {
				var g errgroup.Group
				for i, w := range ws {
					g.Go(func() error { return w.Append(rs[i : i+1]) })
				}
				if err := g.Wait(); err != nil {
					b.Fatal(err)
				}
			}
			reportCycles(b)
		})
	}
}
