package sim

// Transactional writers: Kafka transactional producers, through Gregor's
// transaction coordinator, behaving as franz-go's kgo and the Java client
// do:
//
//   - FindCoordinator (key type 1) for the transactional id, then
//     InitProducerId with the id and a transaction timeout;
//   - AddPartitionsToTxn for the partitions a transaction writes before
//     its first batch to each (in one or two rounds), then Produce with
//     the transactional id, one transactional batch per partition, each
//     retried with its sequence until acknowledged;
//   - EndTxn v5, commit or abort, retried until answered; the answer
//     names the producer id and epoch of the next transaction (KIP-890);
//   - NOT_COORDINATOR and COORDINATOR_NOT_AVAILABLE: look the coordinator
//     up again; COORDINATOR_LOAD_IN_PROGRESS and CONCURRENT_TRANSACTIONS:
//     the same request again after a pause;
//   - PRODUCER_FENCED, INVALID_PRODUCER_EPOCH, INVALID_PRODUCER_ID_MAPPING
//     and INVALID_TXN_STATE are fatal to the producer: the application
//     makes a new one, which starts over with InitProducerId (fencing the
//     one that fenced it, if any);
//   - a batch it gives up on (delivery timeout, or refused with
//     OUT_OF_ORDER_SEQUENCE_NUMBER and the like) aborts the transaction,
//     and the producer bumps its epoch (KIP-360: InitProducerId naming its
//     producer id and epoch) before the next, so that the batch, should it
//     land later, cannot join a later transaction.
//
// An EndTxn(commit) that times out is retried, or, one time in two, the
// application gives up and makes a new producer (which aborts the
// transaction unless the coordinator recorded the commit). Faults of their
// own: a writer crashes (one request in a hundred, with
// the request in flight; one transaction in fifteen before it ends it; one
// commit in eight just after sending EndTxn) and comes back 0.2-2 s later
// as a new producer of the same transactional id, whose InitProducerId
// aborts what the old one left open; or it pauses before ending a
// transaction (one in twelve), half the time beyond its transaction
// timeout, and carries on as a zombie. Two writers share one
// transactional id half the time there are two.
//
// What the checker knows of each transaction (txnRec.state): open until
// the writer sends EndTxn(commit), committing from then on, committed once
// one is acknowledged; aborted once it sends EndTxn(abort), or is fenced,
// crashes or starts over before committing, since then nothing can commit
// it. A transaction still committing at the end is indeterminate: either
// outcome is allowed, but all or nothing of it.

