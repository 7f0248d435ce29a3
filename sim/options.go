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
	UnsafeStaleRead      = "stale-read"
	UnsafeNoDedupe       = "no-dedupe"
	// UnsafeSkipApplyCheckpoint breaks the durable apply point: a replica
	// reports its applied index durable without syncing its segments or
	// writing its checkpoint, and re-applies over a gap.
	UnsafeSkipApplyCheckpoint = "skip-apply-checkpoint"
)

// Limits of a world.
const (
	brokersMax          = 5
	partitionsTotal     = 12 // over topicsCount topics
	topicsCount         = 2
	replicationFactor   = 3
	safetyMillisDefault = 30_000
	livenessMillisMax   = 60_000 // the bound within which everything must converge
	tickMillis          = 100
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
	o.Producers = 2 + rng.IntN(5)
	o.Consumers = 1 + rng.IntN(3)
	o.ClientTimeoutMillis = pick(1_000, 2_000, 4_000)
	o.ProduceRetries = 2 + rng.IntN(4)
	// Drawn last, so the options drawn before it keep their values.
	o.CheckpointEveryMillis = pick(0, 1_000, 3_000)
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
	}
	return engine.Unsafe{}, fmt.Errorf("sim: unknown unsafe knob %q (want %s, %s, %s or %s)", name,
		UnsafeAckBeforeFsync, UnsafeStaleRead, UnsafeNoDedupe, UnsafeSkipApplyCheckpoint)
}

// String lists every option, one "option name value" line each, in a
// fixed order: a run prints it first.
func (o Options) String() string {
	var sb strings.Builder
	line := func(name string, v any) { fmt.Fprintf(&sb, "option %-22s %v\n", name, v) }
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
	return sb.String()
}
