package main

import "testing"

// TestJavaTransactions: the Java client's transactional producer
// (initTransactions, three transactions: commit, abort, commit) against a
// live 3-broker cluster, read back by a read_committed consumer (exactly
// the committed twenty records) and a read_uncommitted one (all thirty).
func TestJavaTransactions(t *testing.T) {
	runTxnScript(t, "java-txn", "", javaCommand(t), "-jar", javaJar, "txn")
}
