package main

import (
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"pgregory.net/rapid"
)

// TestBenchHistQuantiles checks the histogram against a sorted sample:
// every quantile lies at or above the exact value and within the bucket
// error, and the percentiles are ordered.
func TestBenchHistQuantiles(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		vals := rapid.SliceOfN(rapid.Int64Range(0, int64(10*time.Second)), 1, 500).Draw(t, "ns")
		var h benchHist
		for _, v := range vals {
			h.Record(time.Duration(v))
		}
		sorted := append([]int64(nil), vals...)
		slicesSortInt64(sorted)
		for _, q := range []float64{0.5, 0.99, 0.999, 1} {
			rank := int(float64(len(sorted))*q + 0.999999999)
			rank = max(1, min(rank, len(sorted)))
			exact := sorted[rank-1]
			got := int64(h.Quantile(q))
			if got < exact || float64(got) > float64(exact)*(1+1.0/benchHistSub)+1 {
				t.Fatalf("q%.3f = %d, exact %d", q, got, exact)
			}
		}
		if h.Max() != time.Duration(sorted[len(sorted)-1]) {
			t.Fatalf("max %v, want %d", h.Max(), sorted[len(sorted)-1])
		}
	})
}

func slicesSortInt64(s []int64) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j-1] > s[j]; j-- {
			s[j-1], s[j] = s[j], s[j-1]
		}
	}
}

// TestBenchHistIndexMonotone: bucket indexes never decrease with the value
// and every value is at most its bucket's upper bound.
func TestBenchHistIndexMonotone(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	prev := -1
	for v := int64(0); v < 1<<20; v += 1 + r.Int64N(7) {
		i := benchHistIndex(v)
		if i < prev || v > benchHistUpper(i) || (i > 0 && v <= benchHistUpper(i-1)) {
			t.Fatalf("value %d: bucket %d (prev %d, upper %d)", v, i, prev, benchHistUpper(i))
		}
		prev = i
	}
}

func checkBenchJSON(t *testing.T, out string, latency bool) benchResult {
	t.Helper()
	var r benchResult
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	if r.Records <= 0 || r.Bytes <= 0 || r.Seconds <= 0 || r.RecordsPerSec <= 0 || r.MBPerSec <= 0 {
		t.Fatalf("counts not positive: %+v", r)
	}
	if r.Errors != 0 {
		t.Fatalf("errors: %+v", r)
	}
	if latency {
		l := r.Latency
		if l.Count == 0 || !(l.P50ms <= l.P99ms && l.P99ms <= l.P999ms && l.P999ms <= l.MaxMs) || l.P50ms < 0 {
			t.Fatalf("latency percentiles not ordered: %+v", l)
		}
	}
	return r
}

// TestBenchAgainstKfake runs produce, consume and e2e for about a second
// each against kfake and checks the JSON and the plain summary. It never
// looks at how fast anything was.
func TestBenchAgainstKfake(t *testing.T) {
	fake, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer fake.Close()
	brokers := strings.Join(fake.ListenAddrs(), ",")
	common := []string{"--brokers", brokers, "--topic", "t", "--partitions", "3", "--replication-factor", "1", "--duration", "1s"}

	run := func(args ...string) string {
		t.Helper()
		var stdout, stderr strings.Builder
		if code := run(append([]string{"bench"}, args...), &stdout, &stderr); code != exitOK {
			t.Fatalf("gregor bench %v: exit %d\nstdout:\n%s\nstderr:\n%s", args, code, stdout.String(), stderr.String())
		}
		return stdout.String()
	}
	p := checkBenchJSON(t, run(append([]string{"produce", "--json"}, common...)...), true)
	if p.Partitions != 3 || p.Mode != "produce" {
		t.Fatalf("produce result: %+v", p)
	}
	c := checkBenchJSON(t, run(append(append([]string{"consume", "--json"}, common...), "--duration", "60s")...), false)
	if c.Records < p.Records {
		t.Fatalf("consumed %d records, produced at least %d", c.Records, p.Records)
	}
	checkBenchJSON(t, run(append([]string{"e2e", "--json", "--rate", "2000", "--warmup", "100ms"}, common...)...), true)

	text := run(append([]string{"produce", "--records", "500", "--producers", "2", "--linger", "1ms", "--compression", "none"}, common...)...)
	for _, want := range []string{"records         ", "records/s", "latency p99.9"} {
		if !strings.Contains(text, want) {
			t.Errorf("summary lacks %q:\n%s", want, text)
		}
	}
}

