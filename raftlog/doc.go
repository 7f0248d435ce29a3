// Package raftlog hosts many etcd/raft groups on one broker: one
// raft.RawNode per group, ticked, stepped and drained together, so that a
// cycle's Ready state for every group is persisted with one WAL sync and the
// outgoing messages are batched into one transport message per destination
// broker. It knows nothing about Kafka: a group's committed entries are
// handed to a StateMachine the caller supplies.
//
// raftlog is part of the deterministic core: no goroutines, no select, no
// wall clock, no global random source, and maps are visited in sorted order.
// It must never import engine, netwire, sim or cmd.
package raftlog
