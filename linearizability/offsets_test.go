package linearizability

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

const g0 = "g0"

var tp1 = TP{Topic: "t", Partition: 1}

func commitOp(client int, call, ret, offset int64, meta string) OffsetOp {
	return OffsetOp{Client: client, Kind: OffsetCommit, Group: g0, TP: tp0, Call: call, Return: ret,
		Offset: offset, Metadata: meta, Generation: 1, Member: fmt.Sprintf("m%d", client)}
}

func adminCommit(client int, call, ret, offset int64, meta string) OffsetOp {
	op := commitOp(client, call, ret, offset, meta)
	op.Admin, op.Generation, op.Member = true, -1, ""
	return op
}

func failedCommit(client int, call, ret, offset int64, meta, err string) OffsetOp {
	op := commitOp(client, call, ret, offset, meta)
	op.Err = err
	return op
}

func readOp(client int, call, ret, offset int64, meta string) OffsetOp {
	return OffsetOp{Client: client, Kind: OffsetFetch, Group: g0, TP: tp0, Call: call, Return: ret, Offset: offset, Metadata: meta}
}

func offsetAnomalyNames(res Result) []string {
	var names []string
	for _, a := range res.Anomalies {
		if !slices.Contains(names, a.Name) {
			names = append(names, a.Name)
		}
	}
	return names
}

func TestCheckOffsetsPasses(t *testing.T) {
	u := int64(ReturnUnknown)
	tests := []struct {
		name string
		ops  []OffsetOp
	}{
		{"empty", nil},
		{"nothing committed yet", []OffsetOp{readOp(0, 0, 10, -1, "")}},
		{"commit then read", []OffsetOp{
			readOp(1, 0, 5, -1, ""),
			commitOp(0, 10, 20, 5, "a"),
			readOp(1, 30, 40, 5, "a"),
		}},
		{"a read concurrent with a commit sees either", []OffsetOp{
			commitOp(0, 0, 10, 5, "a"),
			commitOp(0, 20, 40, 9, "b"),
			readOp(1, 25, 30, 5, "a"),
			readOp(2, 25, 35, 9, "b"),
			readOp(1, 45, 50, 9, "b"),
		}},
		{"concurrent commits land in either order", []OffsetOp{
			commitOp(0, 0, 20, 5, "a"),
			commitOp(1, 5, 15, 7, "b"),
			readOp(2, 30, 40, 5, "a"),
		}},
		{"an unknown commit that never applied", []OffsetOp{
			commitOp(0, 0, 10, 5, "a"),
			commitOp(0, 20, u, 9, "b"),
			readOp(1, 30, 40, 5, "a"),
			readOp(1, 50, 60, 5, "a"),
		}},
		{"an unknown commit applied late", []OffsetOp{
			commitOp(0, 0, 10, 5, "a"),
			commitOp(0, 20, u, 9, "b"),
			readOp(1, 30, 40, 5, "a"),
			readOp(1, 50, 60, 9, "b"),
		}},
		{"a definite failure has no effect", []OffsetOp{
			commitOp(0, 0, 10, 5, "a"),
			failedCommit(2, 20, 30, 3, "z", "ILLEGAL_GENERATION"),
			readOp(1, 40, 50, 5, "a"),
		}},
		{"an admin reset moves back", []OffsetOp{
			commitOp(0, 0, 10, 50, "a"),
			adminCommit(3, 20, 30, 10, "r"),
			readOp(1, 40, 50, 10, "r"),
			commitOp(1, 60, 70, 20, "b"),
		}},
		{"an unknown admin reset excuses a lower commit", []OffsetOp{
			commitOp(0, 0, 10, 50, "a"),
			adminCommit(3, 20, u, 10, "r"),
			commitOp(1, 60, 70, 20, "b"),
		}},
		{"keys are separate registers", []OffsetOp{
			commitOp(0, 0, 10, 5, "a"),
			{Client: 1, Kind: OffsetFetch, Group: g0, TP: tp1, Call: 20, Return: 30, Offset: -1},
			{Client: 1, Kind: OffsetFetch, Group: "g1", TP: tp0, Call: 20, Return: 30, Offset: -1},
			readOp(1, 40, 50, 5, "a"),
		}},
		{"a lower commit concurrent with a higher one", []OffsetOp{
			commitOp(0, 0, 10, 50, "a"),
			commitOp(1, 5, 20, 40, "b"),
			readOp(2, 30, 40, 40, "b"),
		}},
		{"a late commit of the same member explains the next owner's lower commit", []OffsetOp{
			commitOp(0, 0, u, 40, "late"),
			commitOp(0, 10, 20, 50, "a"),
			readOp(2, 30, 40, 40, "late"),
			commitOp(1, 50, 60, 45, "b"),
		}},
		{"a zombie's lower commit rejected", []OffsetOp{
			commitOp(0, 0, 10, 50, "a"),
			failedCommit(1, 20, 30, 40, "z", "ILLEGAL_GENERATION"),
			readOp(2, 40, 50, 50, "a"),
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := CheckOffsets(tt.ops, Options{Timeout: time.Minute})
			if !res.OK || !res.Linearizable || len(res.Anomalies) > 0 {
				t.Fatalf("want OK, got %+v", res)
			}
		})
	}
}

