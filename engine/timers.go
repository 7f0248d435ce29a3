package engine

import "container/heap"

// timer runs fn once the broker's clock reaches atMillis, checked on ticks
// (request timeouts, long-poll deadlines, peer call timeouts). Timers live
// in a min-heap ordered by (atMillis, seq), so a tick looks only at the
// timers due, and stop removes a timer at once: a cancelled timer costs
// nothing afterwards.
type timer struct {
	atMillis int64
	seq      uint64 // order among timers due at the same time: the order set
	fn       func()
	q        *timerQueue
	index    int // position in q.h; -1 once fired or stopped
}

// done reports whether the timer has fired (its fn has started) or was
// stopped.
func (t *timer) done() bool { return t.index < 0 }

// stop cancels the timer: it leaves the heap now, in O(log n), and its fn
// never runs. Stopping a timer that is done does nothing, so it is safe
// from the timer's own fn.
func (t *timer) stop() {
	if t == nil || t.index < 0 {
		return
	}
	heap.Remove(&t.q.h, t.index)
}

// timerQueue is a broker's pending timers.
type timerQueue struct {
	h   timerHeap
	seq uint64 // timers set so far
}

// after runs fn once the clock passes ms milliseconds from now, checked on
// ticks. The returned timer can be cancelled with stop.
func (b *Broker) after(ms int64, fn func()) *timer {
	q := &b.timers
	q.seq++
	// A timer due now or earlier fires on the next tick either way; clamping
	// keeps every new timer at or after the ones already due (see fireTimers).
	t := &timer{atMillis: b.nowMillis() + max(ms, 0), seq: q.seq, fn: fn, q: q}
	heap.Push(&q.h, t)
	return t
}

// fireTimers runs every timer due that was set before this call, earliest
// first and, among timers due at the same time, in the order they were set.
// A timer stopped by an earlier one's fn does not run. A timer set by a fn
// waits for a later tick even if it is due already, so a fn that re-arms
// itself cannot keep the tick going: new timers sort after every timer due
// now (their time is at least now on a clock that does not go back, and
// their seq is larger), so the loop stops at the first of them.
func (b *Broker) fireTimers() {
	q := &b.timers
	now, set := b.nowMillis(), q.seq
	for len(q.h) > 0 && q.h[0].atMillis <= now && q.h[0].seq <= set {
		t := heap.Pop(&q.h).(*timer)
		t.fn()
	}
}

// timerHeap implements heap.Interface, keeping each timer's index current
// so that stop can remove it from the middle.
type timerHeap []*timer

func (h timerHeap) Len() int { return len(h) }

func (h timerHeap) Less(i, j int) bool {
	if h[i].atMillis != h[j].atMillis {
		return h[i].atMillis < h[j].atMillis
	}
	return h[i].seq < h[j].seq
}

func (h timerHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index = i
	h[j].index = j
}

func (h *timerHeap) Push(x any) {
	t := x.(*timer)
	t.index = len(*h)
	*h = append(*h, t)
}

func (h *timerHeap) Pop() any {
	old := *h
	n := len(old) - 1
	t := old[n]
	old[n] = nil // let the heap's array forget it
	t.index = -1
	*h = old[:n]
	return t
}
