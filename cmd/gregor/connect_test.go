package main

// Kafka Connect (a distributed worker running the file connectors) and
// MirrorMaker 2 against live Gregor clusters. Both run in a child JVM from
// the Java test jar (testdata/java: ConnectWorker, MirrorMaker2), from a
// properties file the test writes.

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// javaProc is a long-running subcommand of the Java test jar in a child
// JVM, its output collected.
type javaProc struct {
	t              *testing.T
	name           string
	cmd            *exec.Cmd
	stdout, stderr *syncBuffer
	done           chan struct{}
	err            error // once done is closed
}

func startJavaProc(t *testing.T, java, name string, args ...string) *javaProc {
	t.Helper()
	p := &javaProc{t: t, name: name, stdout: &syncBuffer{}, stderr: &syncBuffer{}, done: make(chan struct{})}
	// GREGOR_JAVA_LOG_LEVEL=info (or debug) makes Connect tell what it does.
	jvm := []string{"-jar", javaJar}
	if l := os.Getenv("GREGOR_JAVA_LOG_LEVEL"); l != "" {
		jvm = append([]string{"-Dorg.slf4j.simpleLogger.defaultLogLevel=" + l, "-Dorg.slf4j.simpleLogger.showDateTime=true",
			"-Dorg.slf4j.simpleLogger.dateTimeFormat=HH:mm:ss.SSS"}, jvm...)
	}
	p.cmd = exec.Command(java, append(jvm, args...)...)
	p.cmd.Stdout, p.cmd.Stderr = p.stdout, p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", java, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		if p.err == nil {
			p.err = fmt.Errorf("exit status 0")
		}
		close(p.done)
	}()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.done
	})
	return p
}

// exited is the process's exit, or nil while it runs.
func (p *javaProc) exited() error {
	select {
	case <-p.done:
		return p.err
	default:
		return nil
	}
}

// check fails the test if the process has exited.
func (p *javaProc) check() {
	p.t.Helper()
	if err := p.exited(); err != nil {
		p.t.Fatalf("%s exited: %v\nstdout:\n%s\nstderr:\n%s", p.name, err, p.stdout.String(), p.stderr.String())
	}
}

// kill sends SIGKILL and waits for the process to end.
func (p *javaProc) kill() {
	p.t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		p.t.Fatalf("SIGKILL %s: %v", p.name, err)
	}
	<-p.done
	p.t.Logf("killed %s (%v)", p.name, p.err)
	p.logStderr()
}

// stop sends SIGTERM and waits for a clean exit.
func (p *javaProc) stop() {
	p.t.Helper()
	start := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		p.t.Fatalf("SIGTERM %s: %v", p.name, err)
	}
	select {
	case <-p.done:
	case <-time.After(testWaitMax):
		// SIGQUIT: the JVM prints its threads' stacks on stdout.
		p.cmd.Process.Signal(syscall.SIGQUIT)
		time.Sleep(time.Second)
		p.t.Errorf("%s did not stop within %v of SIGTERM; its stdout (with a thread dump):\n%s", p.name, testWaitMax, p.stdout.String())
		p.cmd.Process.Kill()
		<-p.done
	}
	p.t.Logf("stopped %s in %v (%v)", p.name, time.Since(start).Round(time.Millisecond), p.err)
	p.logStderr()
}

func (p *javaProc) logStderr() {
	if s := p.stderr.String(); s != "" {
		p.t.Logf("%s stderr:\n%s", p.name, s)
	}
}

