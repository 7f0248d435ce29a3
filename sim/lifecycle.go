package sim

// The log's life under faults (issue 11, item 5): retention, DeleteRecords
// and compaction run while every fault of the fault model happens, and
// what the clients read is held to what they were acknowledged.
//
// Setup creates, beside the other workloads' topics, a compacted topic
// "lc" (cleanup.policy=compact, lifeCompactPartitions partitions) and a
// delete-policy topic "ld" (lifeDeletePartitions), both with small
// segments (Options.LifeSegmentBytes), and every broker runs its cleaner
// and its retention check often (engine.Config.CleanerBackoffMs,
// CleanerStepBytes, CleanerRoundBytes, RetentionCheckIntervalMs). Clients,
// all of them "background" (the final read of the tracked topics does not
// wait for them):
//
//   - two producers, one idempotent (retries a batch with its sequence
//     until it is acknowledged or the producer id is refused) and one
//     plain (never retries), write batches of 1-3 records to a random
//     partition of either topic: on lc, keys from a small key space
//     (LifeKeys, the low ones far more often than the high ones, which
//     stay deleted a while) and one record in lifeTombstoneOneIn a
//     tombstone (null value); on ld, no key. Every record carries a unique id in its
//     "id" header (its value too, unless it is a tombstone);
//   - a reader reads every partition in passes, each from the log start
//     (ListOffsets -2) to the high watermark, a Fetch at a time;
//   - an admin sends DeleteRecords (key 21) for ld every
//     LifeDeleteRecordsEveryMillis on average, to an offset between the
//     log start and the high watermark it last saw (-1 one time in six).
//
// They run through the safety phase and its faults (client cuts too) and
// stop in the liveness phase. The lifecycle phase, after the final read:
// the producers finish their batches (the idempotent one retries), the
// cleaner gets delete.retention.ms and two backoffs (at most
// lifeSettleMillisMax) from the last write, so that tombstones can go,
// then the reader reads every partition once more from the log start to
// the high watermark.
//
// Checks, as the answers come:
//
//   - acked-record-gone: a Fetch covers [fetch offset, last offset of its
//     last batch]; every record acknowledged before the Fetch was sent
//     with an offset in that range, at or above the reported log start,
//     must be in the answer, unless (lc only) a newer record of its key,
//     known committed (acknowledged, read or in a replica's log), sits
//     below the answer's high watermark, or it is a tombstone whose
//     delete.retention.ms may have passed by the brokers' clocks (some
//     broker's clock now is past the earliest any broker's clock was when
//     it was first sent, plus delete.retention.ms). On ld there is no gap
//     at all in that range.
//   - log-start-regression: the log start a Fetch or ListOffsets(-2)
//     reports, or a DeleteRecords answer's low watermark, is below one
//     that an answer received before the request was sent reported; or a
//     DeleteRecords answer is below the offset asked for.
//   - offset-reused: one offset holds two different records (acks, reads
//     and the replicas' logs); duplicate: one record at two offsets;
//     nonmonotonic-poll: a pass delivers an offset not above the last one;
//     divergence: a record no producer wrote.
//   - compacted-state (after the final pass, lifecycle phase): for every
//     key of lc, the last record the final pass read from the log start
//     is the latest acknowledged record of the key or a newer write; no
//     record at all only if the latest acknowledged one is a tombstone
//     past its delete.retention.ms (or an unacknowledged tombstone may
//     be newer).
//   - divergence (lifecycle phase): live replicas of a partition that
//     applied the same raft index hold byte-identical batches from the log
//     start on (every partition, not only these topics).
//
// The state checker (checker.go) holds lc's replicas to a canonical log
// too (verifyCompacted): a replica's batch may differ from the canonical
// batch at its base offset only by being a compaction of it (same base
// and last offset and producer fields, its records a subset), and batches
// may be missing (gaps).
//
// Not checked: that the cleaner removed what it could (a cleaner that
// never runs passes), nor where the cleaned region ends (a record dropped
// with a newer record of its key anywhere below the high watermark
// passes, even one the cleaner's offset map did not cover), nor that
// retention drops what retention.ms and retention.bytes say it should:
// only that nothing goes below the log start except by the log start.

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/gregor-streaming/gregor/engine"
	"github.com/gregor-streaming/gregor/engine/batch"
	"github.com/gregor-streaming/gregor/engine/segment"
	"github.com/gregor-streaming/gregor/linearizability"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// lifecycleByDefault: whether NewOptions turns the lifecycle workload on.
const lifecycleByDefault = true

// lifecycleOn reports whether the run has the lifecycle workload:
// Lifecycle, or the knob only it catches.
func (o Options) lifecycleOn() bool { return o.Lifecycle || o.Unsafe == UnsafeCompactActive }

// The lifecycle workload's bounds.
const (
	lifeCompactTopic      = "lc"
	lifeDeleteTopic       = "ld"
	lifeCompactPartitions = 1
	lifeDeletePartitions  = 1
	lifeRecordsMax        = 3
	lifeTombstoneOneIn    = 4
	lifeThinkMillisMax    = 300    // a producer's pause between batches
	lifePollMillisMax     = 250    // the reader's pause between requests
	lifePhaseMillis       = 20_000 // bound on each step of the lifecycle phase
	lifeSettleMillisMax   = 6_000  // the cleaner's time after the last write
	lifeIDHeader          = "id"
	lifeDeleteLatestOneIn = 6 // DeleteRecords to -1 (the high watermark)
)

// Failure kinds of the lifecycle workload.
const (
	// FailAckedRecordGone: an acknowledged record is missing where
	// neither the log start, nor a newer record of its key, nor its
	// tombstone retention allows it.
	FailAckedRecordGone = "acked-record-gone"
	// FailLogStartRegression: a log start reported below one reported
	// before (or a DeleteRecords answer below the offset asked for).
	FailLogStartRegression = "log-start-regression"
	// FailCompactedState: after the final pass, a key of the compacted
	// topic does not read as its latest acknowledged value.
	FailCompactedState = "compacted-state"
	// FailOffsetReused: one offset holds two different records.
	FailOffsetReused = "offset-reused"
)

// lifeRec is one record a lifecycle producer wrote.
type lifeRec struct {
	id     string
	tp     tpKey
	key    string // "" on ld
	tomb   bool
	sentAt int64 // world ms of its batch's first send
	ackAt  int64 // lifeWorld tick of its acknowledgement (0: none)
	off    int64 // where it is known to be (-1: nowhere known)
}

func (r *lifeRec) String() string {
	s := r.id
	if r.key != "" {
		s += " key " + r.key
	}
	if r.tomb {
		s += " (tombstone)"
	}
	return s
}

// startEvent is a log start an answer reported, at a tick.
type startEvent struct {
	tick  int64
	start int64 // the largest start reported up to this event
}

