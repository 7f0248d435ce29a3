package engine

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// JoinGroup, versions 0-9.
//
// Behavior (Kafka's classic protocol; group.go has the state machine):
//   - Empty group id: INVALID_GROUP_ID. Session timeout outside
//     [GroupMinSessionTimeoutMs, GroupMaxSessionTimeoutMs]:
//     INVALID_SESSION_TIMEOUT. Not the coordinator: NOT_COORDINATOR;
//     a coordinator still confirming its state: COORDINATOR_LOAD_IN_PROGRESS.
//   - No protocol type or protocols, or none every member supports:
//     INCONSISTENT_GROUP_PROTOCOL.
//   - v4+ first join without an instance id: MEMBER_ID_REQUIRED with the
//     member id to rejoin with (KIP-394); the id is held for one session.
//   - A member id the group does not know: UNKNOWN_MEMBER_ID. A static
//     member (group.instance.id, v5+) whose instance id another member id
//     holds: FENCED_INSTANCE_ID; one rejoining with an empty member id
//     replaces the old member, without a rebalance when the group is
//     Stable and its protocols are unchanged (KIP-345).
//   - A new member beyond GroupMaxSize: GROUP_MAX_SIZE_REACHED.
//   - The response waits for the join phase to end: every member rejoined,
//     or the longest rebalance timeout passed (the first rebalance of an
//     empty group waits GroupInitialRebalanceDelayMs, extended while
//     members keep arriving). The leader gets every member's metadata.
//   - v0 has no rebalance timeout: the session timeout stands in.

func init() { regKey(kmsg.JoinGroup, 0, 9, (*Broker).handleJoinGroup) }

func (b *Broker) handleJoinGroup(token uint64, r *kmsg.JoinGroupRequest) {
	fail := func(code int16, memberID string) {
		resp := r.ResponseKind().(*kmsg.JoinGroupResponse)
		resp.ErrorCode, resp.MemberID, resp.Generation = code, memberID, -1
		b.respond(token, resp)
	}
	if !b.authorized(opRead, resGroup, r.Group) {
		fail(kerr.GroupAuthorizationFailed.Code, r.MemberID)
		return
	}
	if r.Group == "" {
		fail(kerr.InvalidGroupID.Code, r.MemberID)
		return
	}
	c, code := b.coordinatorFor(r.Group)
	if code != 0 {
		fail(code, r.MemberID)
		return
	}
	if r.SessionTimeoutMillis < b.cfg.GroupMinSessionTimeoutMs || r.SessionTimeoutMillis > b.cfg.GroupMaxSessionTimeoutMs {
		fail(kerr.InvalidSessionTimeout.Code, r.MemberID)
		return
	}
	g := c.groups[r.Group]
	if g == nil {
		if r.MemberID != "" {
			fail(kerr.UnknownMemberID.Code, r.MemberID)
			return
		}
		g = c.newGroup(r.Group)
	}
	if g.cons != nil {
		if len(g.cons.members) > 0 {
			fail(kerr.InconsistentGroupProtocol.Code, r.MemberID)
			return
		}
		// An empty consumer group goes back to the classic protocol.
		g.c.propose(consumerTombstones(r.Group), func(int16) {})
		g.cons = nil
		g.transition(gsEmpty)
	}
	code = g.join(token, r)
	if code != 0 {
		fail(code, r.MemberID)
	}
}

// joinRequest is what a member's JoinGroup says about it.
func (m *member) update(r *kmsg.JoinGroupRequest) {
	m.sessionMs, m.rebalanceMs = r.SessionTimeoutMillis, r.RebalanceTimeoutMillis
	if r.Version == 0 || m.rebalanceMs <= 0 {
		m.rebalanceMs = m.sessionMs
	}
	m.protocolType = r.ProtocolType
	m.protocols = r.Protocols
}

// awaitJoin parks m's JoinGroup until the join phase ends.
func (g *group) awaitJoin(m *member, token uint64, version int16) {
	g.failJoin(m, kerr.RebalanceInProgress.Code) // a retried join replaces the old one
	m.joining, m.joinTok, m.joinVer = true, token, version
}

