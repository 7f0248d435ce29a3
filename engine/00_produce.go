package engine

import (
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/gregor-streaming/gregor/engine/batch"
	"github.com/gregor-streaming/gregor/engine/rsm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Produce, versions 3-12 (record batch v2 only; v13 names topics by id).
//
// Behavior:
//   - acks must be -1, 0 or 1 (INVALID_REQUIRED_ACKS otherwise). acks=1 is
//     answered like acks=-1: an offset exists only once the entry commits
//     and applies, so Gregor cannot acknowledge earlier.
//   - acks=0: no response; the records are still proposed.
//   - A partition named more than once is written once, with its last
//     entry's records, and answered once, as Kafka (which keeps them in a
//     map). Records that are not exactly one batch (none at all, a
//     truncated one, or a second whole one; bytes after it too short to be
//     a batch are dropped, as Kafka's log drops them): INVALID_RECORD,
//     without a message, as Kafka; so is INVALID_TOPIC_EXCEPTION for an
//     internal topic.
//   - Each partition's batch is validated on the leader (magic 2,
//     lengths, CRC-32C, records), proposed as one raft entry, and answered
//     when it applies with the base offset assigned then.
//   - An idempotent batch (producer id >= 0) is deduplicated in the state
//     machine: a retry of one of the last five batches returns its original
//     offset, and as its LogAppendTime the original's max timestamp (as
//     Kafka does, on a CreateTime topic too); a gap is
//     OUT_OF_ORDER_SEQUENCE_NUMBER; an old epoch INVALID_PRODUCER_EPOCH,
//     both with the log start offset, as Kafka answers the errors of its
//     log append.
//   - Not the leader: NOT_LEADER_OR_FOLLOWER. Losing leadership while
//     waiting: NOT_LEADER_OR_FOLLOWER (the write may still commit; clients
//     retry, idempotence dedupes). Not applied within TimeoutMillis:
//     REQUEST_TIMED_OUT.
//   - A batch larger than the topic's max.message.bytes (by default the
//     broker's MaxMessageBytes), or a partition's records larger than
//     both: MESSAGE_TOO_LARGE.
//   - Transactional batches are appended and open their producer's
//     transaction in the partition (txn_partition.go). A producer's first
//     transactional batch here, from a request naming its transactional
//     id, is first verified with the transaction coordinator (KIP-890):
//     a transaction that does not hold the partition is INVALID_TXN_STATE
//     (TRANSACTION_ABORTABLE from v11), a fenced epoch
//     INVALID_PRODUCER_EPOCH, a coordinator that cannot answer yet
//     NOT_ENOUGH_REPLICAS (retriable). From v12, with transactions v2 on
//     (Config.TransactionVersion), the coordinator adds the partition to
//     the producer's transaction instead (KIP-890: no AddPartitionsToTxn).
//     Control batches from clients: INVALID_RECORD.
//   - acks=-1 while the leader sees fewer in-sync replicas (caught up
//     within replica.lag.time.max.ms) than the topic's
//     min.insync.replicas, or than the partition's replicas if that is
//     fewer (Kafka's effective min ISR): NOT_ENOUGH_REPLICAS with the log
//     start offset and no message (Kafka's), nothing written (raft still needs a majority for
//     every write, whatever the setting).
//   - A topic with message.timestamp.type=LogAppendTime: each batch gets
//     the leader's clock as its timestamp before it is proposed, and the
//     response's LogAppendTime says which; otherwise -1 (CreateTime).
//   - From v10, NOT_LEADER_OR_FOLLOWER carries the leader and its epoch
//     as this broker knows them, and the leader's endpoint (KIP-951's
//     tagged CurrentLeader and NodeEndpoints), as Kafka's does.

func init() { regKey(kmsg.Produce, 3, 12, (*Broker).handleProduce) }

func (b *Broker) handleProduce(token uint64, r *kmsg.ProduceRequest) {
	resp := r.ResponseKind().(*kmsg.ProduceResponse)
	rep := b.newReply(token, resp)
	acksOK := r.Acks == -1 || r.Acks == 0 || r.Acks == 1
	var waiting []proposalRef // this request's proposals, to cancel on timeout
	dedupeProduce(r)
	for _, rt := range r.Topics {
		st := kmsg.NewProduceResponseTopic()
		st.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			sp := kmsg.NewProduceResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.BaseOffset, sp.LogAppendTime, sp.LogStartOffset = -1, -1, -1
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	// Kafka's order: the transactional id first (the whole request),
	// then Write on each topic, before whether it exists.
	txnDenied := r.TransactionID != nil && !b.authorized(opWrite, resTransactionalID, *r.TransactionID)
	mayWrite := b.authorizer(opWrite, resTopic)
	for ti, rt := range r.Topics {
		// What refuses the whole topic is decided once for it, in
		// Kafka's order, not once per partition.
		var topicCode int16
		switch {
		case txnDenied:
			topicCode = kerr.TransactionalIDAuthorizationFailed.Code
		case !mayWrite(rt.Topic):
			topicCode = kerr.TopicAuthorizationFailed.Code
		case !acksOK:
			topicCode = kerr.InvalidRequiredAcks.Code
		case isInternalTopic(rt.Topic):
			// Only the coordinator writes its topic.
			// No message, as Kafka's answer.
			topicCode = kerr.InvalidTopicException.Code
		}
		pol := b.topicPolicy(rt.Topic)
		for pi, rp := range rt.Partitions {
			out := &resp.Topics[ti].Partitions[pi]
			if topicCode != 0 {
				out.ErrorCode = topicCode
				continue
			}
			p, kerrv := b.lookup(rt.Topic, rp.Partition)
			if kerrv != nil {
				out.ErrorCode = kerrv.Code
				b.leaderHint(r.Version, resp, out, rt.Topic)
				continue
			}
			// Kafka's effective min ISR: min.insync.replicas, but no more
			// than the partition's replicas (Partition.effectiveMinIsr):
			// the setting may exceed the replication factor.
			if isr, need := len(p.isr()), min(pol.minISR, len(p.replicas)); r.Acks == -1 && isr < need {
				// No message, as Kafka's answer (only a record's
				// validation carries one).
				out.ErrorCode = kerr.NotEnoughReplicas.Code
				out.LogStartOffset = p.startOffset()
				continue
			}
			records, code := oneBatch(rp.Records)
			if code != 0 {
				// Kafka's ProduceRequest.validateRecords: not exactly
				// one batch; its answer has no message.
				out.ErrorCode = code
				continue
			}
			h, err := b.validateProduce(pol, records)
			if err != nil {
				out.ErrorCode = errCode(err)
				msg := err.Error()
				out.ErrorMessage = &msg
				continue
			}
			rep.add()
			p.whenVerified(r.TransactionID, h, rt.Topic, r.Version >= 12 && b.txnV2(), func(code int16) {
				if code != 0 {
					if !rep.sent {
						out.ErrorCode = produceVerifyCode(code, r.Version)
						rep.done()
					}
					return
				}
				appendTime := b.stampLogAppendTime(pol, records)
				seq, ok := p.propose(records, func(res produceResult) {
					if rep.sent {
						// Answered already (acks=0): the response may be being
						// encoded on another goroutine; leave it be.
						return
					}
					switch {
					case res.err != nil:
						out.ErrorCode = errCode(res.err)
						if reportsLogStart(res.err) {
							out.LogStartOffset = p.startOffset()
						}
						b.leaderHint(r.Version, resp, out, rt.Topic)
					case res.duplicate:
						// Kafka answers a duplicate with the original
						// batch's max timestamp as its LogAppendTime, on a
						// CreateTime topic too (UnifiedLog.append).
						out.BaseOffset, out.LogAppendTime = res.base, res.dupTime
						out.LogStartOffset = p.startOffset()
					default:
						out.BaseOffset, out.LogAppendTime = res.base, appendTime
						out.LogStartOffset = p.startOffset()
					}
					rep.done()
				})
				if ok {
					waiting = append(waiting, proposalRef{p, seq})
				}
			})
		}
	}
	if r.Acks == 0 {
		// Nothing goes back, whatever happens to the proposals.
		rep.sent = true
		b.responses = append(b.responses, Response{Token: token})
		return
	}
	if rep.outstanding > 1 {
		rep.timer = b.after(int64(max(r.TimeoutMillis, 1)), func() {
			// The waiters of what is still unapplied go with the answer:
			// nothing of a timed-out request stays behind in a partition.
			for _, w := range waiting {
				w.p.pending.Cancel(w.seq)
			}
			for ti := range resp.Topics {
				for pi := range resp.Topics[ti].Partitions {
					out := &resp.Topics[ti].Partitions[pi]
					if out.ErrorCode == 0 && out.BaseOffset == -1 {
						out.ErrorCode = kerr.RequestTimedOut.Code
					}
				}
			}
			rep.send()
		})
	}
	rep.done()
}

// leaderHint gives a NOT_LEADER_OR_FOLLOWER answer of v10+ the
// partition's leader and epoch as this broker knows them, and that
// leader's endpoint in the response's Brokers (KIP-951), as Kafka does,
// so that the client goes to it without a Metadata round trip. A leader
// this broker does not know of, or cannot name an endpoint of for the
// client's listener, leaves the hint unset (-1), as Kafka's does.
func (b *Broker) leaderHint(v int16, resp *kmsg.ProduceResponse, out *kmsg.ProduceResponseTopicPartition, topic string) {
	if v < 10 || out.ErrorCode != kerr.NotLeaderForPartition.Code {
		return
	}
	pm, ok := b.meta.partition(topic, out.Partition)
	if !ok {
		return
	}
	leader, epoch := b.leaderOf(pm)
	if h, ok := b.handingOff[pm.Group]; ok && (leader < 0 || leader == b.cfg.ID || epoch < h.epoch) {
		leader, epoch = h.id, h.epoch // a controlled shutdown's transferee (shutdown.go)
	}
	if leader < 0 || leader == b.cfg.ID || !b.brokerAlive(leader) {
		return
	}
	brokers := b.meta.brokers()
	i := slices.IndexFunc(brokers, func(bi BrokerInfo) bool { return bi.ID == leader })
	if i < 0 {
		return
	}
	host, port, ok := b.endpointFor(brokers[i])
	if !ok {
		return
	}
	out.CurrentLeader.LeaderID, out.CurrentLeader.LeaderEpoch = leader, epoch
	if slices.ContainsFunc(resp.Brokers, func(e kmsg.ProduceResponseBroker) bool { return e.NodeID == leader }) {
		return
	}
	e := kmsg.NewProduceResponseBroker()
	e.NodeID, e.Host, e.Port, e.Rack = leader, host, port, brokers[i].rack()
	resp.Brokers = append(resp.Brokers, e)
}

// reportsLogStart reports whether Kafka answers a partition's Produce
// error err with the log's start offset: it does for the errors its log
// append throws (ReplicaManager.appendToLocalLog's catch-all:
// OUT_OF_ORDER_SEQUENCE_NUMBER, INVALID_PRODUCER_EPOCH, NOT_ENOUGH_REPLICAS
// ...), and answers -1 for an unknown partition, a replica that is not the
// leader, a batch too large or corrupt, and a storage error.
func reportsLogStart(err error) bool {
	switch errCode(err) {
	case kerr.UnknownTopicOrPartition.Code, kerr.NotLeaderForPartition.Code, kerr.MessageTooLarge.Code,
		kerr.RecordListTooLarge.Code, kerr.CorruptMessage.Code, kerr.KafkaStorageError.Code:
		return false
	}
	return true
}

// stampLogAppendTime gives the batch of a topic with
// message.timestamp.type=LogAppendTime the leader's clock as its
// timestamp (Kafka's LogAppendTime), before it is proposed: the entry
// carries it, so every replica stores the same bytes. It returns the time
// for the response, or -1 for CreateTime.
func (b *Broker) stampLogAppendTime(pol *topicPolicy, bb []byte) int64 {
	if !pol.logAppendTime {
		return -1
	}
	now := b.nowMillis()
	batch.SetLogAppendTime(bb, now)
	return now
}

// validateProduce checks one partition's batch (oneBatch found it) and
// returns its header.
func (b *Broker) validateProduce(pol *topicPolicy, bb []byte) (batch.Header, error) {
	if limit := b.maxMessageBytes(pol); len(bb) > limit {
		if limit < int(b.cfg.MaxMessageBytes) {
			return batch.Header{}, fmt.Errorf("%w: a batch of %d bytes exceeds the topic's max.message.bytes, %d", kerr.MessageTooLarge, len(bb), limit)
		}
		return batch.Header{}, fmt.Errorf("%w: %d bytes exceed the limit of %d", kerr.MessageTooLarge, len(bb), limit)
	}
	h, err := batch.Validate(bb)
	if err != nil {
		return batch.Header{}, err
	}
	if pol.compacts {
		if err := requireKeys(bb); err != nil {
			return batch.Header{}, err
		}
	}
	return h, nil
}

// requireKeys refuses a record without a key on a compacted topic, as
// Kafka's LogValidator does ("Compacted topic cannot accept message
// without key"): the cleaner keeps the latest record of each key.
func requireKeys(bb []byte) error {
	recs, err := batch.Records(bb)
	if err != nil {
		return err
	}
	for _, r := range recs {
		if r.Key == nil {
			return fmt.Errorf("%w: compacted topic cannot accept a record without a key (offset delta %d)", kerr.InvalidRecord, r.Offset)
		}
	}
	return nil
}

// propose proposes one produce entry; fn runs when it applies here, or
// with an error when leadership is lost first.
// It returns the proposal's sequence, and false if fn was already called.
func (p *partition) propose(records []byte, fn func(produceResult)) (uint64, bool) {
	return p.proposeOp(opProduce, records, fn)
}

// proposeOp proposes one entry of op with body, as propose does.
func (p *partition) proposeOp(op byte, body []byte, fn func(produceResult)) (uint64, bool) {
	h := p.b.prop.Next(rsm.KindPartition, op)
	if err := p.b.host.ProposeAsLeader(p.group, h.Encode(body)); err != nil {
		fn(produceResult{err: kerr.NotLeaderForPartition})
		return 0, false
	}
	p.pending.Add(h.Seq, fn)
	return h.Seq, true
}

// proposalRef names one proposal waiting in a partition.
type proposalRef struct {
	p   *partition
	seq uint64
}

// topicPartition names a partition in a request.
type topicPartition struct {
	topic string
	part  int32
}

// dedupeProduce leaves one entry per partition in r, as Kafka's handler
// does (it collects the partitions in a map): a partition named more than
// once is written once, with the records of its last entry, and answered
// once, where it was first named. A topic named twice becomes one.
func dedupeProduce(r *kmsg.ProduceRequest) {
	if !namedTwice(r.Topics, func(t *kmsg.ProduceRequestTopic) string { return t.Topic },
		func(t *kmsg.ProduceRequestTopic) []kmsg.ProduceRequestTopicPartition { return t.Partitions },
		func(p *kmsg.ProduceRequestTopicPartition) int32 { return p.Partition }) {
		return
	}
	type tp = topicPartition
	last := map[tp][]byte{}
	for _, rt := range r.Topics {
		for _, rp := range rt.Partitions {
			last[tp{rt.Topic, rp.Partition}] = rp.Records
		}
	}
	var out []kmsg.ProduceRequestTopic
	at := map[string]int{}
	done := map[tp]bool{}
	for _, rt := range r.Topics {
		i, ok := at[rt.Topic]
		if !ok {
			t := rt
			t.Partitions = nil
			out = append(out, t)
			i = len(out) - 1
			at[rt.Topic] = i
		}
		for _, rp := range rt.Partitions {
			k := tp{rt.Topic, rp.Partition}
			if done[k] {
				continue
			}
			done[k] = true
			rp.Records = last[k]
			out[i].Partitions = append(out[i].Partitions, rp)
		}
	}
	r.Topics = out
}

// namedTwiceSmall: up to this many topics, or partitions of one topic,
// namedTwice compares pairwise instead of building a set.
const namedTwiceSmall = 16

// namedTwice reports whether a request's topics name a topic, or a
// partition of one, more than once: Kafka's handlers, which collect them
// in maps, then keep one entry of each (dedupeProduce,
// dedupeListOffsets). The produce path asks it of every request, so the
// usual small one is compared pairwise, without allocating.
func namedTwice[T, P any](topics []T, name func(*T) string, parts func(*T) []P, part func(*P) int32) bool {
	if len(topics) > namedTwiceSmall {
		names := make(map[string]bool, len(topics))
		for i := range topics {
			n := name(&topics[i])
			if names[n] {
				return true
			}
			names[n] = true
		}
	} else {
		for i := range topics {
			for j := i + 1; j < len(topics); j++ {
				if name(&topics[i]) == name(&topics[j]) {
					return true
				}
			}
		}
	}
	// The names are distinct: a repeated partition is one of the same
	// topic entry.
	for i := range topics {
		ps := parts(&topics[i])
		if len(ps) > namedTwiceSmall {
			seen := make(map[int32]bool, len(ps))
			for k := range ps {
				n := part(&ps[k])
				if seen[n] {
					return true
				}
				seen[n] = true
			}
			continue
		}
		for k := range ps {
			for l := k + 1; l < len(ps); l++ {
				if part(&ps[k]) == part(&ps[l]) {
					return true
				}
			}
		}
	}
	return false
}

// oneBatch is Kafka's ProduceRequest.validateRecords for v3+: records
// must hold exactly one batch. It returns the whole first batch, or the
// error code when there is none (ByteBufferLogInputStream finds none:
// INVALID_RECORD; a size field under the 14-byte minimum:
// CORRUPT_MESSAGE) or when a second batch follows (INVALID_RECORD; a
// second size field under the minimum: CORRUPT_MESSAGE). Bytes after the
// first batch too short to be a whole one are not a batch: Kafka's
// iterator ends there and its log drops them, and so does Gregor.
func oneBatch(records []byte) ([]byte, int16) {
	n, code := batchAt(records)
	if code != 0 {
		return nil, code
	}
	switch _, code := batchAt(records[n:]); code {
	case 0:
		return nil, kerr.InvalidRecord.Code
	case kerr.CorruptMessage.Code:
		return nil, code
	}
	return records[:n], 0
}

// batchAt is the length of the whole batch records start with, or the
// code for none: INVALID_RECORD when the bytes end first, CORRUPT_MESSAGE
// for a size field under the 14-byte minimum.
func batchAt(records []byte) (int, int16) {
	if len(records) < 12 {
		return 0, kerr.InvalidRecord.Code
	}
	size := int32(binary.BigEndian.Uint32(records[8:12]))
	switch {
	case size < 14:
		return 0, kerr.CorruptMessage.Code
	case len(records) < 17 || int64(len(records)) < int64(size)+12:
		return 0, kerr.InvalidRecord.Code
	}
	return int(size) + 12, 0
}
