package main

import (
	"context"
	"fmt"
	"io"
	"strings"
)

// benchTxnSamples are one system's `bench txn` results over the runs at
// one transaction size.
type benchTxnSamples struct {
	txns, records                 []float64 // per second
	produceP50                    []float64
	commitP50, commitP99          []float64
	visStartP50, visStartP99      []float64
	visReturnP50, visReturnP99    []float64
	allVisP50, allVisP99          []float64
	measured, visibleBeforeReturn uint64 // summed over the runs
}

// benchTxnSuite runs `bench txn` for every transaction size on the three
// systems, interleaved, and returns the Markdown report.
func benchTxnSuite(ctx context.Context, o benchSuiteOptions, stderr io.Writer) (string, error) {
	machine, systems, stopSystems, err := benchStartSystems(ctx, o, false, stderr)
	if err != nil {
		return "", err
	}
	defer stopSystems()
	// samples[size][system]
	samples := make([][]benchTxnSamples, len(o.txnSizes))
	for i := range samples {
		samples[i] = make([]benchTxnSamples, len(systems))
	}
	fmt.Fprintf(stderr, "gregor bench suite --txn: %d runs of %v (+%v warm-up) per measurement\n", o.runs, o.duration, o.warmup)
	for run := range o.runs {
		for ni, n := range o.txnSizes {
			for si, s := range systems {
				opt := benchTxnOptions{
					brokers: s.brokers, topic: fmt.Sprintf("suite-txn-%s-n%d-run%d", s.key, n, run),
					recordsPerTxn: n, recordSize: o.recordSize, partitions: o.partitions, rf: s.rf,
					producers: o.producers, duration: o.duration, warmup: o.warmup,
				}
				what := fmt.Sprintf("%s txn of %d #%d", s.name, n, run+1)
				r, err := benchTxnRun(ctx, opt, nil)
				if o.verbose {
					fmt.Fprintf(stderr, "%-28s %8.1f txn/s %9.0f rec/s produce p50 %7.2f ms commit p50/p99 %7.2f/%7.2f ms visible p50/p99 %7.2f/%7.2f ms (from return %7.2f/%7.2f, all %7.2f/%7.2f; %d errors)\n",
						what, r.TransactionsPerSec, r.RecordsPerSec, r.Produce.P50ms, r.Commit.P50ms, r.Commit.P99ms,
						r.VisibleFromStart.P50ms, r.VisibleFromStart.P99ms, r.VisibleFromReturn.P50ms, r.VisibleFromReturn.P99ms,
						r.AllVisibleFromStart.P50ms, r.AllVisibleFromStart.P99ms, r.Errors)
				}
				if err != nil {
					return "", fmt.Errorf("%s: %w", what, err)
				}
				x := &samples[ni][si]
				x.txns = append(x.txns, r.TransactionsPerSec)
				x.records = append(x.records, r.RecordsPerSec)
				x.produceP50 = append(x.produceP50, r.Produce.P50ms)
				x.commitP50 = append(x.commitP50, r.Commit.P50ms)
				x.commitP99 = append(x.commitP99, r.Commit.P99ms)
				x.visStartP50 = append(x.visStartP50, r.VisibleFromStart.P50ms)
				x.visStartP99 = append(x.visStartP99, r.VisibleFromStart.P99ms)
				x.visReturnP50 = append(x.visReturnP50, r.VisibleFromReturn.P50ms)
				x.visReturnP99 = append(x.visReturnP99, r.VisibleFromReturn.P99ms)
				x.allVisP50 = append(x.allVisP50, r.AllVisibleFromStart.P50ms)
				x.allVisP99 = append(x.allVisP99, r.AllVisibleFromStart.P99ms)
				x.measured += r.VisibleFromReturn.Count
				x.visibleBeforeReturn += r.VisibleBeforeReturn
			}
		}
	}
	end := readBenchMachine(benchDataParent(o.data))
	return benchTxnFormat(o, machine, end.load, systems, samples), nil
}

