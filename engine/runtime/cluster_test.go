package runtime

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gregor-streaming/gregor/engine"
	"github.com/gregor-streaming/gregor/engine/segment"
	"github.com/gregor-streaming/gregor/raftlog"
	"github.com/gregor-streaming/gregor/raftlog/vfs"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	raftpb "go.etcd.io/raft/v3/raftpb"
)

// Test-cluster timing: short ticks so elections finish quickly, with an
// election timeout long enough not to flap on a loaded machine.
const (
	testTickMillis    = 10
	testElectionTicks = 20
	// testWaitMax bounds every wait for the cluster to converge; reaching
	// it fails the test instead of hanging it. Nothing asserts on time.
	testWaitMax = 60 * time.Second
)

// cluster is n real nodes on loopback ephemeral ports.
type cluster struct {
	t     *testing.T
	cfgs  map[int32]Config
	nodes map[int32]*Node
}

func startCluster(t *testing.T, n int) *cluster {
	t.Helper()
	return startClusterWith(t, n, clusterOptions{})
}

// clusterOptions adjust the nodes of a test cluster.
type clusterOptions struct {
	// config, if set, adjusts broker id's configuration before Listen.
	config func(id int32, cfg *Config)
	// node, if set, sees broker id's node after Listen and before Run
	// (to set peerHook).
	node func(id int32, n *Node)
}

