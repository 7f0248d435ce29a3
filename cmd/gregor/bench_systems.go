package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
)

// benchChildReadyMax bounds how long the suite waits for a Gregor or kfake
// child to say it is ready.
const benchChildReadyMax = 60 * time.Second

// benchStartGregorChild runs `gregor dev` (3 brokers, ephemeral loopback
// ports, data under dir) as a child of this process, exe being the gregor
// binary, and returns its Kafka addresses once every broker is ready.
func benchStartGregorChild(ctx context.Context, exe, dir string) ([]string, *benchChild, error) {
	var (
		mu      sync.Mutex
		brokers []string
		ready   = make(chan struct{})
	)
	// "broker 1 ready: kafka 127.0.0.1:40123 data /tmp/..."
	watch := func(line string) bool {
		_, rest, ok := strings.Cut(line, " ready: kafka ")
		if !ok || !strings.HasPrefix(line, "broker ") {
			return true
		}
		addr, _, _ := strings.Cut(rest, " ")
		mu.Lock()
		defer mu.Unlock()
		brokers = append(brokers, addr)
		if len(brokers) == 3 {
			close(ready)
			return false
		}
		return true
	}
	c, err := benchStartChild("the Gregor cluster (gregor dev)", filepath.Join(dir, "gregor.log"), watch,
		exe, "dev", "--brokers", "3", "--base-port", "0", "--data", filepath.Join(dir, "gregor"), "--fresh")
	if err != nil {
		return nil, nil, err
	}
	if err := benchWaitChildren(ctx, "the Gregor cluster", []*benchChild{c}, ready, benchChildReadyMax); err != nil {
		c.stop()
		return nil, nil, err
	}
	mu.Lock()
	defer mu.Unlock()
	return brokers, c, nil
}

// benchStartKfakeChild runs `gregor bench kfake-server` as a child of this
// process and returns its address.
func benchStartKfakeChild(ctx context.Context, exe, dir string) ([]string, *benchChild, error) {
	var (
		brokers []string
		ready   = make(chan struct{})
	)
	watch := func(line string) bool {
		rest, ok := strings.CutPrefix(line, benchKfakeReady)
		if !ok {
			return true
		}
		brokers = strings.Split(rest, ",")
		close(ready)
		return false
	}
	c, err := benchStartChild("kfake (gregor bench kfake-server)", filepath.Join(dir, "kfake.log"), watch, exe, "bench", "kfake-server")
	if err != nil {
		return nil, nil, err
	}
	if err := benchWaitChildren(ctx, "kfake", []*benchChild{c}, ready, benchChildReadyMax); err != nil {
		c.stop()
		return nil, nil, err
	}
	return brokers, c, nil // ready was closed after brokers was written
}

// benchKfakeReady starts the line with which kfake-server gives its
// addresses, comma separated.
const benchKfakeReady = "kfake ready: "

// benchKfakeServerCmd is the hidden `gregor bench kfake-server`: franz-go's
// kfake with one broker, as the suite measures it, in a process of its
// own, until SIGTERM, SIGINT or the end of stdin (the suite holds the
// other end of a pipe, so kfake ends when the suite does).
func benchKfakeServerCmd(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		fmt.Fprintln(stderr, "usage: gregor bench kfake-server (no arguments; used by gregor bench suite)")
		return exitUsage
	}
	fake, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		fmt.Fprintf(stderr, "gregor bench kfake-server: %v\n", err)
		return exitError
	}
	defer fake.Close()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	eof := make(chan struct{})
	go func() {
		io.Copy(io.Discard, os.Stdin)
		close(eof)
	}()
	fmt.Fprintf(stdout, "%s%s\n", benchKfakeReady, strings.Join(fake.ListenAddrs(), ","))
	select {
	case <-ctx.Done():
	case <-eof:
	}
	return exitOK
}

// benchStartSystems starts the systems every suite table compares, each
// in child processes of this one: the Gregor cluster (Gregor RF=3 and
// Gregor RF=1 are two topics on it), with withKafka Apache Kafka's 3-node
// KRaft cluster (unless java or its class path is missing: then a note
// and no Kafka column), and kfake. It reads the machine first, so the
// report's load average is the one from before the systems add any.
func benchStartSystems(ctx context.Context, o benchSuiteOptions, withKafka bool, stderr io.Writer) (benchMachine, []benchSystem, func(), error) {
	parent := benchDataParent(o.data)
	machine := readBenchMachine(parent)
	exe, err := os.Executable()
	if err != nil {
		return machine, nil, nil, fmt.Errorf("bench: this program's path (to start its brokers): %w", err)
	}
	dir, err := os.MkdirTemp(parent, "gregor-bench-")
	if err != nil {
		return machine, nil, nil, fmt.Errorf("bench: %w", err)
	}
	var children []*benchChild
	stopAll := func() {
		benchStopChildren(children)
		os.RemoveAll(dir)
	}
	fail := func(err error) (benchMachine, []benchSystem, func(), error) {
		stopAll()
		return machine, nil, nil, err
	}
	gregor, gc, err := benchStartGregorChild(ctx, exe, dir)
	if err != nil {
		return fail(err)
	}
	children = append(children, gc)
	if o.verbose {
		fmt.Fprintf(stderr, "gregor bench suite: Gregor cluster %s, pid %d, log %s\n", strings.Join(gregor, ","), gc.pid(), gc.logPath)
	}
	systems := []benchSystem{
		{name: "Gregor RF=3", key: "rf3", brokers: gregor, rf: 3, pids: []int{gc.pid()}},
		{name: "Gregor RF=1", key: "rf1", brokers: gregor, rf: 1, pids: []int{gc.pid()}},
	}
	if withKafka {
		k, err := benchStartKafka(ctx, filepath.Join(dir, "kafka"), stderr)
		var skip *benchKafkaSkip
		switch {
		case errors.As(err, &skip):
			fmt.Fprintf(stderr, "gregor bench suite: no Kafka column: %v\n", skip)
		case err != nil:
			return fail(fmt.Errorf("%w (--kafka=false runs the suite without it)", err))
		default:
			children = append(children, k.nodes...)
			if o.verbose {
				fmt.Fprintf(stderr, "gregor bench suite: Kafka %s cluster %s, pids %v, logs in %s\n", benchKafkaVersion(k.pom), strings.Join(k.brokers, ","), k.pids(), k.dir)
			}
			systems = append(systems, benchSystem{name: "Kafka RF=3", key: "kafka", brokers: k.brokers, rf: 3, pids: k.pids()})
		}
	}
	fake, kc, err := benchStartKfakeChild(ctx, exe, dir)
	if err != nil {
		return fail(err)
	}
	children = append(children, kc)
	systems = append(systems, benchSystem{name: "kfake", key: "kfake", brokers: fake, rf: 1, pids: []int{kc.pid()}})
	return machine, systems, stopAll, nil
}
