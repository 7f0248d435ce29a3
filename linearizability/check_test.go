package linearizability

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var tp0 = TP{Topic: "t", Partition: 0}

func produceOp(client int, call, ret, base int64, vals ...string) Op {
	return Op{Client: client, Kind: Produce, TP: tp0, Call: call, Return: ret, BaseOffset: base, Values: vals, Consumer: -1}
}

func unknownProduce(client int, call int64, vals ...string) Op {
	return Op{Client: client, Kind: Produce, TP: tp0, Call: call, Return: ReturnUnknown, BaseOffset: -1, Values: vals, Consumer: -1}
}

func fetchOp(client, consumer int, call, ret, offset, hw int64, recs []Record) Op {
	return Op{Client: client, Kind: Fetch, TP: tp0, Call: call, Return: ret, Offset: offset, HighWatermark: hw, Records: recs, Consumer: consumer}
}

// recs returns records with the given values at start, start+1, ...
func recs(start int64, vals ...string) []Record {
	out := make([]Record, len(vals))
	for i, v := range vals {
		out[i] = Record{Offset: start + int64(i), Value: v}
	}
	return out
}

func final(vals ...string) map[TP][]Record { return map[TP][]Record{tp0: recs(0, vals...)} }

func anomalyNames(res Result) []string {
	var names []string
	for _, a := range res.Anomalies {
		if !slices.Contains(names, a.Name) {
			names = append(names, a.Name)
		}
	}
	return names
}

func TestCheckPasses(t *testing.T) {
	tests := []struct {
		name string
		h    History
	}{
		{"empty", History{Mode: ExactlyOnce}},
		{"concurrent produces land in either order", History{Mode: ExactlyOnce, Ops: []Op{
			produceOp(0, 0, 10, 1, "a"),
			produceOp(1, 5, 15, 0, "b"),
			fetchOp(2, -1, 20, 30, 0, 2, recs(0, "b", "a")),
			{Client: 3, Kind: ListOffsets, TP: tp0, Call: 20, Return: 25, Start: 0, End: 2},
		}, Final: final("b", "a")}},
		{"fetch concurrent with a produce may miss it", History{Mode: ExactlyOnce, Ops: []Op{
			produceOp(0, 0, 10, 0, "a"),
			fetchOp(1, -1, 5, 15, 0, 0, nil),
		}}},
		{"fetch of a prefix then the rest", History{Mode: ExactlyOnce, Ops: []Op{
			produceOp(0, 0, 10, 0, "a", "b", "c"),
			fetchOp(1, 1, 20, 30, 0, 3, recs(0, "a")),
			fetchOp(1, 1, 40, 50, 1, 3, recs(1, "b", "c")),
			fetchOp(1, 1, 60, 70, 3, 3, nil),
		}, Final: final("a", "b", "c")}},
		{"unknown produce that applied", History{Mode: AtLeastOnce, Ops: []Op{
			unknownProduce(0, 0, "a"),
			produceOp(1, 20, 30, 1, "b"),
			fetchOp(2, -1, 40, 50, 0, 2, recs(0, "a", "b")),
		}, Final: final("a", "b")}},
		{"unknown produce that did not apply", History{Mode: AtLeastOnce, Ops: []Op{
			unknownProduce(0, 0, "a"),
			produceOp(1, 20, 30, 0, "b"),
			fetchOp(2, -1, 40, 50, 0, 1, recs(0, "b")),
		}, Final: final("b")}},
		{"unknown produce that did not apply, no final read", History{Mode: AtLeastOnce, Ops: []Op{
			unknownProduce(0, 0, "a"),
			produceOp(1, 20, 30, 0, "b"),
			fetchOp(2, -1, 40, 50, 0, 1, recs(0, "b")),
		}}},
		{"unknown produce applied, never read, counted in a high watermark", History{Mode: AtLeastOnce, Ops: []Op{
			unknownProduce(0, 0, "a"),
			produceOp(1, 20, 30, 1, "b"),
			fetchOp(2, -1, 40, 50, 1, 2, recs(1, "b")),
		}}},
		{"unknown produce applied late", History{Mode: AtLeastOnce, Ops: []Op{
			unknownProduce(0, 0, "a"),
			produceOp(1, 20, 30, 0, "b"),
			fetchOp(2, -1, 40, 50, 0, 1, recs(0, "b")),
			fetchOp(2, -1, 60, 70, 0, 2, recs(0, "b", "a")),
		}, Final: final("b", "a")}},
		{"definite error has no effect", History{Mode: AtMostOnce, Ops: []Op{
			{Client: 0, Kind: Produce, TP: tp0, Call: 0, Return: 10, Values: []string{"x"}, Err: "NOT_LEADER_OR_FOLLOWER", Consumer: -1},
			fetchOp(1, -1, 20, 30, 0, 0, nil),
			fetchOp(1, -1, 40, 50, 0, 0, nil),
		}, Final: final()}},
		{"retry after an unknown outcome duplicates in at-least-once", History{Mode: AtLeastOnce, Ops: []Op{
			unknownProduce(0, 0, "a"),
			produceOp(0, 20, 30, 1, "a"),
		}, Final: final("a", "a")}},
		{"idempotent retry acknowledged with the first attempt's offset", History{Mode: ExactlyOnce, Ops: []Op{
			unknownProduce(0, 0, "a"),
			produceOp(1, 5, 15, 1, "b"),
			produceOp(0, 20, 30, 0, "a"),
		}, Final: final("a", "b")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := Check(tt.h, Options{})
			if !res.OK || !res.Linearizable || len(res.Anomalies) > 0 {
				t.Fatalf("want OK, got %+v", res)
			}
		})
	}
}

