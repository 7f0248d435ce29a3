package linearizability

import (
	"cmp"
	"fmt"
	"math"
	"slices"

	"github.com/anishathalye/porcupine"
)

// Anomaly names of a consumer group's committed offsets (CheckOffsets).
const (
	// AnomalyOffsetsNonlinearizable: porcupine found no linearization of
	// one (group, partition)'s commits and offset fetches against
	// OffsetsModel, a register: a fetch returned an offset older than one
	// acknowledged before it was sent, or one nobody committed.
	AnomalyOffsetsNonlinearizable = "offsets-nonlinearizable"
	// AnomalyOffsetRegression: a commit known to have been applied
	// (acknowledged, or read back) moved a group's committed offset below
	// one acknowledged before it was sent, with no admin reset (a commit
	// of generation -1) that could lie between the two.
	AnomalyOffsetRegression = "offset-regression"
)

// OffsetKind is what an OffsetOp did.
type OffsetKind int

const (
	// OffsetCommit writes Offset and Metadata (Kafka's OffsetCommit).
	OffsetCommit OffsetKind = iota
	// OffsetFetch reads them (Kafka's OffsetFetch); Offset -1 means none
	// committed.
	OffsetFetch
)

var offsetKindNames = [...]string{OffsetCommit: "offset-commit", OffsetFetch: "offset-fetch"}

// String returns the kind's name, e.g. "offset-commit".
func (k OffsetKind) String() string {
	if k >= 0 && int(k) < len(offsetKindNames) {
		return offsetKindNames[k]
	}
	return fmt.Sprintf("OffsetKind(%d)", int(k))
}

// GroupTP names one committed offset: a consumer group's position on one
// partition. Each is checked on its own, as one register.
type GroupTP struct {
	Group string
	TP    TP
}

// String returns "group:topic/partition".
func (k GroupTP) String() string { return k.Group + ":" + k.TP.String() }

func compareGroupTP(a, b GroupTP) int {
	if c := cmp.Compare(a.Group, b.Group); c != 0 {
		return c
	}
	return compareTP(a.TP, b.TP)
}

// OffsetOp is one partition of one OffsetCommit or OffsetFetch call. Times
// are simulated nanoseconds, as in Op.
type OffsetOp struct {
	Client int // zero-based client index
	Kind   OffsetKind
	Group  string
	TP     TP
	Call   int64
	Return int64 // ReturnUnknown when the outcome is unknown

	// Offset is what a commit wrote or a fetch read (-1: nothing
	// committed). Metadata likewise; a workload should make every
	// commit's Metadata unique, which lets a read name the commit it saw.
	Offset   int64
	Metadata string

	// Admin marks a commit outside the group protocol (generation -1,
	// empty member id): an explicit reset, which may move the offset back.
	Admin bool
	// Generation and Member name the committer, for reports.
	Generation int32
	Member     string

	// Err is "" when the call succeeded. A non-empty Err is a definite
	// failure: the call had no effect. A commit that may have been
	// applied must be recorded with Return = ReturnUnknown instead.
	Err string
}

func (o *OffsetOp) unknown() bool { return o.Return == ReturnUnknown }
func (o *OffsetOp) ok() bool      { return !o.unknown() && o.Err == "" }
func (o *OffsetOp) key() GroupTP  { return GroupTP{o.Group, o.TP} }

func (o *OffsetOp) describe(i int) string {
	who := fmt.Sprintf("client %d", o.Client)
	if o.Kind == OffsetCommit {
		if o.Admin {
			who += " admin"
		} else {
			who += fmt.Sprintf(" member %q generation %d", o.Member, o.Generation)
		}
	}
	return fmt.Sprintf("op %d (%s %s %d %q)", i, who, o.Kind, o.Offset, o.Metadata)
}

// offsetValue is a committed offset and its metadata: the register's value.
type offsetValue struct {
	offset int64
	meta   string
}

var noOffset = offsetValue{offset: -1}

func (v offsetValue) String() string {
	if v.offset < 0 {
		return "none"
	}
	return fmt.Sprintf("%d %q", v.offset, v.meta)
}

// offsetInput is a porcupine Operation.Input of OffsetsModel.
type offsetInput struct {
	key   GroupTP
	write bool
	value offsetValue // written
}

// offsetOutput is a porcupine Operation.Output of OffsetsModel: what a
// read returned (nothing for a write).
type offsetOutput struct {
	value offsetValue
}

