package sim

import (
	cryptorand "crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gregor-streaming/gregor/linearizability"
)

// Phase bounds.
const (
	setupMillisMax       = 30_000           // topics created and led, before any fault
	convergeCheckMillis  = 100              // how often the liveness phase checks convergence
	checkTimeoutDefault  = 10 * time.Second // per partition
	modeCount            = 3
	commitSeedCount      = 5
	finalReadMillisExtra = 10_000
	gcPercent            = 400
)

// Failure is one violation a run found.
type Failure struct {
	// Kind is a checker's name (FailDivergence, FailLiveness, ...) or a
	// linearizability anomaly name (lost-write, duplicate, ...).
	Kind     string
	Detail   string
	AtMillis int64 // simulated time, or -1 for the final check
}

func (f Failure) String() string {
	if f.AtMillis < 0 {
		return fmt.Sprintf("%s: %s", f.Kind, f.Detail)
	}
	return fmt.Sprintf("%s at %dms: %s", f.Kind, f.AtMillis, f.Detail)
}

// Result is what one run found.
type Result struct {
	Options  Options
	Failures []Failure
	// VisualizationPath is porcupine's HTML file for a linearizability
	// failure, or "".
	VisualizationPath string
	// Trace is the hex SHA-256 of the run's whole event trace.
	Trace     string
	SimMillis int64
	Events    int
	Ops       int // operations in the linearizability history
	ChurnOps  int // the churn client's requests (not in the history)
	GroupOps  int // operations in the group offsets history (CheckOffsets)
	// CheckTimedOut is true when porcupine ran out of time on some mode's
	// history (which then counts as linearizable).
	CheckTimedOut bool
	// CheckReal is the wall time the final linearizability checks took
	// (the only field besides the caller's timing that varies between runs
	// of one seed).
	CheckReal time.Duration
}

// OK reports whether every check held.
func (r *Result) OK() bool { return len(r.Failures) == 0 }

// Has reports whether a failure of the given kind was found.
func (r *Result) Has(kind string) bool {
	return slices.ContainsFunc(r.Failures, func(f Failure) bool { return f.Kind == kind })
}

// Kinds lists the distinct failure kinds, sorted.
func (r *Result) Kinds() []string {
	var ks []string
	for _, f := range r.Failures {
		if !slices.Contains(ks, f.Kind) {
			ks = append(ks, f.Kind)
		}
	}
	slices.Sort(ks)
	return ks
}

// ReplayCommand is the one command that replays this run.
func (o Options) ReplayCommand() string {
	s := fmt.Sprintf("go run ./cmd/gregor sim --seed %d --mode %s --brokers %d --time %s",
		o.Seed, o.Mode, o.Brokers, time.Duration(o.SafetyMillis)*time.Millisecond)
	if o.Unsafe != "" {
		s += " --unsafe " + o.Unsafe
	}
	if o.WALRot {
		s += " --wal-rot"
	}
	if o.DiskErrors {
		s += " --disk-errors"
	}
	if o.Txn != txnByDefault {
		s += fmt.Sprintf(" --txn=%t", o.Txn)
	}
	if o.TxnPingPong != NewOptions(o.Seed).TxnPingPong {
		s += fmt.Sprintf(" --txn-pingpong %d", o.TxnPingPong)
	}
	if o.Lifecycle != lifecycleByDefault {
		s += fmt.Sprintf(" --lifecycle=%t", o.Lifecycle)
	}
	if o.AsyncWrites != NewOptions(o.Seed).AsyncWrites {
		s += fmt.Sprintf(" --async-writes=%t", o.AsyncWrites)
	}
	return s
}

// RunConfig holds what a run writes, none of which changes its course.
type RunConfig struct {
	// Trace, when set, receives the readable event trace.
	Trace io.Writer
	// VisualizeDir receives porcupine's HTML on a linearizability failure.
	VisualizeDir string
	// CheckTimeout bounds porcupine per mode (default 20s).
	CheckTimeout time.Duration
}

// runMu serialises runs: each one owns crypto/rand.Reader while it runs.
var runMu sync.Mutex

