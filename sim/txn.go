package sim

// The transactional workload. Writers are Kafka transactional producers
// (txnwriter.go) that go through Gregor's transaction coordinator
// (engine/txn_coordinator.go): they crash, pause like zombies and share
// transactional ids, so fencing, timeouts and the coordinator's recovery
// are exercised under every fault. Read_committed readers filter what they
// fetch exactly as Kafka's consumer does, and what they deliver is checked
// against what the writers know of each transaction's outcome: G1a
// (aborted read), precommitted-read, lost-committed, fractured-read,
// nonmonotonic-poll and duplicate.

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/gregor-streaming/gregor/engine"
	"github.com/gregor-streaming/gregor/engine/batch"
	"github.com/gregor-streaming/gregor/linearizability"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// txnByDefault: whether NewOptions turns the transactional workload on.
// It was off while an engine bug stalled it on 15 of seeds 1..100 (state
// transfer refused control batches, TestRegression_RepairRefusesTxnMarkers,
// fixed in dcbe2ab); with it on, seeds 1..100 pass with and without
// --disk-errors (seed 77's split-assignment was a checker artefact:
// TestRegression_LateJoinAnswerOwned).
const txnByDefault = true

// txnOn reports whether the run has the transactional workload: Txn, or
// a knob only it catches.
func (o Options) txnOn() bool {
	return o.Txn || o.Unsafe == UnsafeLSOIsHW || o.Unsafe == UnsafeNoFencing || o.Unsafe == UnsafeMarkerBeforePrepare || o.Unsafe == UnsafeLateMarker
}

// markerEcho: a payload between brokers that carries a transaction
// coordinator's marker request is delivered a second time, late, one time
// in markerEchoOneIn (in runs with faults and the transactional
// workload): a duplicate held in the network (docs/fault-model.md) that
// may arrive after the producer's next transaction has begun in the
// partition, which the marker must then not end.
func (w *World) markerEcho(n *node, to int32, payload []byte, extra int64) {
	if !w.faults || !w.opts.txnOn() || !engine.CarriesMarkerRequest(payload) || w.rng.IntN(markerEchoOneIn) != 0 {
		return
	}
	d := extra + markerEchoMillisMin + w.rng.Int64N(markerEchoMillisMax-markerEchoMillisMin)
	w.tracef("marker echo %d -> %d in %dms", n.id, to, d)
	w.schedule(d, &event{kind: evDeliver, broker: to, from: n.id, payload: bytes.Clone(payload)})
}

// afterEndTxn: a broker that has just handled an EndTxn crashes soon
// after, one time in txnCrashCoordOneIn (in seeds that crash brokers at
// all): the coordinator may die between the decision and its record, or
// between its record and the markers, with some markers out.
func (w *World) afterEndTxn(n *node) {
	if !w.faults || w.opts.CrashEveryMillis == 0 || w.rng.IntN(txnCrashCoordOneIn) != 0 {
		return
	}
	d := 1 + w.rng.Int64N(txnCrashCoordMillisMax)
	w.tracef("txn coordinator %d crashes in %dms", n.id, d)
	w.schedule(d, &event{kind: evCrashBroker, broker: n.id, gen: n.gen})
}

// The transactional workload's bounds.
const (
	txnTopic      = "tx"
	txnPartitions = 3
	txnValuesMax  = 3 // records in one transactional batch
	txnAbortOneIn = 3 // a writer aborts one transaction in this many
	// txnPhaseMillis: the readers' bound to read to the end after the
	// final read. 20 s until seed 154 needed 22: ping-pong processors
	// answer each other's records one transaction at a time, and their
	// producers still crash now and then while they converge.
	txnPhaseMillis = 30_000
	// A broker that handled an EndTxn crashes within
	// txnCrashCoordMillisMax, one time in txnCrashCoordOneIn. (20 ms until
	// commit indexes went unsynced: the coordinator then writes its
	// record faster, and 10 ms keeps its crashes in that window. One in 5
	// until the readers asked ListOffsets' -1 and -2 in two requests:
	// seeds 1..50 then no longer caught marker-before-prepare, which one
	// in 3 does at 6, 16, 17 and 41.)
	txnCrashCoordOneIn     = 3
	txnCrashCoordMillisMax = 10
	// A payload carrying a marker request is echoed one time in
	// markerEchoOneIn, markerEchoMillisMin to markerEchoMillisMax later:
	// about a writer's pause between transactions (txnThinkMillisMax).
	markerEchoOneIn     = 4
	markerEchoMillisMin = 20
	markerEchoMillisMax = 400
	// txnStatePartitions: __transaction_state's partitions. Kafka's 50
	// would be 50 raft groups; with one writer or two, one coordinator
	// partition serves them as well as three did, for less.
	txnStatePartitions = 1
	// A writer pauses up to txnThinkMillisMax between transactions, a
	// reader up to txnPollMillisMax between polls (a fetch long-polls up
	// to fetchMaxWaitMillis as well): the workload costs a few percent of
	// a run's events, not the tenth that the other clients' pace cost.
	txnThinkMillisMax = 200
	txnPollMillisMax  = 200
)

