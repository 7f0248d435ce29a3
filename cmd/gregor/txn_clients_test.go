package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// The transactions tests of the clients other than franz-go share a
// script shape: the client's transactional producer runs three
// transactions of ten records over a 3-partition topic (prefixes c, a, d:
// commit, abort, commit), reads them back, and prints one JSON summary
// line.

// txnScriptSummary is that line.
type txnScriptSummary struct {
	Committed   []string `json:"committed"`   // read at read_committed, sorted
	Uncommitted []string `json:"uncommitted"` // read at read_uncommitted, sorted (if the script does)
	Errors      []string `json:"errors"`
	Exception   string   `json:"exception"`
	Librdkafka  string   `json:"librdkafka"`
}

// runTxnScript starts a live cluster, creates topic, runs argv with the
// brokers and the topic appended (in dir, if not empty) and checks what
// the summary read: exactly the committed records at read_committed, and
// all of them at read_uncommitted when the script reads that too.
func runTxnScript(t *testing.T, topic, dir string, argv ...string) txnScriptSummary {
	t.Helper()
	c := startLiveCluster(t)
	cli := newGregorCLI(t, c.seeds())
	cli.runOK("topic", "create", cli.brokers, "--partitions", "3", "--replication-factor", "3", topic)
	ctx, cancel := context.WithTimeout(context.Background(), 2*testWaitMax)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], append(argv[1:], strings.Join(c.seeds(), ","), topic)...)
	cmd.Dir = dir
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	start := time.Now()
	runErr := cmd.Run()
	name := filepath.Base(argv[0]) + " " + strings.Join(argv[1:], " ")
	t.Logf("%s ran %v", name, time.Since(start))
	if s := errOut.String(); s != "" {
		t.Logf("%s stderr:\n%s", name, s)
	}
	var s txnScriptSummary
	if err := json.Unmarshal(bytes.TrimSpace(out.Bytes()), &s); err != nil {
		t.Fatalf("%s: %v; summary is not JSON: %v\n%s", name, runErr, err, out.String())
	}
	if s.Exception != "" || len(s.Errors) > 0 || runErr != nil {
		t.Fatalf("%s failed: %s %v (%v)", name, s.Exception, s.Errors, runErr)
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
	if s.Uncommitted != nil && !slices.Equal(s.Uncommitted, all) {
		t.Errorf("read_uncommitted read %v, want %v", s.Uncommitted, all)
	}
	return s
}
