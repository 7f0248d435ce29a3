package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestTransactionsKgo: franz-go's transactional producer against a live
// cluster: one transaction committed and one aborted across three
// partitions; a read_committed consumer sees exactly the committed
// records, a read_uncommitted one both.
func TestTransactionsKgo(t *testing.T) {
	c := startLiveCluster(t)
	brokers := "--brokers=" + strings.Join(c.seeds(), ",")
	var stdout, stderr strings.Builder
	if code := run([]string{"topic", "create", brokers, "--partitions", "3", "--replication-factor", "3", "txns"}, &stdout, &stderr); code != exitOK {
		t.Fatalf("topic create: exit %d: %s", code, stderr.String())
	}
	ctx, cancel := context.WithTimeout(context.Background(), testWaitMax)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.seeds()...), kgo.TransactionalID("txn-test"), kgo.DefaultProduceTopic("txns"),
		kgo.RecordPartitioner(kgo.ManualPartitioner()))
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
