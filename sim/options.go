package sim

import (
	"fmt"
	"math/rand/v2"
	"strings"

	"github.com/gregor-streaming/gregor/engine"
	"github.com/gregor-streaming/gregor/linearizability"
)

// Partition modes: how the network fault injector cuts links.
const (
	PartitionNone          = "none"
	PartitionSymmetric     = "symmetric"      // two sides, no message crosses
	PartitionAsymmetric    = "asymmetric"     // one broker hears nobody, but is heard
	PartitionOneWay        = "one-way"        // a random set of directed links is cut
	PartitionIsolateLeader = "isolate-leader" // a partition leader is cut off from every peer
	PartitionMixed         = "mixed"          // each fault picks one of the above
)

// ModeAll runs every delivery mode at once, each on its own partitions.
const ModeAll = "all"

// Unsafe knob names, as --unsafe spells them.
const (
	UnsafeAckBeforeFsync = "ack-before-fsync"
	// UnsafeFinishBeforeWrite makes a broker writing off its loop send a
	// cycle's messages and apply its entries before its write is durable
	// (the knob turns AsyncWrites on).
	UnsafeFinishBeforeWrite = "finish-before-write"
	UnsafeStaleRead         = "stale-read"
	UnsafeNoDedupe          = "no-dedupe"
	// UnsafeSkipApplyCheckpoint breaks the durable apply point: a replica
	// reports its applied index durable without syncing its segments or
	// writing its checkpoint, and re-applies over a gap.
	UnsafeSkipApplyCheckpoint = "skip-apply-checkpoint"
	// UnsafeNoGenerationCheck makes the group coordinator accept offset
	// commits from any member and generation (a zombie's commit lands).
	UnsafeNoGenerationCheck = "no-generation-check"
	// UnsafeStaleOffsetFetch serves OffsetFetch from the applied state of
	// any replica of the group's __consumer_offsets partition (a
	// follower, a deposed leader), without confirming it leads.
	UnsafeStaleOffsetFetch = "stale-offset-fetch"
	// UnsafeNoRevokeBeforeAssign makes the KIP-848 coordinator hand a
	// partition to its new owner before the previous owner revoked it.
	UnsafeNoRevokeBeforeAssign = "no-revoke-before-assign"
	// UnsafeLSOIsHW serves read_committed up to the high watermark, as if
	// no transaction were open (txn.go catches it).
	UnsafeLSOIsHW = "lso-is-hw"
	// UnsafeNoFencing accepts a transactional producer's fenced epoch
	// (see engine.Unsafe.NoFencing for which checks).
	UnsafeNoFencing = "no-fencing"
	// UnsafeMarkerBeforePrepare makes the transaction coordinator send a
	// transaction's markers before its PrepareCommit or PrepareAbort
	// record is written.
	UnsafeMarkerBeforePrepare = "marker-before-prepare"
	// UnsafeLateMarker makes a partition's leader take every transaction
	// marker as not bumped for the end, so a late copy of one ends the
	// producer's next transaction (see engine.Unsafe.LateMarker).
	UnsafeLateMarker = "late-marker"
	// UnsafePeerAnswerByID matches a broker-to-broker answer to its call
	// by id alone, ids starting from 0 at every boot (see
	// engine.Unsafe.PeerAnswerByID).
	UnsafePeerAnswerByID = "peer-answer-by-id"
	// UnsafeCompactActive makes the log cleaner drop each key's latest
	// record too (lifecycle.go catches it).
	UnsafeCompactActive = "compact-active"
)

// Limits of a world.
const (
	brokersMax          = 5
	partitionsTotal     = 12 // over topicsCount topics
	topicsCount         = 2
	replicationFactor   = 3
	safetyMillisDefault = 45_000
	livenessMillisMax   = 60_000 // the bound within which everything must converge
	tickMillis          = 100
	// groupMinSessionMillis is the coordinators' group.min.session.timeout.ms
	// (Kafka's 6 s is too long for runs this short).
	groupMinSessionMillis = 1_000
)

