package linearizability

import (
	"slices"
	"testing"
)

func stateValues(s logState) []string {
	if s.n == 0 {
		return nil
	}
	return slices.Clone(s.b.vals[:s.n])
}

// TestLogStateSharing checks that states sharing a backing array never see
// each other's appends, the property porcupine's backtracking relies on.
func TestLogStateSharing(t *testing.T) {
	var empty logState
	a := empty.appendValues([]string{"a"})
	ab := a.appendValues([]string{"b"})
	ac := a.appendValues([]string{"c"}) // diverges: must copy
	ab2 := a.appendValues([]string{"b"})
	abd := ab.appendValues([]string{"d"})

	for _, tc := range []struct {
		s    logState
		want []string
	}{
		{empty, nil}, {a, []string{"a"}}, {ab, []string{"a", "b"}},
		{ac, []string{"a", "c"}}, {ab2, []string{"a", "b"}}, {abd, []string{"a", "b", "d"}},
	} {
		if got := stateValues(tc.s); !slices.Equal(got, tc.want) {
			t.Errorf("state = %v, want %v", got, tc.want)
		}
	}
	if ab2.b != ab.b {
		t.Error("re-appending the same values copied the backing")
	}
	if !ab.equal(ab2) || ab.hash() != ab2.hash() {
		t.Error("equal states compare unequal")
	}
	if ab.equal(ac) {
		t.Error("[a b] equals [a c]")
	}
	// Equal content on different backings.
	other := empty.appendValues([]string{"a", "b"})
	if other.b == ab.b || !other.equal(ab) || other.hash() != ab.hash() {
		t.Error("equal content on separate backings compares unequal")
	}
	// The hash separates value boundaries.
	if empty.appendValues([]string{"ab"}).hash() == empty.appendValues([]string{"a", "b"}).hash() {
		t.Error("hash of [ab] equals hash of [a b]")
	}
}

func TestStep(t *testing.T) {
	s := logState{}.appendValues([]string{"a", "b"})
	for _, tc := range []struct {
		name string
		in   opInput
		out  opOutput
		ok   bool
		n    int
	}{
		{"produce at the end", opInput{kind: Produce, values: []string{"c"}}, opOutput{baseOffset: 2}, true, 3},
		{"produce past the end", opInput{kind: Produce, values: []string{"c"}}, opOutput{baseOffset: 3}, false, 2},
		{"produce over another value", opInput{kind: Produce, values: []string{"c"}}, opOutput{baseOffset: 1}, false, 2},
		{"deduplicated retry", opInput{kind: Produce, values: []string{"b"}}, opOutput{baseOffset: 1}, true, 2},
		{"unknown produce applies", opInput{kind: Produce, values: []string{"c"}}, opOutput{unknown: true}, true, 3},
		{"fetch prefix", opInput{kind: Fetch, offset: 0}, opOutput{records: recs(0, "a"), highWatermark: 2}, true, 2},
		{"fetch all", opInput{kind: Fetch, offset: 0}, opOutput{records: recs(0, "a", "b"), highWatermark: 2}, true, 2},
		{"fetch from the middle", opInput{kind: Fetch, offset: 1}, opOutput{records: recs(1, "b"), highWatermark: 2}, true, 2},
		{"fetch at the end", opInput{kind: Fetch, offset: 2}, opOutput{highWatermark: 2}, true, 2},
		{"fetch empty below the end", opInput{kind: Fetch, offset: 1}, opOutput{highWatermark: 2}, false, 2},
		{"fetch stale watermark", opInput{kind: Fetch, offset: 0}, opOutput{records: recs(0, "a"), highWatermark: 1}, false, 2},
		{"fetch wrong value", opInput{kind: Fetch, offset: 0}, opOutput{records: recs(0, "b"), highWatermark: 2}, false, 2},
		{"fetch wrong start", opInput{kind: Fetch, offset: 0}, opOutput{records: recs(1, "b"), highWatermark: 2}, false, 2},
		{"fetch past watermark", opInput{kind: Fetch, offset: 1}, opOutput{records: recs(1, "b", "c"), highWatermark: 2}, false, 2},
		{"list-offsets", opInput{kind: ListOffsets}, opOutput{start: 0, end: 2}, true, 2},
		{"list-offsets stale", opInput{kind: ListOffsets}, opOutput{start: 0, end: 1}, false, 2},
	} {
		ok, next := step(s, tc.in, tc.out)
		if ok != tc.ok || (ok && next.n != tc.n) {
			t.Errorf("%s: step = %v, len %d; want %v, len %d", tc.name, ok, next.n, tc.ok, tc.n)
		}
	}
	if got := stateValues(s); !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("step mutated its state: %v", got)
	}
}
