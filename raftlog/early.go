package raftlog

import (
	"slices"

	pb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// Limits on messages kept for groups not created yet. A message can carry
// up to MaxSizePerMsg of entries (more for one large entry), so the counts
// alone would allow gigabytes; earlyBytesMax bounds the memory, counted as
// the proto.Size of every kept message.
const (
	earlyGroupsMax   = 1024
	earlyPerGroupMax = 16
	earlyBytesMax    = 8 << 20
)

// earlyMsg is one kept message and its size as counted in Host.earlyBytes.
type earlyMsg struct {
	msg  *pb.Message
	size int
}

// keepEarly keeps a raft message for a group not created here yet, within
// the limits above. Over a limit, the oldest messages of the same group go
// first: raft's later messages to a replica supersede its earlier ones (a
// later term, a later commit, appends the leader will re-send from the
// match point anyway), which is also why the per-group count drops the
// oldest. But a group never evicts another group's messages: if its own
// messages cannot make room (the bytes are held by other groups, or the
// message alone exceeds earlyBytesMax), the new message is refused. Messages
// already kept arrived first, for the groups whose creating metadata entries
// are the likeliest to apply first, and a flood for many groups cannot churn
// them out. Whatever is refused or dropped, raft re-sends once the group
// exists; only the preferred leader's quick election is lost.
func (h *Host) keepEarly(e Envelope) {
	if e.Msg == nil {
		return
	}
	if _, ok := h.recovered[e.Group]; ok {
		// A recovered group waits for its state machine; raft resends.
		return
	}
	q, ok := h.early[e.Group]
	if !ok && len(h.early) >= earlyGroupsMax {
		return
	}
	size := proto.Size(e.Msg)
	own := 0
	for _, k := range q {
		own += k.size
	}
	if h.earlyBytes-own+size > earlyBytesMax {
		return
	}
	drop := 0
	for len(q)-drop >= earlyPerGroupMax || h.earlyBytes+size > earlyBytesMax {
		h.earlyBytes -= q[drop].size
		drop++
	}
	q = slices.Delete(q, 0, drop) // clears the dropped slots, so they can be freed
	h.early[e.Group] = append(q, earlyMsg{msg: e.Msg, size: size})
	h.earlyBytes += size
}

// takeEarly removes and returns the messages kept for group id, oldest
// first.
func (h *Host) takeEarly(id GroupID) []*pb.Message {
	q := h.early[id]
	delete(h.early, id)
	msgs := make([]*pb.Message, len(q))
	for i, k := range q {
		h.earlyBytes -= k.size
		msgs[i] = k.msg
	}
	return msgs
}
