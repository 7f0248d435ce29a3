package raftlog

import (
	"errors"
	"fmt"
	"slices"

	"go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"
	"go.etcd.io/raft/v3/tracker"
	"google.golang.org/protobuf/proto"
)

// StateMachine is what a group applies its committed entries to. Every
// method is called from the Host's single thread.
type StateMachine interface {
	// Apply applies committed entries in index order, every index once
	// (configuration changes arrive as empty normal entries). Entries at or
	// below the state machine's own applied index must be skipped: after a
	// crash or a snapshot raft may hand some of them over again. An entry
	// beyond the applied index + 1 means the state machine lacks what came
	// between (after a raft snapshot, or lost local state): it must not
	// apply on top of the gap, and gets the state from a peer instead.
	Apply(ents []*pb.Entry) error
	// AppliedIndex is the raft index of the last applied entry.
	AppliedIndex() uint64
	// Sync makes every applied entry durable outside the WAL and returns the
	// index up to which that holds. The Host compacts the group's raft log
	// up to it at a checkpoint.
	Sync() (durable uint64, err error)
	// Snapshot describes the whole state, including its applied index, for a
	// follower that fell behind the compacted log.
	Snapshot() ([]byte, error)
	// Restore takes a raft snapshot at index: its data, as the leader's
	// Snapshot made it. The state machine must end up with a state at
	// least at index, durably, before it applies further entries: at once,
	// or later with state fetched from a peer (raft's next entries follow
	// index, so Apply sees the gap until then).
	Restore(index uint64, data []byte) error
	// ReadIndexReady delivers raft ReadStates: a read with context Ctx may
	// be served once AppliedIndex() >= Index.
	ReadIndexReady(states []raft.ReadState)
	// LeaderChanged tells the state machine who leads now (0 = unknown).
	LeaderChanged(lead, term uint64)
}

// Config configures a Host.
type Config struct {
	ID             uint64 // this broker's id, never 0
	ElectionTicks  int    // default 10
	HeartbeatTicks int    // default 1
	// MaxSizePerMsg caps the entries of one append message (default 1 MiB).
	MaxSizePerMsg uint64
	// MaxInflightMsgs caps appends in flight per follower (default 256).
	MaxInflightMsgs int
	// CheckpointBytes: after this many WAL bytes the Host checkpoints and
	// compacts (default 64 MiB).
	CheckpointBytes int64
	Logger          raft.Logger
	// SendEarly, if set, receives a leader's appends and heartbeats before
	// the cycle's WAL sync instead of after it, so the leader's fsync and
	// its followers' overlap (Raft thesis 10.2.1, allowed by etcd/raft's
	// Ready contract). The caller must hand them to the network without
	// blocking. Only messages of a leader whose Ready keeps its term and
	// vote go early; acknowledgements and votes always wait for the sync.
	SendEarly func([]Outgoing)
	// UnsafeAckBeforeFsync skips the WAL sync before messages go out and
	// entries are applied. It exists only so the simulator can prove its
	// checkers catch the lost acknowledged writes that follow. Never set it
	// in production.
	UnsafeAckBeforeFsync bool
}

func (c *Config) setDefaults() {
	if c.ElectionTicks == 0 {
		c.ElectionTicks = 10
	}
	if c.HeartbeatTicks == 0 {
		c.HeartbeatTicks = 1
	}
	if c.MaxSizePerMsg == 0 {
		c.MaxSizePerMsg = 1 << 20
	}
	if c.MaxInflightMsgs == 0 {
		c.MaxInflightMsgs = 256
	}
	if c.CheckpointBytes == 0 {
		c.CheckpointBytes = 64 << 20
	}
	if c.Logger == nil {
		c.Logger = discardLogger{}
	}
}

// Outgoing is one transport message for one destination broker.
type Outgoing struct {
	To      uint64
	Payload []byte
}

type group struct {
	id      GroupID
	voters  []uint64
	storage *storage
	rn      *raft.RawNode
	sm      StateMachine
	lead    uint64
	term    uint64
	// quiesced groups are not ticked: no heartbeats, no election timer.
	quiesced   bool
	quietTicks int // consecutive ticks a leader has found the group idle
}