// Failure kinds of the transactional workload (Jepsen's names). The
// readers also report linearizability's nonmonotonic-poll and duplicate.
const (
	// FailG1a: a read_committed reader delivered a record of a
	// transaction its writer aborted (an aborted read).
	FailG1a = "G1a"
	// FailPrecommittedRead: a reader delivered a record of a transaction
	// before its writer sent EndTxn(commit).
	FailPrecommittedRead = "precommitted-read"
	// FailLostCommitted: a reader that read every partition to its end
	// delivered none of a transaction whose EndTxn(commit) was
	// acknowledged.
	FailLostCommitted = "lost-committed"
	// FailFracturedRead: a reader that read every partition to its end
	// delivered some of a committed or indeterminate transaction's records
	// but not all (atomic visibility).
	FailFracturedRead = "fractured-read"
	// FailG0: a cycle of ww dependencies between committed transactions
	// (write cycle; elle.go says which edges are sound).
	FailG0 = "G0"
	// FailG1c: a cycle of ww and wr dependencies, at least one wr, between
	// committed transactions (circular information flow).
	FailG1c = "G1c"
)

// txnState is what the writers know of a transaction's outcome.
type txnState uint8

const (
	// txnOpen: its producer has not sent EndTxn(commit); it may still.
	txnOpen txnState = iota
	// txnCommitting: EndTxn(commit) was sent but not acknowledged; if it
	// stays so (the producer crashed or was fenced first), the outcome is
	// indeterminate.
	txnCommitting
	// txnCommitted: an EndTxn(commit) was acknowledged.
	txnCommitted
	// txnAborted: nothing can commit it any more: its producer sent
	// EndTxn(abort), or crashed, was fenced or started over before it sent
	// EndTxn(commit).
	txnAborted
)

var txnStateNames = [...]string{txnOpen: "open", txnCommitting: "committing", txnCommitted: "committed", txnAborted: "aborted"}

// txnPart is one partition's batch of a transaction.
type txnPart struct {
	tp     tpKey
	values []string
	round  int   // the round (0 or 1) whose AddPartitionsToTxn adds it
	added  bool  // AddPartitionsToTxn acknowledged it
	seq    int32 // its base sequence, once sent
	sentAt int64 // when it was first sent (0: not yet)
	acked  bool  // the batch was acknowledged
}

// txnRec is one transaction of one producer.
type txnRec struct {
	writer    int    // client index
	inc       int    // the client's producer incarnation
	txnID     string // transactional id
	n         int    // the client's transaction number
	pid       int64
	epoch     int16
	parts     []*txnPart
	state     txnState
	decidedAt int64   // when it left txnOpen (ms)
	why       string  // why it aborted
	paused    bool    // its producer paused in it
	failed    bool    // a batch was given up: it aborts, and the epoch is bumped
	reads     []eosIn // what a processor's transaction consumed (its wr dependencies)
}

func (t *txnRec) String() string {
	return fmt.Sprintf("%s (%q producer %d epoch %d)", t.name(), t.txnID, t.pid, t.epoch)
}

// name is the transaction's short name: its client and number.
func (t *txnRec) name() string { return fmt.Sprintf("w%d.%d", t.writer, t.n) }

// outcome describes what is known of the transaction for a failure's
// detail.
func (t *txnRec) outcome() string {
	s := txnStateNames[t.state]
	if t.state != txnOpen {
		s += fmt.Sprintf(" at %dms", t.decidedAt)
	}
	if t.why != "" {
		s += ": " + t.why
	}
	return s
}

