package sim

import (
	"fmt"
	"slices"
	"strconv"

	"github.com/gregor-streaming/gregor/engine/batch"
	"github.com/gregor-streaming/gregor/linearizability"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Client roles.
type role uint8

const (
	roleAdmin      role = iota // creates the topics, waits for leaders
	roleProducer               // produces unique values under its mode's rules
	roleConsumer               // fetches forward from offsets, sometimes lists offsets
	roleFinal                  // reads every partition whole after the liveness phase
	roleChurn                  // creates, writes to and deletes topics of its own
	roleMember                 // a consumer group member (group.go)
	roleOffsets                // reads groups' offsets from outside, resets empty groups (groupcheck.go)
	roleStandalone             // commits its own positions to a group without members (group.go)
)

var roleNames = [...]string{roleAdmin: "admin", roleProducer: "producer", roleConsumer: "consumer", roleFinal: "final", roleChurn: "churn",
	roleMember: "member", roleOffsets: "offsets", roleStandalone: "standalone"}

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
	waitDelete
)

// Client limits.
const (
	thinkMillisMax     = 50  // pause between a client's operations
	backoffMillis      = 100 // pause after an error before trying again
	fetchMaxWaitMillis = 100 // long-poll bound of a consumer's fetch
	// fetchMaxBytes bounds a consumer's fetch (a larger first batch still
	// comes whole), so that one op carries tens of records, not thousands:
	// the history and porcupine's work stay proportional to the ops.
	fetchMaxBytes      = 1 << 10
	finalFetchMaxBytes = 1 << 20 // the final reader's
	produceTimeoutMs   = 1_000   // the broker-side timeout of a produce
	listOffsetsOneIn   = 6       // a consumer lists offsets once in this many ops
)

// attempt is one produce batch a producer is trying to get written.
type attempt struct {
	tp       tpKey
	values   []string
	seq      int32 // idempotent base sequence
	attempts int
	// op is the batch's history entry while a request carries it. An
	// idempotent producer's retries of one batch are one logical op, from
	// the first attempt's call to the acknowledgement (as a Kafka client
	// reports them): the broker deduplicates the retries, so the earlier
	// attempts are not separate writes. Other modes record every attempt.
	op int
}

// tpOp is one partition of a multi-partition fetch or list-offsets
// request and its history entry (-1: none).
type tpOp struct {
	tp tpKey
	op int
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

	// producer: the batches it is trying to get written (at most one per
	// partition, oldest first), and those the request in flight carries.
	// Like a Kafka producer it sends one request per broker, with a batch
	// for each of its partitions that broker leads.
	valueN  int
	pid     int64
	epoch   int16
	seqs    map[tpKey]int32
	pending []*attempt
	sent    []*attempt

	// consumer and final reader: one request per broker, one op per
	// partition in it.
	offsets  map[tpKey]int64
	fetching []tpOp
	// A list-offsets op asks a partition's end (-1), then its start (-2)
	// of the same broker: Kafka refuses a partition named twice in one
	// ListOffsets request. listTo is that broker; listStart marks the
	// second request.
	listTo    int32
	listStart bool
	next      int
	final     map[tpKey][]linearizability.Record

	// churn
	churn churnState

	// The group workload: a member's state, or the offsets reader's.
	mem *member
	rdr *offsetsReader
	std *standalone

	// cutUntil: the client cannot reach broker b before cutUntil[b].
	cutUntil [brokersMax + 1]int64

	// bg: a client of the transactional workload's processors (eos.go),
	// whose requests write nothing the final read reads.
	bg bool

	stopping bool // no new operations (liveness phase)
	done     bool // admin: topics ready; final: read complete
}

func newClient(w *World, idx int, r role, mode linearizability.Mode, tps []tpKey) *client {
	return &client{
		w: w, idx: idx, role: r, mode: mode, tps: tps, pid: -1,
		leaders: map[tpKey]int32{}, seqs: map[tpKey]int32{}, offsets: map[tpKey]int64{},
		final: map[tpKey][]linearizability.Record{},
	}
}

// idle reports whether the client has nothing in flight and starts nothing.
func (c *client) idle() bool {
	if c.background() {
		// The group workload runs on through the liveness phase and the
		// final read, until the final group checks (runGroupPhase).
		return true
	}
	return c.wait == waitNothing || (c.stopping && c.wait == waitBackoff && len(c.pending) == 0)
}

// background reports whether the client belongs to the group workload,
// whose requests write nothing the final read reads.
func (c *client) background() bool { return c.mem != nil || c.rdr != nil || c.std != nil || c.bg }

