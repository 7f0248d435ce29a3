package engine

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/gregor-streaming/gregor/engine/batch"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// The classic group protocol's state machine, as Kafka's coordinator runs
// it (GroupCoordinator / ClassicGroup), on the leader of the group's
// __consumer_offsets partition:
//
//	Empty ──join──► PreparingRebalance ──all joined / rebalance timeout──► CompletingRebalance
//	  ▲                 ▲      │ no member left                              │ leader's SyncGroup applied
//	  └─────────────────┼──────┘                                             ▼
//	                    └──────── join, leave, session expiry ─────────── Stable
//
// and Dead for a group being deleted. A generation's assignment is
// acknowledged to the members only once its group metadata record has
// applied, so a new coordinator knows every assignment a member was told.

type groupState int8

const (
	gsEmpty groupState = iota
	gsPreparingRebalance
	gsCompletingRebalance
	gsStable
	gsDead
)

var groupStateNames = [...]string{"Empty", "PreparingRebalance", "CompletingRebalance", "Stable", "Dead"}

func (s groupState) String() string { return groupStateNames[s] }

type member struct {
	id, instanceID       string
	clientID, clientHost string
	sessionMs            int32
	rebalanceMs          int32
	protocolType         string
	protocols            []kmsg.JoinGroupRequestProtocol
	assignment           []byte
	session              *timer

	// A JoinGroup waiting for the join phase to end, and a SyncGroup
	// waiting for the leader's assignment to apply.
	joining, syncing bool
	joinTok, syncTok uint64
	joinVer, syncVer int16
}

type group struct {
	c            *coordinator
	id           string
	state        groupState
	stateTs      int64
	protocolType string
	protocol     string
	generation   int32
	leader       string
	members      map[string]*member
	// pending are KIP-394 member ids handed out with MEMBER_ID_REQUIRED,
	// each with the session timer that drops it if it does not rejoin.
	pending map[string]*timer
	// statics maps group.instance.id to the member id holding it.
	statics map[string]string

	joinTimer, syncTimer *timer
	// The first rebalance of an empty group waits
	// group.initial.rebalance.delay.ms, extended while members keep
	// arriving, up to the rebalance timeout (Kafka's InitialDelayedJoin).
	initialDelay   bool
	newMemberAdded bool
	remainingMs    int64
	// storingGen is the generation whose leader assignment record is
	// being proposed (0: none). Only a store of the current generation
	// holds a retried leader sync back: one of an older generation must
	// not, or the new generation's assignment is never stored and its
	// members wait in SyncGroup until their requests time out.
	storingGen int32
	// cons is set for a KIP-848 consumer group (consumer_group.go); the
	// classic fields above are then unused.
	cons *consumerGroup
}

func (c *coordinator) newGroup(id string) *group {
	g := &group{c: c, id: id, members: map[string]*member{}, pending: map[string]*timer{}, statics: map[string]string{},
		stateTs: c.b().nowMillis()}
	c.groups[id] = g
	return g
}

func (g *group) b() *Broker { return g.c.p.b }

func (g *group) transition(s groupState) {
	g.state = s
	g.stateTs = g.b().nowMillis()
}

