package linearizability

import (
	"math/rand/v2"
	"testing"
	"time"

	"pgregory.net/rapid"
)

func rapidDraw(t *rapid.T) func(lo, hi int) int {
	return func(lo, hi int) int { return rapid.IntRange(lo, hi).Draw(t, "n") }
}

func drawConfig(t *rapid.T) genConfig {
	cfg := genConfig{
		mode:       Mode(rapid.IntRange(0, 2).Draw(t, "mode")),
		ops:        rapid.IntRange(0, 120).Draw(t, "ops"),
		partitions: rapid.IntRange(1, 3).Draw(t, "partitions"),
		clients:    rapid.IntRange(1, 6).Draw(t, "clients"),
		windowMax:  rapid.IntRange(0, 40).Draw(t, "windowMax"),
		final:      rapid.Bool().Draw(t, "final"),
	}
	if !cfg.final {
		// See Operations: without a final read, porcupine's search is
		// exponential in the unknown produces that never applied.
		cfg.unknownMax = 6
	}
	return cfg
}

// TestPropertyCorrectHistoriesPass: histories cut from a correct
// sequential log with random concurrency windows always pass.
func TestPropertyCorrectHistoriesPass(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		h := genHistory(rapidDraw(t), drawConfig(t))
		// The timeout only turns a hang into a failure; it is not asserted on.
		res := Check(h, Options{Timeout: time.Minute})
		if !res.OK || !res.Linearizable || res.TimedOut {
			t.Fatalf("correct history rejected: %+v", res)
		}
	})
}

// TestPropertyStaleReadFails: lowering the high watermark of a fetch below
// the end of a produce acknowledged before the fetch was called must fail.
func TestPropertyStaleReadFails(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		cfg := drawConfig(t)
		cfg.ops = max(cfg.ops, 20)
		h := genHistory(rapidDraw(t), cfg)
		var candidates []int
		for i, op := range h.Ops {
			if op.Kind != Fetch || !op.ok() || len(op.Records) > 0 {
				continue
			}
			for _, p := range h.Ops {
				if p.Kind == Produce && p.ok() && p.TP == op.TP && p.Return < op.Call && p.BaseOffset+int64(len(p.Values)) > 0 {
					candidates = append(candidates, i)
					break
				}
			}
		}
		if len(candidates) == 0 {
			t.Skip("no fetch follows an acknowledged produce")
		}
		i := rapid.SampledFrom(candidates).Draw(t, "fetch")
		op := &h.Ops[i]
		var acked int64 // end of the latest produce acknowledged before the fetch
		for _, p := range h.Ops {
			if p.Kind == Produce && p.ok() && p.TP == op.TP && p.Return < op.Call {
				acked = max(acked, p.BaseOffset+int64(len(p.Values)))
			}
		}
		op.HighWatermark = int64(rapid.IntRange(0, int(acked)-1).Draw(t, "hw"))
		op.Offset = op.HighWatermark
		if res := Check(h, Options{}); res.Linearizable || res.OK {
			t.Fatalf("stale read at op %d accepted: %+v", i, res)
		}
	})
}

// benchHistory is a 10k-operation history over 12 partitions.
func benchHistory() History {
	r := rand.New(rand.NewPCG(1, 2))
	draw := func(lo, hi int) int { return lo + r.IntN(hi-lo+1) }
	return genHistory(draw, genConfig{
		mode: AtLeastOnce, ops: 10_000, partitions: 12, clients: 24, windowMax: 60, final: true,
	})
}

func TestBenchHistoryPasses(t *testing.T) {
	if testing.Short() {
		t.Skip("long history")
	}
	if res := Check(benchHistory(), Options{}); !res.OK {
		t.Fatalf("benchmark history rejected: %+v", res)
	}
}

func BenchmarkCheck10kOps12Partitions(b *testing.B) {
	h := benchHistory()
	b.ResetTimer()
	for b.Loop() {
		if res := Check(h, Options{}); !res.OK {
			b.Fatalf("rejected: %+v", res)
		}
	}
}
