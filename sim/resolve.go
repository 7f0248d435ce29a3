package sim

import (
	"slices"

	"github.com/gregor-streaming/gregor/linearizability"
)

// resolveUnknown settles, from the final log and the history itself, the
// produce attempts whose outcome the client never learned, before the
// history goes to linearizability.Check. The checker can only pin an
// unknown attempt whose values sit at exactly one place in the final log,
// and gives it an infinite return time; porcupine's search grows with
// every such open call, and exponentially with attempts it cannot pin.
// Two facts narrow them down without losing any linearization:
//
//  1. Where each attempt wrote. Every copy of a batch in the final log is
//     one attempt's: nothing deduplicates at-most-once and at-least-once
//     batches, and an idempotent producer's retries are one op already
//     (see attempt.op). An acknowledged attempt says where its own copy
//     is. Of the other whole copies, in offset order, and the unknown
//     attempts, in call order: with as many copies as unknown attempts,
//     or fewer, the first attempts wrote them, one each, and the others
//     wrote nothing (recorded as failed). The values are the same, so
//     which attempt wrote which copy changes no state, and pairing the
//     earliest calls with the earliest copies satisfies "called before
//     its copy was written" whenever any pairing does. With more copies
//     than attempts the log holds a copy nobody sent: the batch is left
//     as it is, for the checks to see.
//  2. When it had been written at the latest. The log grows one batch
//     after another, so a completed fetch or list-offsets that reported a
//     high watermark above the copy's offset, or an acknowledged produce
//     at an offset above it, was linearized after the write: the write is
//     recorded as returning when the first such call returned (or at the
//     end of the history if none did; and as it is if that call returned
//     before the attempt was even made, which the checker will then
//     report).
//
// A written attempt is recorded as acknowledged at its copy. Acknowledged
// attempts are left as they are, so an acknowledged offset that lies is
// still caught (inconsistent-offsets, lost-write). ops are one partition's,
// changed in place; end is a time after every call and return.
func resolveUnknown(ops []linearizability.Op, final []linearizability.Record, end int64) {
	type batch struct {
		sent    int
		acked   map[int64]bool
		unknown []int // in call order, as ops are
	}
	batches := map[string]*batch{}
	var order []string
	for i := range ops {
		op := &ops[i]
		if op.Kind != linearizability.Produce || len(op.Values) == 0 || op.Err != "" {
			continue
		}
		first := op.Values[0]
		b := batches[first]
		if b == nil {
			b = &batch{acked: map[int64]bool{}}
			batches[first] = b
			order = append(order, first)
		}
		b.sent++
		if op.Return == linearizability.ReturnUnknown {
			b.unknown = append(b.unknown, i)
		} else {
			b.acked[op.BaseOffset] = true
		}
	}
	at := map[string][]int64{}
	value := map[int64]string{}
	for _, r := range final {
		at[r.Value] = append(at[r.Value], r.Offset)
		value[r.Offset] = r.Value
	}
	seen := observations(ops)
	for _, first := range order {
		b := batches[first]
		if len(b.unknown) == 0 {
			continue
		}
		vals := ops[b.unknown[0]].Values
		var copies []int64
		for _, o := range at[first] {
			whole := true
			for i, v := range vals {
				if value[o+int64(i)] != v {
					whole = false
				}
			}
			if whole && !b.acked[o] {
				copies = append(copies, o)
			}
		}
		if len(copies) > len(b.unknown) {
			continue
		}
		slices.Sort(copies)
		for k, i := range b.unknown {
			op := &ops[i]
			if k >= len(copies) {
				op.Return, op.Err = op.Call+1, "not written: the final log holds no copy of it"
				continue
			}
			op.Return, op.BaseOffset = end, copies[k]
			if t := seen.after(copies[k]); t > op.Call && t < end {
				op.Return = t
			}
		}
	}
}

// observed lists the completed calls by the log length they saw (a read's
// high watermark, an acknowledged produce's base offset), with the earliest
// return among those that saw at least as much.
type observed struct {
	hw    []int64 // ascending
	first []int64 // first[i]: earliest return of the calls with hw >= hw[i]
}

func observations(ops []linearizability.Op) observed {
	type read struct{ hw, ret int64 }
	var reads []read
	for i := range ops {
		op := &ops[i]
		if op.Return == linearizability.ReturnUnknown || op.Err != "" {
			continue
		}
		switch op.Kind {
		case linearizability.Fetch:
			reads = append(reads, read{op.HighWatermark, op.Return})
		case linearizability.ListOffsets:
			reads = append(reads, read{op.End, op.Return})
		case linearizability.Produce:
			reads = append(reads, read{op.BaseOffset, op.Return})
		}
	}
	slices.SortFunc(reads, func(a, b read) int {
		switch {
		case a.hw < b.hw:
			return -1
		case a.hw > b.hw:
			return 1
		}
		return 0
	})
	var s observed
	for _, r := range reads {
		s.hw = append(s.hw, r.hw)
		s.first = append(s.first, r.ret)
	}
	for i := len(s.first) - 2; i >= 0; i-- {
		s.first[i] = min(s.first[i], s.first[i+1])
	}
	return s
}

// after returns the earliest return of a call that saw offset o written
// (a log longer than o), or -1.
func (s observed) after(o int64) int64 {
	i, _ := slices.BinarySearch(s.hw, o+1)
	if i == len(s.hw) {
		return -1
	}
	return s.first[i]
}
