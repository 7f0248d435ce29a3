package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gregor-streaming/gregor/engine/runtime"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// testPKI is a CA made for one test, writing PEM files under dir.
type testPKI struct {
	t      *testing.T
	dir    string
	cert   *x509.Certificate
	key    *ecdsa.PrivateKey
	pool   *x509.CertPool
	caFile string
	serial int64
}

func newTestPKI(t *testing.T, name string) *testPKI {
	t.Helper()
	p := &testPKI{t: t, dir: t.TempDir()}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	p.cert, _ = x509.ParseCertificate(der)
	p.key, p.serial = key, 1
	p.pool = x509.NewCertPool()
	p.pool.AddCert(p.cert)
	p.caFile = filepath.Join(p.dir, "ca.pem")
	if err := os.WriteFile(p.caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// issue makes a certificate for 127.0.0.1 named cn and writes it and its
// key as name.crt and name.key.
func (p *testPKI) issue(name, cn string) (tls.Certificate, string, string) {
	p.t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		p.t.Fatal(err)
	}
	p.serial++
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(p.serial), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.cert, &key.PublicKey, p.key)
	if err != nil {
		p.t.Fatal(err)
	}
	kder, _ := x509.MarshalPKCS8PrivateKey(key)
	certFile, keyFile := filepath.Join(p.dir, name+".crt"), filepath.Join(p.dir, name+".key")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, certFile, keyFile
}

