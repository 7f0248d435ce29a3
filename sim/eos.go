package sim

// Consume-transform-produce: exactly-once processors (Kafka Streams'
// pattern, KIP-447). Each processor is a member of the classic consumer
// group e0, subscribed to the tx topic, which it reads read_committed
// (filtering as the readers do, and held to the same checks: it may not
// see an aborted or uncommitted record); for each batch it read it runs
// one transaction: the transformed records (value "<input>@e<client>.<n>")
// to the txo topic (one partition), AddOffsetsToTxn, TxnOffsetCommit
// of the positions with its generation and member id, EndTxn(commit). Its
// producer (txnwriter.go's txnProducer: retries, fencing, crashes) has a
// transactional id of its own, e<k>, which a restarted processor reuses.
//
// A processor is two clients, as a Kafka consumer and producer are: slot A
// talks to the group coordinator (FindCoordinator, JoinGroup with KIP-394's
// member id round trip, SyncGroup, where the leader assigns the tx
// partitions by range, Heartbeat); slot B fetches, reads the committed
// offsets of a new assignment (OffsetFetch with RequireStable, which
// waits out offsets a transaction staged), and runs the transactions.
// A rebalance (REBALANCE_IN_PROGRESS, ILLEGAL_GENERATION, ...) makes slot
// A rejoin once slot B holds no transaction, as onPartitionsRevoked would;
// a transaction whose TxnOffsetCommit is refused (the generation moved)
// aborts, and the processor reads from the committed offsets again.
//
// Faults of their own, in the safety and liveness phases: a processor
// crashes before ending a transaction (one in fifteen) or just after
// sending EndTxn(commit) (one in ten): it vanishes from the group and its
// producer crashes, and it comes back 0.2-2 s later as a new member with
// the same transactional id; or it pauses just before TxnOffsetCommit
// (one in twelve) for longer than its session, so that it comes back a
// zombie of an older generation (KIP-447 must refuse its commit).
//
// After the final read the processors run on, without faults, until they
// have committed every tx partition's end; then the readers, which read
// txo as well, read to the end, and every input record a reader delivered
// (committed) must be in the output of exactly one transaction the reader
// delivered: eos-duplicate if in more, eos-lost if in none;
// eos-uncommitted-input for an output of an input the reader never
// delivered.
//
// The processors of e0 are one flow (eosFlow): a group, the topics it
// subscribes to, its assignor and where each input's output goes. The
// ping-pong processors of p0 (txnpingpong.go) are another, which reads tx
// and pp and writes pp, each processor what the other reads, in
// transactions that poll and produce several times before they commit;
// its checks are the same, flow by flow.

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

const (
	eosGroup            = "e0"
	eosTopic            = "txo"
	eosBatchMax         = 20 // input records in one transaction
	eosCrashOneTxnIn    = 15
	eosCrashOneCommitIn = 10
	eosPauseOneIn       = 12
	// eosPollMillisMax: a processor's pause after a fetch that read
	// nothing (a fetch long-polls up to fetchMaxWaitMillis as well).
	eosPollMillisMax = 500
	// eosPartitions: txo's partitions. An idle partition is a raft group
	// ticking on three brokers, so the output goes to one: a transaction
	// still spans it and the group's __consumer_offsets partition.
	eosPartitions               = 1
	eosProtocolType             = "consumer"
	eosProtocol                 = "range"
	eosOutputSeparator          = "@"
	waitEOSJoin        waitKind = iota + 160
	waitEOSSync
	waitEOSHeartbeat
	waitEOSOffsetFetch
	// eosProtocolRoundRobin: the ping-pong group's assignor (after the
	// wait kinds, which count on iota).
	eosProtocolRoundRobin = "roundrobin"
)

// Failure kinds of the processors.
const (
	// FailEOSDuplicate: an input record is in the output of more than one
	// transaction a reader delivered.
	FailEOSDuplicate = "eos-duplicate"
	// FailEOSLost: an input record a reader delivered (committed) is in
	// the output of no transaction it delivered, after the processors
	// committed every partition's end.
	FailEOSLost = "eos-lost"
	// FailEOSUncommittedInput: a reader delivered the output of an input
	// record it never delivered (one that did not commit).
	FailEOSUncommittedInput = "eos-uncommitted-input"
)

type eosState uint8

const (
	eosJoin eosState = iota
	eosSync
	eosStable
)

// eosWorld is the processors' shared state.
type eosWorld struct {
	tw    *txnWorld
	flows []*eosFlow
	procs []*eosProcessor // every flow's
	// finishing: after the final read, no faults, run to the end;
	// stopped: done, the processors send nothing more.
	finishing, stopped bool
}

