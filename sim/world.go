package sim

import (
	"bytes"
	"cmp"
	"container/heap"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
	"math/rand/v2"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"github.com/gregor-streaming/gregor/engine"
	"github.com/gregor-streaming/gregor/linearizability"
	"github.com/gregor-streaming/gregor/raftlog"
	"github.com/gregor-streaming/gregor/raftlog/memwal"
	"github.com/gregor-streaming/gregor/raftlog/vfs"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// eventKind is what an event does when its time comes.
type eventKind uint8

const (
	evTick          eventKind = iota + 1 // a broker ticks
	evDeliver                            // a peer payload reaches a broker
	evRequest                            // a client request reaches a broker
	evResponse                           // a broker's response reaches a client
	evClient                             // a client's timer fires (timeout, backoff)
	evCrash                              // the crash injector picks a victim
	evRestart                            // a crashed broker comes back
	evNetFault                           // the network injector cuts links
	evNetHeal                            // ... and heals them
	evFlush                              // a broker syncs its WAL in the background
	evCheckpoint                         // a broker checkpoints: syncs its state, compacts its raft logs
	evWake                               // a busy broker's fsync ends: it takes the inputs that waited
	evMajorityCrash                      // a majority or every broker crashes at once
	evClientCut                          // a client loses its links to some brokers for a while
	evDiskFault                          // a broker's disk starts failing writes or syncs
	evDiskHeal                           // ... and works again
	evCrashBroker                        // one broker crashes (txn.go: a coordinator just after an EndTxn)
	evWriteDone                          // a broker's WAL write off the loop is synced (Options.AsyncWrites)
	evHandOff                            // a broker stopping cleanly hands its leadership over (gracefulStop)
)

var eventNames = [...]string{evTick: "tick", evDeliver: "deliver", evRequest: "request", evResponse: "response",
	evClient: "client", evCrash: "crash", evRestart: "restart", evNetFault: "net-fault", evNetHeal: "net-heal", evFlush: "flush",
	evCheckpoint: "checkpoint", evWake: "wake", evMajorityCrash: "majority-crash", evClientCut: "client-cut",
	evDiskFault: "disk-fault", evDiskHeal: "disk-heal", evCrashBroker: "crash-broker", evWriteDone: "write-done", evHandOff: "hand-off"}

// event is one entry of the world's queue, ordered by (at, seq).
type event struct {
	at      int64 // virtual milliseconds
	seq     uint64
	kind    eventKind
	broker  int32 // target broker
	from    int32 // sending broker (deliver)
	gen     uint64
	client  int
	token   uint64
	payload []byte
	req     kmsg.Request
	resp    kmsg.Response
	// downMillis: how long an evCrashBroker's broker stays down (0: the
	// usual draw).
	downMillis int64
}

type eventQueue []*event

func (q eventQueue) Len() int { return len(q) }
func (q eventQueue) Less(i, j int) bool {
	if q[i].at != q[j].at {
		return q[i].at < q[j].at
	}
	return q[i].seq < q[j].seq
}
func (q eventQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *eventQueue) Push(x any)   { *q = append(*q, x.(*event)) }
func (q *eventQueue) Pop() any {
	old := *q
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*q = old[:len(old)-1]
	return e
}

// node is one broker slot: its disks survive crashes, its Broker does not.
type node struct {
	id   int32
	b    *engine.Broker // nil while down
	wal  *memwal.WAL
	fs   *vfs.Mem
	gen  uint64 // incarnation, bumped at every crash and restart
	down bool
	// armed: a crash point is set in its WAL (memwal.CrashAtSync); the
	// broker crashes inside the Ready cycle that reaches it. It counts as
	// down for the majority rule.
	armed bool
	clock *brokerClock

	// The broker is in an fsync until busyUntil: inputs that arrive
	// meanwhile wait in inbox, in order, and an evWake hands them over
	// together, followed by one Process (the runtime's group commit).
	busyUntil int64
	inbox     []*event
	waking    bool
	syncMark  int64 // WAL syncs and checkpoints plus file syncs at the last drain
	// checked is fs.Mutations() when the state checker last looked: a
	// replica's log and high watermark change only with its files, so a
	// broker whose files did not change is not looked at again.
	checked int64

	// writeErr is the error of the write off the loop in flight
	// (Options.AsyncWrites), reported with its evWriteDone.
	writeErr error

	// walRotten: a bit of its synced WAL was flipped while it was down;
	// dead: it then refused to start, and stays down for good.
	walRotten, dead bool
	// diskGen identifies the disk fault in force (0: none).
	diskGen uint64
}

// World is a deterministic cluster: brokers running the real engine on
// simulated disks, a simulated network, a virtual clock and workload
// clients, all driven by one event queue and one seeded random source.
type World struct {
	opts   Options
	unsafe engine.Unsafe
	rng    *rand.Rand
	now    int64
	seq    uint64
	stamp  int64 // last timestamp handed to the history, in ns
	queue  eventQueue
	nodes  []*node // index id-1
	cut    [brokersMax + 1][brokersMax + 1]bool
	netGen uint64

	faults bool // the safety phase injects faults
	// heldAnswers: peers' state answers to a crashed broker, by (from,
	// to), held until it asks that peer again (stateAnswerCrash).
	heldAnswers map[[2]int32][][]byte
	clients     []*client
	pending     map[uint64]int // request token -> client index
	token       uint64
	check       *checker
	failures    []Failure
	stopped     bool
	events      int
	trace       hash.Hash
	traceOut    io.Writer // optional readable copy of the trace
	logOut      io.Writer // the brokers' log lines, with the trace
	traceBuf    []byte
	respBuf     []byte
	topics      []string
	ops         []linearizability.Op
	final       map[tpKey][]linearizability.Record
	tpModes     map[tpKey]string
	cryptoRand  *rand.ChaCha8

	// rotten lists the replicas whose files had a bit flipped and are not
	// known to be whole again, in the order they rotted.
	rotten   []rotRecord
	churned  map[string]bool // topics the churn client created
	diskGen  uint64
	churnOps int

	groups *groupWorld // the group workload's state and checks (group.go)
	txn    *txnWorld   // the transactional workload (txn.go), or nil
	life   *lifeWorld  // the lifecycle workload (lifecycle.go), or nil
}

// rotRecord is one replica with injected bit rot in its files.
type rotRecord struct {
	rk     replicaKey
	path   string
	target int64 // the high watermark it had at the crash
}

// brokerClock is one broker's engine.Clock: the world's virtual time, in
// milliseconds since the Unix epoch of the simulation (which starts at a
// fixed date), off by a fixed offset and running at a rate off by drift.
// Ticks do not read it: raft runs on the world's ticks.
type brokerClock struct {
	w      *World
	offset int64
	drift  float64
}

// epochMillis is the wall time the simulation pretends to start at.
const epochMillis = 1_700_000_000_000

func (c *brokerClock) NowMillis() int64 {
	return epochMillis + c.offset + c.w.now + int64(float64(c.w.now)*c.drift)
}

func newWorld(opts Options, traceOut io.Writer) (*World, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	unsafe, _ := ParseUnsafe(opts.Unsafe)
	w := &World{
		opts:        opts,
		unsafe:      unsafe,
		rng:         rand.New(rand.NewPCG(opts.Seed, 0x776f726c64)), // "world"
		pending:     map[uint64]int{},
		heldAnswers: map[[2]int32][][]byte{},
		trace:       sha256.New(),
		traceOut:    traceOut,
		logOut:      traceOut,
		tpModes:     map[tpKey]string{},
		churned:     map[string]bool{},
	}
	var seed [32]byte
	binary.LittleEndian.PutUint64(seed[:], opts.Seed)
	copy(seed[8:], "gregor-sim-crypto-rand")
	w.cryptoRand = rand.NewChaCha8(seed)
	w.check = newChecker(w)
	w.groups = newGroupWorld(w)
	if opts.txnOn() && (opts.TxnWriters > 0 || opts.TxnReaders > 0) {
		w.txn = newTxnWorld(w)
	}
	if opts.lifecycleOn() {
		w.life = newLifeWorld(w)
	}
	for i := 1; i <= opts.Brokers; i++ {
		n := &node{id: int32(i), wal: memwal.New(), fs: vfs.NewMem(), clock: &brokerClock{w: w}}
		if opts.ClockSkewMillis > 0 {
			n.clock.offset = w.rng.Int64N(2*opts.ClockSkewMillis+1) - opts.ClockSkewMillis
		}
		if opts.ClockDrift > 0 {
			n.clock.drift = (2*w.rng.Float64() - 1) * opts.ClockDrift
		}
		w.nodes = append(w.nodes, n)
	}
	for i := range opts.Topics {
		w.topics = append(w.topics, "t"+strconv.Itoa(i))
	}
	return w, nil
}

// Read makes the world the source of crypto/rand for the length of a run
// (etcd/raft's election jitter).
func (w *World) Read(p []byte) (int, error) { return w.cryptoRand.Read(p) }

func (w *World) config(id int32) engine.Config {
	var cl []engine.BrokerInfo
	for _, n := range w.nodes {
		cl = append(cl, engine.BrokerInfo{ID: n.id, Host: "sim", Port: 9090 + n.id})
	}
	cfg := engine.Config{
		ID: id, Cluster: cl, TickMillis: tickMillis,
		CheckpointBytes: w.opts.CheckpointBytes, SegmentBytes: w.opts.SegmentBytes,
		Unsafe: w.unsafe,
	}
	if w.opts.Groups > 0 {
		cfg.OffsetsTopicPartitions = w.opts.OffsetsPartitions
		cfg.GroupMinSessionTimeoutMs = groupMinSessionMillis
		cfg.GroupInitialRebalanceDelayMs = w.opts.InitialRebalanceDelayMillis
		// KIP-848 groups (group848.go): the session their members ask
		// classic coordinators for, and a heartbeat a third of it, as the
		// classic members send theirs.
		cfg.GroupConsumerSessionTimeoutMs = w.opts.SessionTimeoutMillis
		cfg.GroupConsumerHeartbeatIntervalMs = w.opts.SessionTimeoutMillis / 3
	}
	if w.txn != nil {
		cfg.TransactionStatePartitions = txnStatePartitions
	}
	if w.life != nil {
		w.life.tune(&cfg)
	}
	return cfg
}

func (w *World) node(id int32) *node { return w.nodes[id-1] }

// schedule queues an event after delay milliseconds.
func (w *World) schedule(delay int64, e *event) {
	w.seq++
	e.at, e.seq = w.now+delay, w.seq
	heap.Push(&w.queue, e)
}

// fail records a violation and stops the run.
func (w *World) fail(kind, format string, args ...any) {
	w.failures = append(w.failures, Failure{Kind: kind, Detail: fmt.Sprintf(format, args...), AtMillis: w.now})
	w.stopped = true
}

// tracef adds one line to the trace hash (and the readable trace, if any).
func (w *World) tracef(format string, args ...any) {
	w.traceBuf = fmt.Appendf(w.traceBuf[:0], "%d ", w.now)
	w.traceBuf = fmt.Appendf(w.traceBuf, format, args...)
	w.traceBuf = append(w.traceBuf, '\n')
	w.trace.Write(w.traceBuf)
	if w.traceOut != nil {
		w.traceOut.Write(w.traceBuf)
	}
}

// traceBytes adds raw bytes (message payloads) to the hash only.
func (w *World) traceBytes(b []byte) {
	var n [8]byte
	binary.LittleEndian.PutUint64(n[:], uint64(len(b)))
	w.trace.Write(n[:])
	w.trace.Write(b)
}

// nowNanos is a history timestamp: strictly increasing, in simulated ns.
func (w *World) nowNanos() int64 {
	t := w.now * 1_000_000
	if t <= w.stamp {
		t = w.stamp + 1
	}
	w.stamp = t
	return t
}

// latency draws one message's delay.
func (w *World) latency() int64 {
	d := w.opts.LatencyMinMillis + int64(w.rng.ExpFloat64()*float64(w.opts.LatencyMeanMillis))
	if w.opts.LatencySlowRate > 0 && w.rng.Float64() < w.opts.LatencySlowRate {
		d *= 10
	}
	return min(d, 10_000)
}

// held draws the extra delay of a message held up in the network (0 for
// most): up to DelayMaxMillis, far beyond the slow rate's 10x.
func (w *World) held() int64 {
	if w.faults && w.opts.DelayRate > 0 && w.rng.Float64() < w.opts.DelayRate {
		return 1 + w.rng.Int64N(max(w.opts.DelayMaxMillis, 1))
	}
	return 0
}

func (w *World) lost() bool {
	return w.faults && w.opts.LossRate > 0 && w.rng.Float64() < w.opts.LossRate
}

// expDelay draws an exponential delay with the given mean, at least 1 ms.
func (w *World) expDelay(mean int64) int64 {
	return max(1, int64(w.rng.ExpFloat64()*float64(mean)))
}

// fsyncMillis draws how long a Process that synced keeps its broker busy.
// Stalls (the slow tail) are faults: only in the safety phase.
func (w *World) fsyncMillis() int64 {
	d := w.opts.FsyncMinMillis
	if w.opts.FsyncMeanMillis > 0 {
		d += int64(w.rng.ExpFloat64() * float64(w.opts.FsyncMeanMillis))
	}
	if w.faults && w.opts.FsyncSlowRate > 0 && w.rng.Float64() < w.opts.FsyncSlowRate {
		d += w.opts.FsyncSlowMillis/2 + w.rng.Int64N(w.opts.FsyncSlowMillis+1)
	}
	return min(d, 5_000)
}

// syncCount is how many syncs n's disks have done: WAL syncs and
// checkpoints, file and directory syncs.
func (n *node) syncCount() int64 {
	s := n.wal.Stats()
	return s.Syncs + s.Checkpoints + n.fs.Syncs()
}

// start boots every broker and schedules their ticks.
func (w *World) start() {
	for _, n := range w.nodes {
		w.boot(n)
	}
}

func (w *World) boot(n *node) {
	// Early sends (a leader's appends before its WAL sync) travel the
	// same simulated network as the rest, so the real runtime's path is
	// the one simulated.
	env := engine.Env{FS: n.fs, WAL: n.wal, Clock: n.clock, AsyncWrites: w.opts.AsyncWrites || w.unsafe.FinishBeforeWrite}
	if w.logOut != nil {
		id := n.id
		env.Logf = func(format string, args ...any) {
			fmt.Fprintf(w.logOut, "%8dms broker %d: %s\n", w.now, id, fmt.Sprintf(format, args...))
		}
	}
	env.SendEarly = func(outs []raftlog.Outgoing) {
		for _, out := range outs {
			if !w.transmit(n, out, 0) {
				return
			}
		}
	}
	b, err := engine.NewBroker(w.config(n.id), env)
	if err != nil {
		switch {
		case n.walRotten && errors.Is(err, memwal.ErrCorrupt):
			// Detected: the broker refuses its rotten WAL. It cannot
			// rebuild the votes and entries it acknowledged, so it stays
			// down; the cluster carries on without it.
			n.dead = true
			w.tracef("dead %d: %v", n.id, err)
		case n.diskGen != 0 && w.faults && injectedDiskError(err):
			// Its disk is failing: try again after a while, as an
			// operator's restart loop would.
			w.tracef("restart %d failed: %v", n.id, err)
			w.schedule(500, &event{kind: evRestart, broker: n.id, gen: n.gen})
		default:
			w.fail(FailRecovery, "broker %d failed to start: %v", n.id, err)
		}
		return
	}
	if n.walRotten {
		w.fail(FailRecovery, "broker %d started on a WAL with a flipped bit in its synced records", n.id)
		return
	}
	n.b, n.down = b, false
	n.gen++
	w.tracef("boot %d gen %d", n.id, n.gen)
	// Ticks start at a random phase so brokers do not tick in lockstep.
	w.schedule(1+w.rng.Int64N(tickMillis), &event{kind: evTick, broker: n.id, gen: n.gen})
	if w.unsafe.AckBeforeFsync {
		w.schedule(w.expDelay(w.opts.FlushEveryMillis), &event{kind: evFlush, broker: n.id, gen: n.gen})
	}
	if w.opts.CheckpointEveryMillis > 0 {
		w.schedule(w.expDelay(w.opts.CheckpointEveryMillis), &event{kind: evCheckpoint, broker: n.id, gen: n.gen})
	}
	w.drain(n)
}

// injectedDiskError reports whether err is one of the errors the disk
// fault injector makes the disks return.
func injectedDiskError(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EIO)
}

