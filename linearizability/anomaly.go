package linearizability

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// Anomaly names, as Jepsen's Kafka workload names them.
const (
	// AnomalyLostWrite: an acknowledged value is not at its acknowledged
	// offset in the final log, or a read of that offset shows another value.
	AnomalyLostWrite = "lost-write"
	// AnomalyDuplicate: one value at two offsets. Allowed in AtLeastOnce.
	AnomalyDuplicate = "duplicate"
	// AnomalyInconsistentOffsets: two reads (or two acknowledgements)
	// disagree on the value at one offset.
	AnomalyInconsistentOffsets = "inconsistent-offsets"
	// AnomalyNonmonotonicPoll: a consumer's next fetch on a TP starts at or
	// before the last offset its previous fetch returned.
	AnomalyNonmonotonicPoll = "nonmonotonic-poll"
	// AnomalyPollSkip: a consumer's next fetch on a TP starts beyond the
	// offset after its previous fetch's last, while records existed between.
	AnomalyPollSkip = "poll-skip"
	// AnomalyIntNonmonotonicPoll: offsets go backwards inside one fetch.
	AnomalyIntNonmonotonicPoll = "int-nonmonotonic-poll"
	// AnomalyIntPollSkip: offsets skip existing records inside one fetch.
	AnomalyIntPollSkip = "int-poll-skip"
	// AnomalyNonlinearizable: porcupine found no linearization of the
	// partition's history against Model.
	AnomalyNonlinearizable = "nonlinearizable"
	// AnomalyMalformed: the history itself is inconsistent (returns before
	// its call, negative client); a simulator bug, not a broker bug.
	AnomalyMalformed = "malformed-history"
)

// anomaliesPerKindMax bounds how many anomalies of one name on one TP are
// reported; the rest are summed up in one final entry.
const anomaliesPerKindMax = 20

// Anomaly is one violation found in a history.
type Anomaly struct {
	Name   string
	TP     TP
	Detail string
}

func compareAnomaly(a, b Anomaly) int {
	if c := cmp.Compare(a.Name, b.Name); c != 0 {
		return c
	}
	return compareTP(a.TP, b.TP)
}

// observation is one source's claim that value sits at an offset: op i
// of the history, or the final read when op is nil. Its description is
// made only for a report (formatting one per record read cost a tenth of
// a simulation run).
type observation struct {
	value string
	op    *Op
	i     int
}

// source describes where the observation comes from: "op 17 (client 2
// fetch)", "final read".
func (o observation) source() string {
	if o.op == nil {
		return "final read"
	}
	return opSource(o.i, o.op)
}

// partitionFacts gathers what every source said about one partition.
type partitionFacts struct {
	acks     map[int64][]observation // from acknowledged produces
	reads    map[int64][]observation // from successful fetches and Final
	final    map[int64]string        // nil when Final lacks the partition
	hasFinal bool
	known    []int64 // sorted offsets known to hold a record
}

func opSource(i int, op *Op) string {
	return fmt.Sprintf("op %d (client %d %s)", i, op.Client, op.Kind)
}

func gatherFacts(h History) map[TP]*partitionFacts {
	facts := make(map[TP]*partitionFacts)
	get := func(tp TP) *partitionFacts {
		f := facts[tp]
		if f == nil {
			f = &partitionFacts{acks: map[int64][]observation{}, reads: map[int64][]observation{}}
			facts[tp] = f
		}
		return f
	}
	for i := range h.Ops {
		op := &h.Ops[i]
		if !op.ok() {
			continue
		}
		switch op.Kind {
		case Produce:
			f := get(op.TP)
			for j, v := range op.Values {
				o := op.BaseOffset + int64(j)
				f.acks[o] = append(f.acks[o], observation{v, op, i})
			}
		case Fetch:
			f := get(op.TP)
			for _, r := range op.Records {
				f.reads[r.Offset] = append(f.reads[r.Offset], observation{r.Value, op, i})
			}
		}
	}
	for tp, recs := range h.Final {
		f := get(tp)
		f.hasFinal = true
		f.final = make(map[int64]string, len(recs))
		for _, r := range recs {
			f.final[r.Offset] = r.Value
			f.reads[r.Offset] = append(f.reads[r.Offset], observation{value: r.Value})
		}
	}
	for _, f := range facts {
		for o := range f.acks {
			f.known = append(f.known, o)
		}
		for o := range f.reads {
			if _, dup := f.acks[o]; !dup {
				f.known = append(f.known, o)
			}
		}
		slices.Sort(f.known)
	}
	return facts
}

