package main

// Real clients against gregor dev --secure (issue 12): the Java client and
// kafkajs over SASL_SSL, and franz-go's own kgo integration suite over the
// SSL listeners (client certificates) with its SCRAM tests on the
// SASL_PLAINTEXT ones. kcat over SASL_SSL is in TestDevSecure. Each test
// starts its own secure 3-broker cluster in-process on ephemeral ports and
// fails, rather than skipping, when its client is not installed.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// devSecureCluster is a running gregor dev --secure cluster and its
// listeners, broker 1 first.
type devSecureCluster struct {
	sec                     *devSecure
	saslSSL, ssl, saslPlain []string
}

// startDevSecure starts gregor dev --secure --sasl-plaintext with 3
// brokers and writes its client files.
func startDevSecure(t *testing.T) *devSecureCluster {
	t.Helper()
	if testing.Short() {
		t.Skip("starts a 3-broker cluster")
	}
	data := t.TempDir()
	sec := newDevSecure(data)
	if err := sec.prepare(false, ""); err != nil {
		t.Fatal(err)
	}
	o := devOptions{brokers: 3, data: data, autoCreate: true, secure: true, saslPlaintext: true}
	nodes, err := startDev(o, sec, func(id int32) func(string, ...any) {
		return func(f string, a ...any) { t.Logf("broker %d: "+f, append([]any{id}, a...)...) }
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := stopDev(nodes); err != nil {
			t.Logf("stopping the cluster: %v", err)
		}
	})
	c := &devSecureCluster{sec: sec}
	for _, n := range nodes {
		c.saslSSL = append(c.saslSSL, n.KafkaAddr())
		c.ssl = append(c.ssl, n.ListenerAddr("SSL"))
		c.saslPlain = append(c.saslPlain, n.ListenerAddr("SASL_PLAINTEXT"))
	}
	if err := sec.writeClientFiles(c.saslSSL); err != nil {
		t.Fatal(err)
	}
	// Ready as gregor dev says it: a controller, and every broker listing
	// every other.
	if !waitController(nodes, devReadyMax) {
		t.Fatalf("no controller within %v", devReadyMax)
	}
	if err := sec.waitListed(nodes, devReadyMax); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestJavaSecure: the Java client (kafka-clients) with the
// client.properties gregor dev --secure writes, loaded as-is (SASL_SSL,
// SCRAM-SHA-512, the CA as a PEM truststore): Admin createTopics and
// describeCluster, an idempotent acks=all producer, a consumer in a group
// reading every record back and committing (the commits read back with
// listConsumerGroupOffsets); with a wrong password in sasl.jaas.config,
// Admin fails with SaslAuthenticationException.
func TestJavaSecure(t *testing.T) {
	java := javaCommand(t)
	c := startDevSecure(t)
	const records = 200
	ctx, cancel := context.WithTimeout(context.Background(), javaRunMax)
	defer cancel()
	cmd := exec.CommandContext(ctx, java, "-jar", javaJar, "secure", c.sec.clientProps, "java-secure", strconv.Itoa(records))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	runErr := cmd.Run()
	t.Logf("java -jar %s secure ran %v", javaJar, time.Since(start))
	if s := stderr.String(); s != "" {
		t.Logf("java stderr:\n%s", s)
	}
	t.Logf("summary: %s", stdout.String())
	var s struct {
		SecurityProtocol string  `json:"securityProtocol"`
		SASLMechanism    string  `json:"saslMechanism"`
		Created          bool    `json:"created"`
		ClusterID        string  `json:"clusterId"`
		Brokers          []int32 `json:"brokers"`
		Produced         int     `json:"produced"`
		Consumed         int     `json:"consumed"`
		Committed        int64   `json:"committed"`
		WrongPassword    string  `json:"wrongPassword"`
		Exception        string  `json:"exception"`
	}
	if err := json.Unmarshal(bytes.TrimSpace(stdout.Bytes()), &s); err != nil {
		t.Fatalf("java: %v; summary is not JSON: %v\n%s", runErr, err, stdout.String())
	}
	if s.Exception != "" || runErr != nil {
		t.Fatalf("the Java client threw: %s (%v)", s.Exception, runErr)
	}
	if s.SecurityProtocol != "SASL_SSL" || s.SASLMechanism != devMechanism {
		t.Errorf("client.properties names %s with %s, want SASL_SSL with %s", s.SecurityProtocol, s.SASLMechanism, devMechanism)
	}
	if !s.Created || s.ClusterID == "" || len(s.Brokers) != 3 {
		t.Errorf("Admin: created %v, cluster %q, brokers %v; want a topic, an id, 3 brokers", s.Created, s.ClusterID, s.Brokers)
	}
	if s.Produced != records || s.Consumed != records || s.Committed != records {
		t.Errorf("produced %d, consumed %d, committed offsets summing to %d; want %d each", s.Produced, s.Consumed, s.Committed, records)
	}
	if !strings.HasPrefix(s.WrongPassword, "SaslAuthenticationException") {
		t.Errorf("Admin with a wrong password: %q, want SaslAuthenticationException", s.WrongPassword)
	}
}

// TestKafkaJSSecure: kafkajs over SASL_SSL (the dev CA in ssl.ca,
// SCRAM-SHA-512 as admin): admin createTopics, an idempotent producer, a
// consumer group reading every message back and committing each (read back
// with admin.fetchOffsets); then for PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512
// an admin connects with the right password and fails with
// KafkaJSSASLAuthenticationError with a wrong one.
func TestKafkaJSSecure(t *testing.T) {
	node := kafkajsCommand(t)
	c := startDevSecure(t)
	const messages = 300
	ctx, cancel := context.WithTimeout(context.Background(), kafkajsRunMax)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "secure.js", strings.Join(c.saslSSL, ","), c.sec.caCert, devAdminUser, "kafkajs-secure", strconv.Itoa(messages))
	cmd.Dir = kafkajsDir
	cmd.Env = append(os.Environ(), "GREGOR_PASSWORD="+c.sec.password)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	runErr := cmd.Run()
	t.Logf("node secure.js ran %v", time.Since(start))
	if s := stderr.String(); s != "" {
		t.Logf("kafkajs stderr:\n%s", s)
	}
	t.Logf("summary: %s", stdout.String())
	var s struct {
		Created    bool     `json:"created"`
		Produced   int      `json:"produced"`
		Consumed   int      `json:"consumed"`
		Committed  int      `json:"committed"`
		Errors     []string `json:"errors"`
		Mechanisms map[string]struct {
			Brokers       int    `json:"brokers"`
			WrongPassword string `json:"wrongPassword"`
		} `json:"mechanisms"`
	}
	if err := json.Unmarshal(bytes.TrimSpace(stdout.Bytes()), &s); err != nil {
		t.Fatalf("node secure.js: %v; summary is not JSON: %v\n%s", runErr, err, stdout.String())
	}
	for _, e := range s.Errors {
		t.Errorf("kafkajs: %s", e)
	}
	if runErr != nil {
		t.Fatalf("node secure.js: %v", runErr)
	}
	if !s.Created || s.Produced != messages || s.Consumed != messages || s.Committed != messages {
		t.Errorf("created %v, produced %d, consumed %d, committed offsets summing to %d; want true and %d each",
			s.Created, s.Produced, s.Consumed, s.Committed, messages)
	}
	for _, m := range []string{"plain", "scram-sha-256", "scram-sha-512"} {
		got, ok := s.Mechanisms[m]
		if !ok {
			t.Errorf("%s: not tried", m)
			continue
		}
		if got.Brokers != 3 {
			t.Errorf("%s: describeCluster with the right password saw %d brokers, want 3", m, got.Brokers)
		}
		if !strings.HasPrefix(got.WrongPassword, "KafkaJSSASLAuthenticationError") {
			t.Errorf("%s with a wrong password: %q, want KafkaJSSASLAuthenticationError", m, got.WrongPassword)
		}
	}
}