// lifePart is what is known of one lifecycle partition.
type lifePart struct {
	tp      tpKey
	compact bool
	at      map[int64]*lifeRec // every record known committed, by offset
	keyOffs map[string][]int64 // compacted: offsets known to hold a key, sorted
	acked   []*lifeRec         // acknowledged records, by offset
	starts  []startEvent
	// What the reader last saw, for the admin's DeleteRecords.
	seenStart, seenHW int64
}

// lifeWorld is the lifecycle workload's state and checks.
type lifeWorld struct {
	w         *World
	tps       []tpKey // lc's partitions, then ld's
	parts     map[tpKey]*lifePart
	recs      map[string]*lifeRec
	actors    map[int]txnActor
	creator   *topicCreator
	producers []*lifeProducer
	reader    *lifeReader
	admin     *lifeAdmin
	ticks     int64 // orders acknowledgements before sends
	phase     bool  // the lifecycle phase: the final pass
	n         int   // records made
	// lastWrite is when the producers last wrote: the later of their
	// last acknowledgement and the time one first saw the liveness phase
	// (no new batch after it).
	lastWrite int64

	finalFrom int64 // the tick at which the final pass began

	// stats
	dropsSuperseded, dropsTombstone, deletes, deleteAcks int
}

func newLifeWorld(w *World) *lifeWorld {
	lw := &lifeWorld{w: w, parts: map[tpKey]*lifePart{}, recs: map[string]*lifeRec{}, actors: map[int]txnActor{}}
	for p := range lifeCompactPartitions {
		lw.tps = append(lw.tps, tpKey{lifeCompactTopic, int32(p)})
	}
	for p := range lifeDeletePartitions {
		lw.tps = append(lw.tps, tpKey{lifeDeleteTopic, int32(p)})
	}
	for _, tp := range lw.tps {
		lw.parts[tp] = &lifePart{tp: tp, compact: tp.topic == lifeCompactTopic, at: map[int64]*lifeRec{}, keyOffs: map[string][]int64{}}
	}
	return lw
}

func (lw *lifeWorld) tick() int64 {
	lw.ticks++
	return lw.ticks
}

// compacted reports whether the state checker must allow compaction in
// topic's replicas (lw may be nil).
func (lw *lifeWorld) compacted(topic string) bool { return lw != nil && topic == lifeCompactTopic }

// tune sets the brokers' cleaner and retention timings.
func (lw *lifeWorld) tune(cfg *engine.Config) {
	o := lw.w.opts
	cfg.CleanerBackoffMs = o.LifeCleanerBackoffMillis
	cfg.CleanerStepBytes = o.LifeCleanerStepBytes
	cfg.CleanerRoundBytes = o.LifeCleanerRoundBytes
	cfg.RetentionCheckIntervalMs = o.LifeRetentionCheckMillis
}

// actor returns the handler of client ci's events: a transactional or a
// lifecycle actor, or nil for a plain client.
func (w *World) actor(ci int) txnActor {
	if a := w.txnActor(ci); a != nil {
		return a
	}
	if w.life != nil {
		if a, ok := w.life.actors[ci]; ok {
			return a
		}
	}
	return nil
}

// newClient adds a background client whose events go to the actor mk
// makes.
func (lw *lifeWorld) newClient(r role, mk func(c *client) txnActor) *client {
	w := lw.w
	c := newClient(w, len(w.clients), r, 0, lw.tps)
	c.bg = true
	w.clients = append(w.clients, c)
	lw.actors[c.idx] = mk(c)
	return c
}

// lifeAccept takes a response for the client's pending request, or
// reports false for a late one.
func lifeAccept(c *client, tok uint64) bool {
	if !txnAccept(c, tok) {
		return false
	}
	c.wait = waitNothing
	return true
}

// metadata asks a random broker for the lifecycle topics' leaders.
func (lw *lifeWorld) metadata(c *client) {
	req := kmsg.NewPtrMetadataRequest()
	req.SetVersion(12)
	for _, name := range []string{lifeCompactTopic, lifeDeleteTopic} {
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = &name
		req.Topics = append(req.Topics, rt)
	}
	c.request(c.randomBroker(), req, waitMetadata)
}

func (lw *lifeWorld) onMetadata(c *client, r *kmsg.MetadataResponse) {
	clear(c.leaders)
	for _, t := range r.Topics {
		if t.Topic == nil || (*t.Topic != lifeCompactTopic && *t.Topic != lifeDeleteTopic) || t.ErrorCode != 0 {
			continue
		}
		for _, p := range t.Partitions {
			if p.ErrorCode == 0 && p.Leader >= 1 && int(p.Leader) <= len(lw.w.nodes) {
				c.leaders[tpKey{*t.Topic, p.Partition}] = p.Leader
			}
		}
	}
	c.haveMeta = true
}

// leader returns the broker c believes leads tp, or 0 after a pause
// before asking again.
func (lw *lifeWorld) leader(c *client, tp tpKey) int32 {
	if l, ok := c.leaders[tp]; ok {
		return l
	}
	c.haveMeta = false
	c.backoff(backoffMillis)
	return 0
}

// setupLifecycle creates the lifecycle topics and waits for their
// leaders. It reports false if the run failed.
func (w *World) setupLifecycle() bool {
	lw := w.life
	c := lw.newClient(roleAdmin, func(c *client) txnActor {
		lw.creator = &topicCreator{c: c, metadata: lw.metadata, onMetadata: lw.onMetadata, partitions: len(lw.tps),
			topics: lw.lifeTopics, created: lw.lifeCreated,
			ready: fmt.Sprintf("admin: every %s, %s partition has a leader", lifeCompactTopic, lifeDeleteTopic)}
		return lw.creator
	})
	w.tracef("client %d lifecycle topic creator", c.idx)
	c.backoff(1)
	w.runUntil(w.now+setupMillisMax, func() bool { return lw.creator.done })
	if w.stopped {
		return false
	}
	if !lw.creator.done {
		w.fail(FailLiveness, "setup: the %s and %s topics did not get a leader for every partition within %dms", lifeCompactTopic, lifeDeleteTopic, setupMillisMax)
		return false
	}
	return true
}

// addLifeClients adds the producers, the reader and the admin.
func (w *World) addLifeClients() {
	lw := w.life
	for i := range 2 {
		c := lw.newClient(roleProducer, func(c *client) txnActor {
			p := &lifeProducer{c: c, lw: lw, idem: i == 0, pid: -1, seqs: map[tpKey]int32{}}
			lw.producers = append(lw.producers, p)
			return p
		})
		w.tracef("client %d lifecycle producer idempotent %t", c.idx, i == 0)
	}
	c := lw.newClient(roleConsumer, func(c *client) txnActor {
		lw.reader = &lifeReader{c: c, lw: lw, cur: map[tpKey]*lifeCursor{}}
		for _, tp := range lw.tps {
			lw.reader.cur[tp] = &lifeCursor{pos: -1, last: -1}
		}
		return lw.reader
	})
	w.tracef("client %d lifecycle reader", c.idx)
	c = lw.newClient(roleAdmin, func(c *client) txnActor {
		lw.admin = &lifeAdmin{c: c, lw: lw}
		return lw.admin
	})
	w.tracef("client %d lifecycle admin", c.idx)
}

