package engine

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Heartbeat, versions 0-4.
//
// Behavior: keeps a member's session alive. Unknown group or member, or
// an Empty group: UNKNOWN_MEMBER_ID; fenced static member:
// FENCED_INSTANCE_ID; another generation: ILLEGAL_GENERATION; a join
// phase in progress: REBALANCE_IN_PROGRESS (the member should rejoin).
// In CompletingRebalance and Stable: no error.

func init() { regKey(kmsg.Heartbeat, 0, 4, (*Broker).handleHeartbeat) }

func (b *Broker) handleHeartbeat(token uint64, r *kmsg.HeartbeatRequest) {
	resp := r.ResponseKind().(*kmsg.HeartbeatResponse)
	if !b.authorized(opRead, resGroup, r.Group) {
		resp.ErrorCode = kerr.GroupAuthorizationFailed.Code
	} else {
		resp.ErrorCode = b.heartbeat(r)
	}
	b.respond(token, resp)
}

func (b *Broker) heartbeat(r *kmsg.HeartbeatRequest) int16 {
	if r.Group == "" {
		return kerr.InvalidGroupID.Code
	}
	c, code := b.coordinatorFor(r.Group)
	if code != 0 {
		return code
	}
	g := c.groups[r.Group]
	if g == nil || g.cons != nil {
		return kerr.UnknownMemberID.Code
	}
	if g.state == gsDead {
		return kerr.CoordinatorNotAvailable.Code
	}
	m := g.members[r.MemberID]
	if code := g.checkMember(m, r.MemberID, r.InstanceID); code != 0 {
		return code
	}
	if g.state == gsEmpty {
		return kerr.UnknownMemberID.Code
	}
	if r.Generation != g.generation {
		return kerr.IllegalGeneration.Code
	}
	g.touch(m)
	if g.state == gsPreparingRebalance {
		return kerr.RebalanceInProgress.Code
	}
	return 0
}