// kgoSuitePattern is the part of franz-go's kgo suite make test runs, a
// few seconds of it: both SCRAM tests (SASL_PLAINTEXT, SCRAM-SHA-512 as
// admin; a user that does not exist must be refused) and quick tests of
// the rest over TLS with admin's client certificate (User:CN=admin):
// ping, batched FindCoordinator, produce and consume, partitions added
// under a consumer, pausing, regex subscription, a consumer group (classic
// and KIP-848). Left out as slow (10-15 s each): TestIssue337,
// TestIssue434, TestClient_Produce; TestIssue769 cannot run with TLS (it
// sets a Dialer beside KGO_TEST_TLS's DialTLSConfig, NewClient refuses,
// and the test dereferences the nil client).
const kgoSuitePattern = `^(TestSCRAMAuth|TestSCRAMAuthBadCredentials|TestPing|TestIssue1034|TestIssue325|TestIssue648|TestIssue810|TestIssue831|TestAddRemovePartitions|TestPauseIssue489|TestConsumeRegex|TestGroupSimple)$`

// kgoSuiteSkip are the tests that cannot run with KGO_TEST_TLS: a panic
// in one would end the whole run.
const kgoSuiteSkip = `^TestIssue769$`

// kgoSuiteMustPass must be among the tests reported passed: run, not
// skipped for want of their environment.
var kgoSuiteMustPass = []string{"TestSCRAMAuth", "TestSCRAMAuthBadCredentials"}

