package raftlog

import (
	"go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// storage is raft's view of a group's log: the MemoryStorage mirror of the
// WAL, except that Snapshot is built on demand from the state machine, at
// its current applied index, under the metadata of the compaction point.
// The state machine's snapshot carries its own applied index, and Apply
// skips what it already has, so the entries raft re-sends after the
// compaction point do no harm.
type storage struct {
	*raft.MemoryStorage
	g *group
}

// Snapshot never fails with anything but raft.ErrSnapshotTemporarilyUnavailable:
// etcd/raft panics on any other error from Storage.Snapshot, and a state
// machine that cannot describe itself right now must not take its leader
// down. raft then retries the follower later.
func (s *storage) Snapshot() (*pb.Snapshot, error) {
	first, _ := s.FirstIndex()
	term, err := s.Term(first - 1)
	if err != nil {
		s.g.logf("raftlog: group %d snapshot term at %d: %v", s.g.id, first-1, err)
		return nil, raft.ErrSnapshotTemporarilyUnavailable
	}
	data, err := s.g.sm.Snapshot()
	if err != nil {
		s.g.logf("raftlog: group %d snapshot: %v", s.g.id, err)
		return nil, raft.ErrSnapshotTemporarilyUnavailable
	}
	return &pb.Snapshot{
		Data: data,
		Metadata: &pb.SnapshotMetadata{
			Index: proto.Uint64(first - 1), Term: proto.Uint64(term), ConfState: confState(s.g.voters),
		},
	}, nil
}