// existsBetween reports whether a record is known at an offset in (lo, hi).
func (f *partitionFacts) existsBetween(lo, hi int64) bool {
	i, _ := slices.BinarySearch(f.known, lo+1)
	return i < len(f.known) && f.known[i] < hi
}

func sortedOffsets(m map[int64][]observation) []int64 {
	offs := make([]int64, 0, len(m))
	for o := range m {
		offs = append(offs, o)
	}
	slices.Sort(offs)
	return offs
}

func sortedTPs[V any](m map[TP]V) []TP {
	tps := make([]TP, 0, len(m))
	for tp := range m {
		tps = append(tps, tp)
	}
	slices.SortFunc(tps, compareTP)
	return tps
}

// distinctValues returns the distinct values among obs, in first-seen order.
func distinctValues(obs []observation) []string {
	var vals []string
	for _, o := range obs {
		if !slices.Contains(vals, o.value) {
			vals = append(vals, o.value)
		}
	}
	return vals
}

func describeObservations(obs []observation) string {
	parts := make([]string, 0, len(obs))
	for _, o := range obs {
		parts = append(parts, fmt.Sprintf("%s saw %q", o.source(), o.value))
	}
	return strings.Join(parts, ", ")
}

// findAnomalies runs every check that does not need porcupine.
func findAnomalies(h History) []Anomaly {
	var out []Anomaly
	out = append(out, malformed(h)...)
	facts := gatherFacts(h)
	for _, tp := range sortedTPs(facts) {
		f := facts[tp]
		out = append(out, offsetAnomalies(h.Mode, tp, f)...)
	}
	out = append(out, pollAnomalies(h, facts)...)
	// Within one name and TP, the checks above emit in offset or op
	// order, which reads better than sorting the details as strings.
	slices.SortStableFunc(out, compareAnomaly)
	return capAnomalies(out)
}

func malformed(h History) []Anomaly {
	var out []Anomaly
	for i := range h.Ops {
		op := &h.Ops[i]
		switch {
		case op.Client < 0:
			out = append(out, Anomaly{AnomalyMalformed, op.TP, fmt.Sprintf("op %d: negative client %d", i, op.Client)})
		case op.Return != ReturnUnknown && op.Return < op.Call:
			out = append(out, Anomaly{AnomalyMalformed, op.TP, fmt.Sprintf("op %d: returns at %d before its call at %d", i, op.Return, op.Call)})
		case op.Kind < Produce || op.Kind > ListOffsets:
			out = append(out, Anomaly{AnomalyMalformed, op.TP, fmt.Sprintf("op %d: unknown kind %d", i, op.Kind)})
		}
	}
	return out
}

// offsetAnomalies checks what sits at each offset: lost-write,
// inconsistent-offsets and duplicate.
func offsetAnomalies(mode Mode, tp TP, f *partitionFacts) []Anomaly {
	var out []Anomaly
	for _, o := range sortedOffsets(f.reads) {
		if vals := distinctValues(f.reads[o]); len(vals) > 1 {
			out = append(out, Anomaly{AnomalyInconsistentOffsets, tp,
				fmt.Sprintf("offset %d: %s", o, describeObservations(f.reads[o]))})
		}
	}
	for _, o := range sortedOffsets(f.acks) {
		acks := f.acks[o]
		if vals := distinctValues(acks); len(vals) > 1 {
			out = append(out, Anomaly{AnomalyInconsistentOffsets, tp,
				fmt.Sprintf("offset %d acknowledged twice: %s", o, describeObservations(acks))})
		}
		for _, ack := range acks {
			if f.hasFinal {
				if v, ok := f.final[o]; !ok {
					out = append(out, Anomaly{AnomalyLostWrite, tp,
						fmt.Sprintf("offset %d: %s acknowledged %q, the final read has no record there", o, ack.source(), ack.value)})
					continue
				} else if v != ack.value {
					out = append(out, Anomaly{AnomalyLostWrite, tp,
						fmt.Sprintf("offset %d: %s acknowledged %q, the final read has %q", o, ack.source(), ack.value, v)})
					continue
				}
			}
			for _, r := range f.reads[o] {
				if r.value != ack.value {
					out = append(out, Anomaly{AnomalyLostWrite, tp,
						fmt.Sprintf("offset %d: %s acknowledged %q, %s saw %q", o, ack.source(), ack.value, r.source(), r.value)})
					break
				}
			}
		}
	}
	if mode != AtLeastOnce {
		// first is where each value was seen first; more holds the
		// offsets of the few values seen at two or more.
		first := make(map[string]int64, len(f.known))
		more := make(map[string][]int64)
		add := func(m map[int64][]observation) {
			for o, obs := range m {
				for j, ob := range obs {
					// Most offsets are read many times with one value:
					// look a value up once per offset.
					if j > 0 && (ob.value == obs[j-1].value || slices.ContainsFunc(obs[:j-1], func(p observation) bool { return p.value == ob.value })) {
						continue
					}
					fo, ok := first[ob.value]
					switch {
					case !ok:
						first[ob.value] = o
					case fo == o || slices.Contains(more[ob.value], o):
					case more[ob.value] == nil:
						more[ob.value] = []int64{fo, o}
					default:
						more[ob.value] = append(more[ob.value], o)
					}
				}
			}
		}
		add(f.acks)
		add(f.reads)
		vals := make([]string, 0, len(more))
		for v := range more {
			vals = append(vals, v)
		}
		slices.Sort(vals)
		for _, v := range vals {
			offs := more[v]
			slices.Sort(offs)
			out = append(out, Anomaly{AnomalyDuplicate, tp,
				fmt.Sprintf("value %q at offsets %v (not allowed %s)", v, offs, mode)})
		}
	}
	return out
}