// Run runs one simulation: setup, a safety phase with faults, a liveness
// phase with every fault healed, the final read and the checks.
func Run(opts Options, cfg RunConfig) Result {
	res := Result{Options: opts}
	w, err := newWorld(opts, cfg.Trace)
	if err != nil {
		res.Failures = append(res.Failures, Failure{Kind: "options", Detail: err.Error(), AtMillis: -1})
		return res
	}
	runMu.Lock()
	saved := cryptorand.Reader
	cryptorand.Reader = w
	// A run allocates a great deal of short-lived garbage and keeps a
	// small heap: collecting less often saves a fifth of its time. The
	// setting is the process's, restored when the run ends.
	gc := debug.SetGCPercent(gcPercent)
	defer func() {
		debug.SetGCPercent(gc)
		cryptorand.Reader = saved
		runMu.Unlock()
	}()

	w.run()
	res.Failures = w.failures
	if !w.stopped {
		start := time.Now()
		var fs []Failure
		fs, res.VisualizationPath, res.CheckTimedOut = w.checkHistories(cfg)
		res.Failures = append(res.Failures, fs...)
		res.CheckReal = time.Since(start)
	}
	w.tracef("end failures %d", len(res.Failures))
	res.Trace = hex.EncodeToString(w.trace.Sum(nil))
	res.SimMillis, res.Events, res.Ops, res.ChurnOps = w.now, w.events, len(w.ops), w.churnOps
	res.GroupOps = len(w.groups.ops)
	return res
}

func (w *World) allTPs() []tpKey {
	var tps []tpKey
	for _, t := range w.topics {
		for p := range w.opts.Partitions {
			tps = append(tps, tpKey{t, int32(p)})
		}
	}
	return tps
}

// record appends an op to the history and returns its index.
func (w *World) record(op linearizability.Op) int {
	op.Call, op.Return = w.nowNanos(), linearizability.ReturnUnknown
	w.ops = append(w.ops, op)
	return len(w.ops) - 1
}

// modeOf is the delivery mode of a partition's workload.
func (w *World) modeOf(tp tpKey) linearizability.Mode {
	m, _ := linearizability.ParseMode(w.tpModes[tp])
	return m
}