// stepOffsets is the sequential specification of one committed offset.
func stepOffsets(s offsetValue, in offsetInput, out offsetOutput) (bool, offsetValue) {
	if in.write {
		return true, in.value
	}
	if out.value.offset < 0 {
		return s.offset < 0, s
	}
	return out.value == s, s
}

func partitionOffsetOps(history []porcupine.Operation) [][]porcupine.Operation {
	byKey := make(map[GroupTP][]porcupine.Operation)
	for _, op := range history {
		k := op.Input.(offsetInput).key
		byKey[k] = append(byKey[k], op)
	}
	keys := make([]GroupTP, 0, len(byKey))
	for k := range byKey {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, compareGroupTP)
	out := make([][]porcupine.Operation, len(keys))
	for i, k := range keys {
		out[i] = byKey[k]
	}
	return out
}

// OffsetsModel returns the porcupine model of committed offsets: one
// register per (group, partition), holding an offset and its metadata,
// initially none (-1). A commit writes; a fetch is legal iff it returns
// the register's value (an offset of -1 iff nothing was written). A
// commit whose outcome is unknown has an infinite return time, so
// "never applied" is the linearization that places it after every other
// call.
func OffsetsModel() porcupine.Model {
	return porcupine.Model{
		Partition: partitionOffsetOps,
		Init:      func() any { return noOffset },
		Step: func(state, input, output any) (bool, any) {
			return stepOffsets(state.(offsetValue), input.(offsetInput), output.(offsetOutput))
		},
		Equal: func(a, b any) bool { return a.(offsetValue) == b.(offsetValue) },
		Hash: func(state any) uint64 {
			v := state.(offsetValue)
			return hashValue(uint64(v.offset), v.meta)
		},
		DescribeOperation: func(input, output any) string {
			in, out := input.(offsetInput), output.(offsetOutput)
			if in.write {
				return fmt.Sprintf("commit(%s, %s)", in.key, in.value)
			}
			return fmt.Sprintf("fetch(%s) -> %s", in.key, out.value)
		},
		DescribeState: func(state any) string { return state.(offsetValue).String() },
	}
}

// effectiveOffsetOps settles what the reads prove about commits whose
// outcome the client never learned, without losing any linearization:
//
//   - a commit whose value (offset and metadata) no successful fetch
//     returned is left out: if it was applied, nothing observed it before
//     the next write, so leaving it out changes no read; and if the rest
//     is linearizable, so is the whole, with the commit placed last.
//   - a commit whose value is unique among the key's commits and was
//     returned by a fetch was applied before that fetch returned: it is
//     given the earliest such return as its return time (if that is after
//     its call; otherwise it keeps an open return, and the checks report
//     the fetch that saw it before it was sent).
//
// It returns the ops to check with their return times (math.MaxInt64 for
// a still open return), and for each kept op whether it is known to have
// been applied (commits) or succeeded (fetches). Definite failures are
// left out.
func effectiveOffsetOps(ops []OffsetOp) (kept []int, ret []int64) {
	type seen struct {
		first   int64 // earliest return of a fetch that returned it
		commits int   // commits of this value
	}
	vals := map[GroupTP]map[offsetValue]*seen{}
	get := func(k GroupTP, v offsetValue) *seen {
		m := vals[k]
		if m == nil {
			m = map[offsetValue]*seen{}
			vals[k] = m
		}
		s := m[v]
		if s == nil {
			s = &seen{first: math.MaxInt64}
			m[v] = s
		}
		return s
	}
	for i := range ops {
		op := &ops[i]
		v := offsetValue{op.Offset, op.Metadata}
		switch {
		case op.Kind == OffsetFetch && op.ok() && op.Offset >= 0:
			s := get(op.key(), v)
			s.first = min(s.first, op.Return)
		case op.Kind == OffsetCommit && op.Err == "":
			get(op.key(), v).commits++
		}
	}
	for i := range ops {
		op := &ops[i]
		switch {
		case op.Err != "":
			continue
		case op.Kind == OffsetFetch && op.unknown():
			continue // tells nothing
		case op.Kind == OffsetFetch:
			kept, ret = append(kept, i), append(ret, op.Return)
		case !op.unknown():
			kept, ret = append(kept, i), append(ret, op.Return)
		default:
			s := vals[op.key()][offsetValue{op.Offset, op.Metadata}]
			if s == nil || s.first == math.MaxInt64 {
				continue // never observed: as if never applied
			}
			r := int64(math.MaxInt64)
			if s.commits == 1 && s.first >= op.Call {
				r = s.first
			}
			kept, ret = append(kept, i), append(ret, r)
		}
	}
	return kept, ret
}

