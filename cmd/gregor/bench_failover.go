package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"os/signal"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gregor-streaming/gregor/engine"
	"github.com/gregor-streaming/gregor/engine/runtime"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

const benchFailoverUsage = `usage: gregor bench failover [flags]

Measures Gregor's start-up and failover, in this process. Each of --runs
runs starts a fresh 3-broker cluster as gregor dev does (ephemeral loopback
ports, data in a temporary directory under --data, the engine's default
raft timeouts unless --election-ticks or --tick-ms are given) and at once a
franz-go producer (acks=all, idempotent, linger 0; franz-go's other
defaults unless --retry-backoff or --metadata-min-age are given) sending
--rate records/s round-robin to a new topic of --partitions partitions,
RF 3, which an admin client (the same client settings) creates as soon as
the cluster answers. Start-up: the time from the start to every broker
knowing the controller (gregor dev's "ready"), to CreateTopics answered,
to the first acknowledged record and to every partition's first one.

Failover: after --settle of steady producing, it stops the broker leading
the most partitions (runtime.Node.Stop: the broker answers what it has
already read, then its connections close as a killed process's would;
there is no leadership hand-over; with --graceful, a controlled shutdown
as gregor serve's on SIGTERM: Node.HandOffLeadership first, then Stop) and keeps producing for at least
--observe after every partition has acknowledged again. A partition's
unavailability is the longest gap in its acknowledgements from the stop on
(the stop to its first acknowledgement after it, or a later gap). It
reports the max and the median over the stopped broker's partitions, the
other partitions' max, the send-to-acknowledgement latency of records sent
from 1 s before the stop, and for the stopped broker's partitions when a
surviving replica became raft leader and when a survivor's Metadata first
named a live leader. Medians over the runs, then every run; --json prints
them as one object.

`

// Defaults and limits of bench failover.
const (
	benchFailoverRunsDefault = 3
	benchFailoverRateDefault = 1000
	// benchFailoverSettleDefault is above franz-go's default metadata min
	// age (5 s), so that with default client settings the producer's last
	// metadata refresh (at start-up) is old enough at the stop for the
	// refresh the stop triggers to run at once, as in a long-running
	// producer; a shorter settle makes the window depend on when that
	// refresh happened.
	benchFailoverSettleDefault  = 6 * time.Second
	benchFailoverObserveDefault = 2 * time.Second
	benchFailoverTopic          = "failover"
	benchFailoverBrokers        = 3
	benchFailoverRF             = 3
	benchFailoverStartMax       = 60 * time.Second // start-up: every partition acknowledged
	benchFailoverRecoverMax     = 60 * time.Second // after the stop: every partition acknowledged again
	benchFailoverLatencyBefore  = time.Second      // latency of records sent from this long before the stop
	benchFailoverPoll           = 2 * time.Millisecond
)

type benchFailoverOptions struct {
	runs           int
	partitions     int
	rate           float64
	recordSize     int
	settle         time.Duration
	observe        time.Duration
	retryBackoff   time.Duration // 0: franz-go's default
	metadataMinAge time.Duration // 0: franz-go's default
	electionTicks  int           // 0: the engine's default
	tickMillis     int           // 0: the engine's default
	data           string
	json           bool
	verbose        bool
	clientLog      string // "", info or debug
	stopController bool   // among the brokers leading the most partitions, prefer the controller
	graceful       bool   // a controlled shutdown: hand leadership over first
}

