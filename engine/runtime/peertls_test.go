package runtime

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gregor-streaming/gregor/raftlog"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestTransportMutualTLS: over mutual TLS a peer with a certificate from
// the cluster's CA delivers; one with another CA's certificate (trusting
// the cluster's CA, so that under TLS 1.3 its own side of the handshake
// completes and it writes frames) and a plain TCP one deliver nothing,
// each refusal is logged naming the address, and the refused sender
// redials with backoff rather than in a tight loop.
func TestTransportMutualTLS(t *testing.T) {
	ca := newTestCA(t, "cluster CA")
	rogue := newTestCA(t, "rogue CA")
	server := ca.peerTLS("b", ca.file)
	logs := &logLines{}
	got := make(chan []byte, 100)
	b := newTransport(tls.NewListener(listenLocal(t), server.Server), func(p []byte) { got <- p }, logs.wrap(t.Logf))
	b.wg.Add(1)
	go b.serve()
	defer b.close()
	addrB := b.ln.Addr().String()

	sender := func(pt *PeerTLS) *transport {
		a := newTransport(listenLocal(t), func([]byte) {}, t.Logf)
		if pt != nil {
			a.clientTLS = pt.Client
		}
		a.wg.Add(1)
		go a.serve()
		a.setPeers(map[int32]string{2: addrB})
		return a
	}

	a := sender(ca.peerTLS("a", ca.file))
	for i := range 10 {
		a.send(2, fmt.Appendf(nil, "m%d", i))
	}
	for i := range 10 {
		select {
		case p := <-got:
			if string(p) != fmt.Sprintf("m%d", i) {
				t.Fatalf("payload %d = %q", i, p)
			}
		case <-time.After(testWaitMax):
			t.Fatalf("payload %d not delivered over mutual TLS", i)
		}
	}
	if err := a.close(); err != nil {
		t.Fatal(err)
	}
	if n := b.refused.Load(); n != 0 {
		t.Fatalf("%d connections refused from a peer with the cluster's certificate", n)
	}

	// Keep sending for a while: every connection is refused.
	r := sender(rogue.peerTLS("rogue", ca.file))
	for end := time.Now().Add(1500 * time.Millisecond); time.Now().Before(end); {
		r.send(2, []byte("rogue"))
		time.Sleep(5 * time.Millisecond)
	}
	r.close()
	// Backoff doubles from 10ms to 1s: about 8 attempts in 1.5s. A
	// loaded machine makes fewer; a tight redial loop makes hundreds.
	if n := b.refused.Load(); n == 0 || n > 30 {
		t.Errorf("a peer with another CA's certificate was refused %d times in 1.5s; want 1 to 30 (redials with backoff)", n)
	}
	if len(logs.matching("refused", "tls: ")) == 0 {
		t.Errorf("no refusal logged; log: %q", logs.matching(""))
	}

	before := b.refused.Load()
	p := sender(nil)
	waitFor(t, "a plain TCP peer refused", func() (bool, string) {
		p.send(2, []byte("plain"))
		return b.refused.Load() > before, ""
	})
	p.close()
	if len(logs.matching("refused", "does not look like a TLS handshake")) == 0 {
		t.Errorf("plain TCP refusal not logged; log: %q", logs.matching(""))
	}
	// A connection that says nothing is dropped after peerDialTimeout.
	silent, err := net.Dial("tcp", addrB)
	if err != nil {
		t.Fatal(err)
	}
	silent.SetDeadline(time.Now().Add(testWaitMax))
	if _, err := io.Copy(io.Discard, silent); err != nil {
		t.Errorf("silent connection: %v, want closed by the transport", err)
	}
	if lines := logs.matching(silent.LocalAddr().String(), "refused", "timeout"); len(lines) != 1 {
		t.Errorf("silent connection logged %q; want one timeout refusal", lines)
	}
	silent.Close()
	select {
	case p := <-got:
		t.Fatalf("delivered %q from a refused peer", p)
	default:
	}
	if n := b.received.Load(); n != 10 {
		t.Errorf("received %d payloads, want the good peer's 10", n)
	}
	for _, line := range logs.matching("refused") {
		if !strings.Contains(line, "runtime: peer connection from 127.0.0.1:") {
			t.Errorf("refusal line does not name the address: %q", line)
		}
	}
}