// decide moves t to state (from open, or committing to committed).
func (tw *txnWorld) decide(t *txnRec, state txnState, why string) {
	t.state, t.why = state, why
	if state != txnCommitted {
		t.decidedAt = tw.w.now
	}
	tw.w.tracef("txn %s %s %s", t, txnStateNames[state], why)
}

// txnValue locates a written value: its transaction and partition.
type txnValue struct {
	txn int
	tp  tpKey
}

// txnActor is a transactional client's handler of its responses and
// timers (the world routes them here instead of client.onResponse).
type txnActor interface {
	onResponse(tok uint64, resp kmsg.Response)
	onTimer(gen uint64)
}

// txnWorld is the transactional workload's state and checks.
type txnWorld struct {
	w       *World
	tps     []tpKey // the tx topic's partitions: the writers' (and the processors' input)
	outTPs  []tpKey // the processors' output topics', if any (txo, pp)
	readTPs []tpKey // what readers read: tps, then outTPs
	txns    []*txnRec
	values  map[string]txnValue
	actors  map[int]txnActor // by client index
	creator *topicCreator
	writers []*txnWriter
	ids     []string // the writers' transactional ids
	readers []*txnReader
	eos     *eosWorld      // the consume-transform-produce processors (eos.go), or nil
	phase   bool           // the readers read to the end (after the final read)
	polls   []txnPoll      // the fetches that delivered two records or more (int-poll-skip)
	noted   map[string]int // anomalies noted as they were read, by kind (note)
}

func newTxnWorld(w *World) *txnWorld {
	tw := &txnWorld{w: w, values: map[string]txnValue{}, actors: map[int]txnActor{}}
	for p := range txnPartitions {
		tw.tps = append(tw.tps, tpKey{txnTopic, int32(p)})
	}
	tw.readTPs = tw.tps
	if w.opts.TxnProcessors > 0 {
		for p := range eosPartitions {
			tw.outTPs = append(tw.outTPs, tpKey{eosTopic, int32(p)})
		}
	}
	if w.opts.TxnPingPong > 0 {
		for p := range pingPongPartitions {
			tw.outTPs = append(tw.outTPs, tpKey{pingPongTopic, int32(p)})
		}
	}
	if len(tw.outTPs) > 0 {
		tw.readTPs = append(slices.Clone(tw.tps), tw.outTPs...)
		tw.eos = newEOSWorld(tw)
	}
	return tw
}

// txnActor returns the transactional handler of client ci, or nil.
func (w *World) txnActor(ci int) txnActor {
	if w.txn == nil {
		return nil
	}
	return w.txn.actors[ci]
}

// newClient adds a client whose events go to the actor made by mk.
func (tw *txnWorld) newClient(r role, mk func(c *client) txnActor) *client {
	w := tw.w
	c := newClient(w, len(w.clients), r, 0, tw.tps)
	w.clients = append(w.clients, c)
	tw.actors[c.idx] = mk(c)
	return c
}

// setupTxn creates the transactional topic and waits for its leaders,
// after the admin client's setup. It reports false if the run failed.
func (w *World) setupTxn() bool {
	tw := w.txn
	c := tw.newClient(roleAdmin, func(c *client) txnActor {
		tw.creator = &topicCreator{c: c, metadata: tw.metadata, onMetadata: tw.onMetadata, partitions: len(tw.readTPs),
			topics: tw.createTopics, ready: fmt.Sprintf("admin: every %s partition has a leader", strings.Join(tw.topics(), ", "))}
		return tw.creator
	})
	w.tracef("client %d txn topic creator", c.idx)
	c.backoff(1)
	w.runUntil(w.now+setupMillisMax, func() bool { return tw.creator.done })
	if w.stopped {
		return false
	}
	if !tw.creator.done {
		w.fail(FailLiveness, "setup: the %s topic did not get a leader for every partition within %dms", txnTopic, setupMillisMax)
		return false
	}
	return true
}