// eosFlow is one kind of processor: the group its processors join, the
// partitions the group assigns them, and where the output of each input
// record goes.
type eosFlow struct {
	ew       *eosWorld
	name     string // the transactional ids' and the output values' prefix
	group    string
	protocol string   // the assignor its leader runs: range (per topic) or roundrobin
	topics   []string // subscribed
	inputs   []tpKey  // the subscribed topics' partitions, sorted
	writes   string   // the topic it writes
	// polls: a transaction reads and writes in up to this many polls
	// (each drawn 1..polls); 1: it reads once, then writes.
	polls int
	// pollPause: a processor pauses up to this long after a fetch that
	// read nothing, outside a transaction.
	pollPause int64
	// output returns where the output of processor e's input in goes and
	// its value, or false for an input that has none.
	output func(e *eosProcessor, in eosIn) (tpKey, string, bool)
	// processes reports whether the flow must process a value, written
	// to ref.tp: each such one a reader delivered must be in the output
	// of exactly one transaction it delivered.
	processes func(v string, ref txnValue) bool
	procs     []*eosProcessor
	input     map[string]string // output value -> its input value
}

func newEOSWorld(tw *txnWorld) *eosWorld {
	ew := &eosWorld{tw: tw}
	if n := tw.w.opts.TxnProcessors; n > 0 {
		f := ew.newFlow("e", eosGroup, eosProtocol, eosTopic, n, txnTopic)
		f.output = func(e *eosProcessor, in eosIn) (tpKey, string, bool) {
			return tpKey{eosTopic, in.tp.part % eosPartitions}, in.v + eosOutputSeparator + "e" + strconv.Itoa(e.c.idx) + "." + strconv.Itoa(e.n), true
		}
		f.processes = func(_ string, ref txnValue) bool { return ref.tp.topic == txnTopic }
	}
	if n := tw.w.opts.TxnPingPong; n > 0 {
		ew.addPingPong(n)
	}
	return ew
}

// newFlow adds a flow of n processors subscribed to topics, writing to
// writes.
func (ew *eosWorld) newFlow(name, group, protocol, writes string, n int, topics ...string) *eosFlow {
	f := &eosFlow{ew: ew, name: name, group: group, protocol: protocol, writes: writes, topics: topics, polls: 1, pollPause: eosPollMillisMax, input: map[string]string{}}
	for _, tp := range ew.tw.readTPs {
		if slices.Contains(topics, tp.topic) {
			f.inputs = append(f.inputs, tp)
		}
	}
	slices.SortFunc(f.inputs, compareTPKey)
	ew.flows = append(ew.flows, f)
	f.procs = make([]*eosProcessor, n)
	return f
}

// eosIn is one input record read and not yet committed.
type eosIn struct {
	tp  tpKey
	off int64
	v   string
}

// eosProcessor is one processor: slot A (group) and its producer (slot B).
type eosProcessor struct {
	ew *eosWorld
	f  *eosFlow
	a  *client
	*txnProducer

	// The group, as slot A keeps it.
	coord     int32
	member    string
	gen       int32
	state     eosState
	leader    bool
	members   []kmsg.JoinGroupResponseMember
	assigned  []tpKey // this generation's assignment (stable only)
	nextBeat  int64
	pauseTill int64 // a zombie's pause: neither slot acts before

	// Slot B: positions and what was read but not yet committed.
	needOffsets bool
	pos         map[tpKey]int64
	committed   map[tpKey]int64
	hw, lso     map[tpKey]int64 // as last fetched (since the last revocation, and in the end phase)
	buf         []eosIn
	fetching    []tpKey
	// posGen counts the times the positions were dropped or reset; a
	// fetch answer sent under other positions is dropped.
	posGen, fetchGen int
	next             int
	n                int
	// The transaction in flight: its inputs and offsets, its polls (done
	// and planned), and its steps.
	txIn            []eosIn
	txOffsets       map[tpKey]int64
	txPoll, txPolls int
	txGen           int32
	txMember        string
	offsetsIn       bool // AddOffsetsToTxn acknowledged
	offsetsDone     bool // TxnOffsetCommit acknowledged
	paused          bool

	txns, commits, rebalances int
}

// addEOSClients adds the processors (after the writers and readers).
func (w *World) addEOSClients() {
	tw := w.txn
	ew := tw.eos
	if ew == nil {
		return
	}
	for _, f := range ew.flows {
		for k := range f.procs {
			e := &eosProcessor{ew: ew, f: f, pos: map[tpKey]int64{}, committed: map[tpKey]int64{}, hw: map[tpKey]int64{}, lso: map[tpKey]int64{}}
			e.a = tw.newClient(roleMember, func(c *client) txnActor { return eosSlotA{e} })
			e.a.bg = true
			b := tw.newClient(roleProducer, func(c *client) txnActor {
				e.txnProducer = newTxnProducer(c, tw, f.name+strconv.Itoa(k), e)
				return eosSlotB{e}
			})
			b.bg = true
			f.procs[k] = e
			ew.procs = append(ew.procs, e)
			w.tracef("client %d and %d eos processor %q timeout %dms", e.a.idx, b.idx, e.id, e.timeoutMs)
		}
	}
}

func (e *eosProcessor) w() *World { return e.a.w }

