package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestDevSecure: gregor dev --secure's files work as written. gregor
// reads client.properties (and kcat.conf) with no other flag; kcat reads
// kcat.conf (librdkafka's SCRAM client, whose final nonce carries a prefix
// Kafka accepts); the SSL listener takes admin's client certificate as a
// super user and refuses a client without one; a restart keeps the CA and
// the password, --fresh makes new ones.
func TestDevSecure(t *testing.T) {
	data := t.TempDir()
	sec := newDevSecure(data)
	if err := sec.prepare(false, ""); err != nil {
		t.Fatal(err)
	}
	if !sec.newPassword || len(sec.password) < 20 {
		t.Fatalf("a first start made password %q (new %v), want a fresh random one", sec.password, sec.newPassword)
	}
	o := devOptions{brokers: 3, data: data, autoCreate: true, secure: true}
	nodes, err := startDev(o, sec, func(id int32) func(string, ...any) {
		return func(f string, a ...any) { t.Logf("broker %d: "+f, append([]any{id}, a...)...) }
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stopDev(nodes) })
	var seeds, sslSeeds []string
	for _, n := range nodes {
		seeds = append(seeds, n.KafkaAddr())
		sslSeeds = append(sslSeeds, n.ListenerAddr("SSL"))
	}
	if err := sec.writeClientFiles(seeds); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{sec.caKey, sec.key, sec.adminKey, sec.users, sec.clientProps, sec.kcatConf} {
		if st, err := os.Stat(f); err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v, mode %v; want 0600", f, err, st.Mode().Perm())
		}
	}

	gregor := func(stdin string, args ...string) (int, string, string) {
		var stdout, stderr strings.Builder
		var code int
		if args[0] == "produce" {
			code = produceFrom(args[1:], strings.NewReader(stdin), &stdout, &stderr)
		} else {
			code = run(args, &stdout, &stderr)
		}
		return code, stdout.String(), stderr.String()
	}
	mustGregor := func(stdin string, args ...string) string {
		t.Helper()
		code, out, errOut := gregor(stdin, append(args, "--timeout", "30s")...)
		if code != exitOK {
			t.Fatalf("gregor %q: exit %d: %s", args, code, errOut)
		}
		return out
	}
	mustGregor("", "topic", "create", "sec", "--partitions", "1", "--command-config", sec.clientProps)
	mustGregor("one\ntwo\n", "produce", "--topic", "sec", "--command-config", sec.clientProps)
	if out := mustGregor("", "consume", "--topic", "sec", "--from-beginning", "--max", "2", "--command-config", sec.kcatConf); !strings.Contains(out, "one") || !strings.Contains(out, "two") {
		t.Errorf("gregor consume with kcat.conf printed %q, want one and two", out)
	}
	if code, _, errOut := gregor("", "topic", "list", "--brokers", strings.Join(seeds, ","), "--timeout", "5s"); code == exitOK {
		t.Errorf("gregor topic list without credentials succeeded on a SASL_SSL listener")
	} else {
		t.Logf("without credentials: %s", strings.TrimSpace(errOut))
	}

	kcatPath(t)
	kcat(t, "three\n", "-F", sec.kcatConf, "-P", "-t", "sec")
	if out := kcat(t, "", "-F", sec.kcatConf, "-C", "-t", "sec", "-o", "beginning", "-e", "-q"); out != "one\ntwo\nthree\n" {
		t.Errorf("kcat -F kcat.conf consumed %q, want one, two, three", out)
	}

	// The SSL listener: admin's certificate is a super user; no
	// certificate, no connection.
	caPEM, err := os.ReadFile(sec.caCert)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(caPEM)
	pair, err := tls.LoadX509KeyPair(sec.adminCert, sec.adminKey)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	certClient, err := kgo.NewClient(kgo.SeedBrokers(sslSeeds...), kgo.DialTLSConfig(&tls.Config{RootCAs: roots, Certificates: []tls.Certificate{pair}}))
	if err != nil {
		t.Fatal(err)
	}
	defer certClient.Close()
	req := kmsg.NewPtrCreateTopicsRequest()
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = "by-cert", 1, 3
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, certClient)
	if err != nil {
		t.Fatal(err)
	}
	if err := kerr.ErrorForCode(resp.Topics[0].ErrorCode); err != nil {
		t.Errorf("CreateTopics as User:CN=admin over SSL: %v", err)
	}
	noCert, err := kgo.NewClient(kgo.SeedBrokers(sslSeeds...), kgo.DialTLSConfig(&tls.Config{RootCAs: roots}), kgo.RequestRetries(0), kgo.RetryTimeout(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer noCert.Close()
	pctx, pcancel := context.WithTimeout(ctx, 5*time.Second)
	defer pcancel()
	if err := noCert.Ping(pctx); err == nil {
		t.Error("a client without a certificate reached the SSL listener")
	}

	// The raft transport is mutual TLS with the broker certificate; admin's
	// client certificate, of the same CA, is not a broker's.
	if nodes[0].Config().PeerTLS == nil {
		t.Fatal("the secure dev cluster's peer transport is not TLS")
	}
	pc, err := tls.Dial("tcp", nodes[0].PeerAddr(), &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{pair}})
	if err == nil {
		pc.SetDeadline(time.Now().Add(5 * time.Second))
		_, err = pc.Read(make([]byte, 1))
		pc.Close()
	}
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("admin's client certificate on the peer port: %v, want a refusal", err)
	}

	// A restart keeps the CA and the password; --fresh makes new ones.
	again := newDevSecure(data)
	if err := again.prepare(false, ""); err != nil {
		t.Fatal(err)
	}
	ca2, _ := os.ReadFile(again.caCert)
	if again.password != sec.password || again.newPassword || string(ca2) != string(caPEM) {
		t.Errorf("a restart changed the password (%v) or the CA (%v)", again.password != sec.password, string(ca2) != string(caPEM))
	}
	if err := again.prepare(false, "chosen-password"); err != nil || again.password != "chosen-password" {
		t.Errorf("--admin-password: %v, password %q", err, again.password)
	}
	if p, err := readDevAdmin(again.users); err != nil || p != "chosen-password" {
		t.Errorf("the users file holds %q (%v), want the chosen password", p, err)
	}
	fresh := newDevSecure(filepath.Join(t.TempDir(), "other"))
	if err := fresh.prepare(true, ""); err != nil {
		t.Fatal(err)
	}
	if fresh.password == sec.password {
		t.Error("a fresh secure directory reused the password")
	}
}