// recovered is a group's durable state rebuilt from the WAL, waiting for
// its state machine to be attached by CreateGroup.
type recovered struct {
	voters []uint64
	ms     *raft.MemoryStorage
}

// Host runs many raft groups on one broker.
type Host struct {
	cfg       Config
	wal       WAL
	groups    map[GroupID]*group
	ids       []GroupID // sorted keys of groups
	recovered map[GroupID]*recovered
	outbox    map[uint64][]Envelope
	peers     map[uint64]bool // every other broker some group replicates to
	// early holds messages for groups not created here yet: a new group's
	// first vote requests usually arrive before this broker has applied
	// the metadata entry that creates it. Replayed at CreateGroup.
	early    map[GroupID][]*pb.Message
	walBytes int64
	unsynced bool
	cycles   uint64
	ticks    uint64
	// peerIn holds broker-to-broker messages received, for PeerInbox.
	peerIn []PeerMsg
	// lastHeard is the tick at which each peer broker was last heard from
	// (any payload, beats included): broker-level liveness that lets whole
	// groups stay quiet while their leader's broker is alive.
	lastHeard map[uint64]uint64
}

// New returns a Host writing to wal. Call Recover before creating groups.
func New(cfg Config, wal WAL) (*Host, error) {
	if cfg.ID == 0 {
		return nil, errors.New("raftlog: Config.ID must not be 0")
	}
	cfg.setDefaults()
	return &Host{
		cfg:       cfg,
		wal:       wal,
		groups:    map[GroupID]*group{},
		recovered: map[GroupID]*recovered{},
		outbox:    map[uint64][]Envelope{},
		peers:     map[uint64]bool{},
		early:     map[GroupID][]*pb.Message{},
		lastHeard: map[uint64]uint64{},
	}, nil
}

// ID is this broker's id.
func (h *Host) ID() uint64 { return h.cfg.ID }

// Recover reads the WAL and rebuilds every group's durable raft state. The
// groups stay dormant until CreateGroup attaches their state machines.
func (h *Host) Recover() error {
	image, recs, err := h.wal.ReadAll()
	if err != nil {
		return fmt.Errorf("raftlog: recover: %w", err)
	}
	if image != nil {
		imgRecs, err := decodeImage(image)
		if err != nil {
			return fmt.Errorf("raftlog: recover checkpoint image: %w", err)
		}
		recs = append(imgRecs, recs...)
	}
	for i, b := range recs {
		rec, err := decodeRecord(b)
		if err != nil {
			return fmt.Errorf("raftlog: recover record %d: %w", i, err)
		}
		if err := h.fold(rec); err != nil {
			return fmt.Errorf("raftlog: recover record %d (group %d): %w", i, rec.group, err)
		}
	}
	return nil
}

// fold applies one WAL record to the recovered state.
func (h *Host) fold(rec walRecord) error {
	switch rec.kind {
	case recCreate:
		h.recovered[rec.group] = &recovered{voters: rec.voters, ms: bootstrapStorage(rec.voters)}
	case recRemove:
		delete(h.recovered, rec.group)
	case recUpdate:
		r := h.recovered[rec.group]
		if r == nil {
			return errors.New("update for a group never created")
		}
		if rec.snap != nil {
			snap := &pb.Snapshot{Metadata: rec.snap}
			if err := r.ms.ApplySnapshot(snap); err != nil && !errors.Is(err, raft.ErrSnapOutOfDate) {
				return err
			}
		}
		if len(rec.entries) > 0 {
			if err := appendEntries(r.ms, rec.entries); err != nil {
				return err
			}
		}
		if rec.hs != nil {
			if err := r.ms.SetHardState(rec.hs); err != nil {
				return err
			}
		}
	}
	return nil
}