func parseBenchFailover(args []string, stderr io.Writer) (benchFailoverOptions, error) {
	var o benchFailoverOptions
	fs := newFlagSet("gregor bench failover", benchFailoverUsage, stderr)
	fs.IntVar(&o.runs, "runs", benchFailoverRunsDefault, "runs, each with a fresh cluster (the report shows medians)")
	fs.IntVar(&o.partitions, "partitions", benchPartitionsDefault, "partitions of the topic (RF 3)")
	fs.Float64Var(&o.rate, "rate", benchFailoverRateDefault, "records/s over all partitions")
	fs.IntVar(&o.recordSize, "record-size", benchRecordSizeDefault, "value bytes per record")
	fs.DurationVar(&o.settle, "settle", benchFailoverSettleDefault, "steady producing between every partition's first acknowledgement and the stop")
	fs.DurationVar(&o.observe, "observe", benchFailoverObserveDefault, "producing after every partition has acknowledged again following the stop")
	fs.DurationVar(&o.retryBackoff, "retry-backoff", 0, "the clients' retry backoff (0: franz-go's default, 250 ms doubling to 5 s)")
	fs.DurationVar(&o.metadataMinAge, "metadata-min-age", 0, "the clients' metadata min age (0: franz-go's default, 5 s)")
	fs.IntVar(&o.electionTicks, "election-ticks", 0, "the brokers' raft election timeout in ticks (0: the engine's default, 10)")
	fs.IntVar(&o.tickMillis, "tick-ms", 0, "the brokers' raft tick in milliseconds (0: the engine's default, 100)")
	fs.StringVar(&o.data, "data", "", "directory to create each run's temporary data directory in (default: the system temp dir)")
	fs.BoolVar(&o.json, "json", false, "print the result as one JSON object")
	fs.BoolVar(&o.verbose, "v", false, "print the brokers' logs and each run's progress to stderr")
	fs.BoolVar(&o.stopController, "stop-controller", false, "among the brokers leading the most partitions, stop the controller (default: one that is not)")
	fs.BoolVar(&o.graceful, "graceful", false, "a controlled shutdown, as gregor serve's on SIGTERM: the broker hands the leadership of its raft groups to the others first (Node.HandOffLeadership), then stops")
	fs.StringVar(&o.clientLog, "client-log", "", "print the clients' logs to stderr at this level: info or debug")
	if err := parseFlagsOnly(fs, args); err != nil {
		return o, err
	}
	switch {
	case o.runs < 1:
		return o, fmt.Errorf("--runs %d: want at least 1", o.runs)
	case o.partitions < 1:
		return o, fmt.Errorf("--partitions %d: want at least 1", o.partitions)
	case o.rate <= 0:
		return o, fmt.Errorf("--rate %v: want a positive rate", o.rate)
	case o.recordSize < 0 || o.recordSize > benchRecordSizeMax:
		return o, fmt.Errorf("--record-size %d: want 0 to %d", o.recordSize, benchRecordSizeMax)
	case o.settle < 0 || o.observe < 0 || o.retryBackoff < 0 || o.metadataMinAge < 0:
		return o, errors.New("--settle, --observe, --retry-backoff and --metadata-min-age must not be negative")
	case o.electionTicks < 0 || o.tickMillis < 0:
		return o, errors.New("--election-ticks and --tick-ms must not be negative")
	case o.electionTicks == 1:
		return o, errors.New("--election-ticks 1: raft needs an election timeout above the heartbeat's 1 tick")
	}
	switch o.clientLog {
	case "", "info", "debug":
	default:
		return o, fmt.Errorf("--client-log %q: want info or debug", o.clientLog)
	}
	return o, nil
}

// benchFailoverRun is what one run measured. Start-up times are
// milliseconds after the cluster began starting; failover times are
// milliseconds after the stop.
type benchFailoverRun struct {
	ListeningMs        float64 `json:"listening_ms"` // every broker listening, recovered and running
	ControllerMs       float64 `json:"controller_ms"`
	TopicCreatedMs     float64 `json:"topic_created_ms"`
	FirstAckMs         float64 `json:"first_ack_ms"`
	AllPartitionsAckMs float64 `json:"all_partitions_ack_ms"`
	StartErrors        int     `json:"start_errors"`
	StartFirstError    string  `json:"start_first_error,omitempty"`

	Stopped           int32   `json:"stopped_broker"`
	StoppedController bool    `json:"stopped_controller"`
	StoppedPartitions []int32 `json:"stopped_partitions"`
	StopCallMs        float64 `json:"stop_call_ms"` // how long Node.Stop took
	// GapMs is every partition's unavailability, by partition.
	GapMs         []float64 `json:"gap_ms"`
	Unrecovered   []int32   `json:"unrecovered,omitempty"` // no acknowledgement after the stop
	GapMaxMs      float64   `json:"gap_max_ms"`
	GapMedianMs   float64   `json:"gap_median_ms"` // over the stopped broker's partitions
	OtherGapMaxMs float64   `json:"other_gap_max_ms"`
	LatencyMaxMs  float64   `json:"latency_max_ms"`
	LatencyP99Ms  float64   `json:"latency_p99_ms"`
	// Of the stopped broker's partitions, in StoppedPartitions' order
	// (-1: not seen): a survivor leads the raft group; a survivor's
	// Metadata names a live leader.
	RaftLeaderMs     []float64 `json:"raft_leader_ms"`
	MetadataLeaderMs []float64 `json:"metadata_leader_ms"`
	// NewControllerMs: every survivor knows a new controller (-1: the
	// stopped broker was not the controller).
	NewControllerMs float64 `json:"new_controller_ms"`
	Errors          int     `json:"errors"` // records failed after the stop
	FirstError      string  `json:"first_error,omitempty"`
}