// --- the topics' creator ---

// lifeTopics are the lifecycle topics as CreateTopics entries.
func (lw *lifeWorld) lifeTopics() []kmsg.CreateTopicsRequestTopic {
	o := lw.w.opts
	cfg := func(rt *kmsg.CreateTopicsRequestTopic, name, value string) {
		x := kmsg.NewCreateTopicsRequestTopicConfig()
		x.Name, x.Value = name, &value
		rt.Configs = append(rt.Configs, x)
	}
	lc := kmsg.NewCreateTopicsRequestTopic()
	lc.Topic, lc.NumPartitions, lc.ReplicationFactor = lifeCompactTopic, lifeCompactPartitions, replicationFactor
	cfg(&lc, "cleanup.policy", "compact")
	cfg(&lc, "segment.bytes", strconv.FormatInt(o.LifeSegmentBytes, 10))
	cfg(&lc, "min.cleanable.dirty.ratio", strconv.FormatFloat(o.LifeDirtyRatio, 'g', -1, 64))
	cfg(&lc, "delete.retention.ms", strconv.FormatInt(o.LifeDeleteRetentionMillis, 10))
	cfg(&lc, "min.compaction.lag.ms", strconv.FormatInt(o.LifeMinCompactionLagMillis, 10))
	ld := kmsg.NewCreateTopicsRequestTopic()
	ld.Topic, ld.NumPartitions, ld.ReplicationFactor = lifeDeleteTopic, lifeDeletePartitions, replicationFactor
	cfg(&ld, "cleanup.policy", "delete")
	cfg(&ld, "segment.bytes", strconv.FormatInt(o.LifeSegmentBytes, 10))
	cfg(&ld, "retention.ms", strconv.FormatInt(o.LifeRetentionMillis, 10))
	cfg(&ld, "retention.bytes", strconv.FormatInt(o.LifeRetentionBytes, 10))
	return []kmsg.CreateTopicsRequestTopic{lc, ld}
}

// lifeCreated traces the unexpected errors of a CreateTopics answer.
func (lw *lifeWorld) lifeCreated(r *kmsg.CreateTopicsResponse) {
	for _, t := range r.Topics {
		if t.ErrorCode != 0 && t.ErrorCode != kerr.TopicAlreadyExists.Code && t.ErrorCode != kerr.RequestTimedOut.Code &&
			t.ErrorCode != kerr.NotController.Code {
			lw.w.tracef("lifecycle create %s: %s", t.Topic, codeName(t.ErrorCode))
		}
	}
}

// --- producers ---

// lifeBatch is the batch a producer is getting written.
type lifeBatch struct {
	tp       tpKey
	recs     []*lifeRec
	seq      int32
	attempts int
}

type lifeProducer struct {
	c     *client
	lw    *lifeWorld
	idem  bool
	pid   int64
	epoch int16
	seqs  map[tpKey]int32
	cur   *lifeBatch
}

// idle reports whether the producer has nothing left to get written.
func (p *lifeProducer) idle() bool {
	return p.cur == nil && (p.c.wait == waitNothing || p.c.wait == waitBackoff)
}

func (p *lifeProducer) newBatch() *lifeBatch {
	lw, w := p.lw, p.lw.w
	b := &lifeBatch{tp: lw.tps[w.rng.IntN(len(lw.tps))]}
	if p.idem {
		b.seq = p.seqs[b.tp]
	}
	for range 1 + w.rng.IntN(lifeRecordsMax) {
		lw.n++
		r := &lifeRec{id: "l" + strconv.Itoa(p.c.idx) + "." + strconv.Itoa(lw.n), tp: b.tp, off: -1}
		if lw.parts[b.tp].compact {
			// Skewed: low keys often, high ones rarely, so that some
			// keys stay deleted long enough for their tombstones to go.
			u := w.rng.Float64()
			r.key = "k" + strconv.Itoa(int(u*u*float64(w.opts.LifeKeys)))
			r.tomb = w.rng.IntN(lifeTombstoneOneIn) == 0
		}
		lw.recs[r.id] = r
		b.recs = append(b.recs, r)
	}
	return b
}

func (p *lifeProducer) step() {
	c, w := p.c, p.c.w
	if w.stopped {
		return
	}
	if c.stopping && p.lw.lastWrite == 0 {
		p.lw.lastWrite = w.now
	}
	if c.stopping && p.cur == nil {
		c.wait = waitNothing
		return
	}
	if !c.haveMeta {
		p.lw.metadata(c)
		return
	}
	if p.idem && p.pid < 0 {
		req := kmsg.NewPtrInitProducerIDRequest()
		req.SetVersion(4)
		req.TransactionTimeoutMillis = 60_000
		req.ProducerID, req.ProducerEpoch = -1, -1
		c.request(c.randomBroker(), req, waitInitPID)
		return
	}
	if p.cur == nil {
		p.cur = p.newBatch()
	}
	b := p.cur
	to := p.lw.leader(c, b.tp)
	if to == 0 {
		return
	}
	if b.attempts == 0 {
		for _, r := range b.recs {
			r.sentAt = w.now
		}
	}
	b.attempts++
	opts := batch.BuildOptions{ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1, FirstTimestamp: w.now + epochMillis}
	if p.idem {
		opts.ProducerID, opts.ProducerEpoch, opts.BaseSequence = p.pid, p.epoch, b.seq
	}
	recs := make([]batch.Record, len(b.recs))
	for i, r := range b.recs {
		recs[i].Headers = []batch.RecordHeader{{Key: lifeIDHeader, Value: []byte(r.id)}}
		if r.key != "" {
			recs[i].Key = []byte(r.key)
		}
		if !r.tomb {
			recs[i].Value = []byte(r.id)
		}
	}
	req := kmsg.NewPtrProduceRequest()
	req.SetVersion(9)
	req.Acks = -1
	req.TimeoutMillis = produceTimeoutMs
	addProduce(req, b.tp, opts, recs)
	c.request(to, req, waitProduce)
}

// failed handles a batch not acknowledged: an idempotent producer retries
// it with its sequence (or, if definite, starts over with a new producer
// id, the batch's outcome unknown); a plain one gives it up.
func (p *lifeProducer) failed(code int16) {
	c := p.c
	switch {
	case !p.idem:
		p.cur = nil
	case code == kerr.OutOfOrderSequenceNumber.Code || code == kerr.UnknownProducerID.Code || code == kerr.InvalidProducerEpoch.Code:
		p.pid, p.cur = -1, nil
	case definiteProduceErrors[code]:
		p.cur = nil
	}
	c.haveMeta = false
	c.backoff(backoffMillis)
}

