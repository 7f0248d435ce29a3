package main

import (
	"os"
	"path/filepath"
	"testing"
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
	s := runTxnScript(t, "rdkafka-txn", pythonDir, pythonCommand(t), "txn.py")
	t.Logf("librdkafka %s", s.Librdkafka)
}
