package engine

import (
	"errors"

	"github.com/gregor-streaming/gregor/engine/rsm"
	"github.com/gregor-streaming/gregor/engine/segment"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Fetch, versions 4-12.
//
// Behavior:
//   - Leader only (no follower fetching): NOT_LEADER_OR_FOLLOWER elsewhere.
//     CurrentLeaderEpoch (v9+) older than ours: FENCED_LEADER_EPOCH; newer:
//     UNKNOWN_LEADER_EPOCH.
//   - Linearizable: the data and high watermark are read only after a raft
//     ReadIndex round, started after the request arrived, confirms this
//     broker still leads and its state has applied up to the read index. A
//     deposed leader therefore never serves a stale read. Rounds are
//     batched per partition.
//   - Only committed records exist in the log, so the high watermark is the
//     log end. The last stable offset is the first offset of the earliest
//     open transaction, or the high watermark (txn_partition.go).
//   - read_committed (IsolationLevel 1) reads only below the last stable
//     offset and is told the aborted transactions whose records may lie
//     in what it reads (AbortedTransactions), for the client to skip;
//     read_uncommitted reads to the high watermark, AbortedTransactions
//     null. An offset between the two is in range: the answer is empty.
//   - Whole batches: the first batch is returned even if it exceeds
//     PartitionMaxBytes or MaxBytes (KIP-74), later ones only while they fit.
//   - Offset below the log start or above the high watermark:
//     OFFSET_OUT_OF_RANGE.
//   - MinBytes / MaxWaitMillis long poll: if fewer than MinBytes are
//     available the request waits until enough arrive or MaxWaitMillis
//     passes (checked on ticks, so the wait is rounded up to a tick).
//   - Fetch sessions (v7+) are declined: the response's SessionID is 0 and
//     the client keeps sending full fetches; an incremental fetch (a
//     SessionEpoch other than 0 and -1, whatever the SessionID) is answered
//     FETCH_SESSION_ID_NOT_FOUND, as Kafka answers a session it does not
//     have.

func init() { regKey(kmsg.Fetch, 4, 12, (*Broker).handleFetch) }

func (b *Broker) handleFetch(token uint64, r *kmsg.FetchRequest) {
	resp := r.ResponseKind().(*kmsg.FetchResponse)
	// As Kafka's FetchManager: epoch 0 (a new session) or -1 (none) is a
	// full fetch, whatever the session id (a session it names is closed:
	// Gregor keeps none); any other epoch is an incremental fetch of a
	// session, and there are none.
	if r.Version >= 7 && r.SessionEpoch != 0 && r.SessionEpoch != -1 {
		resp.ErrorCode = kerr.FetchSessionIDNotFound.Code
		b.respond(token, resp)
		return
	}
	f := &fetch{b: b, req: r}
	for _, rt := range r.Topics {
		st := kmsg.NewFetchResponseTopic()
		st.Topic, st.TopicID = rt.Topic, rt.TopicID
		for _, rp := range rt.Partitions {
			sp := kmsg.NewFetchResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.HighWatermark, sp.LastStableOffset, sp.LogStartOffset = -1, -1, -1
			// Kafka sends an empty record set, never a null one; librdkafka
			// (kcat) rejects null.
			sp.RecordBatches = []byte{}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	rep := b.newReply(token, resp)
	f.rep = rep
	mayRead := b.authorizer(opRead, resTopic)
	for ti, rt := range r.Topics {
		readable := mayRead(rt.Topic) // once per topic, not per partition
		for pi, rp := range rt.Partitions {
			out := &resp.Topics[ti].Partitions[pi]
			p, kerrv := b.lookupLeader(rt.Topic, rp.Partition, rp.CurrentLeaderEpoch)
			if !readable {
				p, kerrv = nil, kerr.TopicAuthorizationFailed
			}
			if kerrv != nil {
				out.ErrorCode = kerrv.Code
				if kerrv == kerr.UnknownTopicOrPartition || kerrv == kerr.TopicAuthorizationFailed {
					// Kafka refuses these before its replica manager,
					// with FetchResponse.partitionResponse: an empty
					// list, not null (cmd/gregor/testdata/conformance).
					// Its replica manager's refusals (not the leader,
					// a fenced or unknown leader epoch) leave it null.
					out.AbortedTransactions = []kmsg.FetchResponseTopicPartitionAbortedTransaction{}
				}
				f.errs = true
				continue
			}
			f.slots = append(f.slots, fetchSlot{p: p, req: rp, out: out})
			rep.add()
			p.read(func(code int16) {
				if code != 0 {
					out.ErrorCode = code
					f.errs = true
				}
				f.partReady()
			})
		}
	}
	f.partReady() // the part newReply held while registering
}

// partReady counts one partition's read point confirmed (or failed); the
// last one makes the fetch ready.
func (f *fetch) partReady() {
	f.rep.outstanding--
	if f.rep.outstanding == 0 {
		f.ready()
	}
}

type fetchSlot struct {
	p   *partition
	req kmsg.FetchRequestTopicPartition
	out *kmsg.FetchResponseTopicPartition
}

type fetch struct {
	b     *Broker
	req   *kmsg.FetchRequest
	rep   *reply
	slots []fetchSlot
	errs  bool
	timer *timer
	done  bool
	waits []rsm.Waiter // long-poll registrations, removed when answered
}

// ready runs once every partition's read point is confirmed: fill the
// response, and either send it or wait for more data.
func (f *fetch) ready() {
	if f.done {
		return
	}
	n := f.fill()
	wait := int64(f.req.MaxWaitMillis)
	if f.errs || n >= int(f.req.MinBytes) || wait <= 0 || (f.timer != nil && f.timer.done()) {
		f.finish()
		return
	}
	if f.timer == nil {
		f.timer = f.b.after(wait, func() { f.fill(); f.finish() })
	}
	f.unwatch()
	for _, s := range f.slots {
		if s.out.ErrorCode == 0 {
			f.waits = append(f.waits, s.p.watchers.Add(f.ready))
		}
	}
}

func (f *fetch) finish() {
	if f.done {
		return
	}
	f.done = true
	if f.timer != nil {
		f.timer.stop()
	}
	f.unwatch()
	f.rep.send()
}

// unwatch removes the fetch from every partition it waits on.
func (f *fetch) unwatch() {
	for _, w := range f.waits {
		w.Remove()
	}
	f.waits = f.waits[:0]
}

// fill reads every confirmed partition's data into the response and
// returns the bytes gathered. Reading again later is still linearizable:
// the state only grows past the confirmed read index, and all of it is
// committed.
func (f *fetch) fill() int {
	total := 0
	maxBytes := int(f.req.MaxBytes)
	if maxBytes <= 0 {
		maxBytes = 1 << 30
	}
	for _, s := range f.slots {
		out := s.out
		if out.ErrorCode != 0 && out.ErrorCode != kerr.OffsetOutOfRange.Code {
			continue
		}
		out.ErrorCode = 0
		p := s.p
		hw, lso, start := p.highWatermark(), p.lastStable(), p.startOffset()
		if f.b.cfg.Unsafe.LSOIsHW {
			lso = hw
		}
		out.RecordBatches = []byte{}
		out.AbortedTransactions = nil
		off := s.req.FetchOffset
		if off < start || off > hw {
			// Kafka answers the offsets -1 with OFFSET_OUT_OF_RANGE; clients
			// ask ListOffsets where to go.
			out.ErrorCode = kerr.OffsetOutOfRange.Code
			out.HighWatermark, out.LastStableOffset, out.LogStartOffset = -1, -1, -1
			f.errs = true
			continue
		}
		out.HighWatermark, out.LastStableOffset, out.LogStartOffset = hw, lso, start
		end := hw
		if f.req.IsolationLevel == 1 {
			end = lso
			out.AbortedTransactions = []kmsg.FetchResponseTopicPartitionAbortedTransaction{}
		}
		if off >= end {
			continue
		}
		limit := int(s.req.PartitionMaxBytes)
		if rem := maxBytes - total; limit <= 0 || limit > rem {
			limit = rem
		}
		if limit <= 0 && total > 0 {
			continue
		}
		data, err := p.log.ReadBelow(off, end, max(limit, 1))
		if err != nil {
			out.ErrorCode = kerr.KafkaStorageError.Code
			f.errs = true
			f.b.env.Logf("engine: fetch %s-%d at %d: %v", p.topic, p.index, off, err)
			if errors.Is(err, segment.ErrCorrupt) && !p.lost {
				// Bit rot: the bytes are never served, and the replica
				// replaces its state with a healthy peer's.
				p.becomeLost(p.applied)
			}
			continue
		}
		out.RecordBatches = data
		total += len(data)
		if f.req.IsolationLevel == 1 {
			for _, a := range p.producers.Aborted(off, end) {
				at := kmsg.NewFetchResponseTopicPartitionAbortedTransaction()
				at.ProducerID, at.FirstOffset = a.PID, a.FirstOffset
				out.AbortedTransactions = append(out.AbortedTransactions, at)
			}
		}
	}
	return total
}
