package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

const benchUsage = `usage: gregor bench <produce|consume|e2e|txn> --brokers host:port[,...] [flags]
       gregor bench suite [--write docs/performance.md] [flags]
       gregor bench profile --out DIR [flags]
       gregor bench failover [flags]

produce  sends records as fast as allowed (or at --rate) and measures
         records/s, MB/s and the latency from send to acknowledgement.
consume  reads --topic from the start until it reaches the end offsets it
         saw when it began (or --records, or --duration).
e2e      produces and consumes at once; latency is from send to receipt,
         read from the send time written into each record's first 8 bytes
         (clocks of producer and consumer must agree: run both here).
txn      transactional producers (begin, N records, commit) and a
         read_committed consumer: transactions/s, records/s, EndTxn
         latency and the time from EndTxn to visibility (bench txn -h).
suite    starts a 3-broker Gregor cluster, Apache Kafka (3 KRaft nodes, if
         java is installed) and franz-go's kfake, each in processes of its
         own, and prints the side-by-side table (see docs/performance.md).
profile  writes CPU and allocation profiles of the produce and fetch paths
         of an in-process Gregor cluster under load.
failover starts in-process 3-broker clusters and measures the time to the
         first acknowledged produce after start, and the unavailability
         window after the broker leading the most partitions is stopped
         (bench failover -h).

The topic is created (CreateTopics) with --partitions and
--replication-factor if it does not exist. Client settings not given keep
franz-go's defaults.

`

// Defaults and limits of the bench flags.
const (
	benchTopicDefault       = "gregor-bench"
	benchRecordSizeDefault  = 100
	benchRecordSizeMax      = 1 << 20
	benchPartitionsDefault  = 6
	benchDurationDefault    = 10 * time.Second
	benchProducersMax       = 64
	benchProgressInterval   = time.Second
	benchFlushMax           = 30 * time.Second // waiting for the last acks
	benchDrainMax           = 15 * time.Second // e2e: waiting for the consumer to catch up
	benchTopicReadyMax      = 60 * time.Second // leaders for every partition
	benchE2EHeaderBytes     = 8                // send time, unix nanoseconds, big-endian
	benchReplicationDefault = 3
)

// benchOptions are the flags of produce, consume and e2e.
type benchOptions struct {
	mode        string // produce, consume, e2e
	brokers     []string
	topic       string
	recordSize  int
	partitions  int
	rf          int
	acks        string // all, leader, none
	producers   int
	linger      time.Duration // <0: franz-go's default
	compression string        // "": franz-go's default
	idempotent  bool
	duration    time.Duration
	records     int64   // 0: no count limit
	rate        float64 // records/s over all producers; 0: unlimited
	warmup      time.Duration
	json        bool
	noCreate    bool
	metrics     string // brokers' /metrics to scrape around the run
}

// benchBrokersFlag registers --brokers, the cluster a measuring mode runs
// against. The function it returns reads the parsed flag: the addresses
// between its commas, empty ones dropped (validate rejects none left).
func benchBrokersFlag(fs *flag.FlagSet) func() []string {
	brokers := fs.String("brokers", brokersDefault, "Kafka bootstrap addresses, comma separated")
	return func() []string {
		var out []string
		for _, b := range strings.Split(*brokers, ",") {
			if b = strings.TrimSpace(b); b != "" {
				out = append(out, b)
			}
		}
		return out
	}
}