// halted: the run stopped, or the processors are done.
func (e *eosProcessor) halted() bool { return e.w().stopped || e.ew.stopped }

// chaos reports whether faults of the processor's own may happen now.
func (e *eosProcessor) chaos() bool { return !e.ew.finishing }

// --- slot A: the group ---

type eosSlotA struct{ e *eosProcessor }

func (s eosSlotA) onResponse(tok uint64, resp kmsg.Response) {
	e := s.e
	c := e.a
	if !txnAccept(c, tok) {
		return
	}
	c.wait = waitNothing
	if e.w().now < e.pauseTill {
		// Paused: the answer is lost on it.
		c.backoff(e.pauseTill - e.w().now)
		return
	}
	switch r := resp.(type) {
	case *kmsg.FindCoordinatorResponse:
		node, code := findCoordinatorResult(r, e.f.group)
		if code != 0 || node < 1 || int(node) > len(e.w().nodes) {
			c.backoff(backoffMillis)
			return
		}
		e.coord = node
		e.stepA()
	case *kmsg.JoinGroupResponse:
		e.onJoin(r)
	case *kmsg.SyncGroupResponse:
		e.onSync(r)
	case *kmsg.HeartbeatResponse:
		e.onBeat(r.ErrorCode)
	}
}

func (s eosSlotA) onTimer(gen uint64) {
	e := s.e
	c := e.a
	wait := c.wait
	ok, timedOut := txnTimer(c, gen)
	if !ok {
		return
	}
	if timedOut && wait != waitTxnCoordinator {
		e.coord = 0
	}
	e.stepA()
}

func (e *eosProcessor) stepA() {
	w, c := e.w(), e.a
	if e.halted() {
		return
	}
	if w.now < e.pauseTill {
		c.backoff(e.pauseTill - w.now)
		return
	}
	if e.coord == 0 {
		c.request(c.randomBroker(), findCoordinatorRequest(w, e.f.group), waitTxnCoordinator)
		return
	}
	switch e.state {
	case eosJoin:
		if e.cur != nil {
			// onPartitionsRevoked: the transaction in flight ends first.
			c.backoff(txnRetryMillis)
			return
		}
		e.revoke()
		meta := kmsg.NewConsumerMemberMetadata()
		meta.Topics = e.f.topics
		req := kmsg.NewPtrJoinGroupRequest()
		req.SetVersion(5)
		req.Group, req.MemberID, req.ProtocolType = e.f.group, e.member, eosProtocolType
		req.SessionTimeoutMillis = w.opts.SessionTimeoutMillis
		req.RebalanceTimeoutMillis = w.opts.RebalanceTimeoutMillis
		p := kmsg.NewJoinGroupRequestProtocol()
		p.Name, p.Metadata = e.f.protocol, meta.AppendTo(nil)
		req.Protocols = append(req.Protocols, p)
		c.requestFor(e.coord, req, waitEOSJoin, int64(w.opts.RebalanceTimeoutMillis)+w.opts.ClientTimeoutMillis)
	case eosSync:
		req := kmsg.NewPtrSyncGroupRequest()
		req.SetVersion(5)
		req.Group, req.Generation, req.MemberID = e.f.group, e.gen, e.member
		pt, pr := eosProtocolType, e.f.protocol
		req.ProtocolType, req.Protocol = &pt, &pr
		if e.leader {
			req.GroupAssignment = e.assign()
		}
		c.requestFor(e.coord, req, waitEOSSync, int64(w.opts.RebalanceTimeoutMillis)+w.opts.ClientTimeoutMillis)
	case eosStable:
		if w.now < e.nextBeat {
			c.backoff(e.nextBeat - w.now)
			return
		}
		req := kmsg.NewPtrHeartbeatRequest()
		req.SetVersion(3)
		req.Group, req.Generation, req.MemberID = e.f.group, e.gen, e.member
		c.request(e.coord, req, waitEOSHeartbeat)
	}
}

// assign is the leader's assignment of the flow's partitions to the
// members, sorted by id: range (each topic's partitions split into
// consecutive runs, the first members taking one more) or roundrobin
// (every partition, sorted, to the next member in turn), as Kafka's
// RangeAssignor and RoundRobinAssignor do.
func (e *eosProcessor) assign() []kmsg.SyncGroupRequestGroupAssignment {
	ids := make([]string, 0, len(e.members))
	for _, m := range e.members {
		ids = append(ids, m.MemberID)
	}
	slices.Sort(ids)
	mine := make([][]tpKey, len(ids))
	if e.f.protocol == eosProtocolRoundRobin {
		for i, tp := range e.f.inputs {
			mine[i%len(ids)] = append(mine[i%len(ids)], tp)
		}
	} else {
		for _, topic := range e.f.topics {
			var tps []tpKey
			for _, tp := range e.f.inputs {
				if tp.topic == topic {
					tps = append(tps, tp)
				}
			}
			per, extra := len(tps)/len(ids), len(tps)%len(ids)
			start := 0
			for i := range ids {
				k := per
				if i < extra {
					k++
				}
				mine[i] = append(mine[i], tps[start:start+k]...)
				start += k
			}
		}
	}
	var out []kmsg.SyncGroupRequestGroupAssignment
	for i, id := range ids {
		a := kmsg.NewConsumerMemberAssignment()
		for _, tp := range mine[i] {
			if n := len(a.Topics); n == 0 || a.Topics[n-1].Topic != tp.topic {
				at := kmsg.NewConsumerMemberAssignmentTopic()
				at.Topic = tp.topic
				a.Topics = append(a.Topics, at)
			}
			at := &a.Topics[len(a.Topics)-1]
			at.Partitions = append(at.Partitions, tp.part)
		}
		sa := kmsg.NewSyncGroupRequestGroupAssignment()
		sa.MemberID, sa.MemberAssignment = id, a.AppendTo(nil)
		out = append(out, sa)
	}
	return out
}