// TestKgoSuiteSecure runs franz-go's own pkg/kgo integration tests (the
// module version in go.mod, copied out of the module cache, which is read
// only) against gregor dev --secure: KGO_SEEDS the SSL listeners with
// KGO_TEST_TLS admin's client certificate, KGO_TEST_SCRAM admin's password
// with SCRAM-SHA-512 and KGO_TEST_SCRAM_SEEDS the SASL_PLAINTEXT
// listeners. It runs kgoSuitePattern and checks from the -v output that
// every selected test, TestSCRAMAuth and TestSCRAMAuthBadCredentials
// included, passed rather than skipped. The go command builds franz-go's
// test binary from the module cache (no network needed once go.mod's
// modules are downloaded).
//
// GREGOR_KGO_SUITE=full runs the whole suite instead, but TestIssue769
// (kgoSuiteSkip), for up to 40 minutes (give the outer go test a longer
// -timeout); any other value is a -run pattern of franz-go tests to run
// (only failures are checked then):
//
//	GREGOR_KGO_SUITE=full go test ./cmd/gregor -run '^TestKgoSuiteSecure$' -count=1 -v -timeout 45m
//	GREGOR_KGO_SUITE='^TestGroupETL$' go test ./cmd/gregor -run '^TestKgoSuiteSecure$' -count=1 -v -timeout 45m
//
// On failure the test prints the command that replays the run by hand
// against a gregor dev --secure --sasl-plaintext started separately.
func TestKgoSuiteSecure(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is not on PATH: franz-go's suite is built and run with it")
	}
	pattern, timeout := kgoSuitePattern, 5*time.Minute
	switch v := os.Getenv("GREGOR_KGO_SUITE"); v {
	case "":
	case "full":
		pattern, timeout = ".", 40*time.Minute
	default:
		pattern, timeout = v, 40*time.Minute
	}
	out, err := exec.Command(goBin, "list", "-m", "-f", "{{.Dir}} {{.Version}}", "github.com/twmb/franz-go").Output()
	if err != nil {
		t.Fatalf("go list -m github.com/twmb/franz-go: %v (run `go mod download`)", err)
	}
	modDir, version, _ := strings.Cut(strings.TrimSpace(string(out)), " ")
	if modDir == "" {
		t.Fatalf("franz-go %s is not in the module cache: run `go mod download`", version)
	}
	c := startDevSecure(t)

	// The module cache is read only: the suite runs in a writable copy.
	dir := filepath.Join(t.TempDir(), "franz-go@"+version)
	if err := os.CopyFS(dir, os.DirFS(modDir)); err != nil {
		t.Fatalf("copying %s: %v", modDir, err)
	}
	pkgDir := filepath.Join(dir, "pkg", "kgo")
	env := []string{
		"KGO_SEEDS=" + strings.Join(c.ssl, ","),
		"KGO_TEST_TLS=ca:" + c.sec.caCert + ",cert:" + c.sec.adminCert + ",key:" + c.sec.adminKey,
		"KGO_TEST_SCRAM=" + devAdminUser + ":" + c.sec.password + ":512",
		"KGO_TEST_SCRAM_SEEDS=" + strings.Join(c.saslPlain, ","),
		"KGO_LOG_LEVEL=none",
	}
	args := []string{"test", "-count=1", "-vet=off", "-v", "-timeout", timeout.String(), "-run", pattern, "-skip", kgoSuiteSkip, "."}
	ctx, cancel := context.WithTimeout(context.Background(), timeout+time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, goBin, args...)
	cmd.Dir = pkgDir
	cmd.Env = append(os.Environ(), env...)
	var output bytes.Buffer
	cmd.Stdout, cmd.Stderr = &output, &output
	start := time.Now()
	runErr := cmd.Run()
	t.Logf("go test in franz-go %s pkg/kgo (-run %s) ran %v", version, pattern, time.Since(start))

	var quoted []string
	for _, e := range env {
		k, v, _ := strings.Cut(e, "=")
		quoted = append(quoted, k+"="+shellQuote(v))
	}
	replay := fmt.Sprintf("cp -r %s /tmp/franz && chmod -R u+w /tmp/franz && cd /tmp/franz/pkg/kgo && %s go test -count=1 -vet=off -v -run '%s' -skip '%s' .\n"+
		"(with gregor dev --secure --sasl-plaintext running: KGO_SEEDS its SSL listeners, KGO_TEST_SCRAM_SEEDS its SASL_PLAINTEXT ones, the files and password under <data>/secure)",
		modDir, strings.Join(quoted, " "), pattern, kgoSuiteSkip)
	results := kgoTestResults(output.String())
	failed := runErr != nil
	if runErr != nil {
		t.Errorf("go test in franz-go's pkg/kgo: %v", runErr)
	}
	// Every selected test must pass (by default), and the SCRAM tests
	// must have run (by default and in full).
	var required []string
	switch pattern {
	case kgoSuitePattern:
		required = strings.Split(strings.TrimSuffix(strings.TrimPrefix(kgoSuitePattern, "^("), ")$"), "|")
	case ".":
		required = kgoSuiteMustPass
	}
	for _, name := range slices.Sorted(maps.Keys(results)) {
		if results[name] == "FAIL" && !slices.Contains(required, name) {
			failed = true
			t.Errorf("%s failed", name)
		}
	}
	for _, name := range required {
		if r := results[name]; r != "PASS" {
			failed = true
			if r == "" {
				r = "did not run"
			}
			t.Errorf("%s: %s, want PASS", name, r)
		}
	}
	if failed {
		t.Logf("go test output:\n%s", output.String())
		t.Logf("replay by hand:\n%s", replay)
		return
	}
	lines := kgoTestLine.FindAllString(output.String(), -1)
	t.Logf("franz-go kgo suite, %d results:\n%s", len(lines), strings.Join(lines, "\n"))
}

// kgoTestLine is one result line of go test -v: "--- PASS: TestX (1.23s)".
var kgoTestLine = regexp.MustCompile(`(?m)^\s*--- (PASS|FAIL|SKIP): (\S+) \(.*$`)

// kgoTestResults maps each test (and subtest) in go test -v output to
// PASS, FAIL or SKIP.
func kgoTestResults(out string) map[string]string {
	res := map[string]string{}
	for _, m := range kgoTestLine.FindAllStringSubmatch(out, -1) {
		res[m[2]] = m[1]
	}
	return res
}
