package engine

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// LeaveGroup, versions 0-5 (several members at once from v3, KIP-345).
//
// Behavior: each member leaves (a member id or, for a static member, its
// instance id; an instance id held by another member id than the one
// given: FENCED_INSTANCE_ID; unknown: UNKNOWN_MEMBER_ID) and the group
// rebalances. A member id still pending its KIP-394 rejoin is forgotten.
// v0-2 carry one member id and answer with the top-level error.

func init() { regKey(kmsg.LeaveGroup, 0, 5, (*Broker).handleLeaveGroup) }

func (b *Broker) handleLeaveGroup(token uint64, r *kmsg.LeaveGroupRequest) {
	resp := r.ResponseKind().(*kmsg.LeaveGroupResponse)
	defer b.respond(token, resp)
	if !b.authorized(opRead, resGroup, r.Group) {
		resp.ErrorCode = kerr.GroupAuthorizationFailed.Code
		return
	}
	if r.Group == "" {
		resp.ErrorCode = kerr.InvalidGroupID.Code
		return
	}
	c, code := b.coordinatorFor(r.Group)
	if code != 0 {
		resp.ErrorCode = code
		return
	}
	g := c.groups[r.Group]
	if g != nil && g.cons != nil {
		g = nil // KIP-848 members leave by heartbeat
	}
	if r.Version < 3 {
		resp.ErrorCode = kerr.UnknownMemberID.Code
		if g != nil {
			resp.ErrorCode = g.leave(r.MemberID, nil)
		}
		return
	}
	for _, rm := range r.Members {
		lm := kmsg.NewLeaveGroupResponseMember()
		lm.MemberID, lm.InstanceID = rm.MemberID, rm.InstanceID
		lm.ErrorCode = kerr.UnknownMemberID.Code
		if g != nil {
			lm.ErrorCode = g.leave(rm.MemberID, rm.InstanceID)
		}
		resp.Members = append(resp.Members, lm)
	}
}

func (g *group) leave(memberID string, instanceID *string) int16 {
	if g.state == gsDead {
		return kerr.CoordinatorNotAvailable.Code
	}
	if instanceID != nil {
		held, ok := g.statics[*instanceID]
		if !ok {
			return kerr.UnknownMemberID.Code
		}
		if memberID != "" && memberID != held {
			return kerr.FencedInstanceID.Code
		}
		memberID = held
	}
	if t, ok := g.pending[memberID]; ok {
		t.stop()
		delete(g.pending, memberID)
		g.maybeCompleteJoin()
		return 0
	}
	m := g.members[memberID]
	if m == nil {
		return kerr.UnknownMemberID.Code
	}
	g.removeMember(m, kerr.UnknownMemberID.Code)
	return 0
}