func (p *lifeProducer) onResponse(tok uint64, resp kmsg.Response) {
	c := p.c
	if !lifeAccept(c, tok) {
		return
	}
	switch r := resp.(type) {
	case *kmsg.MetadataResponse:
		p.lw.onMetadata(c, r)
		p.step()
	case *kmsg.InitProducerIDResponse:
		if r.ErrorCode != 0 {
			c.backoff(backoffMillis)
			return
		}
		p.pid, p.epoch = r.ProducerID, r.ProducerEpoch
		clear(p.seqs)
		p.step()
	case *kmsg.ProduceResponse:
		b := p.cur
		if b == nil {
			c.backoff(1)
			return
		}
		part, ok := produceCode(r, b.tp)
		switch {
		case !ok:
			p.failed(kerr.UnknownServerError.Code)
		case part.ErrorCode != 0:
			p.failed(part.ErrorCode)
		default:
			if !p.lw.acked(b, part.BaseOffset) {
				return
			}
			if p.idem {
				p.seqs[b.tp] = batch.IncrementSequence(b.seq, int32(len(b.recs)))
			}
			p.cur = nil
			c.backoff(c.w.rng.Int64N(lifeThinkMillisMax + 1))
		}
	}
}

func (p *lifeProducer) onTimer(gen uint64) {
	ok, timedOut := txnTimer(p.c, gen)
	if !ok {
		return
	}
	if timedOut && !p.idem {
		p.cur = nil // outcome unknown; a plain producer does not retry
	}
	p.step()
}

// --- the reader ---

// lifeCursor is the reader's pass over one partition.
type lifeCursor struct {
	pos    int64 // next offset to fetch; -1: list the log start first (a new pass)
	last   int64 // the last offset the pass delivered (-1: none)
	passes int
	final  bool         // the pass is the lifecycle phase's
	done   bool         // the final pass reached the high watermark
	recs   []lifeAtRead // what the final pass read
}

// lifeAtRead is a record read at an offset.
type lifeAtRead struct {
	off int64
	r   *lifeRec
}

type lifeReader struct {
	c        *client
	lw       *lifeWorld
	cur      map[tpKey]*lifeCursor
	next     int
	tp       tpKey // the partition of the request in flight
	pos      int64 // its fetch offset
	sentTick int64
	fetches  int
	passes   int // passes read to the end, every partition's
}

// finalDone reports whether every final pass reached its end.
func (r *lifeReader) finalDone() bool {
	for _, tp := range r.lw.tps {
		if cur := r.cur[tp]; !cur.final || !cur.done {
			return false
		}
	}
	return true
}

func (r *lifeReader) step() {
	c, lw := r.c, r.lw
	if c.w.stopped {
		return
	}
	if c.stopping && !lw.phase || lw.phase && r.finalDone() {
		c.wait = waitNothing
		return
	}
	if !c.haveMeta {
		lw.metadata(c)
		return
	}
	tp := lw.tps[r.next%len(lw.tps)]
	r.next++
	if r.cur[tp].done {
		c.backoff(1)
		return
	}
	to := lw.leader(c, tp)
	if to == 0 {
		return
	}
	r.tp, r.pos = tp, r.cur[tp].pos
	r.sentTick = lw.tick()
	if r.pos < 0 {
		req := kmsg.NewPtrListOffsetsRequest()
		req.SetVersion(7)
		req.ReplicaID = -1
		rt := kmsg.NewListOffsetsRequestTopic()
		rt.Topic = tp.topic
		rp := kmsg.NewListOffsetsRequestTopicPartition()
		rp.Partition, rp.Timestamp, rp.CurrentLeaderEpoch = tp.part, -2, -1
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		c.request(to, req, waitList)
		return
	}
	req := kmsg.NewPtrFetchRequest()
	req.SetVersion(12)
	req.ReplicaID = -1
	req.MinBytes = 1
	req.MaxBytes = fetchMaxBytes
	req.SessionEpoch = -1
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = tp.topic
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.Partition = tp.part
	rp.FetchOffset = r.pos
	rp.PartitionMaxBytes = fetchMaxBytes
	rp.CurrentLeaderEpoch = -1
	rp.LogStartOffset = -1
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	r.fetches++
	c.request(to, req, waitFetch)
}

// pause waits before the next request (not at all in the final pass).
func (r *lifeReader) pause() {
	if r.lw.phase {
		r.c.backoff(1)
		return
	}
	r.c.backoff(1 + r.c.w.rng.Int64N(lifePollMillisMax))
}

func (r *lifeReader) onResponse(tok uint64, resp kmsg.Response) {
	c, lw := r.c, r.lw
	if !lifeAccept(c, tok) {
		return
	}
	cur := r.cur[r.tp]
	switch m := resp.(type) {
	case *kmsg.MetadataResponse:
		lw.onMetadata(c, m)
		r.step()
		return
	}
	if cur.final && r.sentTick < lw.finalFrom {
		// Sent before the final pass began: its answer would move the
		// final cursor (a fetch at the high watermark would end the pass
		// with nothing read). Regression: seed 115.
		r.pause()
		return
	}
	switch m := resp.(type) {
	case *kmsg.ListOffsetsResponse:
		var ps []kmsg.ListOffsetsResponseTopicPartition
		for _, t := range m.Topics {
			for _, p := range t.Partitions {
				if t.Topic == r.tp.topic && p.Partition == r.tp.part {
					ps = append(ps, p)
				}
			}
		}
		if len(ps) != 1 || ps[0].ErrorCode != 0 {
			c.haveMeta = false
			c.backoff(backoffMillis)
			return
		}
		if !lw.logStart(r.tp, ps[0].Offset, r.sentTick, "ListOffsets(-2)") {
			return
		}
		lp := lw.parts[r.tp]
		lp.seenStart = ps[0].Offset
		cur.pos, cur.last, cur.recs = ps[0].Offset, -1, nil
	case *kmsg.FetchResponse:
		p, ok := fetchPartition(m, r.tp)
		code := m.ErrorCode
		if code == 0 && ok {
			code = p.ErrorCode
		}
		switch {
		case code == kerr.OffsetOutOfRange.Code && ok:
			// Kafka (and Gregor since the conformance harness) answers the
			// offsets -1 with OFFSET_OUT_OF_RANGE: nothing to check then.
			if p.LogStartOffset >= 0 && !lw.logStart(r.tp, p.LogStartOffset, r.sentTick, "Fetch") {
				return
			}
			if p.LogStartOffset >= 0 && r.pos >= p.LogStartOffset && r.pos <= p.HighWatermark {
				c.w.fail(FailDivergence, "lifecycle reader c%d %s: fetch at %d answered OFFSET_OUT_OF_RANGE with log start %d and high watermark %d",
					c.idx, r.tp, r.pos, p.LogStartOffset, p.HighWatermark)
				return
			}
			cur.pos = -1 // a new pass from the log start
			r.pause()
			return
		case code != 0 || !ok:
			c.haveMeta = false
			c.backoff(backoffMillis)
			return
		}
		end, ok := lw.checkFetch("lifecycle reader c"+strconv.Itoa(c.idx), r.tp, r.pos, r.sentTick, p, cur)
		if !ok {
			return
		}
		lp := lw.parts[r.tp]
		lp.seenStart, lp.seenHW = p.LogStartOffset, max(lp.seenHW, p.HighWatermark)
		if end > r.pos {
			cur.pos = end
		} else if r.pos >= p.HighWatermark {
			// The pass is at the end: the final one is done, another
			// starts from the log start.
			cur.passes++
			r.passes++
			if cur.final {
				cur.done = true
			} else {
				cur.pos = -1
			}
		}
	}
	r.pause()
}

