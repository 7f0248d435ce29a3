package engine

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// OffsetFetch, versions 0-9 (several groups at once from v8).
//
// Behavior:
//   - Answered from the coordinator's applied state after a ReadIndex
//     round has confirmed it still leads (a deposed coordinator cannot
//     serve an old offset): a commit acknowledged before the fetch was
//     sent is always seen. (Unsafe.StaleOffsetFetch serves it from any
//     replica's applied state instead.)
//   - Null topics: every partition the group has committed. A partition
//     without a commit: offset -1, leader epoch -1, empty metadata.
//   - An unknown group has no offsets (no error). Group errors
//     (NOT_COORDINATOR, COORDINATOR_LOAD_IN_PROGRESS, ...) go in the
//     group's error code (v2+), or in every partition (v0-1).
//   - Offsets a transaction staged (TxnOffsetCommit) are not seen until
//     it commits; with RequireStable (v7+) a partition that has some is
//     answered UNSTABLE_OFFSET_COMMIT (the client retries), as in Kafka.

func init() { regKey(kmsg.OffsetFetch, 0, 9, (*Broker).handleOffsetFetch) }

func (b *Broker) handleOffsetFetch(token uint64, r *kmsg.OffsetFetchRequest) {
	resp := r.ResponseKind().(*kmsg.OffsetFetchResponse)
	rep := b.newReply(token, resp)
	if r.Version < 8 {
		rg := kmsg.NewOffsetFetchRequestGroup()
		rg.Group = r.Group
		if r.Topics != nil {
			rg.Topics = []kmsg.OffsetFetchRequestGroupTopic{}
			for _, t := range r.Topics {
				rg.Topics = append(rg.Topics, kmsg.OffsetFetchRequestGroupTopic{Topic: t.Topic, Partitions: t.Partitions})
			}
		}
		rep.add()
		b.fetchGroupOffsets(rg, r.Version >= 7 && r.RequireStable, func(g kmsg.OffsetFetchResponseGroup) {
			resp.ErrorCode = g.ErrorCode
			for _, t := range g.Topics {
				rt := kmsg.NewOffsetFetchResponseTopic()
				rt.Topic = t.Topic
				for _, p := range t.Partitions {
					rp := kmsg.NewOffsetFetchResponseTopicPartition()
					rp.Partition, rp.Offset, rp.LeaderEpoch, rp.Metadata, rp.ErrorCode = p.Partition, p.Offset, p.LeaderEpoch, p.Metadata, p.ErrorCode
					if r.Version < 2 && g.ErrorCode != 0 {
						rp.ErrorCode = g.ErrorCode
					}
					rt.Partitions = append(rt.Partitions, rp)
				}
				resp.Topics = append(resp.Topics, rt)
			}
			rep.done()
		})
		rep.maybeSend()
		return
	}
	resp.Groups = make([]kmsg.OffsetFetchResponseGroup, len(r.Groups))
	for i, rg := range r.Groups {
		rep.add()
		b.fetchGroupOffsets(rg, r.RequireStable, func(g kmsg.OffsetFetchResponseGroup) {
			resp.Groups[i] = g
			rep.done()
		})
	}
	rep.maybeSend()
}