// addTxnClients adds the writers and readers.
func (w *World) addTxnClients() {
	tw := w.txn
	// Two writers share one transactional id half the time: each fences
	// the other whenever it starts over.
	shared := w.opts.TxnWriters > 1 && w.rng.IntN(2) == 0
	for i := range w.opts.TxnWriters {
		id := "tx-" + strconv.Itoa(i)
		if shared {
			id = "tx-0"
		}
		c := tw.newClient(roleProducer, func(c *client) txnActor {
			x := &txnWriter{}
			x.txnProducer = newTxnProducer(c, tw, id, x)
			tw.writers = append(tw.writers, x)
			return x
		})
		w.tracef("client %d txn writer %q timeout %dms", c.idx, id, tw.writers[len(tw.writers)-1].timeoutMs)
	}
	for range w.opts.TxnReaders {
		c := tw.newClient(roleConsumer, func(c *client) txnActor {
			r := newTxnReader(c, tw)
			tw.readers = append(tw.readers, r)
			return r
		})
		w.tracef("client %d txn reader", c.idx)
	}
	w.addEOSClients()
}

// accept takes a response for the client's pending request, or reports
// false for a late one.
func txnAccept(c *client, tok uint64) bool {
	if tok != c.token || tok == 0 {
		return false
	}
	c.token = 0
	c.timer++ // cancel the timeout
	return true
}

// txnTimer handles a client timer: it reports false for a stale one, and
// whether the pending request timed out.
func txnTimer(c *client, gen uint64) (ok, timedOut bool) {
	if gen != c.timer {
		return false, false
	}
	c.w.tracef("timer c%d wait %d", c.idx, c.wait)
	timedOut = c.wait != waitBackoff && c.wait != waitNothing
	c.wait, c.token = waitNothing, 0
	if timedOut {
		c.haveMeta = false
	}
	return true, timedOut
}

// topics lists the workload's topics: tx, then txo and pp with their
// processors.
func (tw *txnWorld) topics() []string {
	var ts []string
	for _, tp := range tw.readTPs {
		if !slices.Contains(ts, tp.topic) {
			ts = append(ts, tp.topic)
		}
	}
	return ts
}

// metadata asks a random broker for the workload's topics' leaders.
func (tw *txnWorld) metadata(c *client) {
	req := kmsg.NewPtrMetadataRequest()
	req.SetVersion(12)
	for _, name := range tw.topics() {
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = &name
		req.Topics = append(req.Topics, rt)
	}
	req.AllowAutoTopicCreation = false
	c.request(c.randomBroker(), req, waitMetadata)
}

func (tw *txnWorld) onMetadata(c *client, r *kmsg.MetadataResponse) {
	clear(c.leaders)
	for _, t := range r.Topics {
		if t.Topic == nil || !slices.Contains(tw.topics(), *t.Topic) || t.ErrorCode != 0 {
			continue
		}
		for _, p := range t.Partitions {
			if p.ErrorCode == 0 && p.Leader >= 1 && int(p.Leader) <= len(tw.w.nodes) {
				c.leaders[tpKey{*t.Topic, p.Partition}] = p.Leader
			}
		}
	}
	c.haveMeta = true
}

// leader returns the broker c believes leads tp, or 0 after scheduling a
// metadata refresh.
func txnLeader(c *client, tp tpKey) int32 {
	if l, ok := c.leaders[tp]; ok {
		return l
	}
	c.haveMeta = false
	c.backoff(backoffMillis)
	return 0
}

// --- the topic's creator ---

// createTopics are the workload's topics as CreateTopics entries.
func (tw *txnWorld) createTopics() []kmsg.CreateTopicsRequestTopic {
	var out []kmsg.CreateTopicsRequestTopic
	for _, name := range tw.topics() {
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic = name
		for _, tp := range tw.readTPs {
			if tp.topic == name {
				rt.NumPartitions++
			}
		}
		rt.ReplicationFactor = replicationFactor
		out = append(out, rt)
	}
	return out
}

// --- readers ---

// txnReader polls every transactional partition from offset 0 with
// read_committed, filtering as Kafka's consumer does.
type txnReader struct {
	c        *client
	tw       *txnWorld
	pos      map[tpKey]int64
	last     map[tpKey]int64 // the last delivered offset
	hw, lso  map[tpKey]int64 // as last fetched
	atEnd    map[tpKey]bool
	seen     map[string]int64 // delivered values and their offsets
	next     int
	fetching []tpKey
	done     bool
	fetches  int
}

