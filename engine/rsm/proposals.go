package rsm

import "slices"

// Proposals is the table of this run's proposals of one state machine that
// wait for their entries to apply, keyed by sequence. Each waiter is called
// exactly once: by Resolve when its entry applies, or by FailAll when the
// proposals may have been lost (leadership or term changed, the replica
// stopped). A resolved or failed waiter is removed at once, so nothing
// outlives its request.
type Proposals[R any] struct {
	pending map[uint64]func(R)
}

// Add registers fn for the proposal with sequence seq.
func (p *Proposals[R]) Add(seq uint64, fn func(R)) {
	if p.pending == nil {
		p.pending = map[uint64]func(R){}
	}
	p.pending[seq] = fn
}

// Resolve calls and removes the waiter of seq, if there is one.
func (p *Proposals[R]) Resolve(seq uint64, r R) bool {
	fn, ok := p.pending[seq]
	if !ok {
		return false
	}
	delete(p.pending, seq)
	fn(r)
	return true
}

// Cancel removes the waiter of seq without calling it.
func (p *Proposals[R]) Cancel(seq uint64) bool {
	_, ok := p.pending[seq]
	delete(p.pending, seq)
	return ok
}

// FailAll calls and removes every waiter, in sequence order, with r.
func (p *Proposals[R]) FailAll(r R) {
	if len(p.pending) == 0 {
		return
	}
	pend := p.pending
	p.pending = nil
	for _, s := range sortedKeys(pend) {
		pend[s](r)
	}
}

// sortedKeys returns m's keys in increasing order: callbacks run in a
// deterministic order, never map order.
func sortedKeys[V any](m map[uint64]V) []uint64 {
	ks := make([]uint64, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// Len counts the waiting proposals.
func (p *Proposals[R]) Len() int { return len(p.pending) }
