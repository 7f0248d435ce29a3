// Package linearizability checks client histories against models of a
// Kafka partition log with porcupine, and looks for the anomalies Jepsen
// names (lost write, duplicate, inconsistent offsets, nonmonotonic poll,
// poll skip) under each delivery mode's rules.
//
// The simulator's workload clients record a History (one Op per call, with
// simulated call and return times, ReturnUnknown for calls that timed out)
// plus the final log read after the liveness phase, and call Check. Check
// runs the anomaly checks on every partition, then porcupine against Model,
// one partition per TP, and on a linearizability failure writes porcupine's
// HTML visualisation.
//
// Delivery modes: an acknowledged record may never vanish or move in any
// mode; a value may sit at two offsets only in AtLeastOnce.
//
// Consumer groups' committed offsets are judged apart, by CheckOffsets:
// each (group, partition) is a register (OffsetsModel: OffsetCommit
// writes, OffsetFetch reads, a commit with an unknown outcome may or may
// not have been applied), and a commit known to have been applied must
// not move the offset below one acknowledged before it was sent unless an
// admin reset (generation -1) may lie between (offset-regression).
//
// NB: porcupine runs one goroutine per partition and reads the wall clock
// for Options.Timeout. That is acceptable here because Check runs after a
// simulation, not inside it; the verdict does not depend on scheduling,
// only whether a Timeout runs out does. This package itself starts no
// goroutines, reads no clock and draws no random numbers.
//
// It judges histories, not internals: it must never import engine,
// raftlog or sim.
package linearizability
