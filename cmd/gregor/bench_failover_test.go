package main

import (
	"strings"
	"testing"
	"time"
)

// TestBenchFailoverGap: a partition's unavailability is the longest
// interval from the stop through its acknowledgements after it, whatever
// their order; acknowledgements before the stop do not count; none after
// it is the stop to the end, unrecovered.
func TestBenchFailoverGap(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		var out []time.Duration
		for _, x := range v {
			out = append(out, time.Duration(x)*time.Millisecond)
		}
		return out
	}
	kill, end := 1000*time.Millisecond, 9000*time.Millisecond
	for _, tc := range []struct {
		name string
		acks []time.Duration
		gap  time.Duration
		ok   bool
	}{
		{"stop to the first ack", ms(990, 995, 2500, 2505, 2510), 1500 * time.Millisecond, true},
		{"a later gap is longer", ms(1001, 1002, 4002, 4003), 3000 * time.Millisecond, true},
		{"unordered", ms(4003, 1002, 4002, 1001, 990), 3000 * time.Millisecond, true},
		{"an ack at the stop", ms(1000, 1010), 10 * time.Millisecond, true},
		{"none after the stop", ms(10, 20, 999), 8000 * time.Millisecond, false},
		{"none at all", nil, 8000 * time.Millisecond, false},
	} {
		gap, ok := benchFailoverGap(kill, end, tc.acks)
		if gap != tc.gap || ok != tc.ok {
			t.Errorf("%s: gap %v ok %v, want %v %v", tc.name, gap, ok, tc.gap, tc.ok)
		}
	}
}

// TestBenchFailoverVictim: the broker leading the most partitions; on a
// tie the controller or not, as asked.
func TestBenchFailoverVictim(t *testing.T) {
	for _, tc := range []struct {
		leaders    []int32
		ctrl       int32
		controller bool
		want       int32
	}{
		{[]int32{1, 1, 2, 2, 3, 3}, 1, false, 2},
		{[]int32{1, 1, 2, 2, 3, 3}, 1, true, 1},
		{[]int32{1, 1, 2, 2, 3, 3}, 3, true, 3},
		{[]int32{1, 1, 2, 2, 3, 3}, 2, false, 1},
		{[]int32{3, 3, 3, 2, 2, 1}, 3, false, 3}, // most partitions first
		{[]int32{2, 1, 1, 2, 2, 3}, 2, false, 2},
	} {
		if got := benchFailoverVictim(tc.leaders, tc.ctrl, tc.controller); got != tc.want {
			t.Errorf("leaders %v, controller %d, stop the controller %v: %d, want %d", tc.leaders, tc.ctrl, tc.controller, got, tc.want)
		}
	}
}

func TestBenchFailoverFlags(t *testing.T) {
	for _, args := range [][]string{
		{"--runs", "0"},
		{"--rate", "0"},
		{"--partitions", "0"},
		{"--election-ticks", "1"},
		{"--settle", "-1s"},
		{"--client-log", "loud"},
		{"--brokers", "x:1"}, // it starts its own cluster
	} {
		var stdout, stderr strings.Builder
		if code := run(append([]string{"bench", "failover"}, args...), &stdout, &stderr); code != exitUsage {
			t.Errorf("gregor bench failover %v: exit %d, want %d (stderr %q)", args, code, exitUsage, stderr.String())
		}
	}
	o, err := parseBenchFailover(nil, &strings.Builder{})
	if err != nil || o.runs != benchFailoverRunsDefault || o.settle <= 5*time.Second || o.electionTicks != 0 || o.tickMillis != 0 {
		t.Fatalf("defaults %+v, %v: want the engine's timeouts and a settle above franz-go's 5 s metadata min age", o, err)
	}
}