func newTxnReader(c *client, tw *txnWorld) *txnReader {
	return &txnReader{c: c, tw: tw, pos: map[tpKey]int64{}, last: map[tpKey]int64{}, hw: map[tpKey]int64{},
		lso: map[tpKey]int64{}, atEnd: map[tpKey]bool{}, seen: map[string]int64{}}
}

func (r *txnReader) step() {
	c := r.c
	if c.w.stopped {
		return
	}
	if r.done || c.stopping && !r.tw.phase {
		c.wait = waitNothing
		return
	}
	if r.tw.phase && !slices.ContainsFunc(r.tw.readTPs, func(tp tpKey) bool { return !r.atEnd[tp] }) {
		r.done = true
		c.wait = waitNothing
		c.w.tracef("txn reader c%d read to the end", c.idx)
		return
	}
	if !c.haveMeta {
		r.tw.metadata(c)
		return
	}
	tps := r.tw.readTPs
	to := txnLeader(c, tps[r.next%len(tps)])
	r.next++
	if to == 0 {
		return
	}
	var req *kmsg.FetchRequest
	req, r.fetching = committedFetch(c, to, tps, r.pos, r.fetching[:0])
	r.fetches++
	c.request(to, req, waitFetch)
}

func (r *txnReader) onFetch(resp *kmsg.FetchResponse) {
	c := r.c
	failed := false
	for _, tp := range r.fetching {
		p, ok := fetchPartition(resp, tp)
		code := resp.ErrorCode
		if code == 0 && ok {
			code = p.ErrorCode
		}
		if code != 0 || !ok {
			failed = true
			continue
		}
		if !r.consume(tp, p) {
			return
		}
		r.hw[tp], r.lso[tp] = p.HighWatermark, p.LastStableOffset
		r.atEnd[tp] = r.pos[tp] >= p.HighWatermark && p.LastStableOffset == p.HighWatermark
	}
	r.fetching = r.fetching[:0]
	if failed {
		c.haveMeta = false
		c.backoff(backoffMillis)
		return
	}
	if r.tw.phase {
		r.step()
		return
	}
	c.backoff(c.w.rng.Int64N(txnPollMillisMax + 1))
}

// consume takes one partition's answer (readCommitted) and checks what
// it delivers.
func (r *txnReader) consume(tp tpKey, p kmsg.FetchResponseTopicPartition) bool {
	who := "txn reader c" + strconv.Itoa(r.c.idx)
	var offs []int64
	ok := readCommitted(r.c.w, who, tp, r.pos, p, func(off int64, v string, pid int64) bool {
		offs = append(offs, off)
		return r.deliver(tp, off, v, pid)
	})
	if ok {
		r.tw.recordPoll(who, tp, offs)
	}
	return ok
}

// readCommitted takes one partition's answer as Kafka's consumer does
// (CompletedFetch.nextFetchedRecord), from pos[tp] on, moving pos past
// every batch: the aborted transactions, ordered by first offset, become
// aborted producers once a batch of theirs reaches that offset; a
// transactional batch of an aborted producer is skipped; the producer's
// abort marker ends that; control batches are never delivered. deliver
// gets the rest. It reports false if a check failed (deliver's, or
// undecodable batches).
func readCommitted(w *World, who string, tp tpKey, pos map[tpKey]int64, p kmsg.FetchResponseTopicPartition,
	deliver func(off int64, v string, pid int64) bool) bool {
	aborted := slices.Clone(p.AbortedTransactions)
	slices.SortStableFunc(aborted, func(a, b kmsg.FetchResponseTopicPartitionAbortedTransaction) int {
		return cmp.Compare(a.FirstOffset, b.FirstOffset)
	})
	var abortedPIDs []int64
	bs, err := batch.Split(p.RecordBatches)
	if len(p.RecordBatches) > 0 && err != nil {
		w.fail(FailDivergence, "%s: fetch of %s returned undecodable batches: %v", who, tp, err)
		return false
	}
	for _, b := range bs {
		h, err := batch.ReadHeader(b)
		if err != nil {
			w.fail(FailDivergence, "%s: fetch of %s returned a corrupt batch: %v", who, tp, err)
			return false
		}
		if h.LastOffset() < pos[tp] {
			continue
		}
		recs, err := batch.Records(b)
		if err != nil {
			w.fail(FailDivergence, "%s: fetch of %s returned a corrupt batch: %v", who, tp, err)
			return false
		}
		if h.ProducerID >= 0 {
			for len(aborted) > 0 && aborted[0].FirstOffset <= h.LastOffset() {
				if !slices.Contains(abortedPIDs, aborted[0].ProducerID) {
					abortedPIDs = append(abortedPIDs, aborted[0].ProducerID)
				}
				aborted = aborted[1:]
			}
			switch {
			case h.Control() && isAbortMarker(recs):
				abortedPIDs = slices.DeleteFunc(abortedPIDs, func(pid int64) bool { return pid == h.ProducerID })
			case h.Transactional() && !h.Control() && slices.Contains(abortedPIDs, h.ProducerID):
				pos[tp] = h.LastOffset() + 1
				continue
			}
		}
		if !h.Control() {
			for _, rec := range recs {
				if rec.Offset >= pos[tp] && !deliver(rec.Offset, string(rec.Value), h.ProducerID) {
					return false
				}
			}
		}
		pos[tp] = h.LastOffset() + 1
	}
	return true
}