func startClusterWith(t *testing.T, n int, opts clusterOptions) *cluster {
	t.Helper()
	c := &cluster{t: t, cfgs: map[int32]Config{}, nodes: map[int32]*Node{}}
	var brokers []engine.BrokerInfo
	peers := map[int32]string{}
	for i := range int32(n) {
		id := i + 1
		cfg := Config{
			Broker: engine.Config{
				ID:            id,
				TickMillis:    testTickMillis,
				ElectionTicks: testElectionTicks,
			},
			DataDir:     filepath.Join(t.TempDir(), strconv.Itoa(int(id))),
			KafkaListen: "127.0.0.1:0",
			PeerListen:  "127.0.0.1:0",
			Logf:        func(f string, a ...any) { t.Logf("b%d: "+f, append([]any{id}, a...)...) },
		}
		if opts.config != nil {
			opts.config(id, &cfg)
		}
		node, err := Listen(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if opts.node != nil {
			opts.node(id, node)
		}
		host, port, _ := net.SplitHostPort(node.KafkaAddr())
		p, _ := strconv.Atoi(port)
		brokers = append(brokers, engine.BrokerInfo{ID: id, Host: host, Port: int32(p)})
		peers[id] = node.PeerAddr()
		c.nodes[id] = node
	}
	for id, node := range c.nodes {
		node.SetCluster(brokers)
		node.SetPeers(peers)
		cfg := node.cfg
		cfg.KafkaListen, cfg.PeerListen, cfg.Peers = node.KafkaAddr(), node.PeerAddr(), peers
		c.cfgs[id] = cfg
	}
	for _, id := range c.ids() {
		if err := c.nodes[id].Run(); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(c.stopAll)
	return c
}

func (c *cluster) ids() []int32 {
	var ids []int32
	for id := range c.cfgs {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

func (c *cluster) kafkaAddrs() []string {
	var addrs []string
	for _, id := range c.ids() {
		addrs = append(addrs, c.cfgs[id].KafkaListen)
	}
	return addrs
}

func (c *cluster) stop(id int32) {
	c.t.Helper()
	if err := c.nodes[id].Stop(); err != nil {
		c.t.Fatalf("stop broker %d: %v", id, err)
	}
	delete(c.nodes, id)
}

// restart starts a stopped broker again from its data directory on the
// same addresses, counting the raft snapshots it receives.
func (c *cluster) restart(id int32, snapshots *atomic.Int64) {
	c.t.Helper()
	n, err := Listen(c.cfgs[id])
	if err != nil {
		c.t.Fatalf("restart broker %d: %v", id, err)
	}
	n.peerHook = func(payload []byte) {
		_, envs, err := raftlog.DecodeBatch(payload)
		if err != nil {
			return
		}
		for _, e := range envs {
			if e.Msg.GetType() == raftpb.MsgSnap {
				snapshots.Add(1)
			}
		}
	}
	if err := n.Run(); err != nil {
		c.t.Fatalf("restart broker %d: %v", id, err)
	}
	c.nodes[id] = n
}

func (c *cluster) stopAll() {
	for _, id := range c.ids() {
		if n, ok := c.nodes[id]; ok {
			if err := n.Stop(); err != nil {
				c.t.Errorf("stop broker %d: %v", id, err)
			}
			delete(c.nodes, id)
		}
	}
}

// waitFor polls cond until it holds, failing the test after testWaitMax.
func waitFor(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(testWaitMax)
	var last string
	for {
		ok, state := cond()
		if ok {
			return
		}
		last = state
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s: %s", what, last)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func newClient(t *testing.T, c *cluster, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	opts = append([]kgo.Opt{
		kgo.SeedBrokers(c.kafkaAddrs()...),
		kgo.RetryBackoffFn(func(int) time.Duration { return 50 * time.Millisecond }),
		kgo.MetadataMinAge(50 * time.Millisecond),
	}, opts...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

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
}

// leaders returns each partition's leader from a Metadata request, once
// every partition of topic has one.
func leaders(t *testing.T, cl *kgo.Client, topic string, partitions int) map[int32]int32 {
	t.Helper()
	out := map[int32]int32{}
	waitFor(t, "partition leaders", func() (bool, string) {
		req := kmsg.NewPtrMetadataRequest()
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr(topic)
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(context.Background(), cl)
		if err != nil {
			return false, err.Error()
		}
		clear(out)
		for _, tp := range resp.Topics {
			for _, p := range tp.Partitions {
				if p.ErrorCode == 0 && p.Leader >= 0 {
					out[p.Partition] = p.Leader
				}
			}
		}
		return len(out) == partitions, fmt.Sprintf("leaders %v", out)
	})
	return out
}

// acked is what the producer was told: value by offset, per partition.
type acked map[int32]map[int64]string

// produce sends n keyed records starting at number from, acks=all and
// idempotent (kgo's defaults), and records every acknowledgement.
func produce(t *testing.T, cl *kgo.Client, topic string, from, n int, into acked) {
	t.Helper()
	var mu sync.Mutex
	var wg sync.WaitGroup
	var firstErr error
	ctx, cancel := context.WithTimeout(context.Background(), testWaitMax)
	defer cancel()
	for i := from; i < from+n; i++ {
		r := &kgo.Record{Topic: topic, Key: fmt.Appendf(nil, "k%d", i), Value: fmt.Appendf(nil, "v%d", i)}
		wg.Add(1)
		cl.Produce(ctx, r, func(r *kgo.Record, err error) {
			defer wg.Done()
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if firstErr == nil {
					firstErr = err
				}
				return
			}
			if into[r.Partition] == nil {
				into[r.Partition] = map[int64]string{}
			}
			if prev, ok := into[r.Partition][r.Offset]; ok {
				t.Errorf("partition %d offset %d acknowledged twice: %s and %s", r.Partition, r.Offset, prev, r.Value)
			}
			into[r.Partition][r.Offset] = string(r.Value)
		})
	}
	wg.Wait()
	if firstErr != nil {
		t.Fatalf("produce: %v", firstErr)
	}
}

// consumeAll reads every partition of topic from the start until it has
// as many records as were acknowledged, then checks each partition holds
// exactly the acknowledged records, once each, in offset order.
func consumeAll(t *testing.T, c *cluster, topic string, want acked) {
	t.Helper()
	total := 0
	for _, m := range want {
		total += len(m)
	}
	cl := newClient(t, c, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	got := map[int32][]*kgo.Record{}
	ctx, cancel := context.WithTimeout(context.Background(), testWaitMax)
	defer cancel()
	n := 0
	for n < total {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d of %d records before giving up", n, total)
		}
		fs.EachError(func(topic string, p int32, err error) { t.Logf("fetch %s-%d: %v", topic, p, err) })
		fs.EachRecord(func(r *kgo.Record) {
			got[r.Partition] = append(got[r.Partition], r)
			n++
		})
	}
	for p, m := range want {
		offsets := make([]int64, 0, len(m))
		for o := range m {
			offsets = append(offsets, o)
		}
		slices.Sort(offsets)
		recs := got[p]
		if len(recs) != len(offsets) {
			t.Errorf("partition %d: consumed %d records, %d acknowledged", p, len(recs), len(offsets))
		}
		for i := range min(len(recs), len(offsets)) {
			if recs[i].Offset != offsets[i] || string(recs[i].Value) != m[offsets[i]] {
				t.Fatalf("partition %d record %d: got %s at offset %d, want %s at %d",
					p, i, recs[i].Value, recs[i].Offset, m[offsets[i]], offsets[i])
			}
		}
	}
	for p := range got {
		if _, ok := want[p]; !ok {
			t.Errorf("partition %d: %d records consumed, none acknowledged", p, len(got[p]))
		}
	}
}

// highWatermarks asks the partition leaders (ListOffsets, latest).
func highWatermarks(cl *kgo.Client, topic string, partitions int32) (map[int32]int64, error) {
	req := kmsg.NewPtrListOffsetsRequest()
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = topic
	for p := range partitions {
		rp := kmsg.NewListOffsetsRequestTopicPartition()
		rp.Partition, rp.Timestamp = p, -1
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(context.Background(), cl)
	if err != nil {
		return nil, err
	}
	out := map[int32]int64{}
	for _, tp := range resp.Topics {
		for _, p := range tp.Partitions {
			if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
				return nil, fmt.Errorf("partition %d: %w", p.Partition, err)
			}
			out[p.Partition] = p.Offset
		}
	}
	return out, nil
}

// diskLogEnds copies a live broker's partition directories and opens the
// copies with the segment package (recovering a tail torn by the copy),
// returning every partition log's end offset, sorted.
//
// NB: the engine does not export which raft group is which topic
// partition, so this compares the multiset of log ends rather than
// partition 0's alone; with every partition replicated on every broker
// that is as strong.
func diskLogEnds(t *testing.T, dataDir string) []int64 {
	t.Helper()
	src := filepath.Join(dataDir, "partitions")
	dst := t.TempDir()
	if err := os.CopyFS(dst, os.DirFS(src)); err != nil {
		return nil // a segment rolled or was removed mid-copy; try again
	}
	entries, err := os.ReadDir(dst)
	if err != nil {
		t.Fatal(err)
	}
	var ends []int64
	for _, e := range entries {
		// The live state directory is named by the first line of CURRENT.
		cur, err := os.ReadFile(filepath.Join(dst, e.Name(), "CURRENT"))
		if err != nil {
			t.Logf("read CURRENT of %s: %v", e.Name(), err)
			return nil
		}
		state, _, _ := strings.Cut(string(cur), "\n")
		l, err := segment.Open(vfs.OS(dst), e.Name()+"/"+state, segment.Options{})
		if err != nil {
			t.Logf("open copy of %s: %v", e.Name(), err)
			return nil
		}
		ends = append(ends, l.EndOffset())
		l.Close()
	}
	slices.Sort(ends)
	return ends
}

func TestClusterFailoverAndCatchUp(t *testing.T) {
	testFailover(t, false)
}

func TestClusterCatchUpBySnapshot(t *testing.T) {
	testFailover(t, true)
}

// testFailover is the story of the 3-broker test: produce, stop the
// leader of partition 0, produce more (the client retries on the new
// leader), consume everything, restart the stopped broker and watch it
// catch up; with checkpoint, the survivors first checkpoint their WALs so
// the stopped broker's log is behind what they still hold and it must be
// sent a snapshot.
func testFailover(t *testing.T, checkpoint bool) {
	if testing.Short() {
		t.Skip("starts a 3-broker cluster")
	}
	const (
		topic      = "orders"
		partitions = 6
		batch      = 600
	)
	c := startCluster(t, 3)
	cl := newClient(t, c, kgo.DefaultProduceTopic(topic))
	createTopic(t, cl, topic, partitions, 3)
	leaders(t, cl, topic, partitions)

	want := acked{}
	produce(t, cl, topic, 0, batch, want)

	victim := leaders(t, cl, topic, partitions)[0]
	t.Logf("stopping broker %d, leader of partition 0", victim)
	c.stop(victim)

	produce(t, cl, topic, batch, batch, want)
	consumeAll(t, c, topic, want)

	if checkpoint {
		for _, id := range c.ids() {
			if n, ok := c.nodes[id]; ok {
				var err error
				if derr := n.Do(func(b *engine.Broker) { err = b.Checkpoint() }); derr != nil {
					t.Fatal(derr)
				}
				if err != nil {
					t.Fatalf("checkpoint broker %d: %v", id, err)
				}
			}
		}
	}

	t.Logf("restarting broker %d", victim)
	var snapshots atomic.Int64
	c.restart(victim, &snapshots)
	waitFor(t, fmt.Sprintf("broker %d to catch up", victim), func() (bool, string) {
		hw, err := highWatermarks(cl, topic, partitions)
		if err != nil {
			return false, err.Error()
		}
		var wantEnds []int64
		for _, o := range hw {
			wantEnds = append(wantEnds, o)
		}
		slices.Sort(wantEnds)
		got := diskLogEnds(t, c.cfgs[victim].DataDir)
		return slices.Equal(got, wantEnds), fmt.Sprintf("high watermarks %v, broker %d log ends %v", hw, victim, got)
	})
	t.Logf("broker %d caught up after receiving %d raft snapshots", victim, snapshots.Load())
	if checkpoint && snapshots.Load() == 0 {
		t.Errorf("broker %d caught up without a snapshot after the survivors checkpointed", victim)
	}
	if hw, err := highWatermarks(cl, topic, partitions); err == nil && hw[0] != int64(len(want[0])) {
		t.Errorf("partition 0 high watermark %d, %d records acknowledged", hw[0], len(want[0]))
	}
}