// crash drops a broker: its unsynced WAL records and file data are lost
// or torn, its in-flight requests are never answered. In the safety phase
// the crash may also rot a bit of what it stored.
func (w *World) crash(n *node) {
	w.tracef("crash %d", n.id)
	w.check.beforeCrash(n)
	states := n.b.Replicas()
	_ = n.b.Close()
	n.b, n.down, n.armed = nil, true, false
	n.gen++
	n.inbox, n.waking, n.busyUntil = nil, false, 0
	n.wal.Crash(w.rng)
	n.fs.Crash(w.rng)
	if !w.faults {
		return
	}
	if w.opts.RotRate > 0 && w.rng.Float64() < w.opts.RotRate {
		w.rotFile(n, states)
	}
	if w.opts.WALRot && w.rng.Float64() < w.opts.WALRotRate {
		w.rotWAL(n, states)
	}
}

// redundant reports whether every other replica of a partition that n
// hosted (rs, as n saw it before crashing) is up and at least as far
// along: applied as far, and holding as much. Only then may n's copy rot
// — a replica that is itself lost or behind (it waits for a repair, or
// raft compacted past it) cannot rebuild n's, and a rot there could
// destroy the last whole copy, which no system survives.
func (w *World) redundant(n *node, rs engine.ReplicaState) bool {
	for _, id := range rs.Replicas {
		if id == n.id {
			continue
		}
		o := w.node(id)
		if o.down || o.b == nil {
			return false
		}
		ok := false
		for _, ors := range o.b.Replicas() {
			if ors.Topic == rs.Topic && ors.Partition == rs.Partition {
				ok = ors.Applied >= rs.Applied && ors.HighWatermark >= rs.HighWatermark
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

// rotFile flips one bit of one of n's durable partition files (a segment,
// an index, a checkpoint), choosing among the tracked partitions that
// have no other rotten replica and whose other replicas are whole
// (redundant): a rotten replica can always copy a healthy one.
func (w *World) rotFile(n *node, states []engine.ReplicaState) {
	type cand struct {
		path string
		size int64
		tp   tpKey
	}
	groups := map[string]engine.ReplicaState{}
	for _, rs := range states {
		groups[strconv.FormatUint(rs.Group, 10)] = rs
	}
	var cands []cand
	gdirs, _ := n.fs.List("partitions")
	for _, g := range gdirs {
		rs, ok := groups[g]
		tp := tpKey{rs.Topic, rs.Partition}
		if !ok || w.churned[tp.topic] || w.rotCount(tp)+1 > (replicationFactor-1)/2 || !w.redundant(n, rs) {
			continue
		}
		states, _ := n.fs.List("partitions/" + g)
		for _, st := range states {
			if !strings.HasPrefix(st, "state-") {
				continue
			}
			dir := "partitions/" + g + "/" + st
			files, _ := n.fs.List(dir)
			for _, f := range files {
				b, err := vfs.ReadFile(n.fs, dir+"/"+f)
				if err == nil && len(b) > 0 {
					cands = append(cands, cand{dir + "/" + f, int64(len(b)), tp})
				}
			}
		}
	}
	if len(cands) == 0 {
		return
	}
	c := cands[w.rng.IntN(len(cands))]
	off, bit := w.rng.Int64N(c.size), uint(w.rng.IntN(8))
	if err := n.fs.FlipBit(c.path, off, bit); err != nil {
		w.fail(FailEngineError, "flipping a bit of broker %d's %s: %v", n.id, c.path, err)
		return
	}
	rk := replicaKey{n.id, c.tp}
	w.rotten = append(w.rotten, rotRecord{rk: rk, path: c.path, target: w.check.preCrash[rk]})
	w.tracef("rot %d %s byte %d bit %d", n.id, c.path, off, bit)
}

// rotCount is how many replicas of tp are rotten.
func (w *World) rotCount(tp tpKey) int {
	k := 0
	for _, r := range w.rotten {
		if r.rk.tp == tp {
			k++
		}
	}
	return k
}

// isRotten reports whether a replica has injected rot not yet known gone.
func (w *World) isRotten(rk replicaKey) bool {
	for _, r := range w.rotten {
		if r.rk == rk {
			return true
		}
	}
	return false
}

// rotHealed forgets the rot of rk: the replica holds, verified, at least
// what it had when it rotted.
func (w *World) rotHealed(rk replicaKey, verified int64) {
	for i, r := range w.rotten {
		if r.rk == rk && verified >= r.target {
			w.tracef("rot healed %d %s", rk.broker, rk.tp)
			w.rotten = append(w.rotten[:i], w.rotten[i+1:]...)
			return
		}
	}
}

// rotWAL flips one bit of n's durable WAL frames, if no other broker's WAL
// rotted (a majority of brokers must be able to come back) and every
// partition n hosted is whole elsewhere (n will never come back).
func (w *World) rotWAL(n *node, states []engine.ReplicaState) {
	rotted := 0
	for _, o := range w.nodes {
		if o.walRotten {
			rotted++
		}
	}
	size := n.wal.DurableBytes()
	if rotted+1 > (len(w.nodes)-1)/2 || size == 0 {
		return
	}
	for _, rs := range states {
		if !w.redundant(n, rs) {
			return
		}
	}
	off, bit := w.rng.IntN(size), uint(w.rng.IntN(8))
	if err := n.wal.FlipBit(off, bit); err != nil {
		w.fail(FailEngineError, "flipping a bit of broker %d's WAL: %v", n.id, err)
		return
	}
	n.walRotten = true
	w.tracef("wal-rot %d byte %d of %d bit %d", n.id, off, size, bit)
}

func (w *World) restart(n *node) {
	if n.dead {
		return
	}
	w.tracef("restart %d", n.id)
	w.boot(n)
	if !n.down && n.b != nil {
		w.check.afterRestart(n)
	}
}

// transmit puts one transport payload from n on the simulated network,
// extra milliseconds from now (the rest of an fsync). It reports false
// (after failing the run) if the destination does not exist.
func (w *World) transmit(n *node, out raftlog.Outgoing, extra int64) bool {
	to := int32(out.To)
	if to < 1 || int(to) > len(w.nodes) {
		w.fail(FailEngineError, "broker %d sent to unknown broker %d", n.id, to)
		return false
	}
	if w.cut[n.id][to] || w.lost() {
		return true
	}
	w.schedule(extra+w.latency()+w.held(), &event{kind: evDeliver, broker: to, from: n.id, payload: out.Payload})
	if w.faults && w.opts.DupRate > 0 && w.rng.Float64() < w.opts.DupRate {
		w.schedule(extra+w.latency()+w.held(), &event{kind: evDeliver, broker: to, from: n.id, payload: bytes.Clone(out.Payload)})
	}
	w.markerEcho(n, to, out.Payload, extra)
	w.stateAnswerCrash(n, to, out.Payload)
	w.releaseStateAnswers(n, to, out.Payload)
	return true
}

// drain runs Process on a broker and turns its outbox and responses into
// future events, then runs the checkers on it. If the broker synced since
// the last drain, it stays busy for an fsync's time, and what Process
// queued leaves only then (its early sends left before the sync).
func (w *World) drain(n *node) {
	if n.down || w.stopped {
		return
	}
	err := n.b.Process()
	if w.crashPoint(n, err) {
		return
	}
	if err != nil {
		w.fail(FailEngineError, "broker %d process: %v", n.id, err)
		return
	}
	var extra int64
	if c := n.syncCount(); c != n.syncMark {
		n.syncMark = c
		extra = w.fsyncMillis()
		n.busyUntil = w.now + extra
	}
	for _, out := range n.b.Outbox() {
		if !w.transmit(n, out, extra) {
			return
		}
	}
	for _, r := range n.b.Responses() {
		ci, ok := w.pending[r.Token]
		if !ok {
			continue
		}
		delete(w.pending, r.Token)
		if r.Msg == nil || w.lost() || w.clientCut(ci, n.id) {
			continue
		}
		w.schedule(extra+w.latency()+w.held(), &event{kind: evResponse, broker: n.id, client: ci, token: r.Token, resp: r.Msg})
	}
	if recs := n.b.TakeWrite(); recs != nil {
		// Written now, durable an fsync's time later; meanwhile the broker
		// takes inputs. A crash in between keeps what memwal keeps of an
		// unsynced tail.
		n.writeErr = n.wal.Append(recs)
		w.schedule(extra+w.fsyncMillis(), &event{kind: evWriteDone, broker: n.id, gen: n.gen})
	}
	if m := n.fs.Mutations(); m != n.checked {
		n.checked = m
		w.check.observe(n)
	}
}

// writeDone syncs a broker's write off the loop and reports it to the
// broker. It reports false if the broker crashed or the run stopped.
func (w *World) writeDone(n *node) bool {
	err := n.writeErr
	n.writeErr = nil
	if err == nil {
		err = n.wal.Sync()
	}
	if w.crashPoint(n, err) {
		return false
	}
	if err != nil && !(w.opts.DiskErrors && injectedDiskError(err)) {
		w.fail(FailEngineError, "broker %d write: %v", n.id, err)
		return false
	}
	w.tracef("write-done %d err=%v", n.id, err)
	err = n.b.WriteDone(err)
	if w.crashPoint(n, err) {
		return false
	}
	if err != nil {
		w.fail(FailEngineError, "broker %d write done: %v", n.id, err)
		return false
	}
	return true
}

// input takes one event for a live broker: at once if it is idle, or
// after its fsync if it is busy. A busy broker keeps one pending tick,
// as a ticker channel with a buffer of one does.
func (w *World) input(n *node, e *event) {
	if w.now < n.busyUntil {
		if e.kind == evTick && slices.ContainsFunc(n.inbox, func(x *event) bool { return x.kind == evTick }) {
			return
		}
		n.inbox = append(n.inbox, e)
		if !n.waking {
			n.waking = true
			w.schedule(n.busyUntil-w.now, &event{kind: evWake, broker: n.id, gen: n.gen})
		}
		return
	}
	if w.hand(n, e) {
		w.drain(n)
	}
}

// hand gives one input to a broker without processing. It reports false
// if the broker crashed or the run stopped.
func (w *World) hand(n *node, e *event) bool {
	switch e.kind {
	case evWriteDone:
		return w.writeDone(n)
	case evTick:
		w.tracef("tick %d", n.id)
		n.b.Tick()
	case evHandOff:
		w.handOff(n, e)
	case evFlush:
		w.tracef("flush %d", n.id)
		err := n.b.SyncWAL()
		if w.crashPoint(n, err) {
			return false
		}
		if err != nil && w.opts.DiskErrors && injectedDiskError(err) {
			w.tracef("flush %d failed: %v", n.id, err) // tried again next time
		} else if err != nil {
			w.fail(FailEngineError, "broker %d sync: %v", n.id, err)
			return false
		}
	case evCheckpoint:
		w.tracef("checkpoint %d", n.id)
		err := n.b.Checkpoint()
		if w.crashPoint(n, err) {
			return false
		}
		if err != nil && w.opts.DiskErrors && injectedDiskError(err) {
			// A checkpoint on a failing disk (or a WAL still stalled by
			// one) fails; the next one tries again.
			w.tracef("checkpoint %d failed: %v", n.id, err)
		} else if err != nil {
			w.fail(FailEngineError, "broker %d checkpoint: %v", n.id, err)
			return false
		}
	case evDeliver:
		w.tracef("deliver %d -> %d", e.from, e.broker)
		w.traceBytes(e.payload)
		if err := n.b.Receive(e.payload); err != nil {
			w.fail(FailEngineError, "broker %d receive from %d: %v", n.id, e.from, err)
			return false
		}
	case evRequest:
		w.tracef("handle %d tok %d", n.id, e.token)
		w.pending[e.token] = e.client
		n.b.Handle(e.token, e.req)
		if e.req.Key() == int16(kmsg.EndTxn) {
			w.afterEndTxn(n)
		}
	}
	return true
}

// send carries a client request to a broker over the network.
func (w *World) send(ci int, to int32, req kmsg.Request) uint64 {
	w.token++
	tok := w.token
	w.tracef("send c%d -> %d tok %d key %d", ci, to, tok, req.Key())
	if !w.lost() && !w.clientCut(ci, to) {
		w.schedule(w.latency()+w.held(), &event{kind: evRequest, broker: to, client: ci, token: tok, req: req})
	}
	return tok
}

// clientCut reports whether client ci is cut off from broker b now.
func (w *World) clientCut(ci int, b int32) bool {
	return w.faults && w.clients[ci].cutUntil[b] > w.now
}

// step runs the next event. It returns false when the queue is empty.
func (w *World) step() bool {
	if len(w.queue) == 0 {
		return false
	}
	e := heap.Pop(&w.queue).(*event)
	w.now = e.at
	w.events++
	defer w.recoverPanic(e)
	switch e.kind {
	case evTick, evFlush, evCheckpoint:
		n := w.node(e.broker)
		if n.down || n.gen != e.gen {
			return true
		}
		switch e.kind {
		case evTick:
			w.schedule(tickMillis, &event{kind: evTick, broker: n.id, gen: n.gen})
		case evFlush:
			w.schedule(w.expDelay(w.opts.FlushEveryMillis), &event{kind: evFlush, broker: n.id, gen: n.gen})
		case evCheckpoint:
			w.schedule(w.expDelay(w.opts.CheckpointEveryMillis), &event{kind: evCheckpoint, broker: n.id, gen: n.gen})
		}
		w.input(n, e)
	case evDeliver:
		n := w.node(e.broker)
		if n.down || w.cut[e.from][e.broker] {
			w.tracef("drop %d -> %d", e.from, e.broker)
			return true
		}
		w.input(n, e)
	case evRequest:
		n := w.node(e.broker)
		if n.down {
			w.tracef("request tok %d lost: broker %d down", e.token, e.broker)
			return true
		}
		if w.clientCut(e.client, n.id) {
			w.tracef("request tok %d cut: c%d -x- %d", e.token, e.client, e.broker)
			return true
		}
		w.input(n, e)
	case evWriteDone:
		n := w.node(e.broker)
		if n.down || n.gen != e.gen {
			return true
		}
		w.input(n, e) // after a synchronous sync it may be in
	case evHandOff:
		n := w.node(e.broker)
		if n.down || n.gen != e.gen || n.armed {
			return true
		}
		w.input(n, e)
	case evWake:
		n := w.node(e.broker)
		if n.down || n.gen != e.gen {
			return true
		}
		n.waking = false
		inbox := n.inbox
		n.inbox = nil
		w.tracef("wake %d inputs %d", n.id, len(inbox))
		for _, ie := range inbox {
			if !w.hand(n, ie) {
				return true
			}
		}
		w.drain(n)
	case evResponse:
		if w.clientCut(e.client, e.broker) {
			w.tracef("response c%d tok %d cut", e.client, e.token)
			return true
		}
		w.tracef("response c%d tok %d", e.client, e.token)
		w.respBuf = e.resp.AppendTo(w.respBuf[:0])
		w.traceBytes(w.respBuf)
		if a := w.actor(e.client); a != nil {
			a.onResponse(e.token, e.resp)
		} else {
			w.clients[e.client].onResponse(e.token, e.resp)
		}
	case evClient:
		if a := w.actor(e.client); a != nil {
			a.onTimer(e.gen)
		} else {
			w.clients[e.client].onTimer(e.gen)
		}
	case evCrash:
		w.injectCrash()
	case evCrashBroker:
		w.crashBroker(e)
	case evMajorityCrash:
		w.injectMajorityCrash()
	case evRestart:
		n := w.node(e.broker)
		if n.down && n.gen == e.gen {
			w.restart(n)
		}
	case evNetFault:
		if e.gen == w.netGen && w.faults {
			w.injectPartition()
		}
	case evNetHeal:
		if e.gen == w.netGen {
			w.heal()
		}
	case evClientCut:
		w.injectClientCut()
	case evDiskFault:
		w.injectDiskFault()
	case evDiskHeal:
		n := w.node(e.broker)
		if n.diskGen == e.gen {
			w.healDisk(n)
		}
	}
	return true
}

// recoverPanic turns a panic inside the engine (raft panics when its
// durable log lost entries it had acknowledged) into a failure.
func (w *World) recoverPanic(e *event) {
	r := recover()
	if r == nil {
		return
	}
	msg := fmt.Sprint(r)
	if w.traceOut != nil {
		// The stack goes to the readable trace only (it is not part of the
		// run's course, so not of its hash).
		fmt.Fprintf(w.traceOut, "panic: %s\n%s", msg, debug.Stack())
	}
	kind := FailEnginePanic
	if strings.Contains(msg, "corrupted, truncated, or lost") {
		kind = FailCommittedLost
	}
	w.fail(kind, "broker %d panicked handling %s: %s", e.broker, eventNames[e.kind], msg)
}

// injectCrash crashes one random live broker, keeping a majority up, and
// schedules its restart and the next crash.
func (w *World) injectCrash() {
	if !w.faults || w.opts.CrashEveryMillis == 0 {
		return
	}
	w.schedule(w.expDelay(w.opts.CrashEveryMillis), &event{kind: evCrash})
	var up []*node
	for _, n := range w.nodes {
		if !n.down && !n.armed {
			up = append(up, n)
		}
	}
	if len(w.nodes)-len(up)+1 > (len(w.nodes)-1)/2 {
		return // a majority stays up
	}
	n := up[w.rng.IntN(len(up))]
	if w.rng.IntN(gracefulStopOneIn) == 0 {
		// A clean stop (gregor serve on SIGTERM): leadership first.
		w.tracef("graceful stop %d", n.id)
		w.schedule(0, &event{kind: evHandOff, broker: n.id, gen: n.gen})
		return
	}
	if w.rng.IntN(2) == 0 {
		// Crash inside a Ready cycle: at one of the next WAL syncs, after
		// its records were appended (and a leader's appends sent early)
		// but before they are durable.
		k := 1 + w.rng.IntN(3)
		w.tracef("arm %d sync %d", n.id, k)
		n.armed = true
		n.wal.CrashAtSync(k)
		return
	}
	w.crash(n)
	w.schedule(w.expDelay(w.opts.DownMillis), &event{kind: evRestart, broker: n.id, gen: n.gen})
}

// A graceful stop is one crash in gracefulStopOneIn: the broker hands the
// leadership of its raft groups over first (engine.Broker.
// HandOffLeadership, as gregor serve's controlled shutdown), asking again
// every handOffPollMillis for at most handOffTriesMax times, goes on
// serving handOffLingerMillis once it has, and then crashes (a stop
// loses what a crash does: the unsynced tail).
const (
	gracefulStopOneIn   = 3
	handOffPollMillis   = 20
	handOffTriesMax     = 100
	handOffLingerMillis = 300
)

// handOff is one step of a graceful stop.
func (w *World) handOff(n *node, e *event) {
	left := n.b.HandOffLeadership()
	w.tracef("hand-off %d try %d: %d groups left", n.id, e.token, left)
	if left > 0 && e.token < handOffTriesMax {
		w.schedule(handOffPollMillis, &event{kind: evHandOff, broker: n.id, gen: n.gen, token: e.token + 1})
		return
	}
	w.schedule(handOffLingerMillis, &event{kind: evCrashBroker, broker: n.id, gen: n.gen})
}

// injectMajorityCrash crashes a majority of the brokers, or all of them,
// at once (a rack or power failure); each restarts after its own delay.
// Raft cannot commit until a majority is back; nothing acknowledged may
// be lost.
func (w *World) injectMajorityCrash() {
	if !w.faults || w.opts.MajorityCrashEveryMillis == 0 {
		return
	}
	w.schedule(w.expDelay(w.opts.MajorityCrashEveryMillis), &event{kind: evMajorityCrash})
	k := len(w.nodes)/2 + 1
	if w.rng.IntN(2) == 0 {
		k = len(w.nodes)
	}
	perm := w.rng.Perm(len(w.nodes))
	w.tracef("majority-crash %d of %d", k, len(w.nodes))
	for _, i := range perm[:k] {
		n := w.nodes[i]
		if n.down {
			continue
		}
		w.crash(n)
		w.schedule(w.expDelay(w.opts.MajorityDownMillis), &event{kind: evRestart, broker: n.id, gen: n.gen})
	}
}

// crashPoint handles a broker whose WAL reached its armed crash point:
// it crashes there, mid-cycle, and restarts later like any crash. It
// reports whether that happened. The WAL says so itself: the raft host
// may keep the failed cycle and retry rather than return the error, and
// err may be nil.
func (w *World) crashPoint(n *node, err error) bool {
	if !n.armed || !(n.wal.CrashPointReached() || errors.Is(err, memwal.ErrCrashPoint)) {
		return false
	}
	w.tracef("crash point %d", n.id)
	w.crash(n)
	w.schedule(w.expDelay(w.opts.DownMillis), &event{kind: evRestart, broker: n.id, gen: n.gen})
	return true
}

// injectClientCut cuts one workload client off from some brokers (all of
// them one time in four) for a while, and schedules the next cut.
func (w *World) injectClientCut() {
	if !w.faults || w.opts.ClientCutEveryMillis == 0 {
		return
	}
	w.schedule(w.expDelay(w.opts.ClientCutEveryMillis), &event{kind: evClientCut})
	if len(w.clients) < 2 {
		return
	}
	c := w.clients[1+w.rng.IntN(len(w.clients)-1)]
	until := w.now + w.expDelay(w.opts.ClientCutForMillis)
	all := w.rng.IntN(4) == 0
	first := int32(1 + w.rng.IntN(len(w.nodes)))
	var cut []string
	for _, n := range w.nodes {
		if all || n.id == first || w.rng.IntN(3) == 0 {
			c.cutUntil[n.id] = max(c.cutUntil[n.id], until)
			cut = append(cut, strconv.Itoa(int(n.id)))
		}
	}
	w.tracef("client-cut c%d from %s until %d", c.idx, strings.Join(cut, ","), until)
}

// injectDiskFault makes one live broker's disks (WAL and files) fail for a
// while: writes with ENOSPC (a full disk), or writes and syncs with EIO.
func (w *World) injectDiskFault() {
	if !w.faults || !w.opts.DiskErrors || w.opts.DiskErrorEveryMillis == 0 {
		return
	}
	w.schedule(w.expDelay(w.opts.DiskErrorEveryMillis), &event{kind: evDiskFault})
	var ok []*node
	for _, n := range w.nodes {
		if !n.dead && n.diskGen == 0 {
			ok = append(ok, n)
		}
	}
	if len(ok) == 0 {
		return
	}
	n := ok[w.rng.IntN(len(ok))]
	w.diskGen++
	n.diskGen = w.diskGen
	if w.rng.IntN(2) == 0 {
		w.tracef("disk-fault %d enospc", n.id)
		n.wal.InjectErrors(syscall.ENOSPC, nil)
		n.fs.InjectErrors(syscall.ENOSPC, nil)
	} else {
		w.tracef("disk-fault %d eio", n.id)
		n.wal.InjectErrors(syscall.EIO, syscall.EIO)
		n.fs.InjectErrors(syscall.EIO, syscall.EIO)
	}
	w.schedule(w.expDelay(w.opts.DiskErrorForMillis), &event{kind: evDiskHeal, broker: n.id, gen: n.diskGen})
}

func (w *World) healDisk(n *node) {
	w.tracef("disk-heal %d", n.id)
	n.diskGen = 0
	n.wal.InjectErrors(nil, nil)
	n.fs.InjectErrors(nil, nil)
}

// injectPartition cuts links by the partition mode and schedules the heal.
func (w *World) injectPartition() {
	mode := w.opts.PartitionMode
	if mode == PartitionMixed {
		mode = []string{PartitionSymmetric, PartitionAsymmetric, PartitionOneWay, PartitionIsolateLeader}[w.rng.IntN(4)]
	}
	n := len(w.nodes)
	ids := make([]int32, 0, n)
	for _, nd := range w.nodes {
		ids = append(ids, nd.id)
	}
	switch mode {
	case PartitionSymmetric:
		side := map[int32]bool{}
		k := 1 + w.rng.IntN(n/2)
		perm := w.rng.Perm(n)
		for _, i := range perm[:k] {
			side[ids[i]] = true
		}
		for _, a := range ids {
			for _, b := range ids {
				if side[a] != side[b] {
					w.cut[a][b] = true
				}
			}
		}
	case PartitionAsymmetric:
		victim := ids[w.rng.IntN(n)]
		for _, a := range ids {
			if a != victim {
				w.cut[a][victim] = true
			}
		}
	case PartitionOneWay:
		for _, a := range ids {
			for _, b := range ids {
				if a != b && w.rng.IntN(3) == 0 {
					w.cut[a][b] = true
				}
			}
		}
	case PartitionIsolateLeader:
		victim := w.someLeader()
		for _, a := range ids {
			if a != victim {
				w.cut[a][victim], w.cut[victim][a] = true, true
			}
		}
	}
	w.tracef("net-fault %s %s", mode, w.cutString())
	w.schedule(w.expDelay(w.opts.PartitionForMillis), &event{kind: evNetHeal, gen: w.netGen})
}

// someLeader picks a random partition and returns the broker that leads
// it, or a random broker.
func (w *World) someLeader() int32 {
	var leaders []int32
	for _, n := range w.nodes {
		if n.down {
			continue
		}
		for _, rs := range n.b.Replicas() {
			if rs.Leader {
				leaders = append(leaders, n.id)
			}
		}
	}
	if len(leaders) == 0 {
		return int32(1 + w.rng.IntN(len(w.nodes)))
	}
	return leaders[w.rng.IntN(len(leaders))]
}

func (w *World) heal() {
	w.cut = [brokersMax + 1][brokersMax + 1]bool{}
	w.netGen++
	w.tracef("net-heal")
	if w.faults && w.opts.PartitionEveryMillis > 0 {
		w.schedule(w.expDelay(w.opts.PartitionEveryMillis), &event{kind: evNetFault, gen: w.netGen})
	}
}

func (w *World) cutString() string {
	s := ""
	for a := 1; a <= len(w.nodes); a++ {
		for b := 1; b <= len(w.nodes); b++ {
			if w.cut[a][b] {
				s += fmt.Sprintf(" %d-x->%d", a, b)
			}
		}
	}
	return s
}

// startFaults begins the safety phase's fault injection.
func (w *World) startFaults() {
	w.faults = true
	if w.opts.CrashEveryMillis > 0 {
		w.schedule(w.expDelay(w.opts.CrashEveryMillis), &event{kind: evCrash})
	}
	if w.opts.PartitionEveryMillis > 0 {
		w.schedule(w.expDelay(w.opts.PartitionEveryMillis), &event{kind: evNetFault, gen: w.netGen})
	}
	if w.opts.MajorityCrashEveryMillis > 0 {
		w.schedule(w.expDelay(w.opts.MajorityCrashEveryMillis), &event{kind: evMajorityCrash})
	}
	if w.opts.ClientCutEveryMillis > 0 {
		w.schedule(w.expDelay(w.opts.ClientCutEveryMillis), &event{kind: evClientCut})
	}
	if w.opts.DiskErrors && w.opts.DiskErrorEveryMillis > 0 {
		w.schedule(w.expDelay(w.opts.DiskErrorEveryMillis), &event{kind: evDiskFault})
	}
}

// stopFaults heals the network and the disks and restarts every crashed
// broker (but a dead one). Client cuts, held and duplicated messages and
// fsync stalls end with w.faults.
func (w *World) stopFaults() {
	w.faults = false
	for _, n := range w.nodes {
		if n.armed {
			n.armed = false
			n.wal.CrashAtSync(0)
		}
		if n.diskGen != 0 {
			w.healDisk(n)
		}
	}
	w.netGen++
	w.cut = [brokersMax + 1][brokersMax + 1]bool{}
	w.tracef("liveness: heal all")
	for _, n := range w.nodes {
		if n.down {
			w.restart(n)
		}
	}
}

// runUntil steps events until the clock passes t, the run stops, or done
// returns true (checked after every event).
func (w *World) runUntil(t int64, done func() bool) {
	for !w.stopped && len(w.queue) > 0 && w.queue[0].at <= t {
		w.step()
		if done != nil && done() {
			return
		}
	}
	if !w.stopped && w.now < t && (done == nil || !done()) {
		w.now = t
	}
}

// crashBroker crashes e.broker if it is still the incarnation e names and
// a majority stays up; it restarts like any crashed broker.
func (w *World) crashBroker(e *event) {
	n := w.node(e.broker)
	if !w.faults || n.down || n.dead || n.gen != e.gen || n.armed {
		return
	}
	down := 0
	for _, m := range w.nodes {
		if m.down {
			down++
		}
	}
	if down+1 > (len(w.nodes)-1)/2 {
		return // a majority stays up
	}
	w.crash(n)
	w.schedule(cmp.Or(e.downMillis, w.expDelay(w.opts.DownMillis)), &event{kind: evRestart, broker: n.id, gen: n.gen})
}

// The broker a state answer is in flight to crashes one time in
// stateCrashOneIn, for stateCrashDownMillisMax at most (stateAnswerCrash).
const (
	stateCrashOneIn         = 2
	stateCrashDownMillisMax = 30
)

// stateAnswerCrash: a peer's answer to a repairing replica's state
// request is in flight to broker to; one time in stateCrashOneIn (in
// seeds that crash brokers at all) that broker crashes at once and comes
// back stateCrashDownMillisMax at most later. The answer, and the peer's
// other answers to it still in flight, are held, as a transport that
// queues what it could not send does, and go out when the restarted
// broker next asks that peer for a state (releaseStateAnswers): they
// must not be taken for the answers to its new calls
// (TestRegression_PeerResponseAcrossRestart).
func (w *World) stateAnswerCrash(n *node, to int32, payload []byte) {
	if !w.faults || w.opts.CrashEveryMillis == 0 || !engine.CarriesStateAnswer(payload) {
		return
	}
	m := w.node(to)
	if held := w.heldAnswers[[2]int32{n.id, to}]; len(held) > 0 {
		// Another answer to the crashed incarnation: held with it.
		w.heldAnswers[[2]int32{n.id, to}] = append(held, bytes.Clone(payload))
		return
	}
	if m.down || w.rng.IntN(stateCrashOneIn) != 0 {
		return
	}
	down := 1 + w.rng.Int64N(stateCrashDownMillisMax)
	gen := m.gen
	w.crashBroker(&event{broker: to, gen: gen, downMillis: down})
	if m.gen == gen {
		return // it stayed up: a majority was down
	}
	w.tracef("state answer %d -> %d held: crash, back in %dms", n.id, to, down)
	w.heldAnswers[[2]int32{n.id, to}] = [][]byte{bytes.Clone(payload)}
}

// releaseStateAnswers sends the answers held from broker to to n, which
// asks it for a state again, just ahead of that request's own answer.
func (w *World) releaseStateAnswers(n *node, to int32, payload []byte) {
	k := [2]int32{to, n.id}
	held := w.heldAnswers[k]
	if len(held) == 0 || !engine.CarriesStateRequest(payload) {
		return
	}
	delete(w.heldAnswers, k)
	w.tracef("state answers %d -> %d released: %d", to, n.id, len(held))
	for _, p := range held {
		w.schedule(w.latency(), &event{kind: evDeliver, broker: n.id, from: to, payload: p})
	}
}
