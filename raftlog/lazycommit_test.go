package raftlog

import (
	"slices"
	"testing"
)

// A cycle that only moves commit indexes writes nothing and applies at
// once; the records ride with the next write. A replica that crashes
// before they are written comes back with an older commit index, its
// raft log still holding every entry it applied, and applies them again
// once it hears the leader.
func TestLazyCommitIndex(t *testing.T) {
	for _, async := range []bool{false, true} {
		name := "sync"
		if async {
			name = "async"
		}
		t.Run(name, func(t *testing.T) {
			c := newClusterMode(t, 3, async)
			c.createGroup(1, 1, 2, 3)
			c.stabilize()
			c.propose(1, "a")
			c.tick(lazyCommitTicks + 1) // every commit index written
			n2 := c.nodes[2]
			if len(n2.host.lazy) != 0 {
				t.Fatalf("commit indexes still waiting after %d ticks", lazyCommitTicks+1)
			}
			walBefore := len(n2.wal.recs)
			c.propose(1, "b")
			// The follower learns the commit from the leader's next message
			// (stabilize delivers the leader's commit in its appends' answers
			// round): it applies "b" with nothing written for the commit.
			c.requireData(1, []string{"a", "b"}, 1, 2, 3)
			if len(n2.host.lazy) == 0 {
				t.Fatal("the follower's commit index was written at once, not left for the next write")
			}
			applied := n2.sms[1].applied
			// Crash the follower now: only its synced records survive.
			n2.down = true
			if len(n2.wal.recs) < walBefore {
				t.Fatal("WAL shrank")
			}
			c.start(2)
			h := c.nodes[2].host
			if last, _ := h.LastIndex(1); last < applied {
				t.Fatalf("raft log ends at %d after the restart, but %d was applied before it", last, applied)
			}
			if err := h.Process(); err != nil {
				t.Fatal(err)
			}
			if d := c.nodes[2].sms[1].data; !slices.Equal(d, []string{"a"}) {
				t.Fatalf("recovered applying %v: want only what the written commit index covers, [a]", d)
			}
			c.tick(3)
			c.requireData(1, []string{"a", "b"}, 2)
			if got := c.nodes[2].sms[1].applied; got < applied {
				t.Fatalf("applied %d after catching up, %d before the crash", got, applied)
			}
		})
	}
}

// Commit indexes waiting for a sync go first in the host's own WAL
// writes, so the WAL keeps cycle order.
func TestLazyCommitBeforeHostWrite(t *testing.T) {
	c := newCluster(t, 3)
	c.createGroup(1, 1, 2, 3)
	c.stabilize()
	c.propose(1, "a")
	c.stabilize()
	n2 := c.nodes[2]
	if len(n2.host.lazy) == 0 {
		t.Skip("no commit index waiting (the timing of this harness changed)")
	}
	waiting := len(n2.host.lazy)
	before := len(n2.wal.recs)
	c.attach(2, 9, []uint64{2}, false)
	got := n2.wal.recs[before:]
	if len(got) != waiting+1 {
		t.Fatalf("the host's write took %d records, want %d waiting and its own", len(got), waiting)
	}
	if r, err := decodeRecord(got[len(got)-1]); err != nil || r.kind != recCreate {
		t.Fatalf("the group's creation is not last: %+v %v", r, err)
	}
	if len(n2.host.lazy) != 0 {
		t.Fatal("commit indexes still waiting after the host's write")
	}
}

// syncingSM is a listSM whose commit index must be synced (CommitSyncer).
type syncingSM struct{ *listSM }

func (syncingSM) SyncsCommit() bool { return true }

// A CommitSyncer group never leaves its commit index waiting: a restarted
// replica comes back applied as far as it was.
func TestCommitSyncerSyncsCommit(t *testing.T) {
	c := newCluster(t, 3)
	for _, id := range c.ids {
		nd := c.nodes[id]
		d := &listSM{}
		nd.durable[1] = d
		sm := &listSM{durable: d}
		nd.sms[1] = sm
		if err := nd.host.CreateGroup(1, []uint64{1, 2, 3}, syncingSM{sm}, id == 1); err != nil {
			t.Fatal(err)
		}
	}
	c.stabilize()
	c.propose(1, "a")
	c.propose(1, "b")
	c.requireData(1, []string{"a", "b"}, 1, 2, 3)
	for _, id := range c.ids {
		if n := len(c.nodes[id].host.lazy); n != 0 {
			t.Fatalf("broker %d: %d commit records waiting for a CommitSyncer group", id, n)
		}
	}
}
