// Package producers is the idempotent-producer part of a partition's
// replicated state machine: for every producer id that wrote to the
// partition it keeps the epoch and the last few batches' sequence ranges and
// offsets, so that a retried batch is answered with its original offset and
// a batch out of sequence is refused, the same way on every replica and
// after every leader change (KIP-98, with KIP-360's epoch bumps).
//
// It is part of the deterministic core: no goroutines, no clock, no
// randomness, and producers are visited in pid order wherever order shows
// (Encode). It must never import engine, raftlog, netwire, sim or cmd.
package producers
