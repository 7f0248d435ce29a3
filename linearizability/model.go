package linearizability

import (
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/anishathalye/porcupine"
)

// describeRecordsMax and describeStateMax bound how many values the
// visualisation prints for one fetch and for one state.
const (
	describeRecordsMax = 4
	describeStateMax   = 6
)

// opInput is what a call sent; it is the porcupine Operation.Input.
type opInput struct {
	tp     TP
	kind   Kind
	values []string // produce
	offset int64    // fetch
}

// opOutput is what a call learned; it is the porcupine Operation.Output.
type opOutput struct {
	unknown       bool // produce only: may or may not have been applied
	pinned        bool // unknown produce whose values the final read holds once, at baseOffset
	baseOffset    int64
	records       []Record
	highWatermark int64
	start, end    int64
}

// logState is the committed log of one partition as a sequence of values.
//
// States share one append-only backing array: the first n entries of
// b.vals never change once written, so a state is just (backing, length),
// cheap to copy and to compare. Appending to a state that is not the
// backing's longest extends the backing only if the entries after n are
// exactly the ones being appended; otherwise it copies the prefix into a
// new backing. NB: the backing is mutated in place, so one backing must
// only ever be used by one goroutine; porcupine checks each partition on
// its own goroutine, starting from Init, which allocates nothing shared.
type logState struct {
	b *logBacking
	n int
}

type logBacking struct {
	vals   []string
	hashes []uint64 // hashes[i] is the hash of vals[:i+1]
}

const (
	fnvOffset64 = 14695981039346656037
	fnvPrime64  = 1099511628211
)

func hashValue(h uint64, v string) uint64 {
	// Mix the running hash with an FNV-1a hash of the value and a length
	// terminator, so ["ab"] and ["a","b"] differ.
	x := uint64(fnvOffset64)
	for i := 0; i < len(v); i++ {
		x ^= uint64(v[i])
		x *= fnvPrime64
	}
	x ^= uint64(len(v))
	x *= fnvPrime64
	return (h^x)*fnvPrime64 + 0x9e3779b97f4a7c15
}

func (s logState) hash() uint64 {
	if s.n == 0 {
		return 0
	}
	return s.b.hashes[s.n-1]
}

func (s logState) value(i int64) string { return s.b.vals[i] }

func (s logState) appendValues(vals []string) logState {
	if len(vals) == 0 {
		return s
	}
	b := s.b
	switch {
	case b == nil:
		b = &logBacking{}
	case len(b.vals) == s.n:
		// s is the longest state on this backing: extend in place.
	case len(b.vals) >= s.n+len(vals) && slices.Equal(b.vals[s.n:s.n+len(vals)], vals):
		return logState{b: b, n: s.n + len(vals)}
	default:
		nb := &logBacking{
			vals:   make([]string, s.n, s.n+len(vals)+16),
			hashes: make([]uint64, s.n, s.n+len(vals)+16),
		}
		copy(nb.vals, b.vals[:s.n])
		copy(nb.hashes, b.hashes[:s.n])
		b = nb
	}
	h := s.hash()
	for _, v := range vals {
		h = hashValue(h, v)
		b.vals = append(b.vals, v)
		b.hashes = append(b.hashes, h)
	}
	return logState{b: b, n: s.n + len(vals)}
}

func (s logState) equal(t logState) bool {
	if s.n != t.n {
		return false
	}
	if s.n == 0 || s.b == t.b {
		return true
	}
	return s.hash() == t.hash() && slices.Equal(s.b.vals[:s.n], t.b.vals[:t.n])
}

// step is the sequential specification of one partition log.
func step(s logState, in opInput, out opOutput) (bool, logState) {
	n := int64(s.n)
	switch in.kind {
	case Produce:
		if out.unknown && !out.pinned {
			// Porcupine gives the call an infinite return time, so "not
			// applied" is the linearization that places it after every
			// other call; here it is applied at the end of the log.
			return true, s.appendValues(in.values)
		}
		// Acknowledged, or unknown but pinned to the one place the final
		// read holds its values: either it appends there, or another
		// attempt of the same values did and this one is a no-op.
		o := out.baseOffset
		if o == n {
			return true, s.appendValues(in.values)
		}
		// A deduplicated retry (idempotent producer) is acknowledged
		// with the offset its first attempt got: legal as a no-op when
		// exactly these values already sit there.
		if o >= 0 && o < n && o+int64(len(in.values)) <= n {
			for i, v := range in.values {
				if s.value(o+int64(i)) != v {
					return false, s
				}
			}
			return len(in.values) > 0, s
		}
		return false, s
	case Fetch:
		f, h := in.offset, out.highWatermark
		if h != n || f < 0 {
			return false, s
		}
		if len(out.records) == 0 {
			return f >= h, s
		}
		if f+int64(len(out.records)) > h {
			return false, s
		}
		for i, r := range out.records {
			if r.Offset != f+int64(i) || r.Value != s.value(r.Offset) {
				return false, s
			}
		}
		return true, s
	case ListOffsets:
		// No retention yet: the log always starts at offset 0.
		return out.start == 0 && out.end == n, s
	}
	return false, s
}

