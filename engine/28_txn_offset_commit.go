package engine

import (
	"github.com/gregor-streaming/gregor/engine/batch"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TxnOffsetCommit, versions 0-5 (KIP-447's member fields from v3; v6
// names topics by id).
//
// Behavior:
//   - At the group's coordinator (the group errors of OffsetCommit). The
//     offsets are staged, not committed: they are one transactional batch
//     of the producer in __consumer_offsets, which every replica keeps
//     aside until the transaction's marker reaches that partition (the
//     transaction coordinator sends it there once AddOffsetsToTxn added
//     the group): a commit makes them the group's committed offsets
//     (unless an offset was committed after them), an abort drops them.
//     Until then OffsetFetch with RequireStable answers
//     UNSTABLE_OFFSET_COMMIT for those partitions, and the group's
//     offsets do not expire.
//   - v3+: a member id, instance id or generation >= 0 is checked as
//     OffsetCommit checks it (ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID,
//     FENCED_INSTANCE_ID; for a KIP-848 group the generation is the
//     member epoch); generation -1 with no member is a producer outside
//     the group (KIP-447's older clients) and is not checked.
//   - The transaction coordinator is asked first (KIP-890's verification)
//     whether the producer's transaction is ongoing at this epoch and
//     holds the group's partition (AddOffsetsToTxn): another epoch is
//     PRODUCER_FENCED (INVALID_PRODUCER_EPOCH before v3), no such
//     transaction TRANSACTION_ABORTABLE (INVALID_TXN_STATE before v4); a
//     coordinator that cannot be asked, COORDINATOR_NOT_AVAILABLE
//     (retriable). From v5, with transactions v2 on, the coordinator adds
//     the group's partition to the transaction instead (KIP-890: no
//     AddOffsetsToTxn).
//   - Metadata over 4096 bytes: OFFSET_METADATA_TOO_LARGE for that
//     partition.

func init() { regKey(kmsg.TxnOffsetCommit, 0, 5, (*Broker).handleTxnOffsetCommit) }

func (b *Broker) handleTxnOffsetCommit(token uint64, r *kmsg.TxnOffsetCommitRequest) {
	resp := r.ResponseKind().(*kmsg.TxnOffsetCommitResponse)
	for _, rt := range r.Topics {
		st := kmsg.NewTxnOffsetCommitResponseTopic()
		st.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			sp := kmsg.NewTxnOffsetCommitResponseTopicPartition()
			sp.Partition = rp.Partition
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	answer := func(code int16) {
		for ti := range resp.Topics {
			for pi := range resp.Topics[ti].Partitions {
				if out := &resp.Topics[ti].Partitions[pi]; out.ErrorCode == 0 {
					out.ErrorCode = code
				}
			}
		}
		b.respond(token, resp)
	}
	// Kafka's order: Write on the transactional id, Read on the group,
	// then Read on each topic (that topic refused, the rest committed).
	if !b.authorized(opWrite, resTransactionalID, r.TransactionalID) {
		answer(kerr.TransactionalIDAuthorizationFailed.Code)
		return
	}
	if !b.authorized(opRead, resGroup, r.Group) {
		answer(kerr.GroupAuthorizationFailed.Code)
		return
	}
	mayRead := b.authorizer(opRead, resTopic)
	for ti, rt := range r.Topics {
		if !mayRead(rt.Topic) {
			for pi := range resp.Topics[ti].Partitions {
				resp.Topics[ti].Partitions[pi].ErrorCode = kerr.TopicAuthorizationFailed.Code
			}
		}
	}
	if r.TransactionalID == "" {
		// As Kafka's group coordinator answers it.
		answer(kerr.InvalidRequest.Code)
		return
	}
	if code := b.txnOffsetCommit(r, resp, answer); code != 0 {
		answer(code)
	}
}

// txnOffsetCommit validates and stages r's offsets; done gets the outcome.
// A non-zero return is an error found before proposing.
func (b *Broker) txnOffsetCommit(r *kmsg.TxnOffsetCommitRequest, resp *kmsg.TxnOffsetCommitResponse, done func(int16)) int16 {
	if r.Group == "" {
		return kerr.InvalidGroupID.Code
	}
	if r.ProducerID < 0 {
		return kerr.InvalidProducerIDMapping.Code
	}
	c, code := b.coordinatorFor(r.Group)
	if code != 0 {
		return code
	}
	gen, member, inst := int32(-1), "", (*string)(nil)
	if r.Version >= 3 {
		gen, member, inst = r.Generation, r.MemberID, r.InstanceID
	}
	g := c.groups[r.Group]
	if g == nil {
		if gen >= 0 {
			return kerr.IllegalGeneration.Code
		}
		g = c.newGroup(r.Group)
	}
	if gen >= 0 || member != "" || inst != nil {
		if g.cons != nil {
			m := g.cons.members[member]
			if m == nil {
				return kerr.UnknownMemberID.Code
			}
			if gen != m.cur.epoch {
				return kerr.IllegalGeneration.Code
			}
		} else if code := g.validateCommit(member, inst, gen); code != 0 {
			return code
		}
	} else if g.state == gsDead {
		return kerr.CoordinatorNotAvailable.Code
	}
	now := b.nowMillis()
	var recs []batch.Record
	for ti, rt := range r.Topics {
		for pi, rp := range rt.Partitions {
			if resp.Topics[ti].Partitions[pi].ErrorCode != 0 {
				continue // refused already (TOPIC_AUTHORIZATION_FAILED)
			}
			rec, code := commitRecord(r.Group, rt.Topic, rp.Partition, rp.Offset, rp.LeaderEpoch, r.Version >= 2, rp.Metadata, now)
			if code != 0 {
				resp.Topics[ti].Partitions[pi].ErrorCode = code
				continue
			}
			recs = append(recs, rec)
		}
	}
	if len(recs) == 0 {
		done(0)
		return 0
	}
	staged := batch.Build(batch.BuildOptions{FirstTimestamp: now, ProducerID: r.ProducerID, ProducerEpoch: r.ProducerEpoch,
		BaseSequence: -1, Transactional: true}, recs)
	finish := func(code int16) {
		switch {
		case code == kerr.InvalidProducerEpoch.Code && r.Version >= 3:
			code = kerr.ProducerFenced.Code
		case code == kerr.TransactionAbortable.Code && r.Version < 4:
			code = kerr.InvalidTxnState.Code
		}
		done(code)
	}
	// The transaction coordinator confirms the transaction holds this
	// partition at this epoch (KIP-890), so a fenced producer cannot stage
	// offsets that a later transaction's marker would commit.
	v := txnVerify{id: r.TransactionalID, pid: r.ProducerID, epoch: r.ProducerEpoch, topic: offsetsTopic, part: c.p.index,
		add: r.Version >= 5 && b.txnV2()}
	b.verifyTxn(v, func(code int16) {
		if code != 0 {
			finish(code)
			return
		}
		c.proposeBatch(staged, finish)
	})
	return 0
}
