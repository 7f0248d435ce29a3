package sim

// Elle-style cycle detection over the transactional workload (G0, G1c),
// run once the readers have read to the end: a dependency graph over the
// committed transactions (an EndTxn(commit) acknowledged, or sent and
// never answered), built from the committed (canonical) log of every tx
// and txo partition and from what the processors consumed, whose edges
// each prove that one transaction sent EndTxn(commit) before the other;
// Tarjan's strongly connected components find a cycle in it, which no
// correct run can have. The same log holds every fetch of the readers and
// processors to int-poll-skip (below).
//
// Which edges are sound (docs/simulation.md has the reasoning):
//
//	ww  A -> B on partition p: a commit marker that decides records of A
//	    on p lies below a record of B on p. The marker was written after
//	    A's EndTxn(commit) reached the coordinator; B's record was written
//	    before it was acknowledged, so before B sent EndTxn(commit) (a
//	    producer ends a transaction only once every batch of it is
//	    acknowledged, as Kafka's clients flush first).
//	wr  A -> B: B (a processor's transaction) consumed a record of A,
//	    read_committed, before B sent EndTxn(commit); A's record was
//	    visible, so A's commit marker was written, after A sent
//	    EndTxn(commit).
//
// Jepsen's Kafka workload (jepsen.tests.kafka ww-graph with :ww-deps)
// orders two transactions that merely precede one another in a
// partition's record order; Kafka does not isolate concurrent
// transactions' writes, and their records interleave in a different order
// on each partition, so Jepsen then has to allow G0 and G1c. An edge here
// needs one transaction's commit on p to precede the other's record, and
// concurrent transactions, whose records interleave, get none.
//
// In this workload e0's processors write txo, which no transaction
// reads, but the ping-pong processors (txnpingpong.go) read pp, which the
// other's transactions write, in transactions that poll again after they
// wrote: wr edges run both ways between them, and a run whose
// read_committed shows uncommitted records (lso-is-hw) makes G1c, T1
// -wr-> T2 -wr-> T1, which a correct one cannot (TestG1cReached; the
// synthetic histories of TestTxnCycles).

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/gregor-streaming/gregor/engine/batch"
	"github.com/gregor-streaming/gregor/linearizability"
)

// recFate is what a partition's log decided of one of its data records.
type recFate uint8

const (
	fateUndecided recFate = iota // transactional, and no marker of its producer follows it
	fateCommitted                // its producer's next marker commits
	fateAborted                  // its producer's next marker aborts
	fatePlain                    // not transactional
)

// logRec is one data record of a partition's committed log.
type logRec struct {
	off    int64
	v      string
	txn    int // its transaction (index in txnWorld.txns), or -1
	fate   recFate
	marker int64 // the marker that decided it, or -1
}

// partLog is one partition's committed log as these checks read it: its
// data records, in offset order, each with its fate. Control batches take
// offsets but hold no data record, so offsets have gaps.
type partLog struct {
	tp   tpKey
	recs []logRec
}

// partLogs decodes the canonical log of every partition the readers read.
func (tw *txnWorld) partLogs() map[tpKey]*partLog {
	logs := map[tpKey]*partLog{}
	for _, tp := range tw.readTPs {
		var bs [][]byte
		for _, b := range tw.w.check.log(tp).batches {
			bs = append(bs, b.data)
		}
		logs[tp] = tw.decodeLog(tp, bs)
	}
	return logs
}

// decodeLog reads a partition's batches, in offset order, as Kafka's
// read_committed consumer would decide each record: a transactional
// record is decided by the next control batch of its producer id
// (committed or aborted), whatever the epochs.
func (tw *txnWorld) decodeLog(tp tpKey, batches [][]byte) *partLog {
	l := &partLog{tp: tp}
	pending := map[int64][]int{} // producer id -> its undecided records
	for _, b := range batches {
		h, err := batch.ReadHeader(b)
		if err != nil {
			continue // the state checker reports undecodable batches
		}
		recs, err := batch.Records(b)
		if err != nil {
			continue
		}
		if h.Control() {
			if h.ProducerID < 0 {
				continue
			}
			fate := fateCommitted
			if isAbortMarker(recs) {
				fate = fateAborted
			}
			for _, i := range pending[h.ProducerID] {
				l.recs[i].fate, l.recs[i].marker = fate, h.BaseOffset
			}
			delete(pending, h.ProducerID)
			continue
		}
		for _, r := range recs {
			lr := logRec{off: r.Offset, v: string(r.Value), txn: -1, fate: fatePlain, marker: -1}
			if ref, ok := tw.values[lr.v]; ok && ref.tp == tp {
				lr.txn = ref.txn
			}
			if h.Transactional() && h.ProducerID >= 0 {
				lr.fate = fateUndecided
				pending[h.ProducerID] = append(pending[h.ProducerID], len(l.recs))
			}
			l.recs = append(l.recs, lr)
		}
	}
	return l
}