// TestServeSecureListeners runs one broker from gregor serve's flags
// with three listeners (PLAINTEXT, SASL_SSL, SSL with client
// certificates required) and talks to each with franz-go.
func TestServeSecureListeners(t *testing.T) {
	pki := newTestPKI(t, "gregor test CA")
	_, certFile, keyFile := pki.issue("broker", "broker-1")
	usersFile := filepath.Join(t.TempDir(), "users")
	if err := os.WriteFile(usersFile, []byte("# test users\nalice:alice-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, sec, err := parseServeSecure([]string{
		"--id", "1", "--data", t.TempDir(), "--cluster", "1=127.0.0.1:0/127.0.0.1:0",
		"--listeners", "INTERNAL://127.0.0.1:0,SECURE://127.0.0.1:0,MTLS://127.0.0.1:0",
		"--listener-security-protocol-map", "INTERNAL:PLAINTEXT,SECURE:SASL_SSL,MTLS:SSL",
		"--tls-cert", certFile, "--tls-key", keyFile, "--tls-client-ca", pki.caFile, "--ssl-client-auth", "required",
		"--sasl-users", usersFile, "--auto-create-topics",
	}, os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Broker.TickMillis, cfg.Broker.ElectionTicks = 10, 20
	cfg.Logf = func(f string, a ...any) { t.Logf("broker 1: "+f, a...) }
	node, err := runtime.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { node.Stop() })
	secure, mtls := node.ListenerAddr("SECURE"), node.ListenerAddr("MTLS")

	clientTLS := &tls.Config{RootCAs: pki.pool}
	connect := func(addr string, opts ...kgo.Opt) error {
		cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr), kgo.RequestRetries(1)}, opts...)...)
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		ctx, cancel := context.WithTimeout(context.Background(), testWaitMax)
		defer cancel()
		_, err = kmsg.NewPtrMetadataRequest().RequestWith(ctx, cl)
		return err
	}

	// Produce and consume over SASL_SSL, each SASL mechanism: Metadata
	// must name the SECURE listener for the client to reach the leader.
	for _, mech := range []sasl.Mechanism{
		scram.Auth{User: "alice", Pass: "alice-secret"}.AsSha512Mechanism(),
		scram.Auth{User: "alice", Pass: "alice-secret"}.AsSha256Mechanism(),
		plain.Auth{User: "alice", Pass: "alice-secret"}.AsMechanism(),
	} {
		topic := "secure-" + mech.Name()
		cl, err := kgo.NewClient(kgo.SeedBrokers(secure), kgo.DialTLSConfig(clientTLS), kgo.SASL(mech),
			kgo.DefaultProduceTopic(topic), kgo.ConsumeTopics(topic), kgo.AllowAutoTopicCreation())
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), testWaitMax)
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("hello")}).FirstErr(); err != nil {
			t.Fatalf("%s: produce: %v", mech.Name(), err)
		}
		fs := cl.PollFetches(ctx)
		if errs := fs.Errors(); len(errs) > 0 || fs.NumRecords() != 1 || string(fs.Records()[0].Value) != "hello" {
			t.Fatalf("%s: consumed %d records, errors %v", mech.Name(), fs.NumRecords(), errs)
		}
		cancel()
		cl.Close()
	}

	// A wrong password: SASL_AUTHENTICATION_FAILED, and the broker closed
	// the connection (kgo reports the error it was sent).
	err = connect(secure, kgo.DialTLSConfig(clientTLS), kgo.SASL(scram.Auth{User: "alice", Pass: "wrong"}.AsSha256Mechanism()))
	if !errors.Is(err, kerr.SaslAuthenticationFailed) {
		t.Errorf("wrong password: %v, want SASL_AUTHENTICATION_FAILED", err)
	}
	if err != nil && strings.Contains(err.Error(), "wrong") {
		t.Errorf("the error shows the password: %v", err)
	}
	// No SASL on a SASL listener: the request before authentication
	// closes the connection.
	if err := connect(secure, kgo.DialTLSConfig(clientTLS)); err == nil {
		t.Error("Metadata before authentication was answered")
	}
	// A client that trusts another CA cannot connect.
	other := newTestPKI(t, "another CA")
	if err := connect(secure, kgo.DialTLSConfig(&tls.Config{RootCAs: other.pool}), kgo.SASL(plain.Auth{User: "alice", Pass: "alice-secret"}.AsMechanism())); err == nil {
		t.Error("a client trusting another CA connected")
	}

	// SSL with client certificates required.
	client, _, _ := pki.issue("client", "alice")
	if err := connect(mtls, kgo.DialTLSConfig(&tls.Config{RootCAs: pki.pool, Certificates: []tls.Certificate{client}})); err != nil {
		t.Errorf("MTLS with a client certificate: %v", err)
	}
	if err := connect(mtls, kgo.DialTLSConfig(clientTLS)); err == nil {
		t.Error("MTLS without a client certificate connected")
	}

	// SIGHUP's reload: a new user and a new certificate take effect for
	// new connections.
	os.WriteFile(usersFile, []byte("alice:alice-secret\nbob:bob-secret\n"), 0o600)
	pki.issue("broker", "broker-1-renewed")
	if err := sec.reload(); err != nil {
		t.Fatal(err)
	}
	if err := connect(secure, kgo.DialTLSConfig(clientTLS), kgo.SASL(scram.Auth{User: "bob", Pass: "bob-secret"}.AsSha512Mechanism())); err != nil {
		t.Errorf("bob after reload: %v", err)
	}
	conn, err := tls.Dial("tcp", secure, &tls.Config{RootCAs: pki.pool, ServerName: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	if cn := conn.ConnectionState().PeerCertificates[0].Subject.CommonName; cn != "broker-1-renewed" {
		t.Errorf("after reload the broker presents %q", cn)
	}
	conn.Close()
}

// TestServeAuthorizerFlags: --authorizer, --super-users and
// --allow-everyone-if-no-acl-found reach the broker's configuration;
// without them the authorizer is off.
func TestServeAuthorizerFlags(t *testing.T) {
	base := []string{"--id", "1", "--data", "d", "--cluster", testCluster}
	cfg, err := parseServe(base, io.Discard)
	if err != nil || cfg.Broker.Authorizer || cfg.Broker.SuperUsers != nil {
		t.Fatalf("no flags: %v, authorizer %v super users %v", err, cfg.Broker.Authorizer, cfg.Broker.SuperUsers)
	}
	cfg, err = parseServe(append(base, "--authorizer", "--super-users", "User:admin; User:ops", "--allow-everyone-if-no-acl-found"), io.Discard)
	if err != nil || !cfg.Broker.Authorizer || !slices.Equal(cfg.Broker.SuperUsers, []string{"User:admin", "User:ops"}) || !cfg.Broker.AllowEveryoneIfNoACLFound {
		t.Fatalf("flags: %v, %+v", err, cfg.Broker)
	}
}

func TestServeSecurityFlagErrors(t *testing.T) {
	users := filepath.Join(t.TempDir(), "users")
	os.WriteFile(users, []byte("alice:x\n"), 0o644)
	pki := newTestPKI(t, "gregor test CA")
	_, cert, key := pki.issue("broker", "broker-1")
	base := []string{"--id", "1", "--data", "d", "--cluster", testCluster}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--peer-tls-ca", pki.caFile}, "--peer-tls-ca needs this broker's peer certificate and key"},
		{[]string{"--peer-tls-ca", pki.caFile, "--tls-cert", cert}, "--peer-tls-ca needs this broker's peer certificate and key"},
		{[]string{"--peer-tls-cert", cert, "--peer-tls-key", key}, "--peer-tls-cert and --peer-tls-key need --peer-tls-ca"},
		{[]string{"--peer-tls-key", key}, "--peer-tls-cert and --peer-tls-key need --peer-tls-ca"},
		{[]string{"--peer-tls-ca", pki.caFile, "--peer-tls-cert", cert}, "--peer-tls-cert and --peer-tls-key go together"},
		{[]string{"--peer-tls-ca", "/does/not/exist.pem", "--tls-cert", cert, "--tls-key", key}, "--peer-tls-ca: netwire: peer CA: open /does/not/exist.pem"},
		{[]string{"--peer-tls-ca", key, "--tls-cert", cert, "--tls-key", key}, "no PEM certificate in it"},
		{[]string{"--peer-tls-ca", pki.caFile, "--peer-tls-cert", "/no/peer.crt", "--peer-tls-key", key}, "--peer-tls-cert: netwire: certificate /no/peer.crt"},
		{[]string{"--peer-tls-ca", pki.caFile, "--tls-cert", "/no/broker.crt", "--tls-key", key}, "--tls-cert (the peer certificate by default): netwire: certificate /no/broker.crt"},
		{[]string{"--listeners", "A://1.2.3.4:1"}, "listener A: not in --listener-security-protocol-map"},
		{[]string{"--listeners", "PLAINTEXT://1.2.3.4:1", "--listen", "1.2.3.4:2"}, "give one or the other"},
		{[]string{"--listeners", "PLAINTEXT://1.2.3.4:1,plaintext://1.2.3.4:2"}, "names listener PLAINTEXT twice"},
		{[]string{"--listeners", "PLAINTEXT://:1"}, "concrete host"},
		{[]string{"--listeners", "SSL://1.2.3.4:1"}, "need --tls-cert and --tls-key"},
		{[]string{"--listeners", "SASL_PLAINTEXT://1.2.3.4:1", "--sasl-users", users}, "chmod 600"},
		{[]string{"--listeners", "SASL_PLAINTEXT://1.2.3.4:1", "--sasl-enabled-mechanisms", "GSSAPI"}, "GSSAPI"},
		{[]string{"--listeners", "X://1.2.3.4:1", "--listener-security-protocol-map", "X:TLS"}, "unknown security protocol"},
		{[]string{"--advertised-listeners", "X://1.2.3.4:1"}, "need --listeners"},
		{[]string{"--listeners", "PLAINTEXT://1.2.3.4:1", "--advertised-listeners", "OTHER://1.2.3.4:1"}, "names OTHER, which --listeners does not"},
		{[]string{"--super-users", "User:admin"}, "need --authorizer"},
		{[]string{"--authorizer", "--super-users", "User:admin;admin"}, `entry "admin": want Type:name`},
	} {
		var stdout, stderr strings.Builder
		code := run(append(append([]string{"serve"}, base...), tc.args...), &stdout, &stderr)
		if code != exitUsage || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("serve %q: exit %d, stderr %q; want exit %d and %q", tc.args, code, stderr.String(), exitUsage, tc.want)
		}
	}
}

