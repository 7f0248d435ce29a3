package raftlog

import (
	"errors"
	"fmt"
	"slices"

	"go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// cycleMax bounds the Ready cycles of one Process call.
const cycleMax = 64

// checkpointRetryCycles is how many cycles pass before a failed
// checkpoint is tried again.
const checkpointRetryCycles = 256

// Process runs Ready cycles until no group has work: each cycle persists
// every group's new entries, hard state and snapshots with one WAL append
// and one sync, then queues messages, applies committed entries and
// advances.
func (h *Host) Process() error {
	for range cycleMax {
		did, err := h.cycle()
		if err != nil || !did {
			return err
		}
	}
	return nil
}

type readyGroup struct {
	g  *group
	rd raft.Ready
}

// stalledCycle is a cycle whose WAL append or sync failed: its Readies
// wait, unadvanced, until the WAL takes their records.
type stalledCycle struct {
	rds  []readyGroup
	recs [][]byte
	// start: when the cycle began (stage timing).
	start int64
	// restore: a state machine's Restore asked to be retried; every
	// snapshot of the cycle is handed over again before the WAL write.
	restore bool
}

// Stalled returns the WAL error that stalls the host, or nil. While
// stalled, no group gets a new Ready: nothing is acknowledged, voted for,
// applied or compacted; messages are still stepped and groups ticked, and
// each Process tries the WAL again (a full disk that regains space).
func (h *Host) Stalled() error { return h.stallErr }

// retryStalled tries the stalled cycle's WAL write again.
func (h *Host) retryStalled() (bool, error) {
	st := h.stalled
	if st.restore {
		if err := h.restoreSnapshots(st.rds); err != nil {
			if errors.Is(err, ErrRestoreRetry) {
				h.stallErr = err
				return false, nil
			}
			return false, err
		}
		st.restore = false
		if h.cfg.SendEarly != nil {
			h.sendEarly(st.rds)
		}
	}
	if err := h.appendWAL(st.recs, !h.cfg.UnsafeAckBeforeFsync); err != nil {
		h.stallErr = err
		if errors.Is(err, ErrHalt) {
			return false, err
		}
		return false, nil
	}
	h.cfg.Logger.Infof("raftlog: broker %d: the WAL works again", h.cfg.ID)
	h.stalled, h.stallErr = nil, nil
	return true, h.finishCycle(st.rds, st.start)
}

func (h *Host) cycle() (bool, error) {
	if h.stalled != nil {
		return h.retryStalled()
	}
	if h.inflight != nil {
		if !h.inflightWritten {
			return false, nil // the caller's write is not done yet
		}
		return true, h.completeInflight()
	}
	var rds []readyGroup
	var recs [][]byte
	mustSync := false
	for _, id := range h.ids {
		g := h.groups[id]
		// A quiesced group has no Ready: it quiesced with none, and every
		// call that could give it one (a message, a proposal, a read, a
		// transfer) wakes it first. Skipping it keeps idle groups free.
		if g.quiesced || !g.rn.HasReady() {
			continue
		}
		rd := g.rn.Ready()
		g.inCycle = true
		rds = append(rds, readyGroup{g, rd})
		var hs *pb.HardState
		if rd.HardState != nil && !raft.IsEmptyHardState(rd.HardState) {
			hs = rd.HardState
		}
		var snap *pb.SnapshotMetadata
		if rd.Snapshot != nil && !raft.IsEmptySnap(rd.Snapshot) {
			snap = rd.Snapshot.GetMetadata()
		}
		if hs != nil || snap != nil || len(rd.Entries) > 0 {
			recs = append(recs, encodeUpdate(id, hs, snap, rd.Entries))
			mustSync = mustSync || snap != nil || len(rd.Entries) > 0 || termOrVoteMoved(g, hs) || (g.syncCommit && hs != nil)
		}
	}
	flush := h.flushLazy && len(h.lazy) > 0
	if len(rds) == 0 && !flush {
		return false, nil
	}
	if !h.cfg.UnsafeAckBeforeFsync {
		if mustSync || flush {
			recs = append(h.lazy, recs...)
			h.lazy, h.flushLazy, h.lazyTicks = nil, false, 0
		} else {
			// Only commit indexes moved: write them with the next cycle
			// that must sync, and go on without a sync of their own (see
			// "Commit indexes without a sync of their own" below).
			h.lazy = append(h.lazy, recs...)
			recs = nil
		}
	}
	h.cycles++
	h.stats.Cycles++
	cycleStart := h.now()
	// A snapshot reaches the state machine before the WAL records it: the
	// state machine makes what it applied durable (raft is about to drop
	// those entries) and fetches the snapshot's state itself; a crash in
	// between leaves it behind raft, which its gap check absorbs.
	if err := h.restoreSnapshots(rds); err != nil {
		if !errors.Is(err, ErrRestoreRetry) {
			return false, err
		}
		h.cfg.Logger.Warningf("raftlog: broker %d: stalled until a snapshot can be restored: %v", h.cfg.ID, err)
		h.stalled = &stalledCycle{rds: rds, recs: recs, start: cycleStart, restore: true}
		h.stallErr = err
		return false, nil
	}
	if h.cfg.SendEarly != nil {
		h.sendEarly(rds)
	}
	if len(recs) > 0 && h.cfg.AsyncWrites && !h.cfg.UnsafeAckBeforeFsync {
		h.inflight = &stalledCycle{rds: rds, recs: recs, start: cycleStart}
		h.write = recs
		if h.cfg.UnsafeFinishBeforeWrite {
			h.inflight.rds = nil
			return true, h.finishCycle(rds, cycleStart)
		}
		return false, nil
	}
	if len(recs) > 0 {
		if err := h.appendWAL(recs, !h.cfg.UnsafeAckBeforeFsync); err != nil {
			if errors.Is(err, ErrHalt) {
				return false, err
			}
			// A full or failing disk: nothing of this cycle is durable, so
			// nothing of it may leave or apply. Keep it and retry; the
			// records are idempotent if part of them did reach the WAL.
			h.cfg.Logger.Warningf("raftlog: broker %d: WAL write failed, stalled until it works: %v", h.cfg.ID, err)
			h.stalled = &stalledCycle{rds: rds, recs: recs, start: cycleStart}
			h.stallErr = err
			return false, nil
		}
	}
	return true, h.finishCycle(rds, cycleStart)
}

// finishCycle runs once a cycle's records are durable: its messages are
// queued, its committed entries applied, its groups advanced, and the WAL
// checkpointed if it has grown enough.
func (h *Host) finishCycle(rds []readyGroup, cycleStart int64) error {
	if h.cfg.Now != nil {
		h.notePersisted(rds, cycleStart)
	}
	for _, r := range rds {
		if h.groups[r.g.id] != r.g {
			continue // removed while its records were being written
		}
		if err := h.handleReady(r.g, r.rd); err != nil {
			return err
		}
	}
	if h.walBytes >= h.cfg.CheckpointBytes && h.cycles >= h.checkpointRetryCycle {
		if err := h.Checkpoint(); errors.Is(err, ErrHalt) {
			return err
		} else if err != nil {
			// The WAL keeps growing until a checkpoint succeeds; try
			// again some cycles later rather than on every one.
			h.cfg.Logger.Warningf("raftlog: broker %d: checkpoint failed: %v", h.cfg.ID, err)
			h.checkpointRetryCycle = h.cycles + checkpointRetryCycles
		}
	}
	return nil
}

// termOrVoteMoved reports whether hs changes g's term or vote, which must
// be durable before the cycle's messages leave (etcd/raft's MustSync).
func termOrVoteMoved(g *group, hs *pb.HardState) bool {
	if hs == nil {
		return false
	}
	prev, _, _ := g.storage.InitialState()
	return hs.GetTerm() != prev.GetTerm() || hs.GetVote() != prev.GetVote()
}

// Commit indexes without a sync of their own. A cycle whose hard states
// moved only their commit index (no entries, no snapshot, no new term or
// vote, no group that is a CommitSyncer) writes nothing: its records wait in Host.lazy and go first in the
// next cycle that must sync (or any WAL call of the host's own), or after
// lazyCommitTicks ticks if none comes. The cycle's messages leave and its
// committed entries apply at once, as etcd/raft's MustSync allows: the
// commit index is volatile in Raft, every entry applied here was synced
// to this WAL before (a Ready's entries are written before its committed
// entries apply), and the state machine's own durable state is never
// ahead of what its checkpoint image's hard state records. What a crash
// costs is that the restarted replica recovers a lower commit index, so
// its applied state starts behind what it had applied; its raft log
// still holds every entry it applied, and it applies them again once it
// hears the leader's commit index. Clients never see the difference:
// reads and coordinator loads wait for a ReadIndex round (a leader that
// has committed an entry of its term) and for the apply up to it; state
// read without one (the broker's metadata) syncs its commit index
// (CommitSyncer). This
// takes the commit's own fsync off the produce path: a leader answers as
// soon as a quorum's acknowledgements arrive. The simulator's state
// checker holds a restarted replica to exactly this (sim/checker.go,
// afterRestart).

// lazyCommitTicks bounds how long commit indexes wait for a sync.
const lazyCommitTicks = 2

// Writes off the loop (Config.AsyncWrites). A cycle with records ends
// with them handed to the caller (TakeWrite) and the cycle in flight: no
// group gets a new Ready until WriteDone, exactly as a cycle whose
// synchronous write has not returned, but the caller's thread is free to
// step messages, take proposals and reads, and tick meanwhile (etcd/raft
// allows all of these between Ready and Advance). Nothing of the cycle
// leaves or applies before its records are durable, except the leader's
// early appends, as in the synchronous form. What arrives meanwhile is in
// raft's memory when the write completes, so the next cycle takes it all
// at once: a group commit, with the loop never blocked on the disk.

// TakeWrite hands over the records of the cycle in flight, once: the
// caller appends them to the WAL, syncs it, and reports with WriteDone.
// Nil when there is nothing to write.
func (h *Host) TakeWrite() [][]byte {
	w := h.write
	h.write = nil
	if w != nil {
		h.takenAt = h.now()
	}
	return w
}

// WriteDone reports the outcome of the write TakeWrite handed over. On
// success the cycle finishes (call Process after it, as after Receive);
// an error stalls the host as a failed synchronous write does, and the
// next Process retries the write itself. An error wrapping ErrHalt is
// returned: the broker must stop.
func (h *Host) WriteDone(err error) error {
	st := h.inflight
	if st == nil || h.write != nil || h.inflightWritten {
		return errors.New("raftlog: WriteDone without a write handed over")
	}
	if err != nil {
		h.inflight = nil
		if errors.Is(err, ErrHalt) {
			return err
		}
		h.cfg.Logger.Warningf("raftlog: broker %d: WAL write failed, stalled until it works: %v", h.cfg.ID, err)
		h.stalled = st
		h.stallErr = err
		return nil
	}
	h.noteWritten(st.recs, h.takenAt, true)
	return h.completeInflight()
}

// completeInflight finishes the cycle in flight, whose records are durable.
func (h *Host) completeInflight() error {
	st := h.inflight
	h.inflight, h.inflightWritten = nil, false
	return h.finishCycle(st.rds, st.start)
}

// restoreSnapshots hands each snapshot of the cycle to its state machine.
func (h *Host) restoreSnapshots(rds []readyGroup) error {
	for _, r := range rds {
		if r.rd.Snapshot != nil && !raft.IsEmptySnap(r.rd.Snapshot) {
			if err := r.g.sm.Restore(r.rd.Snapshot.GetMetadata().GetIndex(), r.rd.Snapshot.GetData()); err != nil {
				return fmt.Errorf("raftlog: group %d restore snapshot: %w", r.g.id, err)
			}
		}
	}
	return nil
}

// sendEarly hands the eligible messages of this cycle to SendEarly and
// leaves the rest in the Readies for after the sync. Safe in this
// single-threaded host: a follower's acknowledgement of an early append
// can only be stepped after this cycle, so after the leader's own entries
// are durable; and a leader's term and vote are already on disk.
func (h *Host) sendEarly(rds []readyGroup) {
	early := map[uint64][]Envelope{}
	for i := range rds {
		r := &rds[i]
		if r.g.rn.BasicStatus().RaftState != raft.StateLeader || len(r.rd.Messages) == 0 {
			continue
		}
		if hs := r.rd.HardState; hs != nil && !raft.IsEmptyHardState(hs) {
			durable, _, _ := r.g.storage.InitialState()
			if hs.GetTerm() != durable.GetTerm() || hs.GetVote() != durable.GetVote() {
				continue
			}
		}
		rest := r.rd.Messages[:0:0]
		for _, m := range r.rd.Messages {
			switch m.GetType() {
			case pb.MessageType_MsgApp, pb.MessageType_MsgHeartbeat:
				early[m.GetTo()] = append(early[m.GetTo()], Envelope{Group: r.g.id, Msg: m})
			default:
				rest = append(rest, m)
			}
		}
		r.rd.Messages = rest
	}
	if len(early) == 0 {
		return
	}
	tos := make([]uint64, 0, len(early))
	for to := range early {
		tos = append(tos, to)
	}
	slices.Sort(tos)
	out := make([]Outgoing, 0, len(tos))
	for _, to := range tos {
		out = append(out, Outgoing{To: to, Payload: EncodeBatch(h.cfg.ID, early[to])})
	}
	h.cfg.SendEarly(out)
}

func (h *Host) appendWAL(recs [][]byte, sync bool) error {
	// The records of a cycle in flight that the caller has not taken yet
	// go first, to keep the WAL in cycle order (a group's removal after
	// its last records); that cycle then completes at the next Process.
	// Commit indexes waiting for a sync come next, for the same reason.
	inflight, lazy := h.write, h.lazy
	if inflight != nil || lazy != nil {
		recs = append(append(slices.Clip(inflight), lazy...), recs...)
		h.write, h.lazy = nil, nil
	}
	start := h.now()
	if err := h.wal.Append(recs); err != nil {
		h.write, h.lazy = inflight, lazy
		return fmt.Errorf("raftlog: wal append: %w", err)
	}
	h.noteWritten(recs, start, false)
	written := h.now()
	if h.cfg.Now != nil {
		h.stats.WALAppend.Observe(written - start)
	}
	if !sync {
		h.unsynced = true
		h.inflightWritten = h.inflightWritten || inflight != nil
		return nil
	}
	if err := h.wal.Sync(); err != nil {
		// The in-flight records are in the WAL, maybe not durably: the
		// next Process finds the cycle written and its sync failed, and
		// stalls it (a caller's WAL does the same through WriteDone).
		if inflight != nil {
			h.stalled, h.inflight = h.inflight, nil
			h.stallErr = err
		}
		return fmt.Errorf("raftlog: wal sync: %w", err)
	}
	h.stats.WALSyncs++
	if h.cfg.Now != nil {
		h.stats.WALSync.Observe(h.now() - written)
	}
	h.unsynced = false
	h.inflightWritten = h.inflightWritten || inflight != nil
	return nil
}

// noteWritten counts records appended to the WAL; byCaller: the caller's
// write, append and sync, timed from TakeWrite to WriteDone.
func (h *Host) noteWritten(recs [][]byte, start int64, byCaller bool) {
	h.stats.WALAppends++
	for _, r := range recs {
		h.walBytes += int64(len(r))
		h.stats.WALBytes += uint64(len(r))
	}
	if byCaller {
		h.stats.WALSyncs++
		if h.cfg.Now != nil {
			h.stats.WALAppend.Observe(h.now() - start)
		}
	}
}

// SyncWAL makes any records appended without a sync durable (only needed
// with UnsafeAckBeforeFsync).
func (h *Host) SyncWAL() error {
	if !h.unsynced {
		return nil
	}
	h.unsynced = false
	return h.wal.Sync()
}

func (h *Host) handleReady(g *group, rd raft.Ready) error {
	g.inCycle = false
	if rd.Snapshot != nil && !raft.IsEmptySnap(rd.Snapshot) {
		if err := g.storage.ApplySnapshot(rd.Snapshot); err != nil {
			return fmt.Errorf("raftlog: group %d apply snapshot: %w", g.id, err)
		}
	}
	if len(rd.Entries) > 0 {
		if err := appendEntries(g.storage.MemoryStorage, rd.Entries); err != nil {
			return fmt.Errorf("raftlog: group %d append: %w", g.id, err)
		}
	}
	if rd.HardState != nil && !raft.IsEmptyHardState(rd.HardState) {
		if err := g.storage.SetHardState(rd.HardState); err != nil {
			return err
		}
	}
	if rd.SoftState != nil || (rd.HardState != nil && rd.HardState.GetTerm() != g.term) {
		lead := g.lead
		if rd.SoftState != nil {
			lead = rd.SoftState.Lead
		}
		term := g.term
		if rd.HardState != nil && rd.HardState.Term != nil {
			term = rd.HardState.GetTerm()
		}
		if lead != g.lead || term != g.term {
			if lead != g.lead {
				h.stats.LeaderChanges++
				g.pending = g.pending[:0] // a new leader may rewrite the tail
			}
			g.lead, g.term = lead, term
			g.sm.LeaderChanged(lead, term)
		}
	}
	if rd.SoftState != nil && (rd.SoftState.RaftState == raft.StateCandidate || rd.SoftState.RaftState == raft.StatePreCandidate) {
		h.stats.Campaigns++
	}
	for _, m := range rd.Messages {
		to := m.GetTo()
		h.outbox[to] = append(h.outbox[to], Envelope{Group: g.id, Msg: m})
		h.stats.MessagesSent++
		if m.GetType() == pb.MessageType_MsgAppResp && g.appReceived != 0 {
			h.stats.FollowerAck.Observe(h.now() - g.appReceived)
			g.appReceived = 0
		}
		if m.GetType() == pb.MessageType_MsgSnap {
			h.stats.SnapshotsSent++
			// Treat a sent snapshot as delivered: if it was lost, the
			// follower rejects the next append and the leader sends another.
			g.rn.ReportSnapshot(to, raft.SnapshotFinish)
		}
	}
	if len(rd.ReadStates) > 0 {
		g.sm.ReadIndexReady(rd.ReadStates)
	}
	if len(rd.CommittedEntries) > 0 {
		normal := make([]*pb.Entry, 0, len(rd.CommittedEntries))
		for _, e := range rd.CommittedEntries {
			normal = append(normal, applyForm(e))
			switch e.GetType() {
			case pb.EntryType_EntryConfChange:
				var cc pb.ConfChange
				if err := proto.Unmarshal(e.GetData(), &cc); err != nil {
					return err
				}
				g.rn.ApplyConfChange(&cc)
			case pb.EntryType_EntryConfChangeV2:
				var cc pb.ConfChangeV2
				if err := proto.Unmarshal(e.GetData(), &cc); err != nil {
					return err
				}
				g.rn.ApplyConfChange(&cc)
			}
		}
		committed := h.now()
		if len(normal) > 0 {
			if err := g.sm.Apply(normal); err != nil {
				return fmt.Errorf("raftlog: group %d apply: %w", g.id, err)
			}
		}
		if len(g.pending) > 0 {
			h.noteApplied(g, rd.CommittedEntries[len(rd.CommittedEntries)-1].GetIndex(), committed)
		}
	}
	g.rn.Advance(rd)
	return nil
}

// applyForm is how an entry reaches StateMachine.Apply: normal entries as
// they are, configuration changes as empty normal entries, so that a state
// machine sees every index and can tell a gap from a skipped entry.
func applyForm(e *pb.Entry) *pb.Entry {
	if e.GetType() == pb.EntryType_EntryNormal {
		return e
	}
	return &pb.Entry{Index: e.Index, Term: e.Term, Type: pb.EntryType_EntryNormal.Enum()}
}

// Cycles counts the Ready cycles run so far (each one WAL sync at most).
func (h *Host) Cycles() uint64 { return h.cycles }

// HasReady reports whether any group has work for Process.
func (h *Host) HasReady() bool {
	if h.stalled != nil {
		return false // the next Process retries the WAL; no point spinning
	}
	if h.inflight != nil {
		return h.inflightWritten // only then can a cycle finish it
	}
	if h.flushLazy && len(h.lazy) > 0 {
		return true
	}
	for _, id := range h.ids {
		if g := h.groups[id]; !g.quiesced && g.rn.HasReady() {
			return true
		}
	}
	return false
}