// Options is everything a run depends on besides the binary. NewOptions
// derives all of it from the seed; a caller may force a few fields (the
// command line's --brokers, --mode, --time, --unsafe) before Run, and the
// replay command repeats exactly those.
type Options struct {
	Seed    uint64
	Brokers int    // 3 or 5
	Mode    string // a linearizability mode name, or ModeAll
	Unsafe  string // "" or one Unsafe* name

	SafetyMillis   int64 // simulated time with faults
	LivenessMillis int64 // bound on the healed phase

	Topics     int
	Partitions int // per topic

	LatencyMinMillis  int64   // every message takes at least this
	LatencyMeanMillis int64   // plus an exponential with this mean
	LatencySlowRate   float64 // fraction of messages 10x slower (reordering)
	LossRate          float64 // fraction of messages dropped

	PartitionMode        string
	PartitionEveryMillis int64 // mean gap between network faults (0: none)
	PartitionForMillis   int64 // mean length of one

	CrashEveryMillis int64 // mean gap between crashes (0: none)
	DownMillis       int64 // mean time a crashed broker stays down

	// FlushEveryMillis is how often a broker syncs its WAL in the
	// background; it matters only with ack-before-fsync.
	FlushEveryMillis int64
	CheckpointBytes  int64
	// CheckpointEveryMillis, if set, checkpoints each broker about this
	// often besides the WAL-size trigger, so raft logs get compacted and
	// followers catch up from peers' state even in runs that write little.
	CheckpointEveryMillis int64
	SegmentBytes          int64

	Producers           int
	Consumers           int
	ClientTimeoutMillis int64
	ProduceRetries      int // at-least-once attempts beyond the first

	// The second fault model, drawn after every option above so that a
	// seed keeps the values it had before these existed. docs/fault-model.md
	// says why Gregor is expected to survive each.

	// RotRate is the chance that a crash also flips one bit of the
	// victim's durable partition files (segments, indexes, checkpoints)
	// before it restarts. A partition is never rotten on more than a
	// minority of its replicas at a time.
	RotRate float64
	// A Process that synced the WAL or a file keeps its broker busy for
	// FsyncMinMillis plus an exponential with mean FsyncMeanMillis; a
	// fraction FsyncSlowRate of syncs stall FsyncSlowMillis more. Inputs
	// that arrive meanwhile wait and go into one Process (group commit).
	FsyncMinMillis  int64
	FsyncMeanMillis int64
	FsyncSlowRate   float64
	FsyncSlowMillis int64
	// Each broker's clock (engine.Clock) is off the world's by a fixed
	// offset drawn in [-ClockSkewMillis, ClockSkewMillis] and runs at a
	// rate off by a drift drawn in [-ClockDrift, ClockDrift]. Raft ticks
	// stay driven by the world.
	ClockSkewMillis int64
	ClockDrift      float64
	// MajorityCrashEveryMillis is the mean gap between crashes of a
	// majority or of every broker at once (0: none); each comes back after
	// MajorityDownMillis on average.
	MajorityCrashEveryMillis int64
	MajorityDownMillis       int64
	// Client-broker partitions: every ClientCutEveryMillis on average one
	// client loses its links to some brokers for ClientCutForMillis on
	// average (0: none).
	ClientCutEveryMillis int64
	ClientCutForMillis   int64
	// DupRate of the payloads between brokers are delivered twice;
	// DelayRate of every message (between brokers, and client requests
	// and responses) is held up to DelayMaxMillis more.
	DupRate        float64
	DelayRate      float64
	DelayMaxMillis int64
	// ChurnEveryMillis is the mean pause of the admin client that creates
	// topics, writes to them and deletes most of them during the safety
	// phase (0: no churn). The tracked topics are never deleted.
	ChurnEveryMillis int64
	// ValuesPerProduceMax bounds the records of one produce.
	ValuesPerProduceMax int
	// WALRotRate is the chance that a crash flips a bit of the victim's
	// synced WAL. Only with WALRot (--wal-rot, off by default): the broker
	// must refuse to start (detection), and cannot repair itself: see
	// docs/fault-model.md.
	WALRotRate float64
	// Disk errors: every DiskErrorEveryMillis on average one broker's
	// disk fails writes (ENOSPC) or syncs (EIO), WAL and files, for
	// DiskErrorForMillis on average. Only with DiskErrors: drawn for a
	// third of the seeds, or forced with --disk-errors.
	DiskErrorEveryMillis int64
	DiskErrorForMillis   int64

	// WALRot switches on an injection that is off by default, DiskErrors
	// one a seed draws; the command line forces them and the replay
	// command repeats them.
	WALRot     bool
	DiskErrors bool

	// The group workload (group.go), drawn after everything above.
	// Groups consumer groups (0: none) of GroupMembers members each
	// consume every tracked partition; __consumer_offsets has
	// OffsetsPartitions partitions. Members ask for SessionTimeoutMillis
	// and RebalanceTimeoutMillis; the coordinator delays a new group's
	// first rebalance InitialRebalanceDelayMillis (-1: not at all). Each
	// member leaves, crashes or pauses like a zombie every
	// GroupChaosEveryMillis on average in the safety phase.
	Groups                      int
	GroupMembers                int
	OffsetsPartitions           int32
	SessionTimeoutMillis        int32
	RebalanceTimeoutMillis      int32
	InitialRebalanceDelayMillis int32
	GroupChaosEveryMillis       int64

	// The transactional workload (txn.go), drawn after everything above:
	// TxnWriters writers (0: none) run transactions on the "tx" topic,
	// TxnReaders read_committed readers read it. It runs when Txn is set
	// (txnByDefault, --txn) or with a knob only it can catch (lso-is-hw,
	// no-fencing, marker-before-prepare).
	Txn        bool
	TxnWriters int
	TxnReaders int
	// TxnProcessors consume-transform-produce processors (eos.go) read
	// tx in a consumer group and write txo exactly once (0: none).
	TxnProcessors int
	// TxnPingPong processors (txnpingpong.go) read tx and pp and write
	// pp, each what the others read (0: none).
	TxnPingPong int

	// The lifecycle workload (lifecycle.go), drawn after everything
	// above: a compacted topic and a delete-policy topic with segments of
	// LifeSegmentBytes; LifeKeys keys; the compacted topic's
	// delete.retention.ms, min.cleanable.dirty.ratio and
	// min.compaction.lag.ms; the brokers' cleaner backoff, step and round
	// bytes and retention check interval; the delete-policy topic's
	// retention.ms and retention.bytes (-1: none); and how often its admin
	// sends DeleteRecords. It runs when Lifecycle is set
	// (lifecycleByDefault, --lifecycle) or with compact-active.
	Lifecycle                    bool
	LifeSegmentBytes             int64
	LifeKeys                     int
	LifeDeleteRetentionMillis    int64
	LifeDirtyRatio               float64
	LifeMinCompactionLagMillis   int64
	LifeCleanerBackoffMillis     int64
	LifeCleanerStepBytes         int64
	LifeCleanerRoundBytes        int64
	LifeRetentionCheckMillis     int64
	LifeRetentionMillis          int64
	LifeRetentionBytes           int64
	LifeDeleteRecordsEveryMillis int64

	// AsyncWrites: brokers hand each raft cycle's WAL records to the
	// world, which writes them at once and reports them synced an fsync's
	// time later while the broker goes on taking inputs (engine's
	// Env.AsyncWrites, as `gregor serve` runs). Otherwise a broker writes
	// and syncs inside Process and stays busy for the fsync. Drawn after
	// everything above, for three seeds in four.
	AsyncWrites bool
}

