package engine

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// SyncGroup, versions 0-5.
//
// Behavior:
//   - Unknown group or member, or an Empty group: UNKNOWN_MEMBER_ID; a
//     static member whose instance id another member id holds:
//     FENCED_INSTANCE_ID; another generation: ILLEGAL_GENERATION; v5
//     protocol type or name other than the group's:
//     INCONSISTENT_GROUP_PROTOCOL; during a join phase:
//     REBALANCE_IN_PROGRESS.
//   - In CompletingRebalance every member's SyncGroup waits for the
//     leader's. The leader's assignment (members it left out get an empty
//     one) is stored as the generation's group metadata record; once that
//     applies, the group is Stable and every waiting member gets its
//     assignment. A member joining or leaving meanwhile ends the wait with
//     REBALANCE_IN_PROGRESS.
//   - In Stable the member gets its assignment at once.

func init() { regKey(kmsg.SyncGroup, 0, 5, (*Broker).handleSyncGroup) }

func (b *Broker) handleSyncGroup(token uint64, r *kmsg.SyncGroupRequest) {
	fail := func(code int16) {
		resp := r.ResponseKind().(*kmsg.SyncGroupResponse)
		resp.ErrorCode = code
		b.respond(token, resp)
	}
	if !b.authorized(opRead, resGroup, r.Group) {
		fail(kerr.GroupAuthorizationFailed.Code)
		return
	}
	if r.Group == "" {
		fail(kerr.InvalidGroupID.Code)
		return
	}
	c, code := b.coordinatorFor(r.Group)
	if code != 0 {
		fail(code)
		return
	}
	g := c.groups[r.Group]
	if g == nil || g.cons != nil {
		fail(kerr.UnknownMemberID.Code)
		return
	}
	if code := g.sync(token, r); code != 0 {
		fail(code)
	}
}

func (g *group) sync(token uint64, r *kmsg.SyncGroupRequest) int16 {
	if g.state == gsDead {
		return kerr.CoordinatorNotAvailable.Code
	}
	m := g.members[r.MemberID]
	if code := g.checkMember(m, r.MemberID, r.InstanceID); code != 0 {
		return code
	}
	if r.Generation != g.generation {
		return kerr.IllegalGeneration.Code
	}
	if r.ProtocolType != nil && *r.ProtocolType != g.protocolType || r.Protocol != nil && *r.Protocol != g.protocol {
		return kerr.InconsistentGroupProtocol.Code
	}
	switch g.state {
	case gsEmpty:
		return kerr.UnknownMemberID.Code
	case gsPreparingRebalance:
		return kerr.RebalanceInProgress.Code
	case gsStable:
		g.touch(m)
		m.syncing, m.syncTok, m.syncVer = true, token, r.Version
		g.answerSync(m)
		return 0
	}
	// CompletingRebalance.
	g.failSync(m, kerr.RebalanceInProgress.Code) // a retried sync replaces the old one
	m.syncing, m.syncTok, m.syncVer = true, token, r.Version
	g.touch(m)
	if m.id != g.leader || g.storingGen == g.generation {
		return 0
	}
	assignments := map[string][]byte{}
	for _, a := range r.GroupAssignment {
		if _, ok := g.members[a.MemberID]; ok {
			assignments[a.MemberID] = a.MemberAssignment
		}
	}
	gen := g.generation
	g.storingGen = gen
	g.c.propose(recordsOf(groupMetadataRecord(g.id, g.metadataValue(assignments))), func(code int16) {
		if g.storingGen == gen {
			g.storingGen = 0
		}
		if g.c.groups[g.id] != g || g.generation != gen || g.state != gsCompletingRebalance {
			return // moved on: the waiting syncs were answered then
		}
		if code != 0 {
			for _, id := range g.memberIDs() {
				g.failSync(g.members[id], code)
			}
			return
		}
		g.syncTimer.stop()
		g.transition(gsStable)
		for _, id := range g.memberIDs() {
			m := g.members[id]
			m.assignment = assignments[id]
			if m.assignment == nil {
				m.assignment = []byte{}
			}
			g.answerSync(m)
		}
	})
	return 0
}

// checkMember validates a member's identity: unknown ids get
// UNKNOWN_MEMBER_ID, a static member's instance id held by another member
// id FENCED_INSTANCE_ID.
func (g *group) checkMember(m *member, memberID string, instanceID *string) int16 {
	if instanceID != nil {
		if held, ok := g.statics[*instanceID]; ok && held != memberID {
			return kerr.FencedInstanceID.Code
		}
	}
	if m == nil {
		return kerr.UnknownMemberID.Code
	}
	if instanceID != nil && m.instanceID != *instanceID {
		return kerr.FencedInstanceID.Code
	}
	return 0
}
