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
		req := kmsg.NewPtrProduceRequest()
		req.SetVersion(v)
		req.Acks, req.TimeoutMillis = -1, 5000
		pt := kmsg.NewProduceRequestTopic()
		pt.Topic = "t"
		pp := kmsg.NewProduceRequestTopicPartition()
		pp.Records = batch.Build(batch.BuildOptions{ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1}, []batch.Record{{Value: []byte("a")}})
		pt.Partitions = append(pt.Partitions, pp)
		req.Topics = append(req.Topics, pt)
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