// isAbortMarker reports whether a control batch's record is an abort
// marker (key: version int16, type int16; 0 aborts, 1 commits).
func isAbortMarker(recs []batch.DecodedRecord) bool {
	return len(recs) > 0 && len(recs[0].Key) >= 4 && binary.BigEndian.Uint16(recs[0].Key[2:]) == 0
}

// deliver checks one record the reader hands to its application.
func (r *txnReader) deliver(tp tpKey, off int64, v string, pid int64) bool {
	w := r.c.w
	ci := r.c.idx
	if last, ok := r.last[tp]; ok && off <= last {
		w.fail(linearizability.AnomalyNonmonotonicPoll, "txn reader c%d %s: delivered offset %d (%q) after offset %d", ci, tp, off, v, last)
		return false
	}
	r.last[tp] = off
	if prev, ok := r.seen[v]; ok {
		w.fail(linearizability.AnomalyDuplicate, "txn reader c%d %s: delivered %q at offset %d and again at offset %d", ci, tp, v, prev, off)
		return false
	}
	r.seen[v] = off
	return r.tw.checkDelivered("txn reader c"+strconv.Itoa(ci), tp, off, v, pid)
}

// checkDelivered checks a record a read_committed consumer (who)
// delivered against what is known of its transaction. It reports false,
// and the run stops, for a value no producer wrote there; a record of an
// aborted or open transaction is noted (note) and delivered.
func (tw *txnWorld) checkDelivered(who string, tp tpKey, off int64, v string, pid int64) bool {
	w := tw.w
	ref, ok := tw.values[v]
	if !ok || ref.tp != tp {
		w.fail(FailDivergence, "%s %s: delivered %q at offset %d (producer %d), which no producer wrote there", who, tp, v, off, pid)
		return false
	}
	t := tw.txns[ref.txn]
	switch t.state {
	case txnAborted:
		tw.note(FailG1a, "%s %s: delivered %q at offset %d (producer %d) of transaction %s, %s",
			who, tp, v, off, pid, t, t.outcome())
	case txnOpen:
		tw.note(FailPrecommittedRead, "%s %s: delivered %q at offset %d (producer %d) of transaction %s before its producer sent EndTxn(commit) (%s)",
			who, tp, v, off, pid, t, t.outcome())
	}
	return true
}

// note records an anomaly of a delivered record (G1a, precommitted-read)
// without stopping the run, unlike World.fail: the consumer takes the
// record as its application would, and the run goes on, so that the end
// checks see it whole. A cycle (G1c) forms only after such reads: its
// transactions read each other's records before they committed. At most
// failuresPerCheck of each kind are kept.
func (tw *txnWorld) note(kind, format string, args ...any) {
	if tw.noted[kind] == failuresPerCheck {
		return
	}
	if tw.noted == nil {
		tw.noted = map[string]int{}
	}
	tw.noted[kind]++
	f := Failure{Kind: kind, AtMillis: tw.w.now, Detail: fmt.Sprintf(format, args...)}
	tw.w.failures = append(tw.w.failures, f)
	tw.w.tracef("txn anomaly %s", f.Detail)
}