// groupError handles a coordinator error of slot A; false for others.
func (e *eosProcessor) groupError(code int16) bool {
	switch code {
	case kerr.NotCoordinator.Code, kerr.CoordinatorNotAvailable.Code:
		e.coord = 0
	case kerr.CoordinatorLoadInProgress.Code:
	default:
		return false
	}
	e.a.backoff(backoffMillis)
	return true
}

// rejoin starts a rebalance on the processor's side.
func (e *eosProcessor) rejoin(why string) {
	if e.state == eosStable {
		e.rebalances++
	}
	e.w().tracef("eos c%d %s generation %d rejoins: %s", e.a.idx, e.member, e.gen, why)
	e.state = eosJoin
	e.stepA()
}

func (e *eosProcessor) onJoin(r *kmsg.JoinGroupResponse) {
	switch code := r.ErrorCode; {
	case code == 0:
		e.member, e.gen, e.leader = r.MemberID, r.Generation, r.LeaderID == r.MemberID
		e.members = r.Members
		e.state = eosSync
		e.stepA()
	case code == kerr.MemberIDRequired.Code:
		e.member = r.MemberID
		e.stepA()
	case code == kerr.UnknownMemberID.Code:
		e.member = ""
		e.a.backoff(backoffMillis)
	case e.groupError(code):
	default:
		e.a.backoff(backoffMillis)
	}
}

func (e *eosProcessor) onSync(r *kmsg.SyncGroupResponse) {
	w := e.w()
	switch code := r.ErrorCode; {
	case code == 0:
		var a kmsg.ConsumerMemberAssignment
		var tps []tpKey
		if len(r.MemberAssignment) > 0 {
			if err := a.ReadFrom(r.MemberAssignment); err == nil {
				for _, t := range a.Topics {
					for _, p := range t.Partitions {
						tps = append(tps, tpKey{t.Topic, p})
					}
				}
			}
		}
		slices.SortFunc(tps, compareTPKey)
		e.revoke()
		e.assigned, e.state, e.needOffsets = tps, eosStable, true
		e.nextBeat = w.now + int64(w.opts.SessionTimeoutMillis)/3
		w.tracef("eos c%d %s generation %d assigned %v", e.a.idx, e.member, e.gen, tps)
		e.stepA()
	case code == kerr.UnknownMemberID.Code:
		e.member = ""
		e.rejoin(codeName(code))
	case code == kerr.RebalanceInProgress.Code || code == kerr.IllegalGeneration.Code:
		e.rejoin(codeName(code))
	case e.groupError(code):
	default:
		e.a.backoff(backoffMillis)
	}
}

func (e *eosProcessor) onBeat(code int16) {
	w := e.w()
	switch {
	case code == 0:
		e.nextBeat = w.now + int64(w.opts.SessionTimeoutMillis)/3
		e.stepA()
	case code == kerr.UnknownMemberID.Code || code == kerr.FencedInstanceID.Code:
		e.member = ""
		e.rejoin(codeName(code))
	case code == kerr.RebalanceInProgress.Code || code == kerr.IllegalGeneration.Code:
		e.rejoin(codeName(code))
	case e.groupError(code):
	default:
		e.a.backoff(backoffMillis)
	}
}

// revoke drops the assignment and what was read of it.
func (e *eosProcessor) revoke() {
	e.assigned, e.buf, e.needOffsets = nil, nil, false
	e.posGen++
	clear(e.pos)
	clear(e.committed)
	clear(e.hw)
	clear(e.lso)
}

// --- slot B: reading and transactions ---

type eosSlotB struct{ e *eosProcessor }

func (s eosSlotB) onResponse(tok uint64, resp kmsg.Response) {
	e := s.e
	c := e.c
	if !txnAccept(c, tok) {
		return
	}
	c.wait = waitNothing
	switch r := resp.(type) {
	case *kmsg.FetchResponse:
		e.onFetch(r)
	case *kmsg.OffsetFetchResponse:
		e.onOffsetFetch(r)
	case *kmsg.AddOffsetsToTxnResponse:
		e.onAddOffsets(r.ErrorCode)
	case *kmsg.TxnOffsetCommitResponse:
		e.onTxnOffsetCommit(r)
	default:
		e.response(resp)
	}
}

