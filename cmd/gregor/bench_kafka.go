package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Apache Kafka in the suite: a 3-node KRaft cluster on loopback, every
// node both broker and controller, started from the same Maven class path
// as the conformance harness (cmd/gregor/testdata/kafka/pom.xml; `mvn -q
// -B package` there copies the broker and its dependencies into
// target/lib, which git ignores).

// benchKafkaPomDir is the pom's directory relative to the repository root.
var benchKafkaPomDir = filepath.Join("cmd", "gregor", "testdata", "kafka")

const (
	benchKafkaNodes    = 3
	benchKafkaReadyMax = 120 * time.Second // three JVMs starting on a shared 2-vCPU machine
	benchKafkaFetchMax = 10 * time.Minute  // mvn, first time with an empty ~/.m2
)

// benchKafkaJVM are the JVM options of each node: those of Kafka's own
// kafka-server-start.sh (KAFKA_HEAP_OPTS) and kafka-run-class.sh
// (KAFKA_JVM_PERFORMANCE_OPTS), without the GC log the script turns on.
var benchKafkaJVM = []string{
	"-Xmx1G", "-Xms1G",
	"-server", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20", "-XX:InitiatingHeapOccupancyPercent=35",
	"-XX:+ExplicitGCInvokesConcurrent", "-Djava.awt.headless=true",
}

// benchKafkaSkip is why the suite runs without Kafka: a tool or the class
// path is missing. Anything else that goes wrong starting Kafka is an
// error.
type benchKafkaSkip struct{ reason string }

func (e *benchKafkaSkip) Error() string { return e.reason }

// benchKafka is a running Kafka cluster.
type benchKafka struct {
	dir     string // properties, data and logs of every node
	pom     string // the pom's directory
	brokers []string
	nodes   []*benchChild
}

func (k *benchKafka) pids() []int {
	var ps []int
	for _, n := range k.nodes {
		ps = append(ps, n.pid())
	}
	return ps
}

func (k *benchKafka) stop() { benchStopChildren(k.nodes) }

// benchKafkaPort is one node's listener ports.
type benchKafkaPort struct{ broker, controller int }

// benchKafkaProperties is node id's server.properties: Kafka's defaults
// except what a 3-node KRaft cluster on loopback needs and what the suite
// asks of every system (replication 3, min.insync.replicas 2 for every
// topic, the internal ones included). No log.flush.* setting: by default
// Kafka leaves flushing to the OS (no fsync per write), relying on
// replication.
func benchKafkaProperties(id int, ports []benchKafkaPort, dataDir string) string {
	var voters []string
	for i, p := range ports {
		voters = append(voters, fmt.Sprintf("%d@127.0.0.1:%d", i+1, p.controller))
	}
	p := ports[id-1]
	return strings.Join([]string{
		"process.roles=broker,controller",
		fmt.Sprintf("node.id=%d", id),
		"controller.quorum.voters=" + strings.Join(voters, ","),
		fmt.Sprintf("listeners=PLAINTEXT://127.0.0.1:%d,CONTROLLER://127.0.0.1:%d", p.broker, p.controller),
		fmt.Sprintf("advertised.listeners=PLAINTEXT://127.0.0.1:%d", p.broker),
		"controller.listener.names=CONTROLLER",
		"inter.broker.listener.name=PLAINTEXT",
		"listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
		"log.dirs=" + dataDir,
		"default.replication.factor=3",
		"min.insync.replicas=2",
		"offsets.topic.replication.factor=3",
		"transaction.state.log.replication.factor=3",
		"transaction.state.log.min.isr=2",
		// As gregor dev: a group's first rebalance does not wait 3 s.
		"group.initial.rebalance.delay.ms=0",
	}, "\n") + "\n"
}

// benchKafkaFindPom looks for the pom from the working directory upwards
// (make bench runs at the repository root, go test in cmd/gregor).
func benchKafkaFindPom() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for dir := wd; ; dir = filepath.Dir(dir) {
		p := filepath.Join(dir, benchKafkaPomDir)
		if _, err := os.Stat(filepath.Join(p, "pom.xml")); err == nil {
			return p, nil
		}
		if filepath.Dir(dir) == dir {
			return "", fmt.Errorf("%s/pom.xml not found in %s or above: run from the repository", benchKafkaPomDir, wd)
		}
	}
}

var benchKafkaVersionRE = regexp.MustCompile(`<kafka\.version>([^<]+)</kafka\.version>`)

// benchKafkaVersion is the Kafka version the pom in dir pins.
func benchKafkaVersion(dir string) string {
	b, err := os.ReadFile(filepath.Join(dir, "pom.xml"))
	if err != nil {
		return "?"
	}
	if m := benchKafkaVersionRE.FindSubmatch(b); m != nil {
		return string(m[1])
	}
	return "?"
}

