package engine

import (
	"fmt"
	"slices"

	"github.com/gregor-streaming/gregor/engine/rsm"
	"github.com/gregor-streaming/gregor/raftlog"
	"github.com/gregor-streaming/gregor/raftlog/vfs"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// BrokerInfo names a broker and where its Kafka listeners are reached.
type BrokerInfo struct {
	ID int32
	// Host and Port are the broker's address for a client whose listener
	// is unknown ("" in Client.Listener: the simulator, tests) or when
	// Listeners is empty (a broker known only from the configuration,
	// before it registers). The runtime sets them to its first listener's.
	Host string
	Port int32
	Rack string
	// Listeners are the broker's named listeners with their advertised
	// addresses (Kafka's advertised.listeners), as it registered them.
	// A client is told, of every broker, the address of the listener it
	// came through, and nothing of a broker without that listener
	// (Kafka's behaviour).
	Listeners []Endpoint `json:",omitempty"`
}

// Endpoint is one advertised listener: its name (upper case, as Kafka's
// listener names) and the address clients are told.
type Endpoint struct {
	Name string
	Host string
	Port int32
}

// endpoint is bi's address for a client that came through listener:
// the listener of that name, or Host and Port when either side names no
// listener; false when bi has listeners but not that one.
func (bi BrokerInfo) endpoint(listener string) (host string, port int32, ok bool) {
	if listener == "" || len(bi.Listeners) == 0 {
		return bi.Host, bi.Port, true
	}
	for _, e := range bi.Listeners {
		if e.Name == listener {
			return e.Host, e.Port, true
		}
	}
	return "", 0, false
}

// endpointFor is bi's address for the client of the request being
// handled. A broker that has not registered its listeners yet is left out
// when this broker has named listeners (the cluster uses them): its
// Host and Port are its first listener's, which may not be the client's
// (a TLS client told a PLAINTEXT address fails its handshake there).
func (b *Broker) endpointFor(bi BrokerInfo) (host string, port int32, ok bool) {
	if l := b.reqClient.listener; l != "" && len(bi.Listeners) == 0 && b.namedListeners() {
		return "", 0, false
	}
	return bi.endpoint(b.reqClient.listener)
}

// namedListeners reports whether this broker serves named listeners.
func (b *Broker) namedListeners() bool {
	for _, bi := range b.cfg.Cluster {
		if bi.ID == b.cfg.ID {
			return len(bi.Listeners) > 0
		}
	}
	return false
}

// Unsafe knobs each disable one safety mechanism. They exist only so the
// simulator can prove its checkers catch the anomalies that follow; never
// set them outside a simulation.
type Unsafe struct {
	AckBeforeFsync bool // acknowledge before the WAL sync
	// FinishBeforeWrite, with Env.AsyncWrites, sends a raft cycle's
	// messages and applies its entries as soon as its WAL records are
	// handed to the caller, before they are durable.
	FinishBeforeWrite bool
	StaleRead         bool // serve fetches from local state: no ReadIndex round, no leader check
	NoDedupe          bool // skip idempotent-producer deduplication
	// SkipApplyCheckpoint reports the applied index as durable without
	// syncing the segments or writing the checkpoint, and re-applies over
	// a gap instead of fetching a peer's state.
	SkipApplyCheckpoint bool
	// NoGenerationCheck accepts offset commits from any member and
	// generation of a classic group (a zombie's commits land).
	NoGenerationCheck bool
	// StaleOffsetFetch serves OffsetFetch from the local applied state of
	// any replica of the group's __consumer_offsets partition that holds
	// the group (a follower, a deposed leader): no ReadIndex round, no
	// leader check, no member epoch check.
	StaleOffsetFetch bool
	// NoRevokeBeforeAssign makes the KIP-848 coordinator hand a partition
	// to its new owner at once, without waiting for the previous owner to
	// revoke it.
	NoRevokeBeforeAssign bool
	// LSOIsHW serves read_committed fetches and list-offsets up to the
	// high watermark, as if no transaction were open: the last stable
	// offset reported is the high watermark.
	LSOIsHW bool
	// NoFencing turns the transaction coordinator's fencing off: it
	// accepts an older epoch of a transactional id's producer in
	// AddPartitionsToTxn, AddOffsetsToTxn and EndTxn (txnProducerCheck)
	// and in its answer to a partition's KIP-890 verification, so a
	// fenced zombie extends, commits or aborts its successor's
	// transaction and writes into it. The partitions' own epoch check
	// stays (unsafe_txn.go says why).
	NoFencing bool
	// MarkerBeforePrepare makes the transaction coordinator send a
	// transaction's markers as EndTxn arrives, before its PrepareCommit or
	// PrepareAbort record is written (unsafe_txn.go).
	MarkerBeforePrepare bool
	// PeerAnswerByID matches a broker-to-broker answer to its call by
	// the call id alone, and numbers calls from 0 at every boot: a late
	// answer to an earlier incarnation's call is taken for this one's
	// (TestRegression_PeerResponseAcrossRestart).
	PeerAnswerByID bool
	// LateMarker makes a partition's leader propose every marker as if
	// its epoch had not been bumped for the end (txnMarker.bumped false):
	// a late copy of a transactions-v2 marker then ends the producer's
	// next transaction, open at the marker's epoch, instead of being
	// refused.
	LateMarker bool
	// CompactLatest makes the log cleaner drop the latest record of a key
	// as well as the older ones (compaction.go): a compacted topic loses
	// current values.
	CompactLatest bool
}

// Config configures one broker.
type Config struct {
	ID int32
	// Cluster lists the initial brokers. All of them vote in the metadata
	// group, and partition replicas are placed on them.
	Cluster   []BrokerInfo
	ClusterID string

	AutoCreateTopics         bool
	DefaultPartitions        int32 // default 1
	DefaultReplicationFactor int16 // default min(3, len(Cluster))

	ElectionTicks  int   // default 10
	HeartbeatTicks int   // default 1
	TickMillis     int64 // the time one Tick stands for, default 100
	// SegmentBytes is the partition segment size (default 64 MiB).
	SegmentBytes int64
	// CheckpointBytes is how much WAL is written between checkpoints.
	CheckpointBytes int64
	// MaxMessageBytes caps one produce partition's record bytes (default 1 MiB, Kafka's).
	MaxMessageBytes int32
	// ProducerIDExpirationMs: an idempotent producer whose last batch is
	// this old loses its state (Kafka's producer.id.expiration.ms, default
	// 1 day); ProducerIDExpirationCheckMs is how often a leader looks
	// (default 10 minutes).
	ProducerIDExpirationMs      int64
	ProducerIDExpirationCheckMs int64
	// SnapshotChunkBytes bounds one chunk of a replica's state sent to a
	// peer that repairs from it (default 1 MiB).
	SnapshotChunkBytes int32

	// Group coordination (Kafka's names): __consumer_offsets has
	// OffsetsTopicPartitions partitions (default 50) of
	// OffsetsTopicReplicationFactor replicas (default min(3, brokers)).
	OffsetsTopicPartitions        int32
	OffsetsTopicReplicationFactor int16
	// Transaction coordination (Kafka's names): __transaction_state has
	// TransactionStatePartitions partitions (default 50) of
	// TransactionStateReplicationFactor replicas (default min(3,
	// brokers)); a producer's transaction timeout may be at most
	// TransactionMaxTimeoutMs (default 900000).
	TransactionStatePartitions        int32
	TransactionStateReplicationFactor int16
	TransactionMaxTimeoutMs           int32
	// TransactionVersion is the level of the transaction.version feature
	// (KIP-890) the cluster finalizes: 2 (the default) lets clients use
	// transactions v2 (an epoch bump at every EndTxn, partitions added
	// by Produce v12+), 1 keeps them on v1.
	TransactionVersion int16
	// TransactionalIDExpirationMs: a transactional id with no
	// transaction open and no change for this long is forgotten (Kafka's
	// transactional.id.expiration.ms, default 7 days).
	TransactionalIDExpirationMs int64
	// LogDir names the data directory in DescribeLogDirs (the runtime
	// sets it; "data" when empty).
	LogDir string
	// RetentionCheckIntervalMs: how often a partition leader looks for
	// segments past retention.ms or retention.bytes (Kafka's
	// log.retention.check.interval.ms, default 300000).
	RetentionCheckIntervalMs int64
	// CleanerBackoffMs is how often a compacted partition's leader looks
	// for a round to clean (Kafka's log.cleaner.backoff.ms, 15 s);
	// CleanerStepBytes bounds what one step rewrites (4 MiB: about 35 ms
	// of the raft loop at BenchmarkCleaner's 120 MB/s) and
	// CleanerRoundBytes the dirty log one round's offset map covers
	// (128 MiB): compaction.go.
	CleanerBackoffMs  int64
	CleanerStepBytes  int64
	CleanerRoundBytes int64
	// GroupMinSessionTimeoutMs and GroupMaxSessionTimeoutMs bound a
	// member's session timeout (defaults 6000 and 1800000).
	GroupMinSessionTimeoutMs int32
	GroupMaxSessionTimeoutMs int32
	// GroupInitialRebalanceDelayMs delays the first rebalance of an
	// empty group so more members can join (default 3000; -1 for none).
	GroupInitialRebalanceDelayMs int32
	// GroupMaxSize caps a group's members (default unlimited).
	GroupMaxSize int32
	// OffsetsRetentionMs: committed offsets of a group that has been
	// empty this long are deleted (default 7 days);
	// OffsetsRetentionCheckIntervalMs is how often a coordinator looks
	// (default 10 minutes).
	OffsetsRetentionMs              int64
	OffsetsRetentionCheckIntervalMs int64
	// KIP-848 consumer groups: a member's session
	// (group.consumer.session.timeout.ms, default 45000) and the heartbeat
	// interval members are told (group.consumer.heartbeat.interval.ms,
	// default 5000).
	GroupConsumerSessionTimeoutMs    int32
	GroupConsumerHeartbeatIntervalMs int32

	// Authorizer turns ACLs on (Kafka: authorizer.class.name set): every
	// client request is then checked against the ACL bindings
	// (authorizer.go). SuperUsers may do everything (super.users,
	// principals such as "User:admin"); AllowEveryoneIfNoACLFound allows
	// what no binding covers (allow.everyone.if.no.acl.found, default
	// false).
	Authorizer                bool
	SuperUsers                []string
	AllowEveryoneIfNoACLFound bool

	// StaticConfigs are the Kafka names of the broker settings given
	// explicitly when the broker started (Kafka's server.properties;
	// gregor serve's flags and --config file). DescribeConfigs reports
	// them, and every setting whose value is not the built-in one, as
	// STATIC_BROKER_CONFIG.
	StaticConfigs []string

	Unsafe Unsafe
}

func (c *Config) setDefaults() {
	if c.DefaultPartitions == 0 {
		c.DefaultPartitions = 1
	}
	if c.DefaultReplicationFactor == 0 {
		c.DefaultReplicationFactor = int16(min(3, len(c.Cluster)))
	}
	if c.ElectionTicks == 0 {
		c.ElectionTicks = 10
	}
	if c.HeartbeatTicks == 0 {
		c.HeartbeatTicks = 1
	}
	if c.TickMillis == 0 {
		c.TickMillis = 100
	}
	if c.ProducerIDExpirationMs == 0 {
		c.ProducerIDExpirationMs = 24 * 60 * 60 * 1000
	}
	if c.ProducerIDExpirationCheckMs == 0 {
		c.ProducerIDExpirationCheckMs = 10 * 60 * 1000
	}
	if c.SnapshotChunkBytes == 0 {
		c.SnapshotChunkBytes = 1 << 20
	}
	if c.MaxMessageBytes == 0 {
		c.MaxMessageBytes = 1<<20 + 12 // Kafka's message.max.bytes: 1 MiB and a record batch's log overhead
	}
	if c.OffsetsTopicPartitions == 0 {
		c.OffsetsTopicPartitions = 50
	}
	if c.OffsetsTopicReplicationFactor == 0 {
		c.OffsetsTopicReplicationFactor = int16(min(3, len(c.Cluster)))
	}
	if c.TransactionStatePartitions == 0 {
		c.TransactionStatePartitions = 50
	}
	if c.TransactionStateReplicationFactor == 0 {
		c.TransactionStateReplicationFactor = int16(min(3, len(c.Cluster)))
	}
	if c.TransactionMaxTimeoutMs == 0 {
		c.TransactionMaxTimeoutMs = 900_000
	}
	if c.TransactionVersion == 0 {
		c.TransactionVersion = 2
	}
	if c.RetentionCheckIntervalMs == 0 {
		c.RetentionCheckIntervalMs = 300_000
	}
	if c.CleanerBackoffMs == 0 {
		c.CleanerBackoffMs = 15_000
	}
	if c.CleanerStepBytes == 0 {
		c.CleanerStepBytes = 4 << 20
	}
	if c.CleanerRoundBytes == 0 {
		c.CleanerRoundBytes = 128 << 20
	}
	if c.TransactionalIDExpirationMs == 0 {
		c.TransactionalIDExpirationMs = 7 * 24 * 60 * 60 * 1000
	}
	if c.GroupMinSessionTimeoutMs == 0 {
		c.GroupMinSessionTimeoutMs = 6000
	}
	if c.GroupMaxSessionTimeoutMs == 0 {
		c.GroupMaxSessionTimeoutMs = 1800000
	}
	if c.GroupInitialRebalanceDelayMs == 0 {
		c.GroupInitialRebalanceDelayMs = 3000
	}
	if c.GroupMaxSize == 0 {
		c.GroupMaxSize = 1<<31 - 1
	}
	if c.GroupConsumerSessionTimeoutMs == 0 {
		c.GroupConsumerSessionTimeoutMs = 45000
	}
	if c.GroupConsumerHeartbeatIntervalMs == 0 {
		c.GroupConsumerHeartbeatIntervalMs = 5000
	}
	if c.OffsetsRetentionMs == 0 {
		c.OffsetsRetentionMs = 7 * 24 * 60 * 60 * 1000
	}
	if c.OffsetsRetentionCheckIntervalMs == 0 {
		c.OffsetsRetentionCheckIntervalMs = 10 * 60 * 1000
	}
	if c.ClusterID == "" {
		c.ClusterID = "gregor"
	}
}

// Clock tells the time. The real runtime passes the wall clock, the
// simulator its virtual one.
type Clock interface {
	// NowMillis is milliseconds since the Unix epoch.
	NowMillis() int64
}

// Env is everything outside the core a broker touches.
type Env struct {
	FS    vfs.FS      // the broker's data directory
	WAL   raftlog.WAL // the broker's write-ahead log
	Clock Clock
	Logf  func(format string, args ...any) // nil discards
	// SendEarly, if set, gets a leader's appends before its WAL sync so
	// that leader and follower fsyncs overlap (see raftlog.Config). It
	// must not block. Nil sends everything through Outbox after the sync.
	SendEarly func([]raftlog.Outgoing)
	// Nanotime, if set, is a monotonic clock in nanoseconds for the
	// latency histograms of Stats (raftlog.Config.Now); the simulator
	// leaves it nil.
	Nanotime func() int64
	// AsyncWrites: the caller writes and syncs each raft cycle's WAL
	// records off the broker's thread (TakeWrite, WriteDone), so the
	// broker goes on handling requests and peer messages during a sync.
	AsyncWrites bool
}

// Response is a Kafka response for the request handed in with Token. A nil
// Msg means the request gets no response (a Produce with acks=0).
type Response struct {
	Token uint64
	Msg   kmsg.Response
}

// reconcileRetryTicks is how often a failed start or stop of a replica
// is tried again.
const reconcileRetryTicks = 10

// metadataGroup is the raft group holding cluster metadata.
const metadataGroup raftlog.GroupID = 1

// Broker is one Gregor broker's core: stepped, single-threaded, no IO of
// its own beyond Env.
type Broker struct {
	cfg Config
	// static caches staticBrokerConfigs.
	static map[string]staticConfig
	// handingOff: the groups a controlled shutdown asked raft to move,
	// and to whom (shutdown.go).
	handingOff map[raftlog.GroupID]leaderAt
	env        Env
	host       *raftlog.Host
	meta       *metaSM

	parts map[raftlog.GroupID]*partition
	// replicas is every state machine hosted here, of every kind, by group.
	replicas     map[raftlog.GroupID]replica
	replicaOrder []raftlog.GroupID // sorted keys of replicas; nil when stale (replicaIDs)
	// want is the partition replicas the applied metadata places here;
	// reconcileReplicas makes parts follow it.
	want map[raftlog.GroupID]wantReplica
	// wantChanged is set when want changed or a start or stop failed and
	// is due for another try.
	wantChanged, reconcileFailed bool

	responses []Response
	// prop stamps this broker's proposals to every group: its id, this
	// run's boot number (telling them from an earlier run's) and a sequence.
	prop  rsm.Proposer
	ticks int64

	// effects run after host.Process returns: work a state machine must
	// not do inside its own apply (proposing to another group).
	effects []func()
	// timers fire on ticks: request timeouts and long-poll deadlines.
	timers timerQueue
	// calls are this broker's requests to peers, by id (peer.go).
	calls   map[uint64]*peerCall
	callSeq uint64

	pids pidBlock
	// creating names the internal topics this broker has proposed and
	// not yet heard back about.
	creating map[string]bool
	// reqClient is the sender of the request being handled.
	reqClient clientInfo
	// authz is the authorizer's view of the configuration.
	authz authzConfig

	registered bool
}

// NewBroker opens (or creates) a broker's state and recovers it.
func NewBroker(cfg Config, env Env) (*Broker, error) {
	cfg.setDefaults()
	if env.Logf == nil {
		env.Logf = func(string, ...any) {}
	}
	if !slices.ContainsFunc(cfg.Cluster, func(bi BrokerInfo) bool { return bi.ID == cfg.ID }) {
		return nil, fmt.Errorf("engine: broker %d is not in the cluster list", cfg.ID)
	}
	host, err := raftlog.New(raftlog.Config{
		ID:                      uint64(cfg.ID),
		ElectionTicks:           cfg.ElectionTicks,
		HeartbeatTicks:          cfg.HeartbeatTicks,
		CheckpointBytes:         cfg.CheckpointBytes,
		UnsafeAckBeforeFsync:    cfg.Unsafe.AckBeforeFsync,
		UnsafeFinishBeforeWrite: cfg.Unsafe.FinishBeforeWrite,
		SendEarly:               env.SendEarly,
		Now:                     env.Nanotime,
		AsyncWrites:             env.AsyncWrites,
	}, env.WAL)
	if err != nil {
		return nil, err
	}
	if err := host.Recover(); err != nil {
		return nil, err
	}
	boot, err := nextBoot(env.FS, env.Clock.NowMillis())
	if err != nil {
		return nil, fmt.Errorf("engine: boot counter: %w", err)
	}
	b := &Broker{
		cfg:      cfg,
		env:      env,
		host:     host,
		parts:    map[raftlog.GroupID]*partition{},
		replicas: map[raftlog.GroupID]replica{},
		want:     map[raftlog.GroupID]wantReplica{},
		calls:    map[uint64]*peerCall{},
		callSeq:  boot << 32, // ids unique across restarts (peer.go)
		prop:     rsm.Proposer{ID: cfg.ID, Boot: boot},
		authz:    authzConfig{superUsers: map[string]bool{}, allowEveryoneIfNoACL: cfg.AllowEveryoneIfNoACLFound},
	}
	if cfg.Unsafe.PeerAnswerByID {
		b.callSeq = 0
	}
	for _, u := range cfg.SuperUsers {
		b.authz.superUsers[u] = true
	}
	b.meta = newMetaSM(b)
	if err := b.meta.loadImage(); err != nil {
		return nil, err
	}
	var voters []uint64
	for _, bi := range cfg.Cluster {
		voters = append(voters, uint64(bi.ID))
	}
	slices.Sort(voters)
	if err := b.hostReplica(metadataGroup, voters, b.meta, voters[0] == uint64(cfg.ID)); err != nil {
		return nil, err
	}
	// The image must reach where raft's log starts: entries in between are
	// gone (index 1 is the bootstrap snapshot, an empty state), and the
	// metadata group has no repair to fetch them. Restore and the
	// checkpoint's compaction keep it so; a broker that finds it otherwise
	// refuses to start rather than forget topics.
	if first, _ := host.FirstIndex(metadataGroup); first-1 > max(b.meta.applied, 1) {
		return nil, fmt.Errorf("engine: metadata image at index %d, but the raft log starts at %d: the entries between are lost", b.meta.applied, first)
	}
	return b, b.Process()
}

// ID is the broker's id.
func (b *Broker) ID() int32 { return b.cfg.ID }

// Config returns the broker's configuration (with defaults filled in).
func (b *Broker) Config() Config { return b.cfg }

// Tick advances the broker's logical clock by one tick.
func (b *Broker) Tick() {
	b.ticks++
	if b.reconcileFailed && b.ticks%reconcileRetryTicks == 0 {
		b.wantChanged = true
	}
	b.host.Tick()
	b.fireTimers()
	if b.ticks%5 == 0 {
		b.reconcile()
	}
	for _, id := range b.replicaIDs() {
		b.replicas[id].tick()
	}
}

// Receive hands the broker a transport payload from a peer broker.
func (b *Broker) Receive(payload []byte) error {
	return b.host.Receive(payload)
}

// Process runs raft cycles and the work they make ready until nothing is
// left to do. Call it after every batch of Tick, Receive and Handle calls.
func (b *Broker) Process() error {
	for range 64 {
		for _, m := range b.host.PeerInbox() {
			b.onPeer(m)
		}
		if err := b.host.Process(); err != nil {
			return err
		}
		if err := b.reconcileReplicas(); err != nil {
			return err
		}
		effects := b.effects
		b.effects = nil
		for _, fn := range effects {
			fn()
		}
		for _, id := range b.replicaIDs() {
			b.replicas[id].startReads()
		}
		if len(b.effects) == 0 && !b.host.HasReady() {
			return nil
		}
	}
	return nil
}

// Outbox drains the transport payloads for peer brokers.
func (b *Broker) Outbox() []raftlog.Outgoing { return b.host.Outbox() }

// Responses drains the Kafka responses that are complete.
func (b *Broker) Responses() []Response {
	r := b.responses
	b.responses = nil
	return r
}

// Close closes every partition's files. The WAL belongs to the caller.
func (b *Broker) Close() error {
	var first error
	for _, id := range b.partIDs() {
		if err := b.parts[id].close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// TakeWrite returns the WAL records of the raft cycle in flight, once,
// with Env.AsyncWrites (nil otherwise, or when there are none): the caller
// appends them to the WAL (after anything it appended before), syncs it,
// and reports with WriteDone, then calls Process. Check it after every
// Process.
func (b *Broker) TakeWrite() [][]byte { return b.host.TakeWrite() }

// WriteDone reports the outcome of the write TakeWrite handed over; call
// Process after it. A WAL error stalls the broker's raft groups until a
// retry succeeds; an error is returned only if the broker must stop.
func (b *Broker) WriteDone(err error) error { return b.host.WriteDone(err) }

// SyncWAL makes unsynced WAL records durable (only the AckBeforeFsync
// knob leaves any).
func (b *Broker) SyncWAL() error { return b.host.SyncWAL() }

func (b *Broker) partIDs() []raftlog.GroupID {
	ids := make([]raftlog.GroupID, 0, len(b.parts))
	for id := range b.parts {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

func (b *Broker) nowMillis() int64 { return b.env.Clock.NowMillis() }

// reply collects the parts of one response and sends it when the last
// outstanding part is done.
type reply struct {
	b           *Broker
	token       uint64
	msg         kmsg.Response
	outstanding int
	sent        bool
	timer       *timer
}

func (b *Broker) newReply(token uint64, msg kmsg.Response) *reply {
	// One part is held while the handler registers the others: a part
	// that fails at once answers synchronously, and must not send the
	// response before the later parts are in it (found by the simulator,
	// seeds 5 and 41: a produce answered with base offset -1 and no error
	// for partitions registered after a failed proposal). The handler
	// releases it with maybeSend (or done) when all are registered.
	return &reply{b: b, token: token, msg: msg, outstanding: 1}
}

// add registers one more outstanding part.
func (r *reply) add() { r.outstanding++ }

// done marks one part finished; the last one sends the response.
func (r *reply) done() {
	r.outstanding--
	if r.outstanding == 0 {
		r.send()
	}
}

// send emits the response now, whatever is outstanding (timeouts).
func (r *reply) send() {
	if r.sent {
		return
	}
	r.sent = true
	if r.timer != nil {
		r.timer.stop()
	}
	r.b.responses = append(r.b.responses, Response{Token: r.token, Msg: r.msg})
}

// maybeSend releases the part held while registering: the response goes
// when nothing else is outstanding.
func (r *reply) maybeSend() { r.done() }

// Checkpoint syncs every partition's segments, compacts the raft logs up to
// what is durable, and lets the WAL purge what came before.
func (b *Broker) Checkpoint() error { return b.host.Checkpoint() }
