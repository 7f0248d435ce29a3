package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestKafkaJSTransactions: kafkajs's transactional producer (commit,
// abort, commit) against a live 3-broker cluster, read back by a kafkajs
// consumer at read_committed: exactly the committed records.
func TestKafkaJSTransactions(t *testing.T) {
	node := kafkajsCommand(t)
	c := startLiveCluster(t)
	var stdout, stderr strings.Builder
	if code := run([]string{"topic", "create", "--brokers=" + strings.Join(c.seeds(), ","), "--partitions", "3", "--replication-factor", "3", "kafkajs-txn"}, &stdout, &stderr); code != exitOK {
		t.Fatalf("topic create: exit %d: %s", code, stderr.String())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*testWaitMax)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "txn.js", strings.Join(c.seeds(), ","), "kafkajs-txn")
	cmd.Dir = kafkajsDir
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	start := time.Now()
	runErr := cmd.Run()
	t.Logf("node txn.js ran %v", time.Since(start))
	if s := errOut.String(); s != "" {
		t.Logf("node stderr:\n%s", s)
	}
	var s struct {
		Committed []string `json:"committed"`
		Errors    []string `json:"errors"`
	}
	if err := json.Unmarshal(bytes.TrimSpace(out.Bytes()), &s); err != nil {
		t.Fatalf("node txn.js: %v; summary is not JSON: %v\n%s", runErr, err, out.String())
	}
	for _, e := range s.Errors {
		t.Errorf("kafkajs: %s", e)
	}
	var want []string
	for _, p := range []string{"c", "d"} {
		for i := range 10 {
			want = append(want, p+string(rune('0'+i)))
		}
	}
	slices.Sort(want)
	if !slices.Equal(s.Committed, want) {
		t.Errorf("read_committed read %v, want %v", s.Committed, want)
	}
}
