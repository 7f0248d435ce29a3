package sim

import (
	"slices"
	"strings"
	"testing"

	"github.com/gregor-streaming/gregor/linearizability"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestRangeAssign: Kafka's range assignor, per topic, members in id
// order, the first ones one partition more.
func TestRangeAssign(t *testing.T) {
	w := &World{opts: Options{Partitions: 5}, topics: []string{"t0", "t1"}}
	meta := kmsg.NewConsumerMemberMetadata()
	meta.Topics = []string{"t0", "t1"}
	var members []kmsg.JoinGroupResponseMember
	for _, id := range []string{"c", "a", "b"} {
		jm := kmsg.NewJoinGroupResponseMember()
		jm.MemberID, jm.ProtocolMetadata = id, meta.AppendTo(nil)
		members = append(members, jm)
	}
	got := map[string]string{}
	for _, sa := range rangeAssign(w, members) {
		var a kmsg.ConsumerMemberAssignment
		if err := a.ReadFrom(sa.MemberAssignment); err != nil {
			t.Fatal(err)
		}
		var parts []string
		for _, at := range a.Topics {
			for _, p := range at.Partitions {
				parts = append(parts, at.Topic+"/"+string(rune('0'+p)))
			}
		}
		got[sa.MemberID] = strings.Join(parts, " ")
	}
	want := map[string]string{"a": "t0/0 t0/1 t1/0 t1/1", "b": "t0/2 t0/3 t1/2 t1/3", "c": "t0/4 t1/4"}
	for id, w := range want {
		if got[id] != w {
			t.Errorf("member %s: got %q, want %q", id, got[id], w)
		}
	}
}

// TestGroupPartition: Kafka's placement, abs(String.hashCode) % n, and one
// standalone group on each partition.
func TestGroupPartition(t *testing.T) {
	// "hello".hashCode() is 99162322 in Java; "polygenelubricants" is
	// Integer.MIN_VALUE, which Kafka's Utils.abs maps to 0.
	if got := groupPartition("hello", 50); got != 99162322%50 {
		t.Errorf("hello: %d", got)
	}
	if got := groupPartition("polygenelubricants", 7); got != 0 {
		t.Errorf("polygenelubricants: %d", got)
	}
	for n := int32(1); n <= 8; n++ {
		gs := standaloneGroups(n)
		if len(gs) != int(n) {
			t.Fatalf("%d partitions: %v", n, gs)
		}
		for p, g := range gs {
			if groupPartition(g, n) != int32(p) {
				t.Errorf("%d partitions: %s is on %d, not %d", n, g, groupPartition(g, n), p)
			}
		}
	}
}

// TestCoverageGap: the first offsets a group never consumed.
func TestCoverageGap(t *testing.T) {
	var c *coverage
	if lo, hi, ok := c.firstGap(3); !ok || lo != 0 || hi != 3 {
		t.Errorf("nothing consumed: [%d, %d) %v", lo, hi, ok)
	}
	c = &coverage{}
	for _, o := range []int64{0, 1, 2, 5, 6, 9} {
		c.mark(o)
	}
	c.mark(1)
	if lo, hi, ok := c.firstGap(10); !ok || lo != 3 || hi != 5 {
		t.Errorf("got [%d, %d) %v, want [3, 5)", lo, hi, ok)
	}
	if _, _, ok := c.firstGap(3); ok {
		t.Error("[0, 3) was consumed")
	}
	if lo, hi, ok := c.firstGap(7); !ok || lo != 3 || hi != 5 {
		t.Errorf("got [%d, %d) %v, want [3, 5)", lo, hi, ok)
	}
}

// TestGroupWorkload: seed 4's classic groups (and its consumer group)
// rebalance, commit, read and settle, and the checks see it: commits
// acknowledged, zombies, admin resets, and the final group checks passed.
// (Seed 3 until it drew a KIP-848 group as its only one.)
func TestGroupWorkload(t *testing.T) {
	o := NewOptions(4)
	o.SafetyMillis = spreadSafetyMillis
	t.Logf("replay: %s", o.ReplayCommand())
	var trace strings.Builder
	r := Run(o, RunConfig{Trace: &trace, VisualizeDir: t.TempDir()})
	if !r.OK() {
		t.Fatal(r.Summary())
	}
	tr := trace.String()
	for _, want := range []string{" phase groups", " groups settled", " zombie ", " owns ["} {
		if !strings.Contains(tr, want) {
			t.Errorf("the trace has no %q", want)
		}
	}
	if r.GroupOps == 0 {
		t.Error("no offsets operations")
	}
	i := strings.Index(tr, "group-stats ")
	if i < 0 {
		t.Fatal("no group-stats line")
	}
	line := tr[i : i+strings.IndexByte(tr[i:], '\n')]
	t.Log(line)
	f := strings.Fields(line)
	if k := slices.Index(f, "acked"); k < 0 || f[k+1] == "0" {
		t.Errorf("no commit acknowledged: %s", line)
	}
}

// TestSplitAssignmentFound: two members of one generation told the same
// partition, or one member told two assignments, is split-assignment.
func TestSplitAssignmentFound(t *testing.T) {
	for _, tc := range []struct {
		name string
		a, b []tpKey
		same bool // b goes to the same member
	}{
		{"two owners", []tpKey{{"t0", 0}, {"t0", 1}}, []tpKey{{"t0", 1}}, false},
		{"two assignments", []tpKey{{"t0", 0}}, []tpKey{{"t0", 1}}, true},
	} {
		w := testWorld(t)
		m1 := &member{c: &client{w: w, idx: 1}, group: "g0", id: "m1", gen: 3}
		m2 := &member{c: &client{w: w, idx: 2}, group: "g0", id: "m2", gen: 3}
		if tc.same {
			m2 = m1
		}
		w.groups.onAssignment(m1, tc.a)
		if len(w.failures) != 0 {
			t.Fatalf("%s: %v", tc.name, w.failures)
		}
		w.groups.onAssignment(m2, tc.b)
		if len(w.failures) != 1 || w.failures[0].Kind != FailSplitAssignment {
			t.Errorf("%s: got %v", tc.name, w.failures)
		} else {
			t.Log(w.failures[0])
		}
	}
	// The next generation may move a partition.
	w := testWorld(t)
	w.groups.onAssignment(&member{c: &client{w: w}, group: "g0", id: "m1", gen: 3}, []tpKey{{"t0", 0}})
	w.groups.onAssignment(&member{c: &client{w: w}, group: "g0", id: "m2", gen: 4}, []tpKey{{"t0", 0}})
	if len(w.failures) != 0 {
		t.Errorf("a partition moved to the next generation: %v", w.failures)
	}
}

// TestGroupUnseenDescribed: the records a group never consumed are named.
func TestGroupUnseenDescribed(t *testing.T) {
	w := testWorld(t)
	w.opts.Partitions, w.topics = 1, []string{"t0"}
	w.check.log(tpKey{"t0", 0}).end = 5
	m := &member{c: &client{w: w, idx: 1}, group: "g0"}
	var recs []linearizability.Record
	for _, o := range []int64{0, 1, 4} {
		recs = append(recs, linearizability.Record{Offset: o, Value: "v"})
	}
	w.groups.consumed(m, tpKey{"t0", 0}, recs)
	if got := w.groups.unseen("g0"); !strings.Contains(got, "offsets [2, 4) of 5") {
		t.Errorf("unseen: %q", got)
	}
	w.groups.consumed(m, tpKey{"t0", 0}, []linearizability.Record{{Offset: 2, Value: "v"}, {Offset: 3, Value: "v"}})
	if got := w.groups.unseen("g0"); got != "" {
		t.Errorf("all consumed, unseen: %q", got)
	}
	if got := w.groups.unseen("g1"); !strings.Contains(got, "offsets [0, 5)") {
		t.Errorf("another group: %q", got)
	}
}

// testWorld is a world that is not run: its checkers take what a test
// hands them.
func testWorld(t *testing.T) *World {
	t.Helper()
	o := NewOptions(1)
	o.Groups = 1
	w, err := newWorld(o, nil)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// TestSplitAssignment848Found: in a KIP-848 group a member owns a
// partition from the answer that assigns it until the heartbeat that no
// longer lists it; another member assigned it meanwhile is
// split-assignment, after it is not.
func TestSplitAssignment848Found(t *testing.T) {
	w := testWorld(t)
	m1 := &member{c: &client{w: w, idx: 1}, group: "c0", id: "m1", gen: 3}
	m2 := &member{c: &client{w: w, idx: 2}, group: "c0", id: "m2", gen: 4}
	w.groups.own848(m1, []tpKey{{"t0", 0}, {"t0", 1}})
	w.groups.own848(m1, []tpKey{{"t0", 1}}) // told to give up t0/0: it still owns it
	w.groups.own848(m2, []tpKey{{"t0", 2}})
	if len(w.failures) != 0 {
		t.Fatalf("no partition had two owners: %v", w.failures)
	}
	w.groups.own848(m2, []tpKey{{"t0", 0}, {"t0", 2}})
	if len(w.failures) != 1 || w.failures[0].Kind != FailSplitAssignment {
		t.Fatalf("t0/0 went to m2 before m1 revoked it: %v", w.failures)
	}
	t.Log(w.failures[0])

	w = testWorld(t)
	w.groups.own848(m1, []tpKey{{"t0", 0}, {"t0", 1}})
	w.groups.release848(m1, []tpKey{{"t0", 1}}) // its heartbeat lists t0/1 only
	w.groups.own848(m2, []tpKey{{"t0", 0}})
	w.groups.release848(m1, nil) // it leaves
	w.groups.own848(m2, []tpKey{{"t0", 0}, {"t0", 1}})
	if len(w.failures) != 0 {
		t.Errorf("each partition moved after its owner revoked it: %v", w.failures)
	}
	m3 := &member{c: &client{w: w, idx: 3}, group: "c1", id: "m3", gen: 1}
	w.groups.own848(m3, []tpKey{{"t0", 0}})
	if len(w.failures) != 0 {
		t.Errorf("another group may own the same partition: %v", w.failures)
	}
}

// TestConsumerGroupWorkload: seed 5's KIP-848 group (c0) joins,
// reconciles, commits with its member epochs, has a zombie refused, and
// settles beside its classic group.
func TestConsumerGroupWorkload(t *testing.T) {
	o := NewOptions(5)
	o.SafetyMillis = spreadSafetyMillis
	t.Logf("replay: %s", o.ReplayCommand())
	var trace strings.Builder
	r := Run(o, RunConfig{Trace: &trace, VisualizeDir: t.TempDir()})
	if !r.OK() {
		t.Fatal(r.Summary())
	}
	tr := trace.String()
	for _, want := range []string{" c0 joined as ", " c0 epoch ", " groups settled", " zombie c", " member of g0", " member of c0"} {
		if !strings.Contains(tr, want) {
			t.Errorf("the trace has no %q", want)
		}
	}
	if strings.Contains(tr, "commit of") && !strings.Contains(tr, "STALE_MEMBER_EPOCH") && !strings.Contains(tr, "UNKNOWN_MEMBER_ID") {
		t.Error("no zombie commit was refused")
	}
}

// TestLateHeartbeatAnswerNotOwned: a KIP-848 member whose join is
// answered after the deadline that answer would set (nine tenths of its
// session from the send) owns nothing of it: the coordinator's session
// timer started when it handled the join, and may have given the
// partitions away before the answer came (seed 77 with --txn; see
// TestRegression_LateJoinAnswerOwned). One answered in time owns them.
func TestLateHeartbeatAnswerNotOwned(t *testing.T) {
	w := testWorld(t)
	c := newClient(w, len(w.clients), roleConsumer, 0, nil)
	w.clients = append(w.clients, c)
	m := newMember(c, "c0")
	tid := [16]byte{1}
	m.cons.ids[tid], m.cons.byName["t0"] = "t0", tid
	answer := func() *kmsg.ConsumerGroupHeartbeatResponse {
		r := kmsg.NewPtrConsumerGroupHeartbeatResponse()
		id := "m1"
		r.MemberID, r.MemberEpoch, r.HeartbeatIntervalMillis = &id, 7, 500
		r.Assignment = &kmsg.ConsumerGroupHeartbeatResponseAssignment{
			Topics: []kmsg.ConsumerGroupHeartbeatResponseAssignmentTopic{{TopicID: tid, Partitions: []int32{0}}}}
		return r
	}
	// Another member owns t0/0 since the coordinator ended m's session.
	other := &member{c: &client{w: w, idx: c.idx + 1}, group: "c0", id: "m2", gen: 8}
	m.state, m.cons.beatSent = memberJoin, w.now
	w.now += m.sessionMillis() * fenceMarginNum / fenceMarginDen
	w.groups.own848(other, []tpKey{{"t0", 0}})
	m.onBeat848(answer())
	if m.state != memberJoin || len(w.failures) != 0 {
		t.Fatalf("a late answer was taken: state %s, failures %v", memberStateNames[m.state], w.failures)
	}
	w.groups.release848(other, nil)
	m.aTok, m.cons.beatSent = 0, w.now
	w.now++
	m.onBeat848(answer())
	if m.state != memberStable || len(w.groups.owners) != 1 || len(w.failures) != 0 {
		t.Fatalf("an answer in time was not taken: state %s, owners %v, failures %v", memberStateNames[m.state], w.groups.owners, w.failures)
	}
}