func TestCheckFinds(t *testing.T) {
	tests := []struct {
		name string
		want string // anomaly name
		h    History
	}{
		{"acknowledged value missing from the final read", AnomalyLostWrite, History{Mode: AtLeastOnce, Ops: []Op{
			produceOp(0, 0, 10, 0, "a"),
			produceOp(0, 20, 30, 1, "b"),
		}, Final: final("b")}},
		{"acknowledged value overwritten in a fetch", AnomalyLostWrite, History{Mode: AtLeastOnce, Ops: []Op{
			produceOp(0, 0, 10, 0, "a"),
			fetchOp(1, -1, 20, 30, 0, 1, recs(0, "z")),
		}}},
		{"value at two offsets in exactly-once", AnomalyDuplicate, History{Mode: ExactlyOnce, Ops: []Op{
			unknownProduce(0, 0, "a"),
			produceOp(0, 20, 30, 1, "a"),
		}, Final: final("a", "a")}},
		{"value at two offsets in at-most-once", AnomalyDuplicate, History{Mode: AtMostOnce, Ops: []Op{
			unknownProduce(0, 0, "a"),
			unknownProduce(0, 20, "a"),
		}, Final: final("a", "a")}},
		{"two reads disagree on an offset", AnomalyInconsistentOffsets, History{Mode: AtLeastOnce, Ops: []Op{
			unknownProduce(0, 0, "a"),
			unknownProduce(1, 0, "b"),
			fetchOp(2, -1, 20, 30, 0, 1, recs(0, "a")),
			fetchOp(3, -1, 20, 30, 0, 1, recs(0, "b")),
		}}},
		{"two acknowledgements of one offset", AnomalyInconsistentOffsets, History{Mode: AtLeastOnce, Ops: []Op{
			produceOp(0, 0, 10, 0, "a"),
			produceOp(1, 0, 10, 0, "b"),
		}}},
		{"consumer goes backwards", AnomalyNonmonotonicPoll, History{Mode: AtLeastOnce, Ops: []Op{
			produceOp(0, 0, 10, 0, "a", "b"),
			fetchOp(1, 7, 20, 30, 0, 2, recs(0, "a", "b")),
			fetchOp(1, 7, 40, 50, 1, 2, recs(1, "b")),
		}}},
		{"consumer skips a record", AnomalyPollSkip, History{Mode: AtLeastOnce, Ops: []Op{
			produceOp(0, 0, 10, 0, "a", "b", "c"),
			fetchOp(1, 7, 20, 30, 0, 3, recs(0, "a")),
			fetchOp(1, 7, 40, 50, 2, 3, recs(2, "c")),
		}, Final: final("a", "b", "c")}},
		{"one fetch skips a record", AnomalyIntPollSkip, History{Mode: AtLeastOnce, Ops: []Op{
			produceOp(0, 0, 10, 0, "a", "b", "c"),
			fetchOp(1, -1, 20, 30, 0, 3, []Record{{0, "a"}, {2, "c"}}),
		}}},
		{"one fetch goes backwards", AnomalyIntNonmonotonicPoll, History{Mode: AtLeastOnce, Ops: []Op{
			produceOp(0, 0, 10, 0, "a", "b"),
			fetchOp(1, -1, 20, 30, 0, 2, []Record{{0, "a"}, {1, "b"}, {0, "a"}}),
		}}},
		{"stale read", AnomalyNonlinearizable, History{Mode: ExactlyOnce, Ops: []Op{
			produceOp(0, 0, 10, 0, "a"),
			fetchOp(1, -1, 20, 30, 0, 0, nil),
		}}},
		{"stale list-offsets", AnomalyNonlinearizable, History{Mode: ExactlyOnce, Ops: []Op{
			produceOp(0, 0, 10, 0, "a"),
			{Client: 1, Kind: ListOffsets, TP: tp0, Call: 20, Return: 30, Start: 0, End: 0},
		}}},
		{"read of a value whose produce failed", AnomalyNonlinearizable, History{Mode: ExactlyOnce, Ops: []Op{
			{Client: 0, Kind: Produce, TP: tp0, Call: 0, Return: 10, Values: []string{"x"}, Err: "NOT_LEADER_OR_FOLLOWER", Consumer: -1},
			fetchOp(1, -1, 20, 30, 0, 1, recs(0, "x")),
		}}},
		{"return before call", AnomalyMalformed, History{Mode: ExactlyOnce, Ops: []Op{
			produceOp(0, 10, 5, 0, "a"),
		}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := Check(tt.h, Options{})
			if res.OK {
				t.Fatalf("want %s, got OK: %+v", tt.want, res)
			}
			if !slices.Contains(anomalyNames(res), tt.want) {
				t.Fatalf("want %s, got %+v", tt.want, res.Anomalies)
			}
		})
	}
}