// benchKafkaClassPath returns the class path of the pom's Kafka broker,
// fetching it with Maven from Maven Central on first use (cached in the
// pom's target/lib and ~/.m2).
func benchKafkaClassPath(ctx context.Context, pom string, stderr io.Writer) (string, error) {
	lib := filepath.Join(pom, "target", "lib")
	jar := filepath.Join(lib, "kafka_2.13-"+benchKafkaVersion(pom)+".jar")
	if _, err := os.Stat(jar); err != nil {
		if _, err := exec.LookPath("mvn"); err != nil {
			return "", &benchKafkaSkip{fmt.Sprintf("mvn is not on PATH, and Kafka's class path (%s) is not built", lib)}
		}
		fmt.Fprintf(stderr, "gregor bench suite: fetching Apache Kafka %s from Maven Central (mvn -q -B package -f %s)\n",
			benchKafkaVersion(pom), filepath.Join(pom, "pom.xml"))
		fctx, cancel := context.WithTimeout(ctx, benchKafkaFetchMax)
		defer cancel()
		cmd := exec.CommandContext(fctx, "mvn", "-q", "-B", "package", "-f", filepath.Join(pom, "pom.xml"))
		cmd.SysProcAttr = benchChildAttr()
		if out, err := cmd.CombinedOutput(); err != nil {
			if ctx.Err() != nil {
				return "", ctx.Err()
			}
			return "", &benchKafkaSkip{fmt.Sprintf("mvn package in %s failed (%v): %s", pom, err, benchLastLines(string(out), 5))}
		}
		if _, err := os.Stat(jar); err != nil {
			return "", &benchKafkaSkip{fmt.Sprintf("mvn package in %s did not produce %s", pom, jar)}
		}
	}
	abs, err := filepath.Abs(lib)
	if err != nil {
		return "", err
	}
	return filepath.Join(abs, "*"), nil
}

// benchLastLines is the last n lines of s, joined with " | ".
func benchLastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], " | ")
}

// benchKafkaClusterID is a fresh KRaft cluster id: 16 random bytes,
// URL-safe base64 without padding, as kafka-storage random-uuid prints.
func benchKafkaClusterID() string {
	var b [16]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// benchStartKafka formats and starts the 3-node cluster under dir (made
// here) and returns once every broker is registered and a controller is
// known. A missing java, mvn or class path is a *benchKafkaSkip.
func benchStartKafka(ctx context.Context, dir string, stderr io.Writer) (_ *benchKafka, err error) {
	if _, err := exec.LookPath("java"); err != nil {
		return nil, &benchKafkaSkip{"java is not on PATH"}
	}
	pom, err := benchKafkaFindPom()
	if err != nil {
		return nil, &benchKafkaSkip{err.Error()}
	}
	cp, err := benchKafkaClassPath(ctx, pom, stderr)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("bench: kafka: %w", err)
	}
	free, err := benchFreePorts(2 * benchKafkaNodes)
	if err != nil {
		return nil, err
	}
	ports := make([]benchKafkaPort, benchKafkaNodes)
	for i := range ports {
		ports[i] = benchKafkaPort{broker: free[2*i], controller: free[2*i+1]}
	}
	k := &benchKafka{dir: dir, pom: pom}
	defer func() {
		if err != nil {
			k.stop()
		}
	}()
	id := benchKafkaClusterID()
	props := make([]string, benchKafkaNodes)
	var wg sync.WaitGroup
	errs := make([]error, benchKafkaNodes)
	for i := range benchKafkaNodes {
		node := filepath.Join(dir, fmt.Sprintf("node-%d", i+1))
		props[i] = filepath.Join(node, "server.properties")
		if err := os.MkdirAll(node, 0o755); err != nil {
			return nil, fmt.Errorf("bench: kafka: %w", err)
		}
		if err := os.WriteFile(props[i], []byte(benchKafkaProperties(i+1, ports, filepath.Join(node, "data"))), 0o644); err != nil {
			return nil, fmt.Errorf("bench: kafka: %w", err)
		}
		// A static quorum (controller.quorum.voters): format without
		// --standalone or --initial-controllers, the same cluster id on
		// every node. The three JVMs start at once.
		wg.Add(1)
		go func() {
			defer wg.Done()
			cmd := exec.CommandContext(ctx, "java", "-cp", cp, "kafka.tools.StorageTool", "format", "-t", id, "-c", props[i])
			cmd.SysProcAttr = benchChildAttr()
			if out, err := cmd.CombinedOutput(); err != nil {
				errs[i] = fmt.Errorf("bench: kafka storage format, node %d: %v: %s", i+1, err, benchLastLines(string(out), 10))
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	for i := range benchKafkaNodes {
		args := append(append([]string{}, benchKafkaJVM...), "-cp", cp, "kafka.Kafka", props[i])
		c, err := benchStartChild(fmt.Sprintf("Kafka node %d", i+1), filepath.Join(filepath.Dir(props[i]), "kafka.log"), nil, "java", args...)
		if err != nil {
			return nil, err
		}
		k.nodes = append(k.nodes, c)
		k.brokers = append(k.brokers, fmt.Sprintf("127.0.0.1:%d", ports[i].broker))
	}
	ready := make(chan struct{})
	pollCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		if benchKafkaWaitReady(pollCtx, k.brokers) == nil {
			close(ready)
		}
	}()
	if err := benchWaitChildren(ctx, "the Kafka cluster", k.nodes, ready, benchKafkaReadyMax); err != nil {
		return nil, err
	}
	return k, nil
}

// benchKafkaWaitReady polls Metadata until it lists every broker and a
// controller, or ctx ends.
func benchKafkaWaitReady(ctx context.Context, brokers []string) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		return err
	}
	defer cl.Close()
	for {
		req := kmsg.NewPtrMetadataRequest()
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		resp, err := req.RequestWith(rctx, cl)
		cancel()
		if err == nil && len(resp.Brokers) == len(brokers) && resp.ControllerID >= 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}
