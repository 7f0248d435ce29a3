package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// pythonDir holds the Python client tests; .ci/test-deps.sh makes its
// virtual environment (.venv) with the pinned requirements.
const pythonDir = "testdata/python"

// pythonCommand is the virtual environment's interpreter.
func pythonCommand(t *testing.T) string {
	t.Helper()
	py, err := filepath.Abs(filepath.Join(pythonDir, ".venv", "bin", "python"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(py); err != nil {
		t.Fatalf("the Python clients are not installed in %s/.venv: run `make test-deps` (or `bash .ci/test-deps.sh`)", pythonDir)
	}
	return py
}

// TestLibrdkafkaTransactions: librdkafka's transactional producer (through
// confluent-kafka-python; commit, abort, commit) against a live 3-broker
// cluster, read back by a librdkafka consumer at read_committed: exactly
// the committed records.
func TestLibrdkafkaTransactions(t *testing.T) {
	py := pythonCommand(t)
	c := startLiveCluster(t)
	var stdout, stderr strings.Builder
	if code := run([]string{"topic", "create", "--brokers=" + strings.Join(c.seeds(), ","), "--partitions", "3", "--replication-factor", "3", "rdkafka-txn"}, &stdout, &stderr); code != exitOK {
		t.Fatalf("topic create: exit %d: %s", code, stderr.String())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*testWaitMax)
	defer cancel()
	cmd := exec.CommandContext(ctx, py, "txn.py", strings.Join(c.seeds(), ","), "rdkafka-txn")
	cmd.Dir = pythonDir
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	start := time.Now()
	runErr := cmd.Run()
	t.Logf("python txn.py ran %v", time.Since(start))
	if s := errOut.String(); s != "" {
		t.Logf("python stderr:\n%s", s)
	}
	var s struct {
		Committed  []string `json:"committed"`
		Errors     []string `json:"errors"`
		Librdkafka string   `json:"librdkafka"`
	}
	if err := json.Unmarshal(bytes.TrimSpace(out.Bytes()), &s); err != nil {
		t.Fatalf("python txn.py: %v; summary is not JSON: %v\n%s", runErr, err, out.String())
	}
	t.Logf("librdkafka %s", s.Librdkafka)
	for _, e := range s.Errors {
		t.Errorf("librdkafka: %s", e)
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