// writeProperties writes a Java properties file (keys sorted).
func writeProperties(t *testing.T, path string, props map[string]string) {
	t.Helper()
	var b strings.Builder
	for _, k := range slices.Sorted(func(yield func(string) bool) {
		for k := range props {
			if !yield(k) {
				return
			}
		}
	}) {
		fmt.Fprintf(&b, "%s=%s\n", k, props[k])
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

// connectWorker is a ConnectWorker JVM and its REST URL.
type connectWorker struct {
	*javaProc
	rest string
}

func startConnectWorker(t *testing.T, java, name, props string) *connectWorker {
	t.Helper()
	start := time.Now()
	w := &connectWorker{javaProc: startJavaProc(t, java, name, "connect-worker", props)}
	waitFor(t, name+" REST server", func() (bool, string) {
		w.check()
		for _, l := range lines(w.stdout.String()) {
			if u, ok := strings.CutPrefix(l, "rest "); ok {
				w.rest = strings.TrimSuffix(u, "/")
				return true, ""
			}
		}
		return false, w.stdout.String()
	})
	t.Logf("%s: REST at %s after %v", name, w.rest, time.Since(start).Round(time.Millisecond))
	return w
}

// call sends a REST request and returns the status and body.
func (w *connectWorker) call(method, path string, body any) (int, string, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, "", err
		}
		rd = bytes.NewReader(b)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, w.rest+path, rd)
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// putConnector creates (or updates) a connector, retrying while the worker
// has not yet joined its group (409 and the like).
func (w *connectWorker) putConnector(name string, config map[string]string) {
	w.t.Helper()
	waitFor(w.t, "connector "+name+" created", func() (bool, string) {
		w.check()
		code, body, err := w.call("PUT", "/connectors/"+name+"/config", config)
		if err != nil {
			return false, err.Error()
		}
		return code == http.StatusOK || code == http.StatusCreated, fmt.Sprintf("%d %s", code, body)
	})
}

// connectorState is GET /connectors/NAME/status.
type connectorState struct {
	Connector struct {
		State    string `json:"state"`
		Trace    string `json:"trace"`
		WorkerID string `json:"worker_id"`
	} `json:"connector"`
	Tasks []struct {
		ID       int    `json:"id"`
		State    string `json:"state"`
		Trace    string `json:"trace"`
		WorkerID string `json:"worker_id"`
	} `json:"tasks"`
}

// waitRunning waits until the connector and its tasks run on this worker,
// failing at once if one has failed. (The status topic still says RUNNING
// on a killed worker until another takes the task over.)
func (w *connectWorker) waitRunning(name string, tasks int) {
	w.t.Helper()
	id := strings.TrimPrefix(w.rest, "http://")
	waitFor(w.t, "connector "+name+" running", func() (bool, string) {
		w.check()
		code, body, err := w.call("GET", "/connectors/"+name+"/status", nil)
		if err != nil || code != http.StatusOK {
			return false, fmt.Sprintf("%d %s %v", code, body, err)
		}
		var s connectorState
		if err := json.Unmarshal([]byte(body), &s); err != nil {
			return false, err.Error()
		}
		if s.Connector.State == "FAILED" {
			w.t.Fatalf("connector %s failed: %s", name, s.Connector.Trace)
		}
		running := 0
		for _, tk := range s.Tasks {
			if tk.State == "FAILED" {
				w.t.Fatalf("connector %s task %d failed: %s", name, tk.ID, tk.Trace)
			}
			if tk.State == "RUNNING" && tk.WorkerID == id {
				running++
			}
		}
		return s.Connector.State == "RUNNING" && s.Connector.WorkerID == id && running == tasks, body
	})
}

// fileLines reads the complete lines of a file (a last line without its
// newline is being written and is left out).
func fileLines(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	if i := bytes.LastIndexByte(b, '\n'); i >= 0 {
		b = b[:i+1]
	} else {
		return nil
	}
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
}

// appendLines appends lines to a file, each with its newline, in one write.
func appendLines(t *testing.T, path string, ls []string) {
	t.Helper()
	if err := appendLinesErr(path, ls); err != nil {
		t.Fatal(err)
	}
}

func appendLinesErr(path string, ls []string) error {
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(strings.Join(ls, "\n") + "\n"); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// connectLine is line i of the source file: distinct, with characters the
// JSON converter must escape and restore. ASCII only: FileStreamSourceTask
// counts its offset in characters but resumes by skipping that many bytes,
// so after a restart a file with multi-byte UTF-8 is re-read from the
// middle of an earlier line (Kafka's connector, not the broker).
func connectLine(i int) string {
	return fmt.Sprintf("%05d \"line\"\t\\ %08x", i, uint32(i)*2654435761)
}

func connectLines(from, to int) []string {
	var out []string
	for i := from; i < to; i++ {
		out = append(out, connectLine(i))
	}
	return out
}

// sinkReport compares the sink file with the source's lines: every
// source line must be there, and their first copies in the source's
// order; anything else is a problem. Repeats are counted.
func sinkReport(src, sink []string) (missing, dups int, problems []string) {
	index := make(map[string]int, len(src))
	for i, l := range src {
		index[l] = i
	}
	seen := make(map[string]bool, len(src))
	next := 0 // the source index the next new line must have
	for i, l := range sink {
		j, ok := index[l]
		switch {
		case !ok:
			if len(problems) < 10 {
				problems = append(problems, fmt.Sprintf("sink line %d %q is not a source line", i+1, l))
			}
		case seen[l]:
			dups++
		case j != next:
			if len(problems) < 10 {
				problems = append(problems, fmt.Sprintf("sink line %d is source line %d, want %d (out of order)", i+1, j+1, next+1))
			}
			seen[l] = true
			next = j + 1
		default:
			seen[l] = true
			next++
		}
	}
	return len(src) - len(seen), dups, problems
}

// TestKafkaConnect runs a Kafka Connect worker in distributed mode (its
// config, offset and status topics created by Connect itself, compacted,
// RF 3; the worker a member of a group) against a live 3-broker cluster:
// FileStreamSource copies a file of distinct lines into a one-partition
// topic and FileStreamSink writes the topic out to another file, which
// must then equal the source. Then more lines are appended while the
// worker copies them, the worker is killed with SIGKILL mid-stream, more
// lines are appended while it is down, and a new worker with the same
// group and internal topics resumes from the stored offsets: the sink must
// end with every line, in order, none lost.
//
// The source runs with exactly.once.source.support=enabled (KIP-618: the
// source task's records and offsets in one transaction), so the topic
// read at read_committed holds every line exactly once, which the test
// asserts. FileStreamSink is at-least-once, as in Kafka: lines the killed
// worker had written out but whose offsets it had not committed are
// written again, and the test logs how many.
// GREGOR_CONNECT_EXACTLY_ONCE=disabled runs the source at-least-once; the
// topic may then hold repeats, which are logged.
func TestKafkaConnect(t *testing.T) {
	java := javaCommand(t)
	c := startLiveCluster(t)
	start := time.Now()
	const topic, group = "connect-lines", "connect-gregor"
	const n1, n2, n3 = 2000, 1500, 500
	eos := os.Getenv("GREGOR_CONNECT_EXACTLY_ONCE")
	if eos == "" {
		eos = "enabled"
	}
	createTopic(t, c.client(), topic, 1, 3)

	dir := t.TempDir()
	src, sink := filepath.Join(dir, "source.txt"), filepath.Join(dir, "sink.txt")
	all := connectLines(0, n1+n2+n3)
	appendLines(t, src, all[:n1])

	props := filepath.Join(dir, "worker.properties")
	writeProperties(t, props, map[string]string{
		"bootstrap.servers":                 strings.Join(c.seeds(), ","),
		"group.id":                          group,
		"config.storage.topic":              group + "-configs",
		"offset.storage.topic":              group + "-offsets",
		"status.storage.topic":              group + "-status",
		"config.storage.replication.factor": "3",
		"offset.storage.replication.factor": "3",
		"status.storage.replication.factor": "3",
		"key.converter":                     "org.apache.kafka.connect.storage.StringConverter",
		"value.converter":                   "org.apache.kafka.connect.json.JsonConverter",
		"listeners":                         "http://127.0.0.1:0",
		// The connectors are on the class path, found by their service
		// manifests (KIP-898) without scanning the jar's classes.
		"plugin.discovery": "service_load",
		// Offsets are committed every half second (60 s by default).
		"offset.flush.interval.ms": "500",
		// A killed worker leaves the group when its session ends (the
		// broker's minimum, 6 s); its tasks go to the new worker at once.
		"session.timeout.ms":               "6000",
		"heartbeat.interval.ms":            "1000",
		"scheduled.rebalance.max.delay.ms": "0",
		"exactly.once.source.support":      eos,
		// With exactly-once, the source task writes its records and offsets
		// in a transaction. A task killed mid-transaction leaves it open, and
		// a new worker, before it joins the group, reads its offsets topic
		// (at read_committed) up to the end offset the admin client lists,
		// which includes the open transaction (KafkaBasedLog, by design): it
		// waits until the coordinator aborts that transaction at its
		// timeout, 60 s by default. Against Kafka too.
		"producer.transaction.timeout.ms": "5000",
		// The sink reads only committed records: a killed source task's
		// open transaction is aborted, never copied.
		"consumer.isolation.level": "read_committed",
		// The sink task's consumer: a killed one's partitions go to the
		// next after 6 s rather than the consumer's default 45 s.
		"consumer.session.timeout.ms":    "6000",
		"consumer.heartbeat.interval.ms": "1000",
	})

	w := startConnectWorker(t, java, "connect worker 1", props)
	w.putConnector("file-source", map[string]string{
		"connector.class": "org.apache.kafka.connect.file.FileStreamSourceConnector",
		"tasks.max":       "1",
		"file":            src,
		"topic":           topic,
	})
	w.putConnector("file-sink", map[string]string{
		"connector.class": "org.apache.kafka.connect.file.FileStreamSinkConnector",
		"tasks.max":       "1",
		"file":            sink,
		"topics":          topic,
	})
	w.waitRunning("file-source", 1)
	w.waitRunning("file-sink", 1)
	t.Logf("connectors running at %v", time.Since(start).Round(time.Millisecond))
	checkInternalTopics(t, c, group+"-configs", group+"-offsets", group+"-status")
	adm := kadm.NewClient(c.client())
	groups, err := adm.DescribeGroups(context.Background(), group)
	if err != nil {
		t.Fatalf("describe group %s: %v", group, err)
	}
	if g := groups[group]; g.ProtocolType != "connect" || g.State != "Stable" || len(g.Members) != 1 {
		t.Fatalf("group %s: protocol type %q, state %s, %d members; want connect, Stable, 1 (%v)", group, g.ProtocolType, g.State, len(g.Members), g.Err)
	} else {
		t.Logf("group %s: protocol type %s, protocol %s, %d member", group, g.ProtocolType, g.Protocol, len(g.Members))
	}

	waitFor(t, "the sink file to hold the first lines", func() (bool, string) {
		w.check()
		n := len(fileLines(t, sink))
		return n >= n1, fmt.Sprintf("%d of %d lines", n, n1)
	})
	if got := fileLines(t, sink); !slices.Equal(got, all[:n1]) {
		t.Fatalf("the sink file differs from the source: %d lines, want %d", len(got), n1)
	}
	t.Logf("at %v, the sink file equals the source's %d lines", time.Since(start).Round(time.Millisecond), n1)

	// Append n2 more lines, a hundred every 50 ms, while the worker copies
	// them; kill it once the sink holds a few hundred of them, the source
	// usually still reading (and, with exactly-once, in a transaction).
	// Append the last n3 lines while it is down.
	appended := make(chan error, 1)
	go func() {
		var err error
		for i := n1; i < n1+n2 && err == nil; i += 100 {
			err = appendLinesErr(src, all[i:i+100])
			time.Sleep(50 * time.Millisecond)
		}
		appended <- err
	}()
	waitFor(t, "the sink to copy some of the appended lines", func() (bool, string) {
		w.check()
		n := len(fileLines(t, sink))
		return n >= n1+300, fmt.Sprintf("%d lines", n)
	})
	w.kill()
	killedAt := len(fileLines(t, sink))
	sinkOffsets, err := adm.FetchOffsets(context.Background(), "connect-file-sink")
	if err != nil {
		t.Fatalf("the sink's committed offsets: %v", err)
	}
	sinkCommitted, _ := sinkOffsets.Lookup(topic, 0)
	if err := <-appended; err != nil {
		t.Fatal(err)
	}
	t.Logf("at %v, killed the worker with %d lines in the sink, %d committed by the sink task", time.Since(start).Round(time.Millisecond), killedAt, sinkCommitted.At)
	appendLines(t, src, all[n1+n2:])

	w = startConnectWorker(t, java, "connect worker 2", props)
	w.waitRunning("file-source", 1)
	w.waitRunning("file-sink", 1)
	t.Logf("at %v, connectors running again", time.Since(start).Round(time.Millisecond))
	waitFor(t, "the sink to grow after the restart", func() (bool, string) {
		w.check()
		n := len(fileLines(t, sink))
		return n > killedAt, fmt.Sprintf("%d lines", n)
	})
	t.Logf("at %v, the sink grows again", time.Since(start).Round(time.Millisecond))
	waitFor(t, "the sink file to hold every line", func() (bool, string) {
		w.check()
		missing, dups, problems := sinkReport(all, fileLines(t, sink))
		if len(problems) > 0 {
			t.Fatalf("sink file: %s", strings.Join(problems, "; "))
		}
		return missing == 0, fmt.Sprintf("%d lines missing, %d repeated", missing, dups)
	})
	_, dups, _ := sinkReport(all, fileLines(t, sink))
	t.Logf("at %v, the sink file holds all %d lines in order, %d of them written twice (FileStreamSink is at-least-once)",
		time.Since(start).Round(time.Millisecond), len(all), dups)

	// The topic, at read_committed: every line, in order, each value the
	// JSON converter's envelope (schemas.enable is true by default).
	recs := readTopic(t, c, topic, len(all))
	var vals []string
	for _, r := range recs {
		var env struct {
			Schema struct {
				Type string `json:"type"`
			} `json:"schema"`
			Payload *string `json:"payload"`
		}
		if err := json.Unmarshal(r.Value, &env); err != nil || env.Schema.Type != "string" || env.Payload == nil {
			t.Fatalf("%s@%d: value %q is not the JSON converter's envelope of a string (%v)", topic, r.Offset, r.Value, err)
		}
		vals = append(vals, *env.Payload)
	}
	missing, tdups, problems := sinkReport(all, vals)
	if len(problems) > 0 || missing > 0 {
		t.Fatalf("topic %s: %d lines missing; %s", topic, missing, strings.Join(problems, "; "))
	}
	if tdups > 0 && eos == "enabled" {
		t.Errorf("topic %s: %d lines repeated, with exactly.once.source.support=enabled", topic, tdups)
	}
	t.Logf("topic %s (read_committed): %d records, %d repeated (exactly.once.source.support=%s)", topic, len(vals), tdups, eos)
	// The sink task commits its progress (past the last record, and the
	// last transaction's marker after it).
	waitFor(t, "the sink task to commit past the last record", func() (bool, string) {
		w.check()
		offs, err := adm.FetchOffsets(context.Background(), "connect-file-sink")
		if err != nil {
			return false, err.Error()
		}
		o, _ := offs.Lookup(topic, 0)
		last := recs[len(recs)-1].Offset
		return o.At > last, fmt.Sprintf("committed %d, last record at %d", o.At, last)
	})
	w.stop()
}

// checkInternalTopics checks that each topic exists, RF 3 and compacted,
// as Connect creates its internal topics, and logs their partitions.
func checkInternalTopics(t *testing.T, c *liveCluster, topics ...string) {
	t.Helper()
	adm := kadm.NewClient(c.client())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tds, err := adm.ListTopics(ctx, topics...)
	if err != nil {
		t.Fatalf("metadata of %v: %v", topics, err)
	}
	rcs, err := adm.DescribeTopicConfigs(ctx, topics...)
	if err != nil {
		t.Fatalf("describe configs of %v: %v", topics, err)
	}
	var desc []string
	for _, topic := range topics {
		td, ok := tds[topic]
		if !ok || td.Err != nil {
			t.Fatalf("topic %s: %v (exists: %v)", topic, td.Err, ok)
		}
		rc, err := rcs.On(topic, nil)
		if err != nil {
			t.Fatalf("configs of %s: %v", topic, err)
		}
		policy := ""
		for _, cf := range rc.Configs {
			if cf.Key == "cleanup.policy" {
				policy = cf.MaybeValue()
			}
		}
		if rf := td.Partitions.NumReplicas(); policy != "compact" || rf != 3 {
			t.Errorf("topic %s: cleanup.policy %q, replication factor %d; want compact, 3", topic, policy, rf)
		}
		desc = append(desc, fmt.Sprintf("%s (%d partitions, %s)", topic, len(td.Partitions), policy))
	}
	t.Logf("internal topics: %s", strings.Join(desc, ", "))
}

// mirrorCheckpoint is a record of MM2's checkpoints topic (Checkpoint in
// connect-mirror-client): a group's offset upstream and its translation.
type mirrorCheckpoint struct {
	group, topic         string
	partition            int32
	upstream, downstream int64
}

// decodeCheckpoint decodes a checkpoint's key (group, topic, partition)
// and value (version 0, upstream offset, downstream offset, metadata).
func decodeCheckpoint(key, value []byte) (mirrorCheckpoint, error) {
	var cp mirrorCheckpoint
	str := func(b []byte) (string, []byte, bool) {
		if len(b) < 2 || len(b) < 2+int(binary.BigEndian.Uint16(b)) {
			return "", nil, false
		}
		n := int(binary.BigEndian.Uint16(b))
		return string(b[2 : 2+n]), b[2+n:], true
	}
	var ok bool
	rest := key
	if cp.group, rest, ok = str(rest); !ok {
		return cp, fmt.Errorf("checkpoint key %x", key)
	}
	if cp.topic, rest, ok = str(rest); !ok || len(rest) != 4 {
		return cp, fmt.Errorf("checkpoint key %x", key)
	}
	cp.partition = int32(binary.BigEndian.Uint32(rest))
	if len(value) < 18 || binary.BigEndian.Uint16(value) != 0 {
		return cp, fmt.Errorf("checkpoint value %x", value)
	}
	cp.upstream = int64(binary.BigEndian.Uint64(value[2:]))
	cp.downstream = int64(binary.BigEndian.Uint64(value[10:]))
	return cp, nil
}

// topicConfig is a topic's value of a config.
func topicConfig(t *testing.T, adm *kadm.Client, topic, key string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rcs, err := adm.DescribeTopicConfigs(ctx, topic)
	if err != nil {
		t.Fatalf("describe configs of %s: %v", topic, err)
	}
	rc, err := rcs.On(topic, nil)
	if err != nil {
		t.Fatalf("configs of %s: %v", topic, err)
	}
	for _, cf := range rc.Configs {
		if cf.Key == key {
			return cf.MaybeValue()
		}
	}
	return ""
}

// setTopicConfig sets one config of a topic (IncrementalAlterConfigs).
func setTopicConfig(t *testing.T, adm *kadm.Client, topic, key, value string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rs, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: key, Value: &value}}, topic)
	if err == nil {
		_, err = rs.On(topic, nil)
	}
	if err != nil {
		t.Fatalf("set %s=%s on %s: %v", key, value, topic, err)
	}
}

