package raftlog

import (
	"fmt"

	pb "go.etcd.io/raft/v3/raftpb"
)

// PeerMsg is a broker-to-broker message between state machines: a request
// or a response, opaque to the host, about one group. It rides the same
// transport payloads as raft messages, so the real runtime carries it over
// the peer connection and the simulator over its network, with the same
// faults (loss, delay, partitions): whoever sends one must time it out.
type PeerMsg struct {
	From  uint64
	Group GroupID
	Data  []byte
}

// SendPeer queues a broker-to-broker message for broker to; it leaves with
// the next Outbox.
func (h *Host) SendPeer(to uint64, group GroupID, data []byte) {
	h.outbox[to] = append(h.outbox[to], Envelope{Group: group, Peer: data})
}

// PeerInbox drains the broker-to-broker messages received since the last
// call, in arrival order.
func (h *Host) PeerInbox() []PeerMsg {
	in := h.peerIn
	h.peerIn = nil
	return in
}

// Entries returns group id's raft entries in [lo, hi) from its in-memory
// log, as handed to Apply (conf changes as empty normal entries). It fails
// if part of the range was compacted away.
func (h *Host) Entries(id GroupID, lo, hi uint64) ([]*pb.Entry, error) {
	g, ok := h.groups[id]
	if !ok {
		return nil, fmt.Errorf("raftlog: no group %d", id)
	}
	if lo >= hi {
		return nil, nil
	}
	if last, _ := g.storage.LastIndex(); hi > last+1 {
		// MemoryStorage panics on a range past its end.
		return nil, fmt.Errorf("raftlog: group %d entries [%d, %d): the log ends at %d", id, lo, hi, last)
	}
	ents, err := g.storage.Entries(lo, hi, ^uint64(0))
	if err != nil {
		return nil, fmt.Errorf("raftlog: group %d entries [%d, %d): %w", id, lo, hi, err)
	}
	out := make([]*pb.Entry, len(ents))
	for i, e := range ents {
		out[i] = applyForm(e)
	}
	return out, nil
}

// FirstIndex is the first raft index group id still holds in memory: a
// state machine that lost its state must get one at least at FirstIndex-1
// from a peer to go on from raft's log.
func (h *Host) FirstIndex(id GroupID) (uint64, bool) {
	g, ok := h.groups[id]
	if !ok {
		return 0, false
	}
	first, _ := g.storage.FirstIndex()
	return first, true
}

// LastIndex is the index of the last entry of group id's raft log here
// (the entries of a cycle in flight not counted).
func (h *Host) LastIndex(id GroupID) (uint64, bool) {
	g, ok := h.groups[id]
	if !ok {
		return 0, false
	}
	last, _ := g.storage.LastIndex()
	return last, true
}
