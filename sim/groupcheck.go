package sim

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/gregor-streaming/gregor/linearizability"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Failure kinds of the group workload (besides linearizability's
// offsets-nonlinearizable and offset-regression, found by CheckOffsets at
// the end of the run).
const (
	// FailSplitAssignment: one partition owned by two members of one
	// group in the same generation (SyncGroup answers, or a Stable
	// group's DescribeGroups), or a member told two assignments in one
	// generation.
	FailSplitAssignment = "split-assignment"
	// FailGroupUnseen: after the liveness phase, a record of a tracked
	// partition was never consumed by some group's members.
	FailGroupUnseen = "group-unseen"
	// FailGroupNotStable: after the liveness phase, a group did not end
	// Stable with every tracked partition assigned (DescribeGroups).
	FailGroupNotStable = "group-not-stable"
	// FailGroupLagging: after the liveness phase, a group that consumed
	// everything did not commit the end of some partition.
	FailGroupLagging = "group-lagging"
	// FailZombieCommit: a KIP-848 coordinator accepted a paused member's
	// commit under its old epoch although one of the committed partitions
	// had been handed to another member since the pause began.
	FailZombieCommit = "zombie-commit-accepted"
)

// groupPhaseMillis bounds the final group checks, after the final read.
const groupPhaseMillis = 30_000

// definiteCommitErrors are the OffsetCommit answers that prove the commit
// was not applied: the coordinator refuses these before it proposes
// anything. Every other error (NOT_COORDINATOR after a lost leadership,
// a timeout) leaves the outcome unknown.
var definiteCommitErrors = map[int16]bool{
	kerr.IllegalGeneration.Code:         true,
	kerr.UnknownMemberID.Code:           true,
	kerr.RebalanceInProgress.Code:       true,
	kerr.FencedInstanceID.Code:          true,
	kerr.CoordinatorLoadInProgress.Code: true,
	kerr.InvalidGroupID.Code:            true,
	kerr.OffsetMetadataTooLarge.Code:    true,
	kerr.InvalidCommitOffsetSize.Code:   true,
	kerr.GroupAuthorizationFailed.Code:  true,
	// KIP-848 (OffsetCommit v9, ConsumerGroup.validateOffsetCommit).
	kerr.StaleMemberEpoch.Code:   true,
	kerr.FencedMemberEpoch.Code:  true,
	kerr.GroupIDNotFound.Code:    true,
	kerr.UnsupportedVersion.Code: true,
}

// groupTPKey names one group's view of one partition.
type groupTPKey struct {
	group string
	tp    tpKey
}

type genKey struct {
	group string
	gen   int32
}

// owner848 is the KIP-848 member (its client, and member id) that owns a
// partition, since when.
type owner848 struct {
	client int
	member string
	since  int64
}

// genSeen is what members were told about one generation of one group.
type genSeen struct {
	owners  map[tpKey]string  // partition -> member
	members map[string]string // member -> its assignment, as text
}

// coverage is which offsets of a partition a group's members consumed.
type coverage struct {
	seen []bool
	n    int64
}

func (c *coverage) mark(o int64) {
	for int64(len(c.seen)) <= o {
		c.seen = append(c.seen, false)
	}
	if !c.seen[o] {
		c.seen[o] = true
		c.n++
	}
}

// firstGap returns the first range of offsets below end not consumed.
func (c *coverage) firstGap(end int64) (int64, int64, bool) {
	if c != nil && c.n >= end {
		return 0, 0, false
	}
	lo := int64(-1)
	for o := int64(0); o < end; o++ {
		if c != nil && o < int64(len(c.seen)) && c.seen[o] {
			if lo >= 0 {
				return lo, o, true
			}
			continue
		}
		if lo < 0 {
			lo = o
		}
	}
	return lo, end, lo >= 0
}

type consumedRecord struct {
	group  string
	member int
	tp     tpKey
	rec    linearizability.Record
}