// readTopic reads a topic from the start at read_committed until it has
// at least want records and then a second passes with nothing more.
func readTopic(t *testing.T, c *liveCluster, topic string, want int) []*kgo.Record {
	t.Helper()
	cl := readClient(c, topic, kgo.ReadCommitted())
	var out []*kgo.Record
	deadline := time.Now().Add(testWaitMax)
	for idle := 0; idle < 2; {
		if time.Now().After(deadline) {
			t.Fatalf("reading %s: %d records after %v, want %d", topic, len(out), testWaitMax, want)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		fs := cl.PollFetches(ctx)
		cancel()
		fs.EachError(func(topic string, p int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("reading %s-%d: %v", topic, p, err)
			}
		})
		fs.EachRecord(func(r *kgo.Record) { out = append(out, r) })
		if fs.NumRecords() == 0 && len(out) >= want {
			idle++
		} else {
			idle = 0
		}
	}
	cl.Close()
	return out
}

// mirrorRecord is what MirrorMaker 2 must copy of a record.
type mirrorRecord struct {
	partition  int32
	key, value []byte
	headers    []kgo.RecordHeader
	timestamp  time.Time
}

func (r mirrorRecord) equal(o mirrorRecord) bool {
	return r.partition == o.partition && bytes.Equal(r.key, o.key) && bytes.Equal(r.value, o.value) &&
		(r.key == nil) == (o.key == nil) && r.timestamp.Equal(o.timestamp) &&
		slices.EqualFunc(r.headers, o.headers, func(a, b kgo.RecordHeader) bool {
			return a.Key == b.Key && bytes.Equal(a.Value, b.Value)
		})
}

