// Package linearizability checks client histories against models of a
// Kafka partition log with porcupine, and looks for the anomalies Jepsen
// names (lost write, duplicate, inconsistent offsets, nonmonotonic poll,
// poll skip) under each delivery mode's rules.
//
// It judges histories, not internals: it must never import engine or
// raftlog.
package linearizability
