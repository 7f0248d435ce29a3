package raftlog

import (
	"errors"
	"fmt"
	"slices"

	"go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// Recover reads the WAL and rebuilds every group's durable raft state. The
// groups stay dormant until CreateGroup attaches their state machines.
func (h *Host) Recover() error {
	image, recs, err := h.wal.ReadAll()
	if err != nil {
		return fmt.Errorf("raftlog: recover: %w", err)
	}
	if image != nil {
		imgRecs, err := decodeImage(image)
		if err != nil {
			return fmt.Errorf("raftlog: recover checkpoint image: %w", err)
		}
		recs = append(imgRecs, recs...)
	}
	for i, b := range recs {
		rec, err := decodeRecord(b)
		if err != nil {
			return fmt.Errorf("raftlog: recover record %d: %w", i, err)
		}
		if err := h.fold(rec); err != nil {
			return fmt.Errorf("raftlog: recover record %d (group %d): %w", i, rec.group, err)
		}
	}
	return nil
}

// fold applies one WAL record to the recovered state.
func (h *Host) fold(rec walRecord) error {
	switch rec.kind {
	case recCreate:
		h.recovered[rec.group] = &recovered{voters: rec.voters, ms: bootstrapStorage(rec.voters)}
	case recRemove:
		delete(h.recovered, rec.group)
	case recUpdate:
		r := h.recovered[rec.group]
		if r == nil {
			return errors.New("update for a group never created")
		}
		if rec.snap != nil {
			snap := &pb.Snapshot{Metadata: rec.snap}
			if err := r.ms.ApplySnapshot(snap); err != nil && !errors.Is(err, raft.ErrSnapOutOfDate) {
				return err
			}
		}
		if len(rec.entries) > 0 {
			if err := appendEntries(r.ms, rec.entries); err != nil {
				return err
			}
		}
		if rec.hs != nil {
			if err := r.ms.SetHardState(rec.hs); err != nil {
				return err
			}
		}
	}
	return nil
}

// appendEntries appends entries that may start below the storage's first
// index (after a compaction) or overwrite a conflicting suffix.
func appendEntries(ms *raft.MemoryStorage, ents []*pb.Entry) error {
	last, _ := ms.LastIndex()
	first, _ := ms.FirstIndex()
	// Entries wholly compacted away carry nothing new.
	if ents[len(ents)-1].GetIndex() < first {
		return nil
	}
	if ents[0].GetIndex() > last+1 {
		return fmt.Errorf("raftlog: gap appending index %d after %d", ents[0].GetIndex(), last)
	}
	return ms.Append(ents)
}

func confState(voters []uint64) *pb.ConfState {
	return &pb.ConfState{Voters: slices.Clone(voters)}
}

// bootstrapStorage is the state every replica of a new group starts from:
// the same snapshot at index 1 naming the voters, so no replica needs a
// configuration change entry and raft's own entries start at index 2.
func bootstrapStorage(voters []uint64) *raft.MemoryStorage {
	ms := raft.NewMemoryStorage()
	snap := &pb.Snapshot{Metadata: &pb.SnapshotMetadata{
		Index:     proto.Uint64(1),
		Term:      proto.Uint64(1),
		ConfState: confState(voters),
	}}
	if err := ms.ApplySnapshot(snap); err != nil {
		panic(err)
	}
	return ms
}

// RecoveredGroups lists groups found in the WAL that no CreateGroup has
// claimed yet.
func (h *Host) RecoveredGroups() []GroupID {
	ids := make([]GroupID, 0, len(h.recovered))
	for id := range h.recovered {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}