func (s eosSlotB) onTimer(gen uint64) {
	e := s.e
	wait := e.c.wait
	if !e.txnProducer.onTimer(gen) {
		return
	}
	switch wait {
	case waitTxnOffsetCommit, waitEOSOffsetFetch:
		e.coord = 0 // the group coordinator: slot A finds it again
	case waitFetch:
		e.fetching = e.fetching[:0]
	}
	e.step()
}

// step is slot B's next step (the producer's owner).
func (e *eosProcessor) step() {
	w, c := e.w(), e.c
	if e.halted() {
		return
	}
	if w.now < e.pauseTill {
		c.backoff(e.pauseTill - w.now)
		return
	}
	if !e.prepare() {
		return
	}
	if t := e.cur; t != nil {
		switch {
		case t.state != txnOpen:
			e.endTxn()
		case e.txnProducer.step():
		case e.pollAgain():
		case !e.offsetsIn:
			req := kmsg.NewPtrAddOffsetsToTxnRequest()
			req.SetVersion(3)
			req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Group = e.id, t.pid, t.epoch, e.f.group
			e.send(e.txnProducer.coord, req, waitAddOffsets)
		case !e.offsetsDone:
			e.txnOffsetCommit()
		default:
			e.decide()
		}
		return
	}
	if c.stopping && !e.ew.finishing && !e.restarting {
		// The liveness phase: nothing new until the end phase (finish);
		// slot A keeps the membership.
		c.wait = waitNothing
		return
	}
	if e.state != eosStable || len(e.assigned) == 0 || e.coord == 0 {
		c.backoff(backoffMillis)
		return
	}
	if e.needOffsets {
		req := kmsg.NewPtrOffsetFetchRequest()
		req.SetVersion(7)
		req.Group, req.RequireStable = e.f.group, true
		for _, tp := range e.assigned {
			if n := len(req.Topics); n == 0 || req.Topics[n-1].Topic != tp.topic {
				rt := kmsg.NewOffsetFetchRequestTopic()
				rt.Topic = tp.topic
				req.Topics = append(req.Topics, rt)
			}
			rt := &req.Topics[len(req.Topics)-1]
			rt.Partitions = append(rt.Partitions, tp.part)
		}
		e.fetchGen = e.posGen
		c.request(e.coord, req, waitEOSOffsetFetch)
		return
	}
	if len(e.buf) > 0 || slices.ContainsFunc(e.assigned, func(tp tpKey) bool { return e.pos[tp] > e.committed[tp] }) {
		e.begin()
		return
	}
	e.fetch()
}

func (e *eosProcessor) onOffsetFetch(r *kmsg.OffsetFetchResponse) {
	c := e.c
	if e.fetchGen != e.posGen {
		e.step() // sent for an assignment since dropped
		return
	}
	code := r.ErrorCode
	got := map[tpKey]int64{}
	for _, t := range r.Topics {
		for _, p := range t.Partitions {
			if p.ErrorCode != 0 && code == 0 {
				code = p.ErrorCode
			}
			got[tpKey{t.Topic, p.Partition}] = max(p.Offset, 0)
		}
	}
	switch {
	case code == kerr.NotCoordinator.Code || code == kerr.CoordinatorNotAvailable.Code:
		e.coord = 0
		c.backoff(backoffMillis)
		return
	case code != 0: // UNSTABLE_OFFSET_COMMIT (a transaction is pending), loading, ...
		c.backoff(backoffMillis)
		return
	}
	if !e.needOffsets {
		c.think()
		return
	}
	for _, tp := range e.assigned {
		o, ok := got[tp]
		if !ok {
			c.backoff(backoffMillis)
			return
		}
		e.pos[tp], e.committed[tp] = o, o
	}
	e.needOffsets, e.buf = false, nil
	e.posGen++
	e.w().tracef("eos c%d %s positions %v", c.idx, e.member, e.pos)
	e.step()
}

// fetch reads the assigned partitions one leader leads, read_committed.
func (e *eosProcessor) fetch() {
	c := e.c
	tps := e.assigned
	to := txnLeader(c, tps[e.next%len(tps)])
	e.next++
	if to == 0 {
		return
	}
	var req *kmsg.FetchRequest
	req, e.fetching = committedFetch(c, to, tps, e.pos, e.fetching[:0])
	e.fetchGen = e.posGen
	c.request(to, req, waitFetch)
}

