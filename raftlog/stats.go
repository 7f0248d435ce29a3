package raftlog

import "go.etcd.io/raft/v3"

// Plain counters and histograms of a Host, for the runtime to export
// (Prometheus lives at the edge, not here). Durations are taken only when
// Config.Now is set: the simulator leaves it nil and its runs stay
// functions of their seed.

// HistogramBounds are the upper bounds, in nanoseconds, of a Histogram's
// buckets (the last bucket, above them all, is Counts[len(HistogramBounds)]).
var HistogramBounds = [...]int64{
	10e3, 20e3, 50e3, 100e3, 200e3, 500e3,
	1e6, 2e6, 5e6, 10e6, 20e6, 50e6, 100e6, 200e6, 500e6,
	1e9, 2e9, 5e9, 10e9,
}

// Histogram counts durations in fixed buckets.
type Histogram struct {
	Counts [len(HistogramBounds) + 1]uint64
	Count  uint64
	SumNs  int64
}

// Observe counts one duration of ns nanoseconds.
func (h *Histogram) Observe(ns int64) {
	i := 0
	for i < len(HistogramBounds) && ns > HistogramBounds[i] {
		i++
	}
	h.Counts[i]++
	h.Count++
	h.SumNs += ns
}

// Stats is what a Host has counted since it started.
type Stats struct {
	Cycles     uint64 // Ready cycles (each one WAL append and sync at most)
	WALAppends uint64
	WALBytes   uint64
	WALSyncs   uint64
	// WALAppend is the latency of each WAL append, WALSync of the sync
	// after it. etcd's WAL (raftlog/etcdwal) syncs inside the append, so
	// there the fsync is in WALAppend and WALSync is near zero. A write
	// off the loop (Config.AsyncWrites) counts in WALAppend, append and
	// sync together, from TakeWrite to WriteDone.
	WALSync, WALAppend Histogram

	Campaigns        uint64 // elections this host started (pre-votes included)
	LeaderChanges    uint64 // leader changes its groups saw
	ProposalsDropped uint64 // proposals raft refused (no leader, leadership moving)
	SnapshotsSent    uint64
	MessagesSent     uint64
	MessagesReceived uint64

	// The stages of an entry proposed on a leader here, after the request
	// reached the state machine: EntryPersist from the cycle that took it
	// to its WAL sync here; EntryCommit from that sync to its commit (a
	// quorum's acknowledgements arrived); EntryApply from the commit to
	// the end of its Apply. FollowerAck is a follower's part: from an
	// append message's arrival to its acknowledgement being sent, after
	// the follower's own WAL sync.
	EntryPersist, EntryCommit, EntryApply, FollowerAck Histogram
}

// Stats returns a copy of the host's counters.
func (h *Host) Stats() Stats { return h.stats }

// now is the time for the stage histograms, or 0 without a clock.
func (h *Host) now() int64 {
	if h.cfg.Now == nil {
		return 0
	}
	return h.cfg.Now()
}

// pendingEntry is a leader's entry between its WAL sync and its apply.
type pendingEntry struct {
	index     uint64
	persisted int64
}

// maxPendingEntries bounds a group's pending stage times: a leader that
// cannot commit keeps the oldest.
const maxPendingEntries = 4096

// notePersisted records the WAL sync time of the entries this cycle
// persisted for groups whose leader this host is.
func (h *Host) notePersisted(rds []readyGroup, cycleStart int64) {
	now := h.now()
	for _, r := range rds {
		if len(r.rd.Entries) == 0 || r.g.rn.BasicStatus().RaftState != raft.StateLeader {
			continue
		}
		for _, e := range r.rd.Entries {
			if len(r.g.pending) >= maxPendingEntries {
				break
			}
			h.stats.EntryPersist.Observe(now - cycleStart)
			r.g.pending = append(r.g.pending, pendingEntry{index: e.GetIndex(), persisted: now})
		}
	}
}

// noteApplied closes the stages of g's pending entries up to index, which
// committed at committed and have just been applied.
func (h *Host) noteApplied(g *group, index uint64, committed int64) {
	now := h.now()
	n := 0
	for _, p := range g.pending {
		if p.index > index {
			break
		}
		h.stats.EntryCommit.Observe(committed - p.persisted)
		h.stats.EntryApply.Observe(now - committed)
		n++
	}
	g.pending = append(g.pending[:0], g.pending[n:]...)
}
