package raftlog

import (
	"testing"

	pb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// earlyKept recomputes, from the messages themselves, the bytes and the
// number of messages the host keeps for groups not created yet, and checks
// that its running count agrees.
func earlyKept(t *testing.T, h *Host) (bytes, msgs int) {
	t.Helper()
	for _, q := range h.early {
		for _, k := range q {
			bytes += proto.Size(k.msg)
			msgs++
		}
	}
	if bytes != h.earlyBytes {
		t.Fatalf("earlyBytes %d, but the kept messages are %d bytes", h.earlyBytes, bytes)
	}
	return bytes, msgs
}

// bigApp is an append from broker 2 to broker 1 carrying n bytes.
func bigApp(g GroupID, index uint64, n int) Envelope {
	typ := pb.MessageType_MsgApp
	return Envelope{Group: g, Msg: &pb.Message{
		Type: &typ, From: u64(2), To: u64(1), Term: u64(2), Index: u64(index), LogTerm: u64(1),
		Entries: []*pb.Entry{{Index: u64(index + 1), Term: u64(2), Data: make([]byte, n)}},
	}}
}

func newLoneHost(t *testing.T) *Host {
	t.Helper()
	h, err := New(Config{ID: 1}, &testWAL{})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Recover(); err != nil {
		t.Fatal(err)
	}
	return h
}

// TestEarlyBytesBounded: large messages for many groups not created yet
// (64 groups × 4 appends × 256 KiB = 64 MiB offered, within the count
// limits) keep at most earlyBytesMax in memory, and the running count
// stays exact as messages are dropped, refused and removed.
func TestEarlyBytesBounded(t *testing.T) {
	h := newLoneHost(t)
	offered := 0
	for i := range 4 {
		for g := GroupID(100); g < 164; g++ {
			e := bigApp(g, uint64(i+1), 256<<10)
			offered += proto.Size(e.Msg)
			if err := h.Receive(EncodeBatch(2, []Envelope{e})); err != nil {
				t.Fatal(err)
			}
			if b, _ := earlyKept(t, h); b > earlyBytesMax {
				t.Fatalf("after %d bytes offered, %d bytes kept; the bound is %d", offered, b, earlyBytesMax)
			}
		}
	}
	b, n := earlyKept(t, h)
	if b < earlyBytesMax/2 {
		t.Fatalf("only %d bytes kept of %d offered; the buffer should fill to near its bound %d", b, offered, earlyBytesMax)
	}
	// Messages kept first stay: the later groups' were refused.
	if len(h.early[100]) == 0 || len(h.early[163]) != 0 {
		t.Fatalf("kept for group 100: %d, for group 163: %d; want the first groups kept", len(h.early[100]), len(h.early[163]))
	}
	// Removing a group that never ran frees its messages exactly.
	if err := h.RemoveGroup(100); err != nil {
		t.Fatal(err)
	}
	if b2, n2 := earlyKept(t, h); n2 >= n || b2 >= b || h.early[100] != nil {
		t.Fatalf("after RemoveGroup: %d messages, %d bytes (before %d, %d)", n2, b2, n, b)
	}

	// One group's own messages make room for its newer ones, oldest first.
	h = newLoneHost(t)
	for i := range uint64(16) {
		if err := h.Receive(EncodeBatch(2, []Envelope{bigApp(7, i+1, 1<<20)})); err != nil {
			t.Fatal(err)
		}
		if b, _ := earlyKept(t, h); b > earlyBytesMax {
			t.Fatalf("%d bytes kept for one group; the bound is %d", b, earlyBytesMax)
		}
	}
	q := h.early[7]
	if len(q) == 0 || len(q) >= 8 {
		t.Fatalf("%d messages of 1 MiB kept; want fewer than 8", len(q))
	}
	for i, k := range q {
		if want := uint64(16 - len(q) + i + 1); k.msg.GetIndex() != want {
			t.Fatalf("kept message %d has index %d, want %d (the newest, in order)", i, k.msg.GetIndex(), want)
		}
	}
	// A message larger than the whole bound is refused and evicts nothing.
	before, _ := earlyKept(t, h)
	if err := h.Receive(EncodeBatch(2, []Envelope{bigApp(7, 17, earlyBytesMax+1)})); err != nil {
		t.Fatal(err)
	}
	if after, _ := earlyKept(t, h); after != before || len(h.early[7]) != len(q) {
		t.Fatalf("an oversized message changed the kept bytes from %d to %d", before, after)
	}
}

// TestEarlyReplayElects: with the early buffer mostly full of other
// groups' large messages, a new group's vote request that arrives before
// the group exists is kept and replayed at CreateGroup, so the preferred
// leader wins without waiting out an election timeout (no tick here), and
// the replayed messages leave the count.
func TestEarlyReplayElects(t *testing.T) {
	c := newCluster(t, 2)
	h2 := c.nodes[2].host
	for g := GroupID(1000); g < 1007; g++ {
		typ := pb.MessageType_MsgApp
		m := &pb.Message{Type: &typ, From: u64(1), To: u64(2), Term: u64(2), Index: u64(1), LogTerm: u64(1),
			Entries: []*pb.Entry{{Index: u64(2), Term: u64(2), Data: make([]byte, 1<<20)}}}
		if err := h2.Receive(EncodeBatch(1, []Envelope{{Group: g, Msg: m}})); err != nil {
			t.Fatal(err)
		}
	}
	junk, _ := earlyKept(t, h2)
	if junk < 7<<20 {
		t.Fatalf("%d bytes of other groups kept, want 7 MiB", junk)
	}
	c.attach(1, 7, []uint64{1, 2}, true) // broker 1 campaigns; broker 2 has no group 7 yet
	c.stabilize()
	if len(h2.early[7]) == 0 {
		t.Fatal("the vote request for group 7 was not kept")
	}
	if c.leader(7) != 0 {
		t.Fatalf("group 7 has leader %d before broker 2 has the group", c.leader(7))
	}
	c.attach(2, 7, []uint64{1, 2}, false)
	if b, _ := earlyKept(t, h2); b != junk || h2.early[7] != nil {
		t.Fatalf("after the replay %d bytes kept (want %d), group 7 still has %d", b, junk, len(h2.early[7]))
	}
	c.stabilize()
	if c.leader(7) != 1 {
		t.Fatalf("group 7 leader %d after the replay, want 1 at once", c.leader(7))
	}
	c.propose(7, "x")
	c.tick(3)
	c.requireData(7, []string{"x"}, 1, 2)
}
