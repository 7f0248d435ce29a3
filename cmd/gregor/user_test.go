package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gregor-streaming/gregor/engine/runtime"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// startSecureCluster starts three brokers from gregor serve's flags, each
// with a PLAINTEXT listener INTERNAL and a SASL_SSL listener SECURE, and
// the bootstrap user admin in their --sasl-users files; extra are more
// serve flags.
func startSecureCluster(t *testing.T, pki *testPKI, extra ...string) []*runtime.Node {
	t.Helper()
	_, certFile, keyFile := pki.issue("broker", "broker")
	users := filepath.Join(t.TempDir(), "users")
	if err := os.WriteFile(users, []byte("admin:admin-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var nodes []*runtime.Node
	t.Cleanup(func() {
		for _, n := range nodes {
			n.Stop()
		}
	})
	var ms []clusterMember
	for id := int32(1); id <= 3; id++ {
		cfg, _, err := parseServeSecure(append([]string{
			"--id", fmt.Sprint(id), "--data", t.TempDir(), "--cluster", "1=127.0.0.1:0/127.0.0.1:0,2=127.0.0.1:0/127.0.0.1:0,3=127.0.0.1:0/127.0.0.1:0",
			"--listeners", "INTERNAL://127.0.0.1:0,SECURE://127.0.0.1:0",
			"--listener-security-protocol-map", "INTERNAL:PLAINTEXT,SECURE:SASL_SSL",
			"--tls-cert", certFile, "--tls-key", keyFile, "--sasl-users", users,
		}, extra...), os.Stderr)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Broker.TickMillis, cfg.Broker.ElectionTicks = 10, 20
		cfg.Logf = func(f string, a ...any) { t.Logf("broker %d: "+f, append([]any{id}, a...)...) }
		n, err := runtime.Listen(cfg)
		if err != nil {
			t.Fatal(err)
		}
		nodes = append(nodes, n)
		ms = append(ms, clusterMember{ID: id, KafkaAddr: n.ListenerAddr("INTERNAL"), PeerAddr: n.PeerAddr()})
	}
	for _, n := range nodes {
		n.SetCluster(brokerInfos(ms))
		n.SetPeers(peerAddrs(ms))
	}
	for _, n := range nodes {
		if err := n.Run(); err != nil {
			t.Fatal(err)
		}
	}
	return nodes
}

// TestUserCommandSASLSSL: gregor user create, as the bootstrap admin over
// SASL_SSL, makes a user that franz-go can produce and consume as on
// every broker; gregor user delete makes its authentication fail; kadm's
// AlterUserSCRAMs and DescribeUserSCRAMs work too.
func TestUserCommandSASLSSL(t *testing.T) {
	pki := newTestPKI(t, "gregor users CA")
	nodes := startSecureCluster(t, pki)
	var secure []string
	for _, n := range nodes {
		secure = append(secure, n.ListenerAddr("SECURE"))
	}
	brokers := strings.Join(secure, ",")
	// The admin's settings as Kafka's client.properties.
	adminConf := filepath.Join(t.TempDir(), "client.properties")
	os.WriteFile(adminConf, []byte("security.protocol=SASL_SSL\nssl.truststore.type=PEM\nssl.truststore.location="+pki.caFile+
		"\nsasl.mechanism=SCRAM-SHA-512\nsasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username=\"admin\" password=\"admin-secret\";\n"), 0o600)
	gregor := func(args ...string) (int, string, string) {
		var stdout, stderr strings.Builder
		code := run(append(args, "--brokers", brokers, "--timeout", "30s"), &stdout, &stderr)
		return code, stdout.String(), stderr.String()
	}
	mustGregor := func(args ...string) string {
		t.Helper()
		code, out, errOut := gregor(args...)
		if code != exitOK {
			t.Fatalf("gregor %q: exit %d: %s", args, code, errOut)
		}
		return out
	}

	// Flags: create alice with SCRAM-SHA-512 as admin.
	out := mustGregor("user", "create", "alice", "--new-password", "alice-secret", "--tls-ca", pki.caFile,
		"--sasl-mechanism", "SCRAM-SHA-512", "--user", "admin", "--password", "admin-secret")
	if !strings.Contains(out, "user alice: SCRAM-SHA-512 credential set (4096 iterations)") {
		t.Errorf("create alice: %q", out)
	}
	// The command config, and a password on standard input.
	r, w, _ := os.Pipe()
	w.WriteString("bob-secret\n")
	w.Close()
	userStdin = r
	t.Cleanup(func() { userStdin = os.Stdin })
	mustGregor("user", "create", "bob", "--mechanism", "SCRAM-SHA-256", "--iterations", "8192", "--command-config", adminConf)
	mustGregor("topic", "create", "secure", "--partitions", "1", "--replication-factor", "3", "--command-config", adminConf)

	// Describe reads the answering broker's applied state, which may lag
	// the broker that applied the change (as a KRaft broker's does).
	waitFor(t, "user list to show alice and bob", func() (bool, string) {
		out = mustGregor("user", "list", "--command-config", adminConf)
		return strings.Contains(out, "alice  SCRAM-SHA-512  4096") && strings.Contains(out, "bob    SCRAM-SHA-256  8192"), out
	})
	if strings.Contains(out, "admin") {
		t.Errorf("user list shows the bootstrap admin, who is not in the metadata:\n%s", out)
	}

	clientTLS := &tls.Config{RootCAs: pki.pool}
	login := func(addr string, m sasl.Mechanism) error {
		cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DialTLSConfig(clientTLS), kgo.SASL(m), kgo.RequestRetries(0))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		ctx, cancel := context.WithTimeout(context.Background(), testWaitMax)
		defer cancel()
		_, err = kmsg.NewPtrMetadataRequest().RequestWith(ctx, cl)
		return err
	}
	// eventually waits until every broker authenticates m as want (each
	// applies the metadata entry on its own schedule).
	eventually := func(what string, m sasl.Mechanism, want bool) {
		t.Helper()
		for _, addr := range secure {
			deadline := time.Now().Add(testWaitMax)
			for {
				err := login(addr, m)
				if (err == nil) == want {
					break
				}
				if want == false && err != nil && !errors.Is(err, kerr.SaslAuthenticationFailed) {
					t.Fatalf("%s at %s: %v, want SASL_AUTHENTICATION_FAILED", what, addr, err)
				}
				if time.Now().After(deadline) {
					t.Fatalf("%s at %s: error %v, want success %v", what, addr, err, want)
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
	}
	alice := scram.Auth{User: "alice", Pass: "alice-secret"}.AsSha512Mechanism()
	eventually("alice", alice, true)
	eventually("bob", scram.Auth{User: "bob", Pass: "bob-secret"}.AsSha256Mechanism(), true)
	eventually("alice with a wrong password", scram.Auth{User: "alice", Pass: "nope"}.AsSha512Mechanism(), false)

	// Produce and consume as alice.
	cl, err := kgo.NewClient(kgo.SeedBrokers(secure...), kgo.DialTLSConfig(clientTLS), kgo.SASL(alice),
		kgo.DefaultProduceTopic("secure"), kgo.ConsumeTopics("secure"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), testWaitMax)
	defer cancel()
	if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("from alice")}).FirstErr(); err != nil {
		t.Fatalf("produce as alice: %v", err)
	}
	fs := cl.PollFetches(ctx)
	if errs := fs.Errors(); len(errs) > 0 || fs.NumRecords() != 1 || string(fs.Records()[0].Value) != "from alice" {
		t.Fatalf("consume as alice: %d records, errors %v", fs.NumRecords(), errs)
	}
	cl.Close()

	// kadm, as admin.
	admin, err := kgo.NewClient(kgo.SeedBrokers(secure...), kgo.DialTLSConfig(clientTLS),
		kgo.SASL(scram.Auth{User: "admin", Pass: "admin-secret"}.AsSha512Mechanism()))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	adm := kadm.NewClient(admin)
	altered, err := adm.AlterUserSCRAMs(ctx, nil, []kadm.UpsertSCRAM{{User: "carol", Mechanism: kadm.ScramSha512, Iterations: 5000, Password: "carol-secret"}})
	if err != nil || altered.Error() != nil {
		t.Fatalf("kadm AlterUserSCRAMs: %v %v", err, altered.Error())
	}
	waitFor(t, "kadm DescribeUserSCRAMs to show carol", func() (bool, string) {
		described, err := adm.DescribeUserSCRAMs(ctx, "carol", "nobody")
		ok := err == nil && fmt.Sprint(described["carol"].CredInfos) == "[SCRAM-SHA-512=iterations=5000]" && errors.Is(described["nobody"].Err, kerr.ResourceNotFound)
		return ok, fmt.Sprintf("%v %+v", err, described)
	})
	eventually("carol", scram.Auth{User: "carol", Pass: "carol-secret"}.AsSha512Mechanism(), true)

	// Delete alice: her authentication fails on every broker.
	out = mustGregor("user", "delete", "alice", "--command-config", adminConf)
	if !strings.Contains(out, "user alice: SCRAM-SHA-512 credential deleted") {
		t.Errorf("delete alice: %q", out)
	}
	eventually("alice once deleted", alice, false)
	var code int
	var errOut string
	waitFor(t, "user list to miss the deleted alice", func() (bool, string) {
		code, out, errOut = gregor("user", "list", "alice", "--command-config", adminConf)
		return code == exitError && strings.Contains(out, "not found") && strings.Contains(errOut, "RESOURCE_NOT_FOUND"), fmt.Sprintf("exit %d, %q, %q", code, out, errOut)
	})
	code, _, errOut = gregor("user", "delete", "alice", "--mechanism", "SCRAM-SHA-512", "--command-config", adminConf)
	if code != exitError || !strings.Contains(errOut, "RESOURCE_NOT_FOUND") {
		t.Errorf("delete a deleted user: exit %d, %q", code, errOut)
	}

	// The errors a user of the command meets.
	code, _, errOut = gregor("user", "list", "--tls-ca", pki.caFile, "--user", "admin", "--password", "wrong")
	if code != exitError || !strings.Contains(errOut, `refused the authentication of user "admin" with SCRAM-SHA-512`) || strings.Contains(errOut, "wrong") {
		t.Errorf("a wrong admin password: exit %d, %q", code, errOut)
	}
	code, _, errOut = gregor("user", "create", "dave", "--new-password", "x", "--iterations", "100", "--command-config", adminConf)
	if code != exitUsage || !strings.Contains(errOut, "--iterations 100: want 4096 to 16384") {
		t.Errorf("too few iterations: exit %d, %q", code, errOut)
	}
	other := newTestPKI(t, "another CA")
	code, _, errOut = gregor("user", "list", "--tls-ca", other.caFile, "--user", "admin", "--password", "admin-secret")
	if code != exitError || !strings.Contains(errOut, "is --tls-ca the cluster's CA?") {
		t.Errorf("an unknown CA: exit %d, %q", code, errOut)
	}
}

func TestReadPasswordLine(t *testing.T) {
	for in, want := range map[string]string{"pw\n": "pw", "pw\r\nmore\n": "pw", "last": "last", " sp ace\n": " sp ace"} {
		if got, err := readPasswordLine(strings.NewReader(in)); err != nil || got != want {
			t.Errorf("%q: %q %v, want %q", in, got, err, want)
		}
	}
	if _, err := readPasswordLine(strings.NewReader("\n")); err == nil {
		t.Error("an empty line was a password")
	}
}
