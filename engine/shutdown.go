package engine

import "github.com/gregor-streaming/gregor/raftlog"

// Controlled shutdown, as Kafka's controlled.shutdown.enable: a broker
// about to stop hands the leadership of every raft group it leads (its
// partitions, the coordinators' partitions, the metadata group) to another
// voter first, so that its clients see a leader change, answered
// NOT_LEADER_OR_FOLLOWER with the new leader (KIP-951), instead of an
// election timeout after it is gone. Raft's leadership transfer is safe
// whatever happens meanwhile: the transferee must have every entry the
// leader has before it campaigns, and a transfer that does not finish
// within an election timeout is abandoned.

// HandOffLeadership asks raft to move each group this broker leads to the
// live voter whose log is furthest along (the first in voter order among
// equals), and returns how many groups are not handed over yet: those it
// still leads that have such a voter, and the partitions it no longer
// leads that this broker's metadata still names it the leader of (until
// the new leader's report applies here, its NOT_LEADER_OR_FOLLOWER answers
// could not name the new leader). Call it again until it returns 0 (or a
// deadline passes): a transfer takes a round trip once the transferee has
// caught up, and the report a metadata commit. Groups with no other live
// voter (one broker, or the others down) stay, and are not counted.
func (b *Broker) HandOffLeadership() int {
	left := 0
	for _, id := range b.host.Groups() {
		st, ok := b.host.Status(id)
		if !ok {
			continue
		}
		if st.Leader {
			if to := b.handOffTarget(st); to != 0 {
				left++
				b.host.TransferLeadership(id, to)
				// Until the new leader's report applies here, produce
				// answers name the transferee at the term it campaigns
				// in (leaderHint): a client told NOT_LEADER_OR_FOLLOWER
				// without a newer leader waits for its next metadata
				// refresh (franz-go's default minimum age is 5 s).
				if b.handingOff == nil {
					b.handingOff = map[raftlog.GroupID]leaderAt{}
				}
				b.handingOff[id] = leaderAt{int32(to), int32(st.Term + 1)}
			}
			continue
		}
		if p := b.parts[id]; p != nil {
			if pm, ok := b.meta.partition(p.topic, p.index); ok && pm.Leader == b.cfg.ID && st.Lead != 0 && st.Lead != uint64(b.cfg.ID) {
				left++
			}
		}
	}
	return left
}

// handOffAliveTicks: a voter is a transferee only if its broker was heard
// from within this many ticks (brokers beat every tick), not the two
// election timeouts of brokerAlive: when a whole cluster stops, the last
// brokers must not wait out the deadline for peers that just left.
const handOffAliveTicks = 3

// handOffTarget is the live voter, not this broker, with the highest match
// index in st (a leader's status), or 0.
func (b *Broker) handOffTarget(st raftlog.Status) uint64 {
	var to, match uint64
	for _, v := range st.Voters {
		m := st.Progress[v]
		if v == uint64(b.cfg.ID) || !b.host.PeerHeardWithin(v, handOffAliveTicks) {
			continue
		}
		if to == 0 || m > match {
			to, match = v, m
		}
	}
	return to
}

// leaderAt is a partition leader and its epoch (raft term).
type leaderAt struct {
	id, epoch int32
}
