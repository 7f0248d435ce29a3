package main

import (
	"context"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestTransactionsKgo: franz-go's transactional producer against a live
// cluster, with transactions v2 (KIP-890: franz-go uses them when the
// cluster finalizes transaction.version 2) and v1: one transaction
// committed and one aborted across three partitions; a read_committed
// consumer sees exactly the committed records, a read_uncommitted one
// both.
func TestTransactionsKgo(t *testing.T) {
	for _, v := range []int{2, 1} {
		t.Run(fmt.Sprintf("transaction.version=%d", v), func(t *testing.T) {
			var adds keyCounter
			// franz-go learns the cluster's features with its first
			// responses, so it opts in to v2 from its second transaction:
			// from then on it adds no partition itself (Produce v12 does),
			// where under v1 it must.
			testTransactionsKgo(t, startLiveCluster(t, func(o *devOptions) { o.txnVersion = v }), func() { adds.n.Store(0) }, kgo.WithHooks(&adds))
			if n := adds.n.Load(); (v == 2) != (n == 0) {
				t.Errorf("transaction.version %d: the client sent %d AddPartitionsToTxn requests after its first transaction", v, n)
			}
		})
	}
}

// keyCounter is a kgo hook counting the AddPartitionsToTxn requests a
// client writes.
type keyCounter struct{ n atomic.Int64 }

func (k *keyCounter) OnBrokerWrite(_ kgo.BrokerMetadata, key int16, _ int, _, _ time.Duration, _ error) {
	if key == int16(kmsg.AddPartitionsToTxn) {
		k.n.Add(1)
	}
}

func testTransactionsKgo(t *testing.T, c *liveCluster, afterFirst func(), opts ...kgo.Opt) {
	cli := newGregorCLI(t, c.seeds())
	cli.runOK("topic", "create", cli.brokers, "--partitions", "3", "--replication-factor", "3", "txns")
	ctx, cancel := context.WithTimeout(context.Background(), testWaitMax)
	defer cancel()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(c.seeds()...), kgo.TransactionalID("txn-test"), kgo.DefaultProduceTopic("txns"),
		kgo.RecordPartitioner(kgo.ManualPartitioner())}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	write := func(prefix string, commit kgo.TransactionEndTry) {
		t.Helper()
		if err := cl.BeginTransaction(); err != nil {
			t.Fatalf("begin %s: %v", prefix, err)
		}
		for i := range 6 {
			r := &kgo.Record{Value: fmt.Appendf(nil, "%s%d", prefix, i), Partition: int32(i % 3)}
			if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
				t.Fatalf("produce %s%d: %v", prefix, i, err)
			}
		}
		if err := cl.EndTransaction(ctx, commit); err != nil {
			t.Fatalf("end %s: %v", prefix, err)
		}
	}
	write("c", kgo.TryCommit)
	afterFirst()
	write("a", kgo.TryAbort)
	write("d", kgo.TryCommit)

	read := func(level kgo.IsolationLevel, want int) []string {
		t.Helper()
		rc, err := kgo.NewClient(kgo.SeedBrokers(c.seeds()...), kgo.ConsumeTopics("txns"),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(level))
		if err != nil {
			t.Fatal(err)
		}
		defer rc.Close()
		var got []string
		for len(got) < want {
			fs := rc.PollFetches(ctx)
			if err := ctx.Err(); err != nil {
				t.Fatalf("read %d of %d records: %v", len(got), want, got)
			}
			fs.EachError(func(topic string, p int32, err error) { t.Fatalf("fetch %s-%d: %v", topic, p, err) })
			fs.EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
		}
		slices.Sort(got)
		return got
	}
	committed := read(kgo.ReadCommitted(), 12)
	want := []string{"c0", "c1", "c2", "c3", "c4", "c5", "d0", "d1", "d2", "d3", "d4", "d5"}
	if !slices.Equal(committed, want) {
		t.Errorf("read_committed: %v, want %v", committed, want)
	}
	all := read(kgo.ReadUncommitted(), 18)
	if len(all) != 18 || all[0] != "a0" {
		t.Errorf("read_uncommitted: %v, want the aborted records too", all)
	}
}