func (g *group) memberIDs() []string {
	ids := make([]string, 0, len(g.members))
	for id := range g.members {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// newMemberID makes a classic member id in Kafka's shape: the client id,
// a dash, a UUID.
func (g *group) newMemberID(clientID string) string { return clientID + "-" + g.newUUID() }

// newUUID makes a UUID-shaped id unique in the cluster: derived from this
// broker, its boot and a sequence, so that the simulator replays it.
func (g *group) newUUID() string {
	h := g.b().prop.Next(0, 0)
	var buf [20]byte
	binary.BigEndian.PutUint32(buf[0:], uint32(h.Proposer))
	binary.BigEndian.PutUint64(buf[4:], h.Boot)
	binary.BigEndian.PutUint64(buf[12:], h.Seq)
	s := sha256.Sum256(buf[:])
	return fmt.Sprintf("%x-%x-%x-%x-%x", s[0:4], s[4:6], s[6:8], s[8:10], s[10:16])
}

// touch restarts m's session.
func (g *group) touch(m *member) {
	m.session.stop()
	m.session = g.b().after(int64(m.sessionMs), func() { g.sessionExpired(m) })
}

func (g *group) sessionExpired(m *member) {
	if g.members[m.id] != m || g.c.groups[g.id] != g {
		return
	}
	if m.joining || m.syncing {
		// A member waiting on the coordinator is alive: the join and sync
		// phases have their own timeouts.
		g.touch(m)
		return
	}
	g.removeMember(m, kerr.UnknownMemberID.Code)
}

// drop answers everything waiting in the group with code and stops its
// timers: the coordinator is unloading.
func (g *group) drop(code int16) {
	if g.cons != nil {
		for _, m := range g.cons.members {
			m.session.stop()
			m.revoke.stop()
		}
	}
	g.joinTimer.stop()
	g.syncTimer.stop()
	for _, t := range g.pending {
		t.stop()
	}
	for _, id := range g.memberIDs() {
		m := g.members[id]
		m.session.stop()
		g.failJoin(m, code)
		g.failSync(m, code)
	}
}

func (g *group) failJoin(m *member, code int16) {
	if !m.joining {
		return
	}
	m.joining = false
	resp := &kmsg.JoinGroupResponse{Version: m.joinVer}
	resp.Default()
	resp.ErrorCode, resp.MemberID, resp.Generation = code, m.id, -1
	g.b().respond(m.joinTok, resp)
}

func (g *group) failSync(m *member, code int16) {
	if !m.syncing {
		return
	}
	m.syncing = false
	resp := &kmsg.SyncGroupResponse{Version: m.syncVer}
	resp.Default()
	resp.ErrorCode = code
	g.b().respond(m.syncTok, resp)
}

func (g *group) answerSync(m *member) {
	if !m.syncing {
		return
	}
	m.syncing = false
	resp := &kmsg.SyncGroupResponse{Version: m.syncVer}
	resp.Default()
	pt, pn := g.protocolType, g.protocol
	resp.ProtocolType, resp.Protocol = &pt, &pn
	resp.MemberAssignment = m.assignment
	g.b().respond(m.syncTok, resp)
}

// answerJoin sends m the current generation: the leader gets every
// member's metadata for the chosen protocol.
func (g *group) answerJoin(m *member) {
	if !m.joining {
		return
	}
	m.joining = false
	g.b().respond(m.joinTok, g.joinResponse(m, m.joinVer))
}

func (g *group) joinResponse(m *member, version int16) *kmsg.JoinGroupResponse {
	resp := &kmsg.JoinGroupResponse{Version: version}
	resp.Default()
	pt, pn := g.protocolType, g.protocol
	resp.Generation, resp.ProtocolType, resp.Protocol = g.generation, &pt, &pn
	resp.LeaderID, resp.MemberID = g.leader, m.id
	if m.id == g.leader {
		for _, id := range g.memberIDs() {
			o := g.members[id]
			jm := kmsg.NewJoinGroupResponseMember()
			jm.MemberID = o.id
			if o.instanceID != "" {
				inst := o.instanceID
				jm.InstanceID = &inst
			}
			jm.ProtocolMetadata = o.metadataFor(g.protocol)
			resp.Members = append(resp.Members, jm)
		}
	}
	return resp
}

func (m *member) metadataFor(protocol string) []byte {
	for _, p := range m.protocols {
		if p.Name == protocol {
			return p.Metadata
		}
	}
	return nil
}

// removeMember takes m out of the group (left, expired, fenced) and
// moves the group on.
func (g *group) removeMember(m *member, code int16) {
	delete(g.members, m.id)
	if m.instanceID != "" && g.statics[m.instanceID] == m.id {
		delete(g.statics, m.instanceID)
	}
	m.session.stop()
	g.failJoin(m, code)
	g.failSync(m, code)
	if g.leader == m.id {
		g.leader = ""
	}
	switch g.state {
	case gsStable, gsCompletingRebalance:
		g.prepareRebalance()
	case gsPreparingRebalance:
		g.maybeCompleteJoin()
	}
}

func (g *group) maxRebalanceMs() int64 {
	var ms int32
	for _, m := range g.members {
		ms = max(ms, m.rebalanceMs)
	}
	return int64(ms)
}

// prepareRebalance starts a join phase.
func (g *group) prepareRebalance() {
	if g.state == gsCompletingRebalance {
		for _, id := range g.memberIDs() {
			m := g.members[id]
			m.assignment = nil
			g.failSync(m, kerr.RebalanceInProgress.Code)
		}
	}
	g.syncTimer.stop()
	g.joinTimer.stop()
	wasEmpty := g.state == gsEmpty
	g.transition(gsPreparingRebalance)
	rb := g.maxRebalanceMs()
	if delay := int64(g.b().cfg.GroupInitialRebalanceDelayMs); wasEmpty && delay > 0 {
		g.initialDelay, g.newMemberAdded = true, false
		g.remainingMs = max(rb-delay, 0)
		g.joinTimer = g.b().after(min(delay, rb), g.initialDelayDone)
		return
	}
	g.joinTimer = g.b().after(rb, g.completeJoin)
	g.maybeCompleteJoin()
}

func (g *group) initialDelayDone() {
	if g.c.groups[g.id] != g || !g.initialDelay {
		return
	}
	if g.newMemberAdded && g.remainingMs > 0 {
		delay := int64(g.b().cfg.GroupInitialRebalanceDelayMs)
		d := min(delay, g.remainingMs)
		g.remainingMs -= d
		g.newMemberAdded = false
		g.joinTimer = g.b().after(d, g.initialDelayDone)
		return
	}
	g.initialDelay = false
	g.completeJoin()
}

func (g *group) allJoined() bool {
	if len(g.pending) > 0 {
		return false
	}
	for _, m := range g.members {
		if !m.joining {
			return false
		}
	}
	return true
}

func (g *group) maybeCompleteJoin() {
	if g.state == gsPreparingRebalance && !g.initialDelay && g.allJoined() {
		g.completeJoin()
	}
}

// completeJoin ends the join phase: members that did not rejoin go
// (static members stay, expected back within their session), the
// generation moves on, and every member that joined hears of it.
func (g *group) completeJoin() {
	if g.c.groups[g.id] != g || g.state != gsPreparingRebalance {
		return
	}
	g.joinTimer.stop()
	g.initialDelay = false
	var joined []*member
	for _, id := range g.memberIDs() {
		m := g.members[id]
		if m.joining {
			joined = append(joined, m)
			continue
		}
		if m.instanceID == "" {
			delete(g.members, id)
			m.session.stop()
			if g.leader == id {
				g.leader = ""
			}
		}
	}
	if len(joined) == 0 && len(g.members) > 0 {
		// Only static members that have not rejoined: wait for them or
		// for their sessions to end.
		g.joinTimer = g.b().after(g.maxRebalanceMs(), g.completeJoin)
		return
	}
	g.generation++
	if len(g.members) == 0 {
		g.protocol, g.leader = "", ""
		g.transition(gsEmpty)
		g.c.propose([]batch.Record{groupMetadataRecord(g.id, g.metadataValue(nil))}, func(int16) {})
		return
	}
	if l, ok := g.members[g.leader]; !ok || !l.joining {
		g.leader = joined[0].id
	}
	g.protocol = g.selectProtocol()
	g.transition(gsCompletingRebalance)
	for _, m := range joined {
		g.answerJoin(m)
		g.touch(m)
	}
	gen := g.generation
	g.syncTimer = g.b().after(g.maxRebalanceMs(), func() {
		if g.c.groups[g.id] != g || g.state != gsCompletingRebalance || g.generation != gen || g.storingGen == gen {
			return
		}
		// Members that never sent their SyncGroup go; the rest rejoin.
		for _, id := range g.memberIDs() {
			if m := g.members[id]; m != nil && !m.syncing && g.state == gsCompletingRebalance {
				g.removeMember(m, kerr.UnknownMemberID.Code)
			}
		}
		if g.state == gsCompletingRebalance {
			g.prepareRebalance()
		}
	})
}

// selectProtocol picks the protocol every member supports that most
// members prefer; ties go to the leader's preference order.
func (g *group) selectProtocol() string {
	var candidates []string
	lead := g.members[g.leader]
	for _, p := range lead.protocols {
		all := true
		for _, m := range g.members {
			if !slices.ContainsFunc(m.protocols, func(q kmsg.JoinGroupRequestProtocol) bool { return q.Name == p.Name }) {
				all = false
				break
			}
		}
		if all {
			candidates = append(candidates, p.Name)
		}
	}
	votes := map[string]int{}
	for _, m := range g.members {
		for _, p := range m.protocols {
			if slices.Contains(candidates, p.Name) {
				votes[p.Name]++
				break
			}
		}
	}
	best := ""
	for _, c := range candidates {
		if best == "" || votes[c] > votes[best] {
			best = c
		}
	}
	return best
}

// supports reports whether a member with these protocols may join: some
// protocol of theirs is supported by every other member.
func (g *group) supports(self string, protocolType string, protocols []kmsg.JoinGroupRequestProtocol) bool {
	if protocolType == "" || len(protocols) == 0 {
		return false
	}
	others := 0
	for id := range g.members {
		if id != self {
			others++
		}
	}
	if others == 0 {
		return true
	}
	if protocolType != g.protocolType {
		return false
	}
	for _, p := range protocols {
		all := true
		for id, m := range g.members {
			if id != self && !slices.ContainsFunc(m.protocols, func(q kmsg.JoinGroupRequestProtocol) bool { return q.Name == p.Name }) {
				all = false
				break
			}
		}
		if all {
			return true
		}
	}
	return false
}

func sameProtocols(a, b []kmsg.JoinGroupRequestProtocol) bool {
	return slices.EqualFunc(a, b, func(x, y kmsg.JoinGroupRequestProtocol) bool {
		return x.Name == y.Name && bytes.Equal(x.Metadata, y.Metadata)
	})
}

// metadataValue is the group's metadata record, with assignments (by
// member id) or the members' current ones if nil.
func (g *group) metadataValue(assignments map[string][]byte) *kmsg.GroupMetadataValue {
	v := &kmsg.GroupMetadataValue{Version: valueGroupMetadata, ProtocolType: g.protocolType, Generation: g.generation,
		CurrentStateTimestamp: g.b().nowMillis()}
	if g.protocol != "" {
		p := g.protocol
		v.Protocol = &p
	}
	if g.leader != "" {
		l := g.leader
		v.Leader = &l
	}
	for _, id := range g.memberIDs() {
		m := g.members[id]
		sm := kmsg.NewGroupMetadataValueMember()
		sm.MemberID, sm.ClientID, sm.ClientHost = m.id, m.clientID, m.clientHost
		if m.instanceID != "" {
			inst := m.instanceID
			sm.InstanceID = &inst
		}
		sm.RebalanceTimeoutMillis, sm.SessionTimeoutMillis = m.rebalanceMs, m.sessionMs
		sm.Subscription = m.metadataFor(g.protocol)
		if sm.Subscription == nil {
			sm.Subscription = []byte{}
		}
		if assignments != nil {
			sm.Assignment = assignments[id]
		} else {
			sm.Assignment = m.assignment
		}
		if sm.Assignment == nil {
			sm.Assignment = []byte{}
		}
		v.Members = append(v.Members, sm)
	}
	return v
}
