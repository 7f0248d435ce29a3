package engine

import (
	"slices"

	"github.com/gregor-streaming/gregor/engine/rsm"
	"github.com/gregor-streaming/gregor/raftlog"
)

// replica is one kind of replicated state machine the broker hosts: a raft
// group's state machine (raftlog.StateMachine: apply, snapshot, restore,
// leader change) plus what the broker drives on every one of them. The
// Kafka partition and the metadata group are kinds today; the group and
// transaction coordinators will be more. Shared machinery (entry header,
// proposal table, ReadIndex rounds, waiters) lives in engine/rsm.
type replica interface {
	raftlog.StateMachine
	// kind is the kind every entry of this group carries.
	kind() rsm.Kind
	// tick runs once per broker tick: read-round timeouts, leader duties.
	tick()
	// startReads starts a ReadIndex round for the reads queued since the
	// last one, after each Process pass.
	startReads()
}

func (p *partition) kind() rsm.Kind { return rsm.KindPartition }
func (m *metaSM) kind() rsm.Kind    { return rsm.KindMetadata }
func (m *metaSM) tick()             {}
func (m *metaSM) startReads()       {}

// replicaIDs lists every hosted replica's group, sorted.
func (b *Broker) replicaIDs() []raftlog.GroupID {
	if b.replicaOrder == nil || len(b.replicaOrder) != len(b.replicas) {
		ids := make([]raftlog.GroupID, 0, len(b.replicas))
		for id := range b.replicas {
			ids = append(ids, id)
		}
		slices.Sort(ids)
		b.replicaOrder = ids
	}
	// Callers may host or unhost replicas while ranging: they range over
	// this slice, which the next change replaces rather than edits.
	return b.replicaOrder
}

// hostReplica starts group id on this broker with state machine r.
func (b *Broker) hostReplica(id raftlog.GroupID, voters []uint64, r replica, campaign bool) error {
	if err := b.host.CreateGroup(id, voters, r, campaign); err != nil {
		return err
	}
	b.replicas[id] = r
	b.replicaOrder = nil
	return nil
}

// unhostReplica stops group id here.
func (b *Broker) unhostReplica(id raftlog.GroupID) error {
	if err := b.host.RemoveGroup(id); err != nil {
		return err
	}
	delete(b.replicas, id)
	b.replicaOrder = nil
	return nil
}