// partitionOps splits porcupine operations by TP, in sorted TP order.
func partitionOps(history []porcupine.Operation) [][]porcupine.Operation {
	byTP := make(map[TP][]porcupine.Operation)
	for _, op := range history {
		tp := op.Input.(opInput).tp
		byTP[tp] = append(byTP[tp], op)
	}
	tps := make([]TP, 0, len(byTP))
	for tp := range byTP {
		tps = append(tps, tp)
	}
	slices.SortFunc(tps, compareTP)
	out := make([][]porcupine.Operation, len(tps))
	for i, tp := range tps {
		out[i] = byTP[tp]
	}
	return out
}

// Model returns the porcupine model of a Kafka partition log, partitioned
// by TP. Its operations are the ones Operations builds.
//
// A produce acknowledged with base offset o of n values is legal iff
// o == len(log) (the values are appended), or the same n values already sit
// at o (a deduplicated retry). A produce with an unknown outcome is always
// legal and appends; porcupine's infinite return time covers "never
// applied". A fetch from f returning records R and high watermark h is
// legal iff h == len(log) and R == log[f:f+len(R)] with contiguous offsets,
// R empty only when f >= h. A list-offsets is legal iff it saw [0, len(log)).
func Model() porcupine.Model {
	return porcupine.Model{
		Partition: partitionOps,
		Init:      func() any { return logState{} },
		Step: func(state, input, output any) (bool, any) {
			return step(state.(logState), input.(opInput), output.(opOutput))
		},
		Equal: func(a, b any) bool { return a.(logState).equal(b.(logState)) },
		Hash:  func(state any) uint64 { return state.(logState).hash() },
		DescribeOperation: func(input, output any) string {
			return describeOp(input.(opInput), output.(opOutput))
		},
		DescribeState: func(state any) string { return describeState(state.(logState)) },
	}
}

func describeOp(in opInput, out opOutput) string {
	switch in.kind {
	case Produce:
		res := fmt.Sprint(out.baseOffset)
		switch {
		case out.pinned:
			res = fmt.Sprintf("unknown (final read has it at %d)", out.baseOffset)
		case out.unknown:
			res = "unknown"
		}
		return fmt.Sprintf("produce(%s %s) -> %s", in.tp, abbreviate(in.values, describeRecordsMax), res)
	case Fetch:
		vals := make([]string, 0, min(len(out.records), describeRecordsMax+1))
		for i, r := range out.records {
			if i == describeRecordsMax {
				vals = append(vals, fmt.Sprintf("... %d more", len(out.records)-i))
				break
			}
			vals = append(vals, fmt.Sprintf("%d:%s", r.Offset, r.Value))
		}
		return fmt.Sprintf("fetch(%s @%d) -> [%s] hw=%d", in.tp, in.offset, strings.Join(vals, " "), out.highWatermark)
	case ListOffsets:
		return fmt.Sprintf("list-offsets(%s) -> [%d, %d)", in.tp, out.start, out.end)
	}
	return "<invalid>"
}

func describeState(s logState) string {
	if s.n == 0 {
		return "[]"
	}
	start := max(0, s.n-describeStateMax)
	parts := make([]string, 0, s.n-start)
	for i := start; i < s.n; i++ {
		parts = append(parts, fmt.Sprintf("%d:%s", i, s.b.vals[i]))
	}
	prefix := ""
	if start > 0 {
		prefix = "... "
	}
	return fmt.Sprintf("len=%d [%s%s]", s.n, prefix, strings.Join(parts, " "))
}

func abbreviate(vals []string, limit int) string {
	if len(vals) <= limit {
		return "[" + strings.Join(vals, " ") + "]"
	}
	return fmt.Sprintf("[%s ... %d more]", strings.Join(vals[:limit], " "), len(vals)-limit)
}