func TestDuplicateAllowedOnlyInAtLeastOnce(t *testing.T) {
	h := History{Ops: []Op{unknownProduce(0, 0, "a"), produceOp(0, 20, 30, 1, "a")}, Final: final("a", "a")}
	for _, mode := range []Mode{AtMostOnce, AtLeastOnce, ExactlyOnce} {
		h.Mode = mode
		res := Check(h, Options{})
		if got, want := res.OK, mode == AtLeastOnce; got != want {
			t.Errorf("%s: OK = %v, want %v (%+v)", mode, got, want, res.Anomalies)
		}
		if !res.Linearizable {
			t.Errorf("%s: not linearizable", mode)
		}
	}
}

// TestStaleReadNamesOnlyItsPartition checks that porcupine's failure is
// pinned on the partition that failed, and that the anomaly checks alone
// do not see a stale read (only the model does).
func TestStaleReadNamesOnlyItsPartition(t *testing.T) {
	tp1 := TP{Topic: "t", Partition: 1}
	good := []Op{produceOp(2, 0, 10, 0, "x"), fetchOp(3, -1, 20, 30, 0, 1, recs(0, "x"))}
	for i := range good {
		good[i].TP = tp1
	}
	h := History{Mode: ExactlyOnce, Ops: append([]Op{
		produceOp(0, 0, 10, 0, "a"),
		fetchOp(1, -1, 20, 30, 0, 0, nil),
	}, good...)}
	res := Check(h, Options{})
	want := []Anomaly{{Name: AnomalyNonlinearizable, TP: tp0}}
	if diff := cmp.Diff(want, res.Anomalies, cmp.FilterPath(func(p cmp.Path) bool {
		return p.Last().String() == ".Detail"
	}, cmp.Ignore())); diff != "" {
		t.Fatalf("anomalies (-want +got):\n%s", diff)
	}
	if res.Linearizable || res.OK {
		t.Fatalf("want not linearizable, got %+v", res)
	}
}

