package engine

import (
	"cmp"
	"fmt"
	"slices"
	"testing"
)

type stepClock struct{ now int64 }

func (c *stepClock) NowMillis() int64 { return c.now }

func timerBroker() (*Broker, *stepClock) {
	clk := &stepClock{now: 1_000}
	return &Broker{env: Env{Clock: clk}}, clk
}

// checkHeap verifies the heap order and that every timer knows its place.
func checkHeap(t *testing.T, q *timerQueue) {
	t.Helper()
	for i, tm := range q.h {
		if tm.index != i {
			t.Fatalf("timer at %d thinks it is at %d", i, tm.index)
		}
		if i > 0 && q.h.Less(i, (i-1)/2) {
			t.Fatalf("heap order broken at %d", i)
		}
	}
}

// TestTimers: many timers set in a scrambled order, half of them stopped;
// the rest fire once each, when due, earliest first and, among timers due
// at the same time, in the order they were set; a stopped timer leaves the
// heap at once and never fires; the heap ends empty.
func TestTimers(t *testing.T) {
	b, clk := timerBroker()
	const n = 2000
	type set struct {
		i  int
		at int64
	}
	var fired []set
	timers := make([]*timer, n)
	ats := make([]int64, n)
	for i := range n {
		ms := int64(i*7919%97) * 10 // many timers share a due time
		ats[i] = clk.now + ms
		timers[i] = b.after(ms, func() {
			if clk.now < ats[i] {
				t.Fatalf("timer %d fired at %d, due at %d", i, clk.now, ats[i])
			}
			fired = append(fired, set{i, ats[i]})
		})
	}
	checkHeap(t, &b.timers)
	for i := 0; i < n; i += 2 {
		timers[i].stop()
		if !timers[i].done() {
			t.Fatalf("timer %d not done after stop", i)
		}
	}
	timers[0].stop() // stopping twice does nothing
	if len(b.timers.h) != n/2 {
		t.Fatalf("%d timers in the heap after stopping half of %d", len(b.timers.h), n)
	}
	checkHeap(t, &b.timers)
	for range 150 { // 1050 ms: past the last due time, 960 ms on
		b.fireTimers()
		checkHeap(t, &b.timers)
		clk.now += 7
	}
	if len(b.timers.h) != 0 {
		t.Fatalf("%d timers left in the heap after all were due", len(b.timers.h))
	}
	if len(fired) != n/2 {
		t.Fatalf("%d timers fired, want %d", len(fired), n/2)
	}
	want := make([]set, 0, n/2)
	for i := 1; i < n; i += 2 {
		want = append(want, set{i, ats[i]})
	}
	slices.SortStableFunc(want, func(x, y set) int { return cmp.Compare(x.at, y.at) })
	if !slices.Equal(fired, want) {
		t.Fatalf("firing order differs from (due time, order set)")
	}
	for _, tm := range timers {
		if !tm.done() {
			t.Fatal("a timer is not done after the heap emptied")
		}
	}
}

// TestTimersWithinATick: a timer stopped by an earlier timer's fn in the
// same tick does not fire; a timer set by a fn waits for the next tick even
// when it is due already; a fn may stop its own timer.
func TestTimersWithinATick(t *testing.T) {
	b, clk := timerBroker()
	var log []string
	var second, self *timer
	b.after(5, func() {
		log = append(log, "first")
		second.stop()
		b.after(0, func() { log = append(log, "rearmed") })
	})
	second = b.after(5, func() { log = append(log, "second") })
	self = b.after(5, func() { log = append(log, "self"); self.stop() })
	clk.now += 5
	b.fireTimers()
	if !slices.Equal(log, []string{"first", "self"}) {
		t.Fatalf("first tick fired %q", log)
	}
	if len(b.timers.h) != 1 {
		t.Fatalf("%d timers pending, want the re-armed one", len(b.timers.h))
	}
	b.fireTimers()
	if !slices.Equal(log, []string{"first", "self", "rearmed"}) || len(b.timers.h) != 0 {
		t.Fatalf("second tick: fired %q, %d pending", log, len(b.timers.h))
	}
}

// BenchmarkTimerAfterStop: the cost of setting a timer and cancelling it
// (what every answered request does) with many other timers pending.
//
//	go test -run '^$' -bench TimerAfterStop ./engine/
func BenchmarkTimerAfterStop(b *testing.B) {
	for _, pending := range []int{0, 1_000, 100_000} {
		b.Run(fmt.Sprintf("pending=%d", pending), func(b *testing.B) {
			br, _ := timerBroker()
			for i := range pending {
				br.after(int64(i%30_000), func() {})
			}
			fn := func() {}
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				br.after(int64(i%30_000), fn).stop()
			}
			if len(br.timers.h) != pending {
				b.Fatalf("%d pending, want %d", len(br.timers.h), pending)
			}
		})
	}
}