// --- the dependency graph ---

type depKind uint8

const (
	depWW depKind = iota
	depWR
)

var depKindNames = [...]string{depWW: "ww", depWR: "wr"}

// depEdge is an edge of the dependency graph, with why it exists.
type depEdge struct {
	from, to int
	kind     depKind
	why      string
}

// depGraph is the dependency graph over the committed transactions: one
// edge per ordered pair and kind (the first reason found).
type depGraph struct {
	tw    *txnWorld
	out   map[int][]depEdge
	have  map[[3]int]bool
	nodes []int // sorted
	ww    int
	wr    int
}

// isNode reports whether a transaction is in the graph: its EndTxn(commit)
// was acknowledged, or sent and never answered (it may have committed).
func isNode(t *txnRec) bool { return t.state == txnCommitted || t.state == txnCommitting }

func (g *depGraph) add(from, to int, kind depKind, why func() string) {
	if from == to {
		return
	}
	k := [3]int{from, to, int(kind)}
	if g.have[k] {
		return
	}
	g.have[k] = true
	g.out[from] = append(g.out[from], depEdge{from: from, to: to, kind: kind, why: why()})
	if kind == depWW {
		g.ww++
	} else {
		g.wr++
	}
}

// buildDepGraph builds the graph from the partitions' logs (ww) and the
// processors' consumed records (wr).
func (tw *txnWorld) buildDepGraph(logs map[tpKey]*partLog) *depGraph {
	g := &depGraph{tw: tw, out: map[int][]depEdge{}, have: map[[3]int]bool{}}
	for i, t := range tw.txns {
		if isNode(t) {
			g.nodes = append(g.nodes, i)
		}
	}
	for _, tp := range tw.readTPs {
		if l := logs[tp]; l != nil {
			g.addWW(l)
		}
	}
	for _, b := range g.nodes {
		for _, r := range tw.txns[b].reads {
			ref, ok := tw.values[r.v]
			if !ok || !isNode(tw.txns[ref.txn]) {
				continue // G1a, divergence: reported as they were read
			}
			g.add(ref.txn, b, depWR, func() string {
				return fmt.Sprintf("%s consumed its %q at %s offset %d", tw.txns[b].name(), r.v, r.tp, r.off)
			})
		}
	}
	return g
}

// addWW adds one partition's ww edges: A -> B wherever a commit marker
// deciding A's records lies below a record of B. Rather than every such
// pair, it sweeps the log keeping the frontier of transactions committed
// on it that no later committed one follows yet, and links the frontier
// to each transaction's last record: the same reachability, with a few
// edges per transaction.
func (g *depGraph) addWW(l *partLog) {
	type span struct {
		commit    int64 // the lowest commit marker deciding its records, or -1
		last      int64 // its highest record
		lastV     string
		preds     []int // the frontier when its last record came
		havePreds bool
	}
	spans := map[int]*span{}
	var order []int
	for _, r := range l.recs {
		if r.txn < 0 || !isNode(g.tw.txns[r.txn]) {
			continue
		}
		s := spans[r.txn]
		if s == nil {
			s = &span{commit: -1}
			spans[r.txn] = s
			order = append(order, r.txn)
		}
		s.last, s.lastV = r.off, r.v
		if r.fate == fateCommitted && (s.commit < 0 || r.marker < s.commit) {
			s.commit = r.marker
		}
	}
	type event struct {
		off   int64
		close bool
		txn   int
	}
	var evs []event
	for _, t := range order {
		s := spans[t]
		evs = append(evs, event{off: s.last, txn: t})
		if s.commit >= 0 {
			evs = append(evs, event{off: s.commit, close: true, txn: t})
		}
	}
	slices.SortFunc(evs, func(a, b event) int {
		return cmp.Or(cmp.Compare(a.off, b.off), cmp.Compare(a.txn, b.txn))
	})
	var frontier []int
	for _, e := range evs {
		s := spans[e.txn]
		if !e.close {
			s.preds, s.havePreds = slices.Clone(frontier), true
			for _, a := range frontier {
				ca := spans[a].commit
				g.add(a, e.txn, depWW, func() string {
					return fmt.Sprintf("on %s its commit marker at offset %d lies below %s's %q at offset %d",
						l.tp, ca, g.tw.txns[e.txn].name(), s.lastV, s.last)
				})
			}
			continue
		}
		if s.havePreds {
			frontier = slices.DeleteFunc(frontier, func(a int) bool { return slices.Contains(s.preds, a) })
		}
		frontier = append(frontier, e.txn)
	}
}

