// Package vfs is the file-system interface that every byte Gregor stores
// outside the write-ahead log goes through: partition segments, indexes,
// checkpoints. It has two implementations: OS, the real file system, and
// Mem, an in-memory file system for the simulator that forgets unsynced data
// at a crash (or keeps a torn prefix of it) and does not keep a new file or a
// rename until its directory has been synced.
//
// The interface is deliberately narrow: only what the segment store needs.
// Paths are slash-separated and relative to the FS root.
//
// vfs must never import engine, netwire, sim or cmd.
package vfs
