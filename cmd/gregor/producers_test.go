package main

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gregor-streaming/gregor/engine/batch"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestProducersCLI: gregor producers describe against a live cluster. An
// open transaction (a transactional batch sent by hand, as no coordinator
// exists yet) shows with its first offset; after a commit marker it is
// gone and the marker's coordinator epoch and timestamp show.
func TestProducersCLI(t *testing.T) {
	c := startLiveCluster(t)
	cli := newGregorCLI(t, c.seeds())
	brokers, runCode := cli.brokers, cli.runCode
	cli.runOK("topic", "create", brokers, "--partitions", "2", "--replication-factor", "3", "tx")
	ctx, cancel := context.WithTimeout(context.Background(), testWaitMax)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.seeds()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	leaders(t, cl, "tx", 2) // describe asks both partitions' leaders
	pid, epoch := openTxnByHand(ctx, t, cl, "tx", 1)

	header := []string{"TOPIC", "PARTITION", "PRODUCER-ID", "EPOCH", "LAST-SEQUENCE", "LAST-TIMESTAMP", "COORDINATOR-EPOCH", "TXN-START-OFFSET"}
	describe := func() [][]string {
		t.Helper()
		code, stdout, stderr := runCode("producers", "describe", brokers, "--topic", "tx")
		if code != exitOK {
			t.Fatalf("producers describe: exit %d: %s", code, stderr)
		}
		return parseTable(t, stdout, header...)
	}
	rows := describe()
	want := []string{"tx", "1", strconv.FormatInt(pid, 10), "0", "1", "1", "-1", "0"}
	if len(rows) != 1 || strings.Join(rows[0], " ") != strings.Join(want, " ") {
		t.Fatalf("with a transaction open: rows %v, want one: %v", rows, want)
	}

	beforeMarker := time.Now().UnixMilli()
	wm := kmsg.NewPtrWriteTxnMarkersRequest()
	m := kmsg.NewWriteTxnMarkersRequestMarker()
	m.ProducerID, m.ProducerEpoch, m.Committed, m.CoordinatorEpoch = pid, epoch, true, 4
	mt := kmsg.NewWriteTxnMarkersRequestMarkerTopic()
	mt.Topic, mt.Partitions = "tx", []int32{1}
	m.Topics = append(m.Topics, mt)
	wm.Markers = append(wm.Markers, m)
	err = retryRetriable(ctx, func() error {
		wr, err := wm.RequestWith(ctx, cl)
		if err == nil {
			err = kerr.ErrorForCode(wr.Markers[0].Topics[0].Partitions[0].ErrorCode)
		}
		return err
	})
	if err != nil {
		t.Fatalf("WriteTxnMarkers: %v", err)
	}
	rows = describe()
	// The marker's timestamp (the leader's clock) is the producer's last
	// timestamp now, as Kafka's ProducerStateEntry has it.
	want = []string{"tx", "1", strconv.FormatInt(pid, 10), "0", "1", "<marker time>", "4", "-"}
	if len(rows) == 1 && len(rows[0]) == len(want) {
		if ts, err := strconv.ParseInt(rows[0][5], 10, 64); err == nil && ts >= beforeMarker-60_000 {
			rows[0][5] = "<marker time>"
		}
	}
	if len(rows) != 1 || strings.Join(rows[0], " ") != strings.Join(want, " ") {
		t.Fatalf("after the commit marker: rows %v, want one: %v", rows, want)
	}

	for _, tc := range []struct {
		code int
		want string
		args []string
	}{
		{exitUsage, "--topic is required", []string{"producers", "describe", brokers}},
		{exitUsage, "unknown subcommand", []string{"producers", "list", brokers}},
		{exitError, "there is no partition 7", []string{"producers", "describe", brokers, "--topic", "tx:7"}},
	} {
		cli.runErr(tc.code, tc.want, tc.args...)
	}
}

// openTxnByHand opens a transaction no coordinator knows of in a
// partition: a transactional batch (two records) from a bare producer id,
// sent without a transactional id.
func openTxnByHand(ctx context.Context, t *testing.T, cl *kgo.Client, topic string, partition int32) (int64, int16) {
	t.Helper()
	ip, err := kmsg.NewPtrInitProducerIDRequest().RequestWith(ctx, cl)
	if err == nil {
		err = kerr.ErrorForCode(ip.ErrorCode)
	}
	if err != nil {
		t.Fatalf("InitProducerId: %v", err)
	}
	pid, epoch := ip.ProducerID, ip.ProducerEpoch
	prod := kmsg.NewPtrProduceRequest()
	prod.Acks, prod.TimeoutMillis = -1, 10_000
	pt := kmsg.NewProduceRequestTopic()
	pt.Topic = topic
	pp := kmsg.NewProduceRequestTopicPartition()
	pp.Partition = partition
	pp.Records = batch.Build(batch.BuildOptions{ProducerID: pid, ProducerEpoch: epoch, Transactional: true, FirstTimestamp: 1},
		[]batch.Record{{Value: []byte("a")}, {Value: []byte("b")}})
	pt.Partitions = append(pt.Partitions, pp)
	prod.Topics = append(prod.Topics, pt)
	err = retryRetriable(ctx, func() error {
		pr, err := prod.RequestWith(ctx, cl)
		if err == nil {
			err = kerr.ErrorForCode(pr.Topics[0].Partitions[0].ErrorCode)
		}
		return err
	})
	if err != nil {
		t.Fatalf("transactional produce: %v", err)
	}
	return pid, epoch
}

// retryRetriable calls fn until it returns nil or an error Kafka does not
// call retriable (a new topic's leaders are still being elected), or ctx
// ends.
func retryRetriable(ctx context.Context, fn func() error) error {
	for {
		err := fn()
		if err == nil || !kerr.IsRetriable(err) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(100 * time.Millisecond):
		}
	}
}