// appendEntries appends entries that may start below the storage's first
// index (after a compaction) or overwrite a conflicting suffix.
func appendEntries(ms *raft.MemoryStorage, ents []*pb.Entry) error {
	last, _ := ms.LastIndex()
	first, _ := ms.FirstIndex()
	// Entries wholly compacted away carry nothing new.
	if ents[len(ents)-1].GetIndex() < first {
		return nil
	}
	if ents[0].GetIndex() > last+1 {
		return fmt.Errorf("raftlog: gap appending index %d after %d", ents[0].GetIndex(), last)
	}
	return ms.Append(ents)
}

func confState(voters []uint64) *pb.ConfState {
	return &pb.ConfState{Voters: slices.Clone(voters)}
}

// bootstrapStorage is the state every replica of a new group starts from:
// the same snapshot at index 1 naming the voters, so no replica needs a
// configuration change entry and raft's own entries start at index 2.
func bootstrapStorage(voters []uint64) *raft.MemoryStorage {
	ms := raft.NewMemoryStorage()
	snap := &pb.Snapshot{Metadata: &pb.SnapshotMetadata{
		Index:     proto.Uint64(1),
		Term:      proto.Uint64(1),
		ConfState: confState(voters),
	}}
	if err := ms.ApplySnapshot(snap); err != nil {
		panic(err)
	}
	return ms
}

// CreateGroup starts group id with the given voters (this broker among
// them) and state machine. If the WAL held the group, its recovered state is
// used; otherwise the group is bootstrapped and its creation logged. If
// campaign is set and the group is new, this replica stands for election at
// once (the preferred leader), instead of waiting out a timeout.
func (h *Host) CreateGroup(id GroupID, voters []uint64, sm StateMachine, campaign bool) error {
	if _, ok := h.groups[id]; ok {
		return fmt.Errorf("raftlog: group %d already exists", id)
	}
	r, wasRecovered := h.recovered[id]
	if wasRecovered {
		voters = r.voters // the log, not the caller, knows a recovered group's voters
	}
	if !slices.Contains(voters, h.cfg.ID) {
		return fmt.Errorf("raftlog: broker %d is not a voter of group %d %v", h.cfg.ID, id, voters)
	}
	voters = slices.Sorted(slices.Values(voters))
	var ms *raft.MemoryStorage
	fresh := false
	if wasRecovered {
		ms = r.ms
		delete(h.recovered, id)
	} else {
		ms = bootstrapStorage(voters)
		fresh = true
		if err := h.appendWAL([][]byte{encodeCreate(id, voters)}, true); err != nil {
			return err
		}
	}
	g := &group{id: id, voters: voters, sm: sm}
	g.storage = &storage{MemoryStorage: ms, g: g}
	hs, _, _ := ms.InitialState()
	first, _ := ms.FirstIndex()
	applied := min(sm.AppliedIndex(), hs.GetCommit())
	applied = max(applied, first-1)
	rn, err := raft.NewRawNode(&raft.Config{
		ID:                        h.cfg.ID,
		ElectionTick:              h.cfg.ElectionTicks,
		HeartbeatTick:             h.cfg.HeartbeatTicks,
		Storage:                   g.storage,
		Applied:                   applied,
		MaxSizePerMsg:             h.cfg.MaxSizePerMsg,
		MaxCommittedSizePerReady:  4 * h.cfg.MaxSizePerMsg,
		MaxUncommittedEntriesSize: 64 << 20,
		MaxInflightMsgs:           h.cfg.MaxInflightMsgs,
		CheckQuorum:               true,
		PreVote:                   true,
		ReadOnlyOption:            raft.ReadOnlySafe,
		Logger:                    h.cfg.Logger,
	})
	if err != nil {
		return fmt.Errorf("raftlog: group %d: %w", id, err)
	}
	g.rn = rn
	h.groups[id] = g
	i, _ := slices.BinarySearch(h.ids, id)
	h.ids = slices.Insert(h.ids, i, id)
	for _, v := range voters {
		if v != h.cfg.ID {
			h.peers[v] = true
		}
	}
	early := h.early[id]
	delete(h.early, id)
	for _, m := range early {
		if err := rn.Step(m); err != nil && !errors.Is(err, raft.ErrStepPeerNotFound) {
			return fmt.Errorf("raftlog: group %d step early message: %w", id, err)
		}
	}
	if fresh && campaign {
		if err := rn.Campaign(); err != nil {
			return fmt.Errorf("raftlog: group %d campaign: %w", id, err)
		}
	}
	return nil
}

