package main

// Shared helpers for the client-compatibility tests: each test starts its
// own 3-broker dev cluster in this process on loopback ephemeral ports.

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gregor-streaming/gregor/engine/runtime"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// testWaitMax bounds every wait for the cluster; reaching it fails the
// test instead of hanging it. Nothing asserts on time.
const testWaitMax = 60 * time.Second

// liveCluster is a dev cluster started for one test.
type liveCluster struct {
	t     *testing.T
	nodes []*runtime.Node // index id-1
}

// startLiveCluster runs startDev with port base 0 and t.TempDir() data.
// Topic auto-creation is off, as in gregor serve's default, so unknown
// topics stay unknown.
func startLiveCluster(t *testing.T, tune ...func(*devOptions)) *liveCluster {
	t.Helper()
	if testing.Short() {
		t.Skip("starts a 3-broker cluster")
	}
	o := devOptions{brokers: 3, data: t.TempDir()}
	for _, f := range tune {
		f(&o)
	}
	nodes, err := startDev(o, nil, func(id int32) func(string, ...any) {
		return func(f string, a ...any) { t.Logf("broker %d: "+f, append([]any{id}, a...)...) }
	})
	if err != nil {
		t.Fatal(err)
	}
	c := &liveCluster{t: t, nodes: nodes}
	t.Cleanup(func() {
		if err := stopDev(nodes); err != nil {
			t.Logf("stopping the cluster: %v", err)
		}
	})
	return c
}

// seeds are the brokers' Kafka addresses, broker 1 first.
func (c *liveCluster) seeds() []string {
	var s []string
	for _, n := range c.nodes {
		s = append(s, n.KafkaAddr())
	}
	return s
}

// stop stops broker id (1-based), as a crash would from the clients' side.
func (c *liveCluster) stop(id int32) {
	c.t.Helper()
	if err := c.nodes[id-1].Stop(); err != nil {
		c.t.Logf("stop broker %d: %v", id, err)
	}
}

func (c *liveCluster) client(opts ...kgo.Opt) *kgo.Client {
	c.t.Helper()
	opts = append([]kgo.Opt{
		kgo.SeedBrokers(c.seeds()...),
		kgo.RetryBackoffFn(func(int) time.Duration { return 50 * time.Millisecond }),
		kgo.MetadataMinAge(50 * time.Millisecond),
	}, opts...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(cl.Close)
	return cl
}

// waitFor polls cond until it holds, failing the test after testWaitMax.
func waitFor(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(testWaitMax)
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s: %s", what, state)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// createTopic creates a topic and waits until every partition has a
// leader.
func createTopic(t *testing.T, cl *kgo.Client, topic string, partitions int32, rf int16) {
	t.Helper()
	waitFor(t, "topic creation", func() (bool, string) {
		req := kmsg.NewPtrCreateTopicsRequest()
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic, rt.NumPartitions, rt.ReplicationFactor = topic, partitions, rf
		req.Topics = append(req.Topics, rt)
		req.TimeoutMillis = 5000
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			return false, err.Error()
		}
		err = kerr.ErrorForCode(resp.Topics[0].ErrorCode)
		return err == nil || err == kerr.TopicAlreadyExists, fmt.Sprint(err)
	})
	leaders(t, cl, topic, int(partitions))
}

// partitionInfo is one partition's leader and epoch from Metadata.
type partitionInfo struct {
	leader, epoch int32
	replicas      []int32
}

// leaders returns every partition's leader, once all have one.
func leaders(t *testing.T, cl *kgo.Client, topic string, partitions int) map[int32]partitionInfo {
	t.Helper()
	out := map[int32]partitionInfo{}
	waitFor(t, "partition leaders of "+topic, func() (bool, string) {
		clear(out)
		resp, err := metadata(context.Background(), cl, []string{topic})
		if err != nil {
			return false, err.Error()
		}
		for _, tp := range resp.Topics {
			for _, p := range tp.Partitions {
				if p.ErrorCode == 0 && p.Leader > 0 {
					out[p.Partition] = partitionInfo{leader: p.Leader, epoch: p.LeaderEpoch, replicas: p.Replicas}
				}
			}
		}
		return len(out) == partitions, fmt.Sprintf("leaders %v", out)
	})
	return out
}

// lines splits output into non-empty lines.
func lines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if l != "" {
			out = append(out, l)
		}
	}
	return out
}

// emptyFetchHasNullRecords fetches partition 0 of topic at its high
// watermark (no new records, no wait) from its leader and reports whether
// the answer's Records field was null on the wire rather than empty.
func emptyFetchHasNullRecords(t *testing.T, cl *kgo.Client, topic string, partitions int) bool {
	t.Helper()
	leader := leaders(t, cl, topic, partitions)[0].leader
	resp := fetchOnce(t, cl, leader, topic, 0, 0, -1)
	p := resp.Topics[0].Partitions[0]
	if p.ErrorCode != 0 {
		t.Fatalf("fetch %s-0 at 0: %v", topic, kerr.ErrorForCode(p.ErrorCode))
	}
	if p.HighWatermark != 0 {
		t.Fatalf("fetch %s-0: high watermark %d, want an empty partition", topic, p.HighWatermark)
	}
	return p.RecordBatches == nil
}

// fetchOnce sends one Fetch for topic/partition at offset to broker id,
// with no long poll, and returns the response.
func fetchOnce(t *testing.T, cl *kgo.Client, id int32, topic string, partition int32, offset int64, epoch int32) *kmsg.FetchResponse {
	t.Helper()
	req := kmsg.NewPtrFetchRequest()
	req.ReplicaID, req.MaxWaitMillis, req.MinBytes, req.MaxBytes = -1, 0, 0, 1<<20
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes, rp.CurrentLeaderEpoch = partition, offset, 1<<20, epoch
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := req.RequestWith(ctx, cl.Broker(int(id)))
	if err != nil {
		t.Fatalf("fetch %s-%d from broker %d: %v", topic, partition, id, err)
	}
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		t.Fatalf("fetch answered %d topics, want 1 with 1 partition", len(resp.Topics))
	}
	return resp
}
