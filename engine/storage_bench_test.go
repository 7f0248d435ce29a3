package engine

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/gregor-streaming/gregor/engine/batch"
	"github.com/gregor-streaming/gregor/engine/segment"
	"github.com/gregor-streaming/gregor/raftlog/etcdwal"
	"github.com/gregor-streaming/gregor/raftlog/vfs"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// diskCluster is a testCluster of n brokers on the real disk (etcd WAL,
// OS segment files), stepped in process.
func diskCluster(b *testing.B, n int) (*testCluster, string) {
	dir := b.TempDir()
	c := &testCluster{t: &testing.T{}, cut: map[[2]int32]bool{}, responses: map[uint64]kmsg.Response{}, answered: map[uint64]bool{}}
	for i := 1; i <= n; i++ {
		c.brokers = append(c.brokers, &testBroker{id: int32(i)})
	}
	for _, tb := range c.brokers {
		diskStart(b, c, tb, dir)
	}
	c.stabilize()
	return c, dir
}

func diskStart(b *testing.B, c *testCluster, tb *testBroker, dir string) {
	bdir := filepath.Join(dir, fmt.Sprint(tb.id))
	w, err := etcdwal.Open(filepath.Join(bdir, "wal"))
	if err != nil {
		b.Fatal(err)
	}
	tb.wal, tb.fs = w, vfs.OS(bdir)
	c.startBroker(tb)
}

func diskStop(tb *testBroker) {
	tb.b.Close()
	tb.wal.Close()
	tb.down = true
}

// megabyteBatch is one record batch of about 900 KB.
func megabyteBatch() []byte {
	recs := make([]batch.Record, 9)
	for i := range recs {
		recs[i] = batch.Record{Value: make([]byte, 100<<10)}
	}
	return batch.Build(batch.BuildOptions{ProducerID: batch.NoProducerID, ProducerEpoch: -1, BaseSequence: -1}, recs)
}

// produceMB appends n batches of about 900 KB to each partition of topic,
// through its leader.
func produceMB(b *testing.B, c *testCluster, topic string, parts, n int) {
	records := megabyteBatch()
	for range n {
		for p := range parts {
			req := kmsg.NewPtrProduceRequest()
			req.Acks, req.TimeoutMillis = -1, 60_000
			rp := kmsg.NewProduceRequestTopicPartition()
			rp.Partition, rp.Records = int32(p), records
			req.Topics = []kmsg.ProduceRequestTopic{{Topic: topic, Partitions: []kmsg.ProduceRequestTopicPartition{rp}}}
			resp, ok := c.call(c.leaderOf(topic, int32(p)), req, 1000)
			if !ok || resp.(*kmsg.ProduceResponse).Topics[0].Partitions[0].ErrorCode != 0 {
				b.Fatalf("produce to %s-%d: %v %+v", topic, p, ok, resp)
			}
		}
	}
}

func createDiskTopic(b *testing.B, c *testCluster, name string, parts int32, rf int16) {
	create := kmsg.NewPtrCreateTopicsRequest()
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = name, parts, rf
	create.Topics = append(create.Topics, rt)
	if resp, ok := c.call(1, create, 100); !ok || resp.(*kmsg.CreateTopicsResponse).Topics[0].ErrorCode != 0 {
		b.Fatalf("create topic: %v %+v", ok, resp)
	}
	c.tick(30)
}

// BenchmarkStateTransfer measures how fast a follower that missed a
// partition's whole log copies it from a peer (repair.go: checkpoint,
// then chunks of SnapshotChunkBytes, each CRC-checked, into a new state
// directory on the real disk). Three brokers on the real disk, stepped in
// process, so the figure is the state-transfer path's own cost: reading
// the segments, encoding, validating, writing and syncing, not a network.
//
//	go test -run '^$' -bench StateTransfer -benchtime 3x ./engine/
func BenchmarkStateTransfer(b *testing.B) {
	const batches = 64 // about 58 MB
	var bytes int64
	var elapsed time.Duration
	for range b.N {
		c, dir := diskCluster(b, 3)
		createDiskTopic(b, c, "t", 1, 3)
		lead := c.leaderOf("t", 0)
		victim := c.brokers[0]
		if victim.id == lead {
			victim = c.brokers[1]
		}
		diskStop(victim)
		produceMB(b, c, "t", 1, batches)
		for _, tb := range c.brokers {
			if !tb.down {
				if err := tb.b.Checkpoint(); err != nil {
					b.Fatal(err)
				}
			}
		}
		want := c.part(lead).log.EndOffset()
		bytes = 0
		_ = c.part(lead).log.Batches(0, func(bb []byte, _ segment.BatchMeta) error { bytes += int64(len(bb)); return nil })
		start := time.Now()
		diskStart(b, c, victim, dir)
		for i := 0; c.part(victim.id) == nil || c.part(victim.id).lost || c.part(victim.id).log.EndOffset() < want; i++ {
			if i > 10_000 {
				b.Fatal("the follower did not catch up")
			}
			c.tick(1)
		}
		elapsed += time.Since(start)
		for _, tb := range c.brokers {
			diskStop(tb)
		}
	}
	b.ReportMetric(float64(bytes)*float64(b.N)/elapsed.Seconds()/1e6, "MB/s")
	b.ReportMetric(float64(bytes)/1e6, "MB")
}

// BenchmarkRecovery256 measures a broker's restart with 256 partitions
// holding 1 GB in all (about 4 MB each), after a checkpoint: opening the
// WAL image, every partition's state directory (checkpoint, segments with
// their indexes) and bringing every raft group back.
//
//	go test -run '^$' -bench Recovery256 -benchtime 1x -timeout 30m ./engine/
func BenchmarkRecovery256(b *testing.B) {
	const parts = 256
	const batchesPer = 5 // about 4.5 MB a partition, 1.15 GB in all
	var elapsed time.Duration
	for range b.N {
		c, dir := diskCluster(b, 1)
		createDiskTopic(b, c, "t", parts, 1)
		produceMB(b, c, "t", parts, batchesPer)
		tb := c.brokers[0]
		if err := tb.b.Checkpoint(); err != nil {
			b.Fatal(err)
		}
		diskStop(tb)
		start := time.Now()
		diskStart(b, c, tb, dir)
		if n := len(tb.b.parts); n != parts {
			b.Fatalf("%d partitions after restart, want %d", n, parts)
		}
		elapsed += time.Since(start)
		diskStop(tb)
	}
	b.ReportMetric(elapsed.Seconds()/float64(b.N), "s/restart")
}
