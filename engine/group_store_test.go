package engine

import (
	"fmt"
	"strings"
	"testing"
	"testing/cryptotest"

	"github.com/gregor-streaming/gregor/engine/batch"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestGroupPartitionIsKafkas pins the group -> partition map to Java's
// String.hashCode and Kafka's Utils.abs, so that a group lands where
// Kafka would put it (tools that read __consumer_offsets rely on it).
func TestGroupPartitionIsKafkas(t *testing.T) {
	for _, tc := range []struct {
		s    string
		hash int32
	}{
		{"", 0},
		{"g", 103},
		{"hello", 99162322},
		{"polygenelubricants", -2147483648}, // Integer.MIN_VALUE: abs is 0
		{"é€😀", 16752006},                   // UTF-16 code units, surrogates included (checked with jshell)
	} {
		if got := javaStringHash(tc.s); got != tc.hash {
			t.Errorf("javaStringHash(%q) = %d, want %d", tc.s, got, tc.hash)
		}
	}
	if got := groupPartition("polygenelubricants", 50); got != 0 {
		t.Errorf("groupPartition(MIN_VALUE hash) = %d, want 0", got)
	}
	if got := groupPartition("hello", 50); got != 99162322%50 {
		t.Errorf("groupPartition(hello) = %d", got)
	}
}

// TestGroupStoreRoundTrip: what the coordinator writes, a replica folding
// the batch reads back; tombstones remove.
func TestGroupStoreRoundTrip(t *testing.T) {
	proto, leader, inst := "range", "m1", "i1"
	gv := &kmsg.GroupMetadataValue{ProtocolType: "consumer", Generation: 3, Protocol: &proto, Leader: &leader,
		CurrentStateTimestamp: 77, Members: []kmsg.GroupMetadataValueMember{{MemberID: "m1", InstanceID: &inst,
			ClientID: "c", ClientHost: "/h", RebalanceTimeoutMillis: 5, SessionTimeoutMillis: 6,
			Subscription: []byte("sub"), Assignment: []byte("asg")}}}
	s := newGroupStore()
	b := buildCoordinatorBatch(1, recordsOf(
		groupMetadataRecord("g", gv),
		offsetCommitRecord("g", "t", 2, &storedOffset{offset: 9, leaderEpoch: 4, metadata: "md", commitTs: 5}),
		offsetCommitRecord("g", "t", 3, &storedOffset{offset: 10, leaderEpoch: -1}),
		offsetCommitRecord("g", "t", 3, nil),
	))
	if err := s.applyBatch(b); err != nil {
		t.Fatal(err)
	}
	got := s.groups["g"]
	if got == nil || got.Generation != 3 || *got.Leader != "m1" || string(got.Members[0].Assignment) != "asg" || *got.Members[0].InstanceID != "i1" {
		t.Fatalf("group metadata = %+v", got)
	}
	if o := s.offsets["g"]; len(o) != 1 || o[offsetKey{"t", 2}] != (storedOffset{9, 4, "md", 5, 1}) {
		t.Fatalf("offsets = %+v", o)
	}
	if err := s.applyBatch(buildCoordinatorBatch(2, recordsOf(groupMetadataRecord("g", nil), offsetCommitRecord("g", "t", 2, nil)))); err != nil {
		t.Fatal(err)
	}
	if len(s.groups) != 0 || len(s.offsets) != 0 {
		t.Fatalf("after tombstones: %v %v", s.groups, s.offsets)
	}
}

// FuzzGroupStoreRecord feeds the coordinator's decoder of stored records
// arbitrary keys and values: it must never panic, and a record it refuses
// must leave the state as it was.
func FuzzGroupStoreRecord(f *testing.F) {
	proto := "range"
	f.Add(offsetCommitRecord("g", "t", 1, &storedOffset{offset: 1}).Key, offsetCommitRecord("g", "t", 1, &storedOffset{offset: 1}).Value)
	gr := groupMetadataRecord("g", &kmsg.GroupMetadataValue{Protocol: &proto, Members: []kmsg.GroupMetadataValueMember{{MemberID: "m"}}})
	f.Add(gr.Key, gr.Value)
	inst, rx := "i", "t.*"
	for _, r := range []batch.Record{
		consumerGroupEpochRecord("g", 3, 99, false),
		consumerMemberRecord("g", "m", &consumerMember{instanceID: &inst, clientID: "c", topics: []string{"t"}, regex: &rx, rebalanceMs: 5}),
		consumerTargetEpochRecord("g", 3, false),
		consumerTargetRecord("g", "m", topicParts{{1}: {0, 2}}),
		consumerCurrentRecord("g", "m", &consumerCurrent{epoch: 3, prevEpoch: 2, state: 1, assigned: topicParts{{1}: {0}}, pending: topicParts{{1}: {2}}}),
	} {
		f.Add(r.Key, r.Value)
	}
	f.Add([]byte{0, 2}, []byte(nil))
	f.Add([]byte{0, 9, 1}, []byte{1})
	f.Fuzz(func(t *testing.T, key, value []byte) {
		s := newGroupStore()
		seed := buildCoordinatorBatch(1, recordsOf(offsetCommitRecord("keep", "t", 0, &storedOffset{offset: 42})))
		if err := s.applyBatch(seed); err != nil {
			t.Fatal(err)
		}
		if err := s.applyRecord(key, value, 0); err != nil {
			if s.offsets["keep"][offsetKey{"t", 0}].offset != 42 || len(s.groups) != 0 || len(s.consumers) != 0 {
				t.Fatalf("a refused record changed the state: %v %v", s.offsets, s.groups)
			}
		}
		// A whole batch of it decodes the same way, or is refused.
		_ = s.applyBatch(buildCoordinatorBatch(1, []batch.Record{{Key: key, Value: value}}))
	})
}

// TestCoordinatorLoadInProgress: a leader that has not confirmed its state
// answers COORDINATOR_LOAD_IN_PROGRESS; another broker NOT_COORDINATOR.
func TestCoordinatorLoadInProgress(t *testing.T) {
	c := &testCluster{t: t}
	cryptotest.SetGlobalRandom(t, 1)
	c.run(t, cmd("add-brokers n=3"))
	c.run(t, cmd("find-coordinator group=g"))
	c.tick(10)
	lead := c.coordinatorOf("g")
	b := c.broker(lead).b
	co, code := b.coordinatorFor("g")
	if code != 0 {
		t.Fatalf("coordinator on %d: %s", lead, codeName(code))
	}
	other := lead%3 + 1
	if _, code := c.broker(other).b.coordinatorFor("g"); code != kerr.NotCoordinator.Code {
		t.Fatalf("broker %d: %s, want NOT_COORDINATOR", other, codeName(code))
	}
	co.unload(kerr.NotCoordinator.Code)
	co.loading = true // a load whose ReadIndex round has not come back
	hb := kmsg.NewPtrHeartbeatRequest()
	hb.Group, hb.MemberID = "g", "m"
	if got := b.heartbeat(hb); got != kerr.CoordinatorLoadInProgress.Code {
		t.Fatalf("heartbeat while loading: %s", codeName(got))
	}
	co.loading = false
	c.tick(1) // the tick starts a load again
	c.stabilize()
	if _, code := b.coordinatorFor("g"); code != 0 {
		t.Fatalf("after reload: %s", codeName(code))
	}
}

// TestConsumerRecordsRoundTrip: the KIP-848 records read back as written.
func TestConsumerRecordsRoundTrip(t *testing.T) {
	inst, rx, asg := "i", "t.*", "range"
	m := &consumerMember{instanceID: &inst, clientID: "c", clientHost: "/h", topics: []string{"a", "b"}, regex: &rx, rebalanceMs: 5, assignor: &asg}
	cur := &consumerCurrent{epoch: 3, prevEpoch: 2, state: memberUnrevokedPartitions, assigned: topicParts{{1}: {0}}, pending: topicParts{{1}: {2}, {2}: {7}}}
	s := newGroupStore()
	if err := s.applyBatch(buildCoordinatorBatch(1, recordsOf(
		consumerGroupEpochRecord("g", 3, 99, false),
		consumerMemberRecord("g", "m", m),
		consumerTargetEpochRecord("g", 3, false),
		consumerTargetRecord("g", "m", topicParts{{1}: {0, 2}}),
		consumerCurrentRecord("g", "m", cur),
	))); err != nil {
		t.Fatal(err)
	}
	g := s.consumers["g"]
	if g == nil || g.epoch != 3 || g.metadataHash != 99 || g.assignmentEpoch != 3 {
		t.Fatalf("group = %+v", g)
	}
	if got := g.members["m"]; got == nil || !sameConsumerMember(*got, *m) {
		t.Fatalf("member = %+v", got)
	}
	if !g.targets["m"].equal(topicParts{{1}: {0, 2}}) {
		t.Fatalf("target = %v", g.targets["m"])
	}
	if c := g.current["m"]; c == nil || c.epoch != 3 || c.prevEpoch != 2 || c.state != 1 || !c.assigned.equal(cur.assigned) || !c.pending.equal(cur.pending) {
		t.Fatalf("current = %+v", c)
	}
	if err := s.applyBatch(buildCoordinatorBatch(2, recordsOf(consumerCurrentRecord("g", "m", nil), consumerTargetRecord("g", "m", nil),
		consumerMemberRecord("g", "m", nil), consumerTargetEpochRecord("g", 0, true), consumerGroupEpochRecord("g", 0, 0, true)))); err != nil {
		t.Fatal(err)
	}
	if len(s.consumers) != 0 {
		t.Fatalf("after tombstones: %+v", s.consumers)
	}
}

// TestOffsetsExpireWhenGroupEmpty: a group empty for
// offsets.retention.minutes loses its offsets (and itself) by tombstones
// its coordinator proposes; a group with members keeps them however old.
func TestOffsetsExpireWhenGroupEmpty(t *testing.T) {
	cryptotest.SetGlobalRandom(t, 1)
	c := &testCluster{t: t}
	c.tune = func(cfg *Config) {
		cfg.OffsetsRetentionMs = 60_000
		cfg.OffsetsRetentionCheckIntervalMs = 10_000
	}
	for _, line := range []string{
		"add-brokers n=3", "find-coordinator group=old",
		"tick n=10", "create-topic name=t partitions=1 rf=3",
		"commit group=old offsets=t/0=5",
		"join group=live", "join group=live member=m1",
		"sync group=live member=m1 gen=1",
		"commit group=live member=m1 gen=1 offsets=t/0=7",
	} {
		c.run(t, cmd(line))
	}
	// Two minutes on, with live's member heartbeating.
	for range 24 {
		c.tick(50)
		c.run(t, cmd("heartbeat group=live member=m1 gen=1"))
	}
	if got := c.run(t, cmd("offset-fetch group=old")); got != fmt.Sprintf("via %d: offsets \n", c.coordinatorOf("old")) {
		t.Fatalf("expired group's offsets: %q", got)
	}
	if got := c.run(t, cmd("describe-group group=old")); !strings.Contains(got, "Dead") {
		t.Fatalf("expired group: %q", got)
	}
	if got := c.run(t, cmd("offset-fetch group=live")); !strings.Contains(got, "t/0=7") {
		t.Fatalf("live group's offsets: %q", got)
	}
	// The tombstones are in the log: a restarted coordinator agrees.
	lead := c.coordinatorOf("old")
	c.run(t, cmd(fmt.Sprintf("crash broker=%d", lead)))
	c.run(t, cmd(fmt.Sprintf("restart broker=%d", lead)))
	c.tick(40)
	if got := c.run(t, cmd("offset-fetch group=old")); !strings.HasSuffix(got, "offsets \n") {
		t.Fatalf("after restart: %q", got)
	}
}
