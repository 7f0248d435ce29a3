package rsm

// Waiters is a set of callbacks waiting for a state machine to change (a
// long-poll fetch waiting for data). A member is removed when it is woken
// or when its owner gives up (Remove), so an answered or timed-out long
// poll leaves nothing behind.
type Waiters struct {
	next uint64
	fns  map[uint64]func()
}

// Waiter is a handle to remove a member of Waiters.
type Waiter struct {
	set *Waiters
	id  uint64
}

// Add adds fn, to be called at most once by the next Wake.
func (w *Waiters) Add(fn func()) Waiter {
	if w.fns == nil {
		w.fns = map[uint64]func(){}
	}
	w.next++
	w.fns[w.next] = fn
	return Waiter{set: w, id: w.next}
}

// Remove takes the waiter out of its set; it is a no-op if the waiter was
// woken or removed already.
func (h Waiter) Remove() {
	if h.set != nil {
		delete(h.set.fns, h.id)
	}
}

// Wake removes every member and calls each once, in the order added.
// Members added by the calls wait for the next Wake.
func (w *Waiters) Wake() {
	if len(w.fns) == 0 {
		return
	}
	fns := w.fns
	w.fns = nil
	for _, id := range sortedKeys(fns) {
		fns[id]()
	}
}

// Len counts the members waiting.
func (w *Waiters) Len() int { return len(w.fns) }