// benchFailoverSummary is the medians over the runs.
type benchFailoverSummary struct {
	ControllerMs       float64 `json:"controller_ms"`
	TopicCreatedMs     float64 `json:"topic_created_ms"`
	FirstAckMs         float64 `json:"first_ack_ms"`
	AllPartitionsAckMs float64 `json:"all_partitions_ack_ms"`
	GapMaxMs           float64 `json:"gap_max_ms"`
	GapMedianMs        float64 `json:"gap_median_ms"`
	OtherGapMaxMs      float64 `json:"other_gap_max_ms"`
	LatencyMaxMs       float64 `json:"latency_max_ms"`
	RaftLeaderMs       float64 `json:"raft_leader_ms"`     // of each run's median
	MetadataLeaderMs   float64 `json:"metadata_leader_ms"` // of each run's median
}

type benchFailoverResult struct {
	Brokers        int                  `json:"brokers"`
	Partitions     int                  `json:"partitions"`
	Rate           float64              `json:"rate"`
	RecordSize     int                  `json:"record_size"`
	TickMillis     int64                `json:"tick_ms"`
	ElectionTicks  int                  `json:"election_ticks"`
	RetryBackoff   string               `json:"client_retry_backoff"`
	MetadataMinAge string               `json:"client_metadata_min_age"`
	Median         benchFailoverSummary `json:"median"`
	Runs           []benchFailoverRun   `json:"runs"`
}

func benchFailoverCmd(args []string, stdout, stderr io.Writer) int {
	o, err := parseBenchFailover(args, stderr)
	if err != nil {
		return flagsFailed("gregor bench failover", err, stderr)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	res := benchFailoverResult{
		Brokers: benchFailoverBrokers, Partitions: o.partitions, Rate: o.rate, RecordSize: o.recordSize,
		RetryBackoff: "franz-go default", MetadataMinAge: "franz-go default",
	}
	if o.retryBackoff > 0 {
		res.RetryBackoff = o.retryBackoff.String()
	}
	if o.metadataMinAge > 0 {
		res.MetadataMinAge = o.metadataMinAge.String()
	}
	for i := range o.runs {
		r, cfg, err := benchFailoverOne(ctx, o, stderr)
		if err != nil {
			fmt.Fprintf(stderr, "gregor bench failover: run %d: %v\n", i+1, err)
			return exitError
		}
		res.TickMillis, res.ElectionTicks = cfg.TickMillis, cfg.ElectionTicks
		res.Runs = append(res.Runs, r)
		if o.verbose {
			fmt.Fprintf(stderr, "gregor bench failover: run %d: start-up %.0f ms to every partition, stopped broker %d, gap max %.0f ms\n",
				i+1, r.AllPartitionsAckMs, r.Stopped, r.GapMaxMs)
		}
	}
	res.Median = benchFailoverMedians(res.Runs)
	if o.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(res); err != nil {
			fmt.Fprintf(stderr, "gregor bench failover: %v\n", err)
			return exitError
		}
		return exitOK
	}
	benchFailoverPrint(stdout, res)
	return exitOK
}

// benchFailoverMedians is the median of each measurement over the runs;
// for the per-partition timelines, of each run's median.
func benchFailoverMedians(runs []benchFailoverRun) benchFailoverSummary {
	col := func(f func(benchFailoverRun) float64) float64 {
		var xs []float64
		for _, r := range runs {
			xs = append(xs, f(r))
		}
		return benchMedian(xs)
	}
	return benchFailoverSummary{
		ControllerMs:       col(func(r benchFailoverRun) float64 { return r.ControllerMs }),
		TopicCreatedMs:     col(func(r benchFailoverRun) float64 { return r.TopicCreatedMs }),
		FirstAckMs:         col(func(r benchFailoverRun) float64 { return r.FirstAckMs }),
		AllPartitionsAckMs: col(func(r benchFailoverRun) float64 { return r.AllPartitionsAckMs }),
		GapMaxMs:           col(func(r benchFailoverRun) float64 { return r.GapMaxMs }),
		GapMedianMs:        col(func(r benchFailoverRun) float64 { return r.GapMedianMs }),
		OtherGapMaxMs:      col(func(r benchFailoverRun) float64 { return r.OtherGapMaxMs }),
		LatencyMaxMs:       col(func(r benchFailoverRun) float64 { return r.LatencyMaxMs }),
		RaftLeaderMs:       col(func(r benchFailoverRun) float64 { return benchMedian(r.RaftLeaderMs) }),
		MetadataLeaderMs:   col(func(r benchFailoverRun) float64 { return benchMedian(r.MetadataLeaderMs) }),
	}
}