// rogueBroker is the broker id a rogue peer's frames claim to come from.
const rogueBroker = 99

// TestPeerMutualTLS runs a 3-broker cluster over mutual TLS, produces
// and consumes (which needs a quorum over the transport), then has
// strangers connect to broker 1's peer port: with a certificate from
// another CA, without a certificate, and in plain TCP, each writing a
// well-formed frame. Each is refused with one log line naming its
// address, none of their frames reaches a broker, and the cluster keeps
// working.
func TestPeerMutualTLS(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-broker cluster")
	}
	const (
		topic      = "mtls"
		partitions = 3
	)
	ca := newTestCA(t, "cluster CA")
	rogue := newTestCA(t, "rogue CA")
	logs := map[int32]*logLines{}
	var rogueDelivered atomic.Int64
	c := startClusterWith(t, 3, clusterOptions{
		config: func(id int32, cfg *Config) {
			cfg.PeerTLS = ca.peerTLS("broker-"+strconv.Itoa(int(id)), ca.file)
			logs[id] = &logLines{}
			cfg.Logf = logs[id].wrap(cfg.Logf)
		},
		node: func(id int32, n *Node) {
			n.peerHook = func(payload []byte) {
				if from, _, err := raftlog.DecodeBatch(payload); err != nil || from == rogueBroker {
					rogueDelivered.Add(1)
				}
			}
		},
	})
	cl := newClient(t, c, kgo.DefaultProduceTopic(topic))
	createTopic(t, cl, topic, partitions, 3)
	leaders(t, cl, topic, partitions)
	want := acked{}
	produce(t, cl, topic, 0, 100, want)

	target := c.nodes[1]
	peerAddr := target.PeerAddr()
	frame := appendFrame(nil, raftlog.EncodeBatch(rogueBroker, []raftlog.Envelope{{Group: 0, Peer: []byte("rogue")}}))
	// attempt connects to broker 1's peer port, upgrades the connection
	// with wrap, writes the frame and waits for the broker to close it;
	// it returns the connection's local address, as the broker sees it.
	attempt := func(wrap func(net.Conn) net.Conn) string {
		raw, err := net.Dial("tcp", peerAddr)
		if err != nil {
			t.Fatal(err)
		}
		defer raw.Close()
		raw.SetDeadline(time.Now().Add(testWaitMax))
		conn := wrap(raw)
		if tc, ok := conn.(*tls.Conn); ok {
			// Under TLS 1.3 the client's side completes before the
			// broker has checked its certificate.
			if err := tc.Handshake(); err != nil {
				t.Logf("rogue handshake: %v", err)
			}
		}
		conn.Write(frame)
		io.Copy(io.Discard, conn)
		return raw.LocalAddr().String()
	}
	rogueCert := rogue.tlsCert("rogue")
	refusedBefore := target.tr.refused.Load()
	for _, tc := range []struct {
		name   string
		wrap   func(net.Conn) net.Conn
		reason string
	}{
		{"another CA's certificate", func(c net.Conn) net.Conn {
			// GetClientCertificate, not Certificates: crypto/tls would not
			// send a certificate the server's CA list does not name.
			return tls.Client(c, &tls.Config{RootCAs: ca.pool, ServerName: "127.0.0.1",
				GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &rogueCert, nil }})
		}, "certificate signed by unknown authority"},
		{"no certificate", func(c net.Conn) net.Conn {
			return tls.Client(c, &tls.Config{RootCAs: ca.pool, ServerName: "127.0.0.1"})
		}, "didn't provide a certificate"},
		{"plain TCP", func(c net.Conn) net.Conn { return c }, "does not look like a TLS handshake"},
	} {
		addr := attempt(tc.wrap)
		waitFor(t, tc.name+" refused and logged", func() (bool, string) {
			return len(logs[1].matching(addr)) > 0, ""
		})
		lines := logs[1].matching(addr)
		if len(lines) != 1 || !strings.Contains(lines[0], "runtime: peer connection from "+addr+": refused: ") || !strings.Contains(lines[0], tc.reason) {
			t.Errorf("%s: broker 1 logged %q; want one refusal line naming %s and %q", tc.name, lines, addr, tc.reason)
		}
		t.Logf("%s: %s", tc.name, lines)
	}
	if n := target.tr.refused.Load() - refusedBefore; n != 3 {
		t.Errorf("broker 1 refused %d connections, want 3", n)
	}

	produce(t, cl, topic, 100, 100, want)
	consumeAll(t, c, topic, want)
	if n := rogueDelivered.Load(); n != 0 {
		t.Errorf("%d rogue payloads reached a broker", n)
	}
}