// NewOptions derives every option from seed ("swarm testing"): one seed
// is one configuration, and a range of seeds spreads over many.
func NewOptions(seed uint64) Options {
	rng := rand.New(rand.NewPCG(seed, 0x6f7074696f6e73)) // "options"
	pick := func(xs ...int64) int64 { return xs[rng.IntN(len(xs))] }
	o := Options{
		Seed:           seed,
		Brokers:        3,
		Mode:           ModeAll,
		SafetyMillis:   safetyMillisDefault,
		LivenessMillis: livenessMillisMax,
		Topics:         topicsCount,
		Partitions:     partitionsTotal / topicsCount,
	}
	if rng.IntN(5) == 0 {
		o.Brokers = 5
	}
	o.LatencyMinMillis = pick(1, 2, 5)
	o.LatencyMeanMillis = pick(2, 5, 10, 30)
	o.LatencySlowRate = []float64{0, 0.01, 0.05}[rng.IntN(3)]
	o.LossRate = []float64{0, 0.001, 0.01, 0.05}[rng.IntN(4)]
	modes := []string{PartitionNone, PartitionSymmetric, PartitionAsymmetric, PartitionOneWay, PartitionIsolateLeader, PartitionMixed, PartitionMixed, PartitionIsolateLeader}
	o.PartitionMode = modes[rng.IntN(len(modes))]
	if o.PartitionMode != PartitionNone {
		o.PartitionEveryMillis = pick(2_000, 4_000, 8_000)
		o.PartitionForMillis = pick(1_000, 3_000, 6_000)
	}
	if rng.IntN(6) != 0 {
		o.CrashEveryMillis = pick(2_000, 4_000, 8_000)
		o.DownMillis = pick(500, 2_000, 5_000)
	}
	o.FlushEveryMillis = pick(500, 1_000, 3_000)
	o.CheckpointBytes = pick(64<<10, 256<<10, 4<<20)
	o.SegmentBytes = pick(8<<10, 64<<10, 1<<20)
	// The second fault model raised these ranges (2-6 and 1-3 before):
	// one draw each as before, so every other option keeps its value.
	o.Producers = 4 + rng.IntN(5)
	o.Consumers = 6 + rng.IntN(7)
	o.ClientTimeoutMillis = pick(1_000, 2_000, 4_000)
	o.ProduceRetries = 2 + rng.IntN(4)
	// Drawn last, so the options drawn before it keep their values.
	o.CheckpointEveryMillis = pick(0, 1_000, 3_000)
	// The second fault model, after everything above.
	o.RotRate = []float64{0, 0.25, 0.5}[rng.IntN(3)]
	o.FsyncMinMillis = pick(1, 1, 2)
	o.FsyncMeanMillis = pick(1, 2, 5)
	o.FsyncSlowRate = []float64{0, 0.005, 0.02}[rng.IntN(3)]
	o.FsyncSlowMillis = pick(50, 300, 1_500)
	o.ClockSkewMillis = pick(0, 20, 2_000, 600_000)
	o.ClockDrift = []float64{0, 0.0001, 0.01, 0.05}[rng.IntN(4)]
	if rng.IntN(3) == 0 {
		o.MajorityCrashEveryMillis = pick(8_000, 15_000)
		o.MajorityDownMillis = pick(300, 2_000, 6_000)
	}
	if rng.IntN(2) == 0 {
		o.ClientCutEveryMillis = pick(2_000, 6_000)
		o.ClientCutForMillis = pick(500, 2_000, 6_000)
	}
	o.DupRate = []float64{0, 0.001, 0.01, 0.05}[rng.IntN(4)]
	o.DelayRate = []float64{0, 0.001, 0.01}[rng.IntN(3)]
	o.DelayMaxMillis = pick(2_000, 8_000)
	o.ChurnEveryMillis = pick(0, 500, 2_000)
	o.ValuesPerProduceMax = int(pick(3, 10, 40))
	o.WALRotRate = []float64{0.1, 0.3}[rng.IntN(2)]
	o.DiskErrorEveryMillis = pick(2_000, 6_000)
	o.DiskErrorForMillis = pick(200, 1_000, 4_000)
	// A third of the seeds inject disk errors; --disk-errors forces them.
	o.DiskErrors = rng.IntN(3) == 0
	// The group workload, after everything above.
	o.Groups = 1 + rng.IntN(3)
	o.GroupMembers = 2 + rng.IntN(2)
	o.OffsetsPartitions = int32(3 + rng.IntN(3))
	o.SessionTimeoutMillis = int32(pick(1_500, 3_000, 6_000))
	o.RebalanceTimeoutMillis = int32(pick(3_000, 6_000))
	o.InitialRebalanceDelayMillis = int32(pick(-1, 300, 1_000))
	o.GroupChaosEveryMillis = pick(6_000, 15_000)
	// The transactional workload, after everything above.
	o.Txn = txnByDefault
	// One writer and one reader, two of either one seed in four.
	o.TxnWriters = 1 + rng.IntN(4)/3
	o.TxnReaders = 1 + rng.IntN(4)/3
	// No processor one seed in four, two one in four, after everything
	// above.
	o.TxnProcessors = []int{0, 1, 1, 2}[rng.IntN(4)]
	// Two ping-pong processors one seed in two, after everything above.
	o.TxnPingPong = 2 * rng.IntN(2)
	// The lifecycle workload, after everything above.
	o.Lifecycle = lifecycleByDefault
	o.LifeSegmentBytes = pick(300, 500, 1_000)
	o.LifeKeys = int(pick(4, 8, 16))
	o.LifeDeleteRetentionMillis = pick(500, 2_000, 5_000)
	o.LifeDirtyRatio = []float64{0.01, 0.1, 0.3}[rng.IntN(3)]
	o.LifeMinCompactionLagMillis = pick(0, 0, 500)
	o.LifeCleanerBackoffMillis = pick(100, 300, 1_000)
	o.LifeCleanerStepBytes = pick(300, 1_000, 4_000)
	o.LifeCleanerRoundBytes = pick(2_000, 8_000, 128<<20)
	o.LifeRetentionCheckMillis = pick(200, 1_000)
	o.LifeRetentionMillis = pick(-1, 3_000, 10_000)
	o.LifeRetentionBytes = pick(-1, 2_000, 6_000)
	o.LifeDeleteRecordsEveryMillis = pick(1_000, 4_000)
	// Writes off the loop, after everything above.
	o.AsyncWrites = rng.IntN(4) != 0
	return o
}

