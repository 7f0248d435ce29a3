package engine

import (
	"fmt"
	"testing"
	"time"

	"github.com/gregor-streaming/gregor/engine/batch"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Benchmarks of the log's life on the real disk (3 brokers stepped in one
// process, etcd WAL with fsync, OS segment files):
//
//	go test -run '^$' -bench 'Cleaner|Retention10k|CompactedProduce' -benchtime 1x -count 5 ./engine/

// lifeCluster is a disk cluster whose leaders look for work to clean or
// retain at every tick.
func lifeCluster(b *testing.B) *testCluster {
	c := &testCluster{t: &testing.T{}, cut: map[[2]int32]bool{}, responses: map[uint64]kmsg.Response{}, answered: map[uint64]bool{}}
	c.tune = func(cfg *Config) { cfg.CleanerBackoffMs, cfg.RetentionCheckIntervalMs = 100, 100 }
	dir := b.TempDir()
	for i := 1; i <= benchBrokers; i++ {
		c.brokers = append(c.brokers, &testBroker{id: int32(i)})
	}
	for _, tb := range c.brokers {
		diskStart(b, c, tb, dir)
	}
	c.stabilize()
	b.Cleanup(func() {
		for _, tb := range c.brokers {
			if !tb.down {
				diskStop(tb)
			}
		}
	})
	return c
}

func createConfigured(b *testing.B, c *testCluster, name string, rf int16, configs map[string]string) {
	create := kmsg.NewPtrCreateTopicsRequest()
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = name, 1, rf
	for k, v := range configs {
		rt.Configs = append(rt.Configs, kmsg.CreateTopicsRequestTopicConfig{Name: k, Value: kmsg.StringPtr(v)})
	}
	create.Topics = append(create.Topics, rt)
	if resp, ok := c.call(1, create, 100); !ok || resp.(*kmsg.CreateTopicsResponse).Topics[0].ErrorCode != 0 {
		b.Fatalf("create topic %s: %v %+v", name, ok, resp)
	}
	c.tick(30)
}

func alterTopic(b *testing.B, c *testCluster, topic, name, value string) {
	req := kmsg.NewPtrIncrementalAlterConfigsRequest()
	rr := kmsg.NewIncrementalAlterConfigsRequestResource()
	rr.ResourceType, rr.ResourceName = kmsg.ConfigResourceTypeTopic, topic
	rr.Configs = []kmsg.IncrementalAlterConfigsRequestResourceConfig{{Name: name, Op: 0, Value: kmsg.StringPtr(value)}}
	req.Resources = append(req.Resources, rr)
	if resp, ok := c.call(1, req, 100); !ok || resp.(*kmsg.IncrementalAlterConfigsResponse).Resources[0].ErrorCode != 0 {
		b.Fatalf("alter %s %s=%s: %v %+v", topic, name, value, ok, resp)
	}
	c.tick(5)
}

// keyedBatch is benchBatchRecords records of benchRecordBytes values, keys
// drawn round-robin from keys distinct ones starting at *next.
func keyedBatch(next *int, keys int, codec int8) []byte {
	recs := make([]batch.Record, benchBatchRecords)
	for i := range recs {
		recs[i] = batch.Record{Key: fmt.Appendf(nil, "key-%06d", *next%keys), Value: make([]byte, benchRecordBytes)}
		*next++
	}
	b := batch.Build(batch.BuildOptions{ProducerID: batch.NoProducerID, ProducerEpoch: -1, BaseSequence: -1}, recs)
	if codec == batch.CompressionNone {
		return b
	}
	// Keep with every record and the codec in the header re-encodes the
	// batch compressed.
	h, _ := batch.ReadHeader(b)
	decoded, _ := batch.Records(b)
	h.Attributes |= int16(codec)
	out, err := batch.Keep(b, h, decoded, -1)
	if err != nil {
		panic(err)
	}
	return out
}

// produceTo appends n keyed batches to topic's partition 0.
func produceTo(b *testing.B, c *testCluster, topic string, n int, next *int, keys int, codec int8) {
	for range n {
		req := kmsg.NewPtrProduceRequest()
		req.Acks, req.TimeoutMillis = -1, 60_000
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Records = keyedBatch(next, keys, codec)
		req.Topics = []kmsg.ProduceRequestTopic{{Topic: topic, Partitions: []kmsg.ProduceRequestTopicPartition{rp}}}
		resp, ok := c.call(c.leaderOf(topic, 0), req, 1000)
		if !ok || resp.(*kmsg.ProduceResponse).Topics[0].Partitions[0].ErrorCode != 0 {
			b.Fatalf("produce to %s: %v %+v", topic, ok, resp)
		}
	}
}

// partitionOn is the replica of topic-0 on broker id.
func partitionOn(c *testCluster, id int32, topic string) *partition {
	tb := c.broker(id)
	pm, _ := tb.b.meta.partition(topic, 0)
	return tb.b.parts[pm.Group]
}

func logBytes(p *partition) (n int64) {
	for _, s := range p.log.Segments() {
		n += s.Size
	}
	return n
}

// BenchmarkCleaner measures the log cleaner: a compacted partition holds
// 20 MB of 100-byte records over 10,000 keys (each key written 20 times)
// in 1 MiB segments; cleaning is switched on and the cluster stepped until
// every replica finished the round. MB/s is the dirty log cleaned per
// second per replica (the three replicas clean in turn in this process,
// each on its own files, so the elapsed time covers all three).
func BenchmarkCleaner(b *testing.B) {
	for _, codec := range []int8{batch.CompressionNone, batch.CompressionSnappy} {
		b.Run(fmt.Sprintf("codec=%d", codec), func(b *testing.B) {
			var total time.Duration
			var cleaned int64
			for range b.N {
				c := lifeCluster(b)
				createConfigured(b, c, "c", benchReplicas, map[string]string{"segment.bytes": "1048576", "min.cleanable.dirty.ratio": "0.01"})
				next := 0
				produceTo(b, c, "c", 2000, &next, 10_000, codec)
				before := logBytes(partitionOn(c, 1, "c"))
				start := time.Now()
				alterTopic(b, c, "c", "cleanup.policy", "compact")
				for i := 0; ; i++ {
					c.tick(1)
					done := true
					for _, tb := range c.brokers {
						p := partitionOn(c, tb.id, "c")
						segs := p.log.Segments()
						done = done && p.cleanedTo >= segs[len(segs)-1].Base
					}
					if done {
						break
					}
					if i > 10_000 {
						b.Fatal("the round did not finish")
					}
				}
				total += time.Since(start)
				after := logBytes(partitionOn(c, 1, "c"))
				cleaned += before
				b.ReportMetric(float64(after)/float64(before), "kept-ratio")
			}
			b.ReportMetric(float64(cleaned)/1e6/(total.Seconds()/benchReplicas), "MB/s/replica")
			b.ReportMetric(float64(b.N*2000*benchBatchRecords)/(total.Seconds()/benchReplicas), "records/s/replica")
		})
	}
}

// BenchmarkCompactedProduce compares produce throughput (keyed 100-record
// batches, acks=all) to a compacted topic while the cleaner runs, to a
// compacted topic before cleaning is due, and to a delete-policy topic:
// what the key check at produce and the cleaner's steps on the raft loop
// cost writers.
func BenchmarkCompactedProduce(b *testing.B) {
	for _, mode := range []string{"delete", "compact-idle", "compact-cleaning"} {
		b.Run(mode, func(b *testing.B) {
			c := lifeCluster(b)
			cfg := map[string]string{"segment.bytes": "1048576", "min.cleanable.dirty.ratio": "0.01"}
			switch mode {
			case "compact-idle":
				cfg["cleanup.policy"], cfg["min.cleanable.dirty.ratio"] = "compact", "1"
			case "compact-cleaning":
				cfg["cleanup.policy"] = "compact"
			}
			createConfigured(b, c, "p", benchReplicas, cfg)
			next := 0
			b.SetBytes(benchBatchRecords * benchRecordBytes)
			b.ResetTimer()
			// A tick (100 ms of the test clock) every ten requests, so the
			// leader's cleaner runs while the producer writes.
			for i := 0; i < b.N; i += 10 {
				produceTo(b, c, "p", min(10, b.N-i), &next, 1000, batch.CompressionNone)
				c.tick(1)
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N*benchBatchRecords)/b.Elapsed().Seconds(), "records/s")
			b.ReportMetric(float64(partitionOn(c, 1, "p").cleanedTo), "cleaned-to")
		})
	}
}

// BenchmarkRetention10k measures retention dropping 10,000 segments: a
// partition (one replica: three would hold 30,000 open segment files in
// this one process) holds 10,000 one-batch segments; retention.bytes is
// lowered and the cluster stepped until the log starts at its active
// segment.
func BenchmarkRetention10k(b *testing.B) {
	var total time.Duration
	for range b.N {
		c := lifeCluster(b)
		createConfigured(b, c, "r", 1, map[string]string{"segment.bytes": "100"})
		next := 0
		produceTo(b, c, "r", 10_000, &next, 1<<30, batch.CompressionNone)
		if n := len(partitionOn(c, c.leaderOf("r", 0), "r").log.Segments()); n < 10_000 {
			b.Fatalf("%d segments", n)
		}
		start := time.Now()
		alterTopic(b, c, "r", "retention.bytes", "1")
		for i := 0; ; i++ {
			c.tick(1)
			if p := partitionOn(c, c.leaderOf("r", 0), "r"); len(p.log.Segments()) == 1 {
				break
			}
			if i > 10_000 {
				b.Fatal("retention did not finish")
			}
		}
		total += time.Since(start)
	}
	b.ReportMetric(total.Seconds()/float64(b.N), "s/10k-segments")
}