// groupWorld is the group workload's share of the world: the offsets
// history and the checkers that run as it goes.
type groupWorld struct {
	w       *World
	names   []string
	ops     []linearizability.OffsetOp
	gens    map[genKey]*genSeen
	seen    map[groupTPKey]*coverage
	pending []consumedRecord // consumed beyond the canonical log as it was then
	phase   bool             // the final group checks run
	reader  *client
	// KIP-848 groups: who owns each partition now, and who was handed it
	// last.
	owners    map[groupTPKey]owner848
	lastGiven map[groupTPKey]owner848
}

func newGroupWorld(w *World) *groupWorld {
	return &groupWorld{w: w, names: groupNames(w.opts.Groups, w.opts.Seed), gens: map[genKey]*genSeen{}, seen: map[groupTPKey]*coverage{},
		owners: map[groupTPKey]owner848{}, lastGiven: map[groupTPKey]owner848{}}
}

// record appends an offsets op and returns its index.
func (g *groupWorld) record(op linearizability.OffsetOp) int {
	op.Call, op.Return = g.w.nowNanos(), linearizability.ReturnUnknown
	g.ops = append(g.ops, op)
	return len(g.ops) - 1
}

func (g *groupWorld) gen(group string, gen int32) *genSeen {
	k := genKey{group, gen}
	s := g.gens[k]
	if s == nil {
		s = &genSeen{owners: map[tpKey]string{}, members: map[string]string{}}
		g.gens[k] = s
	}
	return s
}

// onJoin notes a JoinGroup answer. It checks nothing: as in Kafka, a
// generation is persisted only with its leader's assignment (SyncGroup),
// so a coordinator that fails over during CompletingRebalance may hand
// the same generation number out again, with another leader. What was
// assigned is checked (onAssignment); who was told it leads is not.
func (g *groupWorld) onJoin(m *member, r *kmsg.JoinGroupResponse) {
	g.w.tracef("group c%d %s joined generation %d as %q leader %q", m.c.idx, m.group, r.Generation, r.MemberID, r.LeaderID)
}

// onAssignment checks that no partition has two owners in one generation
// and that no member is told two assignments in one.
func (g *groupWorld) onAssignment(m *member, owned []tpKey) {
	var parts []string
	for _, tp := range owned {
		parts = append(parts, tp.String())
	}
	text := strings.Join(parts, " ")
	g.w.tracef("group c%d %s generation %d member %q owns [%s]", m.c.idx, m.group, m.gen, m.id, text)
	s := g.gen(m.group, m.gen)
	if prev, ok := s.members[m.id]; ok && prev != text {
		g.w.fail(FailSplitAssignment, "group %s generation %d: member %q was assigned [%s], then [%s]", m.group, m.gen, m.id, prev, text)
		return
	}
	s.members[m.id] = text
	for _, tp := range owned {
		if o, ok := s.owners[tp]; ok && o != m.id {
			g.w.fail(FailSplitAssignment, "group %s generation %d: %s assigned to members %q and %q", m.group, m.gen, tp, o, m.id)
			return
		}
		s.owners[tp] = m.id
	}
}

// own848 notes a KIP-848 heartbeat answer that assigns tps to m: no
// other member of the group may own any of them.
func (g *groupWorld) own848(m *member, tps []tpKey) {
	var parts []string
	for _, tp := range tps {
		parts = append(parts, tp.String())
	}
	g.w.tracef("group c%d %s epoch %d member %q assigned [%s]", m.c.idx, m.group, m.gen, m.id, strings.Join(parts, " "))
	for _, tp := range tps {
		k := groupTPKey{m.group, tp}
		o, ok := g.owners[k]
		if ok && o.client != m.c.idx {
			g.w.fail(FailSplitAssignment, "group %s epoch %d: %s assigned to member %q (client %d) while member %q (client %d) still owns it (since %dms)",
				m.group, m.gen, tp, m.id, m.c.idx, o.member, o.client, o.since)
			return
		}
		if !ok {
			o = owner848{client: m.c.idx, member: m.id, since: g.w.now}
			g.owners[k] = o
			g.lastGiven[k] = o
		}
	}
}