func benchFailoverPrint(w io.Writer, res benchFailoverResult) {
	fmt.Fprintf(w, "gregor bench failover: %d runs; %d brokers, %d partitions RF %d, %.0f records/s of %d bytes, acks=all, idempotent, linger 0\n",
		len(res.Runs), res.Brokers, res.Partitions, benchFailoverRF, res.Rate, res.RecordSize)
	fmt.Fprintf(w, "raft: tick %d ms, election timeout %d ticks (%d ms); clients: retry backoff %s, metadata min age %s\n\n",
		res.TickMillis, res.ElectionTicks, res.TickMillis*int64(res.ElectionTicks), res.RetryBackoff, res.MetadataMinAge)
	line := func(what string, med float64, f func(benchFailoverRun) float64) {
		var xs []float64
		for _, r := range res.Runs {
			xs = append(xs, f(r))
		}
		fmt.Fprintf(w, "  %-46s %8.0f   %s\n", what, med, benchList(xs, "%.0f"))
	}
	m := res.Median
	fmt.Fprintf(w, "start-up, ms after the cluster began starting  median   runs\n")
	line("every broker knows the controller", m.ControllerMs, func(r benchFailoverRun) float64 { return r.ControllerMs })
	line("topic created (CreateTopics answered)", m.TopicCreatedMs, func(r benchFailoverRun) float64 { return r.TopicCreatedMs })
	line("first acknowledged record", m.FirstAckMs, func(r benchFailoverRun) float64 { return r.FirstAckMs })
	line("every partition acknowledged", m.AllPartitionsAckMs, func(r benchFailoverRun) float64 { return r.AllPartitionsAckMs })
	fmt.Fprintf(w, "failover, ms after the leading broker stopped\n")
	line("unavailability, max over partitions", m.GapMaxMs, func(r benchFailoverRun) float64 { return r.GapMaxMs })
	line("unavailability, median (stopped leader's)", m.GapMedianMs, func(r benchFailoverRun) float64 { return r.GapMedianMs })
	line("longest gap of the other partitions", m.OtherGapMaxMs, func(r benchFailoverRun) float64 { return r.OtherGapMaxMs })
	line("send-to-ack latency max (sent from 1 s before)", m.LatencyMaxMs, func(r benchFailoverRun) float64 { return r.LatencyMaxMs })
	line("a survivor is raft leader (median partition)", m.RaftLeaderMs, func(r benchFailoverRun) float64 { return benchMedian(r.RaftLeaderMs) })
	line("Metadata names it (median partition)", m.MetadataLeaderMs, func(r benchFailoverRun) float64 { return benchMedian(r.MetadataLeaderMs) })
	fmt.Fprintln(w)
	for i, r := range res.Runs {
		fmt.Fprintf(w, "run %d: stopped broker %d (leader of %v", i+1, r.Stopped, r.StoppedPartitions)
		if r.StoppedController {
			fmt.Fprintf(w, "; the controller, survivors knew a new one after %.0f ms", r.NewControllerMs)
		}
		fmt.Fprintf(w, "); Stop took %.0f ms\n", r.StopCallMs)
		fmt.Fprintf(w, "  gaps by partition (ms): %s\n", benchList(r.GapMs, "%.0f"))
		fmt.Fprintf(w, "  stopped leader's partitions, raft leader at (ms): %s; Metadata at: %s\n",
			benchList(r.RaftLeaderMs, "%.0f"), benchList(r.MetadataLeaderMs, "%.0f"))
		fmt.Fprintf(w, "  latency p99 %.0f ms, max %.0f ms; errors after the stop %d", r.LatencyP99Ms, r.LatencyMaxMs, r.Errors)
		if r.FirstError != "" {
			fmt.Fprintf(w, " (first: %s)", r.FirstError)
		}
		fmt.Fprintln(w)
		if r.StartErrors > 0 {
			fmt.Fprintf(w, "  start-up errors %d (first: %s)\n", r.StartErrors, r.StartFirstError)
		}
		if len(r.Unrecovered) > 0 {
			fmt.Fprintf(w, "  partitions with no acknowledgement after the stop: %v\n", r.Unrecovered)
		}
	}
}