func (r *lifeReader) onTimer(gen uint64) {
	if ok, _ := txnTimer(r.c, gen); ok {
		r.step()
	}
}

// --- the DeleteRecords admin ---

type lifeAdmin struct {
	c        *client
	lw       *lifeWorld
	tp       tpKey
	want     int64
	sentTick int64
	started  bool
}

func (a *lifeAdmin) step() {
	c, lw := a.c, a.lw
	if c.w.stopped {
		return
	}
	if c.stopping {
		c.wait = waitNothing
		return
	}
	if !a.started {
		// The first one after a while: there is nothing to delete yet.
		a.started = true
		c.backoff(c.w.expDelay(c.w.opts.LifeDeleteRecordsEveryMillis))
		return
	}
	if !c.haveMeta {
		lw.metadata(c)
		return
	}
	var dtps []tpKey
	for _, tp := range lw.tps {
		if !lw.parts[tp].compact {
			dtps = append(dtps, tp)
		}
	}
	tp := dtps[c.w.rng.IntN(len(dtps))]
	to := lw.leader(c, tp)
	if to == 0 {
		return
	}
	lp := lw.parts[tp]
	a.tp, a.want = tp, -1
	if c.w.rng.IntN(lifeDeleteLatestOneIn) != 0 {
		a.want = lp.seenStart + c.w.rng.Int64N(max(0, lp.seenHW-lp.seenStart)+1)
	}
	a.sentTick = lw.tick()
	req := kmsg.NewPtrDeleteRecordsRequest()
	req.SetVersion(2)
	req.TimeoutMillis = 5_000
	rt := kmsg.NewDeleteRecordsRequestTopic()
	rt.Topic = tp.topic
	rp := kmsg.NewDeleteRecordsRequestTopicPartition()
	rp.Partition, rp.Offset = tp.part, a.want
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	lw.deletes++
	c.w.tracef("lifecycle c%d delete-records %s to %d", c.idx, tp, a.want)
	c.request(to, req, waitDelete)
}

func (a *lifeAdmin) onResponse(tok uint64, resp kmsg.Response) {
	c, lw := a.c, a.lw
	if !lifeAccept(c, tok) {
		return
	}
	switch r := resp.(type) {
	case *kmsg.MetadataResponse:
		lw.onMetadata(c, r)
		a.step()
		return
	case *kmsg.DeleteRecordsResponse:
		code, low := kerr.UnknownServerError.Code, int64(-1)
		for _, t := range r.Topics {
			for _, p := range t.Partitions {
				if t.Topic == a.tp.topic && p.Partition == a.tp.part {
					code, low = p.ErrorCode, p.LowWatermark
				}
			}
		}
		if code != 0 {
			c.w.tracef("lifecycle c%d delete-records %s: %s", c.idx, a.tp, codeName(code))
			c.haveMeta = false
			break
		}
		c.w.tracef("lifecycle c%d delete-records %s low watermark %d", c.idx, a.tp, low)
		lw.deleteAcks++
		if low < a.want {
			c.w.fail(FailLogStartRegression, "lifecycle admin c%d %s: DeleteRecords to %d answered low watermark %d", c.idx, a.tp, a.want, low)
			return
		}
		if !lw.logStart(a.tp, low, a.sentTick, "DeleteRecords") {
			return
		}
	}
	c.backoff(c.w.expDelay(c.w.opts.LifeDeleteRecordsEveryMillis))
}

func (a *lifeAdmin) onTimer(gen uint64) {
	if ok, _ := txnTimer(a.c, gen); ok {
		a.step()
	}
}

// --- what is known of the partitions, and the checks ---

// committed records that r is at offset off of its partition (known
// committed: acknowledged, read, or in a replica's log). It fails the run
// if the offset held another record, or r another offset.
func (lw *lifeWorld) committed(off int64, r *lifeRec, how string) bool {
	lp := lw.parts[r.tp]
	if o, ok := lp.at[off]; ok && o != r {
		lw.w.fail(FailOffsetReused, "lifecycle %s: offset %d holds %s (%s) and held %s", r.tp, off, r, how, o)
		return false
	}
	if r.off >= 0 && r.off != off {
		lw.w.fail(linearizability.AnomalyDuplicate, "lifecycle %s: %s at offset %d (%s) and at offset %d", r.tp, r, off, how, r.off)
		return false
	}
	if r.off < 0 {
		r.off = off
		lp.at[off] = r
		if lp.compact {
			offs := lp.keyOffs[r.key]
			i, _ := slices.BinarySearch(offs, off)
			lp.keyOffs[r.key] = slices.Insert(offs, i, off)
		}
	}
	return true
}

// acked takes a producer's acknowledged batch at base.
func (lw *lifeWorld) acked(b *lifeBatch, base int64) bool {
	t := lw.tick()
	if lw.lastWrite > 0 {
		lw.lastWrite = max(lw.lastWrite, lw.w.now)
	}
	lp := lw.parts[b.tp]
	for i, r := range b.recs {
		if !lw.committed(base+int64(i), r, "acknowledged") {
			return false
		}
		r.ackAt = t
		j := sort.Search(len(lp.acked), func(j int) bool { return lp.acked[j].off > r.off })
		lp.acked = slices.Insert(lp.acked, j, r)
	}
	return true
}

