package rsm

import (
	"errors"
	"slices"
	"testing"

	"github.com/gregor-streaming/gregor/raftlog"
	"go.etcd.io/raft/v3"
	"pgregory.net/rapid"
)

func TestHeaderRoundTrip(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		h := Header{
			Kind:     Kind(rapid.Byte().Draw(t, "kind")),
			Op:       rapid.Byte().Draw(t, "op"),
			Proposer: rapid.Int32().Draw(t, "proposer"),
			Boot:     rapid.Uint64().Draw(t, "boot"),
			Seq:      rapid.Uint64().Draw(t, "seq"),
		}
		body := rapid.SliceOf(rapid.Byte()).Draw(t, "body")
		got, rest, err := Parse(h.Encode(body))
		if err != nil || got != h || !slices.Equal(rest, body) {
			t.Fatalf("Parse(Encode(%+v, %x)) = %+v, %x, %v", h, body, got, rest, err)
		}
	})
}

func FuzzParseHeader(f *testing.F) {
	f.Add(Header{Kind: KindPartition, Op: 1, Proposer: 3, Boot: 9, Seq: 77}.Encode([]byte("records")))
	f.Add([]byte{headerVersion, 1, 1, 0xff})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		h, rest, err := Parse(data)
		if err != nil {
			return
		}
		// What parses re-encodes to the same bytes, unless varints were
		// written non-minimally.
		again, rest2, err := Parse(h.Encode(rest))
		if err != nil || again != h || !slices.Equal(rest, rest2) {
			t.Fatalf("re-parse of %+v: %+v %v", h, again, err)
		}
	})
}

func TestProposer(t *testing.T) {
	p := Proposer{ID: 2, Boot: 5}
	a, b := p.Next(KindPartition, 1), p.Next(KindMetadata, 1)
	if a.Seq == b.Seq || !p.Mine(a) || !p.Mine(b) {
		t.Fatalf("sequences %d %d, mine %v %v", a.Seq, b.Seq, p.Mine(a), p.Mine(b))
	}
	old := Proposer{ID: 2, Boot: 4}
	if old.Mine(a) || (&Proposer{ID: 3, Boot: 5}).Mine(a) {
		t.Fatal("another run's or broker's proposal taken for ours")
	}
}

func TestProposalsCallOnceAndForget(t *testing.T) {
	var p Proposals[int]
	var got []int
	for seq := uint64(1); seq <= 3; seq++ {
		p.Add(seq, func(r int) { got = append(got, int(seq)*10+r) })
	}
	if !p.Resolve(2, 1) || p.Resolve(2, 1) || p.Resolve(9, 1) {
		t.Fatal("Resolve must call a waiter exactly once")
	}
	if !p.Cancel(3) || p.Cancel(3) {
		t.Fatal("Cancel")
	}
	p.Add(4, func(r int) { got = append(got, 40+r) })
	p.FailAll(7)
	if !slices.Equal(got, []int{21, 17, 47}) || p.Len() != 0 {
		t.Fatalf("got %v, %d left", got, p.Len())
	}
}

func TestWaitersRemovedWhenAnsweredOrGivenUp(t *testing.T) {
	var w Waiters
	var got []int
	a := w.Add(func() { got = append(got, 1) })
	w.Add(func() { got = append(got, 2); w.Add(func() { got = append(got, 3) }) })
	a.Remove()
	a.Remove()
	w.Wake()
	if !slices.Equal(got, []int{2}) || w.Len() != 1 {
		t.Fatalf("first wake: %v, %d left", got, w.Len())
	}
	w.Wake()
	if !slices.Equal(got, []int{2, 3}) || w.Len() != 0 {
		t.Fatalf("second wake: %v, %d left", got, w.Len())
	}
	// 200 long polls answered by their own timeouts leave nothing behind.
	for range 200 {
		w.Add(func() {}).Remove()
	}
	if w.Len() != 0 {
		t.Fatalf("%d removed waiters still held", w.Len())
	}
}

type fakeHost struct {
	ctxs [][]byte
	err  error
}

func (f *fakeHost) ReadIndex(_ raftlog.GroupID, ctx []byte) error {
	f.ctxs = append(f.ctxs, ctx)
	return f.err
}

func TestReadsRounds(t *testing.T) {
	const notLeader = 6
	r := Reads{Group: 7, TimeoutTicks: 20, NotLeader: notLeader}
	h := &fakeHost{}
	var got []int16
	add := func() { r.Add(func(c int16) { got = append(got, c) }) }

	add()
	add()
	r.Start(h, true, 0)
	add() // queued behind the round in flight: waits for the next one
	r.Start(h, true, 0)
	if len(h.ctxs) != 1 {
		t.Fatalf("%d rounds in flight, want 1", len(h.ctxs))
	}
	r.Ready([]raft.ReadState{{Index: 10, RequestCtx: h.ctxs[0]}}, 9)
	if len(got) != 0 {
		t.Fatal("reads released before the state applied the read index")
	}
	r.Applied(10)
	if !slices.Equal(got, []int16{0, 0}) || r.Len() != 1 {
		t.Fatalf("after apply: %v, %d waiting", got, r.Len())
	}
	// A stale answer to an old round does not release the new one.
	r.Start(h, true, 5)
	r.Ready([]raft.ReadState{{Index: 1, RequestCtx: h.ctxs[0]}}, 100)
	if len(got) != 2 {
		t.Fatal("an old round's ReadState released a new round")
	}
	r.Tick(25)
	if !slices.Equal(got, []int16{0, 0}) {
		t.Fatal("round timed out early")
	}
	r.Tick(26)
	if !slices.Equal(got, []int16{0, 0, notLeader}) || r.Len() != 0 {
		t.Fatalf("after timeout: %v", got)
	}
	// Not the leader, or raft refusing: the reads fail at once.
	add()
	r.Start(h, false, 30)
	h.err = errors.New("no leader")
	add()
	r.Start(h, true, 30)
	if !slices.Equal(got, []int16{0, 0, notLeader, notLeader, notLeader}) {
		t.Fatalf("got %v", got)
	}
}
