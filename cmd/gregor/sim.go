package main

import (
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gregor-streaming/gregor/sim"
)

const simUsage = `usage: gregor sim --seed N [--mode at-most-once|at-least-once|exactly-once|all]
                 [--brokers 3|5] [--time 45s]
                 [--unsafe ack-before-fsync|finish-before-write|stale-read|no-dedupe|skip-apply-checkpoint|
                           no-generation-check|stale-offset-fetch|no-revoke-before-assign|
                           lso-is-hw|no-fencing|marker-before-prepare|compact-active]
                 [--wal-rot] [--disk-errors] [--txn=false] [--txn-pingpong N] [--lifecycle=false] [--async-writes=B]
                 [--trace FILE] [--vis-dir DIR]
       gregor sim --seeds 1-500 [same flags]

Runs deterministic simulations (see docs/simulation.md). One seed derives
every option; the same seed and binary print the same final "trace" line.
Exit status 0 when every check holds, 1 on a violation, 2 on bad flags.
`

// simSeedsMax bounds one --seeds range.
const simSeedsMax = 1_000_000

// simCmd is `gregor sim`.
func simCmd(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("sim", simUsage, stderr)
	seed := fs.Uint64("seed", 1, "the seed of one run")
	seeds := fs.String("seeds", "", "a range of seeds, e.g. 1-500")
	mode := fs.String("mode", sim.ModeAll, "delivery mode of the workload, or all")
	brokers := fs.Int("brokers", 0, "3 or 5 (default: derived from the seed)")
	simTime := fs.Duration("time", 0, "simulated length of the safety phase (default 45s)")
	unsafe := fs.String("unsafe", "", "disable one safety mechanism to prove the checks bite")
	walRot := fs.Bool("wal-rot", false, "also rot synced WAL records of crashed brokers (off by default: a broker cannot repair its WAL)")
	diskErrors := fs.Bool("disk-errors", false, "inject disk-full and I/O errors on writes and syncs (a third of the seeds draw them anyway)")
	txn := fs.Bool("txn", false, "run the transactional workload, or not with --txn=false (default: on)")
	pingPong := fs.Int("txn-pingpong", 0, "ping-pong processors of the transactional workload, 0 or 2 (default: derived from the seed)")
	lifecycle := fs.Bool("lifecycle", false, "run the lifecycle workload (compaction, retention, DeleteRecords), or not with --lifecycle=false (default: on)")
	asyncWrites := fs.Bool("async-writes", false, "brokers write their WAL off the loop as `gregor serve` does (true), or in their own Process (false) (default: derived from the seed)")
	traceFile := fs.String("trace", "", "write the readable event trace to this file (- for stdout)")
	visDir := fs.String("vis-dir", "", "where porcupine's visualisation goes (default: a temporary directory)")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "gregor sim: unexpected arguments %q\n", fs.Args())
		return exitUsage
	}
	options := func(s uint64) (sim.Options, error) {
		o := sim.NewOptions(s)
		o.Mode, o.Unsafe = *mode, *unsafe
		o.WALRot = *walRot
		o.DiskErrors = o.DiskErrors || *diskErrors
		fs.Visit(func(f *flag.Flag) {
			switch f.Name {
			case "txn":
				o.Txn = *txn
			case "txn-pingpong":
				o.TxnPingPong = *pingPong
			case "lifecycle":
				o.Lifecycle = *lifecycle
			case "async-writes":
				o.AsyncWrites = *asyncWrites
			}
		})
		if *brokers != 0 {
			o.Brokers = *brokers
		}
		if *simTime != 0 {
			o.SafetyMillis = simTime.Milliseconds()
		}
		return o, o.Validate()
	}
	if *seeds != "" {
		lo, hi, err := simParseRange(*seeds)
		if err != nil {
			fmt.Fprintf(stderr, "gregor sim: %v\n", err)
			return exitUsage
		}
		if _, err := options(lo); err != nil {
			fmt.Fprintf(stderr, "gregor sim: %v\n", err)
			return exitUsage
		}
		return simMany(stdout, lo, hi, options, *visDir)
	}
	o, err := options(*seed)
	if err != nil {
		fmt.Fprintf(stderr, "gregor sim: %v\n", err)
		return exitUsage
	}
	cfg := sim.RunConfig{VisualizeDir: *visDir}
	if cfg.VisualizeDir == "" {
		cfg.VisualizeDir = filepath.Join(os.TempDir(), fmt.Sprintf("gregor-sim-%d", o.Seed))
	}
	switch *traceFile {
	case "":
	case "-":
		cfg.Trace = stdout
	default:
		f, err := os.Create(*traceFile)
		if err != nil {
			fmt.Fprintf(stderr, "gregor sim: %v\n", err)
			return exitUsage
		}
		defer f.Close()
		cfg.Trace = f
	}
	return simOne(stdout, o, cfg)
}

