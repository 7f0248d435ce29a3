package engine

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestHandOffLeadership: a controlled shutdown moves the leadership of the
// partitions a broker leads to another replica, and a produce it answers
// meanwhile is NOT_LEADER_OR_FOLLOWER naming the transferee at the term it
// campaigns in (KIP-951), not a leader the client already knows: without
// it franz-go waited for its next metadata refresh, 5 s by default
// (gregor bench failover --graceful).
func TestHandOffLeadership(t *testing.T) {
	c := &testCluster{t: t}
	c.run(t, cmd("add-brokers n=3"))
	c.run(t, cmd("create-topic name=t partitions=1 rf=3"))
	var old *testBroker
	var term int64
	for _, tb := range c.brokers {
		for _, r := range tb.b.Replicas() {
			if r.Topic == "t" && r.Leader {
				old, term = tb, int64(r.Term)
			}
		}
	}
	if old == nil {
		t.Fatal("no leader of t-0")
	}
	if left := old.b.HandOffLeadership(); left == 0 {
		t.Fatalf("broker %d: nothing to hand off", old.id)
	}
	resp, ok := c.call(old.id, produceRequest(10, "t", oneRecord("v")), 50)
	if !ok {
		t.Fatal("no answer")
	}
	pr := resp.(*kmsg.ProduceResponse)
	p := pr.Topics[0].Partitions[0]
	if codeName(p.ErrorCode) != "NOT_LEADER_FOR_PARTITION" || p.CurrentLeader.LeaderID == old.id || p.CurrentLeader.LeaderID < 0 ||
		int64(p.CurrentLeader.LeaderEpoch) <= term || len(pr.Brokers) != 1 || pr.Brokers[0].NodeID != p.CurrentLeader.LeaderID {
		t.Fatalf("produce at the old leader (term %d): %s, current leader %+v, brokers %+v; want NOT_LEADER_OR_FOLLOWER naming another broker at a later term",
			term, codeName(p.ErrorCode), p.CurrentLeader, pr.Brokers)
	}
	for range 20 {
		if old.b.HandOffLeadership() == 0 {
			break
		}
		c.stabilize()
	}
	if left := old.b.HandOffLeadership(); left != 0 {
		t.Fatalf("broker %d: %d groups not handed off", old.id, left)
	}
	for _, r := range old.b.Replicas() {
		if r.Leader {
			t.Fatalf("broker %d still leads %s-%d", old.id, r.Topic, r.Partition)
		}
	}
}
