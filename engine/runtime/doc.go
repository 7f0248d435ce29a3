// Package runtime runs one Gregor broker for real: the wall clock, TCP for
// Kafka clients (through netwire) and for the inter-broker raft transport,
// the etcd WAL and the OS file system. It feeds the stepped engine.Broker
// the same events the simulator feeds it, from one goroutine that owns the
// Broker, so the core stays single-threaded.
//
// runtime is the one place under engine/ where goroutines, select, net, os
// and the wall clock are allowed. It must never import sim or cmd, and
// nothing in engine, raftlog or linearizability may import it.
package runtime