// release848 notes that m owns, of its group's partitions, only keep
// from now on.
func (g *groupWorld) release848(m *member, keep []tpKey) {
	for _, tp := range g.w.allTPs() {
		k := groupTPKey{m.group, tp}
		if o, ok := g.owners[k]; ok && o.client == m.c.idx && !slices.Contains(keep, tp) {
			delete(g.owners, k)
		}
	}
}

// zombieCommitted checks a KIP-848 zombie's commit (refs, settled): the
// coordinator must not accept it for a partition handed to another member
// since the zombie's pause began.
func (g *groupWorld) zombieCommitted(m *member, refs []offsetOpRef, since int64) {
	for _, ref := range refs {
		op := &g.ops[ref.op]
		if op.Return == linearizability.ReturnUnknown || op.Err != "" {
			g.w.tracef("zombie c%d %s commit of %s: %s", m.c.idx, m.group, ref.tp, cmp.Or(op.Err, "unknown"))
			continue
		}
		g.w.tracef("zombie c%d %s commit of %s accepted", m.c.idx, m.group, ref.tp)
		if lg, ok := g.lastGiven[groupTPKey{m.group, ref.tp}]; ok && lg.client != m.c.idx && lg.since > since {
			g.w.fail(FailZombieCommit, "group %s: member %q epoch %d, paused since %dms, committed %s at offset %d, which member %q (client %d) was assigned at %dms",
				m.group, op.Member, op.Generation, since, ref.tp, op.Offset, lg.member, lg.client, lg.since)
			return
		}
	}
}

// consumed notes records a member fetched, and checks each against the
// canonical log (later, if the log is not that long yet).
func (g *groupWorld) consumed(m *member, tp tpKey, recs []linearizability.Record) {
	k := groupTPKey{m.group, tp}
	c := g.seen[k]
	if c == nil {
		c = &coverage{}
		g.seen[k] = c
	}
	l := g.w.check.log(tp)
	for _, r := range recs {
		c.mark(r.Offset)
		if r.Offset >= int64(len(l.values)) {
			g.pending = append(g.pending, consumedRecord{m.group, m.c.idx, tp, r})
			continue
		}
		if v := l.values[r.Offset]; v.Offset != r.Offset || v.Value != r.Value {
			g.w.fail(linearizability.AnomalyInconsistentOffsets, "group %s member %d: %s offset %d read %q, the canonical log has %q",
				m.group, m.c.idx, tp, r.Offset, r.Value, v.Value)
			return
		}
	}
}

// checkPending checks the records consumed before the canonical log held
// them against the final log.
func (g *groupWorld) checkPending() {
	for _, p := range g.pending {
		vals := g.w.check.log(p.tp).values
		if p.rec.Offset >= int64(len(vals)) || vals[p.rec.Offset].Value != p.rec.Value {
			have := "nothing"
			if p.rec.Offset < int64(len(vals)) {
				have = strconv.Quote(vals[p.rec.Offset].Value)
			}
			g.w.fail(linearizability.AnomalyInconsistentOffsets, "group %s member %d: %s offset %d read %q, the final log has %s",
				p.group, p.member, p.tp, p.rec.Offset, p.rec.Value, have)
			return
		}
	}
	g.pending = nil
}

// unseen describes the first records of a tracked partition that group
// never consumed, or "".
func (g *groupWorld) unseen(group string) string {
	for _, tp := range g.w.allTPs() {
		end := g.w.check.log(tp).end
		if lo, hi, ok := g.seen[groupTPKey{group, tp}].firstGap(end); ok {
			return fmt.Sprintf("%s: offsets [%d, %d) of %d were never consumed by any member", tp, lo, hi, end)
		}
	}
	return ""
}