// Validate reports options Run cannot honour.
func (o Options) Validate() error {
	switch {
	case o.Brokers != 3 && o.Brokers != 5:
		return fmt.Errorf("sim: %d brokers (want 3 or 5)", o.Brokers)
	case o.Topics < 1 || o.Partitions < 1:
		return fmt.Errorf("sim: need at least one topic and partition")
	case o.SafetyMillis < 0 || o.LivenessMillis <= 0:
		return fmt.Errorf("sim: phase lengths must be positive")
	case o.Producers < 1:
		return fmt.Errorf("sim: need a producer")
	case o.ValuesPerProduceMax < 1:
		return fmt.Errorf("sim: need at least one value per produce")
	case o.ClockDrift <= -1 || o.ClockDrift >= 1:
		return fmt.Errorf("sim: clock drift %v out of (-1, 1)", o.ClockDrift)
	case o.Groups > 0 && (o.GroupMembers < 1 || o.OffsetsPartitions < 1 || o.SessionTimeoutMillis < groupMinSessionMillis ||
		o.RebalanceTimeoutMillis < 1 || o.GroupChaosEveryMillis < 1):
		return fmt.Errorf("sim: group options out of range")
	case o.TxnWriters < 0 || o.TxnReaders < 0 || o.TxnProcessors < 0 || o.TxnPingPong < 0 ||
		(o.TxnProcessors > 0 || o.TxnPingPong > 0) && o.TxnReaders == 0:
		return fmt.Errorf("sim: transactional options out of range")
	case o.lifecycleOn() && (o.LifeSegmentBytes < 14 || o.LifeKeys < 1 || o.LifeDeleteRetentionMillis < 0 || o.LifeDirtyRatio < 0 ||
		o.LifeDirtyRatio > 1 || o.LifeMinCompactionLagMillis < 0 || o.LifeCleanerBackoffMillis < 1 || o.LifeCleanerStepBytes < 1 ||
		o.LifeCleanerRoundBytes < 1 || o.LifeRetentionCheckMillis < 1 || o.LifeRetentionMillis < -1 || o.LifeRetentionBytes < -1 ||
		o.LifeDeleteRecordsEveryMillis < 1):
		return fmt.Errorf("sim: lifecycle options out of range")
	}
	if o.Mode != ModeAll {
		if _, err := linearizability.ParseMode(o.Mode); err != nil {
			return fmt.Errorf("sim: %w", err)
		}
	}
	if _, err := ParseUnsafe(o.Unsafe); err != nil {
		return err
	}
	return nil
}