// join handles one JoinGroup; a non-zero code is answered by the caller.
func (g *group) join(token uint64, r *kmsg.JoinGroupRequest) int16 {
	if g.state == gsDead {
		return kerr.CoordinatorNotAvailable.Code
	}
	inst := ""
	if r.InstanceID != nil {
		inst = *r.InstanceID
	}
	if !g.supports(r.MemberID, r.ProtocolType, r.Protocols) {
		return kerr.InconsistentGroupProtocol.Code
	}
	b := g.b()
	if r.MemberID == "" {
		if int32(len(g.members)+len(g.pending)) >= b.cfg.GroupMaxSize && (inst == "" || g.statics[inst] == "") {
			return kerr.GroupMaxSizeReached.Code
		}
		id := g.newMemberID(b.reqClient.id)
		if inst != "" {
			if old, ok := g.statics[inst]; ok {
				g.replaceStatic(g.members[old], id, token, r)
				return 0
			}
			g.addMember(id, token, r)
			return 0
		}
		if r.Version >= 4 {
			g.pending[id] = b.after(int64(r.SessionTimeoutMillis), func() {
				if _, ok := g.pending[id]; ok && g.c.groups[g.id] == g {
					delete(g.pending, id)
					g.maybeCompleteJoin()
				}
			})
			resp := r.ResponseKind().(*kmsg.JoinGroupResponse)
			resp.ErrorCode, resp.MemberID, resp.Generation = kerr.MemberIDRequired.Code, id, -1
			b.respond(token, resp)
			return 0
		}
		g.addMember(id, token, r)
		return 0
	}
	if t, ok := g.pending[r.MemberID]; ok {
		t.stop()
		delete(g.pending, r.MemberID)
		g.addMember(r.MemberID, token, r)
		return 0
	}
	if inst != "" {
		if held, ok := g.statics[inst]; ok && held != r.MemberID {
			return kerr.FencedInstanceID.Code
		}
	}
	m := g.members[r.MemberID]
	if m == nil {
		return kerr.UnknownMemberID.Code
	}
	if m.instanceID != inst {
		return kerr.FencedInstanceID.Code
	}
	m.clientID, m.clientHost = b.reqClient.id, b.reqClient.host
	switch g.state {
	case gsPreparingRebalance:
		m.update(r)
		g.awaitJoin(m, token, r.Version)
		g.touch(m)
		g.maybeCompleteJoin()
	case gsCompletingRebalance, gsStable:
		if sameProtocols(m.protocols, r.Protocols) && (g.state == gsCompletingRebalance || m.id != g.leader) {
			// Nothing changed: the member hears the current generation.
			g.touch(m)
			b.respond(token, g.joinResponse(m, r.Version))
			return 0
		}
		m.update(r)
		g.awaitJoin(m, token, r.Version)
		g.touch(m)
		g.prepareRebalance()
	default: // Empty: no members
		return kerr.UnknownMemberID.Code
	}
	return 0
}

// addMember adds a new member whose JoinGroup waits for the join phase.
func (g *group) addMember(id string, token uint64, r *kmsg.JoinGroupRequest) {
	m := &member{id: id, clientID: g.b().reqClient.id, clientHost: g.b().reqClient.host}
	if r.InstanceID != nil {
		m.instanceID = *r.InstanceID
		g.statics[m.instanceID] = id
	}
	m.update(r)
	if len(g.members) == 0 {
		g.protocolType = r.ProtocolType
	}
	g.members[id] = m
	if g.leader == "" {
		g.leader = id
	}
	g.awaitJoin(m, token, r.Version)
	g.touch(m)
	g.newMemberAdded = true
	switch g.state {
	case gsEmpty, gsStable, gsCompletingRebalance:
		g.prepareRebalance()
	default:
		g.maybeCompleteJoin()
	}
}

// replaceStatic gives a static member that rejoined with an empty member
// id a new one; the old id is fenced. In a Stable group with unchanged
// protocols (and not the leader, which must assign again) the group goes
// on without a rebalance once the new id is stored.
func (g *group) replaceStatic(old *member, id string, token uint64, r *kmsg.JoinGroupRequest) {
	g.failJoin(old, kerr.FencedInstanceID.Code)
	g.failSync(old, kerr.FencedInstanceID.Code)
	old.session.stop()
	delete(g.members, old.id)
	m := &member{id: id, instanceID: old.instanceID, clientID: g.b().reqClient.id, clientHost: g.b().reqClient.host,
		sessionMs: old.sessionMs, rebalanceMs: old.rebalanceMs, protocolType: old.protocolType,
		protocols: old.protocols, assignment: old.assignment}
	g.members[id] = m
	g.statics[m.instanceID] = id
	wasLeader := g.leader == old.id
	if wasLeader {
		g.leader = id
	}
	g.touch(m)
	if g.state == gsStable && !wasLeader && sameProtocols(old.protocols, r.Protocols) {
		m.update(r)
		gen := g.generation
		g.c.propose(recordsOf(groupMetadataRecord(g.id, g.metadataValue(nil))), func(code int16) {
			if code != 0 {
				resp := r.ResponseKind().(*kmsg.JoinGroupResponse)
				resp.ErrorCode, resp.MemberID, resp.Generation = code, id, -1
				g.b().respond(token, resp)
				return
			}
			if g.generation != gen || g.members[id] != m {
				resp := r.ResponseKind().(*kmsg.JoinGroupResponse)
				resp.ErrorCode, resp.MemberID, resp.Generation = kerr.RebalanceInProgress.Code, id, -1
				g.b().respond(token, resp)
				return
			}
			g.b().respond(token, g.joinResponse(m, r.Version))
		})
		return
	}
	m.update(r)
	g.awaitJoin(m, token, r.Version)
	switch g.state {
	case gsPreparingRebalance:
		g.maybeCompleteJoin()
	default:
		g.prepareRebalance()
	}
}