// offsetFetchResult settles the ops of an OffsetFetch and returns its
// first error code (-1 if the group is missing from the answer) and the
// offsets read.
func (g *groupWorld) offsetFetchResult(r *kmsg.OffsetFetchResponse, group string, refs []offsetOpRef) (int16, map[tpKey]int64) {
	type part struct {
		offset int64
		meta   *string
		code   int16
	}
	parts := map[tpKey]part{}
	top := r.ErrorCode
	if r.Version >= 8 {
		top = -1
		for _, rg := range r.Groups {
			if rg.Group != group {
				continue
			}
			top = rg.ErrorCode
			for _, t := range rg.Topics {
				for _, p := range t.Partitions {
					parts[tpKey{t.Topic, p.Partition}] = part{p.Offset, p.Metadata, p.ErrorCode}
				}
			}
		}
	} else {
		for _, t := range r.Topics {
			for _, p := range t.Partitions {
				parts[tpKey{t.Topic, p.Partition}] = part{p.Offset, p.Metadata, p.ErrorCode}
			}
		}
	}
	now := g.w.nowNanos()
	got := map[tpKey]int64{}
	code := top
	for _, ref := range refs {
		op := &g.ops[ref.op]
		p, ok := parts[ref.tp]
		switch {
		case top != 0:
			op.Return, op.Err = now, "group error "+codeName(top)
		case !ok:
			op.Return, op.Err = now, "not answered"
			code = cmpOr(code, -1)
		case p.code != 0:
			op.Return, op.Err = now, codeName(p.code)
			code = cmpOr(code, p.code)
		default:
			op.Return, op.Offset = now, p.offset
			if p.meta != nil {
				op.Metadata = *p.meta
			}
			got[ref.tp] = p.offset
		}
	}
	return code, got
}

// offsetCommitResult settles the ops of an OffsetCommit and returns the
// error code that matters most to the committer (membership errors
// first), or 0.
func (g *groupWorld) offsetCommitResult(r *kmsg.OffsetCommitResponse, refs []offsetOpRef) int16 {
	codes := map[tpKey]int16{}
	for _, t := range r.Topics {
		for _, p := range t.Partitions {
			codes[tpKey{t.Topic, p.Partition}] = p.ErrorCode
		}
	}
	now := g.w.nowNanos()
	var worst int16
	for _, ref := range refs {
		op := &g.ops[ref.op]
		code, ok := codes[ref.tp]
		switch {
		case !ok:
			// Not answered: unknown.
			worst = cmpOr(worst, kerr.UnknownServerError.Code)
		case code == 0:
			op.Return = now
		case definiteCommitErrors[code]:
			op.Return, op.Err = now, codeName(code)
			fallthrough
		default:
			// Any other error may come after the commit was proposed:
			// the op keeps Return = ReturnUnknown.
			if worst == 0 || code == kerr.UnknownMemberID.Code || code == kerr.IllegalGeneration.Code || code == kerr.RebalanceInProgress.Code ||
				code == kerr.StaleMemberEpoch.Code || code == kerr.FencedMemberEpoch.Code {
				worst = code
			}
		}
	}
	return worst
}

func cmpOr(a, b int16) int16 {
	if a != 0 {
		return a
	}
	return b
}

// check runs CheckOffsets on the offsets history.
func (g *groupWorld) check(cfg RunConfig, dir string) ([]Failure, string, bool) {
	timeout := cfg.CheckTimeout
	if timeout == 0 {
		timeout = checkTimeoutDefault
	}
	r := linearizability.CheckOffsets(g.ops, linearizability.Options{Timeout: timeout, VisualizeDir: dir})
	var failures []Failure
	for _, a := range r.Anomalies {
		failures = append(failures, Failure{Kind: a.Name, Detail: fmt.Sprintf("offsets %s: %s", a.TP, a.Detail), AtMillis: -1})
	}
	return failures, r.VisualizationPath, r.TimedOut
}

// --- the offsets reader ---