// randomBroker picks a broker to ask for metadata. A dead broker (one
// that refused its rotten WAL) is skipped, as a refused connection would
// be at once.
func (c *client) randomBroker() int32 {
	var ids []int32
	for _, n := range c.w.nodes {
		if !n.dead {
			ids = append(ids, n.id)
		}
	}
	return ids[c.w.rng.IntN(len(ids))]
}

// arm starts a timer; the client's previous timer is forgotten.
func (c *client) arm(ms int64) {
	c.timer++
	c.w.schedule(ms, &event{kind: evClient, client: c.idx, gen: c.timer})
}

func (c *client) request(to int32, req kmsg.Request, w waitKind) {
	c.requestFor(to, req, w, c.w.opts.ClientTimeoutMillis)
}

// requestFor is request with a timeout of its own.
func (c *client) requestFor(to int32, req kmsg.Request, w waitKind, timeout int64) {
	c.wait = w
	c.token = c.w.send(c.idx, to, req)
	c.arm(timeout)
}

func (c *client) backoff(ms int64) {
	c.wait = waitBackoff
	c.token = 0
	c.arm(ms)
}

func (c *client) think() { c.backoff(c.w.rng.Int64N(thinkMillisMax + 1)) }

// kick starts the client.
func (c *client) kick() {
	if c.mem != nil {
		c.mem.kick()
		return
	}
	c.backoff(1 + c.w.rng.Int64N(thinkMillisMax))
}

// onTimer handles a timeout of the pending request, or the end of a pause.
func (c *client) onTimer(gen uint64) {
	if c.mem != nil {
		c.mem.onTimer(gen)
		return
	}
	if gen != c.timer {
		return
	}
	c.w.tracef("timer c%d wait %d", c.idx, c.wait)
	switch c.wait {
	case waitBackoff, waitNothing:
		c.wait = waitNothing
		c.nextOp()
		return
	case waitProduce:
		// The outcome is unknown: the ops keep Return = ReturnUnknown.
		if c.role != roleChurn {
			for _, a := range c.sent {
				c.produceFailed(a, false)
			}
			c.sent = nil
		}
	case waitFetch, waitList:
		c.fetching = nil
	}
	if c.rdr != nil {
		c.readerTimedOut()
	}
	if c.std != nil {
		c.standaloneTimedOut()
	}
	c.haveMeta = false
	c.token = 0
	if c.std != nil {
		c.std.fails++
		c.backoff(20) // soon, elsewhere
		return
	}
	c.backoff(backoffMillis)
}