// TestPeerRogueNodeCannotJoin: broker 3 of a 3-broker cluster has a
// certificate from another CA (and trusts the cluster's CA). Brokers 1
// and 2 refuse its connections and it cannot verify theirs, so not one
// payload passes either way: brokers 1 and 2 serve produces as a quorum
// of two, tell clients only of each other, and broker 3 hears nothing.
func TestPeerRogueNodeCannotJoin(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-broker cluster")
	}
	const (
		topic      = "rogue-node"
		partitions = 3
	)
	ca := newTestCA(t, "cluster CA")
	rogue := newTestCA(t, "rogue CA")
	logs := map[int32]*logLines{}
	var fromRogue, toRogue atomic.Int64
	c := startClusterWith(t, 3, clusterOptions{
		config: func(id int32, cfg *Config) {
			if id == 3 {
				cfg.PeerTLS = rogue.peerTLS("broker-3", ca.file)
			} else {
				cfg.PeerTLS = ca.peerTLS("broker-"+strconv.Itoa(int(id)), ca.file)
			}
			logs[id] = &logLines{}
			cfg.Logf = logs[id].wrap(cfg.Logf)
		},
		node: func(id int32, n *Node) {
			n.peerHook = func(payload []byte) {
				if id == 3 {
					toRogue.Add(1)
				} else if from, _, err := raftlog.DecodeBatch(payload); err != nil || from == 3 {
					fromRogue.Add(1)
				}
			}
		},
	})
	// The client never reaches broker 3, which knows no topic (and until
	// brokers 1 and 2 have gone a while without hearing from it, they
	// still name it in Metadata).
	addrs := c.kafkaAddrs()
	var d net.Dialer
	cl := newClient(t, c, kgo.SeedBrokers(addrs[:2]...), kgo.DefaultProduceTopic(topic),
		kgo.Dialer(func(ctx context.Context, network, host string) (net.Conn, error) {
			if host == addrs[2] {
				return nil, fmt.Errorf("the test does not talk to broker 3")
			}
			return d.DialContext(ctx, network, host)
		}))
	createTopic(t, cl, topic, partitions, 3)
	leaders(t, cl, topic, partitions)
	want := acked{}
	produce(t, cl, topic, 0, 100, want)

	for _, id := range []int32{1, 2, 3} {
		waitFor(t, fmt.Sprintf("broker %d refusing a peer", id), func() (bool, string) {
			return len(logs[id].matching("refused: ")) > 0, ""
		})
	}
	waitFor(t, "Metadata naming brokers 1 and 2 only", func() (bool, string) {
		resp, err := kmsg.NewPtrMetadataRequest().RequestWith(context.Background(), cl.Broker(1))
		if err != nil {
			return false, err.Error()
		}
		var ids []int32
		for _, b := range resp.Brokers {
			ids = append(ids, b.NodeID)
		}
		slices.Sort(ids)
		return slices.Equal(ids, []int32{1, 2}), fmt.Sprint(ids)
	})
	if n := fromRogue.Load(); n != 0 {
		t.Errorf("brokers 1 and 2 received %d payloads from broker 3", n)
	}
	if n := toRogue.Load(); n != 0 {
		t.Errorf("broker 3 received %d payloads", n)
	}
	if n := c.nodes[3].tr.received.Load(); n != 0 {
		t.Errorf("broker 3's transport read %d payloads", n)
	}
	t.Logf("broker 1: %q", logs[1].matching("peer"))
	t.Logf("broker 3: %q", logs[3].matching("peer"))
}