func (e *eosProcessor) onFetch(resp *kmsg.FetchResponse) {
	c, tw, w := e.c, e.ew.tw, e.w()
	who := "eos processor c" + strconv.Itoa(c.idx)
	if e.fetchGen != e.posGen || e.needOffsets {
		// Sent under positions since dropped (a rebalance, an abort).
		e.fetching = e.fetching[:0]
		e.step()
		return
	}
	failed := false
	for _, tp := range e.fetching {
		p, ok := fetchPartition(resp, tp)
		code := resp.ErrorCode
		if code == 0 && ok {
			code = p.ErrorCode
		}
		if code != 0 || !ok || !slices.Contains(e.assigned, tp) {
			failed = failed || code != 0 || !ok
			continue
		}
		var offs []int64
		ok = readCommitted(c.w, who, tp, e.pos, p, func(off int64, v string, pid int64) bool {
			if !tw.checkDelivered(who, tp, off, v, pid) {
				return false
			}
			offs = append(offs, off)
			e.buf = append(e.buf, eosIn{tp: tp, off: off, v: v})
			return true
		})
		if !ok {
			return
		}
		tw.recordPoll(who, tp, offs)
		e.hw[tp], e.lso[tp] = p.HighWatermark, p.LastStableOffset
	}
	e.fetching = e.fetching[:0]
	if failed {
		c.haveMeta = false
		c.backoff(backoffMillis)
		return
	}
	if len(e.buf) == 0 && e.cur != nil {
		// A poll of the transaction read nothing (the positions may
		// have moved past aborted records and markers).
		e.txPoll++
		e.setOffsets()
		w.tracef("eos txn %s poll %d: nothing, offsets %v", e.cur, e.txPoll, e.txOffsets)
	} else if len(e.buf) == 0 {
		c.backoff(c.w.rng.Int64N(e.f.pollPause + 1))
		return
	}
	e.step()
}

// begin opens a transaction for up to eosBatchMax of the records read
// (none: offsets only, when the positions moved past aborted records and
// markers).
func (e *eosProcessor) begin() {
	w := e.w()
	e.txIn = e.take()
	e.setOffsets()
	e.txGen, e.txMember = e.gen, e.member
	e.offsetsIn, e.offsetsDone, e.paused = false, false, false
	e.txPoll, e.txPolls = 1, 1
	if e.f.polls > 1 {
		e.txPolls += w.rng.IntN(e.f.polls)
	}
	e.n++
	e.txns++
	t := &txnRec{n: e.n, reads: e.txIn}
	outTPs, byTP := e.outputs(e.txIn)
	e.txnProducer.begin(t, outTPs, func(tp tpKey, _ int) []string { return byTP[tp] })
	w.tracef("eos txn %s: %d records, offsets %v", t, len(e.txIn), e.txOffsets)
	e.step()
}

// take takes up to eosBatchMax of the records read for the transaction.
func (e *eosProcessor) take() []eosIn {
	k := min(len(e.buf), eosBatchMax)
	in := slices.Clone(e.buf[:k])
	e.buf = e.buf[k:]
	return in
}

// setOffsets sets the offsets the transaction commits: the positions,
// but for the records read and left for the next transaction.
func (e *eosProcessor) setOffsets() {
	e.txOffsets = map[tpKey]int64{}
	for _, tp := range e.assigned {
		e.txOffsets[tp] = e.pos[tp]
	}
	for _, in := range e.buf { // left for the next transaction
		e.txOffsets[in.tp] = min(e.txOffsets[in.tp], in.off)
	}
}

// outputs maps inputs to their outputs, by output partition (in order of
// first use); it records each output's input.
func (e *eosProcessor) outputs(ins []eosIn) ([]tpKey, map[tpKey][]string) {
	var outTPs []tpKey
	byTP := map[tpKey][]string{}
	for _, in := range ins {
		out, o, ok := e.f.output(e, in)
		if !ok {
			continue
		}
		if _, ok := byTP[out]; !ok {
			outTPs = append(outTPs, out)
		}
		byTP[out] = append(byTP[out], o)
		e.f.input[o] = in.v
	}
	return outTPs, byTP
}

// pollAgain takes the open transaction's next poll, once every batch so
// far is acknowledged, if it has one left: the records read and not yet
// taken, or else a fetch (whose answer steps again). It reports false
// when the transaction reads no more: its polls are done, or a rebalance
// or the liveness phase began.
func (e *eosProcessor) pollAgain() bool {
	if e.txPoll >= e.txPolls {
		return false
	}
	if e.state != eosStable || e.c.stopping && !e.ew.finishing {
		e.txPolls = e.txPoll
		return false
	}
	if len(e.buf) == 0 {
		e.fetch()
		return true
	}
	w, t := e.w(), e.cur
	in := e.take()
	e.txPoll++
	e.txIn = append(e.txIn, in...)
	t.reads = e.txIn
	e.setOffsets()
	outTPs, byTP := e.outputs(in)
	e.txnProducer.add(outTPs, func(tp tpKey) []string { return byTP[tp] })
	w.tracef("eos txn %s poll %d: %d records, offsets %v", t, e.txPoll, len(in), e.txOffsets)
	e.step()
	return true
}

func (e *eosProcessor) onAddOffsets(code int16) {
	c := e.c
	switch {
	case code == 0:
		e.offsetsIn = true
		e.step()
	case e.coordinatorError(code):
	case fatalTxnErrors[code]:
		e.fatal(code, "adding offsets")
	default:
		c.w.tracef("eos txn %s add offsets: %s", e.cur, codeName(code))
		c.backoff(backoffMillis)
	}
}