// Operations converts a history into porcupine operations for Model.
//
// Calls that cannot change or constrain the log are left out: definite
// failures (no effect), and fetches and list-offsets whose outcome is
// unknown. A produce whose outcome is unknown gets an infinite return time.
// When Final holds its partition, Final decides where such a produce can
// have landed, which keeps porcupine from exploring placements only the
// final read could refute: if Final holds none of its values it never
// applied and is left out; if Final holds them once, contiguously, at o,
// it is pinned to o (it applied there, or a retry of the same values did).
// Final, when present, becomes one fetch of the whole log by an extra
// client, after every other call.
func Operations(h History) []porcupine.Operation {
	ops, _ := operations(h, false)
	return ops
}

// operations is Operations; with dropUnread it also leaves out unknown
// produces of partitions without a final read whose values no fetch saw,
// and counts them per TP. That is optimistic: such a produce may have been
// applied and counted in a high watermark, so a partition that fails
// without them must be checked again with them (see Check).
//
// NB: each unknown produce porcupine keeps is a candidate at every step
// for the rest of the history, so k of them that never applied cost up to
// 2^k placements; hence the pruning.
func operations(h History, dropUnread bool) ([]porcupine.Operation, map[TP]int) {
	var read map[TP]map[string]bool
	dropped := make(map[TP]int)
	if dropUnread {
		read = make(map[TP]map[string]bool)
		for i := range h.Ops {
			op := &h.Ops[i]
			if op.Kind != Fetch || !op.ok() {
				continue
			}
			if read[op.TP] == nil {
				read[op.TP] = make(map[string]bool)
			}
			for _, r := range op.Records {
				read[op.TP][r.Value] = true
			}
		}
	}
	finalOffsets := make(map[TP]map[string][]int64, len(h.Final))
	for tp, recs := range h.Final {
		m := make(map[string][]int64, len(recs))
		for _, r := range recs {
			m[r.Value] = append(m[r.Value], r.Offset)
		}
		finalOffsets[tp] = m
	}
	var last int64
	clients := 0
	ops := make([]porcupine.Operation, 0, len(h.Ops)+len(h.Final))
	for i := range h.Ops {
		op := &h.Ops[i]
		last = max(last, op.Call, op.Return)
		clients = max(clients, op.Client+1)
		in := opInput{tp: op.TP, kind: op.Kind}
		var out opOutput
		ret := op.Return
		switch {
		case op.unknown() && op.Kind == Produce:
			in.values = op.Values
			out.unknown = true
			ret = math.MaxInt64
			if offs, ok := finalOffsets[op.TP]; ok {
				if !slices.ContainsFunc(op.Values, func(v string) bool { return len(offs[v]) > 0 }) {
					continue
				}
				out.baseOffset, out.pinned = pinnedOffset(op.Values, offs)
			} else if dropUnread && !slices.ContainsFunc(op.Values, func(v string) bool { return read[op.TP][v] }) {
				dropped[op.TP]++
				continue
			}
		case !op.ok():
			continue
		case op.Kind == Produce:
			in.values, out.baseOffset = op.Values, op.BaseOffset
		case op.Kind == Fetch:
			in.offset = op.Offset
			out.records, out.highWatermark = op.Records, op.HighWatermark
		case op.Kind == ListOffsets:
			out.start, out.end = op.Start, op.End
		default:
			continue
		}
		ops = append(ops, porcupine.Operation{
			ClientId: op.Client,
			Input:    in,
			Call:     op.Call,
			Output:   out,
			Return:   ret,
			Metadata: fmt.Sprintf("op %d", i),
		})
	}
	tps := make([]TP, 0, len(h.Final))
	for tp := range h.Final {
		tps = append(tps, tp)
	}
	slices.SortFunc(tps, compareTP)
	for _, tp := range tps {
		recs := h.Final[tp]
		ops = append(ops, porcupine.Operation{
			ClientId: clients,
			Input:    opInput{tp: tp, kind: Fetch},
			Call:     last + 1,
			Output:   opOutput{records: recs, highWatermark: int64(len(recs))},
			Return:   last + 2,
			Metadata: "final read",
		})
	}
	return ops, dropped
}

// pinnedOffset returns o when every value of vals sits exactly once in
// the final read, at o, o+1, ...
func pinnedOffset(vals []string, finalOffsets map[string][]int64) (int64, bool) {
	if len(vals) == 0 {
		return 0, false
	}
	first := finalOffsets[vals[0]]
	if len(first) != 1 {
		return 0, false
	}
	for i, v := range vals {
		if offs := finalOffsets[v]; len(offs) != 1 || offs[0] != first[0]+int64(i) {
			return 0, false
		}
	}
	return first[0], true
}