// offsetsReader is the client outside the groups: it reads their
// committed offsets, describes them, resets an empty one's offsets as an
// admin, and runs the final group checks.
type offsetsReader struct {
	coords map[string]int32
	last   map[groupTPKey]int64 // last offset read, for admin resets
	admin  string               // a group seen Empty: reset it next
	group  string               // of the request in flight
	found  bool                 // its coordinator was just found: ask it next
	refs   []offsetOpRef
	n      int
	// monitor: a lag monitor (as Burrow polls): it reads the standalone
	// committer's groups in turn, each from the coordinator it knows
	// until that one answers an error (a silent one it asks again), and
	// does nothing else.
	monitor bool
	next    int

	// The final checks: describe every group, then read every group's
	// offsets; verdicts say why a group is not settled yet.
	step     int // index into groups: describe, then fetch
	fetching bool
	verdicts map[string]string
	kinds    map[string]string
	done     bool
}

func newOffsetsReader() *offsetsReader {
	return &offsetsReader{coords: map[string]int32{}, last: map[groupTPKey]int64{},
		verdicts: map[string]string{}, kinds: map[string]string{}}
}

func (c *client) nextReader() {
	w, r := c.w, c.rdr
	if w.stopped {
		return
	}
	if w.groups.phase && !r.monitor {
		c.nextVerify()
		return
	}
	// It reads the standalone committer's group too, and asks anew for
	// a coordinator now and then, as an admin tool run by hand does.
	all := append(slices.Clone(w.groups.names), standaloneGroups(w.opts.OffsetsPartitions)...)
	if r.monitor {
		if w.groups.phase {
			c.wait = waitNothing
			return
		}
		sg := standaloneGroups(w.opts.OffsetsPartitions)
		g := sg[r.next%len(sg)]
		r.next++
		r.group = g
		if r.coords[g] == 0 {
			c.request(c.randomBroker(), findCoordinatorRequest(w, g), waitFindCoordinator)
			r.next-- // the same group once found
			return
		}
		req, refs := offsetFetchRequest(w, c.idx, g, w.allTPs(), w.rng.IntN(2) == 0)
		r.refs = refs
		c.requestFor(r.coords[g], req, waitOffsetFetch, w.opts.ClientTimeoutMillis)
		return
	}
	g := all[w.rng.IntN(len(all))]
	found := r.found
	r.found = false
	switch {
	case r.admin != "":
		g = r.admin
	case found:
		g = r.group
	}
	r.group = g
	switch {
	case r.coords[g] == 0 || !found && w.rng.IntN(readerFindOneIn) == 0:
		c.request(c.randomBroker(), findCoordinatorRequest(w, g), waitFindCoordinator)
	case r.admin != "":
		r.admin = ""
		c.sendAdminReset(g)
	case slices.Contains(w.groups.names, g) && !c.stopping && w.rng.IntN(readerDescribeOneIn) == 0:
		c.sendDescribe(g)
	default:
		req, refs := offsetFetchRequest(w, c.idx, g, w.allTPs(), w.rng.IntN(2) == 0)
		r.refs = refs
		c.request(r.coords[g], req, waitOffsetFetch)
	}
}

func (c *client) sendDescribe(g string) {
	if isConsumerGroup(g) {
		req := kmsg.NewPtrConsumerGroupDescribeRequest()
		req.SetVersion(0)
		req.Groups = []string{g}
		c.request(c.rdr.coords[g], req, waitDescribe)
		return
	}
	req := kmsg.NewPtrDescribeGroupsRequest()
	req.SetVersion(4)
	req.Groups = []string{g}
	c.request(c.rdr.coords[g], req, waitDescribe)
}

// sendAdminReset moves some of an empty group's offsets back a little, as
// an operator's reset would (generation -1, no member id).
func (c *client) sendAdminReset(g string) {
	w, r := c.w, c.rdr
	pos := map[tpKey]int64{}
	for _, tp := range w.allTPs() {
		if o, ok := r.last[groupTPKey{g, tp}]; ok && o >= 0 && w.rng.IntN(2) == 0 {
			pos[tp] = max(0, o-w.rng.Int64N(adminResetBackMax+1))
		}
	}
	if len(pos) == 0 {
		c.backoff(readerPauseMillis)
		return
	}
	tps := sortedTPKeys(pos)
	meta := make([]string, len(tps))
	for i := range tps {
		r.n++
		meta[i] = "a" + strconv.Itoa(c.idx) + "." + strconv.Itoa(r.n)
	}
	w.tracef("admin c%d resets %s on %d partitions", c.idx, g, len(tps))
	version := int16(7)
	if isConsumerGroup(g) {
		version = 9
	}
	req, refs := offsetCommitRequest(w, c.idx, g, version, -1, "", tps, pos, meta, true)
	r.refs = refs
	c.request(r.coords[g], req, waitOffsetCommit)
}