// fetchGroupOffsets answers one group's part of an OffsetFetch.
func (b *Broker) fetchGroupOffsets(rg kmsg.OffsetFetchRequestGroup, requireStable bool, fn func(kmsg.OffsetFetchResponseGroup)) {
	out := kmsg.NewOffsetFetchResponseGroup()
	out.Group = rg.Group
	// As Kafka: Describe on the group, else GROUP_AUTHORIZATION_FAILED;
	// of the topics, the ones the principal may not Describe are left
	// out of an all-topics answer and refused when named.
	mayDescribe := b.authorizer(opDescribe, resTopic)
	groupDenied := !b.authorized(opDescribe, resGroup, rg.Group)
	// The requested partitions, answered with the code if it fails.
	fill := func(code int16, c *coordinator) {
		offs := map[offsetKey]storedOffset(nil)
		if c != nil {
			offs = c.store.offsets[rg.Group]
		}
		topics := rg.Topics
		all := topics == nil
		if topics == nil && code == 0 {
			byTopic := map[string][]int32{}
			var order []string
			for _, k := range sortedOffsetKeys(offs) {
				if _, ok := byTopic[k.topic]; !ok {
					order = append(order, k.topic)
				}
				byTopic[k.topic] = append(byTopic[k.topic], k.part)
			}
			for _, t := range order {
				topics = append(topics, kmsg.OffsetFetchRequestGroupTopic{Topic: t, Partitions: byTopic[t]})
			}
		}
		for _, t := range topics {
			denied := !mayDescribe(t.Topic)
			if denied && all {
				continue
			}
			rt := kmsg.NewOffsetFetchResponseGroupTopic()
			rt.Topic = t.Topic
			for _, part := range t.Partitions {
				rp := kmsg.NewOffsetFetchResponseGroupTopicPartition()
				rp.Partition, rp.Offset, rp.LeaderEpoch = part, -1, -1
				meta := ""
				if denied {
					rp.ErrorCode = kerr.TopicAuthorizationFailed.Code
				} else if o, ok := offs[offsetKey{t.Topic, part}]; ok && code == 0 {
					rp.Offset, rp.LeaderEpoch, meta = o.offset, o.leaderEpoch, o.metadata
				}
				if !denied && requireStable && code == 0 && c != nil && c.store.hasPending(rg.Group, t.Topic, part) {
					rp.ErrorCode, rp.Offset, rp.LeaderEpoch = kerr.UnstableOffsetCommit.Code, -1, -1
				}
				rp.Metadata = &meta
				rt.Partitions = append(rt.Partitions, rp)
			}
			out.Topics = append(out.Topics, rt)
		}
		out.ErrorCode = code
		fn(out)
	}
	if groupDenied {
		fill(kerr.GroupAuthorizationFailed.Code, nil)
		return
	}
	// The empty group id is a group like any other, as in Kafka (kept
	// there for old clients' commits without a group).
	if b.cfg.Unsafe.StaleOffsetFetch {
		// The knob serves from this replica's applied state, coordinator
		// or not, as stale-read does for Fetch: no confirmation that it
		// leads, no member epoch check.
		if pm, ok := b.offsetsPartition(rg.Group); ok {
			if p := b.parts[pm.Group]; p != nil && p.coord != nil && storeHolds(&p.coord.store, rg.Group) {
				fill(0, p.coord)
				return
			}
		}
	}
	c, code := b.coordinatorFor(rg.Group)
	if code != 0 {
		fill(code, nil)
		return
	}
	// v9: a KIP-848 member fetches with its epoch (Kafka's
	// ConsumerGroup.validateOffsetFetch).
	if g := c.groups[rg.Group]; g != nil && g.cons != nil && rg.MemberID != nil && rg.MemberEpoch >= 0 {
		m := g.cons.members[*rg.MemberID]
		switch {
		case m == nil:
			fill(kerr.UnknownMemberID.Code, nil)
			return
		case m.cur.epoch != rg.MemberEpoch:
			fill(kerr.StaleMemberEpoch.Code, nil)
			return
		}
	}
	if b.cfg.Unsafe.StaleOffsetFetch {
		fill(0, c)
		return
	}
	c.p.read(func(code int16) {
		if code != 0 {
			fill(kerr.NotCoordinator.Code, nil)
			return
		}
		fill(0, c)
	})
}

// storeHolds reports whether a replica's applied group state knows group
// (offsets, a classic generation or a consumer group).
func storeHolds(s *groupStore, group string) bool {
	_, o := s.offsets[group]
	_, g := s.groups[group]
	_, c := s.consumers[group]
	return o || g || c
}
