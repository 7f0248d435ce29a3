package engine

import (
	"cmp"
	"encoding/binary"
	"slices"
	"strings"

	"github.com/gregor-streaming/gregor/engine/segment"
	"github.com/gregor-streaming/gregor/raftlog"
)

// ReplicaState is one partition replica as its broker sees it, for the
// simulator's checkers and for tests. It is not part of the Kafka surface.
type ReplicaState struct {
	Topic     string
	Partition int32
	Group     uint64
	Replicas  []int32
	Leader    bool   // this replica is the raft leader
	Lead      uint64 // the leader it knows of (0 = none)
	Term      uint64 // raft term = Kafka leader epoch
	Applied   uint64 // raft index applied
	// RaftFirst and RaftLast bound the entries raft's log holds here.
	RaftFirst, RaftLast uint64
	// HighWatermark is the end of the applied log: every offset below it
	// is committed.
	HighWatermark int64
	StartOffset   int64
	// Lost: the replica's state is behind raft's log (or its disk failed)
	// and it serves nothing until it has a peer's state or its storage
	// works again.
	Lost bool
	// Undurable: a storage failure left applied state no checkpoint
	// holds (see partition.undurable).
	Undurable bool
}

// Replicas lists the partition replicas hosted here, sorted by topic and
// partition.
func (b *Broker) Replicas() []ReplicaState {
	var out []ReplicaState
	for _, id := range b.partIDs() {
		p := b.parts[id]
		first, _ := b.host.FirstIndex(id)
		last, _ := b.host.LastIndex(id)
		out = append(out, ReplicaState{
			RaftFirst: first, RaftLast: last,
			Topic: p.topic, Partition: p.index, Group: uint64(p.group), Replicas: slices.Clone(p.replicas),
			Leader: p.leader, Lead: p.lead, Term: p.term, Applied: p.applied,
			HighWatermark: p.highWatermark(), StartOffset: p.startOffset(),
			Lost: p.lost, Undurable: p.undurable,
		})
	}
	slices.SortFunc(out, func(a, b ReplicaState) int {
		return cmp.Or(strings.Compare(a.Topic, b.Topic), cmp.Compare(a.Partition, b.Partition))
	})
	return out
}

// ReplicaBatches calls fn for each stored record batch of the local replica
// of topic-partition starting with the one holding offset from, whatever
// this replica's role. The batch slice is only valid during the call.
// ok is false if the replica is not hosted here.
func (b *Broker) ReplicaBatches(topic string, partition int32, from int64, fn func(batch []byte, baseOffset, lastOffset int64) error) (ok bool, err error) {
	pm, found := b.meta.partition(topic, partition)
	if !found {
		return false, nil
	}
	p := b.parts[pm.Group]
	if p == nil {
		return false, nil
	}
	if from < p.log.StartOffset() {
		from = p.log.StartOffset()
	}
	if from >= p.log.EndOffset() {
		return true, nil
	}
	// The batch's own base offset: after compaction the frame may cover a
	// gap before it (compaction.go).
	return true, p.log.Batches(from, func(bb []byte, m segment.BatchMeta) error {
		return fn(bb, max(m.BaseOffset, int64(binary.BigEndian.Uint64(bb))), m.LastOffset)
	})
}

// MetadataLeader is the metadata group's leader as this broker knows it.
func (b *Broker) MetadataLeader() uint64 { return b.meta.lead }

// Topics lists the topics in this broker's applied metadata, sorted.
func (b *Broker) Topics() []string { return b.meta.topicNames() }

// RaftStats is the raft host's counters and histograms (raftlog.Stats).
func (b *Broker) RaftStats() raftlog.Stats { return b.host.Stats() }

// PartitionStats is one hosted replica for the metrics: its offsets, the
// bytes of its segments and, on the leader, how many replicas are in
// sync.
type PartitionStats struct {
	Topic         string
	Partition     int32
	Leader        bool
	Replicas      int
	InSync        int // on the leader; 0 elsewhere
	HighWatermark int64
	StartOffset   int64
	SizeBytes     int64
}

// PartitionStats lists the hosted replicas, sorted by topic and partition.
func (b *Broker) PartitionStats() []PartitionStats {
	out := make([]PartitionStats, 0, len(b.parts))
	for _, id := range b.partIDs() {
		p := b.parts[id]
		ps := PartitionStats{Topic: p.topic, Partition: p.index, Leader: p.leader, Replicas: len(p.replicas),
			HighWatermark: p.highWatermark(), StartOffset: p.startOffset()}
		if p.leader {
			ps.InSync = len(p.isr())
		}
		ps.SizeBytes = p.sizeBytes()
		out = append(out, ps)
	}
	slices.SortFunc(out, func(a, b PartitionStats) int {
		return cmp.Or(strings.Compare(a.Topic, b.Topic), cmp.Compare(a.Partition, b.Partition))
	})
	return out
}

// sizeBytes is the bytes of the partition's segments here.
func (p *partition) sizeBytes() int64 {
	var n int64
	if p.log != nil {
		for _, s := range p.log.Segments() {
			n += s.Size
		}
	}
	return n
}
