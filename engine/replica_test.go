package engine

import (
	"fmt"
	"github.com/gregor-streaming/gregor/engine/batch"
	"github.com/twmb/franz-go/pkg/kmsg"
	"slices"
	"strings"
	"testing"
	"testing/cryptotest"

	"github.com/cockroachdb/datadriven"
	"github.com/twmb/franz-go/pkg/kerr"
)

// cmd builds a transcript command from "name k=v k=v".
func cmd(line string) *datadriven.TestData {
	f := strings.Fields(line)
	d := &datadriven.TestData{Cmd: f[0]}
	for _, kv := range f[1:] {
		k, v, _ := strings.Cut(kv, "=")
		d.CmdArgs = append(d.CmdArgs, datadriven.CmdArg{Key: k, Vals: []string{v}})
	}
	return d
}

// TestLongPollWaitersRemoved: long-poll fetches answered by their own
// timeout leave no closure behind in the partition (before, every one
// stayed registered until the next write woke the partition).
func TestLongPollWaitersRemoved(t *testing.T) {
	cryptotest.SetGlobalRandom(t, 1)
	c := &testCluster{t: t}
	for _, line := range []string{"add-brokers n=3", "create-topic name=t partitions=1 rf=3"} {
		c.run(t, cmd(line))
	}
	for range 200 {
		if out := c.run(t, cmd("fetch topic=t partition=0 offset=0 max-wait-ms=100")); !strings.Contains(out, "hw=0") {
			t.Fatalf("long poll answered %q", out)
		}
	}
	leader := c.leaderOf("t", 0)
	p := c.broker(leader).b.parts[c.broker(leader).b.meta.st.Topics["t"].Partitions[0].Group]
	if n := p.watchers.Len(); n != 0 {
		t.Fatalf("%d answered long polls still registered", n)
	}
	// A write still wakes a waiting long poll.
	if out := c.run(t, cmd("produce topic=t partition=0 values=a")); !strings.Contains(out, "offset 0") {
		t.Fatalf("produce: %q", out)
	}
}

// TestTermChangeKeepingLeadershipFailsPending: when a replica that leads is
// re-elected in a new term, its proposals from the old term may have been
// replaced; their waiters must be answered, not left to time out.
func TestTermChangeKeepingLeadershipFailsPending(t *testing.T) {
	b := &Broker{cfg: Config{ID: 1}}
	p := &partition{b: b}
	p.LeaderChanged(1, 5)
	var got []error
	p.pending.Add(1, func(r produceResult) { got = append(got, r.err) })
	p.LeaderChanged(1, 5) // same term: nothing to fail
	if len(got) != 0 {
		t.Fatalf("failed on an unchanged term: %v", got)
	}
	p.LeaderChanged(1, 7)
	if len(got) != 1 || got[0] != kerr.NotLeaderForPartition || !p.leader || p.pending.Len() != 0 {
		t.Fatalf("after re-election in a new term: %v, leader %v, %d pending", got, p.leader, p.pending.Len())
	}
}

// TestMetadataApplyPlacesFromTheEntry: replica placement is decided by the
// proposer and carried in the entry; apply never consults the applying
// broker's own cluster configuration (which may differ between brokers),
// and refuses an entry that does not carry it.
func TestMetadataApplyPlacesFromTheEntry(t *testing.T) {
	mk := func(cluster ...int32) *metaSM {
		b := &Broker{cfg: Config{ID: 9}}
		for _, id := range cluster {
			b.cfg.Cluster = append(b.cfg.Cluster, BrokerInfo{ID: id})
		}
		return newMetaSM(b)
	}
	cmd := &metaCmd{CreateTopic: &createTopicCmd{Name: "t", Partitions: 2, Replication: 2, Assignment: [][]int32{{3, 1}, {1, 2}}}}
	a, b := mk(1, 2, 3), mk(3, 4, 5)
	for _, m := range []*metaSM{a, b} {
		if r := m.apply(cmd, 5); r.err != nil {
			t.Fatal(r.err)
		}
	}
	for _, m := range []*metaSM{a, b} {
		if got := m.st.Topics["t"].Partitions; !slices.Equal(got[0].Replicas, []int32{3, 1}) || !slices.Equal(got[1].Replicas, []int32{1, 2}) {
			t.Fatalf("placement %+v", got)
		}
	}
	if r := a.apply(&metaCmd{CreateTopic: &createTopicCmd{Name: "u", Partitions: 1, Replication: 1}}, 6); r.err != kerr.InvalidReplicaAssignment {
		t.Fatalf("an entry without placement applied: %v", r.err)
	}
	grow := &metaCmd{CreatePartitions: &createPartitionsCmd{Name: "t", Count: 3, Assignment: [][]int32{nil, nil, {2, 3}}}}
	if r := a.apply(grow, 7); r.err != nil || !slices.Equal(a.st.Topics["t"].Partitions[2].Replicas, []int32{2, 3}) {
		t.Fatalf("create partitions: %v %+v", r.err, a.st.Topics["t"].Partitions)
	}
}

