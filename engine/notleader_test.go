package engine

// What a replica that does not lead a partition answers, as Kafka's
// does (cmd/gregor/testdata/conformance/13_cluster.txt).

import (
	"testing"

	"github.com/gregor-streaming/gregor/engine/batch"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// follower is a broker of c that holds t-0 and does not lead it.
func (c *testCluster) follower(t *testing.T) int32 {
	t.Helper()
	leader := c.leaderOf("t", 0)
	for _, tb := range c.brokers {
		if tb.id != leader {
			return tb.id
		}
	}
	t.Fatal("no follower")
	return 0
}

// KIP-951: from v10 a NOT_LEADER_OR_FOLLOWER answer names the leader, its
// epoch and its endpoint, so the client goes there without a Metadata
// round trip; the Java client and franz-go use it.
func TestProduceNotLeaderNamesTheLeader(t *testing.T) {
	c := newResponseCluster(t)
	leader, via := c.leaderOf("t", 0), c.follower(t)
	for _, v := range []int16{9, 10, 12} {
		req := produceRequest(v, "t", oneRecord("a"))
		resp, ok := c.call(via, req, 60)
		if !ok {
			t.Fatalf("v%d: no answer", v)
		}
		r := wire(t, resp).(*kmsg.ProduceResponse)
		p := r.Topics[0].Partitions[0]
		if p.ErrorCode != kerr.NotLeaderForPartition.Code {
			t.Fatalf("v%d: error %d, want NOT_LEADER_OR_FOLLOWER", v, p.ErrorCode)
		}
		if v < 10 {
			if p.CurrentLeader.LeaderID != -1 || len(r.Brokers) != 0 {
				t.Errorf("v%d: a hint the version does not have: %+v %+v", v, p.CurrentLeader, r.Brokers)
			}
			continue
		}
		if p.CurrentLeader.LeaderID != leader || p.CurrentLeader.LeaderEpoch < 0 {
			t.Errorf("v%d: CurrentLeader %+v, want broker %d and its epoch", v, p.CurrentLeader, leader)
		}
		if len(r.Brokers) != 1 || r.Brokers[0].NodeID != leader || r.Brokers[0].Port == 0 {
			t.Errorf("v%d: Brokers %+v, want broker %d's endpoint", v, r.Brokers, leader)
		}
	}
}

// Kafka's replica manager refuses a fetch at a follower with
// AbortedTransactions null; only its refusals before that (an unknown
// topic, no authorization) have an empty list.
func TestFetchNotLeaderAbortedTransactionsNull(t *testing.T) {
	c := newResponseCluster(t)
	for _, tc := range []struct {
		topic string
		code  int16
		empty bool
	}{
		{"t", kerr.NotLeaderForPartition.Code, false},
		{"nope", kerr.UnknownTopicOrPartition.Code, true},
	} {
		req := kmsg.NewPtrFetchRequest()
		req.SetVersion(12)
		req.ReplicaID, req.MaxBytes = -1, 1<<20
		ft := kmsg.NewFetchRequestTopic()
		ft.Topic = tc.topic
		fp := kmsg.NewFetchRequestTopicPartition()
		fp.PartitionMaxBytes = 1 << 20
		ft.Partitions = append(ft.Partitions, fp)
		req.Topics = append(req.Topics, ft)
		resp, ok := c.call(c.follower(t), req, 60)
		if !ok {
			t.Fatalf("%s: no answer", tc.topic)
		}
		p := wire(t, resp).(*kmsg.FetchResponse).Topics[0].Partitions[0]
		if p.ErrorCode != tc.code || (p.AbortedTransactions != nil) != tc.empty {
			t.Errorf("%s: error %d, AbortedTransactions %#v; want error %d, empty list %v", tc.topic, p.ErrorCode, p.AbortedTransactions, tc.code, tc.empty)
		}
	}
}

// OffsetForLeaderEpoch as Kafka's LeaderEpochFileCache.endOffsetFor
// answers it: the current epoch ends at the log end, one from the future
// (or -1) is UNDEFINED (-1, -1), and one older than the log's first
// epoch is answered as itself, ending where the first one starts.
func TestOffsetForLeaderEpochAsKafka(t *testing.T) {
	c := newResponseCluster(t)
	leader := c.leaderOf("t", 0)
	for range 3 {
		req := produceRequest(9, "t", oneRecord("a"))
		if r, ok := c.call(leader, req, 60); !ok || r.(*kmsg.ProduceResponse).Topics[0].Partitions[0].ErrorCode != 0 {
			t.Fatalf("produce: %v %+v", ok, r)
		}
	}
	ask := func(epoch int32) kmsg.OffsetForLeaderEpochResponseTopicPartition {
		req := kmsg.NewPtrOffsetForLeaderEpochRequest()
		req.SetVersion(4)
		req.ReplicaID = -1
		rt := kmsg.NewOffsetForLeaderEpochRequestTopic()
		rt.Topic = "t"
		rp := kmsg.NewOffsetForLeaderEpochRequestTopicPartition()
		rp.CurrentLeaderEpoch, rp.LeaderEpoch = -1, epoch
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		resp, ok := c.call(leader, req, 60)
		if !ok {
			t.Fatalf("OffsetForLeaderEpoch %d: no answer", epoch)
		}
		return wire(t, resp).(*kmsg.OffsetForLeaderEpochResponse).Topics[0].Partitions[0]
	}
	cur := ask(1 << 20)
	if cur.ErrorCode != 0 || cur.LeaderEpoch != -1 || cur.EndOffset != -1 {
		t.Fatalf("an epoch from the future: %+v, want -1, -1", cur)
	}
	var term int32
	for e := int32(1); e < 100; e++ {
		if r := ask(e); r.EndOffset == 3 && r.LeaderEpoch == e {
			term = e
			break
		}
	}
	if term == 0 {
		t.Fatal("no epoch ends at the log end (3)")
	}
	for _, tc := range []struct {
		asked, epoch int32
		end          int64
	}{
		{term + 1, -1, -1},
		{-1, -1, -1},
		{0, 0, 0}, // older than the first epoch: itself, to the first's start
	} {
		if r := ask(tc.asked); r.ErrorCode != 0 || r.LeaderEpoch != tc.epoch || r.EndOffset != tc.end {
			t.Errorf("asked %d (current %d): epoch %d end %d, want %d %d", tc.asked, term, r.LeaderEpoch, r.EndOffset, tc.epoch, tc.end)
		}
	}
}

// produceRequest is a Produce at version v, acks=all, of records to
// partition 0 of topic.
func produceRequest(v int16, topic string, records []byte) *kmsg.ProduceRequest {
	req := kmsg.NewPtrProduceRequest()
	req.SetVersion(v)
	req.Acks, req.TimeoutMillis = -1, 5000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Records = records
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return req
}

// oneRecord is a batch of one record with value v and no producer.
func oneRecord(v string) []byte {
	return batch.Build(batch.BuildOptions{ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1}, []batch.Record{{Value: []byte(v)}})
}