// txnOffsetCommit commits the transaction's positions with the generation
// and member id it read them under (KIP-447); one time in eosPauseOneIn
// the processor first pauses beyond its session, and comes back a zombie.
func (e *eosProcessor) txnOffsetCommit() {
	w, c, t := e.w(), e.c, e.cur
	if e.chaos() && !e.paused && w.rng.IntN(eosPauseOneIn) == 0 {
		e.paused = true
		e.pauses++
		d := int64(w.opts.SessionTimeoutMillis) + 200 + w.rng.Int64N(1_000)
		e.pauseTill = w.now + d
		w.tracef("eos txn %s: its processor pauses %dms", t, d)
		c.backoff(d)
		return
	}
	if e.coord == 0 {
		c.backoff(backoffMillis)
		return
	}
	req := kmsg.NewPtrTxnOffsetCommitRequest()
	req.SetVersion(3)
	req.TransactionalID, req.Group, req.ProducerID, req.ProducerEpoch = e.id, e.f.group, t.pid, t.epoch
	req.Generation, req.MemberID = e.txGen, e.txMember
	for _, tp := range sortedTPKeys(e.txOffsets) {
		if n := len(req.Topics); n == 0 || req.Topics[n-1].Topic != tp.topic {
			rt := kmsg.NewTxnOffsetCommitRequestTopic()
			rt.Topic = tp.topic
			req.Topics = append(req.Topics, rt)
		}
		rt := &req.Topics[len(req.Topics)-1]
		rp := kmsg.NewTxnOffsetCommitRequestTopicPartition()
		rp.Partition, rp.Offset, rp.LeaderEpoch = tp.part, e.txOffsets[tp], -1
		rt.Partitions = append(rt.Partitions, rp)
	}
	e.send(e.coord, req, waitTxnOffsetCommit)
}

func (e *eosProcessor) onTxnOffsetCommit(r *kmsg.TxnOffsetCommitResponse) {
	c, t := e.c, e.cur
	code := int16(0)
	for _, rt := range r.Topics {
		for _, rp := range rt.Partitions {
			if rp.ErrorCode != 0 {
				code = rp.ErrorCode
			}
		}
	}
	switch code {
	case 0:
		e.offsetsDone = true
		e.step()
	case kerr.NotCoordinator.Code, kerr.CoordinatorNotAvailable.Code:
		e.coord = 0
		c.backoff(backoffMillis)
	case kerr.CoordinatorLoadInProgress.Code, kerr.ConcurrentTransactions.Code, kerr.UnknownTopicOrPartition.Code:
		c.backoff(backoffMillis)
	case kerr.ProducerFenced.Code, kerr.InvalidProducerEpoch.Code, kerr.InvalidProducerIDMapping.Code:
		e.fatal(code, "committing offsets")
	default:
		// ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID, REBALANCE_IN_PROGRESS,
		// INVALID_TXN_STATE, ...: the partitions may have moved on;
		// abort, and read from the committed offsets again.
		c.w.tracef("eos txn %s offsets generation %d: %s", t, e.txGen, codeName(code))
		e.ew.tw.decide(t, txnAborted, "its offsets were refused: "+codeName(code))
		e.endTxn()
	}
}

// decide commits (or, one time in eosCrashOneTxnIn, crashes first).
func (e *eosProcessor) decide() {
	w, t := e.w(), e.cur
	if e.chaos() && w.rng.IntN(eosCrashOneTxnIn) == 0 {
		e.crashAll("before ending " + t.String())
		return
	}
	e.commits++
	e.ew.tw.decide(t, txnCommitting, "")
	e.endTxn()
	if e.cur != nil && e.chaos() && w.rng.IntN(eosCrashOneCommitIn) == 0 {
		e.crashAll("just after sending EndTxn(commit)")
	}
}

// crashAll crashes the whole processor: its producer and its membership.
func (e *eosProcessor) crashAll(why string) {
	e.crash(why)
	e.a.token = 0
	e.a.backoff(txnRestartMillisMin + e.w().rng.Int64N(txnRestartMillisMax-txnRestartMillisMin+1))
	e.member, e.state, e.coord = "", eosJoin, 0
	e.revoke()
}

// txnEnded is called when the producer's transaction ended: committed
// (the positions are committed), or aborted, fenced or crashed (read
// from the committed offsets again).
func (e *eosProcessor) txnEnded(t *txnRec, committed bool) {
	if committed && e.state == eosStable && e.gen == e.txGen {
		for tp, o := range e.txOffsets {
			e.committed[tp] = o
		}
		e.w().tracef("eos c%d committed %v", e.c.idx, e.committed)
	} else if e.state == eosStable {
		e.buf, e.needOffsets = nil, true
		e.posGen++
	}
	e.txIn, e.txOffsets = nil, nil
}

// --- the end ---

