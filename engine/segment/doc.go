// Package segment is the per-partition log of Kafka record batches: the
// batches a partition's raft group has applied, in offset order, stored in
// segment files on a vfs.FS with a sparse offset index and a sparse time
// index per segment. It serves Fetch (Read), ListOffsets (OffsetForTimestamp,
// StartOffset, EndOffset), retention (TruncatePrefix) and snapshot install
// (Reset), and after a crash it recovers a contiguous, checksum-valid prefix
// of what was appended that contains at least everything synced.
//
// The store treats a batch as opaque bytes: it reads nothing of the Kafka
// batch except that its first 8 bytes (the base offset field) equal the
// BaseOffset the caller passes in BatchMeta. The on-disk format is
// described in format.go and docs/storage.md.
//
// segment is part of the deterministic core: no goroutines, no select, no
// wall clock, no global random source. It reaches the disk only through
// vfs.FS. It must never import netwire, sim, cmd or raft (etcd raft or
// raftlog).
package segment
