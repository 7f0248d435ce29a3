package raftlog

import (
	"errors"
	"fmt"

	"go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// Checkpoint makes every group's applied state durable outside the WAL,
// compacts each raft log up to that point, and writes a checkpoint image so
// the WAL before it can be purged.
func (h *Host) Checkpoint() error {
	if h.stalled != nil {
		return fmt.Errorf("raftlog: checkpoint: WAL stalled: %w", h.stallErr)
	}
	if h.inflight != nil {
		// The image would leave out the cycle in flight, whose records
		// come before it in the WAL; the cycle that crosses
		// CheckpointBytes checkpoints once nothing is in flight.
		return nil
	}
	var image [][]byte
	for _, id := range h.ids {
		g := h.groups[id]
		durable, err := g.sm.Sync()
		if err != nil {
			return fmt.Errorf("raftlog: group %d sync: %w", id, err)
		}
		ms := g.storage.MemoryStorage
		first, _ := ms.FirstIndex()
		last, _ := ms.LastIndex()
		// Never past what raft has applied: a state machine that
		// installed a peer's state may be ahead of raft, and raft must
		// still find every entry after its applied index in storage.
		applied := g.rn.BasicStatus().Applied
		if durable = min(durable, last, applied); durable >= first {
			if err := ms.Compact(durable); err != nil && !errors.Is(err, raft.ErrCompacted) {
				return fmt.Errorf("raftlog: group %d compact: %w", id, err)
			}
		}
		image = append(image, h.groupImage(g.id, g.voters, ms)...)
	}
	// Groups recovered but not yet claimed keep their state too.
	for _, id := range h.RecoveredGroups() {
		r := h.recovered[id]
		image = append(image, h.groupImage(id, r.voters, r.ms)...)
	}
	if err := h.wal.Checkpoint(encodeImage(image)); err != nil {
		return fmt.Errorf("raftlog: wal checkpoint: %w", err)
	}
	h.walBytes = 0
	h.unsynced = false
	// The image holds every hard state, commit indexes included.
	h.lazy, h.flushLazy, h.lazyTicks = nil, false, 0
	return nil
}

func (h *Host) groupImage(id GroupID, voters []uint64, ms *raft.MemoryStorage) [][]byte {
	first, _ := ms.FirstIndex()
	last, _ := ms.LastIndex()
	term, _ := ms.Term(first - 1)
	hs, _, _ := ms.InitialState()
	var ents []*pb.Entry
	if last >= first {
		ents, _ = ms.Entries(first, last+1, ^uint64(0))
	}
	snap := &pb.SnapshotMetadata{Index: proto.Uint64(first - 1), Term: proto.Uint64(term), ConfState: confState(voters)}
	var hsp *pb.HardState
	if !raft.IsEmptyHardState(hs) {
		hsp = hs
	}
	return [][]byte{encodeCreate(id, voters), encodeUpdate(id, hsp, snap, ents)}
}
