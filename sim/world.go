package sim

import (
	"container/heap"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
	"math/rand/v2"
	"strconv"
	"strings"

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
	evTick       eventKind = iota + 1 // a broker ticks
	evDeliver                         // a peer payload reaches a broker
	evRequest                         // a client request reaches a broker
	evResponse                        // a broker's response reaches a client
	evClient                          // a client's timer fires (timeout, backoff)
	evCrash                           // the crash injector picks a victim
	evRestart                         // a crashed broker comes back
	evNetFault                        // the network injector cuts links
	evNetHeal                         // ... and heals them
	evFlush                           // a broker syncs its WAL in the background
	evCheckpoint                      // a broker checkpoints: syncs its state, compacts its raft logs
)

var eventNames = [...]string{evTick: "tick", evDeliver: "deliver", evRequest: "request", evResponse: "response",
	evClient: "client", evCrash: "crash", evRestart: "restart", evNetFault: "net-fault", evNetHeal: "net-heal", evFlush: "flush",
	evCheckpoint: "checkpoint"}

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

	faults     bool // the safety phase injects faults
	clients    []*client
	pending    map[uint64]int // request token -> client index
	token      uint64
	check      *checker
	failures   []Failure
	stopped    bool
	events     int
	trace      hash.Hash
	traceOut   io.Writer // optional readable copy of the trace
	logOut     io.Writer // the brokers' log lines, with the trace
	traceBuf   []byte
	topics     []string
	ops        []linearizability.Op
	final      map[tpKey][]linearizability.Record
	tpModes    map[tpKey]string
	cryptoRand *rand.ChaCha8
}

// Clock is the world's virtual clock, in milliseconds since the Unix
// epoch of the simulation (which starts at a fixed date).
type worldClock struct{ w *World }

// epochMillis is the wall time the simulation pretends to start at.
const epochMillis = 1_700_000_000_000

func (c worldClock) NowMillis() int64 { return epochMillis + c.w.now }