func benchFlags(fs *flag.FlagSet, o *benchOptions) func() []string {
	brokers := benchBrokersFlag(fs)
	fs.StringVar(&o.topic, "topic", benchTopicDefault, "topic to use (created if missing)")
	fs.IntVar(&o.recordSize, "record-size", benchRecordSizeDefault, "value bytes per record")
	fs.IntVar(&o.partitions, "partitions", benchPartitionsDefault, "partitions when creating the topic")
	fs.IntVar(&o.rf, "replication-factor", benchReplicationDefault, "replication factor when creating the topic")
	fs.StringVar(&o.acks, "acks", "all", "required acks: all, leader or none")
	fs.IntVar(&o.producers, "producers", 1, "number of producer clients (kgo.Client each)")
	fs.DurationVar(&o.linger, "linger", -1, "producer linger (negative: franz-go's default)")
	fs.StringVar(&o.compression, "compression", "", "none, gzip, snappy, lz4 or zstd (empty: franz-go's default)")
	fs.BoolVar(&o.idempotent, "idempotent", true, "idempotent producer (franz-go's default; needs --acks all)")
	fs.DurationVar(&o.duration, "duration", benchDurationDefault, "how long to send (or read)")
	fs.Int64Var(&o.records, "records", 0, "stop after this many records (0: run for --duration)")
	fs.Float64Var(&o.rate, "rate", 0, "records/s over all producers (0: as fast as possible)")
	fs.DurationVar(&o.warmup, "warmup", 0, "send for this long before measuring")
	fs.BoolVar(&o.json, "json", false, "print the result as one JSON object")
	fs.BoolVar(&o.noCreate, "no-create", false, "do not create the topic")
	fs.StringVar(&o.metrics, "metrics", "", "Gregor brokers' admin addresses (host:port or /metrics URLs, comma separated): print the produce path's stages as the brokers measured them during the run (warm-up included)")
	return brokers
}

func (o *benchOptions) validate() error {
	switch {
	case len(o.brokers) == 0:
		return errors.New("--brokers is empty")
	case o.topic == "":
		return errors.New("--topic is empty")
	case o.recordSize < 0 || o.recordSize > benchRecordSizeMax:
		return fmt.Errorf("--record-size %d: want 0 to %d", o.recordSize, benchRecordSizeMax)
	case o.mode == "e2e" && o.recordSize < benchE2EHeaderBytes:
		return fmt.Errorf("--record-size %d: e2e needs at least %d bytes for the send time", o.recordSize, benchE2EHeaderBytes)
	case o.partitions < 1:
		return fmt.Errorf("--partitions %d: want at least 1", o.partitions)
	case o.rf < 1 && o.rf != -1:
		return fmt.Errorf("--replication-factor %d: want at least 1 (or -1, the broker's default)", o.rf)
	case o.producers < 1 || o.producers > benchProducersMax:
		return fmt.Errorf("--producers %d: want 1 to %d", o.producers, benchProducersMax)
	case o.duration <= 0 && o.records <= 0:
		return errors.New("give a positive --duration or --records")
	case o.records < 0, o.rate < 0, o.warmup < 0:
		return errors.New("--records, --rate and --warmup must not be negative")
	}
	switch o.acks {
	case "all", "-1":
		o.acks = "all"
	case "leader", "1":
		o.acks = "leader"
	case "none", "0":
		o.acks = "none"
	default:
		return fmt.Errorf("--acks %q: want all, leader or none", o.acks)
	}
	if o.idempotent && o.acks != "all" {
		return fmt.Errorf("--acks %s needs --idempotent=false (idempotence requires acks=all)", o.acks)
	}
	if _, err := benchCodecs(o.compression); err != nil {
		return err
	}
	return nil
}

func parseBench(mode string, args []string, stderr io.Writer) (benchOptions, error) {
	o := benchOptions{mode: mode}
	fs := newFlagSet("gregor bench "+mode, benchUsage, stderr)
	brokers := benchFlags(fs, &o)
	if err := parseFlagsOnly(fs, args); err != nil {
		return o, err
	}
	o.brokers = brokers()
	return o, o.validate()
}

// benchCmd is `gregor bench`: it measures any Kafka-compatible cluster.
var benchCmd command = benchMain