func TestCheckOffsetsFinds(t *testing.T) {
	u := int64(ReturnUnknown)
	tests := []struct {
		name string
		want string
		ops  []OffsetOp
	}{
		{"stale read of an older commit", AnomalyOffsetsNonlinearizable, []OffsetOp{
			commitOp(0, 0, 10, 5, "a"),
			commitOp(0, 20, 30, 9, "b"),
			readOp(1, 40, 50, 5, "a"),
		}},
		{"nothing read after an acknowledged commit", AnomalyOffsetsNonlinearizable, []OffsetOp{
			commitOp(0, 0, 10, 5, "a"),
			readOp(1, 20, 30, -1, ""),
		}},
		{"read of a commit that failed", AnomalyOffsetsNonlinearizable, []OffsetOp{
			failedCommit(0, 0, 10, 5, "a", "REBALANCE_IN_PROGRESS"),
			readOp(1, 20, 30, 5, "a"),
		}},
		{"read of a value nobody committed", AnomalyOffsetsNonlinearizable, []OffsetOp{
			commitOp(0, 0, 10, 5, "a"),
			readOp(1, 20, 30, 5, "other metadata"),
		}},
		{"read of an unknown commit before it was sent", AnomalyOffsetsNonlinearizable, []OffsetOp{
			readOp(1, 0, 10, 5, "a"),
			commitOp(0, 20, u, 5, "a"),
		}},
		{"reads go back and forth", AnomalyOffsetsNonlinearizable, []OffsetOp{
			commitOp(0, 0, 100, 5, "a"),
			commitOp(1, 0, 100, 9, "b"),
			readOp(2, 10, 20, 5, "a"),
			readOp(2, 30, 40, 9, "b"),
			readOp(2, 50, 60, 5, "a"),
		}},
		{"a zombie's commit moves the offset back", AnomalyOffsetRegression, []OffsetOp{
			commitOp(0, 0, 10, 50, "a"),
			commitOp(1, 20, 30, 40, "z"),
		}},
		{"a regression read back though its outcome was unknown", AnomalyOffsetRegression, []OffsetOp{
			commitOp(0, 0, 10, 50, "a"),
			commitOp(1, 20, u, 40, "z"),
			readOp(2, 40, 50, 40, "z"),
		}},
		{"a higher unknown commit does not excuse", AnomalyOffsetRegression, []OffsetOp{
			commitOp(0, 0, 10, 50, "a"),
			commitOp(0, 15, u, 60, "b"),
			commitOp(1, 20, 30, 40, "z"),
		}},
		{"an unknown commit before both does not excuse", AnomalyOffsetRegression, []OffsetOp{
			commitOp(3, 0, u, 10, "old"),
			readOp(2, 1, 2, 10, "old"),
			commitOp(0, 10, 20, 50, "a"),
			commitOp(1, 30, 40, 40, "z"),
		}},
		{"an admin reset before both does not excuse", AnomalyOffsetRegression, []OffsetOp{
			adminCommit(3, 0, 5, 10, "r"),
			commitOp(0, 10, 20, 50, "a"),
			commitOp(1, 30, 40, 40, "z"),
		}},
		{"return before call", AnomalyMalformed, []OffsetOp{
			commitOp(0, 10, 5, 5, "a"),
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := CheckOffsets(tt.ops, Options{Timeout: time.Minute, VisualizeDir: t.TempDir()})
			if res.OK {
				t.Fatalf("want %s, got OK: %+v", tt.want, res)
			}
			if !slices.Contains(offsetAnomalyNames(res), tt.want) {
				t.Fatalf("want %s, got %+v", tt.want, res.Anomalies)
			}
			if tt.want == AnomalyOffsetsNonlinearizable && res.VisualizationPath == "" {
				t.Fatal("no visualisation written")
			}
			for _, a := range res.Anomalies {
				t.Logf("%s %s: %s", a.Name, a.TP, a.Detail)
			}
		})
	}
}

