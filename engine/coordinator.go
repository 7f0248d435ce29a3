package engine

import (
	"slices"

	"github.com/gregor-streaming/gregor/engine/batch"
	"github.com/gregor-streaming/gregor/engine/segment"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// A coordinator is the group coordinator of one __consumer_offsets
// partition. Every replica of the partition keeps its applied groupStore;
// the replica that leads it is the coordinator of its groups, and keeps
// their live state (members, joins and syncs in flight, session timers)
// in memory, as Kafka's coordinator does: what must survive a failover —
// committed offsets, each generation's members and assignment, a group
// becoming empty or deleted — is proposed as records and acknowledged
// only once applied; what need not (who is mid-join, heartbeats) is
// rebuilt by the clients after a failover.
//
// A new leader is not a coordinator until it has confirmed that it has
// applied everything committed before its term (a ReadIndex round, which
// raft answers only after the leader has committed an entry of its own
// term): until then it answers COORDINATOR_LOAD_IN_PROGRESS. It then
// builds its live groups from the store: a group with members is Stable
// with the stored generation and assignment, and every member's session
// starts afresh. Redpanda #5090 is what happens otherwise.
//
// The load lifecycle (coordLife) is shared with every coordinator kind;
// a kind supplies its store and live state (coordKind).
type coordinator struct {
	coordLife
	store groupStore

	groups      map[string]*group // live groups, while loaded
	expiryTimer *timer
}

func newCoordinator(p *partition) *coordinator {
	c := &coordinator{store: newGroupStore()}
	c.coordLife = coordLife{p: p, kind: c}
	return c
}

// coordKind is what a kind of coordinator (groups; transactions to come)
// supplies to the lifecycle its partitions share: an applied store that
// every replica folds its partition's records into, and the live state
// only a loaded leader keeps.
type coordKind interface {
	// resetStore empties the applied store, before a reload.
	resetStore()
	// applyBatch folds one stored batch into the store.
	applyBatch(bb []byte) error
	// buildLive makes the leader's live state from the store, once the
	// load is confirmed.
	buildLive()
	// dropLive drops the live state; requests waiting on it get code.
	dropLive(code int16)
}

// coordLife is the lifecycle of a coordinator partition: the applied store
// follows the log on every replica; a leader loads (a ReadIndex round
// confirms it has applied everything committed before its term) and only
// then serves, from live state built from the store; losing leadership or
// the term unloads it.
type coordLife struct {
	p    *partition
	kind coordKind

	loaded, loading bool
	loadSeq         uint64 // a load whose seq is not this one is stale
}

func (c *coordLife) b() *Broker { return c.p.b }

// applyBatches folds the batches of one applied entry into the store.
func (c *coordLife) applyBatches(batches [][]byte) {
	for _, bb := range batches {
		c.applyBatch(bb)
	}
}

func (c *coordLife) applyBatch(bb []byte) {
	if err := c.kind.applyBatch(bb); err != nil {
		c.b().env.Logf("engine: %s-%d: skipping a record the coordinator cannot read: %v", c.p.topic, c.p.index, err)
	}
}

// reload rebuilds the store from the partition's log (after recovery, or
// when a repair installed a peer's state), as Kafka loads a partition.
func (c *coordLife) reload() error {
	c.unload(kerr.NotCoordinator.Code)
	c.kind.resetStore()
	return c.p.log.Batches(c.p.log.StartOffset(), func(bb []byte, _ segment.BatchMeta) error {
		c.applyBatch(bb)
		return nil
	})
}

// leaderChanged runs after the partition took a leader change (and, if it
// lost leadership or changed term, failed everything, unload included).
func (c *coordLife) leaderChanged() {
	if !c.p.leader {
		c.unload(kerr.NotCoordinator.Code)
		return
	}
	c.startLoad()
}

func (c *coordLife) tick() {
	if c.p.leader && !c.loaded && !c.loading {
		c.startLoad()
	}
}

// startLoad confirms this leader's state with a ReadIndex round, then
// builds the live state from it.
func (c *coordLife) startLoad() {
	if c.loaded || c.loading || !c.p.leader || c.p.lost {
		return
	}
	c.loading = true
	c.loadSeq++
	seq, term := c.loadSeq, c.p.term
	c.p.readIndex(func(code int16) {
		if seq != c.loadSeq {
			return
		}
		c.loading = false
		if code != 0 || !c.p.leader || c.p.term != term {
			return
		}
		c.kind.buildLive()
		c.loaded = true
	})
}

// unload drops the live state: every request waiting on it gets code.
func (c *coordLife) unload(code int16) {
	c.loadSeq++
	c.loading, c.loaded = false, false
	c.kind.dropLive(code)
}

func (c *coordinator) resetStore()                { c.store = newGroupStore() }
func (c *coordinator) applyBatch(bb []byte) error { return c.store.applyBatch(bb) }

func (c *coordinator) dropLive(code int16) {
	c.expiryTimer.stop()
	c.expiryTimer = nil
	for _, id := range sortedGroupIDs(c.groups) {
		c.groups[id].drop(code)
	}
	c.groups = nil
}

func sortedGroupIDs(m map[string]*group) []string {
	ids := make([]string, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// buildLive makes the live groups from the store.
func (c *coordinator) buildLive() {
	c.groups = map[string]*group{}
	now := c.b().nowMillis()
	for _, id := range c.store.groupIDs() {
		g := c.newGroup(id)
		if sc := c.store.consumers[id]; sc != nil {
			g.loadConsumer(sc)
			g.stateTs = now
			continue
		}
		gv := c.store.groups[id]
		if gv == nil {
			g.stateTs = c.lastCommitTs(id)
			continue
		}
		g.protocolType, g.generation = gv.ProtocolType, gv.Generation
		if gv.Protocol != nil {
			g.protocol = *gv.Protocol
		}
		if gv.Leader != nil {
			g.leader = *gv.Leader
		}
		g.stateTs = gv.CurrentStateTimestamp
		for _, sm := range gv.Members {
			m := &member{
				id: sm.MemberID, clientID: sm.ClientID, clientHost: sm.ClientHost,
				sessionMs: sm.SessionTimeoutMillis, rebalanceMs: sm.RebalanceTimeoutMillis,
				protocols:  []kmsg.JoinGroupRequestProtocol{{Name: g.protocol, Metadata: slices.Clone(sm.Subscription)}},
				assignment: slices.Clone(sm.Assignment),
			}
			if m.rebalanceMs < 0 {
				m.rebalanceMs = m.sessionMs
			}
			if sm.InstanceID != nil {
				m.instanceID = *sm.InstanceID
				g.statics[m.instanceID] = m.id
			}
			g.members[m.id] = m
			g.touch(m)
		}
		if len(g.members) > 0 {
			g.state = gsStable
		} else {
			g.state = gsEmpty
		}
		if g.stateTs == 0 {
			g.stateTs = now
		}
	}
	c.scheduleExpiry()
}

func (c *coordinator) lastCommitTs(group string) int64 {
	var ts int64
	for _, o := range c.store.offsets[group] {
		ts = max(ts, o.commitTs)
	}
	return ts
}

// propose proposes recs as one batch; fn gets nil once it has applied, or
// the error that stopped it (the leadership lost: NOT_COORDINATOR).
func (c *coordLife) propose(recs []batch.Record, fn func(code int16)) {
	c.proposeBatch(buildCoordinatorBatch(c.b().nowMillis(), recs), fn)
}

// proposeBatch proposes one batch the coordinator built, as propose does.
func (c *coordLife) proposeBatch(b []byte, fn func(code int16)) {
	c.p.propose(b, func(res produceResult) {
		if res.err != nil {
			code := errCode(res.err)
			if code == kerr.NotLeaderForPartition.Code || code == kerr.KafkaStorageError.Code {
				code = kerr.NotCoordinator.Code
			}
			fn(code)
			return
		}
		fn(0)
	})
}

// --- offset expiry ---

// scheduleExpiry arms the leader's periodic look for expired offsets.
func (c *coordinator) scheduleExpiry() {
	c.expiryTimer.stop()
	c.expiryTimer = c.b().after(c.b().cfg.OffsetsRetentionCheckIntervalMs, func() {
		c.expiryTimer = nil
		if !c.loaded {
			return
		}
		c.expireOffsets()
		c.scheduleExpiry()
	})
}

// expireOffsets deletes the offsets of groups that have been empty for
// offsets.retention.minutes, judged by this leader's clock and carried in
// tombstones: apply never reads a clock. A group left with no offsets and
// no members goes too.
func (c *coordinator) expireOffsets() {
	now := c.b().nowMillis()
	retention := c.b().cfg.OffsetsRetentionMs
	var recs []batch.Record
	var gone []*group
	for _, id := range sortedGroupIDs(c.groups) {
		g := c.groups[id]
		if g.state != gsEmpty || g.cons != nil && len(g.cons.members) > 0 || c.store.hasPending(id, "", 0) {
			continue // an open transaction's offsets keep the group (Redpanda PR #31483)
		}
		basis := g.stateTs
		if _, ok := c.store.groups[id]; !ok {
			basis = c.lastCommitTs(id)
		}
		if now-basis < retention {
			continue
		}
		offs := c.store.offsets[id]
		for _, k := range sortedOffsetKeys(offs) {
			recs = append(recs, offsetCommitRecord(id, k.topic, k.part, nil))
		}
		if _, ok := c.store.groups[id]; ok {
			recs = append(recs, groupMetadataRecord(id, nil))
		}
		if _, ok := c.store.consumers[id]; ok {
			recs = append(recs, consumerTombstones(id)...)
		}
		gone = append(gone, g)
	}
	if len(recs) == 0 {
		return
	}
	for _, g := range gone {
		g.state = gsDead
	}
	c.propose(recs, func(code int16) {
		for _, g := range gone {
			if c.groups != nil && c.groups[g.id] == g {
				delete(c.groups, g.id)
			}
		}
	})
}