func simOne(out io.Writer, o sim.Options, cfg sim.RunConfig) int {
	fmt.Fprintf(out, "seed %d\n", o.Seed)
	fmt.Fprint(out, o.String())
	start := time.Now()
	r := sim.Run(o, cfg)
	elapsed := time.Since(start)
	fmt.Fprintf(out, "stats events %d ops %d churn %d simulated %dms real %dms (check %dms) ratio %.0fx\n",
		r.Events, r.Ops, r.ChurnOps, r.SimMillis, elapsed.Milliseconds(), r.CheckReal.Milliseconds(), float64(r.SimMillis)/float64(elapsed.Milliseconds()+1))
	code := 0
	if r.OK() {
		fmt.Fprintln(out, "result ok")
	} else {
		code = 1
		fmt.Fprintf(out, "result FAIL %s\n", strings.Join(r.Kinds(), ","))
		for _, f := range r.Failures {
			fmt.Fprintf(out, "violation %s\n", f)
		}
		if r.VisualizationPath != "" {
			fmt.Fprintf(out, "visualisation %s\n", r.VisualizationPath)
		}
		fmt.Fprintf(out, "replay %s\n", o.ReplayCommand())
	}
	if r.CheckTimedOut {
		fmt.Fprintln(out, "note porcupine timed out on a history; it counts as linearizable, unproven")
	}
	fmt.Fprintf(out, "trace %s\n", r.Trace)
	return code
}

func simMany(out io.Writer, lo, hi uint64, options func(uint64) (sim.Options, error), visDir string) int {
	total := sha256.New()
	failed := 0
	start := time.Now()
	var simMillis int64
	var ops []int
	for s := lo; s <= hi; s++ {
		o, _ := options(s)
		cfg := sim.RunConfig{}
		if visDir != "" {
			cfg.VisualizeDir = filepath.Join(visDir, strconv.FormatUint(s, 10))
		}
		r := sim.Run(o, cfg)
		simMillis += r.SimMillis
		ops = append(ops, r.Ops)
		total.Write([]byte(r.Trace + "\n"))
		if !r.OK() {
			failed++
			fmt.Fprintf(out, "%s\n  replay %s\n", r.Summary(), o.ReplayCommand())
		}
	}
	elapsed := time.Since(start)
	slices.Sort(ops)
	fmt.Fprintf(out, "total seeds %d-%d runs %d failed %d simulated %ds real %.1fs ratio %.0fx\n",
		lo, hi, hi-lo+1, failed, simMillis/1000, elapsed.Seconds(), float64(simMillis)/float64(elapsed.Milliseconds()+1))
	fmt.Fprintf(out, "ops per run min %d median %d max %d\n", ops[0], ops[len(ops)/2], ops[len(ops)-1])
	fmt.Fprintf(out, "trace %s\n", hex.EncodeToString(total.Sum(nil)))
	if failed > 0 {
		return 1
	}
	return 0
}

func simParseRange(s string) (lo, hi uint64, err error) {
	a, b, ok := strings.Cut(s, "-")
	if !ok {
		b = a
	}
	if lo, err = strconv.ParseUint(a, 10, 64); err == nil {
		hi, err = strconv.ParseUint(b, 10, 64)
	}
	switch {
	case err != nil:
		return 0, 0, fmt.Errorf("--seeds %q: want N or N-M", s)
	case hi < lo || hi-lo >= simSeedsMax:
		return 0, 0, fmt.Errorf("--seeds %q: empty or longer than %d", s, simSeedsMax)
	}
	return lo, hi, nil
}
