package raftlog

import (
	"fmt"
	"slices"
	"testing"
)

// Writes off the loop (Config.AsyncWrites): the host hands each cycle's
// records to the caller and finishes the cycle only at WriteDone.

func TestAsyncWritesReplicateAndRecover(t *testing.T) {
	c := newAsyncCluster(t, 3)
	for g := GroupID(1); g <= 4; g++ {
		c.createGroup(g, 1, 2, 3)
	}
	c.stabilize()
	for g := GroupID(1); g <= 4; g++ {
		for i := range 3 {
			c.propose(g, fmt.Sprintf("g%d-%d", g, i))
		}
	}
	c.tick(3)
	for g := GroupID(1); g <= 4; g++ {
		c.requireData(g, []string{fmt.Sprintf("g%d-0", g), fmt.Sprintf("g%d-1", g), fmt.Sprintf("g%d-2", g)}, 1, 2, 3)
	}
	if st := c.nodes[1].host.Stats(); st.WALSyncs == 0 {
		t.Fatal("no write was handed over and reported")
	}
	// Every broker restarts from what its WAL holds.
	for _, id := range c.ids {
		c.nodes[id].down = true
	}
	for _, id := range c.ids {
		c.start(id)
	}
	c.tick(30)
	for g := GroupID(1); g <= 4; g++ {
		c.requireData(g, []string{fmt.Sprintf("g%d-0", g), fmt.Sprintf("g%d-1", g), fmt.Sprintf("g%d-2", g)}, 1, 2, 3)
	}
}

// A follower acknowledges an append only once its write is reported
// durable, and the leader commits only on a quorum of durable copies: with
// both followers' writes held, nothing commits whatever else happens.
func TestAsyncWriteHeldHoldsTheCommit(t *testing.T) {
	c := newAsyncCluster(t, 3)
	c.createGroup(1, 1, 2, 3)
	c.stabilize()
	c.propose(1, "a")
	c.tick(3)
	c.requireData(1, []string{"a"}, 1, 2, 3)
	c.hold[2], c.hold[3] = true, true
	c.propose(1, "b")
	c.tick(5) // steps, ticks and proposals go on while the writes wait
	if c.held[2] == nil || c.held[3] == nil {
		t.Fatalf("the followers' writes were not handed over: %v", c.held)
	}
	for _, id := range c.ids {
		if d := c.nodes[id].sms[1].data; !slices.Equal(d, []string{"a"}) {
			t.Fatalf("broker %d applied %v before a quorum's writes were durable", id, d)
		}
	}
	if c.nodes[2].host.HasReady() {
		t.Fatal("a host with a write in flight reports a Ready")
	}
	c.hold[2] = false
	c.release(2)
	c.tick(3)
	c.requireData(1, []string{"a", "b"}, 1, 2)
	c.hold[3] = false
	c.release(3)
	c.tick(3)
	c.requireData(1, []string{"a", "b"}, 3)
}

// A WAL call the host makes itself (here a group's removal) while the
// cycle in flight is not taken yet writes that cycle's records first, and
// the cycle then finishes without a WriteDone: the WAL keeps cycle order.
func TestAsyncWriteOrderWithHostWrites(t *testing.T) {
	c := newAsyncCluster(t, 1)
	c.createGroup(1, 1)
	c.createGroup(2, 1)
	c.stabilize()
	h, w := c.nodes[1].host, c.nodes[1].wal
	if err := h.Propose(1, []byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := h.Process(); err != nil {
		t.Fatal(err)
	}
	before := len(w.recs)
	if h.write == nil {
		t.Fatal("no cycle in flight")
	}
	if err := h.RemoveGroup(2); err != nil {
		t.Fatal(err)
	}
	if h.TakeWrite() != nil {
		t.Fatal("the write was handed over after the host wrote it")
	}
	got := w.recs[before:]
	if len(got) < 2 {
		t.Fatalf("WAL got %d records, want the cycle's and the removal", len(got))
	}
	if last, err := decodeRecord(got[len(got)-1]); err != nil || last.kind != recRemove || last.group != 2 {
		t.Fatalf("the removal is not the last record: %+v %v", last, err)
	}
	if err := h.WriteDone(nil); err == nil {
		t.Fatal("WriteDone accepted for a write never handed over")
	}
	c.stabilize()
	c.requireData(1, []string{"x"}, 1)
}

// A failed write stalls the host as a failed synchronous write does; the
// next Process retries it and the cycle finishes once the WAL works.
func TestAsyncWriteFailureStalls(t *testing.T) {
	c := newAsyncCluster(t, 3)
	c.createGroup(1, 1, 2, 3)
	c.stabilize()
	c.propose(1, "a")
	c.tick(3)
	n3 := c.nodes[3]
	n3.wal.full = true
	c.propose(1, "b")
	c.tick(3)
	if n3.host.Stalled() == nil {
		t.Fatal("broker 3 is not stalled")
	}
	c.requireData(1, []string{"a", "b"}, 1, 2)
	if d := n3.sms[1].data; !slices.Equal(d, []string{"a"}) {
		t.Fatalf("a stalled broker applied %v", d)
	}
	n3.wal.full = false
	c.tick(5)
	if err := n3.host.Stalled(); err != nil {
		t.Fatalf("still stalled: %v", err)
	}
	c.requireData(1, []string{"a", "b"}, 3)
}