// OffsetOperations converts an offsets history into porcupine operations
// for OffsetsModel, after settling unknown commits (see CheckOffsets).
func OffsetOperations(ops []OffsetOp) []porcupine.Operation {
	kept, ret := effectiveOffsetOps(ops)
	out := make([]porcupine.Operation, 0, len(kept))
	for j, i := range kept {
		op := &ops[i]
		in := offsetInput{key: op.key(), write: op.Kind == OffsetCommit, value: offsetValue{op.Offset, op.Metadata}}
		var o offsetOutput
		if !in.write {
			o.value = in.value
			if o.value.offset < 0 {
				o.value = noOffset
			}
			in.value = offsetValue{}
		}
		out = append(out, porcupine.Operation{ClientId: op.Client, Input: in, Call: op.Call, Output: o, Return: ret[j]})
	}
	return out
}

// CheckOffsets judges a consumer group offsets history: each (group,
// partition)'s commits and fetches must be linearizable as a register
// (offsets-nonlinearizable), and no commit known to have been applied may
// move the offset below one acknowledged before it was sent, unless an
// admin reset may lie between them (offset-regression).
//
// A commit with an unknown outcome may or may not have been applied. One
// whose value no fetch returned is left out (that loses no
// linearization); one a fetch returned was applied before that fetch
// returned. Fetches with an unknown outcome and definite failures are
// left out. Options work as in Check; the visualisation goes to
// Options.VisualizeDir as VisualizationFile.
func CheckOffsets(ops []OffsetOp, opts Options) Result {
	res := Result{Linearizable: true}
	var anomalies []Anomaly
	for i := range ops {
		op := &ops[i]
		switch {
		case op.Client < 0:
			anomalies = append(anomalies, Anomaly{AnomalyMalformed, op.TP, fmt.Sprintf("op %d: negative client %d", i, op.Client)})
		case op.Return != ReturnUnknown && op.Return < op.Call:
			anomalies = append(anomalies, Anomaly{AnomalyMalformed, op.TP, fmt.Sprintf("op %d: returns at %d before its call at %d", i, op.Return, op.Call)})
		case op.Kind != OffsetCommit && op.Kind != OffsetFetch:
			anomalies = append(anomalies, Anomaly{AnomalyMalformed, op.TP, fmt.Sprintf("op %d: unknown kind %d", i, op.Kind)})
		}
	}
	if len(anomalies) > 0 {
		res.Anomalies = anomalies
		return res
	}
	anomalies = append(anomalies, offsetRegressions(ops)...)

	model := OffsetsModel()
	pops := OffsetOperations(ops)
	verdict, info := porcupine.CheckOperationsVerbose(model, pops, opts.Timeout)
	switch verdict {
	case porcupine.Unknown:
		res.TimedOut = true
	case porcupine.Illegal:
		res.Linearizable = false
		parts := partitionOffsetOps(pops)
		partials := info.PartialLinearizations()
		for i, part := range parts {
			longest := 0
			for _, p := range partials[i] {
				longest = max(longest, len(p))
			}
			if longest < len(part) {
				k := part[0].Input.(offsetInput).key
				anomalies = append(anomalies, Anomaly{AnomalyOffsetsNonlinearizable, k.TP,
					fmt.Sprintf("group %s: no linearization of %d operations; the longest linearizable prefix has %d%s",
						k.Group, len(part), longest, staleRead(part))})
			}
		}
		if opts.VisualizeDir != "" {
			path, err := visualize(model, info, opts.VisualizeDir)
			if err != nil {
				anomalies = append(anomalies, Anomaly{Name: "visualization-error", Detail: err.Error()})
			} else {
				res.VisualizationPath = path
			}
		}
	}
	slices.SortStableFunc(anomalies, compareAnomaly)
	res.Anomalies = capAnomalies(anomalies)
	res.OK = res.Linearizable && len(res.Anomalies) == 0
	return res
}