// benchFailoverGap is one partition's unavailability around a stop at
// kill: the longest interval in the sequence kill, then its
// acknowledgement times after kill in order (so the stop to the first
// acknowledgement, or a later gap between two). acks may be in any order;
// those before kill are ignored. With none after kill the partition never
// recovered: the gap is end-kill and ok is false.
func benchFailoverGap(kill, end time.Duration, acks []time.Duration) (gap time.Duration, ok bool) {
	var after []time.Duration
	for _, a := range acks {
		if a >= kill {
			after = append(after, a)
		}
	}
	if len(after) == 0 {
		return max(end-kill, 0), false
	}
	slices.Sort(after)
	prev := kill
	for _, a := range after {
		gap = max(gap, a-prev)
		prev = a
	}
	return gap, true
}

// benchFailoverAck is one acknowledged record, both times since the run's
// start.
type benchFailoverAck struct{ sent, acked time.Duration }

// benchFailoverLog collects a run's acknowledgements by partition and its
// failed records.
type benchFailoverLog struct {
	mu    sync.Mutex
	acks  [][]benchFailoverAck
	fails []benchFailoverFail
}

type benchFailoverFail struct {
	at  time.Duration
	err string
}

// ackedSince reports whether every partition has acknowledged a record
// sent at or after t.
func (l *benchFailoverLog) ackedSince(t time.Duration) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, as := range l.acks {
		if len(as) == 0 || as[len(as)-1].sent < t {
			return false
		}
	}
	return true
}