func benchMain(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, benchUsage)
		return exitUsage
	}
	mode, rest := args[0], args[1:]
	switch mode {
	case "-h", "--help", "help":
		fmt.Fprint(stdout, benchUsage)
		return exitOK
	case "suite":
		return benchSuiteCmd(rest, stdout, stderr)
	case "profile":
		return benchProfileCmd(rest, stdout, stderr)
	case "txn":
		return benchTxnCmd(rest, stdout, stderr)
	case "kfake-server": // not in the usage: the suite's kfake process
		return benchKfakeServerCmd(rest, stdout, stderr)
	case "failover":
		return benchFailoverCmd(rest, stdout, stderr)
	case "produce", "consume", "e2e":
	default:
		fmt.Fprintf(stderr, "gregor bench: unknown mode %q\n\n%s", mode, benchUsage)
		return exitUsage
	}
	o, err := parseBench(mode, rest, stderr)
	if err != nil {
		return flagsFailed("gregor bench "+mode, err, stderr)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	var progress func(benchProgress)
	if !o.json && benchIsTerminal(stdout) {
		progress = func(p benchProgress) {
			fmt.Fprintf(stdout, "\r%-8s %6.1fs %12.0f rec/s %8.2f MB/s  p99 %8.3f ms   ",
				mode, p.Elapsed.Seconds(), p.RecordsPerSec, p.MBPerSec, p.P99ms)
		}
	}
	urls := benchMetricsURLs(o.metrics)
	stages := make([]stageHist, len(benchStages))
	if len(urls) > 0 {
		if err := benchScrape(urls, stages, -1); err != nil {
			fmt.Fprintf(stderr, "gregor bench %s: %v\n", mode, err)
			return exitError
		}
	}
	res, err := benchRun(ctx, o, progress)
	if progress != nil {
		fmt.Fprintln(stdout)
	}
	code := benchPrintResult(stdout, stderr, "gregor bench "+mode, o.json, res, res.Records > 0, err, benchPrintSummary)
	if len(urls) > 0 && code == exitOK {
		if err := benchScrape(urls, stages, +1); err != nil {
			fmt.Fprintf(stderr, "gregor bench %s: %v\n", mode, err)
			return exitError
		}
		benchPrintStages(stdout, stages)
	}
	return code
}

// benchPrintResult prints a finished run and returns the command's exit code:
// the result, as JSON or as text by summary, unless the run failed before
// it measured anything; then the run's error, if any, after name.
func benchPrintResult[R any](stdout, stderr io.Writer, name string, asJSON bool, res R, measured bool, err error, summary func(io.Writer, R)) int {
	if err != nil && !measured {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return exitError
	}
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(res); err != nil {
			fmt.Fprintf(stderr, "%s: %v\n", name, err)
			return exitError
		}
	} else {
		summary(stdout, res)
	}
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return exitError
	}
	return exitOK
}

// benchIsTerminal reports whether w is a character device (a terminal).
func benchIsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// benchPrintSummary prints a result as plain text, one fact a line.
func benchPrintSummary(w io.Writer, r benchResult) {
	fmt.Fprintf(w, "mode            %s\n", r.Mode)
	fmt.Fprintf(w, "topic           %s (%d partitions)\n", r.Topic, r.Partitions)
	fmt.Fprintf(w, "records         %d\n", r.Records)
	fmt.Fprintf(w, "bytes           %d\n", r.Bytes)
	fmt.Fprintf(w, "seconds         %.3f\n", r.Seconds)
	fmt.Fprintf(w, "records/s       %.0f\n", r.RecordsPerSec)
	fmt.Fprintf(w, "MB/s            %.3f\n", r.MBPerSec)
	if r.Latency.Count > 0 {
		fmt.Fprintf(w, "latency         %s\n", r.LatencyKind)
		fmt.Fprintf(w, "latency p50     %.3f ms\n", r.Latency.P50ms)
		fmt.Fprintf(w, "latency p99     %.3f ms\n", r.Latency.P99ms)
		fmt.Fprintf(w, "latency p99.9   %.3f ms\n", r.Latency.P999ms)
		fmt.Fprintf(w, "latency max     %.3f ms\n", r.Latency.MaxMs)
	}
	if r.Errors > 0 {
		fmt.Fprintf(w, "errors          %d (first: %s)\n", r.Errors, r.FirstError)
	}
}