// record finds the record a decoded record is, or fails the run.
func (lw *lifeWorld) record(who string, tp tpKey, d batch.DecodedRecord) *lifeRec {
	var id string
	for _, h := range d.Headers {
		if h.Key == lifeIDHeader {
			id = string(h.Value)
		}
	}
	r := lw.recs[id]
	if r == nil || r.tp != tp || r.key != string(d.Key) || r.tomb != (d.Value == nil) || !r.tomb && string(d.Value) != r.id {
		lw.w.fail(FailDivergence, "%s %s: offset %d holds a record no producer wrote there (id %q, key %q, value %q)",
			who, tp, d.Offset, id, d.Key, d.Value)
		return nil
	}
	return r
}

// canonical takes the records of a batch the state checker added to a
// lifecycle partition's canonical log (lw may be nil).
func (lw *lifeWorld) canonical(tp tpKey, recs []batch.DecodedRecord) bool {
	if lw == nil || lw.parts[tp] == nil {
		return true
	}
	for _, d := range recs {
		r := lw.record("state checker", tp, d)
		if r == nil || !lw.committed(d.Offset, r, "in the canonical log") {
			return false
		}
	}
	return true
}

// logStart checks a log start an answer to a request sent at tick sent
// reported, and records it.
func (lw *lifeWorld) logStart(tp tpKey, start, sent int64, what string) bool {
	lp := lw.parts[tp]
	i := sort.Search(len(lp.starts), func(i int) bool { return lp.starts[i].tick >= sent })
	if i > 0 && lp.starts[i-1].start > start {
		lw.w.fail(FailLogStartRegression, "%s: %s reported log start %d, below %d reported before it was sent", tp, what, start, lp.starts[i-1].start)
		return false
	}
	prev := int64(0)
	if n := len(lp.starts); n > 0 {
		prev = lp.starts[n-1].start
	}
	lp.starts = append(lp.starts, startEvent{tick: lw.tick(), start: max(prev, start)})
	return true
}

// clockAt is a broker's clock at world time t (brokerClock.NowMillis).
func clockAt(c *brokerClock, t int64) int64 {
	return epochMillis + c.offset + t + int64(float64(t)*c.drift)
}

// tombstoneMayBeGone reports whether a tombstone's delete.retention.ms
// may have passed: the cleaner stamps its batch with a horizon of its
// leader's clock plus delete.retention.ms no earlier than it was sent, and
// drops it by a later leader's clock past that.
func (lw *lifeWorld) tombstoneMayBeGone(r *lifeRec) bool {
	lo, hi := int64(1<<62), int64(-1<<62)
	for _, n := range lw.w.nodes {
		lo, hi = min(lo, clockAt(n.clock, r.sentAt)), max(hi, clockAt(n.clock, lw.w.now))
	}
	return hi > lo+lw.w.opts.LifeDeleteRetentionMillis
}

// newerKnown reports whether a record of key is known committed at an
// offset in (off, below).
func (lp *lifePart) newerKnown(key string, off, below int64) bool {
	offs := lp.keyOffs[key]
	i, found := slices.BinarySearch(offs, off)
	if found {
		i++
	}
	return i < len(offs) && offs[i] < below
}

// checkFetch checks a Fetch answer for tp at pos (sent at tick sent) and
// returns the offset after the last batch it returned.
func (lw *lifeWorld) checkFetch(who string, tp tpKey, pos, sent int64, p kmsg.FetchResponseTopicPartition, cur *lifeCursor) (int64, bool) {
	w, lp := lw.w, lw.parts[tp]
	if !lw.logStart(tp, p.LogStartOffset, sent, "Fetch") {
		return 0, false
	}
	bs, err := batch.Split(p.RecordBatches)
	if len(p.RecordBatches) > 0 && err != nil {
		w.fail(FailDivergence, "%s: fetch of %s returned undecodable batches: %v", who, tp, err)
		return 0, false
	}
	present := map[int64]*lifeRec{}
	end := pos
	for _, b := range bs {
		h, err := batch.ReadHeader(b)
		if err != nil {
			w.fail(FailDivergence, "%s: fetch of %s returned a corrupt batch: %v", who, tp, err)
			return 0, false
		}
		if h.LastOffset() < pos {
			continue
		}
		if end > pos && h.BaseOffset < end {
			w.fail(FailDivergence, "%s: fetch of %s at %d returned the batch [%d, %d] after one ending at %d",
				who, tp, pos, h.BaseOffset, h.LastOffset(), end-1)
			return 0, false
		}
		recs, err := batch.Records(b)
		if err != nil {
			w.fail(FailDivergence, "%s: fetch of %s returned a corrupt batch: %v", who, tp, err)
			return 0, false
		}
		for _, d := range recs {
			if d.Offset < pos {
				continue
			}
			r := lw.record(who, tp, d)
			if r == nil {
				return 0, false
			}
			if d.Offset <= cur.last {
				w.fail(linearizability.AnomalyNonmonotonicPoll, "%s %s: delivered offset %d (%s) after offset %d", who, tp, d.Offset, r, cur.last)
				return 0, false
			}
			cur.last = d.Offset
			if !lw.committed(d.Offset, r, "read") {
				return 0, false
			}
			present[d.Offset] = r
			if cur.final {
				cur.recs = append(cur.recs, lifeAtRead{d.Offset, r})
			}
		}
		end = h.LastOffset() + 1
	}
	lo := max(pos, p.LogStartOffset)
	if !lp.compact {
		for off := lo; off < end; off++ {
			if present[off] == nil {
				kind := FailDivergence
				if r := lp.at[off]; r != nil && r.ackAt > 0 {
					kind = FailAckedRecordGone
				}
				w.fail(kind, "%s %s: fetch at %d (log start %d) returned [%d, %d] without offset %d (holding %s)",
					who, tp, pos, p.LogStartOffset, lo, end-1, off, lp.at[off])
				return 0, false
			}
		}
		return end, true
	}
	i := sort.Search(len(lp.acked), func(i int) bool { return lp.acked[i].off >= lo })
	for ; i < len(lp.acked) && lp.acked[i].off < end; i++ {
		r := lp.acked[i]
		if r.ackAt > sent || present[r.off] != nil {
			continue
		}
		switch {
		case lp.newerKnown(r.key, r.off, p.HighWatermark):
			lw.dropsSuperseded++
		case r.tomb && lw.tombstoneMayBeGone(r):
			lw.dropsTombstone++
		default:
			w.fail(FailAckedRecordGone, "%s %s: fetch at %d returned [%d, %d] (high watermark %d) without %s, acknowledged at offset %d: no newer record of its key is known%s",
				who, tp, pos, lo, end-1, p.HighWatermark, r, r.off, tombNote(r))
			return 0, false
		}
	}
	return end, true
}

func tombNote(r *lifeRec) string {
	if r.tomb {
		return fmt.Sprintf(", and it was sent at %dms, within delete.retention.ms by every broker's clock", r.sentAt)
	}
	return ""
}

// --- the lifecycle phase ---

