package sim

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strconv"

	"github.com/gregor-streaming/gregor/engine"
	"github.com/gregor-streaming/gregor/engine/batch"
	"github.com/gregor-streaming/gregor/engine/segment"
	"github.com/gregor-streaming/gregor/linearizability"
	"github.com/gregor-streaming/gregor/raftlog/vfs"
)

// Failure kinds found by the checkers while the world runs.
const (
	FailDivergence    = "divergence"     // a replica's committed bytes differ from the canonical log
	FailHWRegression  = "hw-regression"  // a live replica's high watermark moved back
	FailCommittedLost = "committed-lost" // a restarted replica lost what it had committed
	FailLiveness      = "liveness"       // the healed cluster did not converge in time
	FailRecovery      = "recovery"       // a broker could not restart
	FailEngineError   = "engine-error"   // the engine returned an error
	FailEnginePanic   = "engine-panic"   // the engine panicked
)

type tpKey struct {
	topic string
	part  int32
}

func (k tpKey) String() string { return fmt.Sprintf("%s/%d", k.topic, k.part) }

func (k tpKey) tp() linearizability.TP { return linearizability.TP{Topic: k.topic, Partition: k.part} }

// canonBatch is one committed batch of the canonical log.
type canonBatch struct {
	base, last int64
	data       []byte
}

// canonLog is TigerBeetle's "state checker" chain for one partition: the
// committed batches every replica must agree with, extended as replicas
// commit.
type canonLog struct {
	batches []canonBatch
	values  []linearizability.Record
	end     int64 // next offset
}

// replicaKey names one replica: a broker and a partition.
type replicaKey struct {
	broker int32
	tp     tpKey
}

// replicaSeen is what the checker last saw of a replica in one broker
// incarnation.
type replicaSeen struct {
	gen      uint64
	verified int64 // offsets below are checked against the canonical log
	hw       int64
	term     uint64
	leader   bool
	// corrupt holds the replica's CURRENT file when the checker's own read
	// met the injected rot; it is not read again until CURRENT changes
	// (the replica replaced its state).
	corrupt string
}

// checker runs the state checks after every event that touched a broker.
type checker struct {
	w        *World
	logs     map[tpKey]*canonLog
	seen     map[replicaKey]*replicaSeen
	preCrash map[replicaKey]int64 // high watermarks at the last crash
	// preApplied: the raft index each replica had applied at the crash.
	preApplied map[replicaKey]uint64
	// undurable holds the replicas whose storage had failed before the
	// last crash, leaving applied state no checkpoint held.
	undurable map[replicaKey]bool
}

func newChecker(w *World) *checker {
	return &checker{w: w, logs: map[tpKey]*canonLog{}, seen: map[replicaKey]*replicaSeen{}, preCrash: map[replicaKey]int64{}, preApplied: map[replicaKey]uint64{}, undurable: map[replicaKey]bool{}}
}

func (c *checker) log(k tpKey) *canonLog {
	l := c.logs[k]
	if l == nil {
		l = &canonLog{}
		c.logs[k] = l
	}
	return l
}

// observe checks every replica on n: its high watermark does not move
// back, and every batch below it matches the canonical log, which it
// extends.
func (c *checker) observe(n *node) {
	for _, rs := range n.b.Replicas() {
		k := tpKey{rs.Topic, rs.Partition}
		rk := replicaKey{n.id, k}
		s := c.seen[rk]
		if s == nil || s.gen != n.gen {
			s = &replicaSeen{gen: n.gen}
			c.seen[rk] = s
		}
		hw := rs.HighWatermark
		if hw < s.hw {
			role := "follower"
			if s.leader && rs.Leader && s.term == rs.Term {
				role = fmt.Sprintf("serving leader in term %d", rs.Term)
			}
			c.w.fail(FailHWRegression, "broker %d %s (%s): high watermark moved back from %d to %d", n.id, k, role, s.hw, hw)
			return
		}
		s.hw, s.term, s.leader = hw, rs.Term, rs.Leader
		rotten := len(c.w.rotten) > 0 && c.w.isRotten(rk)
		if rotten && s.corrupt != "" {
			if cur := c.current(n, rs.Group); cur == s.corrupt {
				continue
			}
			s.corrupt = ""
		}
		if hw > s.verified && !c.verify(n, k, s, hw, rotten, rs.Group) {
			return
		}
		if rotten {
			c.w.rotHealed(rk, s.verified)
		}
	}
}

// current reads a partition's CURRENT file on n (which names its live
// state directory).
func (c *checker) current(n *node, group uint64) string {
	b, _ := vfs.ReadFile(n.fs, "partitions/"+strconv.FormatUint(group, 10)+"/CURRENT")
	return string(b)
}

