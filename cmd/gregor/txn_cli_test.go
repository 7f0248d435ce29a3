package main

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestTxnCLI: gregor txn list, describe and abort against a live cluster.
// A franz-go transactional producer leaves a transaction open: list and
// describe show it, filtered as asked. A transaction no coordinator knows
// of (a transactional batch sent by hand) holds a partition's last stable
// offset back until txn abort ends it.
func TestTxnCLI(t *testing.T) {
	c := startLiveCluster(t)
	cli := newGregorCLI(t, c.seeds())
	brokers, runCode := cli.brokers, cli.runCode
	cli.runOK("topic", "create", brokers, "--partitions", "2", "--replication-factor", "3", "tx")
	ctx, cancel := context.WithTimeout(context.Background(), testWaitMax)
	defer cancel()
	tc, err := kgo.NewClient(kgo.SeedBrokers(c.seeds()...), kgo.TransactionalID("cli-txn"), kgo.DefaultProduceTopic("tx"),
		kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	if err := tc.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := tc.ProduceSync(ctx, &kgo.Record{Value: []byte("v"), Partition: 0}).FirstErr(); err != nil {
		t.Fatalf("transactional produce: %v", err)
	}

	listHeader := []string{"TRANSACTIONAL-ID", "COORDINATOR", "PRODUCER-ID", "STATE"}
	list := func(args ...string) [][]string {
		t.Helper()
		code, stdout, stderr := runCode(append([]string{"txn", "list", brokers}, args...)...)
		if code != exitOK {
			t.Fatalf("txn list %v: exit %d: %s", args, code, stderr)
		}
		return parseTable(t, stdout, listHeader...)
	}
	rows := list()
	if len(rows) != 1 || rows[0][0] != "cli-txn" || rows[0][3] != "Ongoing" {
		t.Fatalf("txn list: %v, want cli-txn Ongoing", rows)
	}
	pid := rows[0][2]
	for _, f := range []struct {
		args []string
		n    int
	}{
		{[]string{"--state", "Ongoing"}, 1}, {[]string{"--state", "Empty"}, 0}, {[]string{"--pattern", "^cli-"}, 1},
		{[]string{"--pattern", "^other"}, 0}, {[]string{"--producer-id", pid}, 1}, {[]string{"--producer-id", "999999"}, 0},
		{[]string{"--min-duration", "0s"}, 1}, {[]string{"--min-duration", "1h"}, 0},
	} {
		if got := list(f.args...); len(got) != f.n {
			t.Errorf("txn list %v: %v, want %d rows", f.args, got, f.n)
		}
	}
	code, stdout, stderr := runCode("txn", "describe", brokers, "cli-txn")
	if code != exitOK {
		t.Fatalf("txn describe: exit %d: %s", code, stderr)
	}
	drows := parseTable(t, stdout, "TRANSACTIONAL-ID", "COORDINATOR", "STATE", "PRODUCER-ID", "EPOCH", "TIMEOUT-MS", "START-TIMESTAMP", "PARTITIONS")
	if len(drows) != 1 || drows[0][2] != "Ongoing" || drows[0][3] != pid || drows[0][7] != "tx-0" || drows[0][6] == "-" {
		t.Fatalf("txn describe: %v, want cli-txn Ongoing holding tx-0 with a start time", drows)
	}
	if err := tc.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	// The answer comes once the commit is decided; its markers follow.
	for rows := list("--state", "CompleteCommit"); len(rows) != 1; rows = list("--state", "CompleteCommit") {
		if ctx.Err() != nil {
			t.Fatalf("after the commit: %v, want cli-txn CompleteCommit", list())
		}
		time.Sleep(20 * time.Millisecond)
	}

	// A hanging transaction in tx-1, aborted by hand.
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.seeds()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	hung, _ := openTxnByHand(ctx, t, cl, "tx", 1)
	adm := kadm.NewClient(cl)
	stable := func() int64 {
		t.Helper()
		committed, err := adm.ListCommittedOffsets(ctx, "tx") // read_committed: the last stable offset
		if err != nil {
			t.Fatal(err)
		}
		o, _ := committed.Lookup("tx", 1)
		return o.Offset
	}
	if got := stable(); got != 0 {
		t.Fatalf("last stable offset of tx-1 with a transaction hanging: %d, want 0", got)
	}
	code, stdout, stderr = runCode("txn", "abort", brokers, "--topic", "tx", "--partition", "1", "--start-offset", "0")
	if code != exitOK || !strings.Contains(stdout, "producer "+strconv.FormatInt(hung, 10)) {
		t.Fatalf("txn abort: exit %d: %s%s", code, stdout, stderr)
	}
	if got := stable(); got != 3 {
		t.Fatalf("last stable offset of tx-1 after the abort: %d, want 3 (two records and the marker)", got)
	}

	for _, tc := range []struct {
		code int
		want string
		args []string
	}{
		{exitUsage, "--topic is required", []string{"txn", "abort", brokers, "--partition", "1", "--start-offset", "0"}},
		{exitUsage, "--start-offset is required", []string{"txn", "abort", brokers, "--topic", "tx", "--partition", "1"}},
		{exitError, "no open transaction starts at offset 0", []string{"txn", "abort", brokers, "--topic", "tx", "--partition", "1", "--start-offset", "0"}},
		{exitUsage, "at least one transactional id", []string{"txn", "describe", brokers}},
		{exitError, "TRANSACTIONAL_ID_NOT_FOUND", []string{"txn", "describe", brokers, "nobody"}},
		{exitError, "unknown state Bogus", []string{"txn", "list", brokers, "--state", "Bogus"}},
		{exitError, "INVALID_REGULAR_EXPRESSION", []string{"txn", "list", brokers, "--pattern", "a(b"}},
		{exitUsage, "--producer-id \"x\"", []string{"txn", "list", brokers, "--producer-id", "x"}},
		{exitUsage, "unknown subcommand", []string{"txn", "show", brokers}},
	} {
		cli.runErr(tc.code, tc.want, tc.args...)
	}
}