// ParseUnsafe maps an --unsafe name to the engine knob it sets.
func ParseUnsafe(name string) (engine.Unsafe, error) {
	switch name {
	case "":
		return engine.Unsafe{}, nil
	case UnsafeAckBeforeFsync:
		return engine.Unsafe{AckBeforeFsync: true}, nil
	case UnsafeStaleRead:
		return engine.Unsafe{StaleRead: true}, nil
	case UnsafeNoDedupe:
		return engine.Unsafe{NoDedupe: true}, nil
	case UnsafeSkipApplyCheckpoint:
		return engine.Unsafe{SkipApplyCheckpoint: true}, nil
	case UnsafeNoGenerationCheck:
		return engine.Unsafe{NoGenerationCheck: true}, nil
	case UnsafeStaleOffsetFetch:
		return engine.Unsafe{StaleOffsetFetch: true}, nil
	case UnsafeNoRevokeBeforeAssign:
		return engine.Unsafe{NoRevokeBeforeAssign: true}, nil
	case UnsafeLSOIsHW:
		return engine.Unsafe{LSOIsHW: true}, nil
	case UnsafeNoFencing:
		return engine.Unsafe{NoFencing: true}, nil
	case UnsafeMarkerBeforePrepare:
		return engine.Unsafe{MarkerBeforePrepare: true}, nil
	case UnsafeLateMarker:
		return engine.Unsafe{LateMarker: true}, nil
	case UnsafePeerAnswerByID:
		return engine.Unsafe{PeerAnswerByID: true}, nil
	case UnsafeCompactActive:
		return engine.Unsafe{CompactLatest: true}, nil
	case UnsafeFinishBeforeWrite:
		return engine.Unsafe{FinishBeforeWrite: true}, nil
	}
	return engine.Unsafe{}, fmt.Errorf("sim: unknown unsafe knob %q (want %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s or %s)", name,
		UnsafeAckBeforeFsync, UnsafeFinishBeforeWrite, UnsafeStaleRead, UnsafeNoDedupe, UnsafeSkipApplyCheckpoint, UnsafeNoGenerationCheck, UnsafeStaleOffsetFetch,
		UnsafeNoRevokeBeforeAssign, UnsafeLSOIsHW, UnsafeNoFencing, UnsafeMarkerBeforePrepare, UnsafeLateMarker, UnsafePeerAnswerByID, UnsafeCompactActive)
}