// readerTimedOut forgets the coordinator of the group asked.
func (c *client) readerTimedOut() {
	r := c.rdr
	r.refs = nil
	if r.group != "" && !r.monitor {
		r.coords[r.group] = 0
	}
}

func (c *client) onReaderResponse(resp kmsg.Response) {
	w, r := c.w, c.rdr
	refs := r.refs
	r.refs = nil
	retry := func(code int16) {
		if code == kerr.NotCoordinator.Code || code == kerr.CoordinatorNotAvailable.Code || code < 0 {
			r.coords[r.group] = 0
		}
		c.backoff(backoffMillis)
	}
	// describeFailed handles a describe answer that is not one group
	// without error (code -1: not one group), and reports whether it was.
	describeFailed := func(api string, code int16) bool {
		if code == 0 {
			return false
		}
		if w.groups.phase {
			r.verdicts[r.group] = api + " answered " + codeName(code)
			r.kinds[r.group] = FailGroupNotStable
		}
		retry(code)
		return true
	}
	switch resp := resp.(type) {
	case *kmsg.FindCoordinatorResponse:
		if node, code := findCoordinatorResult(resp, r.group); code == 0 && node >= 1 && int(node) <= len(w.nodes) {
			r.coords[r.group] = node
			r.found = true
			c.wait = waitNothing
			c.nextOp()
			return
		}
		c.backoff(backoffMillis)
	case *kmsg.OffsetFetchResponse:
		code, got := w.groups.offsetFetchResult(resp, r.group, refs)
		for _, tp := range sortedTPKeys(got) {
			r.last[groupTPKey{r.group, tp}] = got[tp]
		}
		if code != 0 {
			retry(code)
			return
		}
		if w.groups.phase && r.fetching && !r.monitor {
			c.onFinalOffsets(got)
			return
		}
		if r.monitor {
			c.backoff(monitorPauseMillisMin + w.rng.Int64N(monitorPauseMillisMax-monitorPauseMillisMin+1))
			return
		}
		c.backoff(readerPauseMillis)
	case *kmsg.OffsetCommitResponse:
		if code := w.groups.offsetCommitResult(resp, refs); code != 0 {
			w.tracef("admin c%d reset of %s: %s", c.idx, r.group, codeName(code))
			retry(code)
			return
		}
		c.backoff(readerPauseMillis)
	case *kmsg.DescribeGroupsResponse:
		code := int16(-1)
		if len(resp.Groups) == 1 {
			code = resp.Groups[0].ErrorCode
		}
		if describeFailed("DescribeGroups", code) {
			return
		}
		dg := resp.Groups[0]
		if w.groups.phase {
			c.onFinalDescribe(dg)
			return
		}
		if dg.State == "Empty" && !c.stopping {
			r.admin = r.group
		}
		c.backoff(readerPauseMillis)
	case *kmsg.ConsumerGroupDescribeResponse:
		code := int16(-1)
		if len(resp.Groups) == 1 {
			code = resp.Groups[0].ErrorCode
		}
		if describeFailed("ConsumerGroupDescribe", code) {
			return
		}
		dg := resp.Groups[0]
		if w.groups.phase {
			c.onFinalDescribe848(dg)
			return
		}
		if strings.EqualFold(dg.State, "empty") && !c.stopping {
			r.admin = r.group
		}
		c.backoff(readerPauseMillis)
	default:
		c.backoff(backoffMillis)
	}
}

