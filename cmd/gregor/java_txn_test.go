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

// TestJavaTransactions: the Java client's transactional producer
// (initTransactions, three transactions: commit, abort, commit) against a
// live 3-broker cluster, read back by a read_committed consumer (exactly
// the committed twenty records) and a read_uncommitted one (all thirty).
func TestJavaTransactions(t *testing.T) {
	java := javaCommand(t)
	c := startLiveCluster(t)
	var stdout, stderr strings.Builder
	if code := run([]string{"topic", "create", "--brokers=" + strings.Join(c.seeds(), ","), "--partitions", "3", "--replication-factor", "3", "java-txn"}, &stdout, &stderr); code != exitOK {
		t.Fatalf("topic create: exit %d: %s", code, stderr.String())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*testWaitMax)
	defer cancel()
	cmd := exec.CommandContext(ctx, java, "-jar", javaJar, "txn", strings.Join(c.seeds(), ","), "java-txn")
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	start := time.Now()
	runErr := cmd.Run()
	t.Logf("java -jar %s txn ran %v", javaJar, time.Since(start))
	if s := errOut.String(); s != "" {
		t.Logf("java stderr:\n%s", s)
	}
	var s struct {
		Committed   []string `json:"committed"`
		Uncommitted []string `json:"uncommitted"`
		Exception   string   `json:"exception"`
	}
	if err := json.Unmarshal(bytes.TrimSpace(out.Bytes()), &s); err != nil {
		t.Fatalf("java: %v; summary is not JSON: %v\n%s", runErr, err, out.String())
	}
	if s.Exception != "" || runErr != nil {
		t.Fatalf("the Java client threw: %s (%v)", s.Exception, runErr)
	}
	var want, all []string
	for _, p := range []string{"a", "c", "d"} {
		for i := range 10 {
			v := p + string(rune('0'+i))
			all = append(all, v)
			if p != "a" {
				want = append(want, v)
			}
		}
	}
	slices.Sort(want)
	slices.Sort(all)
	if !slices.Equal(s.Committed, want) {
		t.Errorf("read_committed read %v, want %v", s.Committed, want)
	}
	if !slices.Equal(s.Uncommitted, all) {
		t.Errorf("read_uncommitted read %v, want %v", s.Uncommitted, all)
	}
}