type pollKey struct {
	consumer int
	tp       TP
}

// pollAnomalies checks each fetch on its own (int-*) and each consumer's
// poll sequence on each TP (nonmonotonic-poll, poll-skip).
func pollAnomalies(h History, facts map[TP]*partitionFacts) []Anomaly {
	var out []Anomaly
	seqs := make(map[pollKey][]int)
	for i := range h.Ops {
		op := &h.Ops[i]
		if op.Kind != Fetch || !op.ok() || len(op.Records) == 0 {
			continue
		}
		f := facts[op.TP]
		for j := 1; j < len(op.Records); j++ {
			prev, next := op.Records[j-1].Offset, op.Records[j].Offset
			switch {
			case next <= prev:
				out = append(out, Anomaly{AnomalyIntNonmonotonicPoll, op.TP,
					fmt.Sprintf("%s: offset %d follows %d", opSource(i, op), next, prev)})
			case next > prev+1 && f.existsBetween(prev, next):
				out = append(out, Anomaly{AnomalyIntPollSkip, op.TP,
					fmt.Sprintf("%s: offset %d follows %d, skipping records", opSource(i, op), next, prev)})
			}
		}
		if op.Consumer >= 0 {
			k := pollKey{op.Consumer, op.TP}
			seqs[k] = append(seqs[k], i)
		}
	}
	keys := make([]pollKey, 0, len(seqs))
	for k := range seqs {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b pollKey) int {
		if c := compareTP(a.tp, b.tp); c != 0 {
			return c
		}
		return cmp.Compare(a.consumer, b.consumer)
	})
	for _, k := range keys {
		seq := seqs[k]
		slices.SortStableFunc(seq, func(a, b int) int { return cmp.Compare(h.Ops[a].Call, h.Ops[b].Call) })
		f := facts[k.tp]
		for j := 1; j < len(seq); j++ {
			prevOp, nextOp := &h.Ops[seq[j-1]], &h.Ops[seq[j]]
			prevLast := prevOp.Records[len(prevOp.Records)-1].Offset
			nextFirst := nextOp.Records[0].Offset
			switch {
			case nextFirst <= prevLast:
				out = append(out, Anomaly{AnomalyNonmonotonicPoll, k.tp,
					fmt.Sprintf("consumer %d: %s starts at %d after %s ended at %d",
						k.consumer, opSource(seq[j], nextOp), nextFirst, opSource(seq[j-1], prevOp), prevLast)})
			case nextFirst > prevLast+1 && f.existsBetween(prevLast, nextFirst):
				out = append(out, Anomaly{AnomalyPollSkip, k.tp,
					fmt.Sprintf("consumer %d: %s starts at %d after %s ended at %d, skipping records",
						k.consumer, opSource(seq[j], nextOp), nextFirst, opSource(seq[j-1], prevOp), prevLast)})
			}
		}
	}
	return out
}

// capAnomalies keeps at most anomaliesPerKindMax anomalies per name and TP
// from a sorted list, and says how many it left out.
func capAnomalies(sorted []Anomaly) []Anomaly {
	out := sorted[:0:0]
	for i := 0; i < len(sorted); {
		j := i
		for j < len(sorted) && sorted[j].Name == sorted[i].Name && sorted[j].TP == sorted[i].TP {
			j++
		}
		if j-i <= anomaliesPerKindMax {
			out = append(out, sorted[i:j]...)
		} else {
			out = append(out, sorted[i:i+anomaliesPerKindMax]...)
			out = append(out, Anomaly{sorted[i].Name, sorted[i].TP,
				fmt.Sprintf("~ and %d more", j-i-anomaliesPerKindMax)})
		}
		i = j
	}
	return out
}