// runLifePhase lets the producers finish, the cleaner and retention act on
// the last writes, then reads every partition whole once more and checks
// the compacted topic's final state and the replicas' agreement.
func (w *World) runLifePhase() {
	lw := w.life
	w.tracef("phase lifecycle")
	lw.phase = true
	idle := func() bool {
		return !slices.ContainsFunc(lw.producers, func(p *lifeProducer) bool { return !p.idle() })
	}
	w.runUntil(w.now+lifePhaseMillis, idle)
	if w.stopped {
		return
	}
	if !idle() {
		w.fail(FailLiveness, "a lifecycle producer still had a batch to write %dms after the final read", lifePhaseMillis)
		return
	}
	// The settling counts from the last write: the liveness phase and the
	// final read took part of it already.
	o := w.opts
	settle := min(lifeSettleMillisMax, o.LifeDeleteRetentionMillis+2*o.LifeCleanerBackoffMillis+200)
	if lw.lastWrite == 0 {
		lw.lastWrite = w.now
	}
	if until := lw.lastWrite + settle; until > w.now {
		w.runUntil(until, nil)
		if w.stopped {
			return
		}
	}
	r := lw.reader
	lw.finalFrom = lw.tick()
	for _, tp := range lw.tps {
		*r.cur[tp] = lifeCursor{pos: -1, last: -1, final: true}
	}
	r.c.stopping = false
	if r.c.wait == waitNothing || r.c.wait == waitBackoff {
		r.c.backoff(1)
	}
	w.runUntil(w.now+lifePhaseMillis, r.finalDone)
	w.tracef("life-stats %s", lw.stats())
	if w.stopped {
		return
	}
	if !r.finalDone() {
		var behind []string
		for _, tp := range lw.tps {
			if cur := r.cur[tp]; !cur.done {
				behind = append(behind, fmt.Sprintf("%s at %d", tp, cur.pos))
			}
		}
		w.fail(FailLiveness, "the lifecycle reader did not read every partition whole within %dms: %s", lifePhaseMillis, strings.Join(behind, ", "))
		return
	}
	for _, tp := range lw.tps {
		if lw.parts[tp].compact && !lw.checkCompacted(tp, r.cur[tp].recs) {
			return
		}
	}
	w.checkReplicasAgree()
}

// checkCompacted holds the final pass over a compacted partition to the
// latest acknowledged record of every key.
func (lw *lifeWorld) checkCompacted(tp tpKey, read []lifeAtRead) bool {
	lp := lw.parts[tp]
	last := map[string]lifeAtRead{}
	for _, x := range read {
		last[x.r.key] = x
	}
	latest := map[string]*lifeRec{}
	for _, r := range lp.acked {
		latest[r.key] = r
	}
	keys := make([]string, 0, len(latest))
	for k := range latest {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		a := latest[k]
		l, ok := last[k]
		switch {
		case !ok && a.tomb && lw.tombstoneMayBeGone(a):
		case !ok && lw.unackedTombstone(tp, k, a.off):
		case !ok:
			lw.w.fail(FailCompactedState, "%s: key %s reads as nothing from the log start; its latest acknowledged record is %s at offset %d%s",
				tp, k, a, a.off, tombNote(a))
			return false
		case l.off < a.off:
			lw.w.fail(FailCompactedState, "%s: key %s reads as %s at offset %d from the log start; its latest acknowledged record is %s at offset %d",
				tp, k, l.r, l.off, a, a.off)
			return false
		}
	}
	return true
}

// unackedTombstone reports whether a tombstone of key not acknowledged
// may sit in tp beyond offset off.
func (lw *lifeWorld) unackedTombstone(tp tpKey, key string, off int64) bool {
	for _, r := range lw.recs {
		if r.tp == tp && r.key == key && r.tomb && r.ackAt == 0 && r.sentAt > 0 && (r.off < 0 || r.off > off) {
			return true
		}
	}
	return false
}

// checkReplicasAgree holds the live replicas of every partition that
// applied the same raft index to byte-identical batches from the log
// start on (compaction and retention are functions of the log and the
// entries, whatever each replica's segments).
func (w *World) checkReplicasAgree() {
	type replica struct {
		n  *node
		rs engine.ReplicaState
	}
	by := map[tpKey][]replica{}
	var tps []tpKey
	for _, n := range w.nodes {
		if n.down || n.dead || n.b == nil {
			continue
		}
		for _, rs := range n.b.Replicas() {
			k := tpKey{rs.Topic, rs.Partition}
			if rs.Lost || rs.Undurable || w.isRotten(replicaKey{n.id, k}) {
				continue
			}
			if by[k] == nil {
				tps = append(tps, k)
			}
			by[k] = append(by[k], replica{n, rs})
		}
	}
	slices.SortFunc(tps, func(a, b tpKey) int {
		if c := strings.Compare(a.topic, b.topic); c != 0 {
			return c
		}
		return int(a.part - b.part)
	})
	type stored struct {
		base, last int64
		data       []byte
	}
	read := func(x replica, from int64) ([]stored, error) {
		var out []stored
		_, err := x.n.b.ReplicaBatches(x.rs.Topic, x.rs.Partition, from, func(b []byte, base, last int64) error {
			if last >= from {
				out = append(out, stored{base, last, bytes.Clone(b)})
			}
			return nil
		})
		return out, err
	}
	compared := 0
	for _, tp := range tps {
		rs := by[tp]
		for i, a := range rs {
			for _, b := range rs[i+1:] {
				if a.rs.Applied != b.rs.Applied {
					continue
				}
				from := max(a.rs.StartOffset, b.rs.StartOffset)
				ba, errA := read(a, from)
				bb, errB := read(b, from)
				if errA != nil || errB != nil {
					w.fail(FailDivergence, "%s: reading brokers %d and %d's replicas at applied index %d: %v, %v", tp, a.n.id, b.n.id, a.rs.Applied, errA, errB)
					return
				}
				compared++
				for j := range max(len(ba), len(bb)) {
					if j >= len(ba) || j >= len(bb) || ba[j].base != bb[j].base || ba[j].last != bb[j].last || !bytes.Equal(ba[j].data, bb[j].data) {
						desc := func(s []stored) string {
							if j >= len(s) {
								return "nothing"
							}
							return fmt.Sprintf("[%d, %d] (%d bytes)", s[j].base, s[j].last, len(s[j].data))
						}
						w.fail(FailDivergence, "%s: brokers %d and %d applied index %d, but their batch %d from offset %d differs: %s against %s",
							tp, a.n.id, b.n.id, a.rs.Applied, j, from, desc(ba), desc(bb))
						return
					}
				}
			}
		}
	}
	w.tracef("replicas agree: %d pairs compared", compared)
}

