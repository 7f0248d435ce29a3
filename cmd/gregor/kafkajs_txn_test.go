package main

import "testing"

// TestKafkaJSTransactions: kafkajs's transactional producer (commit,
// abort, commit) against a live 3-broker cluster, read back by a kafkajs
// consumer at read_committed: exactly the committed records.
func TestKafkaJSTransactions(t *testing.T) {
	runTxnScript(t, "kafkajs-txn", kafkajsDir, kafkajsCommand(t), "txn.js")
}
