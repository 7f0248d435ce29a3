// Package engine is the Gregor broker: the cluster-metadata state machine,
// the partition state machines (log, offsets, high watermark, idempotent
// producer state) and the Kafka request handlers, one file per API. It is a
// stepped core: the caller delivers client requests, raft messages and ticks
// and collects responses and outgoing messages. Disk is reached only through
// raftlog.WAL and vfs.FS, time only through the Clock it is given.
//
// engine is part of the deterministic core: no goroutines, no select, no
// wall clock, no global random source (the real runtime lives in
// engine/runtime). It must never import netwire, sim or cmd.
package engine