// nextVerify takes the next step of the final group checks: describe each
// group in turn, then (if every one is settled) read each one's offsets.
func (c *client) nextVerify() {
	w, r := c.w, c.rdr
	if r.done {
		c.wait = waitNothing
		return
	}
	g := w.groups.names[r.step]
	r.group = g
	if r.coords[g] == 0 {
		c.request(c.randomBroker(), findCoordinatorRequest(w, g), waitFindCoordinator)
		return
	}
	if !r.fetching {
		c.sendDescribe(g)
		return
	}
	req, refs := offsetFetchRequest(w, c.idx, g, w.allTPs(), w.rng.IntN(2) == 0)
	r.refs = refs
	c.request(r.coords[g], req, waitOffsetFetch)
}

// verifyNext moves the final checks to the next group, or starts a new
// round after a pause.
func (c *client) verifyNext() {
	w, r := c.w, c.rdr
	r.step++
	if r.step < len(w.groups.names) {
		c.wait = waitNothing
		c.nextOp()
		return
	}
	r.step = 0
	if !r.fetching {
		settled := true
		for _, g := range w.groups.names {
			if r.verdicts[g] != "" {
				settled = false
			}
		}
		if settled {
			r.fetching = true
			c.wait = waitNothing
			c.nextOp()
			return
		}
	} else {
		settled := true
		for _, g := range w.groups.names {
			if r.verdicts[g] != "" {
				settled = false
			}
		}
		if settled {
			w.tracef("groups settled")
			r.done = true
			c.wait = waitNothing
			return
		}
		r.fetching = false
	}
	c.backoff(groupVerifyPauseMillis)
}

func (c *client) onFinalDescribe(dg kmsg.DescribeGroupsResponseGroup) {
	w, r := c.w, c.rdr
	g := r.group
	verdict, kind := "", ""
	owners := map[tpKey]string{}
	for _, gm := range dg.Members {
		if len(gm.MemberAssignment) == 0 {
			continue
		}
		var a kmsg.ConsumerMemberAssignment
		if err := a.ReadFrom(gm.MemberAssignment); err != nil {
			verdict, kind = fmt.Sprintf("member %q has an undecodable assignment: %v", gm.MemberID, err), FailGroupNotStable
			continue
		}
		for _, t := range a.Topics {
			for _, p := range t.Partitions {
				tp := tpKey{t.Topic, p}
				if o, ok := owners[tp]; ok && o != gm.MemberID && dg.State == "Stable" {
					w.fail(FailSplitAssignment, "group %s (Stable, described): %s assigned to members %q and %q", g, tp, o, gm.MemberID)
					return
				}
				owners[tp] = gm.MemberID
			}
		}
	}
	notStable := ""
	if dg.State != "Stable" {
		notStable = fmt.Sprintf("state %s with %d members", dg.State, len(dg.Members))
	}
	c.judgeFinal(notStable, verdict, kind, owners, len(dg.Members))
}

// onFinalDescribe848 judges a KIP-848 group: Stable, every member at the
// group epoch, every tracked partition assigned to exactly one member.
func (c *client) onFinalDescribe848(dg kmsg.ConsumerGroupDescribeResponseGroup) {
	w, r := c.w, c.rdr
	g := r.group
	stable := strings.EqualFold(dg.State, "stable")
	verdict, kind := "", ""
	owners := map[tpKey]string{}
	for _, dm := range dg.Members {
		if dm.MemberEpoch != dg.Epoch && verdict == "" {
			verdict, kind = fmt.Sprintf("member %q at epoch %d, the group at %d", dm.MemberID, dm.MemberEpoch, dg.Epoch), FailGroupNotStable
		}
		for _, t := range dm.Assignment.TopicPartitions {
			for _, p := range t.Partitions {
				tp := tpKey{t.Topic, p}
				if o, ok := owners[tp]; ok && o != dm.MemberID && stable {
					w.fail(FailSplitAssignment, "group %s (Stable, described): %s assigned to members %q and %q", g, tp, o, dm.MemberID)
					return
				}
				owners[tp] = dm.MemberID
			}
		}
	}
	notStable := ""
	if !stable {
		notStable = fmt.Sprintf("state %s epoch %d assignment epoch %d with %d members", dg.State, dg.Epoch, dg.AssignmentEpoch, len(dg.Members))
	}
	c.judgeFinal(notStable, verdict, kind, owners, len(dg.Members))
}