import (
	"slices"
	"strconv"

	"github.com/gregor-streaming/gregor/engine/batch"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// What a transactional client waits for (beyond client.go's kinds).
const (
	waitTxnCoordinator waitKind = iota + 140
	waitAddPartitions
	waitEndTxn
	waitAddOffsets
	waitTxnOffsetCommit
)

// The writers' faults and limits.
const (
	txnCrashOneRequestIn = 100   // a writer crashes with a request in flight
	txnCrashOneTxnIn     = 15    // ... before ending a transaction
	txnCrashOneCommitIn  = 8     // ... just after sending EndTxn(commit)
	txnPauseOneIn        = 12    // a writer pauses mid-transaction (beyond its timeout half the time)
	txnRestartMillisMin  = 200   // a crashed writer's new producer starts after
	txnRestartMillisMax  = 2_000 // ...
	txnDeliveryMillis    = 5_000 // a batch not acknowledged within this is given up
	txnRetryMillis       = 20    // CONCURRENT_TRANSACTIONS: kgo's first backoff
	txnGiveUpOneIn       = 2     // a producer whose EndTxn(commit) timed out starts over
)

// txnTimeouts are the transaction timeouts a producer asks for.
var txnTimeouts = []int32{2_000, 4_000, 8_000}

// fatalTxnErrors end the producer: the application makes a new one.
var fatalTxnErrors = map[int16]bool{
	kerr.ProducerFenced.Code:           true,
	kerr.InvalidProducerEpoch.Code:     true,
	kerr.InvalidProducerIDMapping.Code: true,
	kerr.InvalidTxnState.Code:          true,
}

// txnProducer is the state of one transactional producer: a writer's, or
// a consume-transform-produce processor's (eos.go). A crash or a fatal
// error replaces it with a new one (the incarnation counts them).
type txnProducer struct {
	c         *client
	tw        *txnWorld
	id        string // the transactional id
	inc       int    // incarnation
	timeoutMs int32
	coord     int32 // the coordinator, 0 until found
	pid       int64 // -1 until InitProducerId answers
	epoch     int16
	bump      bool // the next InitProducerId bumps (pid, epoch) (KIP-360)
	// restarting: a new producer after a crash or a fatal error, which
	// gets its producer id even in the liveness phase (a restarted
	// application initializes its producer before it stops), aborting
	// what the last one left open.
	restarting bool
	seqs       map[tpKey]int32
	cur        *txnRec
	sent       []*txnPart
	busy       attempt // stands in c.pending while a transaction runs
	owner      txnStepper

	inits, fenced, crashes, pauses, bumps, gaveUp int
}

func newTxnProducer(c *client, tw *txnWorld, id string, owner txnStepper) *txnProducer {
	p := &txnProducer{c: c, tw: tw, id: id, pid: -1, seqs: map[tpKey]int32{}, owner: owner}
	p.timeoutMs = txnTimeouts[c.w.rng.IntN(len(txnTimeouts))]
	return p
}

// setCur starts or ends the current transaction. While one runs, the
// client has a pending entry, so the liveness phase waits for it.
func (p *txnProducer) setCur(t *txnRec) {
	p.cur = t
	p.c.pending = nil
	if t != nil {
		p.c.pending = []*attempt{&p.busy}
	}
}

// prepare takes the producer's next step if it lacks metadata, its
// coordinator or (between transactions) a producer id or epoch bump. It
// reports false when it sent a request for one.
func (p *txnProducer) prepare() bool {
	c := p.c
	switch {
	case !c.haveMeta:
		p.tw.metadata(c)
	case p.coord == 0:
		req := findCoordinatorRequest(c.w, p.id)
		req.CoordinatorType = 1
		c.request(c.randomBroker(), req, waitTxnCoordinator)
	case p.pid < 0 || p.bump:
		req := kmsg.NewPtrInitProducerIDRequest()
		req.SetVersion(4)
		req.TransactionalID = &p.id
		req.TransactionTimeoutMillis = p.timeoutMs
		req.ProducerID, req.ProducerEpoch = -1, -1
		if p.bump {
			req.ProducerID, req.ProducerEpoch = p.pid, p.epoch
		}
		p.send(p.coord, req, waitInitPID)
	default:
		return true
	}
	return false
}

// send sends a request of the producer; one in txnCrashOneRequestIn, the
// producer then crashes with it in flight.
func (p *txnProducer) send(to int32, req kmsg.Request, wait waitKind) {
	c := p.c
	c.request(to, req, wait)
	if !c.stopping && c.w.rng.IntN(txnCrashOneRequestIn) == 0 {
		p.crash("with a request in flight (key " + strconv.Itoa(int(req.Key())) + ")")
	}
}

// crash ends this producer as a crashed process would: what it sent stays
// in flight, its answers go nowhere, and a new producer of the same
// transactional id starts after a while. Its open transaction can no
// longer commit; one it was committing stays indeterminate.
func (p *txnProducer) crash(why string) {
	c := p.c
	p.crashes++
	c.w.tracef("txn producer c%d %q inc %d crashes %s", c.idx, p.id, p.inc, why)
	p.end("its producer crashed " + why)
	c.backoff(txnRestartMillisMin + c.w.rng.Int64N(txnRestartMillisMax-txnRestartMillisMin+1))
}

// fatal ends this producer on a fatal error: the application makes a new
// one after a pause.
func (p *txnProducer) fatal(code int16, what string) {
	c := p.c
	p.fenced++
	c.w.tracef("txn producer c%d %q inc %d %s: %s", c.idx, p.id, p.inc, what, codeName(code))
	p.end(what + ": " + codeName(code))
	c.backoff(backoffMillis + c.w.rng.Int64N(txnRestartMillisMin))
}

// end forgets the producer: the next one starts from scratch.
func (p *txnProducer) end(why string) {
	c := p.c
	if t := p.cur; t != nil {
		if t.state == txnOpen {
			p.tw.decide(t, txnAborted, why)
		}
		if e, ok := p.owner.(txnEnder); ok {
			e.txnEnded(t, false)
		}
	}
	p.setCur(nil)
	p.sent = nil
	c.token = 0 // answers to what it sent are dropped
	c.haveMeta = false
	p.inc++
	p.coord, p.pid, p.bump, p.restarting = 0, -1, false, true
	clear(p.seqs)
	c.pending = []*attempt{&p.busy} // the liveness phase waits for the restart
}

// coordinatorError handles the errors every coordinator request shares;
// it reports false for any other.
func (p *txnProducer) coordinatorError(code int16) bool {
	c := p.c
	switch code {
	case kerr.NotCoordinator.Code, kerr.CoordinatorNotAvailable.Code:
		p.coord = 0
		c.backoff(backoffMillis)
	case kerr.CoordinatorLoadInProgress.Code:
		c.backoff(backoffMillis)
	case kerr.ConcurrentTransactions.Code:
		c.backoff(txnRetryMillis)
	default:
		return false
	}
	return true
}

// onCoordinator takes a FindCoordinator answer.
func (p *txnProducer) onCoordinator(r *kmsg.FindCoordinatorResponse) {
	c := p.c
	node, code := findCoordinatorResult(r, p.id)
	if code != 0 || node < 1 || int(node) > len(c.w.nodes) {
		c.w.tracef("txn producer c%d %q coordinator: %d %s", c.idx, p.id, node, codeName(code))
		c.backoff(backoffMillis)
		return
	}
	p.coord = node
	c.think()
}

// onInit takes an InitProducerId answer.
func (p *txnProducer) onInit(r *kmsg.InitProducerIDResponse) {
	c := p.c
	switch code := r.ErrorCode; {
	case code == 0:
		if p.bump {
			p.bumps++
		}
		p.pid, p.epoch, p.bump, p.restarting = r.ProducerID, r.ProducerEpoch, false, false
		if p.cur == nil {
			c.pending = nil
		}
		p.inits++
		clear(p.seqs)
		c.w.tracef("txn producer c%d %q inc %d producer %d epoch %d", c.idx, p.id, p.inc, p.pid, p.epoch)
		c.think()
	case p.coordinatorError(code):
	case p.bump && fatalTxnErrors[code]:
		// Fenced while bumping: start over with a new producer.
		p.fatal(code, "bumping its epoch")
	default:
		c.w.tracef("txn producer c%d %q init: %s", c.idx, p.id, codeName(code))
		c.backoff(backoffMillis)
	}
}

// begin opens a transaction: 1 to 3 of parts' partitions, each with
// values made by value(k), written in one round or two.
func (p *txnProducer) begin(t *txnRec, tps []tpKey, values func(tp tpKey, k int) []string) {
	w := p.c.w
	t.writer, t.inc, t.txnID, t.pid, t.epoch = p.c.idx, p.inc, p.id, p.pid, p.epoch
	id := len(p.tw.txns)
	k := 0
	rounds := 1 + w.rng.IntN(2)
	for i, tp := range tps {
		vs := values(tp, k)
		k += len(vs)
		part := &txnPart{tp: tp, values: vs, round: min(i, rounds-1)}
		for _, v := range vs {
			p.tw.values[v] = txnValue{txn: id, tp: tp}
		}
		t.parts = append(t.parts, part)
	}
	p.tw.txns = append(p.tw.txns, t)
	p.setCur(t)
	w.tracef("txn %s begin on %d partitions", t, len(t.parts))
}

// add adds batches to the open transaction, every batch of which is
// acknowledged: one to each of tps, with values(tp), in a round of their
// own after the others. A partition the transaction already added needs
// no AddPartitionsToTxn again.
func (p *txnProducer) add(tps []tpKey, values func(tp tpKey) []string) {
	t := p.cur
	id := slices.Index(p.tw.txns, t)
	round := 0
	for _, part := range t.parts {
		round = max(round, part.round+1)
	}
	for _, tp := range tps {
		part := &txnPart{tp: tp, values: values(tp), round: round}
		part.added = slices.ContainsFunc(t.parts, func(q *txnPart) bool { return q.tp == tp && q.added })
		for _, v := range part.values {
			p.tw.values[v] = txnValue{txn: id, tp: tp}
		}
		t.parts = append(t.parts, part)
	}
}

// step takes the open transaction's next step; it reports false when
// every batch is acknowledged (the caller decides).
func (p *txnProducer) step() bool {
	t := p.cur
	round := 0
	for _, part := range t.parts {
		if !part.acked {
			round = part.round
			break
		}
	}
	var add []*txnPart
	for _, part := range t.parts {
		if part.round == round && !part.added {
			add = append(add, part)
		}
	}
	switch {
	case len(add) > 0:
		p.addPartitions(add)
	case slices.ContainsFunc(t.parts, func(part *txnPart) bool { return !part.acked }):
		p.produce(round)
	default:
		return false
	}
	return true
}

func (p *txnProducer) addPartitions(add []*txnPart) {
	t := p.cur
	req := kmsg.NewPtrAddPartitionsToTxnRequest()
	req.SetVersion(3)
	req.TransactionalID, req.ProducerID, req.ProducerEpoch = p.id, t.pid, t.epoch
	p.sent = p.sent[:0]
	for _, part := range add {
		if n := len(req.Topics); n == 0 || req.Topics[n-1].Topic != part.tp.topic {
			rt := kmsg.NewAddPartitionsToTxnRequestTopic()
			rt.Topic = part.tp.topic
			req.Topics = append(req.Topics, rt)
		}
		rt := &req.Topics[len(req.Topics)-1]
		rt.Partitions = append(rt.Partitions, part.tp.part)
		p.sent = append(p.sent, part)
	}
	p.send(p.coord, req, waitAddPartitions)
}

func (p *txnProducer) onAddPartitions(r *kmsg.AddPartitionsToTxnResponse) {
	c := p.c
	worst := int16(0)
	for _, rt := range r.Topics {
		for _, rp := range rt.Partitions {
			if rp.ErrorCode != 0 && (worst == 0 || worst == kerr.OperationNotAttempted.Code) {
				worst = rp.ErrorCode
			}
		}
	}
	sent := p.sent
	p.sent = nil
	switch {
	case worst == 0:
		for _, part := range sent {
			part.added = true
		}
		p.next()
	case p.coordinatorError(worst):
	case fatalTxnErrors[worst]:
		p.fatal(worst, "adding partitions")
	default:
		c.w.tracef("txn %s add partitions: %s", p.cur, codeName(worst))
		c.haveMeta = false
		c.backoff(backoffMillis)
	}
}

// produce sends the unacknowledged batches of the round that one broker
// leads: that of the first such partition.
func (p *txnProducer) produce(round int) {
	c, t := p.c, p.cur
	i := slices.IndexFunc(t.parts, func(part *txnPart) bool { return part.round == round && !part.acked })
	to := txnLeader(c, t.parts[i].tp)
	if to == 0 {
		return
	}
	req := kmsg.NewPtrProduceRequest()
	req.SetVersion(9)
	req.Acks = -1
	req.TimeoutMillis = produceTimeoutMs
	req.TransactionID = &p.id
	p.sent = p.sent[:0]
	for _, part := range t.parts {
		if part.round != round || part.acked || c.leaders[part.tp] != to {
			continue
		}
		if part.sentAt == 0 {
			part.sentAt = c.w.now
			part.seq = p.seqs[part.tp]
			p.seqs[part.tp] += int32(len(part.values))
		}
		opts := batch.BuildOptions{ProducerID: t.pid, ProducerEpoch: t.epoch, BaseSequence: part.seq,
			FirstTimestamp: c.w.now + epochMillis, Transactional: true}
		addProduce(req, part.tp, opts, valueRecords(part.values))
		p.sent = append(p.sent, part)
	}
	p.send(to, req, waitProduce)
}

// onProduce takes a Produce answer: a batch given up aborts the
// transaction.
func (p *txnProducer) onProduce(r *kmsg.ProduceResponse) {
	c, t := p.c, p.cur
	sent := p.sent
	p.sent = nil
	retry, giveUp := false, false
	for _, part := range sent {
		pr, ok := produceCode(r, part.tp)
		switch {
		case ok && pr.ErrorCode == 0:
			part.acked = true
		case ok && fatalTxnErrors[pr.ErrorCode]:
			p.fatal(pr.ErrorCode, "producing to "+part.tp.String())
			return
		case ok && definiteProduceErrors[pr.ErrorCode]:
			c.w.tracef("txn %s: %s refused the batch: %s", t, part.tp, codeName(pr.ErrorCode))
			giveUp = true
		default:
			if ok {
				c.w.tracef("txn %s: %s batch: %s", t, part.tp, codeName(pr.ErrorCode))
			}
			if c.w.now-part.sentAt >= txnDeliveryMillis {
				c.w.tracef("txn %s: %s batch given up after %dms", t, part.tp, c.w.now-part.sentAt)
				giveUp = true
			}
			retry = true
		}
	}
	switch {
	case giveUp:
		p.abortFailed()
	case retry:
		c.haveMeta = false
		c.backoff(backoffMillis)
	default:
		p.next()
	}
}

// abortFailed aborts the transaction after a batch was given up; the
// producer bumps its epoch once it is aborted.
func (p *txnProducer) abortFailed() {
	t := p.cur
	t.failed = true
	p.tw.decide(t, txnAborted, "a batch was given up")
	p.endTxn()
}

// endTxn sends EndTxn for the decided transaction; after a commit, one in
// txnCrashOneCommitIn the producer crashes with it in flight.
func (p *txnProducer) endTxn() {
	c, t := p.c, p.cur
	req := kmsg.NewPtrEndTxnRequest()
	// v5 (transactions v2, KIP-890): the epoch is bumped at every end, so
	// that a delayed EndTxn of this transaction cannot end the next one.
	// Under v1 (EndTxn v3) nothing tells the two apart: a retried
	// EndTxn(commit) that arrives after the next transaction began
	// commits it (seeds 13 and 88, as Jepsen found of Kafka).
	req.SetVersion(5)
	req.TransactionalID, req.ProducerID, req.ProducerEpoch = p.id, t.pid, t.epoch
	req.Commit = t.state != txnAborted
	c.request(p.coord, req, waitEndTxn)
	if req.Commit && !c.stopping && c.w.rng.IntN(txnCrashOneCommitIn) == 0 {
		p.crash("just after sending EndTxn(commit)")
	}
}

func (p *txnProducer) onEndTxn(r *kmsg.EndTxnResponse) {
	c, t := p.c, p.cur
	switch code := r.ErrorCode; {
	case code == 0:
		if t.state == txnCommitting {
			p.tw.decide(t, txnCommitted, "")
		}
		if r.ProducerEpoch >= 0 && (r.ProducerID != p.pid || r.ProducerEpoch != p.epoch) {
			// The next transaction's producer id and epoch; sequences
			// start again at 0 under a new epoch.
			p.pid, p.epoch = r.ProducerID, r.ProducerEpoch
			clear(p.seqs)
		}
		c.w.tracef("txn %s ended %s", t, txnStateNames[t.state])
		if t.failed || slices.ContainsFunc(t.parts, func(part *txnPart) bool { return part.sentAt > 0 && !part.acked }) {
			p.bump = true // a batch may still land: not under this epoch
		}
		p.setCur(nil)
		if e, ok := p.owner.(txnEnder); ok {
			e.txnEnded(t, t.state == txnCommitted)
		}
		c.backoff(c.w.rng.Int64N(txnThinkMillisMax + 1))
	case p.coordinatorError(code):
	case fatalTxnErrors[code]:
		p.fatal(code, "ending "+t.String())
	default:
		c.w.tracef("txn %s end: %s", t, codeName(code))
		c.backoff(backoffMillis)
	}
}

// next takes the owner's next step.
func (p *txnProducer) next() { p.owner.step() }

// txnStepper is the owner of a producer: a writer or a processor.
type txnStepper interface{ step() }

// txnEnder is an owner told when its transaction ends: committed, or not
// (aborted, or the producer crashed or was fenced).
type txnEnder interface {
	txnEnded(t *txnRec, committed bool)
}

// onTimer handles the client's timer: a request timed out (a coordinator
// request's coordinator is looked up again) or a pause ended. It reports
// false for a stale timer.
func (p *txnProducer) onTimer(gen uint64) bool {
	c := p.c
	wait := c.wait
	ok, timedOut := txnTimer(c, gen)
	if !ok {
		return false
	}
	p.sent = nil
	if timedOut && wait != waitProduce && wait != waitMetadata && wait != waitTxnCoordinator && wait != waitFetch {
		p.coord = 0
	}
	if t := p.cur; timedOut && wait == waitEndTxn && t.state == txnCommitting && !c.stopping && c.w.rng.IntN(txnGiveUpOneIn) == 0 {
		// The application gives up on a commit that timed out (the Java
		// client's TimeoutException) and makes a new producer, whose
		// InitProducerId aborts the transaction if the coordinator has
		// not recorded the commit.
		p.gaveUp++
		c.w.tracef("txn producer c%d %q inc %d gives up on EndTxn(commit) of %s", c.idx, p.id, p.inc, t)
		p.end("its producer gave up on EndTxn(commit)")
		c.backoff(backoffMillis + c.w.rng.Int64N(txnRestartMillisMin))
		return false
	}
	return true
}

// response routes the producer's answers; it reports false for one that
// is not a producer request's.
func (p *txnProducer) response(resp kmsg.Response) bool {
	c := p.c
	switch r := resp.(type) {
	case *kmsg.MetadataResponse:
		p.tw.onMetadata(c, r)
		p.next()
	case *kmsg.FindCoordinatorResponse:
		p.onCoordinator(r)
	case *kmsg.InitProducerIDResponse:
		p.onInit(r)
	case *kmsg.AddPartitionsToTxnResponse:
		p.onAddPartitions(r)
	case *kmsg.ProduceResponse:
		p.onProduce(r)
	case *kmsg.EndTxnResponse:
		p.onEndTxn(r)
	default:
		return false
	}
	return true
}

// --- writers ---

// txnWriter writes transactions of 1-3 batches of 1-3 records (values
// w<client>.<n>.<k>) to the tx partitions, and commits two in three.
type txnWriter struct {
	*txnProducer
	n       int
	commits int
	aborts  int
}

func (x *txnWriter) step() {
	c := x.c
	if c.w.stopped {
		return
	}
	if x.cur == nil && c.stopping && !x.restarting {
		c.wait = waitNothing
		return
	}
	if !x.prepare() {
		return
	}
	if x.cur == nil && c.stopping {
		c.wait = waitNothing
		return
	}
	if x.cur == nil {
		x.n++
		t := &txnRec{n: x.n}
		perm := c.w.rng.Perm(len(x.tw.tps))
		var tps []tpKey
		for _, i := range perm[:1+c.w.rng.IntN(len(perm))] {
			tps = append(tps, x.tw.tps[i])
		}
		x.begin(t, tps, func(tp tpKey, k int) []string {
			var vs []string
			for range 1 + c.w.rng.IntN(txnValuesMax) {
				vs = append(vs, "w"+strconv.Itoa(c.idx)+"."+strconv.Itoa(x.n)+"."+strconv.Itoa(k))
				k++
			}
			return vs
		})
	}
	t := x.cur
	if t.state != txnOpen {
		x.endTxn()
		return
	}
	if x.txnProducer.step() {
		return
	}
	x.decide()
}

// decide ends a transaction whose batches are all acknowledged: commit
// (two in three) or abort; or first pause beyond the transaction timeout
// (a zombie after), or crash before ending it.
func (x *txnWriter) decide() {
	c, t, w := x.c, x.cur, x.c.w
	if !c.stopping && !t.paused && w.rng.IntN(txnPauseOneIn) == 0 {
		t.paused = true
		x.pauses++
		// A short pause, or one beyond the timeout and the coordinator's
		// next look for expired transactions (every second).
		d := 100 + w.rng.Int64N(900)
		if w.rng.IntN(2) == 0 {
			d += int64(x.timeoutMs) + 1_000
		}
		w.tracef("txn %s: its producer pauses %dms", t, d)
		c.backoff(d)
		return
	}
	if !c.stopping && w.rng.IntN(txnCrashOneTxnIn) == 0 {
		x.crash("before ending " + t.String())
		return
	}
	if w.rng.IntN(txnAbortOneIn) != 0 {
		x.tw.decide(t, txnCommitting, "")
		x.commits++
	} else {
		x.tw.decide(t, txnAborted, "its writer aborted it")
		x.aborts++
	}
	x.endTxn()
}

func (x *txnWriter) onResponse(tok uint64, resp kmsg.Response) {
	c := x.c
	if !txnAccept(c, tok) {
		return
	}
	c.wait = waitNothing
	x.response(resp)
}

func (x *txnWriter) onTimer(gen uint64) {
	if x.txnProducer.onTimer(gen) {
		x.step()
	}
}
