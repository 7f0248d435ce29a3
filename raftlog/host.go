package raftlog

import (
	"errors"
	"fmt"
	"slices"

	"go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"
	"go.etcd.io/raft/v3/tracker"
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
	// index, so Apply sees the gap until then). An error wrapping
	// ErrRestoreRetry stalls the host until Restore succeeds; any other
	// error fails Process.
	Restore(index uint64, data []byte) error
	// ReadIndexReady delivers raft ReadStates: a read with context Ctx may
	// be served once AppliedIndex() >= Index.
	ReadIndexReady(states []raft.ReadState)
	// LeaderChanged tells the state machine who leads now (0 = unknown).
	LeaderChanged(lead, term uint64)
}

// CommitSyncer is implemented by a StateMachine whose applied state is
// read without a ReadIndex round (the broker's metadata: topics, ACLs,
// credentials). SyncsCommit true makes the host sync a hard state whose
// commit index moved before the group applies, as for entries, so that a
// restarted replica never comes back applied less far than it was.
// Other groups' commit indexes ride with the next write (cycle.go).
type CommitSyncer interface {
	SyncsCommit() bool
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
	// Now, if set, is a monotonic clock in nanoseconds for the stage and
	// latency histograms of Stats; nil leaves them empty (the simulator).
	Now func() int64
	// AsyncWrites hands a cycle's WAL records to the caller instead of
	// writing and syncing them inside Process: a cycle that has records
	// ends with them in TakeWrite, and the host takes no new Ready until
	// the caller reports them durable with WriteDone. In between, the
	// caller's thread goes on stepping messages, proposing, reading and
	// ticking while the disk syncs (cycle.go, "Writes off the loop"). The
	// caller must write them to the same WAL, in order with the host's own
	// WAL calls (group creation and removal, checkpoints, retries).
	AsyncWrites bool
	// UnsafeFinishBeforeWrite, with AsyncWrites, finishes a cycle (its
	// messages leave, its entries apply) as soon as its records are handed
	// over, not at WriteDone. Only for the simulator's knob test.
	UnsafeFinishBeforeWrite bool
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
	quiesced bool
	// syncCommit: its commit index is synced before it applies
	// (CommitSyncer).
	syncCommit bool
	// inCycle: its Ready is taken and not handled yet (a cycle in flight
	// or stalled); it must not quiesce, since Advance may give it more.
	inCycle    bool
	quietTicks int // consecutive ticks a leader has found the group idle
	logger     raft.Logger
	// Stage timing (stats.go): a leader's entries between WAL sync and
	// apply, oldest first; a follower's oldest unacknowledged append.
	pending     []pendingEntry
	appReceived int64
	// While quiesced: its role and leader, read once (shouldWake).
	sleepKnown, sleepLeader bool
	sleepLead               uint64
}

func (g *group) logf(format string, args ...any) { g.logger.Warningf(format, args...) }

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
	early map[GroupID][]earlyMsg
	// earlyBytes is the sum of the sizes of the messages in early.
	earlyBytes int
	walBytes   int64
	unsynced   bool
	cycles     uint64
	ticks      uint64
	// stalled is the cycle waiting for the WAL to take its records after
	// a failed write, stallErr that failure (cycle.go).
	stalled  *stalledCycle
	stallErr error
	// inflight is the cycle whose records the caller is writing
	// (AsyncWrites), write those records until TakeWrite hands them over.
	// inflightWritten: the host wrote them itself, ahead of a WAL call of
	// its own made before the caller took them; the next cycle completes
	// the cycle without a WriteDone.
	inflight        *stalledCycle
	write           [][]byte
	inflightWritten bool
	takenAt         int64 // when TakeWrite handed the write over (Config.Now)
	// lazy holds records that only move commit indexes, waiting for the
	// next write; flushLazy asks a cycle to write them after lazyTicks
	// ticks (cycle.go, "Commit indexes without a sync of their own").
	lazy                 [][]byte
	lazyTicks            int
	flushLazy            bool
	checkpointRetryCycle uint64
	// peerIn holds broker-to-broker messages received, for PeerInbox.
	peerIn []PeerMsg
	stats  Stats
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
		early:     map[GroupID][]earlyMsg{},
		lastHeard: map[uint64]uint64{},
	}, nil
}

