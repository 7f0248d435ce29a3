package rsm

import (
	"bytes"
	"encoding/binary"

	"github.com/gregor-streaming/gregor/raftlog"
	"go.etcd.io/raft/v3"
)

// ReadIndexer is the part of the raft host a read round needs.
type ReadIndexer interface {
	ReadIndex(group raftlog.GroupID, ctx []byte) error
}

// Reads makes a leader's reads linearizable: a read is served only after a
// raft ReadIndex round that started after the read arrived has confirmed
// leadership and the state machine has applied up to the read index.
// Rounds are one at a time per group and batched: one round covers every
// read queued before it began, so a burst of reads costs one heartbeat
// round. A round unanswered for TimeoutTicks (the leader lost its quorum,
// or raft dropped the request) fails its reads.
//
// Reads answer with 0 or the code a caller passes to Fail; what the code
// means (NOT_LEADER_OR_FOLLOWER for a partition, NOT_COORDINATOR for a
// coordinator) is the state machine's business.
type Reads struct {
	Group        raftlog.GroupID
	TimeoutTicks int64
	// NotLeader is the code reads get when the round cannot confirm
	// leadership.
	NotLeader int16

	queue []func(code int16)
	round *readRound
	seq   uint64
}

type readRound struct {
	ctx       []byte
	fns       []func(int16)
	index     uint64
	answered  bool
	startTick int64
}

// Add queues fn for the next round.
func (r *Reads) Add(fn func(code int16)) { r.queue = append(r.queue, fn) }

// Start starts a round for the queued reads if none is in flight. leader
// is whether this replica leads now; a non-leader fails the queue at once.
func (r *Reads) Start(host ReadIndexer, leader bool, nowTick int64) {
	if r.round != nil || len(r.queue) == 0 {
		return
	}
	if !leader {
		r.Fail(r.NotLeader)
		return
	}
	r.seq++
	ctx := binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64(nil, uint64(r.Group)), r.seq)
	r.round = &readRound{ctx: ctx, fns: r.queue, startTick: nowTick}
	r.queue = nil
	if err := host.ReadIndex(r.Group, ctx); err != nil {
		r.Fail(r.NotLeader)
	}
}

// Ready takes raft's ReadStates; the round completes once applied reaches
// its index.
func (r *Reads) Ready(states []raft.ReadState, applied uint64) {
	for _, rs := range states {
		if r.round != nil && bytes.Equal(rs.RequestCtx, r.round.ctx) {
			r.round.index, r.round.answered = rs.Index, true
		}
	}
	r.Applied(applied)
}

// Applied tells the reads how far the state machine has applied; an
// answered round whose index is reached releases its reads.
func (r *Reads) Applied(applied uint64) {
	rd := r.round
	if rd == nil || !rd.answered || applied < rd.index {
		return
	}
	r.round = nil
	for _, fn := range rd.fns {
		fn(0)
	}
}

// Tick fails a round that has waited longer than TimeoutTicks.
func (r *Reads) Tick(nowTick int64) {
	if r.round != nil && nowTick-r.round.startTick > r.TimeoutTicks {
		fns := r.round.fns
		r.round = nil
		for _, fn := range fns {
			fn(r.NotLeader)
		}
	}
}

// Fail answers the round in flight and every queued read with code.
func (r *Reads) Fail(code int16) {
	q := r.queue
	r.queue = nil
	if r.round != nil {
		q = append(r.round.fns, q...)
		r.round = nil
	}
	for _, fn := range q {
		fn(code)
	}
}

// Len counts the reads waiting, queued or in a round.
func (r *Reads) Len() int {
	n := len(r.queue)
	if r.round != nil {
		n += len(r.round.fns)
	}
	return n
}
