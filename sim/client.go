package sim

import (
	"fmt"
	"strconv"

	"github.com/gregor-streaming/gregor/engine/batch"
	"github.com/gregor-streaming/gregor/linearizability"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Client roles.
type role uint8

const (
	roleAdmin    role = iota // creates the topics, waits for leaders
	roleProducer             // produces unique values under its mode's rules
	roleConsumer             // fetches forward from offsets, sometimes lists offsets
	roleFinal                // reads every partition whole after the liveness phase
)

var roleNames = [...]string{roleAdmin: "admin", roleProducer: "producer", roleConsumer: "consumer", roleFinal: "final"}

// What a client is waiting for.
type waitKind uint8

const (
	waitNothing waitKind = iota
	waitBackoff
	waitMetadata
	waitCreate
	waitInitPID
	waitProduce
	waitFetch
	waitList
)

// Client limits.
const (
	thinkMillisMax     = 40  // pause between a client's operations
	backoffMillis      = 100 // pause after an error before trying again
	valuesPerProduce   = 3   // at most this many records per produce
	fetchMaxWaitMillis = 300 // long-poll bound of a consumer's fetch
	fetchMaxBytes      = 64 << 10
	produceTimeoutMs   = 1_000 // the broker-side timeout of a produce
	listOffsetsOneIn   = 6     // a consumer lists offsets once in this many ops
)

// attempt is one produce batch a producer is trying to get written.
type attempt struct {
	tp       tpKey
	values   []string
	acks     int16
	seq      int32 // idempotent base sequence
	attempts int
}

// client is one workload client: a small state machine driven by the
// world's events. It runs one request at a time.
type client struct {
	w     *World
	idx   int
	role  role
	mode  linearizability.Mode
	tps   []tpKey // partitions it produces to or reads
	token uint64
	wait  waitKind
	timer uint64 // generation of the armed timer; older ones are ignored

	leaders  map[tpKey]int32
	haveMeta bool
	op       int // index of the pending op in w.ops, or -1

	// producer
	valueN int
	pid    int64
	epoch  int16
	seqs   map[tpKey]int32
	cur    *attempt

	// consumer and final reader
	offsets  map[tpKey]int64
	fetching tpKey
	next     int
	final    map[tpKey][]linearizability.Record

	stopping bool // no new operations (liveness phase)
	done     bool // admin: topics ready; final: read complete
}

func newClient(w *World, idx int, r role, mode linearizability.Mode, tps []tpKey) *client {
	return &client{
		w: w, idx: idx, role: r, mode: mode, tps: tps, op: -1, pid: -1,
		leaders: map[tpKey]int32{}, seqs: map[tpKey]int32{}, offsets: map[tpKey]int64{},
		final: map[tpKey][]linearizability.Record{},
	}
}

// idle reports whether the client has nothing in flight and starts nothing.
func (c *client) idle() bool {
	return c.wait == waitNothing || (c.stopping && c.wait == waitBackoff && c.cur == nil)
}

func (c *client) randomBroker() int32 { return int32(1 + c.w.rng.IntN(len(c.w.nodes))) }

// arm starts a timer; the client's previous timer is forgotten.
func (c *client) arm(ms int64) {
	c.timer++
	c.w.schedule(ms, &event{kind: evClient, client: c.idx, gen: c.timer})
}

func (c *client) request(to int32, req kmsg.Request, w waitKind) {
	c.wait = w
	c.token = c.w.send(c.idx, to, req)
	c.arm(c.w.opts.ClientTimeoutMillis)
}

func (c *client) backoff(ms int64) {
	c.wait = waitBackoff
	c.token = 0
	c.arm(ms)
}

func (c *client) think() { c.backoff(c.w.rng.Int64N(thinkMillisMax + 1)) }

// kick starts the client.
func (c *client) kick() { c.backoff(1 + c.w.rng.Int64N(thinkMillisMax)) }

// onTimer handles a timeout of the pending request, or the end of a pause.
func (c *client) onTimer(gen uint64) {
	if gen != c.timer {
		return
	}
	c.w.tracef("timer c%d wait %d", c.idx, c.wait)
	switch c.wait {
	case waitBackoff, waitNothing:
		c.wait = waitNothing
		c.nextOp()
		return
	case waitProduce, waitFetch, waitList:
		// The outcome is unknown: the op keeps Return = ReturnUnknown.
		c.op = -1
		if c.wait == waitProduce {
			c.produceFailed(false)
		}
	}
	c.haveMeta = false
	c.token = 0
	c.backoff(backoffMillis)
}

func (c *client) onResponse(tok uint64, resp kmsg.Response) {
	if tok != c.token || tok == 0 {
		return // an answer after its timeout
	}
	c.token = 0
	c.timer++ // cancel the timeout
	switch r := resp.(type) {
	case *kmsg.MetadataResponse:
		c.onMetadata(r)
	case *kmsg.CreateTopicsResponse:
		c.onCreate(r)
	case *kmsg.InitProducerIDResponse:
		c.onInitPID(r)
	case *kmsg.ProduceResponse:
		c.onProduce(r)
	case *kmsg.FetchResponse:
		c.onFetch(r)
	case *kmsg.ListOffsetsResponse:
		c.onList(r)
	default:
		panic(fmt.Sprintf("sim: unexpected response %T", resp))
	}
}

// nextOp decides what to do next.
func (c *client) nextOp() {
	if c.w.stopped {
		return
	}
	if !c.haveMeta {
		req := kmsg.NewPtrMetadataRequest()
		req.SetVersion(12)
		c.request(c.randomBroker(), req, waitMetadata)
		return
	}
	switch c.role {
	case roleAdmin:
		c.nextAdmin()
	case roleProducer:
		c.nextProduce()
	case roleConsumer:
		c.nextConsume()
	case roleFinal:
		c.nextFinal()
	}
}

func (c *client) onMetadata(r *kmsg.MetadataResponse) {
	clear(c.leaders)
	for _, t := range r.Topics {
		if t.Topic == nil || t.ErrorCode != 0 {
			continue
		}
		for _, p := range t.Partitions {
			if p.ErrorCode == 0 && p.Leader >= 1 && int(p.Leader) <= len(c.w.nodes) {
				c.leaders[tpKey{*t.Topic, p.Partition}] = p.Leader
			}
		}
	}
	c.haveMeta = true
	c.wait = waitNothing
	c.nextOp()
}

// leaderOf returns the broker the client believes leads tp, or 0 after
// asking for fresh metadata.
func (c *client) leaderOf(tp tpKey) int32 {
	if l, ok := c.leaders[tp]; ok {
		return l
	}
	c.haveMeta = false
	c.backoff(backoffMillis)
	return 0
}

// --- admin ---

func (c *client) nextAdmin() {
	if c.done {
		c.wait = waitNothing
		return
	}
	missing := false
	for _, tp := range c.w.allTPs() {
		if _, ok := c.leaders[tp]; !ok {
			missing = true
		}
	}
	if !missing {
		c.done = true
		c.wait = waitNothing
		c.w.tracef("admin: every partition has a leader")
		return
	}
	req := kmsg.NewPtrCreateTopicsRequest()
	req.SetVersion(7)
	req.TimeoutMillis = 5_000
	for _, name := range c.w.topics {
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic = name
		rt.NumPartitions = int32(c.w.opts.Partitions)
		rt.ReplicationFactor = replicationFactor
		req.Topics = append(req.Topics, rt)
	}
	c.request(c.randomBroker(), req, waitCreate)
}

func (c *client) onCreate(*kmsg.CreateTopicsResponse) {
	// Whatever the answer, look at the metadata again after a pause.
	c.haveMeta = false
	c.backoff(backoffMillis * 3)
}

// --- producer ---

func (c *client) nextProduce() {
	if c.mode == linearizability.ExactlyOnce && c.pid < 0 {
		req := kmsg.NewPtrInitProducerIDRequest()
		req.SetVersion(4)
		req.TransactionTimeoutMillis = 60_000
		req.ProducerID, req.ProducerEpoch = -1, -1
		c.request(c.randomBroker(), req, waitInitPID)
		return
	}
	if c.cur == nil {
		if c.stopping || len(c.tps) == 0 {
			c.wait = waitNothing
			return
		}
		tp := c.tps[c.w.rng.IntN(len(c.tps))]
		n := 1 + c.w.rng.IntN(valuesPerProduce)
		a := &attempt{tp: tp, acks: -1}
		for range n {
			c.valueN++
			a.values = append(a.values, "c"+strconv.Itoa(c.idx)+"."+strconv.Itoa(c.valueN))
		}
		if c.mode == linearizability.AtMostOnce && c.w.rng.IntN(2) == 0 {
			a.acks = 0
		}
		if c.mode == linearizability.ExactlyOnce {
			a.seq = c.seqs[tp]
		}
		c.cur = a
	}
	a := c.cur
	to := c.leaderOf(a.tp)
	if to == 0 {
		return
	}
	a.attempts++
	opts := batch.BuildOptions{ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1, FirstTimestamp: c.w.now + epochMillis}
	if c.mode == linearizability.ExactlyOnce {
		opts.ProducerID, opts.ProducerEpoch, opts.BaseSequence = c.pid, c.epoch, a.seq
	}
	recs := make([]batch.Record, len(a.values))
	for i, v := range a.values {
		recs[i] = batch.Record{Value: []byte(v)}
	}
	req := kmsg.NewPtrProduceRequest()
	req.SetVersion(9)
	req.Acks = a.acks
	req.TimeoutMillis = produceTimeoutMs
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = a.tp.topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Partition = a.tp.part
	rp.Records = batch.Build(opts, recs)
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	c.op = c.w.record(linearizability.Op{Client: c.idx, Kind: linearizability.Produce, TP: a.tp.tp(),
		Values: a.values, Consumer: -1})
	if a.acks == 0 {
		// Nothing will come back: the outcome stays unknown.
		c.w.send(c.idx, to, req)
		c.op, c.cur = -1, nil
		c.think()
		return
	}
	c.request(to, req, waitProduce)
}

func (c *client) onInitPID(r *kmsg.InitProducerIDResponse) {
	if r.ErrorCode != 0 {
		c.backoff(backoffMillis)
		return
	}
	c.pid, c.epoch = r.ProducerID, r.ProducerEpoch
	clear(c.seqs)
	c.think()
}

// definiteProduceErrors are the Produce answers that prove the batch was
// not written. Every other error leaves the outcome unknown.
var definiteProduceErrors = map[int16]bool{
	kerr.UnknownTopicOrPartition.Code:  true,
	kerr.InvalidRecord.Code:            true,
	kerr.CorruptMessage.Code:           true,
	kerr.MessageTooLarge.Code:          true,
	kerr.InvalidRequiredAcks.Code:      true,
	kerr.OutOfOrderSequenceNumber.Code: true,
	kerr.InvalidProducerEpoch.Code:     true,
	kerr.UnknownProducerID.Code:        true,
}

func (c *client) onProduce(r *kmsg.ProduceResponse) {
	a := c.cur
	p := r.Topics[0].Partitions[0]
	op := &c.w.ops[c.op]
	c.op = -1
	switch {
	case p.ErrorCode == 0:
		op.Return, op.BaseOffset = c.w.nowNanos(), p.BaseOffset
		if c.mode == linearizability.ExactlyOnce {
			c.seqs[a.tp] = batch.IncrementSequence(a.seq, int32(len(a.values)))
		}
		c.cur = nil
		c.think()
		return
	case definiteProduceErrors[p.ErrorCode]:
		op.Return, op.Err = c.w.nowNanos(), codeName(p.ErrorCode)
		c.produceFailed(true)
		if p.ErrorCode == kerr.OutOfOrderSequenceNumber.Code || p.ErrorCode == kerr.UnknownProducerID.Code || p.ErrorCode == kerr.InvalidProducerEpoch.Code {
			// Start over with a new producer id; the batch is dropped.
			c.pid, c.cur = -1, nil
		}
	default:
		// NOT_LEADER_OR_FOLLOWER, REQUEST_TIMED_OUT...: the entry may
		// still commit. The op keeps Return = ReturnUnknown.
		c.produceFailed(false)
	}
	c.haveMeta = false
	c.backoff(backoffMillis)
}

// produceFailed decides whether the current batch is retried.
func (c *client) produceFailed(definite bool) {
	a := c.cur
	if a == nil {
		return
	}
	switch c.mode {
	case linearizability.AtMostOnce:
		c.cur = nil
	case linearizability.AtLeastOnce:
		if a.attempts > c.w.opts.ProduceRetries && !definite {
			c.cur = nil
		}
	case linearizability.ExactlyOnce:
		// Retry the same batch, same sequence, until it is acknowledged.
	}
}

// --- consumer ---

func (c *client) nextConsume() {
	if c.stopping || len(c.tps) == 0 {
		c.wait = waitNothing
		return
	}
	tp := c.tps[c.next%len(c.tps)]
	c.next++
	to := c.leaderOf(tp)
	if to == 0 {
		return
	}
	if c.w.rng.IntN(listOffsetsOneIn) == 0 {
		c.sendList(to, tp)
		return
	}
	c.sendFetch(to, tp, int32(c.w.rng.Int64N(fetchMaxWaitMillis+1)), c.idx)
}

func (c *client) sendFetch(to int32, tp tpKey, maxWait int32, consumer int) {
	req := kmsg.NewPtrFetchRequest()
	req.SetVersion(12)
	req.ReplicaID = -1
	req.MaxWaitMillis = maxWait
	req.MinBytes = 1
	req.MaxBytes = fetchMaxBytes
	req.SessionEpoch = -1
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = tp.topic
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.Partition = tp.part
	rp.FetchOffset = c.offsets[tp]
	rp.PartitionMaxBytes = fetchMaxBytes
	rp.CurrentLeaderEpoch = -1
	rp.LogStartOffset = -1
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	if c.role == roleConsumer {
		c.op = c.w.record(linearizability.Op{Client: c.idx, Kind: linearizability.Fetch, TP: tp.tp(),
			Offset: c.offsets[tp], Consumer: consumer})
	}
	c.fetching = tp
	c.request(to, req, waitFetch)
}

func (c *client) sendList(to int32, tp tpKey) {
	req := kmsg.NewPtrListOffsetsRequest()
	req.SetVersion(7)
	req.ReplicaID = -1
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = tp.topic
	for _, ts := range []int64{-2, -1} {
		rp := kmsg.NewListOffsetsRequestTopicPartition()
		rp.Partition = tp.part
		rp.Timestamp = ts
		rp.CurrentLeaderEpoch = -1
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	c.op = c.w.record(linearizability.Op{Client: c.idx, Kind: linearizability.ListOffsets, TP: tp.tp(), Consumer: -1})
	c.request(to, req, waitList)
}

func (c *client) onFetch(r *kmsg.FetchResponse) {
	tp := c.fetching
	var op *linearizability.Op
	if c.op >= 0 {
		op = &c.w.ops[c.op]
		c.op = -1
	}
	code := r.ErrorCode
	var p kmsg.FetchResponseTopicPartition
	if code == 0 {
		p = r.Topics[0].Partitions[0]
		code = p.ErrorCode
	}
	if code != 0 {
		if op != nil {
			op.Return, op.Err = c.w.nowNanos(), codeName(code)
		}
		c.haveMeta = false
		c.backoff(backoffMillis)
		return
	}
	var recs []linearizability.Record
	rest := p.RecordBatches
	bs, err := batch.Split(rest)
	if len(rest) > 0 && err != nil {
		c.w.fail(FailDivergence, "client %d: fetch of %s returned undecodable batches: %v", c.idx, tp, err)
		return
	}
	for _, b := range bs {
		rs, err := batch.Records(b)
		if err != nil {
			c.w.fail(FailDivergence, "client %d: fetch of %s returned a corrupt batch: %v", c.idx, tp, err)
			return
		}
		for _, rec := range rs {
			if rec.Offset >= c.offsets[tp] {
				recs = append(recs, linearizability.Record{Offset: rec.Offset, Value: string(rec.Value)})
			}
		}
	}
	if op != nil {
		op.Return, op.Records, op.HighWatermark = c.w.nowNanos(), recs, p.HighWatermark
	}
	if len(recs) > 0 {
		c.offsets[tp] = recs[len(recs)-1].Offset + 1
	}
	if c.role == roleFinal {
		c.final[tp] = append(c.final[tp], recs...)
		if len(recs) == 0 && c.offsets[tp] >= p.HighWatermark {
			c.next++ // this partition is read whole
		}
		c.wait = waitNothing
		c.nextOp()
		return
	}
	c.think()
}

func (c *client) onList(r *kmsg.ListOffsetsResponse) {
	op := &c.w.ops[c.op]
	c.op = -1
	ps := r.Topics[0].Partitions
	for _, p := range ps {
		if p.ErrorCode != 0 {
			op.Return, op.Err = c.w.nowNanos(), codeName(p.ErrorCode)
			c.haveMeta = false
			c.backoff(backoffMillis)
			return
		}
	}
	op.Return, op.Start, op.End = c.w.nowNanos(), ps[0].Offset, ps[1].Offset
	c.think()
}

// --- final reader ---

func (c *client) nextFinal() {
	if c.next >= len(c.tps) {
		c.done = true
		c.wait = waitNothing
		return
	}
	tp := c.tps[c.next]
	to := c.leaderOf(tp)
	if to == 0 {
		return
	}
	c.sendFetch(to, tp, 0, -1)
}

func codeName(code int16) string {
	if e := kerr.TypedErrorForCode(code); e != nil {
		return e.Message
	}
	return "error " + strconv.Itoa(int(code))
}
