package sim

import (
	"math"
	"slices"
	"strconv"

	"github.com/gregor-streaming/gregor/engine/batch"
	"github.com/gregor-streaming/gregor/linearizability"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// The group workload: Options.Groups classic consumer groups ("g0",
// "g1", ...) of Options.GroupMembers members each, every member
// subscribed to every tracked topic with the "consumer" protocol and the
// "range" assignor, as a Kafka consumer is.
//
// A member has two request slots, as a Kafka consumer has a coordinator
// connection (with its heartbeat thread) beside its fetch connections:
//
//   - slot A talks to the group coordinator: FindCoordinator, JoinGroup
//     (with KIP-394's MEMBER_ID_REQUIRED rejoin), SyncGroup (the leader
//     sends a range assignment), OffsetFetch of its partitions,
//     Heartbeat, OffsetCommit of what it consumed (with its generation),
//     LeaveGroup;
//   - slot B fetches its partitions from their leaders, from the
//     committed offsets on, as the plain consumers do.
//
// In the safety phase a member now and then leaves, crashes (vanishes
// without leaving, and comes back as a new member), or pauses longer
// than its session timeout and then, like a zombie, commits its old
// position with its old generation before rejoining.
//
// An offsets reader outside the groups reads every group's committed
// offsets (OffsetFetch), looks at a group now and then (DescribeGroups),
// and resets an empty group's offsets back a little as an admin would
// (OffsetCommit with generation -1 and no member id). After the final
// read it checks that every group settles (groupcheck.go).
//
// Every partition of every OffsetCommit and OffsetFetch is one
// linearizability.OffsetOp of World.groups.ops, judged by
// linearizability.CheckOffsets.

// Group workload limits.
const (
	groupFetchMaxBytes   = 64 << 10 // per partition: members' fetches are not in the porcupine history
	groupCommitMillisMax = 1_000    // a member commits what it consumed about this often
	groupCommitMillisMin = 200
	// A member pauses between fetches, longer than a plain consumer: it
	// fetches up to groupFetchMaxBytes a partition, so it keeps up anyway.
	groupFetchPauseMillisMin = 100
	groupFetchPauseMillisMax = 300
	groupLeaveGoneMillis     = 1_000 // mean pause of a member that left, before it joins again
	groupCrashGoneMillis     = 2_000 // mean time a crashed member stays away
	readerPauseMillis        = 250   // the offsets reader's pause between requests
	readerDescribeOneIn      = 4     // it describes a group once in this many requests
	readerFindOneIn          = 4     // it asks anew for a coordinator once in this many requests
	monitorPauseMillisMin    = 40    // the lag monitor's pause between reads
	monitorPauseMillisMax    = 160
	monitorTimeoutMillis     = 500 // it does not wait long for one group
	adminResetBackMax        = 20  // an admin reset moves an offset back by up to this
	groupVerifyPauseMillis   = 200 // pause between rounds of the final group checks
	groupProtocolType        = "consumer"
	groupProtocol            = "range"
)

// Member states (slot A).
type memberState uint8

const (
	memberJoin    memberState = iota // join or rejoin
	memberSync                       // send SyncGroup
	memberOffsets                    // fetch the committed offsets of its partitions
	memberStable                     // heartbeat, consume, commit
	memberGone                       // left, crashed or paused: silent until its timer
)

var memberStateNames = [...]string{memberJoin: "join", memberSync: "sync", memberOffsets: "offsets", memberStable: "stable", memberGone: "gone"}

// zombieCommit is what a paused member commits when it wakes: its old
// position, under its old generation and member id.
type zombieCommit struct {
	gen int32
	id  string
	pos map[tpKey]int64
	at  int64 // when its pause began
}

// member is one consumer group member. It drives its client's world
// index (for the network and client cuts) with two request slots.
type member struct {
	c     *client
	group string
	id    string
	gen   int32
	state memberState
	coord int32 // the broker it believes coordinates its group, 0: unknown

	// leader: the assignment it computed for this generation (kept for
	// retries of SyncGroup).
	assignments []kmsg.SyncGroupRequestGroupAssignment

	owned     []tpKey // this generation's partitions
	epoch     uint64  // bumped whenever owned changes: late fetches are dropped
	pos       map[tpKey]int64
	committed map[tpKey]int64 // last acknowledged or fetched commit

	nextBeat, nextCommit, nextChaos int64
	rejoin                          bool // commit what it consumed, then rejoin (an eager revoke)
	zombie                          *zombieCommit
	commitN                         int

	// Slot A: the coordinator conversation. aTok is the request in
	// flight (0: none), aTimer its timeout or the wake-up of a pause.
	aTok   uint64
	aTimer uint64
	aWait  waitKind
	aOps   []offsetOpRef

	// Slot B: fetches.
	bTok     uint64
	bTimer   uint64
	bEpoch   uint64
	bTPs     []tpKey
	leaders  map[tpKey]int32
	haveMeta bool
	next     int

	// cons is a KIP-848 member's state (group848.go); nil in a classic
	// group.
	cons *consumerState
}

// offsetOpRef ties one partition of an offsets request to its history op.
type offsetOpRef struct {
	tp tpKey
	op int // index in World.groups.ops
}

// Wait kinds of the group workload.
const (
	waitFindCoordinator waitKind = iota + 100
	waitJoin
	waitSync
	waitHeartbeat
	waitLeave
	waitOffsetFetch
	waitOffsetCommit
	waitDescribe
)

// groupNames lists the groups of a run: n groups, one of them a KIP-848
// consumer group ("c0", group848.go) and the others classic ("g0",
// "g1", ...). A run with one group gets a consumer group for odd seeds
// and a classic one for even seeds: the group workload costs what it
// cost before consumer groups existed.
func groupNames(n int, seed uint64) []string {
	var gs []string
	classic := n - 1
	if n == 1 && seed%2 == 0 {
		classic = 1
	}
	for i := range classic {
		gs = append(gs, "g"+strconv.Itoa(i))
	}
	for i := range n - classic {
		gs = append(gs, consumerGroupPrefix+strconv.Itoa(i))
	}
	return gs
}

func newMember(c *client, group string) *member {
	m := &member{c: c, group: group, pos: map[tpKey]int64{}, committed: map[tpKey]int64{},
		leaders: map[tpKey]int32{}, nextChaos: c.w.now + c.w.expDelay(c.w.opts.GroupChaosEveryMillis)}
	if isConsumerGroup(group) {
		m.cons = newConsumerState(c.w)
	}
	return m
}

func (m *member) w() *World { return m.c.w }

// armA starts slot A's timer: a timeout while a request is in flight,
// else the end of a pause.
func (m *member) armA(ms int64) {
	m.c.timer++
	m.aTimer = m.c.timer
	m.w().schedule(max(ms, 0), &event{kind: evClient, client: m.c.idx, gen: m.aTimer})
}

func (m *member) armB(ms int64) {
	m.c.timer++
	m.bTimer = m.c.timer
	m.w().schedule(max(ms, 0), &event{kind: evClient, client: m.c.idx, gen: m.bTimer})
}

// requestA sends a slot A request with a timeout.
func (m *member) requestA(to int32, req kmsg.Request, wait waitKind, timeout int64) {
	if m.cons != nil {
		timeout = m.capTimeout(timeout)
	}
	m.aWait = wait
	m.aTok = m.w().send(m.c.idx, to, req)
	m.armA(timeout)
}

func (m *member) pauseA(ms int64) {
	m.aTok, m.aWait = 0, waitBackoff
	m.armA(ms)
}

func (m *member) kick() { m.pauseA(1 + m.w().rng.Int64N(thinkMillisMax)) }

func (m *member) onTimer(gen uint64) {
	switch gen {
	case m.aTimer:
		m.w().tracef("timer c%d slot a wait %d state %s", m.c.idx, m.aWait, memberStateNames[m.state])
		if m.aTok != 0 {
			// Timed out: the outcome is unknown; the ops keep Return =
			// ReturnUnknown. Find the coordinator again.
			m.aTok, m.aOps = 0, nil
			m.coord = 0
			if m.aWait == waitLeave {
				m.goneFor(m.w().expDelay(groupLeaveGoneMillis), true)
				return
			}
			m.pauseA(backoffMillis)
			return
		}
		m.act()
	case m.bTimer:
		m.w().tracef("timer c%d slot b", m.c.idx)
		if m.bTok != 0 {
			m.bTok = 0
			m.haveMeta = false
			m.armB(backoffMillis)
			return
		}
		m.bTimer = 0
		m.fetchNext()
	}
}

func (m *member) onResponse(tok uint64, resp kmsg.Response) {
	switch {
	case tok == 0:
		return
	case tok == m.aTok:
		m.aTok = 0
		m.aTimer = 0 // cancels the timeout
		m.onResponseA(resp)
	case tok == m.bTok:
		m.bTok = 0
		m.bTimer = 0
		switch r := resp.(type) {
		case *kmsg.MetadataResponse:
			m.onMetadata(r)
		case *kmsg.FetchResponse:
			m.onFetch(r)
		}
	}
}

// coordinatorError handles the answers that send a member back to
// FindCoordinator or make it wait for the coordinator; it reports
// whether code was one of them.
func (m *member) coordinatorError(code int16) bool {
	switch code {
	case kerr.NotCoordinator.Code, kerr.CoordinatorNotAvailable.Code:
		m.coord = 0
		m.pauseA(backoffMillis)
		return true
	case kerr.CoordinatorLoadInProgress.Code:
		m.pauseA(backoffMillis)
		return true
	}
	return false
}

// act takes slot A's next step.
func (m *member) act() {
	w := m.w()
	if w.stopped || m.aTok != 0 {
		return
	}
	if m.state == memberGone {
		m.wake()
		return
	}
	if m.cons != nil {
		if f := m.fenceAt(); f > 0 && w.now >= f {
			m.selfFence("no heartbeat answered in time")
		}
	}
	if m.coord == 0 {
		m.requestA(m.c.randomBroker(), findCoordinatorRequest(w, m.group), waitFindCoordinator, w.opts.ClientTimeoutMillis)
		return
	}
	if m.zombie != nil {
		m.sendZombieCommit()
		return
	}
	if m.cons != nil {
		m.act848()
		return
	}
	switch m.state {
	case memberJoin:
		m.sendJoin()
	case memberSync:
		m.sendSync()
	case memberOffsets:
		m.sendOffsetFetch()
	case memberStable:
		now := w.now
		switch {
		case !m.c.stopping && now >= m.nextChaos:
			m.chaos()
		case m.rejoin || now >= m.nextCommit:
			m.sendCommit()
		case now >= m.nextBeat:
			req := kmsg.NewPtrHeartbeatRequest()
			req.SetVersion(3)
			req.Group, req.Generation, req.MemberID = m.group, m.gen, m.id
			m.requestA(m.coord, req, waitHeartbeat, w.opts.ClientTimeoutMillis)
		default:
			next := min(m.nextBeat, m.nextCommit)
			if !m.c.stopping {
				next = min(next, m.nextChaos)
			}
			m.pauseA(next - now)
		}
	}
}

func (m *member) fetchPause() int64 {
	return groupFetchPauseMillisMin + m.w().rng.Int64N(groupFetchPauseMillisMax-groupFetchPauseMillisMin+1)
}

func (m *member) heartbeatMillis() int64 { return int64(m.w().opts.SessionTimeoutMillis) / 3 }

func (m *member) commitMillis() int64 {
	return groupCommitMillisMin + m.w().rng.Int64N(groupCommitMillisMax-groupCommitMillisMin+1)
}

// joinTimeout: a JoinGroup waits up to the rebalance timeout for the
// other members, a SyncGroup for the leader's assignment.
func (m *member) joinTimeout() int64 {
	return int64(m.w().opts.RebalanceTimeoutMillis) + m.w().opts.ClientTimeoutMillis
}

func (m *member) sendJoin() {
	w := m.w()
	meta := kmsg.NewConsumerMemberMetadata()
	meta.Topics = slices.Clone(w.topics)
	req := kmsg.NewPtrJoinGroupRequest()
	req.SetVersion(5)
	req.Group = m.group
	req.SessionTimeoutMillis = w.opts.SessionTimeoutMillis
	req.RebalanceTimeoutMillis = w.opts.RebalanceTimeoutMillis
	req.MemberID = m.id
	req.ProtocolType = groupProtocolType
	p := kmsg.NewJoinGroupRequestProtocol()
	p.Name = groupProtocol
	p.Metadata = meta.AppendTo(nil)
	req.Protocols = append(req.Protocols, p)
	m.requestA(m.coord, req, waitJoin, m.joinTimeout())
}

func (m *member) sendSync() {
	req := kmsg.NewPtrSyncGroupRequest()
	req.SetVersion(5)
	req.Group, req.Generation, req.MemberID = m.group, m.gen, m.id
	pt, pr := groupProtocolType, groupProtocol
	req.ProtocolType, req.Protocol = &pt, &pr
	req.GroupAssignment = m.assignments
	m.requestA(m.coord, req, waitSync, m.joinTimeout())
}

func (m *member) sendOffsetFetch() {
	w := m.w()
	req, refs := offsetFetchRequest(w, m.c.idx, m.group, m.owned, w.rng.IntN(2) == 0)
	m.aOps = refs
	m.requestA(m.coord, req, waitOffsetFetch, w.opts.ClientTimeoutMillis)
}

// startRejoin revokes every partition (the eager protocol) and rejoins.
func (m *member) startRejoin() {
	m.state = memberJoin
	m.rejoin = false
	m.revoke()
}

func (m *member) revoke() {
	if m.cons != nil {
		m.revoke848()
	}
	m.owned = nil
	m.assignments = nil
	m.epoch++
	clear(m.pos)
	clear(m.committed)
}

// sendCommit commits the position of every owned partition that moved
// since its last commit (all of them, one time in eight).
func (m *member) sendCommit() {
	w := m.w()
	all := w.rng.IntN(8) == 0
	pos := map[tpKey]int64{}
	for _, tp := range m.owned {
		if p := m.pos[tp]; all || p > max(m.committed[tp], 0) {
			pos[tp] = p
		}
	}
	m.nextCommit = w.now + m.commitMillis()
	if len(pos) == 0 {
		if m.rejoin {
			m.startRejoin()
		}
		m.act()
		return
	}
	req, refs := m.commitRequest(m.gen, m.id, pos, false)
	m.aOps = refs
	m.requestA(m.coord, req, waitOffsetCommit, w.opts.ClientTimeoutMillis)
}

func (m *member) sendZombieCommit() {
	z := m.zombie
	m.zombie = nil
	if len(z.pos) == 0 {
		m.act()
		return
	}
	m.w().tracef("zombie c%d %s generation %d commits %d partitions", m.c.idx, m.group, z.gen, len(z.pos))
	if m.cons != nil {
		m.cons.zombieSince = max(z.at, 1)
	}
	req, refs := m.commitRequest(z.gen, z.id, z.pos, false)
	m.aOps = refs
	m.requestA(m.coord, req, waitOffsetCommit, m.w().opts.ClientTimeoutMillis)
}

// commitRequest builds an OffsetCommit and records one op per partition,
// each with metadata unique in the run.
func (m *member) commitRequest(gen int32, id string, pos map[tpKey]int64, admin bool) (*kmsg.OffsetCommitRequest, []offsetOpRef) {
	w := m.w()
	tps := sortedTPKeys(pos)
	meta := make([]string, len(tps))
	for i := range tps {
		m.commitN++
		meta[i] = "c" + strconv.Itoa(m.c.idx) + "." + strconv.Itoa(m.commitN)
	}
	version := int16(7)
	if m.cons != nil {
		version = 9 // a KIP-848 member commits with its member epoch
	}
	return offsetCommitRequest(w, m.c.idx, m.group, version, gen, id, tps, pos, meta, admin)
}

// chaos: leave, crash, or pause like a zombie.
func (m *member) chaos() {
	w := m.w()
	m.nextChaos = w.now + w.expDelay(w.opts.GroupChaosEveryMillis)
	switch r := w.rng.IntN(10); {
	case r < 3 && m.cons != nil:
		m.leave848()
	case r < 3:
		w.tracef("group c%d %s leaves", m.c.idx, m.group)
		req := kmsg.NewPtrLeaveGroupRequest()
		req.SetVersion(3)
		req.Group = m.group
		lm := kmsg.NewLeaveGroupRequestMember()
		lm.MemberID = m.id
		req.Members = append(req.Members, lm)
		m.revoke()
		m.requestA(m.coord, req, waitLeave, w.opts.ClientTimeoutMillis)
	case r < 5:
		w.tracef("group c%d %s crashes", m.c.idx, m.group)
		m.goneFor(w.expDelay(groupCrashGoneMillis), true)
	default:
		z := &zombieCommit{gen: m.gen, id: m.id, pos: map[tpKey]int64{}, at: w.now}
		for _, tp := range m.owned {
			z.pos[tp] = m.pos[tp]
		}
		session := int64(w.opts.SessionTimeoutMillis)
		d := session + session/2 + w.rng.Int64N(session*3/2+1)
		w.tracef("group c%d %s pauses %dms generation %d", m.c.idx, m.group, d, m.gen)
		m.goneFor(d, false)
		m.zombie = z
	}
}

// goneFor silences the member for d ms: nothing in flight is heard of
// again. A fresh member comes back without its member id.
func (m *member) goneFor(d int64, fresh bool) {
	m.revoke()
	m.state = memberGone
	m.aTok, m.bTok, m.bTimer = 0, 0, 0
	m.aOps = nil
	m.rejoin = false
	if fresh {
		m.id, m.gen = "", 0
		m.coord = 0
	}
	m.pauseA(d)
}

func (m *member) wake() {
	w := m.w()
	w.tracef("group c%d %s wakes", m.c.idx, m.group)
	m.nextChaos = w.now + w.expDelay(w.opts.GroupChaosEveryMillis)
	m.state = memberJoin
	m.act()
}

func (m *member) onResponseA(resp kmsg.Response) {
	w := m.w()
	var code int16
	switch r := resp.(type) {
	case *kmsg.JoinGroupResponse:
		code = r.ErrorCode
	case *kmsg.SyncGroupResponse:
		code = r.ErrorCode
	case *kmsg.HeartbeatResponse:
		code = r.ErrorCode
	}
	if code != 0 {
		w.tracef("group c%d %s key %d: %s", m.c.idx, m.group, resp.Key(), codeName(code))
	}
	switch r := resp.(type) {
	case *kmsg.FindCoordinatorResponse:
		if node, code := findCoordinatorResult(r, m.group); code == 0 && node >= 1 && int(node) <= len(w.nodes) {
			m.coord = node
			m.act()
			return
		}
		m.pauseA(backoffMillis)
	case *kmsg.JoinGroupResponse:
		m.onJoin(r)
	case *kmsg.SyncGroupResponse:
		m.onSync(r)
	case *kmsg.OffsetFetchResponse:
		if m.cons != nil {
			m.onOffsetFetch848(r)
			return
		}
		m.onOffsetFetch(r)
	case *kmsg.OffsetCommitResponse:
		if m.cons != nil {
			m.onCommit848(r)
			return
		}
		m.onCommit(r)
	case *kmsg.MetadataResponse:
		m.onTopicIDs(r)
	case *kmsg.ConsumerGroupHeartbeatResponse:
		m.onBeat848(r)
	case *kmsg.HeartbeatResponse:
		switch code := r.ErrorCode; code {
		case 0:
			m.nextBeat = w.now + m.heartbeatMillis()
			m.act()
		case kerr.RebalanceInProgress.Code:
			// Commit what it consumed first, half the time (an eager
			// consumer's revoke callback), then rejoin.
			m.nextBeat = w.now + m.heartbeatMillis()
			if w.rng.IntN(2) == 0 {
				m.rejoin = true
			} else {
				m.startRejoin()
			}
			m.act()
		case kerr.UnknownMemberID.Code:
			m.id = ""
			m.startRejoin()
			m.act()
		case kerr.IllegalGeneration.Code, kerr.FencedInstanceID.Code:
			m.startRejoin()
			m.act()
		default:
			if !m.coordinatorError(code) {
				m.pauseA(backoffMillis)
			}
		}
	case *kmsg.LeaveGroupResponse:
		m.goneFor(w.expDelay(groupLeaveGoneMillis), true)
	}
}

func (m *member) onJoin(r *kmsg.JoinGroupResponse) {
	w := m.w()
	switch code := r.ErrorCode; code {
	case 0:
		m.id, m.gen = r.MemberID, r.Generation
		w.groups.onJoin(m, r)
		if w.stopped {
			return
		}
		m.assignments = nil
		if r.LeaderID == r.MemberID {
			m.assignments = rangeAssign(w, r.Members)
		}
		m.state = memberSync
		m.act()
	case kerr.MemberIDRequired.Code:
		m.id = r.MemberID
		m.act()
	case kerr.UnknownMemberID.Code:
		m.id = ""
		m.pauseA(backoffMillis)
	default:
		if !m.coordinatorError(code) {
			m.pauseA(backoffMillis)
		}
	}
}

func (m *member) onSync(r *kmsg.SyncGroupResponse) {
	w := m.w()
	switch code := r.ErrorCode; code {
	case 0:
		var a kmsg.ConsumerMemberAssignment
		var owned []tpKey
		if len(r.MemberAssignment) > 0 {
			if err := a.ReadFrom(r.MemberAssignment); err != nil {
				w.fail(FailSplitAssignment, "group %s generation %d: member %q got an undecodable assignment: %v", m.group, m.gen, m.id, err)
				return
			}
			for _, t := range a.Topics {
				for _, p := range t.Partitions {
					owned = append(owned, tpKey{t.Topic, p})
				}
			}
		}
		slices.SortFunc(owned, compareTPKey)
		w.groups.onAssignment(m, owned)
		if w.stopped {
			return
		}
		m.revoke()
		m.owned = owned
		m.state = memberOffsets
		m.act()
	case kerr.RebalanceInProgress.Code, kerr.IllegalGeneration.Code:
		m.startRejoin()
		m.act()
	case kerr.UnknownMemberID.Code:
		m.id = ""
		m.startRejoin()
		m.act()
	default:
		if !m.coordinatorError(code) {
			m.pauseA(backoffMillis)
		}
	}
}

// takeOffsetFetch judges slot A's OffsetFetch answer: the offsets read, or
// false once an error is handled.
func (m *member) takeOffsetFetch(r *kmsg.OffsetFetchResponse) (map[tpKey]int64, bool) {
	refs := m.aOps
	m.aOps = nil
	code, got := m.w().groups.offsetFetchResult(r, m.group, refs)
	if code != 0 {
		if !m.coordinatorError(code) {
			m.pauseA(backoffMillis)
		}
		return nil, false
	}
	return got, true
}

func (m *member) onOffsetFetch(r *kmsg.OffsetFetchResponse) {
	w := m.w()
	got, ok := m.takeOffsetFetch(r)
	if !ok {
		return
	}
	if m.state != memberOffsets {
		m.act()
		return
	}
	for _, tp := range m.owned {
		o, ok := got[tp]
		if !ok {
			m.pauseA(backoffMillis)
			return
		}
		m.committed[tp] = o
		m.pos[tp] = max(o, 0) // auto.offset.reset=earliest: the log starts at 0
	}
	m.state = memberStable
	m.nextBeat = w.now + m.heartbeatMillis()
	m.nextCommit = w.now + m.commitMillis()
	m.act()
	if m.bTok == 0 {
		m.armB(m.fetchPause())
	}
}

func (m *member) onCommit(r *kmsg.OffsetCommitResponse) {
	w := m.w()
	refs := m.aOps
	m.aOps = nil
	worst := w.groups.offsetCommitResult(r, refs)
	for _, ref := range refs {
		op := &w.groups.ops[ref.op]
		if op.Return != linearizability.ReturnUnknown && op.Err == "" && op.Generation == m.gen && op.Member == m.id {
			m.committed[ref.tp] = op.Offset
		}
	}
	switch worst {
	case 0:
	case kerr.RebalanceInProgress.Code, kerr.IllegalGeneration.Code, kerr.FencedInstanceID.Code:
		m.startRejoin()
	case kerr.UnknownMemberID.Code:
		m.id = ""
		m.startRejoin()
	default:
		if m.coordinatorError(worst) {
			return
		}
	}
	if m.rejoin {
		m.startRejoin()
	}
	m.act()
}

// --- slot B: fetching ---

// fetchNext sends the next fetch of the member's partitions: one request
// to the leader of the next partition, with every owned partition it
// leads.
func (m *member) fetchNext() {
	w := m.w()
	if w.stopped || m.bTok != 0 || m.state != memberStable || len(m.owned) == 0 {
		return
	}
	if !m.haveMeta {
		req := kmsg.NewPtrMetadataRequest()
		req.SetVersion(12)
		m.bTok = w.send(m.c.idx, m.c.randomBroker(), req)
		m.armB(w.opts.ClientTimeoutMillis)
		return
	}
	tp := m.owned[m.next%len(m.owned)]
	m.next++
	to, ok := m.leaders[tp]
	if !ok {
		m.haveMeta = false
		m.armB(backoffMillis)
		return
	}
	req := kmsg.NewPtrFetchRequest()
	req.SetVersion(12)
	req.ReplicaID = -1
	req.MaxWaitMillis = int32(w.rng.Int64N(fetchMaxWaitMillis + 1))
	req.MinBytes = 1
	req.SessionEpoch = -1
	m.bTPs = m.bTPs[:0]
	for _, tp := range m.owned {
		if m.leaders[tp] != to {
			continue
		}
		rt := kmsg.NewFetchRequestTopic()
		rt.Topic = tp.topic
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition = tp.part
		rp.FetchOffset = m.pos[tp]
		rp.PartitionMaxBytes = groupFetchMaxBytes
		rp.CurrentLeaderEpoch = -1
		rp.LogStartOffset = -1
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		m.bTPs = append(m.bTPs, tp)
	}
	req.MaxBytes = groupFetchMaxBytes * int32(len(m.bTPs))
	m.bEpoch = m.epoch
	m.bTok = w.send(m.c.idx, to, req)
	m.armB(w.opts.ClientTimeoutMillis)
}

func (m *member) onMetadata(r *kmsg.MetadataResponse) {
	clear(m.leaders)
	for _, t := range r.Topics {
		if t.Topic == nil || t.ErrorCode != 0 {
			continue
		}
		for _, p := range t.Partitions {
			if p.ErrorCode == 0 && p.Leader >= 1 && int(p.Leader) <= len(m.w().nodes) {
				m.leaders[tpKey{*t.Topic, p.Partition}] = p.Leader
			}
		}
	}
	m.haveMeta = true
	m.fetchNext()
}

func (m *member) onFetch(r *kmsg.FetchResponse) {
	w := m.w()
	if m.bEpoch != m.epoch || m.state != memberStable {
		// Its partitions changed meanwhile: what it fetched is not its
		// own any more.
		m.fetchNext()
		return
	}
	failed := false
	for _, tp := range m.bTPs {
		code := r.ErrorCode
		p, ok := fetchPartition(r, tp)
		if code == 0 && ok {
			code = p.ErrorCode
		}
		if code == kerr.OffsetOutOfRange.Code {
			w.tracef("group c%d %s %s: offset %d out of range, reset to 0", m.c.idx, m.group, tp, m.pos[tp])
			m.pos[tp] = 0
			continue
		}
		if code != 0 || !ok {
			failed = true
			continue
		}
		bs, err := batch.Split(p.RecordBatches)
		if len(p.RecordBatches) > 0 && err != nil {
			w.fail(FailDivergence, "group member %d: fetch of %s returned undecodable batches: %v", m.c.idx, tp, err)
			return
		}
		var recs []linearizability.Record
		for _, b := range bs {
			rs, err := batch.Records(b)
			if err != nil {
				w.fail(FailDivergence, "group member %d: fetch of %s returned a corrupt batch: %v", m.c.idx, tp, err)
				return
			}
			for _, rec := range rs {
				if rec.Offset >= m.pos[tp] {
					recs = append(recs, linearizability.Record{Offset: rec.Offset, Value: string(rec.Value)})
				}
			}
		}
		if len(recs) == 0 {
			continue
		}
		w.groups.consumed(m, tp, recs)
		if w.stopped {
			return
		}
		m.pos[tp] = recs[len(recs)-1].Offset + 1
	}
	if failed {
		m.haveMeta = false
		m.armB(backoffMillis)
		return
	}
	m.armB(m.fetchPause())
}

// rangeAssign is Kafka's range assignor: per topic, the members
// subscribed to it in member id order, each a contiguous range of
// partitions, the first ones one more when they do not divide evenly.
func rangeAssign(w *World, members []kmsg.JoinGroupResponseMember) []kmsg.SyncGroupRequestGroupAssignment {
	subs := map[string][]string{} // topic -> member ids
	ids := make([]string, 0, len(members))
	for _, jm := range members {
		ids = append(ids, jm.MemberID)
		var meta kmsg.ConsumerMemberMetadata
		if err := meta.ReadFrom(jm.ProtocolMetadata); err != nil {
			continue
		}
		for _, t := range meta.Topics {
			subs[t] = append(subs[t], jm.MemberID)
		}
	}
	slices.Sort(ids)
	got := map[string]map[string][]int32{} // member -> topic -> partitions
	for _, t := range w.topics {
		ms := slices.Clone(subs[t])
		slices.Sort(ms)
		if len(ms) == 0 {
			continue
		}
		n := w.opts.Partitions
		per, extra := n/len(ms), n%len(ms)
		start := 0
		for i, id := range ms {
			k := per
			if i < extra {
				k++
			}
			for p := start; p < start+k; p++ {
				if got[id] == nil {
					got[id] = map[string][]int32{}
				}
				got[id][t] = append(got[id][t], int32(p))
			}
			start += k
		}
	}
	var out []kmsg.SyncGroupRequestGroupAssignment
	for _, id := range ids {
		a := kmsg.NewConsumerMemberAssignment()
		for _, t := range w.topics {
			if ps := got[id][t]; len(ps) > 0 {
				at := kmsg.NewConsumerMemberAssignmentTopic()
				at.Topic, at.Partitions = t, ps
				a.Topics = append(a.Topics, at)
			}
		}
		sa := kmsg.NewSyncGroupRequestGroupAssignment()
		sa.MemberID, sa.MemberAssignment = id, a.AppendTo(nil)
		out = append(out, sa)
	}
	return out
}

// --- the standalone committer ---

// Standalone committer limits.
const (
	standaloneTimeoutMillis  = 300 // it gives up on a coordinator quickly
	standalonePauseMillisMin = 80
	standalonePauseMillisMax = 250
	standaloneFindOneIn      = 16 // it asks anew for the coordinator once in this many commits
	standaloneStepMax        = 10
	standaloneRetold         = 2 // it believes a coordinator that failed it when told so this often
)

// standalone is a consumer that assigns itself partitions and commits
// its positions to groups of its own that have no members (generation -1
// and no member id, accepted while a group is Empty, as Kafka accepts
// them): one group on each __consumer_offsets partition, in turn. It asks
// a random broker for the coordinator often and gives up on a silent one
// quickly, so its commits follow a coordinator to its new leader while
// clients that stay with a deposed one may still read there. Its
// positions only grow.
type standalone struct {
	groups []string
	coords map[string]int32
	pos    map[groupTPKey]int64
	group  string // of the request in flight
	refs   []offsetOpRef
	next   int
	n      int
	// bad is the coordinator that just failed it: it asks another broker
	// who coordinates now, and a third if told bad again; asked is the
	// broker it asked last.
	bad, asked int32
	retold     int
	fails      int // commits failed in a row
}

// standaloneGroups names one group on each of the n partitions of
// __consumer_offsets ("s0", "s1", ... as Kafka's hash places them).
func standaloneGroups(n int32) []string {
	var gs []string
	for p := range n {
		for k := 0; ; k++ {
			g := "s" + strconv.Itoa(k)
			if groupPartition(g, n) == p {
				gs = append(gs, g)
				break
			}
		}
	}
	return gs
}

// groupPartition is Kafka's placement of a group in __consumer_offsets:
// abs(String.hashCode(group)) % partitions.
func groupPartition(group string, partitions int32) int32 {
	var h int32
	for _, r := range group {
		h = 31*h + int32(r)
	}
	if h == math.MinInt32 {
		h = 0
	} else if h < 0 {
		h = -h
	}
	return h % partitions
}

func newStandalone(w *World) *standalone {
	return &standalone{groups: standaloneGroups(w.opts.OffsetsPartitions), coords: map[string]int32{}, pos: map[groupTPKey]int64{}}
}

func (c *client) nextStandalone() {
	w, s := c.w, c.std
	if w.stopped {
		return
	}
	if c.stopping {
		c.wait = waitNothing
		return
	}
	g := s.groups[s.next%len(s.groups)]
	s.group = g
	if s.coords[g] == 0 || w.rng.IntN(standaloneFindOneIn) == 0 {
		s.coords[g] = 0
		to := c.randomBroker()
		for range 8 {
			if to != s.bad && to != s.asked {
				break
			}
			to = c.randomBroker()
		}
		s.asked = to
		c.requestFor(to, findCoordinatorRequest(w, g), waitFindCoordinator, standaloneTimeoutMillis)
		return
	}
	tps := w.allTPs()
	pos := map[tpKey]int64{}
	for range 1 + w.rng.IntN(4) {
		tp := tps[w.rng.IntN(len(tps))]
		k := groupTPKey{g, tp}
		s.pos[k] += 1 + w.rng.Int64N(standaloneStepMax)
		pos[tp] = s.pos[k]
	}
	keys := sortedTPKeys(pos)
	meta := make([]string, len(keys))
	for i := range keys {
		s.n++
		meta[i] = "s" + strconv.Itoa(c.idx) + "." + strconv.Itoa(s.n)
	}
	req, refs := offsetCommitRequest(w, c.idx, g, 7, -1, "", keys, pos, meta, false)
	s.refs = refs
	c.requestFor(s.coords[g], req, waitOffsetCommit, standaloneTimeoutMillis)
}

// standaloneTimedOut forgets the coordinator of the group asked, and
// asks another broker for it next.
func (c *client) standaloneTimedOut() {
	c.std.refs = nil
	c.std.forget(c.std.coords[c.std.group])
}

// forget drops a coordinator that failed: every group it was believed to
// coordinate is looked up again, at another broker.
func (s *standalone) forget(bad int32) {
	s.bad = bad
	for g, b := range s.coords {
		if b == bad {
			s.coords[g] = 0
		}
	}
	s.coords[s.group] = 0
}

func (c *client) onStandaloneResponse(resp kmsg.Response) {
	w, s := c.w, c.std
	switch r := resp.(type) {
	case *kmsg.FindCoordinatorResponse:
		node, code := findCoordinatorResult(r, s.group)
		if code == 0 && node >= 1 && int(node) <= len(w.nodes) && node != s.bad {
			s.coords[s.group] = node
			c.wait = waitNothing
			c.nextOp()
			return
		}
		if code == 0 && node == s.bad && s.retold < standaloneRetold {
			// Told the coordinator that just failed it: ask a third broker
			// (and believe it after a while).
			s.retold++
			c.backoff(1)
			return
		}
		if code == 0 && node == s.bad {
			s.coords[s.group] = node
			s.bad, s.retold = 0, 0
			c.wait = waitNothing
			c.nextOp()
			return
		}
		c.backoff(backoffMillis)
	case *kmsg.OffsetCommitResponse:
		refs := s.refs
		s.refs = nil
		if code := w.groups.offsetCommitResult(r, refs); code != 0 {
			// Quickly elsewhere, but not in a tight loop while no
			// coordinator is there at all.
			s.fails++
			pause := int64(20)
			if s.fails > 3 {
				pause = backoffMillis
			}
			if code != kerr.CoordinatorLoadInProgress.Code {
				s.forget(s.coords[s.group])
			}
			c.backoff(pause)
			return
		}
		s.next++
		s.bad, s.asked, s.retold, s.fails = 0, 0, 0, 0
		c.backoff(standalonePauseMillisMin + w.rng.Int64N(standalonePauseMillisMax-standalonePauseMillisMin+1))
	default:
		c.backoff(backoffMillis)
	}
}

// --- requests both members and the offsets reader send ---

// findCoordinatorRequest asks for a group's coordinator, as v3 (one key)
// or v4 (a batch of keys) at random.
func findCoordinatorRequest(w *World, group string) *kmsg.FindCoordinatorRequest {
	req := kmsg.NewPtrFindCoordinatorRequest()
	if w.rng.IntN(2) == 0 {
		req.SetVersion(3)
		req.CoordinatorKey = group
	} else {
		req.SetVersion(4)
		req.CoordinatorKeys = []string{group}
	}
	return req
}

// findCoordinatorResult returns the coordinator named for group and the
// error code.
func findCoordinatorResult(r *kmsg.FindCoordinatorResponse, group string) (int32, int16) {
	if r.Version < 4 {
		return r.NodeID, r.ErrorCode
	}
	for _, c := range r.Coordinators {
		if c.Key == group {
			return c.NodeID, c.ErrorCode
		}
	}
	return -1, kerr.CoordinatorNotAvailable.Code
}

// offsetFetchRequest asks for a group's committed offsets of tps, as v7
// or (batched) v8, and records one op per partition.
func offsetFetchRequest(w *World, client int, group string, tps []tpKey, v8 bool) (*kmsg.OffsetFetchRequest, []offsetOpRef) {
	req := kmsg.NewPtrOffsetFetchRequest()
	byTopic := map[string][]int32{}
	var topics []string
	var refs []offsetOpRef
	for _, tp := range tps {
		if _, ok := byTopic[tp.topic]; !ok {
			topics = append(topics, tp.topic)
		}
		byTopic[tp.topic] = append(byTopic[tp.topic], tp.part)
		refs = append(refs, offsetOpRef{tp, w.groups.record(linearizability.OffsetOp{Client: client,
			Kind: linearizability.OffsetFetch, Group: group, TP: tp.tp(), Offset: -1})})
	}
	if v8 {
		req.SetVersion(8)
		g := kmsg.NewOffsetFetchRequestGroup()
		g.Group = group
		for _, t := range topics {
			gt := kmsg.NewOffsetFetchRequestGroupTopic()
			gt.Topic, gt.Partitions = t, byTopic[t]
			g.Topics = append(g.Topics, gt)
		}
		req.Groups = append(req.Groups, g)
	} else {
		req.SetVersion(7)
		req.Group = group
		for _, t := range topics {
			rt := kmsg.NewOffsetFetchRequestTopic()
			rt.Topic, rt.Partitions = t, byTopic[t]
			req.Topics = append(req.Topics, rt)
		}
	}
	return req, refs
}

// offsetCommitRequest commits pos of tps with the given metadata, and
// records one op per partition.
func offsetCommitRequest(w *World, client int, group string, version int16, gen int32, id string, tps []tpKey, pos map[tpKey]int64, meta []string, admin bool) (*kmsg.OffsetCommitRequest, []offsetOpRef) {
	req := kmsg.NewPtrOffsetCommitRequest()
	req.SetVersion(version)
	req.Group, req.Generation, req.MemberID = group, gen, id
	var refs []offsetOpRef
	for i, tp := range tps {
		if len(req.Topics) == 0 || req.Topics[len(req.Topics)-1].Topic != tp.topic {
			rt := kmsg.NewOffsetCommitRequestTopic()
			rt.Topic = tp.topic
			req.Topics = append(req.Topics, rt)
		}
		rt := &req.Topics[len(req.Topics)-1]
		rp := kmsg.NewOffsetCommitRequestTopicPartition()
		rp.Partition, rp.Offset, rp.LeaderEpoch = tp.part, pos[tp], -1
		md := meta[i]
		rp.Metadata = &md
		rt.Partitions = append(rt.Partitions, rp)
		refs = append(refs, offsetOpRef{tp, w.groups.record(linearizability.OffsetOp{Client: client,
			Kind: linearizability.OffsetCommit, Group: group, TP: tp.tp(), Offset: pos[tp], Metadata: md,
			Admin: admin, Generation: gen, Member: id})})
	}
	return req, refs
}

func sortedTPKeys[V any](m map[tpKey]V) []tpKey {
	tps := make([]tpKey, 0, len(m))
	for tp := range m {
		tps = append(tps, tp)
	}
	slices.SortFunc(tps, compareTPKey)
	return tps
}

func compareTPKey(a, b tpKey) int { return compareTP(a.tp(), b.tp()) }

func compareTP(a, b linearizability.TP) int {
	switch {
	case a.Topic < b.Topic:
		return -1
	case a.Topic > b.Topic:
		return 1
	}
	return int(a.Partition) - int(b.Partition)
}
