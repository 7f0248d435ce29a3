// Package sim is Gregor's deterministic world: a virtual clock, a seeded
// random source, a simulated network and simulated disks drive the real
// engine and raftlog code, inject crashes, lost unsynced writes and network
// partitions, and check what the clients saw. One seed replays a run
// exactly.
//
// Nothing imports sim except cmd and tests.
package sim
