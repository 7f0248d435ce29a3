package engine

import (
	"github.com/gregor-streaming/gregor/engine/batch"
	"github.com/gregor-streaming/gregor/engine/segment"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ListOffsets, versions 1-7.
//
// Behavior:
//   - Timestamp -2: the log start offset; -1: the high watermark (latest),
//     or the last stable offset for read_committed (IsolationLevel 1, v2+);
//     both with Timestamp -1.
//   - -3 (KIP-734, v7): the first record carrying the largest timestamp;
//     any other value: the first record whose timestamp is at or after it
//     (the time index finds the batch), or offset and timestamp -1 if none.
//     The answer is that record's offset and timestamp, as in Kafka (the
//     Java client's offsetsForTimes reports both). NB: a compressed batch
//     is not decoded: the answer is its base offset and max timestamp.
//   - A partition named more than once is answered once, INVALID_REQUEST,
//     and a topic named more than once once, with all its partitions, as
//     Kafka's (it collects the partitions in a map).
//   - A negative timestamp other than -1, -2 and (v7) -3: UNSUPPORTED_VERSION
//     (Kafka's -4 and -5 need v8 and v9, which Gregor does not offer).
//   - Leader only, linearizable like Fetch (a ReadIndex round first).
//   - CurrentLeaderEpoch (v4+) is checked as in Fetch.
//   - The answer's LeaderEpoch (v4+) is the current raft term for -1/-2,
//     the epoch that wrote the record otherwise.

func init() { regKey(kmsg.ListOffsets, 1, 7, (*Broker).handleListOffsets) }

func (b *Broker) handleListOffsets(token uint64, r *kmsg.ListOffsetsRequest) {
	resp := r.ResponseKind().(*kmsg.ListOffsetsResponse)
	rep := b.newReply(token, resp)
	dupes := dedupeListOffsets(r)
	for _, rt := range r.Topics {
		st := kmsg.NewListOffsetsResponseTopic()
		st.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			sp := kmsg.NewListOffsetsResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.Timestamp, sp.Offset, sp.LeaderEpoch = -1, -1, -1
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	mayDo := b.authorizer(opDescribe, resTopic)
	for ti, rt := range r.Topics {
		for pi, rp := range rt.Partitions {
			out := &resp.Topics[ti].Partitions[pi]
			if dupes[topicPartition{rt.Topic, rp.Partition}] {
				out.ErrorCode = kerr.InvalidRequest.Code
				continue
			}
			p, kerrv := b.lookupLeader(rt.Topic, rp.Partition, rp.CurrentLeaderEpoch)
			switch {
			case !mayDo(rt.Topic):
				p, kerrv = nil, kerr.TopicAuthorizationFailed
			case rp.Timestamp < 0 && rp.Timestamp != -1 && rp.Timestamp != -2 && (rp.Timestamp != -3 || r.Version < 7):
				// A special timestamp this version does not have
				// (-3 before v7, -4 and -5 before v8 and v9, Kafka's
				// last), or none: Kafka's UNSUPPORTED_VERSION.
				if kerrv == nil {
					p, kerrv = nil, kerr.UnsupportedVersion
				}
			}
			if kerrv != nil {
				out.ErrorCode = kerrv.Code
				continue
			}
			ts := rp.Timestamp
			rep.add()
			p.read(func(code int16) {
				defer rep.done()
				if code != 0 {
					out.ErrorCode = code
					return
				}
				switch ts {
				case -2:
					out.Offset, out.LeaderEpoch = p.startOffset(), int32(p.term)
				case -1:
					out.Offset, out.LeaderEpoch = p.highWatermark(), int32(p.term)
					if r.IsolationLevel == 1 && !p.b.cfg.Unsafe.LSOIsHW {
						out.Offset = p.lastStable()
					}
				case -3:
					if off, max := p.maxTimestampOffset(); off >= 0 {
						out.Offset, out.Timestamp = p.recordWhere(off, max, func(t int64) bool { return t == max })
						out.LeaderEpoch = p.epochOf(out.Offset)
					}
				default:
					if off, ok := p.log.OffsetForTimestamp(ts); ok {
						out.Offset, out.Timestamp = p.recordWhere(off, ts, func(t int64) bool { return t >= ts })
						out.Offset = max(out.Offset, p.startOffset()) // not a deleted record
						out.LeaderEpoch = p.epochOf(out.Offset)
					}
				}
			})
		}
	}
	rep.done()
}

// dedupeListOffsets leaves each topic in r once, with the partitions of
// all its entries, and each partition once, where it was first named; it
// returns the partitions that were named more than once.
func dedupeListOffsets(r *kmsg.ListOffsetsRequest) map[topicPartition]bool {
	if !namedTwice(r.Topics, func(t *kmsg.ListOffsetsRequestTopic) string { return t.Topic },
		func(t *kmsg.ListOffsetsRequestTopic) []kmsg.ListOffsetsRequestTopicPartition { return t.Partitions },
		func(p *kmsg.ListOffsetsRequestTopicPartition) int32 { return p.Partition }) {
		return nil
	}
	var dupes map[topicPartition]bool
	seen := make(map[topicPartition]bool)
	byName := make(map[string]int, len(r.Topics))
	topics := r.Topics[:0:0]
	for _, rt := range r.Topics {
		ti, ok := byName[rt.Topic]
		if !ok {
			ti = len(topics)
			byName[rt.Topic] = ti
			topics = append(topics, kmsg.ListOffsetsRequestTopic{Topic: rt.Topic})
		}
		for _, rp := range rt.Partitions {
			tp := topicPartition{rt.Topic, rp.Partition}
			if seen[tp] {
				if dupes == nil {
					dupes = make(map[topicPartition]bool)
				}
				dupes[tp] = true
				continue
			}
			seen[tp] = true
			topics[ti].Partitions = append(topics[ti].Partitions, rp)
		}
	}
	r.Topics = topics
	return dupes
}

// maxTimestampOffset finds the batch with the largest max timestamp.
// NB: a full scan; fine for the rare -3 query.
func (p *partition) maxTimestampOffset() (int64, int64) {
	off, ts := int64(-1), int64(-1)
	_ = p.log.Batches(p.log.StartOffset(), func(_ []byte, m segment.BatchMeta) error {
		if m.MaxTimestamp > ts {
			off, ts = m.BaseOffset, m.MaxTimestamp
		}
		return nil
	})
	return off, ts
}

// recordWhere narrows a batch found by timestamp to the record Kafka
// answers with: the offset and timestamp of the first record of the batch
// at base whose timestamp satisfies ok. A compressed batch is not decoded:
// its base offset and max timestamp (fallback if it cannot be read).
func (p *partition) recordWhere(base, fallback int64, ok func(ts int64) bool) (int64, int64) {
	b, err := p.log.Read(base, 1)
	if err != nil {
		return base, fallback
	}
	h, err := batch.ReadHeader(b)
	if err != nil {
		return base, fallback
	}
	recs, err := batch.Records(b) // one batch: Read returns the first whole
	if err != nil {
		return base, h.MaxTimestamp
	}
	for _, r := range recs {
		if ok(r.Timestamp) {
			return r.Offset, r.Timestamp
		}
	}
	return base, h.MaxTimestamp
}

// epochOf is the leader epoch that wrote offset off.
func (p *partition) epochOf(off int64) int32 {
	e := int32(-1)
	for _, es := range p.epochs {
		if es.start <= off {
			e = es.epoch
		}
	}
	return e
}