// benchFailoverOne is one run: a fresh cluster, start-up, the stop.
func benchFailoverOne(ctx context.Context, o benchFailoverOptions, stderr io.Writer) (r benchFailoverRun, cfg engine.Config, err error) {
	dir, err := os.MkdirTemp(benchDataParent(o.data), "gregor-failover-")
	if err != nil {
		return r, cfg, fmt.Errorf("bench: %w", err)
	}
	defer os.RemoveAll(dir)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ms := func(d time.Duration) float64 { return benchMillis(d) }

	start := time.Now()
	since := func() time.Duration { return time.Since(start) }
	logf := func(id int32) func(string, ...any) {
		if !o.verbose {
			return func(string, ...any) {}
		}
		return log.New(stderr, fmt.Sprintf("broker %d: ", id), log.Lmicroseconds).Printf
	}
	dev := devOptions{brokers: benchFailoverBrokers, data: dir, autoCreate: true}
	dev.engine = func(c *engine.Config) {
		if o.electionTicks > 0 {
			c.ElectionTicks = o.electionTicks
		}
		if o.tickMillis > 0 {
			c.TickMillis = int64(o.tickMillis)
		}
	}
	nodes, err := startDev(dev, nil, logf)
	if err != nil {
		return r, cfg, fmt.Errorf("bench: gregor cluster: %w", err)
	}
	r.ListeningMs = ms(since())
	defer stopDev(nodes)
	cfg = nodes[0].Config().Broker
	var seeds []string
	for _, n := range nodes {
		seeds = append(seeds, n.KafkaAddr())
	}

	clientOpts := []kgo.Opt{kgo.SeedBrokers(seeds...)}
	if o.retryBackoff > 0 {
		clientOpts = append(clientOpts, kgo.RetryBackoffFn(func(int) time.Duration { return o.retryBackoff }))
	}
	if o.metadataMinAge > 0 {
		clientOpts = append(clientOpts, kgo.MetadataMinAge(o.metadataMinAge))
	}
	clientLog := func(name string) []kgo.Opt {
		if o.clientLog == "" {
			return nil
		}
		level := kgo.LogLevelInfo
		if o.clientLog == "debug" {
			level = kgo.LogLevelDebug
		}
		return []kgo.Opt{kgo.WithLogger(kgo.BasicLogger(stderr, level, func() string {
			return fmt.Sprintf("%9.3f ms %s: ", ms(since()), name)
		}))}
	}

	// Start-up: the controller, the topic and the producer, all at once.
	var (
		controllerAt = make(chan time.Duration, 1)
		createdAt    = make(chan time.Duration, 1)
		createErr    = make(chan error, 1)
	)
	go func() {
		for ctx.Err() == nil {
			if benchFailoverController(nodes, 0) != 0 {
				controllerAt <- since()
				return
			}
			time.Sleep(benchFailoverPoll)
		}
	}()
	admin, err := kgo.NewClient(append(slices.Clone(clientOpts), clientLog("admin")...)...)
	if err != nil {
		return r, cfg, fmt.Errorf("bench: admin client: %w", err)
	}
	defer admin.Close()
	go func() {
		adm := kadm.NewClient(admin)
		for {
			cctx, ccancel := context.WithTimeout(ctx, benchFailoverStartMax)
			resp, err := adm.CreateTopic(cctx, int32(o.partitions), benchFailoverRF, nil, benchFailoverTopic)
			ccancel()
			if err == nil {
				err = resp.Err
			}
			if err == nil || errors.Is(err, kerr.TopicAlreadyExists) {
				createdAt <- since()
				return
			}
			if ctx.Err() != nil || (!kerr.IsRetriable(err) && !errors.Is(err, context.DeadlineExceeded)) {
				createErr <- err
				return
			}
			time.Sleep(benchFailoverPoll)
		}
	}()

	prodOpts := append(slices.Clone(clientOpts),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerLinger(0),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
	)
	prod, err := kgo.NewClient(append(prodOpts, clientLog("producer")...)...)
	if err != nil {
		return r, cfg, fmt.Errorf("bench: producer client: %w", err)
	}
	defer prod.Close()
	acks := &benchFailoverLog{acks: make([][]benchFailoverAck, o.partitions)}
	promise := func(rec *kgo.Record, err error) {
		now := since()
		acks.mu.Lock()
		defer acks.mu.Unlock()
		if err != nil {
			acks.fails = append(acks.fails, benchFailoverFail{now, err.Error()})
			return
		}
		sent := rec.Context.(*benchSent).at.Sub(start)
		acks.acks[rec.Partition] = append(acks.acks[rec.Partition], benchFailoverAck{sent, now})
	}
	var stopped atomic.Bool
	pacerDone := make(chan struct{})
	value := benchValue(o.recordSize)
	go func() {
		defer close(pacerDone)
		from := time.Now()
		for n := int64(0); !stopped.Load() && ctx.Err() == nil; n++ {
			due := from.Add(time.Duration(float64(n) / o.rate * float64(time.Second)))
			if d := time.Until(due); d > benchPaceStep {
				time.Sleep(d)
			}
			rec := &kgo.Record{
				Topic: benchFailoverTopic, Partition: int32(n % int64(o.partitions)), Value: value,
				Context: &benchSent{Context: ctx, at: time.Now()},
			}
			prod.Produce(ctx, rec, promise)
		}
	}()
	defer func() {
		stopped.Store(true)
		<-pacerDone
	}()

	startDeadline := time.After(benchFailoverStartMax)
	for !acks.ackedSince(0) {
		select {
		case <-ctx.Done():
			return r, cfg, ctx.Err()
		case err := <-createErr:
			return r, cfg, fmt.Errorf("bench: create topic: %w", err)
		case <-startDeadline:
			return r, cfg, fmt.Errorf("bench: not every partition acknowledged a record within %v", benchFailoverStartMax)
		case <-time.After(benchFailoverPoll):
		}
	}
	for _, ch := range []struct {
		at  <-chan time.Duration
		out *float64
	}{{controllerAt, &r.ControllerMs}, {createdAt, &r.TopicCreatedMs}} {
		select {
		case <-ctx.Done():
			return r, cfg, ctx.Err()
		case at := <-ch.at:
			*ch.out = ms(at)
		}
	}
	if o.verbose {
		fmt.Fprintf(stderr, "gregor bench failover: every partition acknowledged at %.0f ms; settling for %v\n", ms(since()), o.settle)
	}

	// Failover.
	select {
	case <-ctx.Done():
		return r, cfg, ctx.Err()
	case <-time.After(o.settle):
	}
	leaders, err := benchFailoverLeaders(ctx, admin, o.partitions)
	if err != nil {
		return r, cfg, err
	}
	r.Stopped = benchFailoverVictim(leaders, int32(benchFailoverController(nodes, 0)), o.stopController)
	for p, l := range leaders {
		if l == r.Stopped {
			r.StoppedPartitions = append(r.StoppedPartitions, int32(p))
		}
	}
	var survivors []*runtime.Node
	for i, n := range nodes {
		if int32(i+1) != r.Stopped {
			survivors = append(survivors, n)
		}
	}
	r.StoppedController = benchFailoverController(nodes, 0) == uint64(r.Stopped)
	if r.StoppedController != o.stopController {
		// Leadership is not spread as evenly as usual (or the controller
		// moved): say so rather than measure the other case silently.
		fmt.Fprintf(stderr, "gregor bench failover: stopping broker %d, leader of %v, which is %sthe controller\n",
			r.Stopped, r.StoppedPartitions, map[bool]string{true: "", false: "not "}[r.StoppedController])
	}
	if o.verbose {
		fmt.Fprintf(stderr, "gregor bench failover: stopping broker %d, leader of %v (controller: %v)\n", r.Stopped, r.StoppedPartitions, r.StoppedController)
	}
	kill := since()
	stopDone := make(chan time.Duration, 1)
	go func() {
		if o.graceful {
			hctx, cancel := context.WithTimeout(ctx, controlledShutdownTimeout)
			nodes[r.Stopped-1].HandOffLeadership(hctx)
			cancel()
		}
		nodes[r.Stopped-1].Stop()
		stopDone <- since()
	}()
	tl := benchFailoverWatch(ctx, survivors, admin, r.Stopped, r.StoppedPartitions, r.StoppedController, since)

	recoverDeadline := time.After(benchFailoverRecoverMax)
wait:
	for !acks.ackedSince(kill) {
		select {
		case <-ctx.Done():
			break wait
		case <-recoverDeadline:
			break wait
		case <-time.After(benchFailoverPoll):
		}
	}
	select {
	case <-ctx.Done():
	case <-time.After(o.observe):
	}
	stopped.Store(true)
	<-pacerDone
	fctx, fcancel := context.WithTimeout(ctx, benchFlushMax)
	prod.Flush(fctx)
	fcancel()
	end := since()
	r.StopCallMs = ms(<-stopDone - kill)
	raftAt, mdAt, ctrlAt := tl.wait()

	// Arithmetic.
	acks.mu.Lock()
	defer acks.mu.Unlock()
	r.FirstAckMs = -1
	var h benchHist
	stoppedSet := map[int32]bool{}
	for _, p := range r.StoppedPartitions {
		stoppedSet[p] = true
	}
	var stoppedGaps []float64
	for p, as := range acks.acks {
		first := as[0].acked
		for _, a := range as {
			first = min(first, a.acked)
		}
		if r.FirstAckMs < 0 || ms(first) < r.FirstAckMs {
			r.FirstAckMs = ms(first)
		}
		r.AllPartitionsAckMs = max(r.AllPartitionsAckMs, ms(first))
		times := make([]time.Duration, 0, len(as))
		for _, a := range as {
			times = append(times, a.acked)
			if a.sent >= kill-benchFailoverLatencyBefore {
				h.Record(a.acked - a.sent)
			}
		}
		gap, ok := benchFailoverGap(kill, end, times)
		if !ok {
			r.Unrecovered = append(r.Unrecovered, int32(p))
		}
		r.GapMs = append(r.GapMs, ms(gap))
		r.GapMaxMs = max(r.GapMaxMs, ms(gap))
		if stoppedSet[int32(p)] {
			stoppedGaps = append(stoppedGaps, ms(gap))
		} else {
			r.OtherGapMaxMs = max(r.OtherGapMaxMs, ms(gap))
		}
	}
	r.GapMedianMs = benchMedian(stoppedGaps)
	lat := h.Summary()
	r.LatencyMaxMs, r.LatencyP99Ms = lat.MaxMs, lat.P99ms
	for _, f := range acks.fails {
		if f.at < kill {
			if r.StartErrors == 0 {
				r.StartFirstError = f.err
			}
			r.StartErrors++
			continue
		}
		if r.Errors == 0 {
			r.FirstError = f.err
		}
		r.Errors++
	}
	after := func(t time.Duration) float64 {
		if t < 0 {
			return -1
		}
		return ms(t - kill)
	}
	for i := range r.StoppedPartitions {
		r.RaftLeaderMs = append(r.RaftLeaderMs, after(raftAt[i]))
		r.MetadataLeaderMs = append(r.MetadataLeaderMs, after(mdAt[i]))
	}
	r.NewControllerMs = after(ctrlAt)
	return r, cfg, nil
}

