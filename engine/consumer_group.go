package engine

import (
	"regexp"
	"slices"

	"github.com/gregor-streaming/gregor/engine/batch"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// KIP-848 consumer groups: the coordinator assigns. Each member heartbeats
// its subscription and the partitions it owns; the group epoch moves when
// membership, a subscription or a subscribed topic's partitions change;
// the coordinator then computes a target assignment (its assignor:
// uniform or range) and moves each member toward its target one step per
// heartbeat, revoking before it assigns: a member first gives up what it
// must lose (state UnrevokedPartitions, its epoch unchanged), and only
// when it has acknowledged that does it move to the new epoch and get
// partitions that no other member still owns (UnreleasedPartitions until
// they are all free). So a partition is never owned by two members.
//
// Every change is a record (consumer_records.go) proposed before the
// heartbeat is answered: a new coordinator knows every epoch and
// assignment a member was told.

// Assignors the coordinator runs (ConsumerGroupHeartbeat ServerAssignor).
const (
	assignorUniform = "uniform"
	assignorRange   = "range"
)

type consumerGroup struct {
	epoch           int32
	metadataHash    int64
	assignmentEpoch int32
	members         map[string]*cmember
	targets         map[string]topicParts
	statics         map[string]string // instance id -> member id
}

type cmember struct {
	id      string
	meta    consumerMember
	cur     consumerCurrent
	regex   *regexp.Regexp
	session *timer
	revoke  *timer
}

func newConsumerGroup() *consumerGroup {
	return &consumerGroup{members: map[string]*cmember{}, targets: map[string]topicParts{}, statics: map[string]string{}}
}

func (cg *consumerGroup) memberIDs() []string {
	ids := make([]string, 0, len(cg.members))
	for id := range cg.members {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// stateName is Kafka's consumer group state.
func (cg *consumerGroup) stateName() string {
	switch {
	case len(cg.members) == 0:
		return "Empty"
	case cg.epoch > cg.assignmentEpoch:
		return "Assigning"
	}
	for _, m := range cg.members {
		if m.cur.epoch != cg.assignmentEpoch || m.cur.state != memberStable {
			return "Reconciling"
		}
	}
	return "Stable"
}

// consumerGroupFromStore builds a live group from the applied records.
func (g *group) loadConsumer(s *storedConsumerGroup) {
	cg := newConsumerGroup()
	cg.epoch, cg.metadataHash, cg.assignmentEpoch = s.epoch, s.metadataHash, s.assignmentEpoch
	for id, t := range s.targets {
		cg.targets[id] = t.clone()
	}
	for id, sm := range s.members {
		m := &cmember{id: id, meta: *sm}
		if c := s.current[id]; c != nil {
			m.cur = consumerCurrent{epoch: c.epoch, prevEpoch: c.prevEpoch, state: c.state, assigned: c.assigned.clone(), pending: c.pending.clone()}
		} else {
			m.cur = consumerCurrent{assigned: topicParts{}, pending: topicParts{}}
		}
		if sm.regex != nil {
			m.regex, _ = regexp.Compile(*sm.regex)
		}
		if sm.instanceID != nil {
			cg.statics[*sm.instanceID] = id
		}
		cg.members[id] = m
	}
	g.cons = cg
	for _, id := range cg.memberIDs() {
		m := cg.members[id]
		g.touchConsumer(m)
		if m.cur.state == memberUnrevokedPartitions {
			g.armRevoke(m)
		}
	}
}

func (g *group) consumerSessionMs() int64 { return int64(g.b().cfg.GroupConsumerSessionTimeoutMs) }

func (g *group) touchConsumer(m *cmember) {
	m.session.stop()
	m.session = g.b().after(g.consumerSessionMs(), func() {
		if g.c.groups[g.id] == g && g.cons != nil && g.cons.members[m.id] == m {
			g.fenceConsumer(m)
		}
	})
}

// armRevoke fences m if it has not revoked within its rebalance timeout.
func (g *group) armRevoke(m *cmember) {
	if m.revoke != nil && !m.revoke.done() {
		return
	}
	ms := int64(m.meta.rebalanceMs)
	if ms <= 0 {
		ms = g.consumerSessionMs()
	}
	m.revoke = g.b().after(ms, func() {
		if g.c.groups[g.id] == g && g.cons != nil && g.cons.members[m.id] == m && m.cur.state == memberUnrevokedPartitions {
			g.fenceConsumer(m)
		}
	})
}

// fenceConsumer removes a member whose session or revocation timed out.
func (g *group) fenceConsumer(m *cmember) {
	recs := g.removeConsumer(m, true)
	g.c.propose(recs, func(int16) {})
}

// removeConsumer takes m out: its partitions are free at once (its
// session is over or it said it owns nothing), the epoch moves and the
// target is computed again. It returns the records.
func (g *group) removeConsumer(m *cmember, bump bool) []batch.Record {
	cg := g.cons
	m.session.stop()
	m.revoke.stop()
	delete(cg.members, m.id)
	if m.meta.instanceID != nil && cg.statics[*m.meta.instanceID] == m.id {
		delete(cg.statics, *m.meta.instanceID)
	}
	delete(cg.targets, m.id)
	if len(cg.members) == 0 {
		g.stateTs = g.b().nowMillis() // empty since now: offset retention counts from here
	}
	recs := recordsOf(
		consumerCurrentRecord(g.id, m.id, nil),
		consumerTargetRecord(g.id, m.id, nil),
		consumerMemberRecord(g.id, m.id, nil),
	)
	if bump {
		cg.epoch++
		recs = append(recs, consumerGroupEpochRecord(g.id, cg.epoch, cg.metadataHash, false))
		recs = append(recs, g.computeTargets()...)
	}
	return recs
}

// subscribedTopics resolves a member's subscription against the topics
// that exist now: names, and the regex over every topic, the internal ones
// included, as Kafka's coordinator resolves it (a client that wants them
// left out says so in its pattern).
func (g *group) subscribedTopics(m *cmember) []string {
	b := g.b()
	var out []string
	for _, t := range m.meta.topics {
		if _, ok := b.meta.st.Topics[t]; ok {
			out = append(out, t)
		}
	}
	if m.regex != nil {
		for _, t := range b.meta.topicNames() {
			if m.regex.MatchString(t) && !slices.Contains(out, t) {
				out = append(out, t)
			}
		}
	}
	slices.Sort(out)
	return out
}

// metadataHash summarizes the subscribed topics' ids and partition
// counts: when it changes, the group must assign again.
func (g *group) metadataHash() int64 {
	b := g.b()
	seen := map[string]bool{}
	var names []string
	for _, m := range g.cons.members {
		for _, t := range g.subscribedTopics(m) {
			if !seen[t] {
				seen[t] = true
				names = append(names, t)
			}
		}
	}
	slices.Sort(names)
	h := uint64(14695981039346656037)
	mix := func(bs []byte) {
		for _, c := range bs {
			h ^= uint64(c)
			h *= 1099511628211
		}
	}
	for _, n := range names {
		t := b.meta.st.Topics[n]
		mix([]byte(n))
		mix(t.ID[:])
		mix([]byte{byte(len(t.Partitions)), byte(len(t.Partitions) >> 8), byte(len(t.Partitions) >> 16)})
	}
	return int64(h)
}

// assignorName is the assignor most members ask for (uniform by default).
func (cg *consumerGroup) assignorName() string {
	votes := map[string]int{}
	for _, m := range cg.members {
		if m.meta.assignor != nil {
			votes[*m.meta.assignor]++
		}
	}
	best, n := assignorUniform, 0
	for _, a := range []string{assignorUniform, assignorRange} {
		if votes[a] > n {
			best, n = a, votes[a]
		}
	}
	return best
}

// computeTargets assigns every subscribed partition to one member and
// returns the target records that changed, with the assignment epoch.
func (g *group) computeTargets() []batch.Record {
	cg := g.cons
	b := g.b()
	ids := cg.memberIDs()
	subs := map[string][]string{}
	for _, id := range ids {
		subs[id] = g.subscribedTopics(cg.members[id])
	}
	next := map[string]topicParts{}
	for _, id := range ids {
		next[id] = topicParts{}
	}
	if cg.assignorName() == assignorRange {
		for _, name := range b.meta.topicNames() {
			var ms []string
			for _, id := range ids {
				if slices.Contains(subs[id], name) {
					ms = append(ms, id)
				}
			}
			if len(ms) == 0 {
				continue
			}
			t := b.meta.st.Topics[name]
			n := len(t.Partitions)
			p := 0
			for i, id := range ms {
				k := n / len(ms)
				if i < n%len(ms) {
					k++
				}
				for range k {
					next[id].add(t.ID, int32(p))
					p++
				}
			}
		}
	} else {
		g.uniformAssign(ids, subs, next)
	}
	var recs []batch.Record
	for _, id := range ids {
		if old, ok := cg.targets[id]; !ok || !old.equal(next[id]) {
			recs = append(recs, consumerTargetRecord(g.id, id, next[id]))
		}
		cg.targets[id] = next[id]
	}
	cg.assignmentEpoch = cg.epoch
	return append(recs, consumerTargetEpochRecord(g.id, cg.assignmentEpoch, false))
}

// uniformAssign balances partitions over the members subscribed to them,
// keeping each partition with its current target owner while that owner
// is under its share.
func (g *group) uniformAssign(ids []string, subs map[string][]string, next map[string]topicParts) {
	cg := g.cons
	b := g.b()
	type tp struct {
		id   [16]byte
		name string
		p    int32
	}
	var all []tp
	for _, name := range b.meta.topicNames() {
		t := b.meta.st.Topics[name]
		for _, id := range ids {
			if slices.Contains(subs[id], name) {
				for p := range t.Partitions {
					all = append(all, tp{t.ID, name, int32(p)})
				}
				break
			}
		}
	}
	if len(ids) == 0 {
		return
	}
	quota := (len(all) + len(ids) - 1) / len(ids)
	count := map[string]int{}
	owner := map[[16]byte]map[int32]string{}
	for _, id := range ids {
		for tid, ps := range cg.targets[id] {
			for _, p := range ps {
				if owner[tid] == nil {
					owner[tid] = map[int32]string{}
				}
				owner[tid][p] = id
			}
		}
	}
	var rest []tp
	for _, x := range all {
		if o, ok := owner[x.id][x.p]; ok && slices.Contains(subs[o], x.name) && count[o] < quota {
			next[o].add(x.id, x.p)
			count[o]++
			continue
		}
		rest = append(rest, x)
	}
	for _, x := range rest {
		best := ""
		for _, id := range ids {
			if slices.Contains(subs[id], x.name) && (best == "" || count[id] < count[best]) {
				best = id
			}
		}
		next[best].add(x.id, x.p)
		count[best]++
	}
}

// ownedByOthers is every partition another member holds or must still
// revoke.
func (cg *consumerGroup) ownedByOthers(self string) topicParts {
	out := topicParts{}
	for id, m := range cg.members {
		if id == self {
			continue
		}
		for _, set := range []topicParts{m.cur.assigned, m.cur.pending} {
			for tid, ps := range set {
				for _, p := range ps {
					out.add(tid, p)
				}
			}
		}
	}
	return out
}

// reconcile moves m one step toward its target (Kafka's
// CurrentAssignmentBuilder); owned is what the member says it owns (nil:
// unchanged). It reports whether m's current assignment changed.
func (g *group) reconcile(m *cmember, owned topicParts) bool {
	cg := g.cons
	cur := m.cur
	switch cur.state {
	case memberUnrevokedPartitions:
		if owned == nil || owned.and(cur.pending).count() > 0 {
			return false // still revoking
		}
	case memberStable:
		if cur.epoch == cg.assignmentEpoch {
			return false
		}
	}
	target := cg.targets[m.id]
	if target == nil {
		target = topicParts{}
	}
	keep := cur.assigned.and(target)
	next := consumerCurrent{epoch: cur.epoch, prevEpoch: cur.prevEpoch}
	if revoke := cur.assigned.minus(target); revoke.count() > 0 {
		next.state, next.assigned, next.pending = memberUnrevokedPartitions, keep, revoke
		m.cur = next
		g.armRevoke(m)
		return true
	}
	assigned := keep.clone()
	taken := cg.ownedByOthers(m.id)
	if g.b().cfg.Unsafe.NoRevokeBeforeAssign {
		taken = topicParts{} // the knob: another member may still own it
	}
	for tid, ps := range target.minus(keep) {
		for _, p := range ps {
			if !taken.has(tid, p) {
				assigned.add(tid, p)
			}
		}
	}
	if cur.epoch != cg.assignmentEpoch {
		next.prevEpoch, next.epoch = cur.epoch, cg.assignmentEpoch
	}
	next.state = memberStable
	if !assigned.equal(target) {
		next.state = memberUnreleasedPartitions
	}
	next.assigned, next.pending = assigned, topicParts{}
	m.revoke.stop()
	changed := next.epoch != cur.epoch || next.state != cur.state || !next.assigned.equal(cur.assigned) || cur.pending.count() > 0
	m.cur = next
	return changed
}

// consumerHeartbeat handles one ConsumerGroupHeartbeat of group g (a
// consumer group); validation of the request's shape is done. It answers
// the request itself, or returns an error code for the caller to.
func (g *group) consumerHeartbeat(token uint64, r *kmsg.ConsumerGroupHeartbeatRequest, pre []batch.Record) int16 {
	cg := g.cons
	b := g.b()
	recs := pre
	resp := r.ResponseKind().(*kmsg.ConsumerGroupHeartbeatResponse)
	resp.HeartbeatIntervalMillis = b.cfg.GroupConsumerHeartbeatIntervalMs
	answer := func() {
		if len(recs) == 0 {
			b.respond(token, resp)
			return
		}
		g.c.propose(recs, func(code int16) {
			if code != 0 {
				resp = r.ResponseKind().(*kmsg.ConsumerGroupHeartbeatResponse)
				resp.ErrorCode = code
			}
			b.respond(token, resp)
		})
	}
	if r.MemberEpoch < 0 { // -1 leaves; -2 a static member leaves for now
		m := cg.members[r.MemberID]
		if m == nil {
			return kerr.UnknownMemberID.Code
		}
		recs = append(recs, g.removeConsumer(m, true)...)
		id := m.id
		// Kafka's answer to a leave names the member and the epoch, and
		// leaves the heartbeat interval at 0.
		resp.MemberID, resp.MemberEpoch, resp.HeartbeatIntervalMillis = &id, r.MemberEpoch, 0
		answer()
		return 0
	}
	var owned topicParts
	if r.Topics != nil {
		owned = topicParts{}
		for _, t := range r.Topics {
			for _, p := range t.Partitions {
				owned.add(t.TopicID, p)
			}
		}
	}
	// Everything that can refuse the request is checked before anything
	// changes: a refused heartbeat leaves the group as it was.
	var re *regexp.Regexp
	if r.SubscribedTopicRegex != nil && *r.SubscribedTopicRegex != "" {
		var err error
		if re, err = regexp.Compile(*r.SubscribedTopicRegex); err != nil {
			return kerr.InvalidRegularExpression.Code
		}
	}
	var m *cmember
	joining := r.MemberEpoch == 0
	if joining {
		id := r.MemberID
		if id == "" {
			id = g.newUUID() // a bare UUID, as Kafka's
		}
		if r.InstanceID != nil {
			if holder, ok := cg.statics[*r.InstanceID]; ok && holder != id {
				return kerr.UnreleasedInstanceID.Code
			}
		}
		old := cg.members[id]
		if old == nil && int32(len(cg.members)) >= b.cfg.GroupMaxSize {
			return kerr.GroupMaxSizeReached.Code
		}
		if old != nil {
			// Rejoining with nothing owned: what it held is free.
			recs = append(recs, g.removeConsumer(old, false)...)
		}
		m = &cmember{id: id, cur: consumerCurrent{assigned: topicParts{}, pending: topicParts{}}}
		m.meta.instanceID = r.InstanceID
		m.meta.rebalanceMs = -1
		cg.members[id] = m
		if r.InstanceID != nil {
			cg.statics[*r.InstanceID] = id
		}
	} else {
		m = cg.members[r.MemberID]
		if m == nil {
			return kerr.UnknownMemberID.Code
		}
		if r.InstanceID != nil && (m.meta.instanceID == nil || *m.meta.instanceID != *r.InstanceID) {
			return kerr.FencedInstanceID.Code
		}
		if r.MemberEpoch > m.cur.epoch {
			return kerr.FencedMemberEpoch.Code
		}
		if r.MemberEpoch < m.cur.epoch && (r.MemberEpoch != m.cur.prevEpoch || owned == nil || owned.minus(m.cur.assigned).count() > 0) {
			return kerr.FencedMemberEpoch.Code
		}
	}
	// The member's metadata: fields that are null did not change.
	meta := m.meta
	subChanged := joining
	if r.RackID != nil {
		meta.rackID = r.RackID
	}
	if r.RebalanceTimeoutMillis > 0 {
		meta.rebalanceMs = r.RebalanceTimeoutMillis
	}
	if r.SubscribedTopicNames != nil {
		names := slices.Clone(r.SubscribedTopicNames)
		slices.Sort(names)
		names = slices.Compact(names)
		if !slices.Equal(names, meta.topics) {
			meta.topics, subChanged = names, true
		}
	}
	if r.SubscribedTopicRegex != nil && (meta.regex == nil || *meta.regex != *r.SubscribedTopicRegex) {
		rx := *r.SubscribedTopicRegex
		meta.regex, m.regex, subChanged = &rx, re, true
		if rx == "" {
			meta.regex = nil
		}
	}
	if r.ServerAssignor != nil {
		meta.assignor = r.ServerAssignor
	}
	if joining || b.reqClient.id != "" && meta.clientID != b.reqClient.id {
		meta.clientID, meta.clientHost = b.reqClient.id, b.reqClient.host
	}
	if joining || !sameConsumerMember(meta, m.meta) {
		m.meta = meta
		recs = append(recs, consumerMemberRecord(g.id, m.id, &m.meta))
	}
	hash := g.metadataHash()
	if subChanged || hash != cg.metadataHash {
		cg.epoch++
		cg.metadataHash = hash
		recs = append(recs, consumerGroupEpochRecord(g.id, cg.epoch, hash, false))
	}
	if cg.epoch > cg.assignmentEpoch {
		recs = append(recs, g.computeTargets()...)
	}
	changed := g.reconcile(m, owned)
	if changed || joining {
		c := m.cur
		recs = append(recs, consumerCurrentRecord(g.id, m.id, &c))
	}
	g.touchConsumer(m)
	id := m.id
	resp.MemberID, resp.MemberEpoch = &id, m.cur.epoch
	if joining || changed || owned != nil && !owned.equal(m.cur.assigned) {
		a := &kmsg.ConsumerGroupHeartbeatResponseAssignment{}
		for _, tid := range m.cur.assigned.ids() {
			a.Topics = append(a.Topics, kmsg.ConsumerGroupHeartbeatResponseAssignmentTopic{TopicID: tid, Partitions: slices.Clone(m.cur.assigned[tid])})
		}
		resp.Assignment = a
	}
	answer()
	return 0
}

func sameConsumerMember(a, b consumerMember) bool {
	eq := func(x, y *string) bool { return x == nil && y == nil || x != nil && y != nil && *x == *y }
	return eq(a.instanceID, b.instanceID) && eq(a.rackID, b.rackID) && a.clientID == b.clientID && a.clientHost == b.clientHost &&
		slices.Equal(a.topics, b.topics) && eq(a.regex, b.regex) && a.rebalanceMs == b.rebalanceMs && eq(a.assignor, b.assignor)
}

// consumerTombstones are the records that delete an empty consumer group.
func consumerTombstones(group string) []batch.Record {
	return recordsOf(consumerTargetEpochRecord(group, 0, true), consumerGroupEpochRecord(group, 0, 0, true))
}

// validateConsumerCommit is Kafka's ConsumerGroup.validateOffsetCommit.
func (g *group) validateConsumerCommit(memberID string, epoch int32, version int16) int16 {
	if epoch < 0 && len(g.cons.members) == 0 {
		return 0
	}
	m := g.cons.members[memberID]
	if m == nil {
		return kerr.UnknownMemberID.Code
	}
	if version < 9 {
		return kerr.UnsupportedVersion.Code
	}
	if epoch != m.cur.epoch {
		return kerr.StaleMemberEpoch.Code
	}
	return 0
}

// topicName finds a topic's name by id in the applied metadata.
func (b *Broker) topicName(id [16]byte) (string, bool) {
	for name, t := range b.meta.st.Topics {
		if t.ID == id {
			return name, true
		}
	}
	return "", false
}
