package main

import (
	"math"
	"math/bits"
	"sync/atomic"
	"time"
)

// benchHistSubBits is the number of mantissa bits each power-of-two range
// of the latency histogram is split by: 2^7 = 128 buckets per doubling, so
// a reported percentile is at most 1/128 (0.8%) above the true value.
const benchHistSubBits = 7

const (
	benchHistSub = 1 << benchHistSubBits
	// benchHistBuckets covers every int64 nanosecond value.
	benchHistBuckets = (64-benchHistSubBits)*benchHistSub + benchHistSub
)

// benchHist is an HDR-style latency histogram in nanoseconds: log-linear
// buckets with a bounded relative error, safe for concurrent Record calls
// (kgo runs promises on its own goroutines) without a lock.
type benchHist struct {
	counts [benchHistBuckets]atomic.Uint64
	total  atomic.Uint64
	max    atomic.Int64
}

// benchHistIndex maps a value to its bucket. Values below 2*benchHistSub
// have a bucket each; above, a bucket spans 2^shift values.
func benchHistIndex(v int64) int {
	if v < 2*benchHistSub {
		if v < 0 {
			return 0
		}
		return int(v)
	}
	shift := bits.Len64(uint64(v)) - benchHistSubBits - 1
	return shift*benchHistSub + int(uint64(v)>>shift)
}

// benchHistUpper is the largest value that falls in bucket i.
func benchHistUpper(i int) int64 {
	if i < 2*benchHistSub {
		return int64(i)
	}
	shift := i/benchHistSub - 1
	mant := uint64(i - shift*benchHistSub)
	up := (mant+1)<<shift - 1
	if up > math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(up)
}

// Record adds one latency.
func (h *benchHist) Record(d time.Duration) {
	v := int64(d)
	if v < 0 {
		v = 0
	}
	h.counts[benchHistIndex(v)].Add(1)
	h.total.Add(1)
	for {
		m := h.max.Load()
		if v <= m || h.max.CompareAndSwap(m, v) {
			return
		}
	}
}

// Count is the number of recorded values.
func (h *benchHist) Count() uint64 { return h.total.Load() }

// Quantile returns the value at quantile q (0 < q <= 1): the upper bound of
// the bucket holding the ceil(q*n)-th smallest value, never above Max.
// It returns 0 when nothing was recorded.
func (h *benchHist) Quantile(q float64) time.Duration {
	n := h.total.Load()
	if n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(n)))
	if rank < 1 {
		rank = 1
	}
	var seen uint64
	for i := range h.counts {
		seen += h.counts[i].Load()
		if seen >= rank {
			return time.Duration(min(benchHistUpper(i), h.max.Load()))
		}
	}
	return time.Duration(h.max.Load())
}

// Max is the largest recorded value.
func (h *benchHist) Max() time.Duration { return time.Duration(h.max.Load()) }

// benchLatency is a histogram's summary in milliseconds, as printed and as
// written by --json.
type benchLatency struct {
	Count  uint64  `json:"count"`
	P50ms  float64 `json:"p50_ms"`
	P99ms  float64 `json:"p99_ms"`
	P999ms float64 `json:"p999_ms"`
	MaxMs  float64 `json:"max_ms"`
}

func benchMillis(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// Summary returns the percentiles every report shows.
func (h *benchHist) Summary() benchLatency {
	return benchLatency{
		Count:  h.Count(),
		P50ms:  benchMillis(h.Quantile(0.50)),
		P99ms:  benchMillis(h.Quantile(0.99)),
		P999ms: benchMillis(h.Quantile(0.999)),
		MaxMs:  benchMillis(h.Max()),
	}
}