// benchFailoverVictim is the broker to stop: the one leading the most
// partitions (leaders by partition); among those, the controller if
// controller is set, else the lowest id that is not the controller, if
// any.
func benchFailoverVictim(leaders []int32, ctrl int32, controller bool) int32 {
	count := map[int32]int{}
	for _, l := range leaders {
		count[l]++
	}
	var best int32
	for id := int32(1); id <= benchFailoverBrokers; id++ {
		switch {
		case best == 0 || count[id] > count[best]:
			best = id
		case count[id] < count[best]:
		case (id == ctrl) == controller && (best == ctrl) != controller:
			best = id
		}
	}
	return best
}

// benchFailoverController is the controller every node knows, other than
// not (0: the nodes do not all know the same one yet). Stopped nodes are
// left out.
func benchFailoverController(nodes []*runtime.Node, not uint64) uint64 {
	var lead uint64
	for _, n := range nodes {
		var l uint64
		if err := n.Do(func(b *engine.Broker) { l = b.MetadataLeader() }); err != nil {
			continue
		}
		if l == 0 || l == not || (lead != 0 && l != lead) {
			return 0
		}
		lead = l
	}
	return lead
}

// benchFailoverLeaders is every partition's leader as Metadata names it.
func benchFailoverLeaders(ctx context.Context, cl *kgo.Client, partitions int) ([]int32, error) {
	req := kmsg.NewPtrMetadataRequest()
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr(benchFailoverTopic)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return nil, fmt.Errorf("bench: metadata: %w", err)
	}
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != partitions {
		return nil, fmt.Errorf("bench: metadata: want %d partitions of %s", partitions, benchFailoverTopic)
	}
	leaders := make([]int32, partitions)
	for _, p := range resp.Topics[0].Partitions {
		if p.ErrorCode != 0 || p.Leader < 0 || int(p.Partition) >= partitions {
			return nil, fmt.Errorf("bench: metadata: partition %d has no leader (%v)", p.Partition, kerr.ErrorForCode(p.ErrorCode))
		}
		leaders[p.Partition] = p.Leader
	}
	return leaders, nil
}

