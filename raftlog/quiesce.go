package raftlog

import (
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/tracker"
)

// quiesceAfterTicks: a leader quiesces a group only after finding it idle
// this many ticks in a row, so at least one heartbeat has carried the
// final commit index to every follower.
func (h *Host) quiesceAfterTicks() int { return 2*h.cfg.HeartbeatTicks + 1 }

// PeerHeardWithin reports whether peer broker was heard from (any
// payload: every peer beats each tick) in the last ticks ticks, or this
// host has not run that long yet (a starting broker has heard from no
// one).
func (h *Host) PeerHeardWithin(peer uint64, ticks uint64) bool {
	if h.ticks <= ticks {
		return true
	}
	t, ok := h.lastHeard[peer]
	return ok && h.ticks-t <= ticks
}

// alive reports whether peer was heard from within an election timeout.
func (h *Host) alive(peer uint64) bool {
	t, ok := h.lastHeard[peer]
	return ok && h.ticks-t <= uint64(h.cfg.ElectionTicks)
}

func (h *Host) shouldWake(g *group) bool {
	// Nothing steps a quiesced group, so its role and leader stay as they
	// were when it slept: read them once (BasicStatus copies the whole
	// hard and soft state, which every idle group paid at every tick).
	if !g.sleepKnown {
		st := g.rn.BasicStatus()
		g.sleepLeader, g.sleepLead, g.sleepKnown = st.RaftState == raft.StateLeader, st.Lead, true
	}
	if !g.sleepLeader {
		return g.sleepLead == raft.None || !h.alive(g.sleepLead)
	}
	for _, v := range g.voters {
		if v != h.cfg.ID && !h.alive(v) {
			return true
		}
	}
	return false
}

// maybeQuiesce puts an idle, fully replicated group led here to sleep and
// tells its followers to do the same. It reports whether it did.
func (h *Host) maybeQuiesce(g *group) bool {
	st := g.rn.BasicStatus()
	if st.RaftState != raft.StateLeader || g.inCycle || g.rn.HasReady() {
		g.quietTicks = 0
		return false
	}
	last, _ := g.storage.LastIndex()
	commit := st.HardState.GetCommit()
	idle := commit == last && st.Applied == commit
	if idle {
		g.rn.WithProgress(func(id uint64, _ raft.ProgressType, pr tracker.Progress) {
			if id != h.cfg.ID && (pr.Match != last || !h.alive(id)) {
				idle = false
			}
		})
	}
	if !idle {
		g.quietTicks = 0
		return false
	}
	g.quietTicks++
	if g.quietTicks < h.quiesceAfterTicks() {
		return false
	}
	g.quiesced, g.quietTicks, g.sleepKnown = true, 0, false
	for _, v := range g.voters {
		if v != h.cfg.ID {
			h.outbox[v] = append(h.outbox[v], Envelope{Group: g.id, Term: st.HardState.GetTerm(), Commit: commit})
		}
	}
	return true
}

// IsQuiesced reports whether group id is quiesced here.
func (h *Host) IsQuiesced(id GroupID) bool {
	g, ok := h.groups[id]
	return ok && g.quiesced
}

// Quiesced counts the groups currently not ticking.
func (h *Host) Quiesced() int {
	n := 0
	for _, id := range h.ids {
		if h.groups[id].quiesced {
			n++
		}
	}
	return n
}

// quiesceFollower follows a leader's quiesce notice if it comes from the
// leader this replica knows, at its term, and this replica has committed
// everything the leader had and holds nothing uncommitted. Otherwise the
// notice is ignored and the follower keeps ticking (it is woken if it was
// asleep): if the leader is really asleep, the follower's election timer
// wakes it with a pre-vote.
//
// NB: notices can arrive late and out of order. A stale notice naming an
// older commit must not put to sleep a follower that has since received
// an append it has not seen committed: the leader may quiesce after
// committing it, with the heartbeats that carried the commit lost, and
// both would then sleep forever with the follower one commit behind
// (found by the simulator: TestRegression_StaleQuiesceNotice).
func (h *Host) quiesceFollower(g *group, from uint64, e Envelope) {
	st := g.rn.BasicStatus()
	commit := st.HardState.GetCommit()
	last, _ := g.storage.LastIndex()
	if st.RaftState == raft.StateFollower && st.Lead == from && st.HardState.GetTerm() == e.Term &&
		commit >= e.Commit && last == commit && !g.inCycle && !g.rn.HasReady() {
		g.quiesced, g.sleepKnown = true, false
		return
	}
	g.quiesced = false
}