// finish turns the processors' faults off for the last stretch.
func (ew *eosWorld) finish() {
	ew.finishing = true
	for _, e := range ew.procs {
		// At the end only once a fetch of the phase says so.
		clear(e.hw)
		clear(e.lso)
		for _, c := range []*client{e.a, e.c} {
			c.stopping = false
			if c.wait == waitNothing {
				c.backoff(1)
			}
		}
	}
}

// done reports whether every flow's processors have committed the end of
// every partition they read.
func (ew *eosWorld) done() bool {
	for _, f := range ew.flows {
		if !f.done() {
			return false
		}
	}
	return true
}

// done reports whether the flow's processors have committed the end of
// every partition they read: each partition assigned (in a stable
// generation) to a processor whose committed offset is its last fetch's
// high watermark, that one stable, and no transaction in flight anywhere
// in the flow. A partition the flow also writes may have grown since
// that fetch (another processor's transaction wrote it): its committed
// offset must also reach the end of its committed log.
func (f *eosFlow) done() bool {
	for _, e := range f.procs {
		if e.cur != nil || e.restarting {
			return false
		}
	}
	for _, tp := range f.inputs {
		ok := false
		for _, e := range f.procs {
			if e.state == eosStable && !e.needOffsets && slices.Contains(e.assigned, tp) && len(e.buf) == 0 &&
				e.committed[tp] == e.pos[tp] && e.pos[tp] >= e.hw[tp] && e.lso[tp] == e.hw[tp] && haveKey(e.hw, tp) &&
				(tp.topic != f.writes || e.pos[tp] >= f.ew.tw.w.check.log(tp).end) {
				ok = true
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

func haveKey(m map[tpKey]int64, tp tpKey) bool {
	_, ok := m[tp]
	return ok
}

// behind describes, for a liveness failure, where the processors are.
func (ew *eosWorld) behind() string {
	var s []string
	for _, e := range ew.procs {
		s = append(s, fmt.Sprintf("c%d %q generation %d state %d assigned %v positions %v committed %v hw %v lso %v buffered %d txn %v",
			e.c.idx, e.member, e.gen, e.state, e.assigned, e.pos, e.committed, e.hw, e.lso, len(e.buf), e.cur))
	}
	return strings.Join(s, "; ")
}

// check holds a reader that read every partition to the end to
// exactly-once processing, flow by flow.
func (ew *eosWorld) check(r *txnReader) []Failure {
	var fs []Failure
	for _, f := range ew.flows {
		fs = append(fs, f.check(r)...)
	}
	return fs
}

// check holds a reader that read every partition to the end to the
// flow's exactly-once processing: every value the flow processes that
// the reader delivered is in the output of exactly one transaction the
// reader delivered, and the reader delivered the input of every output
// it delivered.
func (f *eosFlow) check(r *txnReader) []Failure {
	tw := f.ew.tw
	outputs := map[string][]string{} // input -> outputs delivered
	var outs []string
	for v := range r.seen {
		if in, ok := f.input[v]; ok {
			outputs[in] = append(outputs[in], v)
			outs = append(outs, v)
		}
	}
	slices.Sort(outs)
	var fs []Failure
	fail := func(kind, format string, args ...any) {
		if len(fs) < failuresPerCheck {
			fs = append(fs, Failure{Kind: kind, AtMillis: tw.w.now, Detail: fmt.Sprintf(format, args...)})
		}
	}
	for _, o := range outs {
		in := f.input[o]
		if _, ok := r.seen[in]; !ok {
			fail(FailEOSUncommittedInput, "txn reader c%d delivered %q, the output of %q (group %s), which it never delivered (%s)",
				r.c.idx, o, in, f.group, tw.txns[tw.values[in].txn].outcome())
		}
	}
	var ins []string
	for v := range r.seen {
		if ref, ok := tw.values[v]; ok && f.processes(v, ref) {
			ins = append(ins, v)
		}
	}
	slices.Sort(ins)
	for _, in := range ins {
		switch o := outputs[in]; {
		case len(o) > 1:
			slices.Sort(o)
			fail(FailEOSDuplicate, "txn reader c%d delivered %q in the output of %d transactions of group %s: %s", r.c.idx, in, len(o), f.group, strings.Join(o, ", "))
		case len(o) == 0:
			fail(FailEOSLost, "txn reader c%d delivered input %q (%s), and no output of it, after the processors of group %s committed every partition's end",
				r.c.idx, in, tw.values[in].tp, f.group)
		}
	}
	return fs
}

// failuresPerCheck bounds the failures one end check reports.
const failuresPerCheck = 10

// stats counts the processors' work for the trace.
func (ew *eosWorld) stats() string {
	var s []string
	for _, e := range ew.procs {
		s = append(s, fmt.Sprintf("eos c%d txns %d commits %d rebalances %d crashes %d pauses %d fenced %d", e.c.idx, e.txns, e.commits, e.rebalances, e.crashes, e.pauses, e.fenced))
	}
	return strings.Join(s, " ")
}