// benchFailoverTimeline watches the survivors after the stop.
type benchFailoverTimeline struct {
	done         chan struct{}
	raftAt, mdAt []time.Duration // by index in the stopped partitions; -1 unseen
	controllerAt time.Duration   // -1 unseen or not watched
	stop         context.CancelFunc
}

// benchFailoverWatch polls the survivors until, for every one of parts,
// a survivor leads its raft group and a survivor's Metadata names a live
// leader (and, if the controller stopped, every survivor knows a new
// one), or ctx ends or benchFailoverRecoverMax passes.
func benchFailoverWatch(ctx context.Context, survivors []*runtime.Node, cl *kgo.Client, stopped int32, parts []int32, controller bool, since func() time.Duration) *benchFailoverTimeline {
	ctx, cancel := context.WithTimeout(ctx, benchFailoverRecoverMax)
	tl := &benchFailoverTimeline{done: make(chan struct{}), stop: cancel, controllerAt: -1}
	for range parts {
		tl.raftAt = append(tl.raftAt, -1)
		tl.mdAt = append(tl.mdAt, -1)
	}
	index := map[int32]int{}
	for i, p := range parts {
		index[p] = i
	}
	req := kmsg.NewPtrMetadataRequest()
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr(benchFailoverTopic)
	req.Topics = append(req.Topics, rt)
	go func() {
		defer close(tl.done)
		for ctx.Err() == nil {
			if controller && tl.controllerAt < 0 && benchFailoverController(survivors, uint64(stopped)) != 0 {
				tl.controllerAt = since()
			}
			for _, n := range survivors {
				var reps []engine.ReplicaState
				if err := n.Do(func(b *engine.Broker) { reps = b.Replicas() }); err != nil {
					continue
				}
				for _, rep := range reps {
					if i, ok := index[rep.Partition]; ok && rep.Topic == benchFailoverTopic && rep.Leader && tl.raftAt[i] < 0 {
						tl.raftAt[i] = since()
					}
				}
				rctx, rcancel := context.WithTimeout(ctx, 100*time.Millisecond)
				resp, err := cl.Broker(int(n.Config().Broker.ID)).Request(rctx, req)
				rcancel()
				if err != nil {
					continue
				}
				for _, t := range resp.(*kmsg.MetadataResponse).Topics {
					for _, p := range t.Partitions {
						if i, ok := index[p.Partition]; ok && p.ErrorCode == 0 && p.Leader >= 0 && p.Leader != stopped && tl.mdAt[i] < 0 {
							tl.mdAt[i] = since()
						}
					}
				}
			}
			complete := !controller || tl.controllerAt >= 0
			for i := range parts {
				complete = complete && tl.raftAt[i] >= 0 && tl.mdAt[i] >= 0
			}
			if complete {
				return
			}
			time.Sleep(benchFailoverPoll)
		}
	}()
	return tl
}

// wait ends the watch and returns what it saw.
func (tl *benchFailoverTimeline) wait() (raftAt, mdAt []time.Duration, controllerAt time.Duration) {
	tl.stop()
	<-tl.done
	return tl.raftAt, tl.mdAt, tl.controllerAt
}
