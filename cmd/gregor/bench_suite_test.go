package main

import (
	"context"
	"errors"
	"math"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// benchTestChildEnv makes the test binary act as the gregor command, so
// that the suite's child processes (os.Executable() plus gregor's
// arguments) can be started from a test.
const benchTestChildEnv = "GREGOR_TEST_RUN_AS_GREGOR"

func TestMain(m *testing.M) {
	if os.Getenv(benchTestChildEnv) == "1" {
		os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

func TestBenchProcStatTicks(t *testing.T) {
	// The command name may hold spaces and parentheses; utime is the 14th
	// field, stime the 15th.
	stat := "4242 (a (b) c) S 1 4242 4242 0 -1 4194560 2077 0 0 0 123 45 0 0 20 0 9 0 12345 1000 100 18446744073709551615\n"
	got, err := benchProcStatTicks([]byte(stat))
	if err != nil || got != 168 {
		t.Fatalf("ticks %d, %v; want 168", got, err)
	}
	for _, bad := range []string{"", "1 (x) S 1 2 3", "1 (x) S 1 2 3 4 5 6 7 8 9 10 u s"} {
		if _, err := benchProcStatTicks([]byte(bad)); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
	// This process has used some CPU, and the count does not go down.
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc")
	}
	a, err := benchProcCPU([]int{os.Getpid()})
	if err != nil {
		t.Fatal(err)
	}
	b := a
	for x, deadline := 0.0, time.Now().Add(5*time.Second); b <= a && time.Now().Before(deadline); x += math.Sqrt(x + 1) {
		if b, err = benchProcCPU([]int{os.Getpid()}); err != nil {
			t.Fatal(err)
		}
	}
	if b <= a {
		t.Fatalf("CPU %v then %v after 5 s of work", a, b)
	}
}

func TestBenchKafkaProperties(t *testing.T) {
	ports := []benchKafkaPort{{9001, 9101}, {9002, 9102}, {9003, 9103}}
	p := benchKafkaProperties(2, ports, "/d/2")
	for _, want := range []string{
		"process.roles=broker,controller\n",
		"node.id=2\n",
		"controller.quorum.voters=1@127.0.0.1:9101,2@127.0.0.1:9102,3@127.0.0.1:9103\n",
		"listeners=PLAINTEXT://127.0.0.1:9002,CONTROLLER://127.0.0.1:9102\n",
		"advertised.listeners=PLAINTEXT://127.0.0.1:9002\n",
		"log.dirs=/d/2\n",
		"default.replication.factor=3\n",
		"min.insync.replicas=2\n",
		"offsets.topic.replication.factor=3\n",
		"transaction.state.log.replication.factor=3\n",
		"transaction.state.log.min.isr=2\n",
	} {
		if !strings.Contains(p, want) {
			t.Errorf("properties lack %q:\n%s", want, p)
		}
	}
	if strings.Contains(p, "flush") {
		t.Errorf("properties change a flush setting:\n%s", p)
	}
}

func TestBenchKafkaPom(t *testing.T) {
	dir, err := benchKafkaFindPom()
	if err != nil {
		t.Fatal(err)
	}
	if v := benchKafkaVersion(dir); !strings.HasPrefix(v, "4.") {
		t.Fatalf("Kafka version in %s: %q, want 4.x", dir, v)
	}
}

// TestBenchSuiteFormat: the table has a column per system and the
// Gregor/Kafka ratios when Kafka ran, none when it did not; a value that
// was not measured reads n/a.
func TestBenchSuiteFormat(t *testing.T) {
	o := benchSuiteOptions{runs: 1, duration: time.Second, recordSize: 100, partitions: 6, producers: 1, fixedLoad: 20, kafkaWarmup: 20 * time.Second}
	one := func(produce, p50, cpu float64) benchSamples {
		x := []float64{p50}
		return benchSamples{
			produce: []float64{produce}, produceMB: []float64{produce / 1e4}, produceP99: x, consume: []float64{2 * produce},
			consumeMB: x, halfRate: produce / 2, halfP50: x, halfP99: x, halfP999: x, half0P50: x, half0P99: x,
			produceCPU: []float64{cpu}, consumeCPU: []float64{cpu}, fixedMB: []float64{20}, fixedP50: []float64{p50},
			fixedP99: []float64{2 * p50}, fixedP999: x, fixedCPU: []float64{cpu}, sameRate: x, sameP50: x, sameP99: x,
		}
	}
	systems := []benchSystem{{name: "Gregor RF=3", key: "rf3"}, {name: "Gregor RF=1", key: "rf1"}, {name: "Kafka RF=3", key: "kafka"}, {name: "kfake", key: "kfake"}}
	s := []benchSamples{one(800000, 1, 2), one(1000000, 1, 1), one(400000, 4, 8), one(1600000, 0.5, math.NaN())}
	out := benchFormat(o, benchMachine{load: "1 2 3"}, "4 5 6", systems, s)
	for _, want := range []string{
		"| measurement | Gregor RF=3 | Gregor RF=1 | Kafka RF=3 | kfake | RF=3 / Kafka | RF=3 / kfake | RF=1 / kfake |",
		"|---|---:|---:|---:|---:|---:|---:|---:|",
		"| produce, records/s | 800000 | 1000000 | 400000 | 1600000 | 2.00× | 0.50× | 0.62× |",
		"| CPU s per million records, produce at max rate | 2.00 | 1.00 | 8.00 | n/a | 0.25× | — | — |",
		"| produce p50 at 20 MB/s, linger 0, ms | 1.00 | 1.00 | 4.00 | 0.50 | 0.25× | 2.00× | 2.00× |",
		"| Gregor RF=3 (fsync) produce / Kafka RF=3 (no fsync) ≥ 1.00× | 2.00× | met (+100%) |",
		"| Gregor RF=3 produce p99 at 20 MB/s ≤ Kafka RF=3's | 2.00 ms against 8.00 ms (0.25×) | met (-75%) |",
		"| Gregor RF=3 produce p50 at 20 MB/s (linger 0) ≤ 2 ms | 1.00 ms | met (-50%) |",
		"Kafka's produce run 20s",
		"at start 1 2 3, at end 4 5 6",
		"- Kafka RF=3: produce 400000;",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	out = benchFormat(o, benchMachine{}, "", []benchSystem{systems[0], systems[1], systems[3]}, []benchSamples{s[0], s[1], s[3]})
	if strings.Contains(out, "Kafka") {
		t.Errorf("report without Kafka mentions it:\n%s", out)
	}
	if want := "| produce, records/s | 800000 | 1000000 | 1600000 | 0.50× | 0.62× |"; !strings.Contains(out, want) {
		t.Errorf("report lacks %q:\n%s", want, out)
	}
}

// TestBenchSuiteChildren starts the suite's Gregor and kfake children
// (this test binary acting as gregor), reads their CPU time and stops
// them: they must be gone afterwards.
func TestBenchSuiteChildren(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-broker cluster in a child process")
	}
	t.Setenv(benchTestChildEnv, "1")
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	gregor, gc, err := benchStartGregorChild(ctx, exe, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer gc.stop()
	fake, kc, err := benchStartKfakeChild(ctx, exe, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer kc.stop()
	if len(gregor) != 3 || len(fake) != 1 {
		t.Fatalf("addresses: gregor %v, kfake %v", gregor, fake)
	}
	for _, sys := range []struct {
		brokers []string
		rf      int
		c       *benchChild
	}{{gregor, 3, gc}, {fake, 1, kc}} {
		o := benchOptions{mode: "produce", brokers: sys.brokers, topic: "t", recordSize: 100, partitions: 2, rf: sys.rf,
			acks: "all", idempotent: true, producers: 1, linger: -1, records: 2000}
		r, err := benchRun(ctx, o, nil)
		if err != nil || r.Acked != 2000 {
			t.Fatalf("%s: produce: %v, %d acknowledged", sys.c.name, err, r.Acked)
		}
		// kfake may not have used a whole clock tick (10 ms) yet; three
		// brokers starting have.
		if cpu, err := benchProcCPU([]int{sys.c.pid()}); err != nil || cpu < 0 || (sys.c == gc && cpu == 0) {
			t.Errorf("%s: CPU %v, %v", sys.c.name, cpu, err)
		}
	}
	benchStopChildren([]*benchChild{gc, kc})
	for _, c := range []*benchChild{gc, kc} {
		if done, _ := c.exited(); !done {
			t.Errorf("%s still running", c.name)
		}
		if err := syscall.Kill(c.pid(), 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("%s: pid %d: %v, want no such process", c.name, c.pid(), err)
		}
	}
}

// TestBenchKafkaCluster starts the suite's 3-node Kafka cluster, produces
// to it at RF=3 and stops it. It needs java (and mvn or the class path
// already built), so it runs only with GREGOR_BENCH_KAFKA=1.
func TestBenchKafkaCluster(t *testing.T) {
	if os.Getenv("GREGOR_BENCH_KAFKA") != "1" {
		t.Skip("set GREGOR_BENCH_KAFKA=1 to start a 3-node Apache Kafka cluster")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var stderr strings.Builder
	k, err := benchStartKafka(ctx, t.TempDir(), &stderr)
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	defer k.stop()
	if len(k.brokers) != 3 || len(k.pids()) != 3 {
		t.Fatalf("brokers %v, pids %v", k.brokers, k.pids())
	}
	before, err := benchProcCPU(k.pids())
	if err != nil {
		t.Fatal(err)
	}
	o := benchOptions{mode: "produce", brokers: k.brokers, topic: "t", recordSize: 100, partitions: 6, rf: 3,
		acks: "all", idempotent: true, producers: 1, linger: 0, records: 20000}
	r, err := benchRun(ctx, o, nil)
	if err != nil || r.Acked != 20000 {
		t.Fatalf("produce: %v, %d acknowledged", err, r.Acked)
	}
	o.mode, o.duration = "consume", 30*time.Second
	if r, err := benchRun(ctx, o, nil); err != nil || r.Records != 20000 {
		t.Fatalf("consume: %v, %d records", err, r.Records)
	}
	after, err := benchProcCPU(k.pids())
	if err != nil || after <= before {
		t.Fatalf("CPU %v then %v (%v)", before, after, err)
	}
	pids := k.pids()
	k.stop()
	for _, pid := range pids {
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("Kafka pid %d: %v, want no such process", pid, err)
		}
	}
}