// TestServePeerTLS: --peer-tls-ca turns on the peer transport's mutual
// TLS, with --tls-cert and --tls-key by default, --peer-tls-cert and
// --peer-tls-key when given, also from a --config file; the broker's
// peer port then speaks TLS with that certificate, and SIGHUP's reload
// makes new handshakes present a renewed one.
func TestServePeerTLS(t *testing.T) {
	pki := newTestPKI(t, "gregor cluster CA")
	_, cert, key := pki.issue("broker", "broker-1")
	_, peerCert, peerKey := pki.issue("peer", "broker-1-peer")
	base := []string{"--id", "1", "--data", t.TempDir(), "--cluster", "1=127.0.0.1:0/127.0.0.1:0"}

	cfg, err := parseServe(base, io.Discard)
	if err != nil || cfg.PeerTLS != nil {
		t.Fatalf("without --peer-tls-ca: %v, peer TLS %v", err, cfg.PeerTLS)
	}
	cfg, err = parseServe(append(base, "--tls-cert", cert, "--tls-key", key), io.Discard)
	if err != nil || cfg.PeerTLS != nil {
		t.Fatalf("--tls-cert alone: %v, peer TLS %v; want plain TCP peers", err, cfg.PeerTLS)
	}

	conf := filepath.Join(t.TempDir(), "gregor.conf")
	os.WriteFile(conf, []byte("peer-tls-ca="+pki.caFile+"\ntls-cert="+cert+"\ntls-key="+key+"\n"), 0o600)
	// presents dials node's peer port trusting the CA and returns the
	// common name of the certificate it presents.
	presents := func(node *runtime.Node) string {
		t.Helper()
		client, _, _ := pki.issue("client", "broker-2")
		conn, err := tls.Dial("tcp", node.PeerAddr(), &tls.Config{RootCAs: pki.pool, ServerName: "127.0.0.1", Certificates: []tls.Certificate{client}})
		if err != nil {
			t.Fatalf("peer port: %v", err)
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0].Subject.CommonName
	}
	for _, tc := range []struct {
		args   []string
		file   string // the certificate's name for pki.issue
		wantCN string
	}{
		{[]string{"--peer-tls-ca", pki.caFile, "--tls-cert", cert, "--tls-key", key}, "broker", "broker-1"},
		{[]string{"--peer-tls-ca", pki.caFile, "--tls-cert", cert, "--tls-key", key, "--peer-tls-cert", peerCert, "--peer-tls-key", peerKey}, "peer", "broker-1-peer"},
		{[]string{"--config", conf}, "broker", "broker-1"},
	} {
		cfg, sec, err := parseServeSecure(append(slices.Clone(base), tc.args...), io.Discard)
		if err != nil {
			t.Fatalf("%q: %v", tc.args, err)
		}
		if cfg.PeerTLS == nil || cfg.PeerTLS.Server.ClientAuth != tls.RequireAndVerifyClientCert || cfg.PeerTLS.Client.RootCAs == nil {
			t.Fatalf("%q: peer TLS %+v; want client certificates required and verified", tc.args, cfg.PeerTLS)
		}
		cfg.DataDir = t.TempDir()
		cfg.Broker.TickMillis, cfg.Broker.ElectionTicks = 10, 20
		cfg.Logf = func(f string, a ...any) { t.Logf("broker 1: "+f, a...) }
		node, err := runtime.Start(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if cn := presents(node); cn != tc.wantCN {
			t.Errorf("%q: the peer port presents %q, want %q", tc.args, cn, tc.wantCN)
		}
		if _, err := tls.Dial("tcp", node.PeerAddr(), &tls.Config{RootCAs: newTestPKI(t, "another CA").pool, ServerName: "127.0.0.1"}); err == nil {
			t.Errorf("%q: a client trusting another CA verified the peer port", tc.args)
		}
		// SIGHUP: the renewed certificate is presented from then on.
		pki.issue(tc.file, tc.wantCN+"-renewed")
		if err := sec.reload(); err != nil {
			t.Fatal(err)
		}
		if cn := presents(node); cn != tc.wantCN+"-renewed" {
			t.Errorf("%q: after reload the peer port presents %q", tc.args, cn)
		}
		if err := node.Stop(); err != nil {
			t.Fatal(err)
		}
		pki.issue(tc.file, tc.wantCN) // back to the original for the next case
	}
}
