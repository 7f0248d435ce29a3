package runtime

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/gregor-streaming/gregor/engine"
	"github.com/gregor-streaming/gregor/engine/batch"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestDiskFullOnRealFileSystem runs one broker on a small tmpfs and fills
// the disk under it. Produce gets KAFKA_STORAGE_ERROR, the broker keeps
// answering, nothing acknowledged is lost, and once space returns produces
// succeed again and every acknowledged record reads back in order. Before,
// the failed segment append panicked the broker.
//
// Mounting needs root (CI runs as root); elsewhere the test is skipped with
// that reason.
func TestDiskFullOnRealFileSystem(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root")
	}
	mnt := t.TempDir()
	// etcd preallocates 64 MB WAL segments, and the next one ahead of
	// time; the rest is for the partition segments.
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=160m", "tmpfs", mnt).CombinedOutput(); err != nil {
		t.Fatalf("mount tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", mnt, err, out)
		}
	})
	node, err := Listen(Config{
		Broker:      engine.Config{ID: 1, TickMillis: testTickMillis, ElectionTicks: testElectionTicks},
		DataDir:     filepath.Join(mnt, "1"),
		KafkaListen: "127.0.0.1:0",
		PeerListen:  "127.0.0.1:0",
		Logf:        func(f string, a ...any) { t.Logf("b1: "+f, a...) },
	})
	if err != nil {
		t.Fatal(err)
	}
	host, port, _ := net.SplitHostPort(node.KafkaAddr())
	p, _ := strconv.Atoi(port)
	node.SetCluster([]engine.BrokerInfo{{ID: 1, Host: host, Port: int32(p)}})
	node.SetPeers(map[int32]string{1: node.PeerAddr()})
	if err := node.Run(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { node.Stop() })

	cl, err := kgo.NewClient(kgo.SeedBrokers(node.KafkaAddr()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	createTopic(t, cl, "full", 1, 1)
	var acked []string
	produce := func(value string) int16 {
		t.Helper()
		b := batch.Build(batch.BuildOptions{ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1, FirstTimestamp: time.Now().UnixMilli()},
			[]batch.Record{{Value: []byte(value)}, {Value: make([]byte, 32<<10)}})
		req := kmsg.NewPtrProduceRequest()
		req.Acks, req.TimeoutMillis = -1, 5000
		rt := kmsg.NewProduceRequestTopic()
		rt.Topic = "full"
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Records = b
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		resp, err := cl.Request(ctx, req)
		if err != nil {
			t.Fatalf("produce %s: %v", value, err)
		}
		code := resp.(*kmsg.ProduceResponse).Topics[0].Partitions[0].ErrorCode
		if code == 0 {
			acked = append(acked, value)
		}
		return code
	}
	for i := range 10 {
		if code := produce(fmt.Sprintf("before-%d", i)); code != 0 {
			t.Fatalf("produce before the disk filled: %v", kerr.ErrorForCode(code))
		}
	}
	// Fill the file system.
	ballast := filepath.Join(mnt, "ballast")
	f, err := os.Create(ballast)
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 1<<20)
	for {
		if _, err := f.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("fill: %v", err)
			}
			break
		}
	}
	f.Close()
	sawStorageError := false
	for i := range 20 {
		code := produce(fmt.Sprintf("full-%d", i))
		if code == kerr.KafkaStorageError.Code {
			sawStorageError = true
			break
		}
		if code != 0 {
			t.Fatalf("produce on a full disk: %v, want KAFKA_STORAGE_ERROR", kerr.ErrorForCode(code))
		}
	}
	if !sawStorageError {
		t.Fatal("20 produces of 32 KiB on a full disk all succeeded")
	}
	// The broker still answers.
	if _, err := kmsg.NewPtrMetadataRequest().RequestWith(context.Background(), cl); err != nil {
		t.Fatalf("metadata from the broker with a full disk: %v", err)
	}
	if err := os.Remove(ballast); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "produce to work again after space returned", func() (bool, string) {
		code := produce("after")
		return code == 0, fmt.Sprint(kerr.ErrorForCode(code))
	})
	// Every acknowledged record reads back, in order, once.
	fetch := kmsg.NewPtrFetchRequest()
	fetch.MaxWaitMillis, fetch.MaxBytes, fetch.SessionEpoch = 100, 64<<20, -1
	var got []string
	for off := int64(0); ; {
		ft := kmsg.NewFetchRequestTopic()
		ft.Topic = "full"
		fp := kmsg.NewFetchRequestTopicPartition()
		fp.FetchOffset, fp.PartitionMaxBytes = off, 64<<20
		fp.CurrentLeaderEpoch = -1
		ft.Partitions = []kmsg.FetchRequestTopicPartition{fp}
		fetch.Topics = []kmsg.FetchRequestTopic{ft}
		resp, err := fetch.RequestWith(context.Background(), cl)
		if err != nil {
			t.Fatal(err)
		}
		part := resp.Topics[0].Partitions[0]
		if part.ErrorCode != 0 {
			t.Fatalf("fetch at %d: %v", off, kerr.ErrorForCode(part.ErrorCode))
		}
		bs, err := batch.Split(part.RecordBatches)
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range bs {
			recs, err := batch.Records(b)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range recs {
				if len(r.Value) < 100 {
					got = append(got, string(r.Value))
				}
				off = r.Offset + 1
			}
		}
		if off >= part.HighWatermark {
			break
		}
	}
	i := 0
	for _, v := range got {
		if i < len(acked) && v == acked[i] {
			i++
		}
	}
	if i != len(acked) {
		t.Fatalf("acknowledged %v, read back %v", acked, got)
	}
	t.Logf("acknowledged %d records, read back %d (the unacknowledged ones may be there too)", len(acked), len(got))
}
