package sim

import (
	"slices"
	"strconv"
	"strings"

	"github.com/gregor-streaming/gregor/linearizability"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// KIP-848 members: the groups named "c0", "c1", ... are consumer groups
// (the coordinator assigns). Their members are the same clients as the
// classic members (group.go: slot A talks to the coordinator, slot B
// fetches) and behave like Kafka's consumer with group.protocol=consumer:
//
//   - Metadata first (the heartbeat names topics by id), FindCoordinator,
//     then ConsumerGroupHeartbeat with member epoch 0 to join, subscribed
//     to every tracked topic, asking for no assignor, "uniform" or
//     "range";
//   - a heartbeat every heartbeat interval the coordinator answers with,
//     listing the partitions it owns (TopicPartitions);
//   - an assignment that no longer holds some owned partitions is revoked
//     first: it stops fetching them at once, commits their positions, and
//     the next heartbeat leaves them out; new partitions are owned once
//     their committed offsets are read (OffsetFetch), and the next
//     heartbeat lists them;
//   - OffsetCommit v9 with the member epoch as generation;
//   - leaving is a heartbeat with epoch -1; a crash vanishes and comes back
//     as a new member; a zombie pauses beyond its session and then
//     commits with its old epoch (the coordinator must refuse it:
//     STALE_MEMBER_EPOCH, UNKNOWN_MEMBER_ID or FENCED_MEMBER_EPOCH;
//     zombie-commit-accepted if it accepts one after another member was
//     handed one of its partitions).
//
// A member that has not had a heartbeat answered for nine tenths of its
// session (counted from the heartbeat's send time), or not had one
// answered with nothing to revoke for nine tenths of its rebalance
// timeout, considers itself fenced, drops every partition and joins
// again: the coordinator (whose clock may run 5% fast) fences it no
// earlier. (The coordinator's revocation timer starts when it processes
// the heartbeat that moves the member to revoking, whose answer may be
// lost, or when a new coordinator loads the group: so the member counts
// from its last heartbeat known to precede any revocation.) Every join uses a new
// member id: a join retried after a timeout may still reach the
// coordinator late, and a late epoch-0 heartbeat with the member's
// current id would free what it owns.
//
// The split-assignment check (groupcheck.go, own848 and release848): in
// one group, no partition may have two owners at once, where a member
// owns a partition from the heartbeat answer that assigns it until the
// heartbeat in which it no longer lists it (or it leaves, crashes, pauses
// or fences itself).

const (
	consumerGroupPrefix = "c"
	// fenceMargin: a member considers itself fenced this fraction of its
	// session (or rebalance timeout) after the heartbeat that last kept it.
	fenceMarginNum, fenceMarginDen = 9, 10
)

// waitTopicIDs: a KIP-848 member's Metadata request on slot A.
const waitTopicIDs waitKind = iota + 120

// isConsumerGroup reports whether a workload group is a KIP-848 group.
func isConsumerGroup(group string) bool { return strings.HasPrefix(group, consumerGroupPrefix) }

// consumerState is what a KIP-848 member keeps beside the classic
// member's fields (gen is its member epoch, owned what it fetches).
type consumerState struct {
	assignor *string
	ids      map[[16]byte]string // topic id -> name, of the tracked topics
	byName   map[string][16]byte

	revoking        map[tpKey]int64 // given up: positions to commit before the heartbeat that drops them
	revokeCommitted bool            // their commit is done (or failed for good)
	adding          []tpKey         // assigned, committed offsets not read yet

	beatSent int64 // send time of the heartbeat in flight
	lastOK   int64 // send time of the last heartbeat answered without error
	// calmAt is the send time of the last heartbeat answered with nothing
	// to revoke: the coordinator's revocation timer (the rebalance
	// timeout) cannot have started before the next one reached it.
	calmAt   int64
	beatNow  bool // heartbeat at once (acknowledge a reconciliation)
	interval int64

	zombieSince int64 // when the pause of the zombie commit in flight began (0: none)
}

func newConsumerState(w *World) *consumerState {
	cs := &consumerState{ids: map[[16]byte]string{}, byName: map[string][16]byte{}, revoking: map[tpKey]int64{}}
	switch w.rng.IntN(3) {
	case 1:
		a := "uniform"
		cs.assignor = &a
	case 2:
		a := "range"
		cs.assignor = &a
	}
	return cs
}

func (m *member) sessionMillis() int64 { return int64(m.w().opts.SessionTimeoutMillis) }

// fenceAt is when the member must consider itself fenced (0: it owns
// nothing the coordinator could give away).
func (m *member) fenceAt() int64 {
	cs := m.cons
	if m.state != memberStable {
		return 0
	}
	f := cs.lastOK + m.sessionMillis()*fenceMarginNum/fenceMarginDen
	return min(f, cs.calmAt+int64(m.w().opts.RebalanceTimeoutMillis)*fenceMarginNum/fenceMarginDen)
}

// capTimeout shortens a slot A request's timeout so the member notices
// its fence deadline while waiting.
func (m *member) capTimeout(timeout int64) int64 {
	if f := m.fenceAt(); f > 0 {
		timeout = max(1, min(timeout, f-m.w().now))
	}
	return timeout
}

// act848 takes a KIP-848 member's next slot A step (FindCoordinator and
// a zombie's commit are taken by act).
func (m *member) act848() {
	w, cs := m.w(), m.cons
	if len(cs.ids) < len(w.topics) {
		req := kmsg.NewPtrMetadataRequest()
		req.SetVersion(12)
		for _, t := range w.topics {
			rt := kmsg.NewMetadataRequestTopic()
			name := t
			rt.Topic = &name
			req.Topics = append(req.Topics, rt)
		}
		m.requestA(m.c.randomBroker(), req, waitTopicIDs, w.opts.ClientTimeoutMillis)
		return
	}
	if m.state == memberJoin {
		m.sendJoin848()
		return
	}
	now := w.now
	switch {
	case !m.c.stopping && now >= m.nextChaos:
		m.chaos()
	case len(cs.revoking) > 0 && !cs.revokeCommitted:
		m.commitRevoked()
	case len(cs.revoking) > 0 || cs.beatNow || now >= m.nextBeat:
		m.sendBeat848()
	case len(cs.adding) > 0:
		req, refs := offsetFetchRequest(w, m.c.idx, m.group, cs.adding, w.rng.IntN(2) == 0)
		m.aOps = refs
		m.requestA(m.coord, req, waitOffsetFetch, w.opts.ClientTimeoutMillis)
	case now >= m.nextCommit:
		m.sendCommit()
	default:
		next := min(m.nextBeat, m.nextCommit, m.fenceAt())
		if !m.c.stopping {
			next = min(next, m.nextChaos)
		}
		m.pauseA(next - now)
	}
}

func (m *member) onTopicIDs(r *kmsg.MetadataResponse) {
	w, cs := m.w(), m.cons
	for _, t := range r.Topics {
		if t.Topic != nil && t.ErrorCode == 0 && slices.Contains(w.topics, *t.Topic) && t.TopicID != [16]byte{} {
			cs.ids[t.TopicID] = *t.Topic
			cs.byName[*t.Topic] = t.TopicID
		}
	}
	if len(cs.ids) < len(w.topics) {
		m.pauseA(backoffMillis)
		return
	}
	m.act()
}

// sendJoin848 joins with epoch 0 under a new member id.
func (m *member) sendJoin848() {
	w := m.w()
	m.id = "m" + strconv.FormatUint(w.rng.Uint64(), 36) + strconv.FormatUint(w.rng.Uint64(), 36)
	m.gen = 0
	req := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	req.SetVersion(1)
	req.Group, req.MemberID, req.MemberEpoch = m.group, m.id, 0
	req.RebalanceTimeoutMillis = w.opts.RebalanceTimeoutMillis
	req.SubscribedTopicNames = slices.Clone(w.topics)
	req.ServerAssignor = m.cons.assignor
	req.Topics = []kmsg.ConsumerGroupHeartbeatRequestTopic{}
	m.cons.beatSent = w.now
	m.requestA(m.coord, req, waitHeartbeat, w.opts.ClientTimeoutMillis)
}

// sendBeat848 heartbeats with the partitions it owns: those it revoked
// are no longer its own from here on.
func (m *member) sendBeat848() {
	w, cs := m.w(), m.cons
	w.groups.release848(m, m.owned)
	clear(cs.revoking)
	cs.revokeCommitted, cs.beatNow = false, false
	req := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	req.SetVersion(1)
	req.Group, req.MemberID, req.MemberEpoch = m.group, m.id, m.gen
	req.Topics = []kmsg.ConsumerGroupHeartbeatRequestTopic{}
	for _, tp := range m.owned {
		id := cs.byName[tp.topic]
		if n := len(req.Topics); n == 0 || req.Topics[n-1].TopicID != id {
			req.Topics = append(req.Topics, kmsg.ConsumerGroupHeartbeatRequestTopic{TopicID: id})
		}
		rt := &req.Topics[len(req.Topics)-1]
		rt.Partitions = append(rt.Partitions, tp.part)
	}
	cs.beatSent = w.now
	m.requestA(m.coord, req, waitHeartbeat, w.opts.ClientTimeoutMillis)
}

// leave848 leaves the group (epoch -1), owning nothing from here on.
func (m *member) leave848() {
	w := m.w()
	w.tracef("group c%d %s member %q epoch %d leaves", m.c.idx, m.group, m.id, m.gen)
	req := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	req.SetVersion(1)
	req.Group, req.MemberID, req.MemberEpoch = m.group, m.id, -1
	m.revoke()
	m.requestA(m.coord, req, waitLeave, w.opts.ClientTimeoutMillis)
}

// commitRevoked commits the positions of the partitions it gives up.
func (m *member) commitRevoked() {
	cs := m.cons
	pos := map[tpKey]int64{}
	for _, tp := range sortedTPKeys(cs.revoking) {
		if p := cs.revoking[tp]; p > max(m.committed[tp], 0) {
			pos[tp] = p
		}
	}
	if len(pos) == 0 {
		cs.revokeCommitted = true
		m.act()
		return
	}
	req, refs := m.commitRequest(m.gen, m.id, pos, false)
	m.aOps = refs
	m.requestA(m.coord, req, waitOffsetCommit, m.w().opts.ClientTimeoutMillis)
}

// revoke848 is revoke's KIP-848 part: it owns nothing from here on.
func (m *member) revoke848() {
	cs := m.cons
	m.w().groups.release848(m, nil)
	clear(cs.revoking)
	cs.adding = nil
	cs.revokeCommitted, cs.beatNow = false, false
}

// selfFence drops every partition and joins again.
func (m *member) selfFence(why string) {
	m.w().tracef("group c%d %s member %q epoch %d fenced: %s", m.c.idx, m.group, m.id, m.gen, why)
	m.revoke()
	m.state = memberJoin
	m.gen = 0
}

func (m *member) onBeat848(r *kmsg.ConsumerGroupHeartbeatResponse) {
	w, cs := m.w(), m.cons
	if m.aWait == waitLeave {
		m.goneFor(w.expDelay(groupLeaveGoneMillis), true)
		return
	}
	switch code := r.ErrorCode; code {
	case 0:
	case kerr.UnknownMemberID.Code, kerr.FencedMemberEpoch.Code:
		m.selfFence(codeName(code))
		m.pauseA(1)
		return
	default:
		w.tracef("group c%d %s heartbeat: %s", m.c.idx, m.group, codeName(code))
		if !m.coordinatorError(code) {
			m.pauseA(backoffMillis)
		}
		return
	}
	if r.MemberID != nil && *r.MemberID != "" {
		m.id = *r.MemberID
	}
	if w.now >= cs.beatSent+m.sessionMillis()*fenceMarginNum/fenceMarginDen {
		// The answer came after the deadline it would have set: the
		// coordinator may have ended the session meanwhile (its timer
		// starts when it handles the heartbeat, whose answer waits for
		// the group's records to commit) and given the partitions away.
		// The member would fence itself at once, so it owns none of
		// them (seed 77 with --txn: a join answered 2.9 s late).
		if m.state == memberJoin {
			w.tracef("group c%d %s joined as %q epoch %d too late", m.c.idx, m.group, m.id, r.MemberEpoch)
			m.pauseA(1)
			return
		}
		m.selfFence("heartbeat answered after its session")
		m.pauseA(1)
		return
	}
	cs.lastOK = cs.beatSent
	if m.state == memberJoin {
		w.tracef("group c%d %s joined as %q epoch %d", m.c.idx, m.group, m.id, r.MemberEpoch)
		m.state = memberStable
		m.nextCommit = w.now + m.commitMillis()
	}
	m.gen = r.MemberEpoch
	cs.interval = int64(r.HeartbeatIntervalMillis)
	if cs.interval <= 0 {
		cs.interval = m.heartbeatMillis()
	}
	m.nextBeat = w.now + cs.interval
	if r.Assignment != nil {
		m.assign848(r.Assignment)
		if w.stopped {
			return
		}
	}
	if len(cs.revoking) == 0 {
		cs.calmAt = cs.beatSent
	}
	m.act()
}

// assign848 takes an assignment: the partitions it lost are revoked
// (fetching stops at once, their positions are committed before the next
// heartbeat), the new ones are added once their offsets are read.
func (m *member) assign848(a *kmsg.ConsumerGroupHeartbeatResponseAssignment) {
	w, cs := m.w(), m.cons
	var tps []tpKey
	for _, t := range a.Topics {
		name, ok := cs.ids[t.TopicID]
		if !ok {
			w.tracef("group c%d %s: assigned an unknown topic id %x", m.c.idx, m.group, t.TopicID)
			continue
		}
		for _, p := range t.Partitions {
			tps = append(tps, tpKey{name, p})
		}
	}
	slices.SortFunc(tps, compareTPKey)
	w.groups.own848(m, tps)
	if w.stopped {
		return
	}
	var keep []tpKey
	for _, tp := range m.owned {
		if slices.Contains(tps, tp) {
			keep = append(keep, tp)
			continue
		}
		if len(cs.revoking) == 0 {
			cs.revokeCommitted = false
		}
		cs.revoking[tp] = m.pos[tp]
	}
	if len(keep) < len(m.owned) {
		m.owned = keep
		m.epoch++ // late fetches of what it gave up are dropped
	}
	var adding []tpKey
	for _, tp := range tps {
		if !slices.Contains(m.owned, tp) {
			adding = append(adding, tp)
			delete(cs.revoking, tp) // assigned again before its heartbeat: read its offset again
		}
	}
	cs.adding = adding
	if len(cs.revoking) == 0 {
		cs.revokeCommitted = false
	}
	// The heartbeat that acknowledges goes once the partitions it gives
	// up are committed (act848) or the new ones' offsets are read
	// (onOffsetFetch848).
}

func (m *member) onOffsetFetch848(r *kmsg.OffsetFetchResponse) {
	cs := m.cons
	got, ok := m.takeOffsetFetch(r)
	if !ok {
		return
	}
	if m.state != memberStable {
		m.act()
		return
	}
	var rest []tpKey
	added := false
	for _, tp := range cs.adding {
		o, ok := got[tp]
		if !ok {
			rest = append(rest, tp)
			continue
		}
		m.committed[tp] = o
		m.pos[tp] = max(o, 0) // auto.offset.reset=earliest
		m.owned = append(m.owned, tp)
		added = true
	}
	cs.adding = rest
	if added {
		slices.SortFunc(m.owned, compareTPKey)
		cs.beatNow = true
		if m.bTok == 0 {
			m.armB(m.fetchPause())
		}
	}
	m.act()
}

func (m *member) onCommit848(r *kmsg.OffsetCommitResponse) {
	w, cs := m.w(), m.cons
	refs := m.aOps
	m.aOps = nil
	worst := w.groups.offsetCommitResult(r, refs)
	if since := cs.zombieSince; since > 0 {
		cs.zombieSince = 0
		w.groups.zombieCommitted(m, refs, since)
		if w.stopped {
			return
		}
	}
	for _, ref := range refs {
		op := &w.groups.ops[ref.op]
		if op.Return != linearizability.ReturnUnknown && op.Err == "" && op.Generation == m.gen && op.Member == m.id {
			m.committed[ref.tp] = op.Offset
		}
	}
	if worst != 0 {
		w.tracef("group c%d %s commit: %s", m.c.idx, m.group, codeName(worst))
	}
	switch worst {
	case 0:
	case kerr.UnknownMemberID.Code, kerr.FencedMemberEpoch.Code:
		if m.state == memberStable {
			m.selfFence(codeName(worst))
		}
	case kerr.StaleMemberEpoch.Code:
		cs.beatNow = true // it missed an epoch: ask
	default:
		if m.coordinatorError(worst) {
			return
		}
	}
	if len(cs.revoking) > 0 {
		cs.revokeCommitted = true
	}
	m.act()
}