// tarjan returns the strongly connected components of more than one node
// of the graph restricted to nodes (sorted) and to edges of the kinds
// allowed, each sorted, in order of their first node.
func (g *depGraph) tarjan(nodes []int, allowed func(depKind) bool) [][]int {
	in := map[int]bool{}
	for _, n := range nodes {
		in[n] = true
	}
	index, low := map[int]int{}, map[int]int{}
	onStack := map[int]bool{}
	var stack []int
	var sccs [][]int
	next := 0
	var strong func(v int)
	strong = func(v int) {
		index[v], low[v] = next, next
		next++
		stack = append(stack, v)
		onStack[v] = true
		for _, e := range g.out[v] {
			if !in[e.to] || !allowed(e.kind) {
				continue
			}
			if _, seen := index[e.to]; !seen {
				strong(e.to)
				low[v] = min(low[v], low[e.to])
			} else if onStack[e.to] {
				low[v] = min(low[v], index[e.to])
			}
		}
		if low[v] != index[v] {
			return
		}
		var scc []int
		for {
			n := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			onStack[n] = false
			scc = append(scc, n)
			if n == v {
				break
			}
		}
		if len(scc) > 1 {
			slices.Sort(scc)
			sccs = append(sccs, scc)
		}
	}
	for _, n := range nodes {
		if _, seen := index[n]; !seen {
			strong(n)
		}
	}
	slices.SortFunc(sccs, func(a, b []int) int { return cmp.Compare(a[0], b[0]) })
	return sccs
}

// shortestCycle returns a shortest cycle through the component's first
// node over the edges allowed (breadth first), as its edges in order.
func (g *depGraph) shortestCycle(scc []int, allowed func(depKind) bool) []depEdge {
	in := map[int]bool{}
	for _, n := range scc {
		in[n] = true
	}
	start := scc[0]
	via := map[int]depEdge{}
	queue := []int{start}
	for len(queue) > 0 {
		u := queue[0]
		queue = queue[1:]
		for _, e := range g.out[u] {
			if !in[e.to] || !allowed(e.kind) {
				continue
			}
			if e.to == start {
				path := []depEdge{e}
				for n := u; n != start; n = via[n].from {
					path = append(path, via[n])
				}
				slices.Reverse(path)
				return path
			}
			if _, seen := via[e.to]; !seen {
				via[e.to] = e
				queue = append(queue, e.to)
			}
		}
	}
	return nil
}

// cycles reports, for each strongly connected component, one cycle:
// G0 if the component holds a cycle of ww edges only, else G1c (ww and
// wr edges, at least one wr).
func (g *depGraph) cycles() []Failure {
	all := func(depKind) bool { return true }
	wwOnly := func(k depKind) bool { return k == depWW }
	var fs []Failure
	for _, scc := range g.tarjan(g.nodes, all) {
		if len(fs) == failuresPerCheck {
			break
		}
		kind, cycle := FailG1c, []depEdge(nil)
		if sub := g.tarjan(scc, wwOnly); len(sub) > 0 {
			kind, cycle = FailG0, g.shortestCycle(sub[0], wwOnly)
		} else {
			cycle = g.shortestCycle(scc, all)
		}
		fs = append(fs, Failure{Kind: kind, AtMillis: g.tw.w.now, Detail: g.describe(cycle, len(scc))})
	}
	return fs
}