// TestProducerExpiryIsDecidedByTheLeader: an idempotent producer idle for
// ProducerIDExpirationMs loses its state on every replica through an entry
// the leader proposed, never through a replica's own clock; one that wrote
// meanwhile keeps it.
func TestProducerExpiryIsDecidedByTheLeader(t *testing.T) {
	cryptotest.SetGlobalRandom(t, 1)
	c := &testCluster{t: t, tune: func(cfg *Config) {
		cfg.ProducerIDExpirationMs = 5_000
		cfg.ProducerIDExpirationCheckMs = 1_000
	}}
	c.run(t, cmd("add-brokers n=3"))
	c.run(t, cmd("create-topic name=t partitions=1 rf=3"))
	c.run(t, cmd("produce topic=t partition=0 values=a pid=1 epoch=0 seq=0"))
	c.run(t, cmd("produce topic=t partition=0 values=b pid=2 epoch=0 seq=0"))
	c.tick(30) // 3 s: nothing is old enough
	for id := int32(1); id <= 3; id++ {
		if n := c.part(id).producers.Producers(); n != 2 {
			t.Fatalf("broker %d has %d producers before expiry, want 2", id, n)
		}
	}
	if out := c.run(t, cmd("produce topic=t partition=0 values=c pid=2 epoch=0 seq=1")); !strings.Contains(out, "offset 2") {
		t.Fatalf("produce: %q", out)
	}
	c.tick(35) // producer 1 is 6.5 s old, producer 2 3.5 s
	for id := int32(1); id <= 3; id++ {
		ps := c.part(id).producers
		if _, ok := ps.Epoch(1); ok {
			t.Fatalf("broker %d still has expired producer 1", id)
		}
		if _, ok := ps.Epoch(2); !ok {
			t.Fatalf("broker %d dropped producer 2, which wrote 3.5 s ago", id)
		}
	}
	// Producer 1 starts over: its old sequence is out of order now.
	if out := c.run(t, cmd("produce topic=t partition=0 values=d pid=1 epoch=0 seq=1")); !strings.Contains(out, "OUT_OF_ORDER") {
		t.Fatalf("produce of an expired producer's next sequence: %q", out)
	}
}

// TestTimedOutProduceLeavesNoWaiter: a produce answered REQUEST_TIMED_OUT
// takes its proposal's waiter out of the partition with it; before, the
// closure stayed until the entry applied or leadership moved.
func TestTimedOutProduceLeavesNoWaiter(t *testing.T) {
	cryptotest.SetGlobalRandom(t, 1)
	c := &testCluster{t: t}
	c.run(t, cmd("add-brokers n=3"))
	c.run(t, cmd("create-topic name=t partitions=1 rf=3"))
	lead := c.leaderOf("t", 0)
	for _, other := range []int32{1, 2, 3} {
		if other != lead {
			c.cut[[2]int32{lead, other}] = true
		}
	}
	req := kmsg.NewPtrProduceRequest()
	req.Acks, req.TimeoutMillis = -1, 300
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Records = batch.Build(batch.BuildOptions{ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1}, []batch.Record{{Value: []byte("v")}})
	req.Topics = []kmsg.ProduceRequestTopic{{Topic: "t", Partitions: []kmsg.ProduceRequestTopicPartition{rp}}}
	resp, ok := c.call(lead, req, 20)
	if !ok {
		t.Fatal("no answer")
	}
	if code := resp.(*kmsg.ProduceResponse).Topics[0].Partitions[0].ErrorCode; code != kerr.RequestTimedOut.Code {
		t.Fatalf("answer %s, want REQUEST_TIMED_OUT", codeName(code))
	}
	if n := c.part(lead).pending.Len(); n != 0 {
		t.Fatalf("%d proposal waiters left after the timeout", n)
	}
}

// TestRegression_ProducerExpiryLostAtRecovery (found by the simulator:
// `gregor sim --seed 113 --mode all --brokers 5 --time 45s --unsafe
// no-fencing`, a divergence on __consumer_offsets-2): a producer-expiry
// entry stores no batch, so recovery, which rebuilds producer state from
// the checkpoint and the headers of the batches after it and skips every
// entry up to the last batch's tag, brought an expired producer back when
// a batch applied after the expiry and before the next checkpoint. That
// replica then skipped a fencing marker for the producer that every other
// replica wrote. The expiry now writes the checkpoint, as DeleteRecords
// does.
func TestRegression_ProducerExpiryLostAtRecovery(t *testing.T) {
	cryptotest.SetGlobalRandom(t, 1)
	c := &testCluster{t: t, tune: func(cfg *Config) {
		cfg.ProducerIDExpirationMs = 5_000
		cfg.ProducerIDExpirationCheckMs = 1_000
	}}
	c.run(t, cmd("add-brokers n=3"))
	c.run(t, cmd("create-topic name=t partitions=1 rf=3"))
	c.run(t, cmd("produce topic=t partition=0 values=a pid=1 epoch=0 seq=0"))
	for id := int32(1); id <= 3; id++ {
		c.run(t, cmd(fmt.Sprintf("checkpoint broker=%d", id)))
	}
	c.tick(70) // producer 1 expires everywhere
	// A batch after the expiry: its tag is past the expiry entry.
	c.run(t, cmd("produce topic=t partition=0 values=b pid=2 epoch=0 seq=0"))
	follower := int32(1)
	if c.leaderOf("t", 0) == follower {
		follower = 2
	}
	if _, ok := c.part(follower).producers.Epoch(1); ok {
		t.Fatalf("broker %d has producer 1 before the restart", follower)
	}
	tb := c.broker(follower)
	tb.b.Close() // the segments hold the batch; the checkpoint is older
	tb.down = true
	c.run(t, cmd(fmt.Sprintf("restart broker=%d", follower)))
	if _, ok := c.part(follower).producers.Epoch(1); ok {
		t.Fatalf("broker %d brought the expired producer 1 back at recovery", follower)
	}
}