func TestVisualizationWrittenOnFailure(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "viz")
	h := History{Mode: ExactlyOnce, Ops: []Op{
		produceOp(0, 0, 10, 0, "a"),
		unknownProduce(2, 5, "b"),
		fetchOp(1, -1, 20, 30, 0, 0, nil),
	}}
	res := Check(h, Options{VisualizeDir: dir})
	if res.Linearizable {
		t.Fatal("stale read accepted")
	}
	if want := filepath.Join(dir, VisualizationFile); res.VisualizationPath != want {
		t.Fatalf("VisualizationPath = %q, want %q", res.VisualizationPath, want)
	}
	b, err := os.ReadFile(res.VisualizationPath)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "<html") || !strings.Contains(string(b), "produce(t/0 [a])") {
		t.Fatalf("visualisation lacks the history: %.200s", b)
	}

	// A passing history writes nothing.
	okDir := filepath.Join(t.TempDir(), "ok")
	if res := Check(History{Ops: []Op{produceOp(0, 0, 10, 0, "a")}}, Options{VisualizeDir: okDir}); res.VisualizationPath != "" || !res.OK {
		t.Fatalf("passing history: %+v", res)
	}
	if _, err := os.Stat(okDir); !os.IsNotExist(err) {
		t.Fatalf("visualisation directory created for a passing history: %v", err)
	}
}

func TestCheckIsDeterministic(t *testing.T) {
	h := History{Mode: ExactlyOnce, Ops: []Op{
		produceOp(0, 0, 10, 0, "a", "b", "c"),
		fetchOp(1, 7, 20, 30, 0, 3, recs(0, "a")),
		fetchOp(1, 7, 40, 50, 2, 3, recs(2, "c")),
		fetchOp(2, 8, 20, 30, 0, 3, recs(0, "a", "b")),
		fetchOp(2, 8, 40, 50, 0, 3, recs(0, "a")),
		fetchOp(3, -1, 20, 30, 0, 3, recs(0, "z")),
	}, Final: final("a", "b", "q", "a")}
	first := Check(h, Options{})
	for range 5 {
		if diff := cmp.Diff(first, Check(h, Options{})); diff != "" {
			t.Fatalf("Check differs between runs:\n%s", diff)
		}
	}
	if first.OK || len(first.Anomalies) < 5 {
		t.Fatalf("want several anomalies, got %+v", first.Anomalies)
	}
}

func TestAnomaliesCapped(t *testing.T) {
	var ops []Op
	for i := range anomaliesPerKindMax + 5 {
		ops = append(ops, fetchOp(1, -1, int64(i), int64(i), 0, 1, recs(0, "a")))
		ops = append(ops, fetchOp(2, -1, int64(i), int64(i), 0, 1, recs(0, "b")))
		ops = append(ops, fetchOp(2, -1, int64(i), int64(i), 0, 1, []Record{{1, "c"}, {0, "a"}}))
	}
	res := Check(History{Mode: AtLeastOnce, Ops: ops}, Options{})
	var n int
	for _, a := range res.Anomalies {
		if a.Name == AnomalyIntNonmonotonicPoll {
			n++
		}
	}
	if n != anomaliesPerKindMax+1 {
		t.Fatalf("got %d %s anomalies, want %d", n, AnomalyIntNonmonotonicPoll, anomaliesPerKindMax+1)
	}
}

func TestModeNames(t *testing.T) {
	for _, m := range []Mode{AtMostOnce, AtLeastOnce, ExactlyOnce} {
		got, err := ParseMode(m.String())
		if err != nil || got != m {
			t.Errorf("ParseMode(%q) = %v, %v", m.String(), got, err)
		}
	}
	if AtLeastOnce.String() != "at-least-once" {
		t.Errorf("AtLeastOnce.String() = %q", AtLeastOnce.String())
	}
	if _, err := ParseMode("twice"); err == nil || !strings.HasPrefix(err.Error(), "linearizability: ") {
		t.Errorf("ParseMode(twice) error = %v", err)
	}
}