func TestBenchFlags(t *testing.T) {
	for _, args := range [][]string{
		{"produce", "--acks", "1"},               // idempotence needs acks=all
		{"produce", "--compression", "brotli"},   // unknown codec
		{"e2e", "--record-size", "4"},            // no room for the send time
		{"produce", "--producers", "0"},          // no producer
		{"nonsense"},                             // unknown mode
		{"produce", "--duration", "0", "--rate"}, // missing value
		{"txn", "--record-size", "8"},            // no room for producer and sequence
		{"txn", "--records-per-txn", "0"},        // empty transactions
		{"txn", "--acks", "1"},                   // transactions need acks=all: no such flag
		{"suite", "--records-per-txn", "1,x"},    // not a size
	} {
		var stdout, stderr strings.Builder
		if code := run(append([]string{"bench"}, args...), &stdout, &stderr); code != exitUsage {
			t.Errorf("gregor bench %v: exit %d, want %d (stderr %q)", args, code, exitUsage, stderr.String())
		}
	}
}

func TestBenchWriteSection(t *testing.T) {
	path := filepath.Join(t.TempDir(), "perf.md")
	if err := os.WriteFile(path, []byte("# Perf\n\nintro\n\n"+benchMarkBegin+"\nold\n"+benchMarkEnd+"\n\nafter\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := benchWriteSection(path, "new table\n"); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(path)
	want := "# Perf\n\nintro\n\n" + benchMarkBegin + "\nnew table\n" + benchMarkEnd + "\n\nafter\n"
	if string(got) != want {
		t.Fatalf("got:\n%s\nwant:\n%s", got, want)
	}
	// The transactions section gets its own markers (appended the first
	// time) and leaves the other section alone.
	for _, table := range []string{"txn table\n", "txn table 2\n"} {
		if err := benchWriteMarked(path, benchTxnMarkBegin, benchTxnMarkEnd, table); err != nil {
			t.Fatal(err)
		}
		got, _ = os.ReadFile(path)
		if w := want + "\n" + benchTxnMarkBegin + "\n" + table + benchTxnMarkEnd + "\n"; string(got) != w {
			t.Fatalf("got:\n%s\nwant:\n%s", got, w)
		}
	}
}

// TestBenchTxnAgainstKfake runs `bench txn` for about a second against
// kfake and checks the JSON: transactions committed, every latency
// present and its percentiles ordered, nothing lost. It never looks at
// how fast anything was.
func TestBenchTxnAgainstKfake(t *testing.T) {
	fake, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer fake.Close()
	var stdout, stderr strings.Builder
	args := []string{"bench", "txn", "--json", "--brokers", strings.Join(fake.ListenAddrs(), ","), "--topic", "t",
		"--replication-factor", "1", "--records-per-txn", "10", "--producers", "2", "--duration", "1s", "--warmup", "200ms"}
	if code := run(args, &stdout, &stderr); code != exitOK {
		t.Fatalf("gregor %v: exit %d\nstdout:\n%s\nstderr:\n%s", args, code, stdout.String(), stderr.String())
	}
	var r benchTxnResult
	if err := json.Unmarshal([]byte(stdout.String()), &r); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, stdout.String())
	}
	if r.Mode != "txn" || r.Partitions != benchPartitionsDefault || r.RecordsPerTxn != 10 || r.Producers != 2 {
		t.Fatalf("result: %+v", r)
	}
	if r.Transactions <= 0 || r.TransactionsPerSec <= 0 || r.Records != 10*r.Transactions || r.RecordsPerSec <= 0 || r.Seconds <= 0 {
		t.Fatalf("counts: %+v", r)
	}
	if r.Errors != 0 || r.Unexpected != 0 {
		t.Fatalf("errors: %+v", r)
	}
	for name, l := range map[string]benchLatency{
		"commit": r.Commit, "visible from start": r.VisibleFromStart,
		"visible from return": r.VisibleFromReturn, "all visible": r.AllVisibleFromStart,
	} {
		// Every measured transaction was committed and then seen whole.
		if l.Count != uint64(r.Transactions) || !(l.P50ms <= l.P99ms && l.P99ms <= l.P999ms && l.P999ms <= l.MaxMs) || l.P50ms < 0 {
			t.Errorf("%s latency: %+v (%d transactions)", name, l, r.Transactions)
		}
	}
	if r.VisibleBeforeReturn > r.VisibleFromReturn.Count {
		t.Errorf("%d visible before return of %d", r.VisibleBeforeReturn, r.VisibleFromReturn.Count)
	}

	stdout.Reset()
	args = append(args[:2:2], "--brokers", strings.Join(fake.ListenAddrs(), ","), "--topic", "t", "--replication-factor", "1",
		"--records-per-txn", "1", "--duration", "300ms", "--warmup", "0s")
	if code := run(args, &stdout, &stderr); code != exitOK {
		t.Fatalf("gregor %v: exit %d\nstderr:\n%s", args, code, stderr.String())
	}
	for _, want := range []string{"transactions/s", "commit (EndTransaction)", "visible from EndTxn start", "visible from EndTxn return"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, stdout.String())
		}
	}
}