func newWorld(opts Options, traceOut io.Writer) (*World, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	unsafe, _ := ParseUnsafe(opts.Unsafe)
	w := &World{
		opts:     opts,
		unsafe:   unsafe,
		rng:      rand.New(rand.NewPCG(opts.Seed, 0x776f726c64)), // "world"
		pending:  map[uint64]int{},
		trace:    sha256.New(),
		traceOut: traceOut,
		logOut:   traceOut,
		tpModes:  map[tpKey]string{},
	}
	var seed [32]byte
	binary.LittleEndian.PutUint64(seed[:], opts.Seed)
	copy(seed[8:], "gregor-sim-crypto-rand")
	w.cryptoRand = rand.NewChaCha8(seed)
	w.check = newChecker(w)
	for i := 1; i <= opts.Brokers; i++ {
		w.nodes = append(w.nodes, &node{id: int32(i), wal: memwal.New(), fs: vfs.NewMem()})
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
	return engine.Config{
		ID: id, Cluster: cl, TickMillis: tickMillis,
		CheckpointBytes: w.opts.CheckpointBytes, SegmentBytes: w.opts.SegmentBytes,
		Unsafe: w.unsafe,
	}
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

func (w *World) lost() bool {
	return w.faults && w.opts.LossRate > 0 && w.rng.Float64() < w.opts.LossRate
}

// expDelay draws an exponential delay with the given mean, at least 1 ms.
func (w *World) expDelay(mean int64) int64 {
	return max(1, int64(w.rng.ExpFloat64()*float64(mean)))
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
	env := engine.Env{FS: n.fs, WAL: n.wal, Clock: worldClock{w}}
	if w.logOut != nil {
		id := n.id
		env.Logf = func(format string, args ...any) {
			fmt.Fprintf(w.logOut, "%8dms broker %d: %s\n", w.now, id, fmt.Sprintf(format, args...))
		}
	}
	env.SendEarly = func(outs []raftlog.Outgoing) {
		for _, out := range outs {
			if !w.transmit(n, out) {
				return
			}
		}
	}
	b, err := engine.NewBroker(w.config(n.id), env)
	if err != nil {
		w.fail("recovery", "broker %d failed to start: %v", n.id, err)
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

// crash drops a broker: its unsynced WAL records and file data are lost
// or torn, its in-flight requests are never answered.
func (w *World) crash(n *node) {
	w.tracef("crash %d", n.id)
	w.check.beforeCrash(n)
	_ = n.b.Close()
	n.b, n.down, n.armed = nil, true, false
	n.gen++
	n.wal.Crash(w.rng)
	n.fs.Crash(w.rng)
}

func (w *World) restart(n *node) {
	w.tracef("restart %d", n.id)
	w.boot(n)
	if !n.down && n.b != nil {
		w.check.afterRestart(n)
	}
}

// transmit puts one transport payload from n on the simulated network. It
// reports false (after failing the run) if the destination does not exist.
func (w *World) transmit(n *node, out raftlog.Outgoing) bool {
	to := int32(out.To)
	if to < 1 || int(to) > len(w.nodes) {
		w.fail(FailEngineError, "broker %d sent to unknown broker %d", n.id, to)
		return false
	}
	if w.cut[n.id][to] || w.lost() {
		return true
	}
	w.schedule(w.latency(), &event{kind: evDeliver, broker: to, from: n.id, payload: out.Payload})
	return true
}

// drain runs Process on a broker and turns its outbox and responses into
// future events, then runs the checkers on it.
func (w *World) drain(n *node) {
	if n.down || w.stopped {
		return
	}
	if err := n.b.Process(); err != nil {
		if w.crashPoint(n, err) {
			return
		}
		w.fail(FailEngineError, "broker %d process: %v", n.id, err)
		return
	}
	for _, out := range n.b.Outbox() {
		if !w.transmit(n, out) {
			return
		}
	}
	for _, r := range n.b.Responses() {
		ci, ok := w.pending[r.Token]
		if !ok {
			continue
		}
		delete(w.pending, r.Token)
		if r.Msg == nil || w.lost() {
			continue
		}
		w.schedule(w.latency(), &event{kind: evResponse, broker: n.id, client: ci, token: r.Token, resp: r.Msg})
	}
	w.check.observe(n)
}

// send carries a client request to a broker over the network.
func (w *World) send(ci int, to int32, req kmsg.Request) uint64 {
	w.token++
	tok := w.token
	w.tracef("send c%d -> %d tok %d key %d", ci, to, tok, req.Key())
	if !w.lost() {
		w.schedule(w.latency(), &event{kind: evRequest, broker: to, client: ci, token: tok, req: req})
	}
	return tok
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
	case evTick:
		n := w.node(e.broker)
		if n.down || n.gen != e.gen {
			return true
		}
		w.tracef("tick %d", n.id)
		n.b.Tick()
		w.drain(n)
		w.schedule(tickMillis, &event{kind: evTick, broker: n.id, gen: n.gen})
	case evFlush:
		n := w.node(e.broker)
		if n.down || n.gen != e.gen {
			return true
		}
		w.tracef("flush %d", n.id)
		if err := n.b.SyncWAL(); err != nil {
			if w.crashPoint(n, err) {
				return true
			}
			w.fail(FailEngineError, "broker %d sync: %v", n.id, err)
		}
		w.schedule(w.expDelay(w.opts.FlushEveryMillis), &event{kind: evFlush, broker: n.id, gen: n.gen})
	case evCheckpoint:
		n := w.node(e.broker)
		if n.down || n.gen != e.gen {
			return true
		}
		w.tracef("checkpoint %d", n.id)
		if err := n.b.Checkpoint(); err != nil {
			if w.crashPoint(n, err) {
				return true
			}
			w.fail(FailEngineError, "broker %d checkpoint: %v", n.id, err)
		}
		w.drain(n)
		w.schedule(w.expDelay(w.opts.CheckpointEveryMillis), &event{kind: evCheckpoint, broker: n.id, gen: n.gen})
	case evDeliver:
		n := w.node(e.broker)
		if n.down || w.cut[e.from][e.broker] {
			w.tracef("drop %d -> %d", e.from, e.broker)
			return true
		}
		w.tracef("deliver %d -> %d", e.from, e.broker)
		w.traceBytes(e.payload)
		if err := n.b.Receive(e.payload); err != nil {
			w.fail(FailEngineError, "broker %d receive from %d: %v", n.id, e.from, err)
			return true
		}
		w.drain(n)
	case evRequest:
		n := w.node(e.broker)
		if n.down {
			w.tracef("request tok %d lost: broker %d down", e.token, e.broker)
			return true
		}
		w.tracef("handle %d tok %d", n.id, e.token)
		w.pending[e.token] = e.client
		n.b.Handle(e.token, e.req)
		w.drain(n)
	case evResponse:
		w.tracef("response c%d tok %d", e.client, e.token)
		w.traceBytes(e.resp.AppendTo(nil))
		w.clients[e.client].onResponse(e.token, e.resp)
	case evClient:
		w.clients[e.client].onTimer(e.gen)
	case evCrash:
		w.injectCrash()
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

// crashPoint handles a broker whose WAL reached its armed crash point:
// it crashes there, mid-cycle, and restarts later like any crash. It
// reports whether err was that.
func (w *World) crashPoint(n *node, err error) bool {
	if !n.armed || !errors.Is(err, memwal.ErrCrashPoint) {
		return false
	}
	w.tracef("crash point %d", n.id)
	w.crash(n)
	w.schedule(w.expDelay(w.opts.DownMillis), &event{kind: evRestart, broker: n.id, gen: n.gen})
	return true
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
}

// stopFaults heals the network and restarts every crashed broker.
func (w *World) stopFaults() {
	w.faults = false
	for _, n := range w.nodes {
		if n.armed {
			n.armed = false
			n.wal.CrashAtSync(0)
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
