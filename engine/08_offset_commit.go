package engine

import (
	"github.com/gregor-streaming/gregor/engine/batch"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// OffsetCommit, versions 0-9.
//
// Behavior (Kafka's validation of a classic group's commit):
//   - A group being deleted: COORDINATOR_NOT_AVAILABLE. Generation < 0 on
//     an Empty group is accepted (admin tools, consumers that assign
//     partitions themselves); a group that does not exist is created for
//     it. A group that does not exist with generation >= 0:
//     ILLEGAL_GENERATION (GROUP_ID_NOT_FOUND from v9).
//   - Otherwise the member must be known (UNKNOWN_MEMBER_ID; a fenced
//     static member FENCED_INSTANCE_ID) and its generation current
//     (ILLEGAL_GENERATION); a commit without member and generation is
//     accepted only while the group is Empty (UNKNOWN_MEMBER_ID). During
//     CompletingRebalance: REBALANCE_IN_PROGRESS. During
//     PreparingRebalance the previous generation may still commit.
//   - Metadata over 4096 bytes: OFFSET_METADATA_TOO_LARGE for that partition.
//   - The commit is one batch of offset commit records in
//     __consumer_offsets, answered once it has applied; the coordinator
//     losing leadership first: NOT_COORDINATOR (the commit may or may not
//     have been made).
//   - A member's commit counts as a heartbeat.

func init() { regKey(kmsg.OffsetCommit, 0, 9, (*Broker).handleOffsetCommit) }

// offsetMetadataMaxBytes is Kafka's offset.metadata.max.bytes.
const offsetMetadataMaxBytes = 4096

func (b *Broker) handleOffsetCommit(token uint64, r *kmsg.OffsetCommitRequest) {
	resp := r.ResponseKind().(*kmsg.OffsetCommitResponse)
	for _, rt := range r.Topics {
		st := kmsg.NewOffsetCommitResponseTopic()
		st.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			sp := kmsg.NewOffsetCommitResponseTopicPartition()
			sp.Partition = rp.Partition
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	setAll := func(code int16) {
		for ti := range resp.Topics {
			for pi := range resp.Topics[ti].Partitions {
				if resp.Topics[ti].Partitions[pi].ErrorCode == 0 {
					resp.Topics[ti].Partitions[pi].ErrorCode = code
				}
			}
		}
	}
	// Kafka's order: Read on the group (every partition refused), then
	// Read on each topic (that topic's partitions refused, the others
	// committed).
	if !b.authorized(opRead, resGroup, r.Group) {
		setAll(kerr.GroupAuthorizationFailed.Code)
		b.respond(token, resp)
		return
	}
	// A partition that does not exist is refused before the group is
	// looked at, as Kafka checks its metadata cache first; if none is
	// left, the group is not asked.
	mayRead := b.authorizer(opRead, resTopic)
	left := false
	for ti, rt := range r.Topics {
		for pi, rp := range rt.Partitions {
			out := &resp.Topics[ti].Partitions[pi]
			if !mayRead(rt.Topic) {
				out.ErrorCode = kerr.TopicAuthorizationFailed.Code
			} else if _, ok := b.meta.partition(rt.Topic, rp.Partition); !ok {
				out.ErrorCode = kerr.UnknownTopicOrPartition.Code
			} else {
				left = true
			}
		}
	}
	if !left && len(r.Topics) > 0 {
		b.respond(token, resp)
		return
	}
	code := b.commitOffsets(r, resp, func(code int16) {
		setAll(code)
		b.respond(token, resp)
	})
	if code != 0 {
		setAll(code)
		b.respond(token, resp)
	}
}

// commitOffsets validates and proposes r's commit; done gets the outcome.
// A non-zero return is an error found before proposing (done not called).
func (b *Broker) commitOffsets(r *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, done func(int16)) int16 {
	// The empty group id is a group like any other, as in Kafka (kept
	// there for old clients' commits without a group).
	c, code := b.coordinatorFor(r.Group)
	if code != 0 {
		return code
	}
	gen := r.Generation
	if r.Version == 0 {
		gen = -1
	}
	g := c.groups[r.Group]
	if g == nil {
		if gen >= 0 && !b.cfg.Unsafe.NoGenerationCheck {
			if r.Version >= 9 {
				return kerr.GroupIDNotFound.Code
			}
			return kerr.IllegalGeneration.Code
		}
		g = c.newGroup(r.Group)
	}
	if g.cons != nil {
		if g.state == gsDead {
			return kerr.CoordinatorNotAvailable.Code
		}
		if !b.cfg.Unsafe.NoGenerationCheck {
			if code := g.validateConsumerCommit(r.MemberID, gen, r.Version); code != 0 {
				return code
			}
		}
	} else if code := g.validateCommit(r.MemberID, r.InstanceID, gen); code != 0 {
		return code
	}
	if m := g.members[r.MemberID]; m != nil && g.cons == nil {
		g.touch(m)
	}
	now := b.nowMillis()
	var recs []batch.Record
	for ti, rt := range r.Topics {
		for pi, rp := range rt.Partitions {
			if resp.Topics[ti].Partitions[pi].ErrorCode != 0 {
				continue // refused already (TOPIC_AUTHORIZATION_FAILED)
			}
			rec, code := commitRecord(r.Group, rt.Topic, rp.Partition, rp.Offset, rp.LeaderEpoch, r.Version >= 6, rp.Metadata, now)
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
	c.propose(recs, done)
	return 0
}

// commitRecord is one partition's offset commit record (OffsetCommit and
// TxnOffsetCommit alike), or OFFSET_METADATA_TOO_LARGE. The leader epoch
// counts only when the request's version carries one (hasEpoch).
func commitRecord(group, topic string, part int32, offset int64, epoch int32, hasEpoch bool, metadata *string, now int64) (batch.Record, int16) {
	meta := ""
	if metadata != nil {
		meta = *metadata
	}
	if len(meta) > offsetMetadataMaxBytes {
		return batch.Record{}, kerr.OffsetMetadataTooLarge.Code
	}
	if !hasEpoch {
		epoch = -1
	}
	return offsetCommitRecord(group, topic, part, &storedOffset{offset: offset, leaderEpoch: epoch, metadata: meta, commitTs: now}), 0
}

// validateCommit is Kafka's ClassicGroup.validateOffsetCommit.
func (g *group) validateCommit(memberID string, instanceID *string, gen int32) int16 {
	if g.state == gsDead {
		return kerr.CoordinatorNotAvailable.Code
	}
	if g.b().cfg.Unsafe.NoGenerationCheck {
		return 0
	}
	if gen < 0 && g.state == gsEmpty {
		return 0
	}
	if gen >= 0 || memberID != "" || instanceID != nil {
		if code := g.checkMember(g.members[memberID], memberID, instanceID); code != 0 {
			return code
		}
		if gen != g.generation {
			return kerr.IllegalGeneration.Code
		}
	} else if g.state != gsEmpty {
		return kerr.UnknownMemberID.Code
	}
	if g.state == gsCompletingRebalance {
		return kerr.RebalanceInProgress.Code
	}
	return 0
}
