package engine

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/gregor-streaming/gregor/engine/batch"
	"github.com/gregor-streaming/gregor/raftlog/etcdwal"
	"github.com/gregor-streaming/gregor/raftlog/vfs"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// BenchmarkClusterProduce measures committed records per second through a
// 3-broker cluster on the real disk: every broker has its own etcd WAL
// (fsync on every cycle) and its own segment files. Each iteration sends,
// to every partition's leader, one produce request holding one batch of
// 100 records of 100 bytes per partition it leads, acks=all, and waits for
// every answer. The brokers are stepped on one goroutine, in turn, with
// in-process message delivery: the numbers measure the storage path and
// the group commit (one fsync per broker per cycle, however many
// partitions), not the network or parallelism across brokers.
//
//	go test -run '^$' -bench ClusterProduce -benchtime 30x -count 5 ./engine/
func BenchmarkClusterProduce(b *testing.B) {
	for _, parts := range []int{1, 16, 256} {
		b.Run(fmt.Sprintf("partitions=%d", parts), func(b *testing.B) {
			benchClusterProduce(b, parts)
		})
	}
}

const (
	benchRecordBytes   = 100
	benchBatchRecords  = 100
	benchBrokers       = 3
	benchReplicas      = 3
	benchElectionTicks = 10
)

func benchClusterProduce(b *testing.B, parts int) {
	dir := b.TempDir()
	c := &testCluster{t: &testing.T{}, cut: map[[2]int32]bool{}, responses: map[uint64]kmsg.Response{}, answered: map[uint64]bool{}}
	for i := 1; i <= benchBrokers; i++ {
		bdir := filepath.Join(dir, fmt.Sprint(i))
		w, err := etcdwal.Open(filepath.Join(bdir, "wal"))
		if err != nil {
			b.Fatal(err)
		}
		c.brokers = append(c.brokers, &testBroker{id: int32(i), wal: w, fs: vfs.OS(bdir)})
	}
	for _, tb := range c.brokers {
		c.startBroker(tb)
	}
	defer func() {
		for _, tb := range c.brokers {
			tb.b.Close()
			tb.wal.Close()
		}
	}()
	c.stabilize()
	create := kmsg.NewPtrCreateTopicsRequest()
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = "bench", int32(parts), benchReplicas
	create.Topics = append(create.Topics, rt)
	if resp, ok := c.call(1, create, 100); !ok || resp.(*kmsg.CreateTopicsResponse).Topics[0].ErrorCode != 0 {
		b.Fatalf("create topic: %v %+v", ok, resp)
	}
	c.tick(3 * benchElectionTicks)

	value := make([]byte, benchRecordBytes)
	recs := make([]batch.Record, benchBatchRecords)
	for i := range recs {
		recs[i] = batch.Record{Value: value}
	}
	records := batch.Build(batch.BuildOptions{ProducerID: batch.NoProducerID, ProducerEpoch: -1, BaseSequence: -1}, recs)

	b.SetBytes(int64(parts * benchBatchRecords * benchRecordBytes))
	b.ResetTimer()
	for range b.N {
		// One request per leader, holding every partition it leads.
		byLeader := map[int32]*kmsg.ProduceRequest{}
		for p := range parts {
			l := c.leaderOf("bench", int32(p))
			if l == 0 {
				b.Fatalf("partition %d has no leader", p)
			}
			req := byLeader[l]
			if req == nil {
				req = kmsg.NewPtrProduceRequest()
				req.Acks, req.TimeoutMillis = -1, 30_000
				req.Topics = []kmsg.ProduceRequestTopic{{Topic: "bench"}}
				byLeader[l] = req
			}
			rp := kmsg.NewProduceRequestTopicPartition()
			rp.Partition, rp.Records = int32(p), records
			req.Topics[0].Partitions = append(req.Topics[0].Partitions, rp)
		}
		var toks []uint64
		for l := int32(1); l <= benchBrokers; l++ {
			if req := byLeader[l]; req != nil {
				c.token++
				toks = append(toks, c.token)
				c.broker(l).b.Handle(c.token, req)
			}
		}
		c.stabilize()
		for _, tok := range toks {
			if !c.answered[tok] {
				b.Fatalf("produce %d not answered after stabilize", tok)
			}
			for _, pr := range c.responses[tok].(*kmsg.ProduceResponse).Topics[0].Partitions {
				if pr.ErrorCode != 0 {
					b.Fatalf("partition %d: error %d", pr.Partition, pr.ErrorCode)
				}
			}
			delete(c.responses, tok)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N*parts*benchBatchRecords)/b.Elapsed().Seconds(), "records/s")
}
