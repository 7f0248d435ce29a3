package sim

import (
	"testing"

	"github.com/gregor-streaming/gregor/linearizability"
)

func TestResolveUnknown(t *testing.T) {
	const unknown = linearizability.ReturnUnknown
	tp := linearizability.TP{Topic: "t0", Partition: 0}
	produce := func(call, ret, base int64, vals ...string) linearizability.Op {
		return linearizability.Op{Kind: linearizability.Produce, TP: tp, Call: call, Return: ret, BaseOffset: base, Values: vals, Consumer: -1}
	}
	fetch := func(call, ret, hw int64) linearizability.Op {
		return linearizability.Op{Kind: linearizability.Fetch, TP: tp, Call: call, Return: ret, HighWatermark: hw, Consumer: 1}
	}
	final := func(vals ...string) []linearizability.Record {
		var recs []linearizability.Record
		for i, v := range vals {
			recs = append(recs, linearizability.Record{Offset: int64(i), Value: v})
		}
		return recs
	}
	const end = 1000
	for _, tc := range []struct {
		name  string
		ops   []linearizability.Op
		final []linearizability.Record
		want  []linearizability.Op // Return, BaseOffset, Err of each op
	}{
		{
			// (and the retry, acknowledged at 2, saw it written by 30)
			name: "a retried batch that landed twice: the unknown attempt owns the other copy",
			ops: []linearizability.Op{
				produce(10, unknown, 0, "a", "b"),
				produce(20, 30, 2, "a", "b"),
			},
			final: final("a", "b", "a", "b"),
			want:  []linearizability.Op{{Return: 30, BaseOffset: 0}, {Return: 30, BaseOffset: 2}},
		},
		{
			name: "its return is bounded by the first call that saw the log past it",
			ops: []linearizability.Op{
				produce(10, unknown, 0, "a"),
				fetch(12, 40, 1),
				fetch(13, 25, 2),
				produce(20, 30, 1, "a"),
			},
			final: final("a", "a"),
			want:  []linearizability.Op{{Return: 25, BaseOffset: 0}, {Return: 40}, {Return: 25}, {Return: 30, BaseOffset: 1}},
		},
		{
			name: "the acknowledged retry's copy is the only one: the unknown attempt wrote nothing",
			ops: []linearizability.Op{
				produce(10, unknown, 0, "a"),
				produce(20, 30, 0, "a"),
			},
			final: final("a"),
			want:  []linearizability.Op{{Return: 11, Err: "not written: the final log holds no copy of it"}, {Return: 30}},
		},
		{
			name: "three unknown attempts, two copies: the earliest two wrote them",
			ops: []linearizability.Op{
				produce(10, unknown, 0, "a"),
				produce(20, unknown, 0, "a"),
				produce(30, unknown, 0, "a"),
			},
			final: final("x", "a", "y", "a"),
			want: []linearizability.Op{{Return: end, BaseOffset: 1}, {Return: end, BaseOffset: 3},
				{Return: 31, Err: "not written: the final log holds no copy of it"}},
		},
		{
			name: "more copies than attempts: left for the checks",
			ops: []linearizability.Op{
				produce(10, unknown, 0, "a"),
			},
			final: final("a", "a"),
			want:  []linearizability.Op{{Return: unknown}},
		},
		{
			name: "a sighting before the call is not used: the checker must see it",
			ops: []linearizability.Op{
				fetch(1, 5, 1),
				produce(10, unknown, 0, "a"),
			},
			final: final("a"),
			want:  []linearizability.Op{{Return: 5}, {Return: end, BaseOffset: 0}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resolveUnknown(tc.ops, tc.final, end)
			for i, w := range tc.want {
				got := tc.ops[i]
				if got.Return != w.Return || got.Err != w.Err || (got.Kind == linearizability.Produce && got.BaseOffset != w.BaseOffset) {
					t.Errorf("op %d: return %d base %d err %q; want return %d base %d err %q",
						i, got.Return, got.BaseOffset, got.Err, w.Return, w.BaseOffset, w.Err)
				}
			}
		})
	}
}
