// Package memwal is the simulator's raftlog.WAL: an in-memory byte log
// that forgets what was never synced when the simulated broker crashes.
//
// Records are framed as they would be on disk (length, CRC-32C, kind,
// payload) and ReadAll genuinely decodes the bytes, so the recovery path
// the simulator runs is the one that cuts a torn frame. Crash keeps every
// synced frame and checkpoint plus a random prefix of the unsynced tail,
// whose last frame may be torn. Randomness comes only from the *rand.Rand
// passed to Crash.
//
// memwal is part of the deterministic core: no goroutines, no select, no
// wall clock, no global random source. It must never import engine,
// netwire, sim, cmd or raftlog/etcdwal.
package memwal