func (c *client) onResponse(tok uint64, resp kmsg.Response) {
	if c.mem != nil {
		c.mem.onResponse(tok, resp)
		return
	}
	if tok != c.token || tok == 0 {
		return // an answer after its timeout
	}
	c.token = 0
	c.timer++ // cancel the timeout
	if c.role == roleChurn {
		c.onChurnResponse(resp)
		return
	}
	if c.rdr != nil {
		c.onReaderResponse(resp)
		return
	}
	if c.std != nil {
		c.onStandaloneResponse(resp)
		return
	}
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
	if c.rdr != nil {
		c.nextReader()
		return
	}
	if c.std != nil {
		c.nextStandalone()
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
	case roleChurn:
		c.nextChurn()
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
	if c.stopping && len(c.pending) == 0 || len(c.tps) == 0 {
		c.wait = waitNothing
		return
	}
	// The broker: the leader of the oldest pending batch, or of a random
	// partition.
	tp := c.tps[c.w.rng.IntN(len(c.tps))]
	if len(c.pending) > 0 {
		tp = c.pending[0].tp
	}
	to := c.leaderOf(tp)
	if to == 0 {
		return
	}
	// Its batches: the pending ones it leads, and a new one for each other
	// partition it leads (none once stopping).
	c.sent = c.sent[:0]
	for _, tp := range c.tps {
		if c.leaders[tp] != to {
			continue
		}
		i := slices.IndexFunc(c.pending, func(a *attempt) bool { return a.tp == tp })
		if i < 0 {
			if c.stopping {
				continue
			}
			a := &attempt{tp: tp, op: -1}
			for range 1 + c.w.rng.IntN(c.w.opts.ValuesPerProduceMax) {
				c.valueN++
				a.values = append(a.values, "c"+strconv.Itoa(c.idx)+"."+strconv.Itoa(c.valueN))
			}
			if c.mode == linearizability.ExactlyOnce {
				a.seq = c.seqs[tp]
			}
			c.pending = append(c.pending, a)
			i = len(c.pending) - 1
		}
		c.sent = append(c.sent, c.pending[i])
	}
	acks := int16(-1)
	if c.mode == linearizability.AtMostOnce && c.w.rng.IntN(2) == 0 {
		acks = 0
	}
	req := kmsg.NewPtrProduceRequest()
	req.SetVersion(9)
	req.Acks = acks
	req.TimeoutMillis = produceTimeoutMs
	for _, a := range c.sent {
		a.attempts++
		opts := batch.BuildOptions{ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1, FirstTimestamp: c.w.now + epochMillis}
		if c.mode == linearizability.ExactlyOnce {
			opts.ProducerID, opts.ProducerEpoch, opts.BaseSequence = c.pid, c.epoch, a.seq
		}
		addProduce(req, a.tp, opts, valueRecords(a.values))
		if a.op < 0 || c.mode != linearizability.ExactlyOnce {
			a.op = c.w.record(linearizability.Op{Client: c.idx, Kind: linearizability.Produce, TP: a.tp.tp(),
				Values: a.values, Consumer: -1})
		}
	}
	if acks == 0 {
		// Nothing will come back: the outcomes stay unknown.
		c.w.send(c.idx, to, req)
		c.pending = slices.DeleteFunc(c.pending, func(a *attempt) bool { return slices.Contains(c.sent, a) })
		c.sent = nil
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

// produceCode finds a partition's answer in a produce response.
func produceCode(r *kmsg.ProduceResponse, tp tpKey) (kmsg.ProduceResponseTopicPartition, bool) {
	for _, t := range r.Topics {
		if t.Topic != tp.topic {
			continue
		}
		for _, p := range t.Partitions {
			if p.Partition == tp.part {
				return p, true
			}
		}
	}
	return kmsg.ProduceResponseTopicPartition{}, false
}

func (c *client) onProduce(r *kmsg.ProduceResponse) {
	sent := c.sent
	c.sent = nil
	failed, newPID := false, false
	for _, a := range sent {
		op := &c.w.ops[a.op]
		p, ok := produceCode(r, a.tp)
		switch {
		case !ok:
			// Not answered: unknown.
			c.produceFailed(a, false)
			failed = true
		case p.ErrorCode == 0:
			op.Return, op.BaseOffset = c.w.nowNanos(), p.BaseOffset
			if c.mode == linearizability.ExactlyOnce {
				c.seqs[a.tp] = batch.IncrementSequence(a.seq, int32(len(a.values)))
			}
			c.drop(a)
		case definiteProduceErrors[p.ErrorCode]:
			if c.mode != linearizability.ExactlyOnce || a.attempts == 1 {
				// This attempt was not written (an idempotent batch's
				// earlier attempts may have been: it stays unknown).
				op.Return, op.Err = c.w.nowNanos(), codeName(p.ErrorCode)
			}
			c.produceFailed(a, true)
			failed = true
			if p.ErrorCode == kerr.OutOfOrderSequenceNumber.Code || p.ErrorCode == kerr.UnknownProducerID.Code || p.ErrorCode == kerr.InvalidProducerEpoch.Code {
				newPID = true
			}
		default:
			// NOT_LEADER_OR_FOLLOWER, REQUEST_TIMED_OUT...: the entry may
			// still commit. The op keeps Return = ReturnUnknown.
			c.produceFailed(a, false)
			failed = true
		}
	}
	if newPID {
		// Start over with a new producer id; the pending batches are
		// dropped (retrying them under a new id could write them twice).
		c.pid, c.pending = -1, nil
	}
	if !failed {
		c.think()
		return
	}
	c.haveMeta = false
	c.backoff(backoffMillis)
}

// drop forgets a batch: written, or given up.
func (c *client) drop(a *attempt) {
	c.pending = slices.DeleteFunc(c.pending, func(x *attempt) bool { return x == a })
}

// produceFailed decides whether a batch is retried.
func (c *client) produceFailed(a *attempt, definite bool) {
	switch c.mode {
	case linearizability.AtMostOnce:
		c.drop(a)
	case linearizability.AtLeastOnce:
		if a.attempts > c.w.opts.ProduceRetries && !definite {
			c.drop(a)
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
	// Every partition that broker leads, in one request.
	var tps []tpKey
	for _, tp := range c.tps {
		if c.leaders[tp] == to {
			tps = append(tps, tp)
		}
	}
	if c.w.rng.IntN(listOffsetsOneIn) == 0 {
		c.sendList(to, tps)
		return
	}
	c.sendFetch(to, tps, int32(c.w.rng.Int64N(fetchMaxWaitMillis+1)), c.idx)
}

func (c *client) sendFetch(to int32, tps []tpKey, maxWait int32, consumer int) {
	req := kmsg.NewPtrFetchRequest()
	req.SetVersion(12)
	req.ReplicaID = -1
	req.MaxWaitMillis = maxWait
	req.MinBytes = 1
	maxBytes := int32(fetchMaxBytes)
	if c.role == roleFinal {
		maxBytes = finalFetchMaxBytes
	}
	req.MaxBytes = maxBytes * int32(len(tps))
	req.SessionEpoch = -1
	c.fetching = c.fetching[:0]
	for _, tp := range tps {
		rt := kmsg.NewFetchRequestTopic()
		rt.Topic = tp.topic
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition = tp.part
		rp.FetchOffset = c.offsets[tp]
		rp.PartitionMaxBytes = maxBytes
		rp.CurrentLeaderEpoch = -1
		rp.LogStartOffset = -1
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		op := -1
		if c.role == roleConsumer {
			op = c.w.record(linearizability.Op{Client: c.idx, Kind: linearizability.Fetch, TP: tp.tp(),
				Offset: c.offsets[tp], Consumer: consumer})
		}
		c.fetching = append(c.fetching, tpOp{tp, op})
	}
	c.request(to, req, waitFetch)
}

func (c *client) sendList(to int32, tps []tpKey) {
	c.fetching = c.fetching[:0]
	for _, tp := range tps {
		op := c.w.record(linearizability.Op{Client: c.idx, Kind: linearizability.ListOffsets, TP: tp.tp(), Consumer: -1})
		c.fetching = append(c.fetching, tpOp{tp, op})
	}
	c.listTo, c.listStart = to, false
	c.requestList(-1)
}

// requestList asks the listed partitions' offsets at ts (-1: the end, -2:
// the start) of c.listTo.
func (c *client) requestList(ts int64) {
	req := kmsg.NewPtrListOffsetsRequest()
	req.SetVersion(7)
	req.ReplicaID = -1
	for _, f := range c.fetching {
		rt := kmsg.NewListOffsetsRequestTopic()
		rt.Topic = f.tp.topic
		rp := kmsg.NewListOffsetsRequestTopicPartition()
		rp.Partition = f.tp.part
		rp.Timestamp = ts
		rp.CurrentLeaderEpoch = -1
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
	}
	c.request(c.listTo, req, waitList)
}

// fetchPartition finds a partition's answer in a fetch response.
func fetchPartition(r *kmsg.FetchResponse, tp tpKey) (kmsg.FetchResponseTopicPartition, bool) {
	for _, t := range r.Topics {
		if t.Topic != tp.topic {
			continue
		}
		for _, p := range t.Partitions {
			if p.Partition == tp.part {
				return p, true
			}
		}
	}
	return kmsg.FetchResponseTopicPartition{}, false
}

func (c *client) onFetch(r *kmsg.FetchResponse) {
	fetching := c.fetching
	c.fetching = nil
	failed := false
	for _, f := range fetching {
		tp := f.tp
		var op *linearizability.Op
		if f.op >= 0 {
			op = &c.w.ops[f.op]
		}
		code := r.ErrorCode
		p, ok := fetchPartition(r, tp)
		if code == 0 && ok {
			code = p.ErrorCode
		}
		if code != 0 || !ok {
			if op != nil && code != 0 {
				op.Return, op.Err = c.w.nowNanos(), codeName(code)
			}
			failed = true
			continue
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
		}
	}
	if failed {
		c.haveMeta = false
		c.backoff(backoffMillis)
		return
	}
	if c.role == roleFinal {
		c.wait = waitNothing
		c.nextOp()
		return
	}
	c.think()
}

func (c *client) onList(r *kmsg.ListOffsetsResponse) {
	fetching := c.fetching
	failed := false
	for _, f := range fetching {
		op := &c.w.ops[f.op]
		var ps []kmsg.ListOffsetsResponseTopicPartition
		for _, t := range r.Topics {
			if t.Topic != f.tp.topic {
				continue
			}
			for _, p := range t.Partitions {
				if p.Partition == f.tp.part {
					ps = append(ps, p)
				}
			}
		}
		if len(ps) != 1 {
			failed = true
			continue
		}
		if code := ps[0].ErrorCode; code != 0 {
			op.Return, op.Err = c.w.nowNanos(), codeName(code)
			failed = true
			continue
		}
		if c.listStart {
			op.Return, op.Start = c.w.nowNanos(), ps[0].Offset
		} else {
			op.End = ps[0].Offset
		}
	}
	if failed {
		c.fetching = nil
		c.haveMeta = false
		c.backoff(backoffMillis)
		return
	}
	if !c.listStart {
		// The op spans both requests, and its end was read inside it.
		c.listStart = true
		c.requestList(-2)
		return
	}
	c.fetching = nil
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
	c.sendFetch(to, []tpKey{tp}, 0, -1)
}

func codeName(code int16) string {
	if e := kerr.TypedErrorForCode(code); e != nil {
		return e.Message
	}
	return "error " + strconv.Itoa(int(code))
}