func (r *txnReader) onResponse(tok uint64, resp kmsg.Response) {
	c := r.c
	if !txnAccept(c, tok) {
		return
	}
	c.wait = waitNothing
	switch m := resp.(type) {
	case *kmsg.MetadataResponse:
		r.tw.onMetadata(c, m)
		r.step()
	case *kmsg.FetchResponse:
		r.onFetch(m)
	}
}

func (r *txnReader) onTimer(gen uint64) {
	if ok, _ := txnTimer(r.c, gen); ok {
		r.fetching = r.fetching[:0]
		r.step()
	}
}

// --- the final checks ---

// runTxnPhase lets the readers read every partition to its end (every
// writer is done: the last stable offsets are the high watermarks), then
// checks what each delivered.
func (w *World) runTxnPhase() {
	tw := w.txn
	if len(tw.readers) == 0 {
		return
	}
	w.tracef("phase txn")
	tw.phase = true
	eosOK := true
	if ew := tw.eos; ew != nil {
		// The processors first commit every tx partition's end.
		ew.finish()
		w.runUntil(w.now+txnPhaseMillis, ew.done)
		if w.stopped {
			return
		}
		if eosOK = ew.done(); !eosOK {
			w.failures = append(w.failures, Failure{Kind: FailLiveness, AtMillis: w.now,
				Detail: fmt.Sprintf("the eos processors did not commit every %s partition's end within %dms of the final read: %s", txnTopic, txnPhaseMillis, ew.behind())})
		}
		ew.stopped = true
		w.tracef("eos processors done")
	}
	for _, r := range tw.readers {
		// At the end only once a fetch of the phase says so.
		clear(r.atEnd)
		r.c.stopping = false
		if r.c.wait == waitNothing {
			r.c.backoff(1)
		}
	}
	allDone := func() bool {
		return !slices.ContainsFunc(tw.readers, func(r *txnReader) bool { return !r.done })
	}
	w.runUntil(w.now+txnPhaseMillis, allDone)
	w.tracef("txn-stats %s", tw.stats())
	if w.stopped {
		return
	}
	w.failures = append(w.failures, tw.runElleChecks()...)
	for _, r := range tw.readers {
		if !r.done {
			var behind []string
			for _, tp := range tw.readTPs {
				if !r.atEnd[tp] {
					behind = append(behind, fmt.Sprintf("%s at %d (hw %d, lso %d)", tp, r.pos[tp], r.hw[tp], r.lso[tp]))
				}
			}
			w.failures = append(w.failures, Failure{Kind: FailLiveness, AtMillis: w.now,
				Detail: fmt.Sprintf("txn reader c%d did not read to the end within %dms of the final read: %s", r.c.idx, txnPhaseMillis, strings.Join(behind, ", "))})
			continue
		}
		w.failures = append(w.failures, tw.checkReader(r)...)
		if tw.eos != nil && eosOK {
			w.failures = append(w.failures, tw.eos.check(r)...)
		}
	}
	w.failures = append(w.failures, tw.checkReadersAgree()...)
}

// checkReadersAgree holds the readers that read to the end to one view:
// a transaction one of them delivered committed, so every other must have
// delivered it too (Jepsen's poll-skip, across consumers: one skipped
// records another saw committed). It matters for the indeterminate
// transactions, of which each reader alone may deliver all or nothing.
func (tw *txnWorld) checkReadersAgree() []Failure {
	var fs []Failure
	for _, t := range tw.txns {
		var saw, missed *txnReader
		for _, r := range tw.readers {
			if !r.done || len(t.parts) == 0 || len(t.parts[0].values) == 0 {
				continue
			}
			if _, ok := r.seen[t.parts[0].values[0]]; ok {
				saw = cmp.Or(saw, r)
			} else {
				missed = cmp.Or(missed, r)
			}
		}
		if saw != nil && missed != nil && len(fs) < failuresPerCheck {
			fs = append(fs, Failure{Kind: linearizability.AnomalyPollSkip, AtMillis: tw.w.now,
				Detail: fmt.Sprintf("txn reader c%d read to the end and delivered none of transaction %s (%s), which txn reader c%d delivered",
					missed.c.idx, t, t.outcome(), saw.c.idx)})
		}
	}
	return fs
}

