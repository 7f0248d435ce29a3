// Package rsm is what every kind of replicated state machine on a broker
// shares: the entry header that names an entry's kind and proposer, the
// table of this run's proposals waiting for their entries to apply, the
// ReadIndex rounds that make a leader's reads linearizable, and typed
// waiter sets (long polls) whose members are removed when answered.
//
// The Kafka partition and the cluster metadata group use it today; the
// group and transaction coordinators will be further kinds. Nothing here
// reads a clock: time arrives as tick counts from the caller.
//
// rsm is part of the deterministic core: no goroutines, no select, no wall
// clock, no global random source. It must never import netwire, sim, cmd or
// engine (engine imports it).
package rsm