func TestStepOffsets(t *testing.T) {
	s := offsetValue{5, "a"}
	for _, tc := range []struct {
		name string
		s    offsetValue
		in   offsetInput
		out  offsetOutput
		ok   bool
		next offsetValue
	}{
		{"write", s, offsetInput{write: true, value: offsetValue{9, "b"}}, offsetOutput{}, true, offsetValue{9, "b"}},
		{"write lower", s, offsetInput{write: true, value: offsetValue{1, "c"}}, offsetOutput{}, true, offsetValue{1, "c"}},
		{"read it", s, offsetInput{}, offsetOutput{s}, true, s},
		{"read other metadata", s, offsetInput{}, offsetOutput{offsetValue{5, "b"}}, false, s},
		{"read other offset", s, offsetInput{}, offsetOutput{offsetValue{4, "a"}}, false, s},
		{"read none", s, offsetInput{}, offsetOutput{noOffset}, false, s},
		{"read none of none", noOffset, offsetInput{}, offsetOutput{offsetValue{-1, "whatever"}}, true, noOffset},
		{"read a value of none", noOffset, offsetInput{}, offsetOutput{s}, false, noOffset},
	} {
		ok, next := stepOffsets(tc.s, tc.in, tc.out)
		if ok != tc.ok || (ok && next != tc.next) {
			t.Errorf("%s: step = %v, %v; want %v, %v", tc.name, ok, next, tc.ok, tc.next)
		}
	}
}

// genOffsets cuts a history from a sequential register: random clients
// commit unique values and read, each call's interval around its
// linearization point; some commits' outcomes are lost (applied or not),
// some fail definitely. Admin resets write lower offsets.
func genOffsets(r *rand.Rand, n, clients int) []OffsetOp {
	var ops []OffsetOp
	state := map[TP]offsetValue{tp0: noOffset, tp1: noOffset}
	now := int64(0)
	next := map[TP]int64{}
	for i := range n {
		tp := []TP{tp0, tp1}[r.IntN(2)]
		now += 1 + r.Int64N(10)
		point := now
		call := point - r.Int64N(30)
		ret := point + r.Int64N(30)
		c := r.IntN(clients)
		switch k := r.IntN(10); {
		case k < 4:
			v := state[tp]
			op := readOp(c, call, ret, v.offset, v.meta)
			op.TP = tp
			ops = append(ops, op)
		case k < 9:
			next[tp] += r.Int64N(5)
			op := commitOp(c, call, ret, next[tp], fmt.Sprintf("c%d", i))
			op.TP = tp
			switch r.IntN(8) {
			case 0:
				op.Return = ReturnUnknown
				if r.IntN(2) == 0 {
					state[tp] = offsetValue{op.Offset, op.Metadata}
				}
			case 1:
				op.Err = "ILLEGAL_GENERATION"
			default:
				state[tp] = offsetValue{op.Offset, op.Metadata}
			}
			ops = append(ops, op)
		default:
			next[tp] = max(0, next[tp]-r.Int64N(20))
			op := adminCommit(c, call, ret, next[tp], fmt.Sprintf("r%d", i))
			op.TP = tp
			state[tp] = offsetValue{op.Offset, op.Metadata}
			ops = append(ops, op)
		}
	}
	for i := range ops {
		ops[i].Call = max(ops[i].Call, 0)
	}
	return ops
}

// TestOffsetsRandomHistories: histories cut from a correct register pass;
// the same histories with one read made stale (an older value than a
// commit acknowledged before the read) fail.
func TestOffsetsRandomHistories(t *testing.T) {
	for seed := uint64(1); seed <= 200; seed++ {
		r := rand.New(rand.NewPCG(seed, 0x6f6666))
		ops := genOffsets(r, 20+r.IntN(200), 1+r.IntN(8))
		res := CheckOffsets(ops, Options{Timeout: time.Minute})
		if !res.OK {
			t.Fatalf("seed %d: correct history rejected: %+v", seed, res.Anomalies)
		}
		// Make a read stale: it returns a value committed and acknowledged
		// before a later acknowledged commit that returned before the read
		// was sent.
		for i := range ops {
			rd := &ops[i]
			if rd.Kind != OffsetFetch {
				continue
			}
			var older, newer *OffsetOp
			for j := range ops {
				w := &ops[j]
				if w.Kind != OffsetCommit || !w.ok() || w.TP != rd.TP || w.Return >= rd.Call {
					continue
				}
				if newer == nil || w.Call > newer.Return {
					older, newer = newer, w
				}
			}
			if older == nil || older.Return >= newer.Call || (older.Offset == newer.Offset && older.Metadata == newer.Metadata) {
				continue
			}
			bad := slices.Clone(ops)
			bad[i].Offset, bad[i].Metadata = older.Offset, older.Metadata
			res := CheckOffsets(bad, Options{Timeout: time.Minute})
			if !slices.Contains(offsetAnomalyNames(res), AnomalyOffsetsNonlinearizable) {
				t.Fatalf("seed %d: stale read at op %d not found: %+v", seed, i, res.Anomalies)
			}
			break
		}
	}
}