// checkReader holds a reader that read to the end to every transaction:
// all of a committed one's records delivered, all or none of an
// indeterminate one's, none of an aborted one's (refused as they came,
// unless the outcome was learnt later).
func (tw *txnWorld) checkReader(r *txnReader) []Failure {
	var fs []Failure
	for _, t := range tw.txns {
		var missing []string
		total, seen := 0, 0
		for _, p := range t.parts {
			for _, v := range p.values {
				total++
				if _, ok := r.seen[v]; ok {
					seen++
				} else if len(missing) < 3 {
					missing = append(missing, fmt.Sprintf("%q on %s", v, p.tp))
				}
			}
		}
		switch {
		case total == 0: // a processor's transaction of offsets only
		case seen > 0 && t.state == txnAborted:
			fs = append(fs, Failure{Kind: FailG1a, AtMillis: tw.w.now,
				Detail: fmt.Sprintf("txn reader c%d read to the end and delivered %d of the %d records of transaction %s (%s)",
					r.c.idx, seen, total, t, t.outcome())})
		case seen > 0 && seen < total:
			fs = append(fs, Failure{Kind: FailFracturedRead, AtMillis: tw.w.now,
				Detail: fmt.Sprintf("txn reader c%d read to the end and delivered %d of the %d records of transaction %s (%s); missing %s",
					r.c.idx, seen, total, t, t.outcome(), strings.Join(missing, ", "))})
		case seen == 0 && t.state == txnCommitted:
			fs = append(fs, Failure{Kind: FailLostCommitted, AtMillis: tw.w.now,
				Detail: fmt.Sprintf("txn reader c%d read to the end and delivered none of the %d records of transaction %s (%s, EndTxn(commit) acknowledged): %s",
					r.c.idx, total, t, t.outcome(), strings.Join(missing, ", "))})
		}
	}
	return fs
}

// stats counts, for the trace, the transactions by outcome and the
// readers' work.
func (tw *txnWorld) stats() string {
	var states [len(txnStateNames)]int
	for _, t := range tw.txns {
		states[t.state]++
	}
	var inits, bumps, fenced, crashes, pauses, gaveUp int
	for _, x := range tw.writers {
		inits, bumps, fenced, crashes, pauses, gaveUp = inits+x.inits, bumps+x.bumps, fenced+x.fenced, crashes+x.crashes, pauses+x.pauses, gaveUp+x.gaveUp
	}
	s := fmt.Sprintf("txns %d committed %d indeterminate %d aborted %d open %d producers %d bumps %d fenced %d crashes %d pauses %d gave-up %d",
		len(tw.txns), states[txnCommitted], states[txnCommitting], states[txnAborted], states[txnOpen], inits, bumps, fenced, crashes, pauses, gaveUp)
	for _, r := range tw.readers {
		s += fmt.Sprintf(" reader c%d fetches %d delivered %d", r.c.idx, r.fetches, len(r.seen))
	}
	if tw.eos != nil {
		s += " " + tw.eos.stats()
	}
	return s
}

// committedFetch is a read_committed Fetch of the partitions of tps that
// broker to leads, each from its position in pos; it also returns those
// partitions (appended to fetching).
func committedFetch(c *client, to int32, tps []tpKey, pos map[tpKey]int64, fetching []tpKey) (*kmsg.FetchRequest, []tpKey) {
	req := kmsg.NewPtrFetchRequest()
	req.SetVersion(12)
	req.ReplicaID = -1
	req.MaxWaitMillis = int32(c.w.rng.Int64N(fetchMaxWaitMillis + 1))
	req.MinBytes = 1
	req.IsolationLevel = 1
	req.SessionEpoch = -1
	for _, tp := range tps {
		if c.leaders[tp] != to {
			continue
		}
		rt := kmsg.NewFetchRequestTopic()
		rt.Topic = tp.topic
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition = tp.part
		rp.FetchOffset = pos[tp]
		rp.PartitionMaxBytes = fetchMaxBytes
		rp.CurrentLeaderEpoch = -1
		rp.LogStartOffset = -1
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		fetching = append(fetching, tp)
	}
	req.MaxBytes = fetchMaxBytes * int32(len(fetching))
	return req, fetching
}