// TestDevSecureFlags: the secure flags' errors and the serve lines they
// print.
func TestDevSecureFlags(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--admin-password", "x"}, "--admin-password needs --secure"},
		{[]string{"--sasl-plaintext"}, "--sasl-plaintext needs --secure"},
		{[]string{"--secure", "--admin-password", `a"b`}, "quotes"},
		{[]string{"--secure", "--base-port", "65520"}, "must fit"},
	} {
		if _, err := parseDev(c.args, &strings.Builder{}); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("gregor dev %q: %v, want an error with %q", c.args, err, c.want)
		}
	}
	var stdout, stderr strings.Builder
	data := t.TempDir()
	if code := run([]string{"dev", "--secure", "--sasl-plaintext", "--data", data, "--print-commands"}, &stdout, &stderr); code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	first := strings.SplitN(stdout.String(), "\n", 2)[0]
	for _, want := range []string{"--listeners SASL_SSL://127.0.0.1:9092,SSL://127.0.0.1:9102,SASL_PLAINTEXT://127.0.0.1:9112",
		"--ssl-client-auth required", "--authorizer", "--peer-tls-ca", "--super-users 'User:admin;User:CN=admin'", filepath.Join(data, "secure", "users")} {
		if !strings.Contains(first, want) {
			t.Errorf("broker 1's serve line lacks %q:\n%s", want, first)
		}
	}
	if strings.Contains(first, "--listen ") {
		t.Errorf("broker 1's serve line has --listen beside --listeners:\n%s", first)
	}
}