// ID is this broker's id.
func (h *Host) ID() uint64 { return h.cfg.ID }

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
		if h.stalled != nil {
			return fmt.Errorf("raftlog: create group %d: WAL stalled: %w", id, h.stallErr)
		}
		if err := h.appendWAL([][]byte{encodeCreate(id, voters)}, true); err != nil {
			return err
		}
		ms = bootstrapStorage(voters)
		fresh = true
	}
	g := &group{id: id, voters: voters, sm: sm, logger: h.cfg.Logger}
	if cs, ok := sm.(CommitSyncer); ok {
		g.syncCommit = cs.SyncsCommit()
	}
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
	for _, m := range h.takeEarly(id) {
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
	h.takeEarly(id)
	if _, ok := h.groups[id]; !ok {
		return nil
	}
	if h.stalled != nil {
		return fmt.Errorf("raftlog: remove group %d: WAL stalled: %w", id, h.stallErr)
	}
	// With a write in flight that holds some of the group's records, the
	// removal is written after them (the caller keeps the WAL's calls in
	// order), and WriteDone skips the group's Ready.
	if err := h.appendWAL([][]byte{encodeRemove(id)}, true); err != nil {
		return err
	}
	delete(h.groups, id)
	if i, ok := slices.BinarySearch(h.ids, id); ok {
		h.ids = slices.Delete(h.ids, i, i+1)
	}
	return nil
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
	if len(h.lazy) > 0 {
		if h.lazyTicks++; h.lazyTicks >= lazyCommitTicks {
			h.flushLazy = true
		}
	}
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

// Propose proposes data to group id. It fails if the group is unknown or
// raft refuses the proposal (for example, no leader known).
func (h *Host) Propose(id GroupID, data []byte) error {
	g, ok := h.groups[id]
	if !ok {
		return fmt.Errorf("raftlog: no group %d", id)
	}
	g.quiesced = false
	return h.countDropped(g.rn.Propose(data))
}

// countDropped counts a proposal raft refused.
func (h *Host) countDropped(err error) error {
	if errors.Is(err, raft.ErrProposalDropped) {
		h.stats.ProposalsDropped++
	}
	return err
}

// ErrNotLeader is returned by ProposeAsLeader when raft on this host does
// not lead the group.
var ErrNotLeader = errors.New("raftlog: not the group's raft leader")

// ProposeAsLeader proposes data to group id only if raft here leads it; it
// never forwards. A forwarded proposal (MsgProp) is not idempotent as
// raft's appends are: a network that duplicates it makes the leader append
// it twice, and the proposer, no longer leading, has already told its
// client the request failed while it may still commit. Proposals whose
// duplicates would be visible (records) go through here; the caller's
// idea of leadership can lag raft's by one Ready cycle.
func (h *Host) ProposeAsLeader(id GroupID, data []byte) error {
	g, ok := h.groups[id]
	if !ok {
		return fmt.Errorf("raftlog: no group %d", id)
	}
	if g.rn.BasicStatus().RaftState != raft.StateLeader {
		return ErrNotLeader
	}
	g.quiesced = false
	return h.countDropped(g.rn.Propose(data))
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
	// Quiesced: the group is not ticking here.
	Quiesced bool
}

// Status returns group id's status; ok is false if the group is unknown.
func (h *Host) Status(id GroupID) (Status, bool) {
	g, ok := h.groups[id]
	if !ok {
		return Status{}, false
	}
	// BasicStatus and WithProgress, not Status: Status copies every
	// follower's Progress, in-flight window included, which an idle
	// broker's per-tick ISR check paid for each group it leads.
	st := g.rn.BasicStatus()
	s := Status{
		Lead: st.Lead, Term: st.HardState.GetTerm(), Commit: st.HardState.GetCommit(),
		Applied: st.Applied, Leader: st.RaftState == raft.StateLeader, Voters: g.voters, Quiesced: g.quiesced,
	}
	if s.Leader {
		s.Progress = make(map[uint64]uint64, len(g.voters))
		g.rn.WithProgress(func(id uint64, _ raft.ProgressType, pr tracker.Progress) {
			s.Progress[id] = pr.Match
		})
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
		h.stats.MessagesReceived++
		if e.Msg.GetType() == pb.MessageType_MsgApp && g.appReceived == 0 {
			g.appReceived = h.now()
		}
		err := g.rn.Step(e.Msg)
		switch {
		case err == nil:
		case errors.Is(err, raft.ErrProposalDropped):
			h.stats.ProposalsDropped++
		case errors.Is(err, raft.ErrStepPeerNotFound), errors.Is(err, raft.ErrStepLocalMsg):
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