func (w *World) run() {
	w.start()
	admin := newClient(w, 0, roleAdmin, 0, nil)
	w.clients = append(w.clients, admin)
	admin.kick()
	w.runUntil(w.now+setupMillisMax, func() bool { return admin.done })
	if w.stopped {
		return
	}
	if !admin.done {
		w.fail(FailLiveness, "setup: the topics did not get a leader for every partition within %dms", setupMillisMax)
		return
	}
	if w.txn != nil && !w.setupTxn() {
		return
	}
	if w.life != nil && !w.setupLifecycle() {
		return
	}

	// Delivery modes per partition, then the workload clients.
	tps := w.allTPs()
	rot := w.rng.IntN(modeCount)
	for i, tp := range tps {
		if w.opts.Mode == ModeAll {
			w.tpModes[tp] = linearizability.Mode((i + rot) % modeCount).String()
		} else {
			w.tpModes[tp] = w.opts.Mode
		}
	}
	producers := w.opts.Producers
	if w.opts.Mode == ModeAll {
		producers = max(producers, modeCount)
	}
	for j := range producers {
		mode, _ := linearizability.ParseMode(w.opts.Mode)
		if w.opts.Mode == ModeAll {
			mode = linearizability.Mode(j % modeCount)
		}
		var mine []tpKey
		for _, tp := range tps {
			if w.modeOf(tp) == mode {
				mine = append(mine, tp)
			}
		}
		c := newClient(w, len(w.clients), roleProducer, mode, mine)
		w.clients = append(w.clients, c)
		w.tracef("client %d producer %s on %d partitions", c.idx, mode, len(mine))
	}
	for range w.opts.Consumers {
		c := newClient(w, len(w.clients), roleConsumer, 0, tps)
		w.clients = append(w.clients, c)
		w.tracef("client %d consumer", c.idx)
	}
	if w.opts.ChurnEveryMillis > 0 {
		c := newClient(w, len(w.clients), roleChurn, 0, nil)
		w.clients = append(w.clients, c)
		w.tracef("client %d churn", c.idx)
	}
	if w.opts.Groups > 0 {
		for _, g := range w.groups.names {
			for range w.opts.GroupMembers {
				c := newClient(w, len(w.clients), roleMember, 0, nil)
				c.mem = newMember(c, g)
				w.clients = append(w.clients, c)
				w.tracef("client %d member of %s", c.idx, g)
			}
		}
		c := newClient(w, len(w.clients), roleOffsets, 0, nil)
		c.rdr = newOffsetsReader()
		w.groups.reader = c
		w.clients = append(w.clients, c)
		w.tracef("client %d offsets reader", c.idx)
		c = newClient(w, len(w.clients), roleOffsets, 0, nil)
		c.rdr = newOffsetsReader()
		c.rdr.monitor = true
		w.clients = append(w.clients, c)
		w.tracef("client %d lag monitor", c.idx)
		c = newClient(w, len(w.clients), roleStandalone, 0, nil)
		c.std = newStandalone(w)
		w.clients = append(w.clients, c)
		w.tracef("client %d standalone committer of %s", c.idx, strings.Join(c.std.groups, ","))
	}
	if w.txn != nil {
		w.addTxnClients()
	}
	if w.life != nil {
		w.addLifeClients()
	}
	for _, c := range w.clients[1:] {
		c.kick()
	}

	// Safety phase.
	w.tracef("phase safety")
	w.startFaults()
	w.runUntil(w.now+w.opts.SafetyMillis, nil)
	if w.stopped {
		return
	}

	// Liveness phase: heal everything; clients finish what they started.
	w.tracef("phase liveness")
	w.stopFaults()
	for _, c := range w.clients {
		c.stopping = true
	}
	deadline := w.now + w.opts.LivenessMillis
	nextCheck := w.now
	converged := func() bool {
		if w.now < nextCheck {
			return false
		}
		nextCheck = w.now + convergeCheckMillis
		for _, c := range w.clients {
			if !c.idle() {
				return false
			}
		}
		return w.converged() == ""
	}
	w.runUntil(deadline, converged)
	if w.stopped {
		return
	}
	if why := w.converged(); why != "" {
		w.fail(FailLiveness, "the healed cluster did not converge within %dms: %s", w.opts.LivenessMillis, why)
		return
	}
	for _, c := range w.clients {
		if !c.idle() {
			w.fail(FailLiveness, "client %d (%s) still busy %dms after healing (waiting %d)", c.idx, roleNames[c.role], w.opts.LivenessMillis, c.wait)
			return
		}
	}

	// The final read, from the leaders, through the same network.
	w.tracef("phase final-read")
	final := newClient(w, len(w.clients), roleFinal, 0, tps)
	w.clients = append(w.clients, final)
	final.kick()
	w.runUntil(w.now+finalReadMillisExtra, func() bool { return final.done })
	if w.stopped {
		return
	}
	if !final.done {
		w.fail(FailLiveness, "the final read did not finish within %dms", finalReadMillisExtra)
		return
	}
	w.final = final.final
	for _, tp := range tps {
		if got, want := w.final[tp], w.check.log(tp).values; !slices.Equal(got, want) {
			w.fail(FailDivergence, "%s: the final read (%d records) differs from the canonical log (%d records)", tp, len(got), len(want))
			return
		}
	}
	if w.life != nil {
		w.runLifePhase()
		if w.stopped {
			return
		}
	}
	if w.txn != nil {
		w.runTxnPhase()
		if w.stopped {
			return
		}
	}
	if w.opts.Groups > 0 {
		w.runGroupPhase()
	}
}

