package engine

import (
	"github.com/gregor-streaming/gregor/engine/batch"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DeleteGroups, versions 0-2.
//
// Behavior: a group with members: NON_EMPTY_GROUP; unknown:
// GROUP_ID_NOT_FOUND; coordinated elsewhere: NOT_COORDINATOR. Otherwise
// the group is Dead (its requests get COORDINATOR_NOT_AVAILABLE) while
// tombstones for its metadata and every committed offset are proposed,
// and gone once they apply.

func init() { regKey(kmsg.DeleteGroups, 0, 2, (*Broker).handleDeleteGroups) }

func (b *Broker) handleDeleteGroups(token uint64, r *kmsg.DeleteGroupsRequest) {
	resp := r.ResponseKind().(*kmsg.DeleteGroupsResponse)
	rep := b.newReply(token, resp)
	resp.Groups = make([]kmsg.DeleteGroupsResponseGroup, len(r.Groups))
	for i, id := range r.Groups {
		out := &resp.Groups[i]
		*out = kmsg.NewDeleteGroupsResponseGroup()
		out.Group = id
		if !b.authorized(opDelete, resGroup, id) {
			out.ErrorCode = kerr.GroupAuthorizationFailed.Code
			continue
		}
		c, code := b.coordinatorFor(id)
		if code != 0 {
			out.ErrorCode = code
			continue
		}
		g := c.groups[id]
		switch {
		case g == nil:
			out.ErrorCode = kerr.GroupIDNotFound.Code
			continue
		case g.state == gsDead:
			out.ErrorCode = kerr.CoordinatorNotAvailable.Code
			continue
		case g.cons != nil && len(g.cons.members) > 0 || g.cons == nil && g.state != gsEmpty:
			out.ErrorCode = kerr.NonEmptyGroup.Code
			continue
		}
		g.transition(gsDead)
		g.drop(kerr.CoordinatorNotAvailable.Code)
		var recs []batch.Record
		for _, k := range sortedOffsetKeys(c.store.offsets[id]) {
			recs = append(recs, offsetCommitRecord(id, k.topic, k.part, nil))
		}
		if _, ok := c.store.groups[id]; ok || g.cons == nil {
			recs = append(recs, groupMetadataRecord(id, nil))
		}
		if g.cons != nil {
			recs = append(recs, consumerTombstones(id)...)
		}
		rep.add()
		c.propose(recs, func(code int16) {
			out.ErrorCode = code
			if c.groups != nil && c.groups[id] == g {
				delete(c.groups, id)
			}
			rep.done()
		})
	}
	rep.maybeSend()
}