// TestBenchTxnFormat: the transactions table has a block of rows per
// size, ratios against kfake, and a dash where kfake measured 0.
func TestBenchTxnFormat(t *testing.T) {
	o := benchSuiteOptions{runs: 1, duration: time.Second, recordSize: 100, partitions: 6, producers: 1, txnSizes: []int{1, 10, 100}, args: []string{"--txn"}}
	systems := []benchSystem{{name: "Gregor RF=3"}, {name: "Gregor RF=1"}, {name: "kfake"}}
	one := func(txns, visReturn float64) benchTxnSamples {
		x := []float64{1}
		return benchTxnSamples{txns: []float64{txns}, records: []float64{txns}, produceP50: x, commitP50: x, commitP99: x,
			visStartP50: x, visStartP99: x, visReturnP50: []float64{visReturn}, visReturnP99: x, allVisP50: x, allVisP99: x}
	}
	s := [][]benchTxnSamples{{one(50, 2), one(100, 1), one(1000, 0)}, {one(40, 2), one(80, 1), one(800, 1)}, {one(7, 1), one(80, 1), one(1000, 1)}}
	out := benchTxnFormat(o, benchMachine{load: "1 2 3"}, "4 5 6", systems, s)
	for _, want := range []string{
		"| 1 | transactions/s | 50.0 | 100.0 | 1000.0 | 0.05× | 0.10× |",
		"| 10 | transactions/s | 40.0 | 80.0 | 800.0 | 0.05× | 0.10× |",
		"| 10 | records/s | 40 | 80 | 800 | 0.05× | 0.10× |",
		"| 1 | visible p50, from EndTxn return | 2.00 | 1.00 | 0.00 | — | — |",
		"| 10 | visible p50, from EndTxn return | 2.00 | 1.00 | 1.00 | 2.00× | 1.00× |",
		"| 100 | transactions/s | 7.0 | 80.0 | 1000.0 | 0.007× | 0.08× |",
		"at start 1 2 3, at end 4 5 6",
		"`gregor bench suite --txn`",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
}