func (r mirrorRecord) String() string {
	return fmt.Sprintf("p%d key %q value %q headers %v at %s", r.partition, r.key, r.value, r.headers, r.timestamp.Format(time.RFC3339Nano))
}

// TestMirrorMaker2 runs MirrorMaker 2 (the dedicated driver,
// connect-mirror-maker.sh's) from one live 3-broker cluster, A, to
// another, B. A topic on A with keyed records (a few keys null) carrying
// headers is copied to B as A.orders (the default replication policy):
// every record in its partition and order, with its key, value, headers
// and timestamp. A consumer group's offsets committed on A come back as
// checkpoints on B (A.checkpoints.internal) and, translated, as the
// group's offsets on B (sync.group.offsets.enabled). MM2's offset syncs
// topic on A, its heartbeats and its Connect herder's internal topics on B
// must exist, the latter compacted. ACL syncing is off (Gregor has no
// ACLs: sync.topic.acls.enabled=false).
func TestMirrorMaker2(t *testing.T) {
	java := javaCommand(t)
	a, b := startLiveCluster(t), startLiveCluster(t)
	start := time.Now()
	const topic, group, records = "orders", "orders-app", 1000
	createTopic(t, a.client(), topic, 3, 3)

	base := time.UnixMilli(time.Now().Add(-time.Hour).UnixMilli())
	var want []mirrorRecord
	var rs []*kgo.Record
	for i := range records {
		r := mirrorRecord{
			partition: int32(i % 3),
			value:     []byte(fmt.Sprintf("order %d", i)),
			headers: []kgo.RecordHeader{
				{Key: "seq", Value: []byte(fmt.Sprint(i))},
				{Key: "origin", Value: []byte("cluster A")},
			},
			timestamp: base.Add(time.Duration(i) * time.Millisecond),
		}
		if i%10 != 0 {
			r.key = []byte(fmt.Sprintf("customer-%d", i%37))
		}
		if i%7 == 0 {
			r.headers = append(r.headers, kgo.RecordHeader{Key: "empty", Value: []byte{}})
		}
		want = append(want, r)
		rs = append(rs, &kgo.Record{Topic: topic, Partition: r.partition, Key: r.key, Value: r.value, Headers: r.headers, Timestamp: r.timestamp})
	}
	pcl := a.client(kgo.RecordPartitioner(kgo.ManualPartitioner()))
	ctx, cancel := context.WithTimeout(context.Background(), testWaitMax)
	defer cancel()
	if err := pcl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		t.Fatalf("produce to A: %v", err)
	}
	// A topic config MM2 must copy when it creates the topic on B.
	admA, admB := kadm.NewClient(a.client()), kadm.NewClient(b.client())
	setTopicConfig(t, admA, topic, "retention.ms", "3600000")
	// A consumer group on A that has read part of each partition.
	committed := kadm.Offsets{}
	for p := range int32(3) {
		committed.AddOffset(topic, p, int64(100+50*p), -1)
	}
	if resp, err := admA.CommitOffsets(ctx, group, committed); err != nil || resp.Error() != nil {
		t.Fatalf("commit %s's offsets on A: %v %v", group, err, resp.Error())
	}

	dir := t.TempDir()
	props := filepath.Join(dir, "mm2.properties")
	writeProperties(t, props, map[string]string{
		"clusters":            "A, B",
		"A.bootstrap.servers": strings.Join(a.seeds(), ","),
		"B.bootstrap.servers": strings.Join(b.seeds(), ","),
		"A->B.enabled":        "true",
		"A->B.topics":         topic,
		"B->A.enabled":        "false",
		// Gregor has no ACLs (DescribeAcls and CreateAcls are not offered).
		"sync.topic.acls.enabled": "false",
		// Every topic MM2 and its herders create: RF 3.
		"replication.factor":                    "3",
		"checkpoints.topic.replication.factor":  "3",
		"heartbeats.topic.replication.factor":   "3",
		"offset-syncs.topic.replication.factor": "3",
		"config.storage.replication.factor":     "3",
		"offset.storage.replication.factor":     "3",
		"status.storage.replication.factor":     "3",
		// Sooner than the defaults (60 s, 10 min), for the test.
		"emit.checkpoints.interval.seconds":   "1",
		"emit.heartbeats.interval.seconds":    "1",
		"refresh.topics.interval.seconds":     "5",
		"refresh.groups.interval.seconds":     "5",
		"sync.topic.configs.interval.seconds": "1",
		"sync.group.offsets.enabled":          "true",
		"sync.group.offsets.interval.seconds": "1",
		"offset.flush.interval.ms":            "1000",
		"plugin.discovery":                    "service_load",
		// Each herder's worker config is its target cluster's.
		"A.plugin.discovery": "service_load",
		"B.plugin.discovery": "service_load",
	})
	mm := startJavaProc(t, java, "MirrorMaker 2", "mirror-maker", props)

	// B's copy, read at read_committed.
	const copied = "A." + topic
	var got []mirrorRecord
	cl := b.client(kgo.ConsumeTopics(copied), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.FetchMaxWait(200*time.Millisecond))
	waitFor(t, "every record on B", func() (bool, string) {
		mm.check()
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		fs := cl.PollFetches(ctx)
		cancel()
		fs.EachRecord(func(r *kgo.Record) {
			got = append(got, mirrorRecord{partition: r.Partition, key: r.Key, value: r.Value, headers: r.Headers, timestamp: r.Timestamp})
		})
		return len(got) >= records, fmt.Sprintf("%d of %d records; MM2 stdout: %s", len(got), records, mm.stdout.String())
	})
	t.Logf("at %v, %d records on B in %s", time.Since(start).Round(time.Millisecond), len(got), copied)
	byPartition := func(rs []mirrorRecord) map[int32][]mirrorRecord {
		m := map[int32][]mirrorRecord{}
		for _, r := range rs {
			m[r.partition] = append(m[r.partition], r)
		}
		return m
	}
	gotP, wantP := byPartition(got), byPartition(want)
	for p := range int32(3) {
		g, w := gotP[p], wantP[p]
		if len(g) != len(w) {
			t.Errorf("%s-%d: %d records, want %d", copied, p, len(g), len(w))
		}
		for i := range min(len(g), len(w)) {
			if !g[i].equal(w[i]) {
				t.Errorf("%s-%d record %d: %v, want %v", copied, p, i, g[i], w[i])
				break
			}
		}
	}

	// Topic configs: the one set before MM2 started, copied when it
	// created the topic (CreateTopics with every config A describes), and
	// one set now, synced (IncrementalAlterConfigs).
	if v := topicConfig(t, admB, copied, "retention.ms"); v != "3600000" {
		t.Errorf("%s on B: retention.ms %q, want 3600000 as on A", copied, v)
	}
	setTopicConfig(t, admA, topic, "max.message.bytes", "500000")
	waitFor(t, "a topic config change synced to B", func() (bool, string) {
		mm.check()
		v := topicConfig(t, admB, copied, "max.message.bytes")
		return v == "500000", "max.message.bytes " + v
	})
	t.Logf("at %v, a config change on A synced to B", time.Since(start).Round(time.Millisecond))

	// The group's offsets, checkpointed and synced to B: the last
	// checkpoint of each partition holds the group's offset on A and its
	// translation, which must be the group's offset on B (and not beyond
	// A's: MM2 translates conservatively, from the nearest offset sync it
	// keeps below the group's offset).
	checkpoints := "A.checkpoints.internal"
	var ncps int
	var desc []string
	waitFor(t, "the group's checkpointed offsets synced to B", func() (bool, string) {
		mm.check()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		synced, err := admB.FetchOffsets(ctx, group)
		if err != nil {
			return false, err.Error()
		}
		if n := len(synced[copied]); n != 3 {
			return false, fmt.Sprintf("%s on B: offsets for %d partitions of %s", group, n, copied)
		}
		cps := readTopic(t, b, checkpoints, 3)
		last := map[int32]mirrorCheckpoint{}
		for _, r := range cps {
			cp, err := decodeCheckpoint(r.Key, r.Value)
			if err != nil {
				t.Fatalf("%s@%d: %v", checkpoints, r.Offset, err)
			}
			if cp.group != group || cp.topic != copied {
				t.Fatalf("%s@%d: checkpoint for %s %s, want %s %s", checkpoints, r.Offset, cp.group, cp.topic, group, copied)
			}
			last[cp.partition] = cp
		}
		ncps, desc = len(cps), nil
		for p := range int32(3) {
			up, _ := committed.Lookup(topic, p)
			down, _ := synced.Lookup(copied, p)
			cp := last[p]
			if down.Err != nil || cp.upstream != up.At || cp.downstream != down.At {
				return false, fmt.Sprintf("%s-%d: last checkpoint %d→%d, group at %d on A and %d (%v) on B",
					copied, p, cp.upstream, cp.downstream, up.At, down.At, down.Err)
			}
			if down.At > up.At {
				t.Fatalf("%s-%d: %s at %d on B, beyond its %d on A", copied, p, group, down.At, up.At)
			}
			desc = append(desc, fmt.Sprintf("%d: %d→%d", p, up.At, down.At))
		}
		return true, ""
	})
	t.Logf("at %v, %s's offsets on A → B: %s (%d checkpoint records)", time.Since(start).Round(time.Millisecond), group, strings.Join(desc, ", "), ncps)

	checkInternalTopics(t, b, "mm2-configs.A.internal", "mm2-offsets.A.internal", "mm2-status.A.internal", checkpoints)
	syncs := readTopic(t, a, "mm2-offset-syncs.B.internal", 1)
	t.Logf("mm2-offset-syncs.B.internal on A: %d offset syncs", len(syncs))

	tds, err := admB.ListTopics(ctx, "heartbeats")
	if err != nil || tds.Error() != nil {
		t.Errorf("heartbeats topic on B: %v %v", err, tds.Error())
	}
	all, _ := admB.ListTopics(ctx)
	t.Logf("topics on B: %v", all.Names())
	all, _ = admA.ListTopics(ctx)
	t.Logf("topics on A: %v", all.Names())
	mm.stop()
}
