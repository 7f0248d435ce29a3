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

func (s *storage) Snapshot() (*pb.Snapshot, error) {
	first, _ := s.FirstIndex()
	term, err := s.Term(first - 1)
	if err != nil {
		return nil, err
	}
	data, err := s.g.sm.Snapshot()
	if err != nil {
		return nil, err
	}
	return &pb.Snapshot{
		Data: data,
		Metadata: &pb.SnapshotMetadata{
			Index: proto.Uint64(first - 1), Term: proto.Uint64(term), ConfState: confState(s.g.voters),
		},
	}, nil
}