// benchTxnFormat renders the transaction results as the Markdown section
// between the bench-txn markers of docs/performance.md.
func benchTxnFormat(o benchSuiteOptions, m benchMachine, loadEnd string, systems []benchSystem, s [][]benchTxnSamples) string {
	var b strings.Builder
	med := benchMedian
	fmt.Fprintf(&b, "Command: `gregor bench suite %s`  \n", strings.Join(o.args, " "))
	fmt.Fprintf(&b, "Date: %s  \n", m.date)
	fmt.Fprintf(&b, "Machine: %d CPUs (`nproc`), %s, %s, %s; data on %s; load average at start %s, at end %s.  \n",
		m.nproc, m.cpu, m.kernel, m.goVersion, m.fs, m.load, loadEnd)
	fmt.Fprintf(&b, "Settings: `gregor bench txn` with %d-byte records, %d partitions, %d transactional producer client(s) "+
		"(franz-go defaults: acks=all, idempotent; transactions v2 from each producer's second transaction) and one "+
		"read_committed consumer; %d runs of %v after %v of warm-up per cell, interleaved; medians. "+
		"Latencies in ms; in the latency rows a ratio above 1 means Gregor is slower.\n\n",
		o.recordSize, o.partitions, o.producers, o.runs, o.duration, o.warmup)

	fmt.Fprintf(&b, "| records per transaction | measurement | %s | %s | %s | %s / kfake | %s / kfake |\n",
		systems[0].name, systems[1].name, systems[2].name, strings.TrimPrefix(systems[0].name, "Gregor "), strings.TrimPrefix(systems[1].name, "Gregor "))
	b.WriteString("|---:|---|---:|---:|---:|---:|---:|\n")
	for ni, n := range o.txnSizes {
		row := func(name, format string, get func(benchTxnSamples) []float64) {
			v := []float64{med(get(s[ni][0])), med(get(s[ni][1])), med(get(s[ni][2]))}
			fmt.Fprintf(&b, "| %d | %s | "+format+" | "+format+" | "+format+" | %s | %s |\n",
				n, name, v[0], v[1], v[2], benchRatio(v[0], v[2]), benchRatio(v[1], v[2]))
		}
		row("transactions/s", "%.1f", func(x benchTxnSamples) []float64 { return x.txns })
		row("records/s", "%.0f", func(x benchTxnSamples) []float64 { return x.records })
		row("produce p50 (Begin to Flush)", "%.2f", func(x benchTxnSamples) []float64 { return x.produceP50 })
		row("commit p50 (EndTransaction)", "%.2f", func(x benchTxnSamples) []float64 { return x.commitP50 })
		row("commit p99", "%.2f", func(x benchTxnSamples) []float64 { return x.commitP99 })
		row("visible p50, from EndTxn start", "%.2f", func(x benchTxnSamples) []float64 { return x.visStartP50 })
		row("visible p99, from EndTxn start", "%.2f", func(x benchTxnSamples) []float64 { return x.visStartP99 })
		row("visible p50, from EndTxn return", "%.2f", func(x benchTxnSamples) []float64 { return x.visReturnP50 })
		row("visible p99, from EndTxn return", "%.2f", func(x benchTxnSamples) []float64 { return x.visReturnP99 })
		row("all records visible p50, from EndTxn start", "%.2f", func(x benchTxnSamples) []float64 { return x.allVisP50 })
		row("all records visible p99, from EndTxn start", "%.2f", func(x benchTxnSamples) []float64 { return x.allVisP99 })
	}

	b.WriteString("\nEvery run (transactions/s; commit p99 and visible-from-start p99 in ms):\n\n")
	list := benchList
	for ni, n := range o.txnSizes {
		for si, sys := range systems {
			x := s[ni][si]
			fmt.Fprintf(&b, "- %s, %d per transaction: %s; commit p99 %s; visible p99 %s; first record visible before EndTransaction returned in %d of %d transactions\n",
				sys.name, n, list(x.txns, "%.1f"), list(x.commitP99, "%.2f"), list(x.visStartP99, "%.2f"), x.visibleBeforeReturn, x.measured)
		}
	}
	return b.String()
}

// benchRatio formats a/b with two significant digits below 0.1 (Gregor's
// transactions/s is around 1% of kfake's), or a dash when b is 0 (a
// latency under the histogram's resolution) or either is not measured.
func benchRatio(a, b float64) string {
	switch r := a / b; {
	case b == 0 || a != a || b != b:
		return "—"
	case r < 0.1:
		return fmt.Sprintf("%.2g×", r)
	default:
		return fmt.Sprintf("%.2f×", r)
	}
}
