package engine

import (
	"github.com/gregor-streaming/gregor/engine/batch"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// OffsetDelete, version 0.
//
// Behavior: unknown group: GROUP_ID_NOT_FOUND. An Empty group's offsets
// may all go. A group with members using the consumer protocol keeps the
// offsets of topics a member subscribes to (GROUP_SUBSCRIBED_TO_TOPIC for
// those partitions); any other non-empty group: NON_EMPTY_GROUP. The
// deletions are tombstones, answered once applied.

func init() { regKey(kmsg.OffsetDelete, 0, 0, (*Broker).handleOffsetDelete) }

func (b *Broker) handleOffsetDelete(token uint64, r *kmsg.OffsetDeleteRequest) {
	resp := r.ResponseKind().(*kmsg.OffsetDeleteResponse)
	fail := func(code int16) {
		resp.ErrorCode = code
		b.respond(token, resp)
	}
	if !b.authorized(opDelete, resGroup, r.Group) {
		fail(kerr.GroupAuthorizationFailed.Code)
		return
	}
	if r.Group == "" {
		fail(kerr.InvalidGroupID.Code) // as Kafka, which commits to it
		return
	}
	mayRead := b.authorizer(opRead, resTopic)
	c, code := b.coordinatorFor(r.Group)
	if code != 0 {
		fail(code)
		return
	}
	g := c.groups[r.Group]
	if g == nil || g.state == gsDead {
		fail(kerr.GroupIDNotFound.Code)
		return
	}
	subscribed := map[string]bool{}
	if g.cons != nil {
		for _, m := range g.cons.members {
			for _, t := range g.subscribedTopics(m) {
				subscribed[t] = true
			}
		}
	} else if g.state != gsEmpty {
		if g.protocolType != "consumer" {
			fail(kerr.NonEmptyGroup.Code)
			return
		}
		for _, m := range g.members {
			var md kmsg.ConsumerMemberMetadata
			if md.ReadFrom(m.metadataFor(g.protocol)) == nil {
				for _, t := range md.Topics {
					subscribed[t] = true
				}
			}
		}
	}
	var recs []batch.Record
	for _, rt := range r.Topics {
		st := kmsg.NewOffsetDeleteResponseTopic()
		st.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			sp := kmsg.NewOffsetDeleteResponseTopicPartition()
			sp.Partition = rp.Partition
			if !mayRead(rt.Topic) {
				sp.ErrorCode = kerr.TopicAuthorizationFailed.Code
			} else if subscribed[rt.Topic] {
				sp.ErrorCode = kerr.GroupSubscribedToTopic.Code
			} else {
				recs = append(recs, offsetCommitRecord(r.Group, rt.Topic, rp.Partition, nil))
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	if len(recs) == 0 {
		b.respond(token, resp)
		return
	}
	c.propose(recs, func(code int16) {
		resp.ErrorCode = code
		b.respond(token, resp)
	})
}
