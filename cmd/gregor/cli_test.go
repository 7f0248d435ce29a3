package main

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// TestClientCommands runs gregor topic, produce and consume against a
// live cluster, as a newcomer would.
func TestClientCommands(t *testing.T) {
	c := startLiveCluster(t)
	cli := newGregorCLI(t, c.seeds())
	brokers, runOK := cli.brokers, cli.runOK
	// Any failing exit will do here, unlike cli.runErr.
	runErr := func(want string, args ...string) {
		t.Helper()
		if code, _, stderr := cli.runCode(args...); code == exitOK || !strings.Contains(stderr, want) {
			t.Errorf("gregor %s: exit %d, stderr %q; want a failure mentioning %q", strings.Join(args, " "), code, stderr, want)
		}
	}

	out := runOK("topic", "create", brokers, "--partitions", "3", "--replication-factor", "3", "--config", "retention.ms=60000", "cli")
	if !strings.Contains(out, "created topic cli: 3 partitions, replication factor 3") {
		t.Errorf("topic create printed %q", out)
	}
	runErr("TOPIC_ALREADY_EXISTS", "topic", "create", brokers, "--partitions", "3", "--replication-factor", "3", "cli")
	runErr("INVALID_REPLICATION_FACTOR", "topic", "create", brokers, "--replication-factor", "5", "cli2")
	runErr("--config \"nonsense\": want name=value", "topic", "create", brokers, "--config", "nonsense", "cli3")
	if out := runOK("topic", "list", brokers); !strings.Contains(out, "cli    3           3") {
		t.Errorf("topic list printed:\n%s", out)
	}
	leaders(t, c.client(), "cli", 3)
	out = runOK("topic", "describe", brokers, "cli")
	for _, want := range []string{"topic cli", "partitions 3", "retention.ms=60000", "max.message.bytes="} {
		if !strings.Contains(out, want) {
			t.Errorf("topic describe lacks %q:\n%s", want, out)
		}
	}
	runErr("UNKNOWN_TOPIC_OR_PARTITION", "topic", "describe", brokers, "nope")
	runErr("unknown topic config \"dummy.doesntexist\"", "topic", "create", brokers, "--config", "dummy.doesntexist=1", "cli4")
	if out := runOK("topic", "alter-config", brokers, "cli", "--set", "max.message.bytes=2000", "--delete", "retention.ms",
		"--append", "cleanup.policy=compact"); !strings.Contains(out, "altered the configs of topic cli") {
		t.Errorf("topic alter-config printed %q", out)
	}
	out = runOK("topic", "describe", brokers, "cli")
	for _, want := range []string{"max.message.bytes=2000  (topic)", "retention.ms=604800000  (default)", "cleanup.policy=delete,compact  (topic)"} {
		if !strings.Contains(out, want) {
			t.Errorf("topic describe after alter-config lacks %q:\n%s", want, out)
		}
	}
	if out := runOK("topic", "alter-config", brokers, "cli", "--set", "retention.ms=5", "--dry-run"); !strings.Contains(out, "valid") {
		t.Errorf("topic alter-config --dry-run printed %q", out)
	}
	runErr("INVALID_CONFIG", "topic", "alter-config", brokers, "cli", "--set", "segment.bytes=x")
	runErr("not a list", "topic", "alter-config", brokers, "cli", "--append", "retention.ms=5")
	runErr("name a change", "topic", "alter-config", brokers, "cli")
	runErr("--set \"k\": want name=value", "topic", "alter-config", brokers, "cli", "--set", "k")
	runOK("topic", "alter-config", brokers, "cli", "--subtract", "cleanup.policy=compact", "--delete", "max.message.bytes")
	if out := runOK("records", "delete", brokers, "cli", "--partition", "1", "--before", "-1"); !strings.Contains(out, "cli-1: records below offset") {
		t.Errorf("records delete printed %q", out)
	}
	runErr("OFFSET_OUT_OF_RANGE", "records", "delete", brokers, "cli", "--partition", "1", "--before", "1000")
	runErr("--before is required", "records", "delete", brokers, "cli", "--partition", "1")
	runErr("UNKNOWN_TOPIC_OR_PARTITION", "records", "delete", brokers, "nope", "--partition", "0", "--before", "0")
	out = runOK("topic", "describe", brokers, "cli", "--sizes")
	if !strings.Contains(out, "BYTES (BROKER:SIZE)") || strings.Contains(out, ":?") {
		t.Errorf("topic describe --sizes printed:\n%s", out)
	}

	var stdout, stderr strings.Builder
	in := "a=1\nb=2\nc=3\na=4\nplain\n"
	if code := produceFrom([]string{brokers, "--topic", "cli", "--keys", "--print-offsets"}, strings.NewReader(in), &stdout, &stderr); code != exitOK {
		t.Fatalf("produce: exit %d: %s", code, stderr.String())
	}
	if n := len(lines(stdout.String())); n != 5 {
		t.Errorf("produce --print-offsets printed %d lines, want 5:\n%s", n, stdout.String())
	}
	stdout.Reset()
	if code := produceFrom([]string{brokers, "--topic", "cli", "--partition", "2", "--acks", "1"}, strings.NewReader("x\ny\n"), &stdout, &stderr); code != exitOK {
		t.Fatalf("produce --partition 2 --acks 1: exit %d: %s", code, stderr.String())
	}
	if code := produceFrom([]string{brokers, "--topic", "cli", "--acks", "2"}, strings.NewReader("x\n"), &stdout, &stderr); code != exitUsage {
		t.Errorf("produce --acks 2: exit %d, want usage error", code)
	}

	consumeOut := func(args ...string) []string {
		t.Helper()
		return cli.consumeOK(append([]string{brokers, "--topic", "cli"}, args...)...)
	}
	all := consumeOut("--from-beginning", "--max", "7")
	var kv []string
	keyPart := map[string]string{}
	for _, l := range all {
		f := strings.Split(l, "\t")
		if len(f) != 4 {
			t.Fatalf("consume printed %q, want partition, offset, key, value", l)
		}
		kv = append(kv, f[2]+"="+f[3])
		if f[2] != "" {
			if p, ok := keyPart[f[2]]; ok && p != f[0] {
				t.Errorf("key %s on partitions %s and %s", f[2], p, f[0])
			}
			keyPart[f[2]] = f[0]
		}
	}
	slices.Sort(kv)
	if want := []string{"=plain", "=x", "=y", "a=1", "a=4", "b=2", "c=3"}; !slices.Equal(kv, want) {
		t.Errorf("consume --from-beginning read %v, want %v", kv, want)
	}
	inP2 := 0
	for _, l := range all {
		if strings.HasPrefix(l, "2\t") {
			inP2++
		}
	}
	if got := consumeOut("--partition", "2", "--offset", "1", "--max", strconv.Itoa(inP2-1)); len(got) != inP2-1 || !strings.HasSuffix(got[len(got)-1], "\ty") {
		t.Errorf("consume --partition 2 --offset 0 read %v, want it to end with y", got)
	}
	if got := consumeOut("--timestamp", "0", "--max", "7"); len(got) != 7 {
		t.Errorf("consume --timestamp 0 read %d records, want 7", len(got))
	}
	runErr("there is no partition 9", "consume", brokers, "--topic", "cli", "--partition", "9", "--max", "1")
	runErr("UNKNOWN_TOPIC_OR_PARTITION", "consume", brokers, "--topic", "nope", "--max", "1")
	runErr("give at most one of", "consume", brokers, "--topic", "cli", "--from-beginning", "--offset", "3")
	runErr("no broker of 127.0.0.1:1 answered", "topic", "list", "--brokers", "127.0.0.1:1", "--timeout", "1s")

	if out := runOK("topic", "delete", brokers, "cli"); !strings.Contains(out, "deleted topic cli") {
		t.Errorf("topic delete printed %q", out)
	}
	runErr("UNKNOWN_TOPIC_OR_PARTITION", "topic", "delete", brokers, "cli")
}