// verify checks the replica's batches from s.verified up to hw against the
// canonical log, extending it. A replica with injected rot may fail the
// read with segment.ErrCorrupt: that is the rot detected, not a
// violation, and the replica is skipped until it replaces its state.
func (c *checker) verify(n *node, k tpKey, s *replicaSeen, hw int64, rotten bool, group uint64) bool {
	if c.w.life.compacted(k.topic) {
		return c.verifyCompacted(n, k, s, hw, rotten, group)
	}
	l := c.log(k)
	ok := true
	_, err := n.b.ReplicaBatches(k.topic, k.part, s.verified, func(b []byte, base, last int64) error {
		if !ok || base >= hw {
			return nil
		}
		if last >= hw {
			c.w.fail(FailDivergence, "broker %d %s: batch [%d,%d] stored beyond the high watermark %d", n.id, k, base, last, hw)
			ok = false
			return nil
		}
		if base < l.end {
			i, found := slices.BinarySearchFunc(l.batches, base, canonAt)
			if !found || l.batches[i].last != last || !bytes.Equal(l.batches[i].data, b) {
				c.w.fail(FailDivergence, "broker %d %s: committed batch [%d,%d] differs from the canonical log", n.id, k, base, last)
				ok = false
			}
			return nil
		}
		if base != l.end {
			c.w.fail(FailDivergence, "broker %d %s: committed batch at %d leaves a gap after canonical end %d", n.id, k, base, l.end)
			ok = false
			return nil
		}
		recs, err := batch.Records(b)
		if err != nil {
			c.w.fail(FailDivergence, "broker %d %s: committed batch at %d does not decode: %v", n.id, k, base, err)
			ok = false
			return nil
		}
		for _, r := range recs {
			c.appendValue(l, r.Offset, string(r.Value))
		}
		if !c.w.life.canonical(k, recs) {
			ok = false
			return nil
		}
		l.batches = append(l.batches, canonBatch{base: base, last: last, data: bytes.Clone(b)})
		l.end = last + 1
		return nil
	})
	if err != nil && ok && rotten && errors.Is(err, segment.ErrCorrupt) {
		c.w.tracef("rot found %d %s: %v", n.id, k, err)
		s.corrupt = c.current(n, group)
		return true
	}
	if err != nil && ok {
		c.w.fail(FailDivergence, "broker %d %s: reading committed batches: %v", n.id, k, err)
		ok = false
	}
	if ok {
		s.verified = hw
	}
	return ok
}

func (c *checker) appendValue(l *canonLog, off int64, v string) {
	l.values = append(l.values, linearizability.Record{Offset: off, Value: v})
}

// beforeCrash remembers each replica's high watermark on n.
func (c *checker) beforeCrash(n *node) {
	for _, rs := range n.b.Replicas() {
		rk := replicaKey{n.id, tpKey{rs.Topic, rs.Partition}}
		c.preCrash[rk] = rs.HighWatermark
		c.preApplied[rk] = rs.Applied
		if rs.Undurable {
			c.undurable[rk] = true
		}
	}
}

// afterRestart checks that recovery kept everything each replica had
// committed and applied before the crash: what a replica applied was
// committed by a quorum and made durable in its WAL before it was
// applied, so no crash may take it away. A replica may come back applied
// less far than it was, but only as far as raft allows: the commit index
// is written without a sync of its own (raftlog, "Commit indexes without
// a sync of their own"), so the recovered one can be older; then its raft
// log must still hold every entry it had applied, with no gap between its
// state and that log, and it applies them again once it hears the
// commit index (the state checker verifies what it then holds, and the
// liveness phase that it catches up).
func (c *checker) afterRestart(n *node) {
	have := map[tpKey]engine.ReplicaState{}
	for _, rs := range n.b.Replicas() {
		have[tpKey{rs.Topic, rs.Partition}] = rs
	}
	var keys []replicaKey
	for rk := range c.preCrash {
		if rk.broker == n.id {
			keys = append(keys, rk)
		}
	}
	slices.SortFunc(keys, func(a, b replicaKey) int {
		if a.tp.topic != b.tp.topic {
			if a.tp.topic < b.tp.topic {
				return -1
			}
			return 1
		}
		return int(a.tp.part - b.tp.part)
	})
	for _, rk := range keys {
		before, undurable, applied := c.preCrash[rk], c.undurable[rk], c.preApplied[rk]
		delete(c.preCrash, rk)
		delete(c.undurable, rk)
		delete(c.preApplied, rk)
		rs, ok := have[rk.tp]
		hw := rs.HighWatermark
		switch {
		case c.w.churned[rk.tp.topic] && !ok:
			// The churn client may have deleted the topic meanwhile.
		case c.w.isRotten(rk):
			// Its files rotted while it was down: it may start over and
			// copy a peer's state. Until it holds what it had, it must
			// serve nothing (the clients' history checks that).
		case ok && hw < before && undurable && rs.Lost:
			// Its disk failed before the crash, so only raft's log held
			// what it applied since its last checkpoint, and a leader's
			// snapshot may have replaced those entries (engine
			// partition.undurable). It knows it is behind: like a rotten
			// replica it serves nothing and must copy a peer's state back
			// to at least what it had.
			c.w.tracef("behind after storage failure %d %s: %d < %d", n.id, rk.tp, hw, before)
			c.w.rotten = append(c.w.rotten, rotRecord{rk: rk, path: "(storage failed)", target: before})
		case !ok && before > 0:
			c.w.fail(FailCommittedLost, "broker %d %s: replica missing after restart (high watermark %d before the crash)", n.id, rk.tp, before)
			return
		case ok && hw < before && !rs.Lost && rs.RaftLast >= applied && rs.Applied+1 >= rs.RaftFirst:
			c.w.tracef("behind its commit index %d %s: high watermark %d < %d, applied %d, raft log %d..%d", n.id, rk.tp, hw, before, rs.Applied, rs.RaftFirst, rs.RaftLast)
		case ok && hw < before:
			c.w.fail(FailCommittedLost, "broker %d %s: high watermark %d after restart, %d before the crash (applied index %d, was %d; raft log %d..%d)",
				n.id, rk.tp, hw, before, rs.Applied, applied, rs.RaftFirst, rs.RaftLast)
			return
		}
	}
}

// canonAt orders a canonical batch against a base offset (binary search).
func canonAt(cb canonBatch, base int64) int { return cmp.Compare(cb.base, base) }