// String lists every option, one "option name value" line each, in a
// fixed order: a run prints it first.
func (o Options) String() string {
	var sb strings.Builder
	line := func(name string, v any) { fmt.Fprintf(&sb, "option %-24s %v\n", name, v) }
	line("brokers", o.Brokers)
	line("mode", o.Mode)
	unsafe := o.Unsafe
	if unsafe == "" {
		unsafe = "none"
	}
	line("unsafe", unsafe)
	line("safety-ms", o.SafetyMillis)
	line("liveness-bound-ms", o.LivenessMillis)
	line("topics", o.Topics)
	line("partitions-per-topic", o.Partitions)
	line("latency-min-ms", o.LatencyMinMillis)
	line("latency-mean-ms", o.LatencyMeanMillis)
	line("latency-slow-rate", o.LatencySlowRate)
	line("loss-rate", o.LossRate)
	line("partition-mode", o.PartitionMode)
	line("partition-every-ms", o.PartitionEveryMillis)
	line("partition-for-ms", o.PartitionForMillis)
	line("crash-every-ms", o.CrashEveryMillis)
	line("down-ms", o.DownMillis)
	line("flush-every-ms", o.FlushEveryMillis)
	line("checkpoint-bytes", o.CheckpointBytes)
	line("segment-bytes", o.SegmentBytes)
	line("producers", o.Producers)
	line("consumers", o.Consumers)
	line("client-timeout-ms", o.ClientTimeoutMillis)
	line("produce-retries", o.ProduceRetries)
	line("checkpoint-every-ms", o.CheckpointEveryMillis)
	line("rot-rate", o.RotRate)
	line("fsync-min-ms", o.FsyncMinMillis)
	line("fsync-mean-ms", o.FsyncMeanMillis)
	line("fsync-slow-rate", o.FsyncSlowRate)
	line("fsync-slow-ms", o.FsyncSlowMillis)
	line("clock-skew-ms", o.ClockSkewMillis)
	line("clock-drift", o.ClockDrift)
	line("majority-crash-every-ms", o.MajorityCrashEveryMillis)
	line("majority-down-ms", o.MajorityDownMillis)
	line("client-cut-every-ms", o.ClientCutEveryMillis)
	line("async-writes", o.AsyncWrites)
	line("client-cut-for-ms", o.ClientCutForMillis)
	line("dup-rate", o.DupRate)
	line("delay-rate", o.DelayRate)
	line("delay-max-ms", o.DelayMaxMillis)
	line("churn-every-ms", o.ChurnEveryMillis)
	line("values-per-produce-max", o.ValuesPerProduceMax)
	onOff := func(b bool) string {
		if b {
			return "on"
		}
		return "off"
	}
	line("wal-rot", onOff(o.WALRot))
	line("wal-rot-rate", o.WALRotRate)
	line("disk-errors", onOff(o.DiskErrors))
	line("disk-error-every-ms", o.DiskErrorEveryMillis)
	line("disk-error-for-ms", o.DiskErrorForMillis)
	line("groups", o.Groups)
	line("group-members", o.GroupMembers)
	line("offsets-partitions", o.OffsetsPartitions)
	line("session-timeout-ms", o.SessionTimeoutMillis)
	line("rebalance-timeout-ms", o.RebalanceTimeoutMillis)
	line("initial-rebalance-delay-ms", o.InitialRebalanceDelayMillis)
	line("group-chaos-every-ms", o.GroupChaosEveryMillis)
	line("txn", onOff(o.txnOn()))
	line("txn-writers", o.TxnWriters)
	line("txn-readers", o.TxnReaders)
	line("txn-processors", o.TxnProcessors)
	line("txn-pingpong", o.TxnPingPong)
	line("lifecycle", onOff(o.lifecycleOn()))
	line("life-segment-bytes", o.LifeSegmentBytes)
	line("life-keys", o.LifeKeys)
	line("life-delete-retention-ms", o.LifeDeleteRetentionMillis)
	line("life-dirty-ratio", o.LifeDirtyRatio)
	line("life-min-compaction-lag-ms", o.LifeMinCompactionLagMillis)
	line("life-cleaner-backoff-ms", o.LifeCleanerBackoffMillis)
	line("life-cleaner-step-bytes", o.LifeCleanerStepBytes)
	line("life-cleaner-round-bytes", o.LifeCleanerRoundBytes)
	line("life-retention-check-ms", o.LifeRetentionCheckMillis)
	line("life-retention-ms", o.LifeRetentionMillis)
	line("life-retention-bytes", o.LifeRetentionBytes)
	line("life-delete-records-ms", o.LifeDeleteRecordsEveryMillis)
	return sb.String()
}