// converged returns "" when every partition has one leader and every
// replica holds the same committed log, and every broker knows the same
// topics, or what is still missing. A dead broker (one that refused its
// rotten WAL) is left out: its replicas are not expected.
func (w *World) converged() string {
	type view struct {
		hws      []int64
		leaders  int
		replicas []int32
	}
	// A request held in the network (DelayRate) may still write; the
	// final read must come after it.
	// The group workload's requests write nothing the final read reads.
	for _, e := range w.queue {
		if e.kind == evRequest && !w.clients[e.client].background() {
			return fmt.Sprintf("client request tok %d is still in the network", e.token)
		}
	}
	for _, n := range w.nodes {
		for _, e := range n.inbox {
			if e.kind == evRequest && !w.clients[e.client].background() {
				return fmt.Sprintf("client request tok %d waits for broker %d", e.token, n.id)
			}
		}
	}
	views := map[tpKey]*view{}
	var topics []string
	first := true
	for _, n := range w.nodes {
		if n.dead {
			continue
		}
		if n.down {
			return fmt.Sprintf("broker %d is down", n.id)
		}
		if ts := n.b.Topics(); first {
			topics, first = ts, false
		} else if !slices.Equal(ts, topics) {
			return fmt.Sprintf("brokers know different topics: %v and %v", topics, ts)
		}
		for _, rs := range n.b.Replicas() {
			k := tpKey{rs.Topic, rs.Partition}
			v := views[k]
			if v == nil {
				v = &view{replicas: rs.Replicas}
				views[k] = v
			}
			v.hws = append(v.hws, rs.HighWatermark)
			if rs.Leader {
				v.leaders++
			}
		}
	}
	for _, tp := range w.allTPs() {
		v := views[tp]
		end := w.check.log(tp).end
		if v == nil {
			return fmt.Sprintf("%s: no replica is running", tp)
		}
		want := 0
		for _, id := range v.replicas {
			if !w.node(id).dead {
				want++
			}
		}
		switch {
		case len(v.hws) < want:
			return fmt.Sprintf("%s: not every replica is running", tp)
		case v.leaders != 1:
			return fmt.Sprintf("%s: %d leaders", tp, v.leaders)
		}
		for _, hw := range v.hws {
			if hw != end {
				return fmt.Sprintf("%s: replica high watermarks %v, canonical end %d", tp, v.hws, end)
			}
		}
	}
	return ""
}

// checkHistories runs linearizability.Check on each partition's history
// under its delivery mode. One Check per partition keeps porcupine on
// one goroutine at a time, and a slow partition from hiding the others.
func (w *World) checkHistories(cfg RunConfig) ([]Failure, string, bool) {
	timeout := cfg.CheckTimeout
	if timeout == 0 {
		timeout = checkTimeoutDefault
	}
	byTP := map[tpKey][]linearizability.Op{}
	var end int64
	for _, op := range w.ops {
		k := tpKey{op.TP.Topic, op.TP.Partition}
		byTP[k] = append(byTP[k], op)
		end = max(end, op.Call, op.Return)
	}
	var failures []Failure
	var vis string
	timedOut := false
	for _, tp := range w.allTPs() {
		m := w.modeOf(tp)
		resolveUnknown(byTP[tp], w.final[tp], end+1)
		h := linearizability.History{Mode: m, Ops: byTP[tp],
			Final: map[linearizability.TP][]linearizability.Record{tp.tp(): w.final[tp]}}
		dir := ""
		if cfg.VisualizeDir != "" {
			dir = fmt.Sprintf("%s/%s-%d", cfg.VisualizeDir, tp.topic, tp.part)
		}
		r := linearizability.Check(h, linearizability.Options{Timeout: timeout, VisualizeDir: dir})
		timedOut = timedOut || r.TimedOut
		if r.VisualizationPath != "" && vis == "" {
			vis = r.VisualizationPath
		}
		for _, a := range r.Anomalies {
			failures = append(failures, Failure{Kind: a.Name, Detail: fmt.Sprintf("%s %s: %s", m, a.TP, a.Detail), AtMillis: -1})
		}
	}
	if w.opts.Groups > 0 {
		dir := ""
		if cfg.VisualizeDir != "" {
			dir = cfg.VisualizeDir + "/offsets"
		}
		fs, v, to := w.groups.check(cfg, dir)
		failures = append(failures, fs...)
		timedOut = timedOut || to
		if vis == "" {
			vis = v
		}
	}
	return failures, vis, timedOut
}

// Summary is a one-line description of a result.
func (r *Result) Summary() string {
	if r.OK() {
		return fmt.Sprintf("seed %d ok (%d ops, %d events, %dms simulated)", r.Options.Seed, r.Ops, r.Events, r.SimMillis)
	}
	return fmt.Sprintf("seed %d FAIL %s: %s", r.Options.Seed, strings.Join(r.Kinds(), ","), r.Failures[0].Detail)
}

// CommitSeeds derives commitSeedCount seeds from a commit id, so every
// commit also runs seeds nobody picked.
func CommitSeeds(commit string) []uint64 {
	h := sha256.Sum256([]byte(commit))
	var out []uint64
	for i := range commitSeedCount {
		if i > 0 && i%4 == 0 {
			h = sha256.Sum256(h[:])
		}
		out = append(out, binary.LittleEndian.Uint64(h[(i%4)*8:]))
	}
	return out
}
