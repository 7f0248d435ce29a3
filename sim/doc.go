// Package sim is Gregor's deterministic world: a virtual clock, a seeded
// random source, a simulated network and simulated disks drive the real
// engine and raftlog code, inject crashes (of one broker, of a majority or
// of all), lost unsynced writes, bit rot, slow fsyncs, clock skew, network
// partitions between brokers and between clients and brokers, duplicated
// and long-held messages, and topic churn, and check what the clients saw.
// One seed replays a run exactly.
//
// NewOptions derives every option of a run from its seed (broker count,
// latency, loss, partition mode and rate, crash rate, clients, timeouts,
// then the second fault model's options, drawn after the others);
// Run executes setup, a safety phase with faults, a liveness phase with
// every fault healed, and a final read, and returns a Result: failures
// found by the state checker (every replica's committed prefix against one
// canonical log, high watermarks that move back, replicas that come back
// from a crash below what they had committed), by the liveness bound, and
// by linearizability.Check, plus the SHA-256 of the whole event trace.
//
// The group workload (group.go, groupcheck.go; Options.Groups, drawn
// after every other option) runs classic consumer groups beside the
// producers and consumers: members that join (with KIP-394's rejoin),
// assign ranges, heartbeat, consume from their committed offsets, commit
// with their generation, leave, crash, and pause past their session
// timeout to commit as zombies; an offsets reader outside the groups that
// also resets empty groups as an admin; a lag monitor; and a standalone
// committer (generation -1) whose commits follow a coordinator that moves.
// Every committed offset is a register checked by
// linearizability.CheckOffsets (offsets-nonlinearizable, offset-regression);
// assignments are checked as they are handed out (split-assignment); after
// the final read every group must settle, Stable with every partition
// assigned, having consumed every record and committed the ends
// (group-not-stable, group-unseen, group-lagging).
//
// Everything runs on the caller's goroutine, ordered by one event queue
// keyed by (virtual time, sequence number); maps are iterated in sorted
// order where order matters; etcd/raft's election jitter reads
// crypto/rand.Reader, which Run replaces with a stream derived from the
// seed for the length of the run (runs are serialised by a mutex).
// docs/simulation.md says how to run and read it, docs/fault-model.md
// what it injects.
//
// sim imports engine, raftlog and linearizability; nothing imports sim
// except cmd and tests, and sim must never import netwire, engine/runtime
// or anything that reads the wall clock or starts goroutines.
package sim