// gregorCLI runs gregor's commands in this process as a person would from
// a shell, capturing stdout and stderr. brokers is the --brokers flag of
// the cluster under test; each call places it among its arguments.
type gregorCLI struct {
	t       *testing.T
	brokers string
}

func newGregorCLI(t *testing.T, seeds []string) gregorCLI {
	return gregorCLI{t: t, brokers: "--brokers=" + strings.Join(seeds, ",")}
}

// runCode runs one command and returns its exit code, stdout and stderr.
func (g gregorCLI) runCode(args ...string) (int, string, string) {
	var stdout, stderr strings.Builder
	code := run(args, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

// runOK runs a command that must succeed and returns its stdout.
func (g gregorCLI) runOK(args ...string) string {
	g.t.Helper()
	code, stdout, stderr := g.runCode(args...)
	if code != exitOK {
		g.t.Fatalf("gregor %s: exit %d\nstderr: %s", strings.Join(args, " "), code, stderr)
	}
	return stdout
}

// runErr checks that a command exits with wantCode and names want on
// stderr.
func (g gregorCLI) runErr(wantCode int, want string, args ...string) {
	g.t.Helper()
	code, _, stderr := g.runCode(args...)
	if code != wantCode || !strings.Contains(stderr, want) {
		g.t.Errorf("gregor %s: exit %d, stderr %q; want exit %d mentioning %q", strings.Join(args, " "), code, stderr, wantCode, want)
	}
}

// consumeOK runs gregor consume, which must stop by itself (--max) within
// testWaitMax and succeed, and returns the lines it printed.
func (g gregorCLI) consumeOK(args ...string) []string {
	g.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testWaitMax)
	defer cancel()
	var stdout, stderr strings.Builder
	if code := consume(ctx, args, &stdout, &stderr); code != exitOK {
		g.t.Fatalf("consume %v: exit %d: %s", args, code, stderr.String())
	}
	return lines(stdout.String())
}