func (lw *lifeWorld) stats() string {
	acked, tombs := 0, 0
	for _, lp := range lw.parts {
		acked += len(lp.acked)
		for _, r := range lp.acked {
			if r.tomb {
				tombs++
			}
		}
	}
	s := fmt.Sprintf("records %d acked %d tombstones %d superseded-gone %d tombstones-gone %d delete-records %d acked %d reader fetches %d passes %d",
		lw.n, acked, tombs, lw.dropsSuperseded, lw.dropsTombstone, lw.deletes, lw.deleteAcks, lw.reader.fetches, lw.reader.passes)
	for _, tp := range lw.tps {
		lp := lw.parts[tp]
		start := int64(0)
		if n := len(lp.starts); n > 0 {
			start = lp.starts[n-1].start
		}
		s += fmt.Sprintf(" %s start %d hw %d", tp, start, lp.seenHW)
	}
	return s
}

// --- the state checker's compacted canonical log ---

// verifyCompacted is checker.verify for a compacted partition: a
// replica's batch either is the canonical batch at its base offset, or a
// compaction of it (compactionOf), or the canonical batch is a compaction
// of the replica's (the checker first saw it compacted: the replica's
// then becomes canonical); a batch at a base offset the canonical log
// lacks must lie in a gap of it (its first sighting dropped it) and is
// added there; gaps are allowed everywhere.
func (c *checker) verifyCompacted(n *node, k tpKey, s *replicaSeen, hw int64, rotten bool, group uint64) bool {
	l := c.log(k)
	ok := true
	prev := int64(-1)
	fail := func(format string, args ...any) {
		c.w.fail(FailDivergence, "broker %d %s: "+format, append([]any{n.id, k}, args...)...)
		ok = false
	}
	_, err := n.b.ReplicaBatches(k.topic, k.part, s.verified, func(b []byte, base, last int64) error {
		if !ok || base >= hw {
			return nil
		}
		switch {
		case last >= hw:
			fail("batch [%d,%d] stored beyond the high watermark %d", base, last, hw)
			return nil
		case base <= prev:
			fail("batch [%d,%d] after one ending at %d", base, last, prev)
			return nil
		}
		prev = last
		i, found := slices.BinarySearchFunc(l.batches, base, canonAt)
		if found {
			cb := &l.batches[i]
			switch {
			case cb.last != last:
				fail("committed batch [%d,%d] differs from the canonical log's [%d,%d]", base, last, cb.base, cb.last)
			case bytes.Equal(cb.data, b):
			case compactionOf(b, cb.data) == nil:
			case compactionOf(cb.data, b) == nil:
				recs, _ := batch.Records(b)
				if !c.w.life.canonical(k, recs) {
					ok = false
					return nil
				}
				cb.data = bytes.Clone(b)
			default:
				fail("committed batch [%d,%d] is neither the canonical one nor a compaction of it: %v", base, last, compactionOf(b, cb.data))
			}
			return nil
		}
		if i > 0 && l.batches[i-1].last >= base || i < len(l.batches) && l.batches[i].base <= last {
			fail("committed batch [%d,%d] overlaps the canonical log's batches", base, last)
			return nil
		}
		recs, err := batch.Records(b)
		if err != nil {
			fail("committed batch at %d does not decode: %v", base, err)
			return nil
		}
		if !c.w.life.canonical(k, recs) {
			ok = false
			return nil
		}
		l.batches = slices.Insert(l.batches, i, canonBatch{base: base, last: last, data: bytes.Clone(b)})
		l.end = max(l.end, last+1)
		return nil
	})
	if err != nil && ok && rotten && errors.Is(err, segment.ErrCorrupt) {
		c.w.tracef("rot found %d %s: %v", n.id, k, err)
		s.corrupt = c.current(n, group)
		return true
	}
	if err != nil && ok {
		fail("reading committed batches: %v", err)
	}
	if ok {
		s.verified = hw
	}
	return ok
}

// compactionOf reports why batch small is not a compaction of batch big
// (nil if it is): the same header but for what compaction rewrites
// (length, CRC, record count, max timestamp, the delete horizon flag and
// first timestamp once a horizon is stamped, the codec of a batch kept
// empty), and a subset of its records (maybe none), each identical.
func compactionOf(small, big []byte) error {
	hs, err := batch.ReadHeader(small)
	if err != nil {
		return err
	}
	hb, err := batch.ReadHeader(big)
	if err != nil {
		return err
	}
	const horizon = 0x40 // the delete horizon attribute (KIP-534)
	ignore := int16(horizon)
	if hs.NumRecords == 0 {
		ignore |= 0x07 // a batch kept empty is not compressed
	}
	switch {
	case hs.BaseOffset != hb.BaseOffset || hs.LastOffsetDelta != hb.LastOffsetDelta:
		return fmt.Errorf("offsets [%d,%d] against [%d,%d]", hs.BaseOffset, hs.LastOffset(), hb.BaseOffset, hb.LastOffset())
	case hs.PartitionLeaderEpoch != hb.PartitionLeaderEpoch || hs.Magic != hb.Magic || hs.ProducerID != hb.ProducerID ||
		hs.ProducerEpoch != hb.ProducerEpoch || hs.BaseSequence != hb.BaseSequence:
		return fmt.Errorf("header fields differ")
	case hs.Attributes&^ignore != hb.Attributes&^ignore || hb.HasDeleteHorizon() && !hs.HasDeleteHorizon() && hs.NumRecords > 0:
		// Kafka's empty batch (writeEmptyHeader) carries no horizon and
		// both timestamps set to the batch's max timestamp.
		return fmt.Errorf("attributes %#x against %#x", hs.Attributes, hb.Attributes)
	case hs.NumRecords > 0 && hs.HasDeleteHorizon() == hb.HasDeleteHorizon() && hs.FirstTimestamp != hb.FirstTimestamp:
		return fmt.Errorf("first timestamp %d against %d", hs.FirstTimestamp, hb.FirstTimestamp)
	}
	rs, err := batch.Records(small)
	if err != nil {
		return err
	}
	rb, err := batch.Records(big)
	if err != nil {
		return err
	}
	j := 0
	for _, r := range rs {
		for j < len(rb) && rb[j].Offset < r.Offset {
			j++
		}
		if j == len(rb) || !sameRecord(r, rb[j]) {
			return fmt.Errorf("record at offset %d is not the original's", r.Offset)
		}
		j++
	}
	return nil
}

func sameRecord(a, b batch.DecodedRecord) bool {
	return a.Offset == b.Offset && a.Timestamp == b.Timestamp && bytes.Equal(a.Key, b.Key) && (a.Key == nil) == (b.Key == nil) &&
		bytes.Equal(a.Value, b.Value) && (a.Value == nil) == (b.Value == nil) &&
		slices.EqualFunc(a.Headers, b.Headers, func(x, y batch.RecordHeader) bool { return x.Key == y.Key && bytes.Equal(x.Value, y.Value) })
}
