// Package batch validates and edits Kafka record batches (magic v2) as they
// arrive in Produce requests, before a partition leader proposes them to
// raft, and decodes them for tests and the simulator.
//
// Everything here works on the wire bytes in place: Split returns sub-slices
// of the request, Validate reads without copying, and the Set functions patch
// header fields of a batch the caller owns. Errors wrap the kerr value the
// Produce response must carry; Code extracts it.
//
// batch is a leaf of the deterministic core: pure functions over bytes, no
// state, no goroutines, no clock. It must never import engine, raftlog,
// netwire, sim or cmd, and depends only on the standard library and
// franz-go's kerr.
package batch