// RemoveGroup stops group id and logs its removal.
func (h *Host) RemoveGroup(id GroupID) error {
	delete(h.recovered, id)
	delete(h.early, id)
	if _, ok := h.groups[id]; !ok {
		return nil
	}
	delete(h.groups, id)
	if i, ok := slices.BinarySearch(h.ids, id); ok {
		h.ids = slices.Delete(h.ids, i, i+1)
	}
	return h.appendWAL([][]byte{encodeRemove(id)}, true)
}

// RecoveredGroups lists groups found in the WAL that no CreateGroup has
// claimed yet.
func (h *Host) RecoveredGroups() []GroupID {
	ids := make([]GroupID, 0, len(h.recovered))
	for id := range h.recovered {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// Has reports whether group id runs here.
func (h *Host) Has(id GroupID) bool { _, ok := h.groups[id]; return ok }

// Groups returns the ids of the running groups, sorted.
func (h *Host) Groups() []GroupID { return slices.Clone(h.ids) }

// Tick advances every group's logical clock by one tick. Quiesced groups
// are skipped unless something wakes them: a leader wakes when a
// follower's broker falls silent (so CheckQuorum and probing resume), a
// follower when its leader's broker does (so it can elect a new one).
func (h *Host) Tick() {
	h.ticks++
	for _, id := range h.ids {
		g := h.groups[id]
		if g.quiesced {
			if !h.shouldWake(g) {
				continue
			}
			g.quiesced = false
		}
		// Judge idleness before ticking: a leader's tick queues heartbeats,
		// which would look like pending work.
		if h.maybeQuiesce(g) {
			continue
		}
		g.rn.Tick()
	}
	// One beat per peer per tick keeps broker-level liveness visible even
	// when every group is quiet; it rides in the same payload as messages.
	for p := range h.peers {
		if _, ok := h.outbox[p]; !ok {
			h.outbox[p] = nil
		}
	}
}

// quiesceAfterTicks: a leader quiesces a group only after finding it idle
// this many ticks in a row, so at least one heartbeat has carried the
// final commit index to every follower.
func (h *Host) quiesceAfterTicks() int { return 2*h.cfg.HeartbeatTicks + 1 }

// alive reports whether peer was heard from within an election timeout.
func (h *Host) alive(peer uint64) bool {
	t, ok := h.lastHeard[peer]
	return ok && h.ticks-t <= uint64(h.cfg.ElectionTicks)
}

func (h *Host) shouldWake(g *group) bool {
	st := g.rn.BasicStatus()
	if st.RaftState != raft.StateLeader {
		return st.Lead == raft.None || !h.alive(st.Lead)
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
	if st.RaftState != raft.StateLeader || g.rn.HasReady() {
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
	g.quiesced, g.quietTicks = true, 0
	for _, v := range g.voters {
		if v != h.cfg.ID {
			h.outbox[v] = append(h.outbox[v], Envelope{Group: g.id, Term: st.HardState.GetTerm(), Commit: commit})
		}
	}
	return true
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

// Propose proposes data to group id. It fails if the group is unknown or
// raft refuses the proposal (for example, no leader known).
func (h *Host) Propose(id GroupID, data []byte) error {
	g, ok := h.groups[id]
	if !ok {
		return fmt.Errorf("raftlog: no group %d", id)
	}
	g.quiesced = false
	return g.rn.Propose(data)
}

// ReadIndex asks group id for a linearizable read point; the answer arrives
// through the state machine's ReadIndexReady with ctx.
func (h *Host) ReadIndex(id GroupID, ctx []byte) error {
	g, ok := h.groups[id]
	if !ok {
		return fmt.Errorf("raftlog: no group %d", id)
	}
	g.quiesced = false
	g.rn.ReadIndex(ctx)
	return nil
}

// TransferLeadership asks group id's leader (this broker) to hand
// leadership to voter to; raft does nothing if this broker does not lead.
func (h *Host) TransferLeadership(id GroupID, to uint64) {
	if g, ok := h.groups[id]; ok {
		g.quiesced = false
		g.rn.TransferLeader(to)
	}
}

// Status is a group's view of its leadership.
type Status struct {
	Lead, Term, Commit, Applied uint64
	Leader                      bool
	Voters                      []uint64
	// Progress maps each voter to its match index (leader only).
	Progress map[uint64]uint64
}

// Status returns group id's status; ok is false if the group is unknown.
func (h *Host) Status(id GroupID) (Status, bool) {
	g, ok := h.groups[id]
	if !ok {
		return Status{}, false
	}
	st := g.rn.Status()
	s := Status{
		Lead: st.Lead, Term: st.HardState.GetTerm(), Commit: st.HardState.GetCommit(),
		Applied: st.Applied, Leader: st.RaftState == raft.StateLeader, Voters: g.voters,
	}
	if s.Leader {
		s.Progress = map[uint64]uint64{}
		for id, pr := range st.Progress {
			s.Progress[id] = pr.Match
		}
	}
	return s, true
}

// Receive steps every message in a transport payload into its group.
// Messages for groups not (yet) running here are dropped; raft resends.
func (h *Host) Receive(payload []byte) error {
	from, envs, err := DecodeBatch(payload)
	if err != nil {
		return err
	}
	h.lastHeard[from] = h.ticks
	var first error
	for _, e := range envs {
		if e.Peer != nil {
			h.peerIn = append(h.peerIn, PeerMsg{From: from, Group: e.Group, Data: e.Peer})
			continue
		}
		g, ok := h.groups[e.Group]
		if e.Msg == nil {
			if ok {
				h.quiesceFollower(g, from, e)
			}
			continue
		}
		if !ok {
			h.keepEarly(e)
			continue
		}
		g.quiesced = false
		err := g.rn.Step(e.Msg)
		switch {
		case err == nil:
		case errors.Is(err, raft.ErrProposalDropped), errors.Is(err, raft.ErrStepPeerNotFound), errors.Is(err, raft.ErrStepLocalMsg):
			// Normal raft outcomes for a remote message, among them a
			// forwarded proposal that arrived after leadership moved: the
			// proposer times out and retries. The rest of the payload is
			// still delivered.
		default:
			if first == nil {
				first = fmt.Errorf("raftlog: group %d step: %w", e.Group, err)
			}
		}
	}
	return first
}

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

// applyForm is how an entry reaches StateMachine.Apply: normal entries as
// they are, configuration changes as empty normal entries, so that a state
// machine sees every index and can tell a gap from a skipped entry.
func applyForm(e *pb.Entry) *pb.Entry {
	if e.GetType() == pb.EntryType_EntryNormal {
		return e
	}
	return &pb.Entry{Index: e.Index, Term: e.Term, Type: pb.EntryType_EntryNormal.Enum()}
}

// quiesceFollower follows a leader's quiesce notice if it comes from the
// leader this replica knows, at its term, and this replica has committed
// everything the leader had. Otherwise the notice is ignored and the
// follower keeps ticking: if the leader is really asleep, the follower's
// election timer wakes it with a pre-vote.
func (h *Host) quiesceFollower(g *group, from uint64, e Envelope) {
	st := g.rn.BasicStatus()
	if st.RaftState == raft.StateFollower && st.Lead == from && st.HardState.GetTerm() == e.Term &&
		st.HardState.GetCommit() >= e.Commit && !g.rn.HasReady() {
		g.quiesced = true
	}
}

// Limits on messages kept for groups not created yet.
const (
	earlyGroupsMax   = 1024
	earlyPerGroupMax = 16
)

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
	if len(q) >= earlyPerGroupMax {
		q = q[1:]
	}
	h.early[e.Group] = append(q, e.Msg)
}

// Outbox drains the messages queued for other brokers: one payload per
// destination, sorted by destination.
func (h *Host) Outbox() []Outgoing {
	if len(h.outbox) == 0 {
		return nil
	}
	tos := make([]uint64, 0, len(h.outbox))
	for to := range h.outbox {
		tos = append(tos, to)
	}
	slices.Sort(tos)
	out := make([]Outgoing, 0, len(tos))
	for _, to := range tos {
		out = append(out, Outgoing{To: to, Payload: EncodeBatch(h.cfg.ID, h.outbox[to])})
	}
	clear(h.outbox)
	return out
}

// cycleMax bounds the Ready cycles of one Process call.
const cycleMax = 64

// Process runs Ready cycles until no group has work: each cycle persists
// every group's new entries, hard state and snapshots with one WAL append
// and one sync, then queues messages, applies committed entries and
// advances.
func (h *Host) Process() error {
	for range cycleMax {
		did, err := h.cycle()
		if err != nil || !did {
			return err
		}
	}
	return nil
}

type readyGroup struct {
	g  *group
	rd raft.Ready
}

func (h *Host) cycle() (bool, error) {
	var rds []readyGroup
	var recs [][]byte
	for _, id := range h.ids {
		g := h.groups[id]
		if !g.rn.HasReady() {
			continue
		}
		rd := g.rn.Ready()
		rds = append(rds, readyGroup{g, rd})
		var hs *pb.HardState
		if rd.HardState != nil && !raft.IsEmptyHardState(rd.HardState) {
			hs = rd.HardState
		}
		var snap *pb.SnapshotMetadata
		if rd.Snapshot != nil && !raft.IsEmptySnap(rd.Snapshot) {
			snap = rd.Snapshot.GetMetadata()
		}
		if hs != nil || snap != nil || len(rd.Entries) > 0 {
			recs = append(recs, encodeUpdate(id, hs, snap, rd.Entries))
		}
	}
	if len(rds) == 0 {
		return false, nil
	}
	h.cycles++
	// A snapshot's data is installed durably before the WAL says so, so a
	// crash in between leaves a state machine ahead of raft, which the
	// skip-applied rule of StateMachine.Apply absorbs.
	for _, r := range rds {
		if r.rd.Snapshot != nil && !raft.IsEmptySnap(r.rd.Snapshot) {
			if err := r.g.sm.Restore(r.rd.Snapshot.GetMetadata().GetIndex(), r.rd.Snapshot.GetData()); err != nil {
				return false, fmt.Errorf("raftlog: group %d restore snapshot: %w", r.g.id, err)
			}
		}
	}
	if h.cfg.SendEarly != nil {
		h.sendEarly(rds)
	}
	if len(recs) > 0 {
		if err := h.appendWAL(recs, !h.cfg.UnsafeAckBeforeFsync); err != nil {
			return false, err
		}
	}
	for _, r := range rds {
		if err := h.handleReady(r.g, r.rd); err != nil {
			return false, err
		}
	}
	if h.walBytes >= h.cfg.CheckpointBytes {
		if err := h.Checkpoint(); err != nil {
			return false, err
		}
	}
	return true, nil
}

// sendEarly hands the eligible messages of this cycle to SendEarly and
// leaves the rest in the Readies for after the sync. Safe in this
// single-threaded host: a follower's acknowledgement of an early append
// can only be stepped after this cycle, so after the leader's own entries
// are durable; and a leader's term and vote are already on disk.
func (h *Host) sendEarly(rds []readyGroup) {
	early := map[uint64][]Envelope{}
	for i := range rds {
		r := &rds[i]
		if r.g.rn.BasicStatus().RaftState != raft.StateLeader || len(r.rd.Messages) == 0 {
			continue
		}
		if hs := r.rd.HardState; hs != nil && !raft.IsEmptyHardState(hs) {
			durable, _, _ := r.g.storage.InitialState()
			if hs.GetTerm() != durable.GetTerm() || hs.GetVote() != durable.GetVote() {
				continue
			}
		}
		rest := r.rd.Messages[:0:0]
		for _, m := range r.rd.Messages {
			switch m.GetType() {
			case pb.MessageType_MsgApp, pb.MessageType_MsgHeartbeat:
				early[m.GetTo()] = append(early[m.GetTo()], Envelope{Group: r.g.id, Msg: m})
			default:
				rest = append(rest, m)
			}
		}
		r.rd.Messages = rest
	}
	if len(early) == 0 {
		return
	}
	tos := make([]uint64, 0, len(early))
	for to := range early {
		tos = append(tos, to)
	}
	slices.Sort(tos)
	out := make([]Outgoing, 0, len(tos))
	for _, to := range tos {
		out = append(out, Outgoing{To: to, Payload: EncodeBatch(h.cfg.ID, early[to])})
	}
	h.cfg.SendEarly(out)
}

func (h *Host) appendWAL(recs [][]byte, sync bool) error {
	if err := h.wal.Append(recs); err != nil {
		return fmt.Errorf("raftlog: wal append: %w", err)
	}
	for _, r := range recs {
		h.walBytes += int64(len(r))
	}
	if !sync {
		h.unsynced = true
		return nil
	}
	if err := h.wal.Sync(); err != nil {
		return fmt.Errorf("raftlog: wal sync: %w", err)
	}
	h.unsynced = false
	return nil
}

// SyncWAL makes any records appended without a sync durable (only needed
// with UnsafeAckBeforeFsync).
func (h *Host) SyncWAL() error {
	if !h.unsynced {
		return nil
	}
	h.unsynced = false
	return h.wal.Sync()
}

func (h *Host) handleReady(g *group, rd raft.Ready) error {
	if rd.Snapshot != nil && !raft.IsEmptySnap(rd.Snapshot) {
		if err := g.storage.ApplySnapshot(rd.Snapshot); err != nil {
			return fmt.Errorf("raftlog: group %d apply snapshot: %w", g.id, err)
		}
	}
	if len(rd.Entries) > 0 {
		if err := appendEntries(g.storage.MemoryStorage, rd.Entries); err != nil {
			return fmt.Errorf("raftlog: group %d append: %w", g.id, err)
		}
	}
	if rd.HardState != nil && !raft.IsEmptyHardState(rd.HardState) {
		if err := g.storage.SetHardState(rd.HardState); err != nil {
			return err
		}
	}
	if rd.SoftState != nil || (rd.HardState != nil && rd.HardState.GetTerm() != g.term) {
		lead := g.lead
		if rd.SoftState != nil {
			lead = rd.SoftState.Lead
		}
		term := g.term
		if rd.HardState != nil && rd.HardState.Term != nil {
			term = rd.HardState.GetTerm()
		}
		if lead != g.lead || term != g.term {
			g.lead, g.term = lead, term
			g.sm.LeaderChanged(lead, term)
		}
	}
	for _, m := range rd.Messages {
		to := m.GetTo()
		h.outbox[to] = append(h.outbox[to], Envelope{Group: g.id, Msg: m})
		if m.GetType() == pb.MessageType_MsgSnap {
			// Treat a sent snapshot as delivered: if it was lost, the
			// follower rejects the next append and the leader sends another.
			g.rn.ReportSnapshot(to, raft.SnapshotFinish)
		}
	}
	if len(rd.ReadStates) > 0 {
		g.sm.ReadIndexReady(rd.ReadStates)
	}
	if len(rd.CommittedEntries) > 0 {
		normal := make([]*pb.Entry, 0, len(rd.CommittedEntries))
		for _, e := range rd.CommittedEntries {
			normal = append(normal, applyForm(e))
			switch e.GetType() {
			case pb.EntryType_EntryConfChange:
				var cc pb.ConfChange
				if err := proto.Unmarshal(e.GetData(), &cc); err != nil {
					return err
				}
				g.rn.ApplyConfChange(&cc)
			case pb.EntryType_EntryConfChangeV2:
				var cc pb.ConfChangeV2
				if err := proto.Unmarshal(e.GetData(), &cc); err != nil {
					return err
				}
				g.rn.ApplyConfChange(&cc)
			}
		}
		if len(normal) > 0 {
			if err := g.sm.Apply(normal); err != nil {
				return fmt.Errorf("raftlog: group %d apply: %w", g.id, err)
			}
		}
	}
	g.rn.Advance(rd)
	return nil
}

// Checkpoint makes every group's applied state durable outside the WAL,
// compacts each raft log up to that point, and writes a checkpoint image so
// the WAL before it can be purged.
func (h *Host) Checkpoint() error {
	var image [][]byte
	for _, id := range h.ids {
		g := h.groups[id]
		durable, err := g.sm.Sync()
		if err != nil {
			return fmt.Errorf("raftlog: group %d sync: %w", id, err)
		}
		ms := g.storage.MemoryStorage
		first, _ := ms.FirstIndex()
		last, _ := ms.LastIndex()
		if durable = min(durable, last); durable >= first {
			if err := ms.Compact(durable); err != nil && !errors.Is(err, raft.ErrCompacted) {
				return fmt.Errorf("raftlog: group %d compact: %w", id, err)
			}
		}
		image = append(image, h.groupImage(g.id, g.voters, ms)...)
	}
	// Groups recovered but not yet claimed keep their state too.
	for _, id := range h.RecoveredGroups() {
		r := h.recovered[id]
		image = append(image, h.groupImage(id, r.voters, r.ms)...)
	}
	if err := h.wal.Checkpoint(encodeImage(image)); err != nil {
		return fmt.Errorf("raftlog: wal checkpoint: %w", err)
	}
	h.walBytes = 0
	h.unsynced = false
	return nil
}

func (h *Host) groupImage(id GroupID, voters []uint64, ms *raft.MemoryStorage) [][]byte {
	first, _ := ms.FirstIndex()
	last, _ := ms.LastIndex()
	term, _ := ms.Term(first - 1)
	hs, _, _ := ms.InitialState()
	var ents []*pb.Entry
	if last >= first {
		ents, _ = ms.Entries(first, last+1, ^uint64(0))
	}
	snap := &pb.SnapshotMetadata{Index: proto.Uint64(first - 1), Term: proto.Uint64(term), ConfState: confState(voters)}
	var hsp *pb.HardState
	if !raft.IsEmptyHardState(hs) {
		hsp = hs
	}
	return [][]byte{encodeCreate(id, voters), encodeUpdate(id, hsp, snap, ents)}
}

// Cycles counts the Ready cycles run so far (each one WAL sync at most).
func (h *Host) Cycles() uint64 { return h.cycles }

// storage is raft's view of a group's log: the MemoryStorage mirror of the
// WAL, except that Snapshot is built on demand from the state machine, at
// its current applied index, under the metadata of the compaction point.
// The state machine's snapshot carries its own applied index, and Apply
// skips what it already has, so the entries raft re-sends after the
// compaction point do no harm.
type storage struct {
	*raft.MemoryStorage
	g *group
}

func (s *storage) Snapshot() (*pb.Snapshot, error) {
	first, _ := s.FirstIndex()
	term, err := s.Term(first - 1)
	if err != nil {
		return nil, err
	}
	data, err := s.g.sm.Snapshot()
	if err != nil {
		return nil, err
	}
	return &pb.Snapshot{
		Data: data,
		Metadata: &pb.SnapshotMetadata{
			Index: proto.Uint64(first - 1), Term: proto.Uint64(term), ConfState: confState(s.g.voters),
		},
	}, nil
}

type discardLogger struct{}

func (discardLogger) Debug(...any)              {}
func (discardLogger) Debugf(string, ...any)     {}
func (discardLogger) Error(...any)              {}
func (discardLogger) Errorf(string, ...any)     {}
func (discardLogger) Info(...any)               {}
func (discardLogger) Infof(string, ...any)      {}
func (discardLogger) Warning(...any)            {}
func (discardLogger) Warningf(string, ...any)   {}
func (discardLogger) Fatal(v ...any)            { panic(fmt.Sprint(v...)) }
func (discardLogger) Fatalf(f string, v ...any) { panic(fmt.Sprintf(f, v...)) }
func (discardLogger) Panic(v ...any)            { panic(fmt.Sprint(v...)) }
func (discardLogger) Panicf(f string, v ...any) { panic(fmt.Sprintf(f, v...)) }

// HasReady reports whether any group has work for Process.
func (h *Host) HasReady() bool {
	for _, id := range h.ids {
		if h.groups[id].rn.HasReady() {
			return true
		}
	}
	return false
}