// staleRead names, for a report, the first read of a key that returned a
// value older than a write acknowledged before the read was sent (the
// usual shape of a nonlinearizable register), or "".
func staleRead(part []porcupine.Operation) string {
	var writes []*porcupine.Operation  // by return time
	lastRet := map[offsetValue]int64{} // latest return of a write of each value
	for i := range part {
		w := &part[i]
		if in := w.Input.(offsetInput); in.write {
			writes = append(writes, w)
			lastRet[in.value] = max(lastRet[in.value], w.Return)
		}
	}
	slices.SortStableFunc(writes, func(a, b *porcupine.Operation) int { return cmp.Compare(a.Return, b.Return) })
	for _, r := range part {
		in, out := r.Input.(offsetInput), r.Output.(offsetOutput)
		if in.write {
			continue
		}
		// The latest write acknowledged before the read was sent; the
		// read may return its value or that of a write not over before it.
		j, _ := slices.BinarySearchFunc(writes, r.Call, func(w *porcupine.Operation, t int64) int { return cmp.Compare(w.Return, t) })
		if j == 0 {
			continue
		}
		last := writes[j-1]
		lv := last.Input.(offsetInput).value
		if out.value == lv {
			continue
		}
		if t, ok := lastRet[out.value]; ok && t > last.Call {
			continue
		}
		return fmt.Sprintf(" (e.g. a fetch called at %d returned %s, after the commit of %s was acknowledged at %d)",
			r.Call, out.value, lv, last.Return)
	}
	return ""
}

// offsetRegressions finds commits known to have been applied that moved
// an offset below one acknowledged before they were sent, unless
// something that may lie between the two explains it: an admin reset
// (any outcome), or a commit whose outcome its committer never learned
// and that wrote a lower offset. Kafka accepts a current member's commit
// whenever it arrives, so a commit delayed in the network may apply
// after later ones of the same member and move the offset back; the next
// owner then starts, and commits, from there (sim seed 15 did this). A
// zombie's acknowledged commit has no such excuse.
func offsetRegressions(ops []OffsetOp) []Anomaly {
	kept, ret := effectiveOffsetOps(ops)
	type commit struct {
		i       int
		call    int64
		ret     int64 // math.MaxInt64: open
		acked   bool
		applied bool // acknowledged, or read back
		admin   bool
		offset  int64
	}
	byKey := map[GroupTP][]commit{}
	isKept := map[int]bool{}
	for j, i := range kept {
		isKept[i] = true
		op := &ops[i]
		if op.Kind != OffsetCommit {
			continue
		}
		byKey[op.key()] = append(byKey[op.key()], commit{i: i, call: op.Call, ret: ret[j], acked: !op.unknown(),
			applied: ret[j] != math.MaxInt64, admin: op.Admin, offset: op.Offset})
	}
	// Commits whose outcome is unknown and that were never read back may
	// still have been applied: they may explain a regression too.
	for i := range ops {
		op := &ops[i]
		if op.Kind == OffsetCommit && op.unknown() && !isKept[i] {
			byKey[op.key()] = append(byKey[op.key()], commit{i: i, call: op.Call, ret: math.MaxInt64, admin: op.Admin, offset: op.Offset})
		}
	}
	keys := make([]GroupTP, 0, len(byKey))
	for k := range byKey {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, compareGroupTP)
	var out []Anomaly
	for _, k := range keys {
		cs := byKey[k]
		slices.SortFunc(cs, func(a, b commit) int { return cmp.Or(cmp.Compare(a.call, b.call), cmp.Compare(a.i, b.i)) })
		for _, b := range cs {
			if !b.applied || b.admin {
				continue
			}
			for _, a := range cs {
				if !a.applied || a.ret >= b.call || a.offset <= b.offset || a.i == b.i {
					continue
				}
				if slices.ContainsFunc(cs, func(c commit) bool {
					return c.i != a.i && c.i != b.i && c.call < b.ret && c.ret > a.call &&
						(c.admin || !c.acked && c.offset < a.offset)
				}) {
					continue
				}
				out = append(out, Anomaly{AnomalyOffsetRegression, k.TP,
					fmt.Sprintf("group %s: %s, applied, moved the offset back below %s, acknowledged at %d before it was sent at %d",
						k.Group, ops[b.i].describe(b.i), ops[a.i].describe(a.i), a.ret, b.call)})
				break
			}
		}
	}
	return out
}
