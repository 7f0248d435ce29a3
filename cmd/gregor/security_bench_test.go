package main

import (
	"context"
	"crypto/pbkdf2"
	"crypto/sha512"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gregor-streaming/gregor/engine/runtime"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// Issue 12's security benchmarks, in one cluster with two listeners per
// broker, PLAINTEXT and SASL_SSL (SCRAM-SHA-512, TLS 1.3), so the two
// columns of a ratio are measured in the same run on the same brokers:
//
//	go test -run '^$' -bench 'Secure' -benchtime 20000x -count 5 ./cmd/gregor
//
// The authorizer's own cost is BenchmarkAuthorize (engine).

// benchSecureCluster starts three brokers with a PLAIN and a SECURE
// listener each and returns the two seed lists and the client TLS.
func benchSecureCluster(b *testing.B) (plain, secure []string, clientTLS *tls.Config, password string) {
	b.Helper()
	sec := newDevSecure(b.TempDir())
	if err := sec.prepare(false, ""); err != nil {
		b.Fatal(err)
	}
	var nodes []*runtime.Node
	b.Cleanup(func() {
		for _, n := range nodes {
			n.Stop()
		}
	})
	var ms []clusterMember
	for id := int32(1); id <= 3; id++ {
		cfg, _, err := parseServeSecure([]string{
			"--id", fmt.Sprint(id), "--data", b.TempDir(), "--cluster", "1=127.0.0.1:0/127.0.0.1:0,2=127.0.0.1:0/127.0.0.1:0,3=127.0.0.1:0/127.0.0.1:0",
			"--listeners", "PLAIN://127.0.0.1:0,SECURE://127.0.0.1:0",
			"--listener-security-protocol-map", "PLAIN:PLAINTEXT,SECURE:SASL_SSL",
			"--tls-cert", sec.cert, "--tls-key", sec.key, "--sasl-users", sec.users, "--auto-create-topics",
		}, os.Stderr)
		if err != nil {
			b.Fatal(err)
		}
		n, err := runtime.Listen(cfg)
		if err != nil {
			b.Fatal(err)
		}
		nodes = append(nodes, n)
		ms = append(ms, clusterMember{ID: id, KafkaAddr: n.ListenerAddr("PLAIN"), PeerAddr: n.PeerAddr()})
		plain = append(plain, n.ListenerAddr("PLAIN"))
		secure = append(secure, n.ListenerAddr("SECURE"))
	}
	for _, n := range nodes {
		n.SetCluster(brokerInfos(ms))
		n.SetPeers(peerAddrs(ms))
	}
	for _, n := range nodes {
		if err := n.Run(); err != nil {
			b.Fatal(err)
		}
	}
	pem, err := os.ReadFile(sec.caCert)
	if err != nil {
		b.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	return plain, secure, &tls.Config{RootCAs: pool}, sec.password
}

func benchSecureOpts(secure bool, clientTLS *tls.Config, password string) []kgo.Opt {
	if !secure {
		return nil
	}
	return []kgo.Opt{kgo.DialTLSConfig(clientTLS.Clone()), kgo.SASL(scram.Auth{User: devAdminUser, Pass: password}.AsSha512Mechanism())}
}

// benchSecureRecords is how many 1 KiB records one operation of
// BenchmarkSecureThroughput writes and reads over each listener.
const benchSecureRecords = 20_000

// BenchmarkSecureThroughput: one operation produces benchSecureRecords
// records of 1 KiB (acks=all, idempotent, linger 0, RF 3, auto-created
// topic) over PLAINTEXT, then over SASL_SSL, then reads each topic back
// from the start, interleaved so both see the same machine. It reports
// each listener's MB/s and the ratio SASL_SSL / PLAINTEXT.
func BenchmarkSecureThroughput(b *testing.B) {
	plain, secure, clientTLS, password := benchSecureCluster(b)
	value := []byte(strings.Repeat("v", 1024))
	type side struct {
		name               string
		seeds              []string
		secure             bool
		produced, consumed time.Duration
	}
	sides := []*side{{name: "plaintext", seeds: plain}, {name: "sasl_ssl", seeds: secure, secure: true}}
	client := func(s *side, opts ...kgo.Opt) *kgo.Client {
		cl, err := kgo.NewClient(append(append([]kgo.Opt{kgo.SeedBrokers(s.seeds...)}, benchSecureOpts(s.secure, clientTLS, password)...), opts...)...)
		if err != nil {
			b.Fatal(err)
		}
		return cl
	}
	round := 0
	for b.Loop() {
		round++
		for _, s := range sides {
			topic := fmt.Sprintf("bench-%s-%d", s.name, round)
			cl := client(s, kgo.DefaultProduceTopic(topic), kgo.AllowAutoTopicCreation(), kgo.ProducerLinger(0))
			// The topic and the connections exist before the clock runs.
			if err := cl.ProduceSync(context.Background(), &kgo.Record{Value: value}).FirstErr(); err != nil {
				b.Fatal(err)
			}
			var wg sync.WaitGroup
			var mu sync.Mutex
			var firstErr error
			start := time.Now()
			for range benchSecureRecords {
				wg.Add(1)
				cl.Produce(context.Background(), &kgo.Record{Value: value}, func(_ *kgo.Record, err error) {
					if err != nil {
						mu.Lock()
						firstErr = err
						mu.Unlock()
					}
					wg.Done()
				})
			}
			wg.Wait()
			s.produced += time.Since(start)
			cl.Close()
			if firstErr != nil {
				b.Fatal(firstErr)
			}
			cl = client(s, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
			start = time.Now()
			for got := 0; got < benchSecureRecords+1; {
				fs := cl.PollFetches(context.Background())
				if err := fs.Err0(); err != nil {
					b.Fatal(err)
				}
				got += fs.NumRecords()
			}
			s.consumed += time.Since(start)
			cl.Close()
		}
	}
	mbps := func(d time.Duration) float64 {
		return float64(round*benchSecureRecords*len(value)) / 1e6 / d.Seconds()
	}
	p, q := sides[0], sides[1]
	b.ReportMetric(mbps(p.produced), "plain-produce-MB/s")
	b.ReportMetric(mbps(q.produced), "ssl-produce-MB/s")
	b.ReportMetric(p.produced.Seconds()/q.produced.Seconds(), "produce-ratio")
	b.ReportMetric(mbps(p.consumed), "plain-consume-MB/s")
	b.ReportMetric(mbps(q.consumed), "ssl-consume-MB/s")
	b.ReportMetric(p.consumed.Seconds()/q.consumed.Seconds(), "consume-ratio")
}

// BenchmarkSecureHandshake: one new authenticated connection per
// operation (TCP, TLS, ApiVersions, SaslHandshake, two SCRAM-SHA-512
// round trips, then one Metadata request), against the same over
// PLAINTEXT; ns/op is the time to a usable connection. The client's
// part of SCRAM, PBKDF2 over the password (4096 iterations of
// HMAC-SHA-512, the users file's count), is measured on its own as
// client-pbkdf2: the broker stores the derived keys and does not repeat
// it.
func BenchmarkSecureHandshake(b *testing.B) {
	plain, secure, clientTLS, password := benchSecureCluster(b)
	b.Run("client-pbkdf2", func(b *testing.B) {
		for b.Loop() {
			if _, err := pbkdf2.Key(sha512.New, password, []byte("a-24-byte-salt-of-a-user"), scramIterations, sha512.Size); err != nil {
				b.Fatal(err)
			}
		}
	})
	for _, c := range []struct {
		name   string
		seed   string
		secure bool
	}{{"plaintext", plain[0], false}, {"sasl_ssl", secure[0], true}} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(c.seed)}, benchSecureOpts(c.secure, clientTLS, password)...)...)
				if err != nil {
					b.Fatal(err)
				}
				if err := cl.Ping(context.Background()); err != nil {
					b.Fatal(err)
				}
				cl.Close()
			}
		})
	}
}