// judgeFinal records the final verdict on the reader's group: not Stable
// (notStable says how), the verdict found already, a tracked partition no
// member owns, or records the group never consumed; then the next group.
func (c *client) judgeFinal(notStable, verdict, kind string, owners map[tpKey]string, members int) {
	w, r := c.w, c.rdr
	g := r.group
	switch {
	case notStable != "":
		verdict, kind = notStable, FailGroupNotStable
	case verdict != "":
	default:
		for _, tp := range w.allTPs() {
			if _, ok := owners[tp]; !ok {
				verdict, kind = fmt.Sprintf("Stable with %d members, but %s is not assigned", members, tp), FailGroupNotStable
				break
			}
		}
	}
	if verdict == "" {
		if u := w.groups.unseen(g); u != "" {
			verdict, kind = u, FailGroupUnseen
		}
	}
	r.verdicts[g], r.kinds[g] = verdict, kind
	c.verifyNext()
}

func (c *client) onFinalOffsets(got map[tpKey]int64) {
	w, r := c.w, c.rdr
	g := r.group
	r.verdicts[g], r.kinds[g] = "", ""
	for _, tp := range w.allTPs() {
		// Nothing committed (-1) is the end of an empty partition.
		if end := w.check.log(tp).end; max(got[tp], 0) != end {
			r.verdicts[g] = fmt.Sprintf("committed offset of %s is %d, the log ends at %d", tp, got[tp], end)
			r.kinds[g] = FailGroupLagging
			break
		}
	}
	c.verifyNext()
}

// runGroupPhase runs the final group checks after the final read: every
// group must settle (Stable, every partition assigned), have consumed
// every record of the tracked partitions, and have committed their ends,
// within groupPhaseMillis.
func (w *World) runGroupPhase() {
	g := w.groups
	g.checkPending()
	if w.stopped {
		return
	}
	w.tracef("phase groups")
	g.phase = true
	rd := g.reader
	for _, name := range g.names {
		rd.rdr.verdicts[name], rd.rdr.kinds[name] = "not described yet", FailGroupNotStable
	}
	if rd.wait == waitNothing || rd.wait == waitBackoff {
		rd.backoff(1)
	}
	w.runUntil(w.now+groupPhaseMillis, func() bool { return rd.rdr.done })
	w.tracef("group-stats %s", g.groupStats())
	if w.stopped || rd.rdr.done {
		return
	}
	for _, name := range g.names {
		if v := rd.rdr.verdicts[name]; v != "" {
			kind := rd.rdr.kinds[name]
			if u := g.unseen(name); u != "" {
				kind, v = FailGroupUnseen, u
			}
			w.failures = append(w.failures, Failure{Kind: kind, AtMillis: w.now,
				Detail: fmt.Sprintf("group %s not settled %dms after the final read: %s", name, groupPhaseMillis, v)})
		}
	}
	if len(w.failures) == 0 {
		w.failures = append(w.failures, Failure{Kind: FailGroupNotStable, AtMillis: w.now,
			Detail: fmt.Sprintf("the final group checks did not finish within %dms", groupPhaseMillis)})
	}
	// The run is not stopped: the histories are still checked, and may
	// say why.
}

// groupStats counts, for the trace, the offsets ops by kind and outcome.
func (g *groupWorld) groupStats() string {
	var commits, acked, fetches, admin int
	for i := range g.ops {
		op := &g.ops[i]
		switch {
		case op.Kind == linearizability.OffsetFetch:
			fetches++
		case op.Admin:
			admin++
		default:
			commits++
			if op.Return != linearizability.ReturnUnknown && op.Err == "" {
				acked++
			}
		}
	}
	gens := len(g.gens)
	return fmt.Sprintf("commits %d acked %d admin %d fetches %d generations %d", commits, acked, admin, fetches, gens)
}