// describe names a cycle's transactions and why each edge exists.
func (g *depGraph) describe(cycle []depEdge, sccSize int) string {
	var sb strings.Builder
	sb.WriteString("cycle ")
	for _, e := range cycle {
		fmt.Fprintf(&sb, "%s -%s-> ", g.tw.txns[e.from].name(), depKindNames[e.kind])
	}
	fmt.Fprintf(&sb, "%s (%d of the %d transactions of its strongly connected component; each edge proves that the first sent EndTxn(commit) before the second)",
		g.tw.txns[cycle[0].from].name(), len(cycle), sccSize)
	for _, e := range cycle {
		t := g.tw.txns[e.from]
		fmt.Fprintf(&sb, "; %s, %s -%s-> %s: %s", t, t.outcome(), depKindNames[e.kind], g.tw.txns[e.to].name(), e.why)
	}
	return sb.String()
}

// --- int-poll-skip ---

// txnPoll is what one fetch of one partition delivered to a reader or a
// processor: the offsets, in the order delivered.
type txnPoll struct {
	who  string
	tp   tpKey
	at   int64
	offs []int64
}

// recordPoll keeps a fetch's delivered offsets for the int-poll-skip
// check (a fetch that delivered fewer than two records cannot skip one).
func (tw *txnWorld) recordPoll(who string, tp tpKey, offs []int64) {
	if len(offs) >= 2 {
		tw.polls = append(tw.polls, txnPoll{who: who, tp: tp, at: tw.w.now, offs: offs})
	}
}

// checkIntPollSkips holds every fetch to the log: between two records
// one fetch of a partition delivered, every record the log commits (its
// producer's next marker commits), or that is not transactional, must
// have been delivered too. Aborted records are skipped by read_committed
// as they should be, control batches are no records, and a record no
// marker decides cannot lie below a delivered one (the last stable
// offset stops before it).
func (tw *txnWorld) checkIntPollSkips(logs map[tpKey]*partLog) []Failure {
	var fs []Failure
	for _, p := range tw.polls {
		if len(fs) == failuresPerCheck {
			break
		}
		l := logs[p.tp]
		if l == nil || !slices.IsSorted(p.offs) {
			continue // nonmonotonic-poll reports it
		}
		first, last := p.offs[0], p.offs[len(p.offs)-1]
		i, _ := slices.BinarySearchFunc(l.recs, first, func(r logRec, o int64) int { return cmp.Compare(r.off, o) })
		j := 0
		for ; i < len(l.recs) && l.recs[i].off < last; i++ {
			r := l.recs[i]
			for j < len(p.offs) && p.offs[j] < r.off {
				j++
			}
			if j < len(p.offs) && p.offs[j] == r.off || r.fate != fateCommitted && r.fate != fatePlain {
				continue
			}
			before := p.offs[max(j-1, 0)]
			what := "not transactional"
			if r.fate == fateCommitted {
				what = fmt.Sprintf("committed by its producer's marker at offset %d", r.marker)
			}
			if r.txn >= 0 {
				t := tw.txns[r.txn]
				what = fmt.Sprintf("of transaction %s (%s), %s", t, t.outcome(), what)
			}
			fs = append(fs, Failure{Kind: linearizability.AnomalyIntPollSkip, AtMillis: p.at,
				Detail: fmt.Sprintf("%s %s: one fetch delivered offsets %d and %d (%d records from %d to %d) but not offset %d between them: %q %s",
					p.who, p.tp, before, p.offs[j], len(p.offs), first, last, r.off, r.v, what)})
			break
		}
	}
	return fs
}

// runElleChecks runs the cycle and int-poll-skip checks at the end of the
// transactional phase.
func (tw *txnWorld) runElleChecks() []Failure {
	logs := tw.partLogs()
	g := tw.buildDepGraph(logs)
	fs := g.cycles()
	fs = append(fs, tw.checkIntPollSkips(logs)...)
	tw.w.tracef("txn-graph transactions %d ww %d wr %d polls %d", len(g.nodes), g.ww, g.wr, len(tw.polls))
	return fs
}
