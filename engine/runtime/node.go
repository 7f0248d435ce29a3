package runtime

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gregor-streaming/gregor/engine"
	"github.com/gregor-streaming/gregor/netwire"
	"github.com/gregor-streaming/gregor/raftlog"
	"github.com/gregor-streaming/gregor/raftlog/etcdwal"
	"github.com/gregor-streaming/gregor/raftlog/vfs"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/xdg-go/scram"
)

const (
	// requestQueueMax bounds client requests waiting for the owner
	// goroutine; netwire's readers block (backpressure) when it is full.
	requestQueueMax = 4096
	// peerInQueueMax bounds peer payloads waiting for the owner goroutine;
	// the peer connection readers block when it is full.
	peerInQueueMax = 1024
	// batchEventsMax bounds the events drained into one Process call, so a
	// flood of requests cannot postpone ticks and responses indefinitely.
	batchEventsMax = 1024
	// stopDrainTimeout bounds how long Stop waits for requests already read
	// to be answered (a long-polling Fetch waits up to its MaxWaitMillis).
	stopDrainTimeout = 2 * time.Second
	// walDirName is the WAL's directory under the data directory.
	walDirName = "wal"
)

// Config configures one real broker.
type Config struct {
	// Broker is the engine's configuration. The Cluster entry for Broker.ID
	// is what clients are told to connect to; if its Port is 0 it is filled
	// in from the Kafka listener's address (and its Host too, if empty).
	Broker engine.Config
	// DataDir holds the segments, with the WAL under DataDir/wal.
	DataDir string
	// KafkaListen is the Kafka listener address, e.g. "127.0.0.1:9092" or
	// "127.0.0.1:0", of the one PLAINTEXT listener named PLAINTEXT that
	// the node serves when Listeners is empty.
	KafkaListen string
	// Listeners are the node's named Kafka listeners (Kafka's listeners,
	// advertised.listeners and listener.security.protocol.map). When set,
	// KafkaListen is ignored; the first listener's advertised address
	// fills this broker's Cluster entry if its Port is 0.
	Listeners []Listener
	// SASL is the mechanisms of SASL_PLAINTEXT and SASL_SSL listeners,
	// and the bootstrap credential store (Credentials, may be nil). The
	// node looks a user up in the metadata group's SCRAM credentials
	// first; Credentials answers only for users the metadata does not
	// know (see credentials).
	SASL *netwire.SASLConfig
	// PeerListen is the inter-broker raft transport address.
	PeerListen string
	// PeerTLS, if set, makes the raft transport mutual TLS: the peer
	// listener serves PeerTLS.Server and dials use PeerTLS.Client. nil:
	// plain TCP, anyone who reaches the peer port is a peer.
	PeerTLS *PeerTLS
	// Peers maps broker ids to their raft transport addresses. It may be
	// completed after Listen with SetPeers (ephemeral ports).
	Peers map[int32]string
	// AdminListen, if set, is the address of the admin HTTP listener
	// serving /metrics (Prometheus text format), e.g. "127.0.0.1:0".
	AdminListen string
	// Logf receives notable events; nil discards.
	Logf func(format string, args ...any)
}

// Listener is one named Kafka listener of a node.
type Listener struct {
	// Name is the listener's name, upper case (PLAINTEXT, INTERNAL, ...).
	Name     string
	Protocol netwire.SecurityProtocol
	// Listen is the address to bind, e.g. "0.0.0.0:9093" or
	// "127.0.0.1:0".
	Listen string
	// Advertise is the address clients of this listener are told;
	// empty: the bound address. A port of 0 takes the bound port.
	Advertise string
	// TLS is the server configuration of SSL and SASL_SSL listeners.
	TLS *tls.Config
}

// PeerTLS is the raft transport's mutual TLS; netwire.PeerTLS makes
// both configurations from a certificate and a CA. Server must require
// and verify client certificates (Listen refuses it otherwise); Client
// should present one and verify the server's. Neither side goes below
// TLS 1.2. When Client.ServerName is empty each dial sets it to the host
// of the peer's address, so a peer's certificate must name the host
// (DNS name or IP address) the others dial it by.
type PeerTLS struct {
	Server, Client *tls.Config
}

// Node is one running broker: listeners, transport, storage and the
// goroutine that owns the engine.Broker.
type Node struct {
	cfg Config

	listeners []Listener     // cfg.Listeners, or the one KafkaListen stands for
	kafkaLns  []net.Listener // one per listeners entry
	server    *netwire.Server
	tr        *transport
	metrics   *nodeMetrics
	started0  time.Time    // Run's start: the zero of Env.Nanotime
	adminLn   net.Listener // nil without Config.AdminListen
	admin     *http.Server
	wal       *etcdwal.WAL
	writer    *walWriter // owns wal while the broker runs
	broker    *engine.Broker

	reqs   chan clientRequest
	peerIn chan []byte
	dos    chan doRequest

	// peerHook, if set before Run, sees every peer payload on the owner
	// goroutine before the Broker does (tests).
	peerHook func(payload []byte)

	// legacy: no Listeners were configured; the node serves KafkaListen
	// as PLAINTEXT and registers no listener names (as before them).
	legacy bool

	// loop-owned
	nextToken uint64
	responds  map[uint64]func(kmsg.Response)
	scramGen  uint64 // the broker's SCRAMGeneration last published

	// scram is the metadata's SCRAM credentials as last published by the
	// loop: replaced whole, never changed, read by connection goroutines.
	scram atomic.Pointer[scramTable]

	stopOnce sync.Once
	stop     chan struct{} // closed to stop the loop
	done     chan struct{} // closed when the loop has returned
	started  bool
	wg       sync.WaitGroup // Serve goroutines
	mu       sync.Mutex
	loopErr  error
}

type clientRequest struct {
	req     kmsg.Request
	respond func(kmsg.Response)
	client  engine.Client
	at      time.Time // handed to the node
}

type doRequest struct {
	fn   func(*engine.Broker)
	done chan struct{}
}

// ErrStopped is returned by Do after the node has stopped.
var ErrStopped = errors.New("runtime: node stopped")

// Start listens, opens storage and starts serving: Listen then Run.
func Start(cfg Config) (*Node, error) {
	n, err := Listen(cfg)
	if err != nil {
		return nil, err
	}
	if err := n.Run(); err != nil {
		return nil, err
	}
	return n, nil
}

// Listen opens the Kafka and peer listeners and does nothing else, so
// that callers using port 0 can learn every node's addresses (KafkaAddr,
// PeerAddr) and complete the configuration (SetCluster, SetPeers) before
// Run.
func Listen(cfg Config) (*Node, error) {
	if cfg.Logf == nil {
		cfg.Logf = func(string, ...any) {}
	}
	if cfg.DataDir == "" {
		return nil, errors.New("runtime: no data directory")
	}
	listeners := slices.Clone(cfg.Listeners)
	legacy := len(listeners) == 0
	if legacy {
		listeners = []Listener{{Name: "PLAINTEXT", Protocol: netwire.Plaintext, Listen: cfg.KafkaListen}}
	}
	var klns []net.Listener
	var adminLn net.Listener
	closeAll := func() {
		for _, ln := range klns {
			ln.Close()
		}
		if adminLn != nil {
			adminLn.Close()
		}
	}
	for _, l := range listeners {
		if l.Protocol.SASL() && cfg.SASL == nil {
			closeAll()
			return nil, fmt.Errorf("runtime: listener %s is %s but no SASL configuration is given", l.Name, l.Protocol)
		}
		ln, err := net.Listen("tcp", l.Listen)
		if err != nil {
			closeAll()
			return nil, fmt.Errorf("runtime: kafka listener %s: %w", l.Name, err)
		}
		klns = append(klns, ln)
	}
	var peerServer, peerClient *tls.Config
	if cfg.PeerTLS != nil {
		if cfg.PeerTLS.Server == nil || cfg.PeerTLS.Client == nil {
			closeAll()
			return nil, errors.New("runtime: peer TLS needs both a server and a client configuration")
		}
		if cfg.PeerTLS.Server.ClientAuth != tls.RequireAndVerifyClientCert {
			closeAll()
			return nil, errors.New("runtime: peer TLS: the server configuration must require and verify client certificates")
		}
		peerServer, peerClient = cfg.PeerTLS.Server.Clone(), cfg.PeerTLS.Client.Clone()
		peerServer.MinVersion = max(peerServer.MinVersion, tls.VersionTLS12)
		peerClient.MinVersion = max(peerClient.MinVersion, tls.VersionTLS12)
	}
	if cfg.AdminListen != "" {
		aln, err := net.Listen("tcp", cfg.AdminListen)
		if err != nil {
			closeAll()
			return nil, fmt.Errorf("runtime: admin listener: %w", err)
		}
		adminLn = aln
	}
	pln, err := net.Listen("tcp", cfg.PeerListen)
	if err != nil {
		closeAll()
		return nil, fmt.Errorf("runtime: peer listener: %w", err)
	}
	if peerServer != nil {
		pln = tls.NewListener(pln, peerServer)
	}
	n := &Node{
		cfg:       cfg,
		legacy:    legacy,
		listeners: listeners,
		kafkaLns:  klns,
		reqs:      make(chan clientRequest, requestQueueMax),
		peerIn:    make(chan []byte, peerInQueueMax),
		dos:       make(chan doRequest),
		responds:  map[uint64]func(kmsg.Response){},
		stop:      make(chan struct{}),
		done:      make(chan struct{}),
		adminLn:   adminLn,
	}
	n.metrics = newNodeMetrics(n)
	n.tr = newTransport(pln, n.deliverPeer, cfg.Logf)
	n.tr.clientTLS = peerClient
	n.tr.setPeers(cfg.Peers)
	return n, nil
}

// KafkaAddr is the first Kafka listener's address, e.g.
// "127.0.0.1:40123".
func (n *Node) KafkaAddr() string { return n.kafkaLns[0].Addr().String() }

// ListenerAddr is the bound address of the listener named name, or "".
func (n *Node) ListenerAddr(name string) string {
	for i, l := range n.listeners {
		if l.Name == name {
			return n.kafkaLns[i].Addr().String()
		}
	}
	return ""
}

// PeerAddr is the raft transport listener's address.
func (n *Node) PeerAddr() string { return n.tr.ln.Addr().String() }

// SetPeers replaces the peer address book; safe at any time.
func (n *Node) SetPeers(peers map[int32]string) { n.tr.setPeers(peers) }

// SetCluster replaces Broker.Cluster; call it before Run.
func (n *Node) SetCluster(cluster []engine.BrokerInfo) {
	n.cfg.Broker.Cluster = slices.Clone(cluster)
}

// Dropped is how many peer payloads the transport has dropped so far
// (queue full or peer unreachable).
func (n *Node) Dropped() uint64 { return n.tr.dropped.Load() }

// Run opens the WAL and the data directory, recovers the broker, and
// starts the owner goroutine, the Kafka server and the peer transport.
// On error every listener is closed and Stop has nothing left to do.
func (n *Node) Run() (err error) {
	defer func() {
		if err != nil {
			for _, ln := range n.kafkaLns {
				ln.Close()
			}
			n.tr.close()
			if n.writer != nil {
				n.writer.Close()
				n.writer = nil
			}
			if n.wal != nil {
				n.wal.Close()
				n.wal = nil
			}
		}
	}()
	if n.started {
		return errors.New("runtime: Run called twice")
	}
	n.started, n.started0 = true, time.Now()
	n.advertise()
	if err := os.MkdirAll(n.cfg.DataDir, 0o755); err != nil {
		return fmt.Errorf("runtime: data directory: %w", err)
	}
	w, err := etcdwal.Open(filepath.Join(n.cfg.DataDir, walDirName))
	if err != nil {
		return fmt.Errorf("runtime: open WAL: %w", err)
	}
	n.wal = w
	n.writer = newWALWriter(w)
	if n.cfg.Broker.LogDir == "" {
		if abs, err := filepath.Abs(n.cfg.DataDir); err == nil {
			n.cfg.Broker.LogDir = abs
		}
	}
	b, err := engine.NewBroker(n.cfg.Broker, engine.Env{
		FS:    vfs.OS(n.cfg.DataDir),
		WAL:   n.writer,
		Clock: wallClock{},
		Logf:  n.cfg.Logf,
		// Appends leave before the leader's fsync; the transport queues
		// them without blocking.
		SendEarly: func(outs []raftlog.Outgoing) {
			for _, o := range outs {
				n.tr.send(int32(o.To), o.Payload)
			}
		},
		Nanotime:    func() int64 { return int64(time.Since(n.started0)) },
		AsyncWrites: true,
	})
	if err != nil {
		return fmt.Errorf("runtime: broker %d: %w", n.cfg.Broker.ID, err)
	}
	n.broker = b
	n.cfg.Broker = b.Config()

	var versions []netwire.Version
	for _, v := range engine.APIVersions() {
		versions = append(versions, netwire.Version{Key: v.Key, Min: v.Min, Max: v.Max})
	}
	var features []netwire.Feature
	for _, f := range n.cfg.Broker.Features() {
		features = append(features, netwire.Feature{Name: f.Name, Min: f.Min, Max: f.Max, Level: f.Level})
	}
	n.publishSCRAM()
	var sasl *netwire.SASLConfig
	if n.cfg.SASL != nil {
		sasl = &netwire.SASLConfig{Mechanisms: n.cfg.SASL.Mechanisms, Credentials: n.credentials}
	}
	n.server = netwire.NewServer(netwire.Config{Versions: versions, Features: features, SASL: sasl, Logf: n.cfg.Logf}, handler{n})

	go n.loop()
	for i, l := range n.listeners {
		n.wg.Add(1)
		go func() {
			defer n.wg.Done()
			nl := netwire.Listener{Name: l.Name, Protocol: l.Protocol, TLS: l.TLS}
			if err := n.server.ServeListener(n.kafkaLns[i], nl); err != nil && !errors.Is(err, netwire.ErrServerClosed) {
				n.cfg.Logf("runtime: broker %d: kafka listener %s: %v", n.cfg.Broker.ID, l.Name, err)
			}
		}()
	}
	n.tr.wg.Add(1)
	go n.tr.serve()
	if n.adminLn != nil {
		n.serveAdmin()
	}
	return nil
}

// advertise fills this broker's Cluster entry: its listeners' advertised
// addresses (ports of 0 taken from the bound ones), and its Host and
// Port from the first listener when its Port is 0.
func (n *Node) advertise() {
	var eps []engine.Endpoint
	for i, l := range n.listeners {
		bound := n.kafkaLns[i].Addr().String()
		host, port, err := net.SplitHostPort(bound)
		if err != nil {
			continue
		}
		if l.Advertise != "" {
			h, p, err := net.SplitHostPort(l.Advertise)
			if err == nil {
				host = h
				if p != "0" {
					port = p
				}
			}
		}
		p, _ := strconv.Atoi(port)
		eps = append(eps, engine.Endpoint{Name: l.Name, Host: host, Port: int32(p)})
	}
	for i, bi := range n.cfg.Broker.Cluster {
		if bi.ID != n.cfg.Broker.ID {
			continue
		}
		if !n.legacy {
			n.cfg.Broker.Cluster[i].Listeners = eps
		}
		if bi.Port != 0 || len(eps) == 0 {
			continue
		}
		if bi.Host == "" {
			n.cfg.Broker.Cluster[i].Host = eps[0].Host
		}
		n.cfg.Broker.Cluster[i].Port = eps[0].Port
	}
}

// Config is the node's configuration, with the engine's defaults filled in
// once running.
func (n *Node) Config() Config { return n.cfg }

// Err is the error that stopped the owner loop, if any (a failed Process:
// the WAL or the disk failed).
func (n *Node) Err() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.loopErr
}

// Done is closed when the owner loop has ended, by Stop or by a failure.
func (n *Node) Done() <-chan struct{} { return n.done }

// Do runs fn on the goroutine that owns the Broker and waits for it, then
// processes whatever fn queued. It is for tests and introspection.
func (n *Node) Do(fn func(*engine.Broker)) error {
	d := doRequest{fn: fn, done: make(chan struct{})}
	select {
	case n.dos <- d:
	case <-n.done:
		return ErrStopped
	}
	select {
	case <-d.done:
		return nil
	case <-n.done:
		return ErrStopped
	}
}

// handOffPoll is how often HandOffLeadership asks the broker again;
// handOffLinger is how long it keeps serving once it leads nothing, so
// that the requests clients already sent it are answered
// NOT_LEADER_OR_FOLLOWER with the new leader (KIP-951) rather than cut
// off by the stop: a client whose connection is cut may wait for its next
// metadata refresh (franz-go's default minimum age is 5 s).
const (
	handOffPoll   = 20 * time.Millisecond
	handOffLinger = 300 * time.Millisecond
)

// HandOffLeadership is the first step of a controlled shutdown (Kafka's
// controlled.shutdown.enable; engine.Broker.HandOffLeadership): it moves
// the leadership of every raft group this broker leads to another live
// voter, while the node keeps serving, and returns handOffLinger after it
// leads none that could move, or when ctx ends, with how many it still
// leads. Stop after it, and clients see a leader change rather than an
// election timeout.
func (n *Node) HandOffLeadership(ctx context.Context) (int, error) {
	for {
		left := 0
		if err := n.Do(func(b *engine.Broker) { left = b.HandOffLeadership() }); err != nil {
			return 0, err
		}
		if left == 0 {
			select {
			case <-ctx.Done():
			case <-time.After(handOffLinger):
			}
			return 0, nil
		}
		select {
		case <-ctx.Done():
			return left, ctx.Err()
		case <-time.After(handOffPoll):
		}
	}
}

// Stop shuts the node down: the Kafka server stops accepting and answers
// what it has already read (bounded by stopDrainTimeout), then the owner
// loop stops, the transport closes, and the Broker and WAL are closed. It
// returns the first error met, including one that stopped the loop early.
func (n *Node) Stop() error {
	var errs []error
	n.stopOnce.Do(func() {
		if n.server != nil {
			ctx, cancel := context.WithTimeout(context.Background(), stopDrainTimeout)
			n.server.Shutdown(ctx)
			cancel()
		} else {
			for _, ln := range n.kafkaLns {
				ln.Close()
			}
		}
		if n.admin != nil {
			n.admin.Close()
		} else if n.adminLn != nil {
			n.adminLn.Close()
		}
		close(n.stop)
		if n.broker != nil {
			<-n.done // the loop runs exactly when the broker was built
		} else {
			close(n.done)
		}
		n.wg.Wait()
		errs = append(errs, n.tr.close())
		if n.broker != nil {
			errs = append(errs, n.broker.Close())
		}
		if n.writer != nil {
			errs = append(errs, n.writer.Close())
		}
		if n.wal != nil {
			errs = append(errs, n.wal.Close())
		}
		errs = append(errs, n.Err())
	})
	return errors.Join(errs...)
}

// deliverPeer hands a peer payload to the owner loop, waiting while its
// queue is full.
func (n *Node) deliverPeer(payload []byte) {
	select {
	case n.peerIn <- payload:
	case <-n.done:
	case <-n.stop:
	}
}

// handler adapts the Node to netwire.Handler.
type handler struct{ n *Node }

func (h handler) Handle(info *netwire.ConnInfo, req kmsg.Request, respond func(kmsg.Response)) {
	cr := clientRequest{req: req, respond: respond, at: time.Now()}
	if info != nil {
		cr.client = engine.Client{ID: info.ClientID, Host: info.Remote, Listener: info.Listener, Principal: info.Principal}
		if host, _, err := net.SplitHostPort(info.Remote); err == nil {
			cr.client.Host = host
		}
	}
	select {
	case h.n.reqs <- cr:
	case <-h.n.done:
		respond(nil)
	}
}

// loop owns the Broker. Each turn it waits for one event, drains whatever
// else is already queued (up to batchEventsMax), calls Process once, then
// sends the outbox and the finished responses.
func (n *Node) loop() {
	defer close(n.done)
	ticker := time.NewTicker(time.Duration(n.cfg.Broker.TickMillis) * time.Millisecond)
	defer ticker.Stop()
	n.submitWrite()
	for {
		var dos []doRequest
		select {
		case <-n.stop:
			return
		case err := <-n.writer.done:
			if err := n.broker.WriteDone(err); err != nil {
				n.fail(err)
				return
			}
		case r := <-n.reqs:
			n.handle(r)
		case p := <-n.peerIn:
			n.receive(p)
		case <-ticker.C:
			n.broker.Tick()
		case d := <-n.dos:
			d.fn(n.broker)
			dos = append(dos, d)
		}
	drain:
		for range batchEventsMax - 1 {
			select {
			case r := <-n.reqs:
				n.handle(r)
			case p := <-n.peerIn:
				n.receive(p)
			case <-ticker.C:
				n.broker.Tick()
			default:
				break drain
			}
		}
		err := n.broker.Process()
		n.publishSCRAM()
		for _, d := range dos {
			close(d.done)
		}
		if err != nil {
			n.fail(err)
			return
		}
		n.submitWrite()
		n.flush()
	}
}

// fail records the error that stops the loop.
func (n *Node) fail(err error) {
	n.mu.Lock()
	n.loopErr = fmt.Errorf("runtime: broker %d: %w", n.cfg.Broker.ID, err)
	n.mu.Unlock()
	n.cfg.Logf("%v; stopping", n.loopErr)
}

// submitWrite hands the raft cycle's WAL records, if any, to the writer.
func (n *Node) submitWrite() {
	if recs := n.broker.TakeWrite(); recs != nil {
		n.writer.submit(recs)
	}
}

func (n *Node) handle(r clientRequest) {
	n.nextToken++
	n.metrics.queued.Observe(time.Since(r.at).Seconds())
	n.responds[n.nextToken] = func(resp kmsg.Response) {
		n.metrics.observe(r.req, time.Since(r.at))
		r.respond(resp)
	}
	n.broker.HandleClient(n.nextToken, r.req, r.client)
}

func (n *Node) receive(payload []byte) {
	if n.peerHook != nil {
		n.peerHook(payload)
	}
	if err := n.broker.Receive(payload); err != nil {
		n.cfg.Logf("runtime: broker %d: dropping a peer payload: %v", n.cfg.Broker.ID, err)
	}
}

// flush sends the Broker's outbox and its finished responses.
func (n *Node) flush() {
	for _, o := range n.broker.Outbox() {
		n.tr.send(int32(o.To), o.Payload)
	}
	for _, r := range n.broker.Responses() {
		respond, ok := n.responds[r.Token]
		if !ok {
			panic(fmt.Sprintf("runtime: broker %d answered unknown token %d", n.cfg.Broker.ID, r.Token))
		}
		delete(n.responds, r.Token)
		respond(r.Msg)
	}
}

// scramTable is the metadata's SCRAM credentials in netwire's form, by
// user then mechanism. A published table is never changed.
type scramTable map[string]map[string]scram.StoredCredentials

// publishSCRAM hands the SASL authenticator a new copy of the broker's
// SCRAM credentials if they changed since the last one. It runs on the
// loop, after NewBroker and after every Process: the engine stays
// single-threaded and lock-free, and the connection goroutines read the
// copy with one atomic load.
func (n *Node) publishSCRAM() {
	gen := n.broker.SCRAMGeneration()
	if gen == n.scramGen && n.scram.Load() != nil {
		return
	}
	n.scramGen = gen
	t := scramTable{}
	for user, mechs := range n.broker.SCRAMCredentials() {
		m := make(map[string]scram.StoredCredentials, len(mechs))
		for mech, c := range mechs {
			m[mech] = scram.StoredCredentials{
				KeyFactors: scram.KeyFactors{Salt: string(c.Salt), Iters: int(c.Iterations)},
				StoredKey:  c.StoredKey, ServerKey: c.ServerKey,
			}
		}
		t[user] = m
	}
	n.scram.Store(&t)
}

// credentials is netwire's credential lookup, on connection goroutines:
// a user the metadata has credentials for is looked up there only (a
// mechanism it lacks is refused); any other user in the bootstrap store
// (Config.SASL.Credentials, gregor serve's --sasl-users), if there is one.
func (n *Node) credentials(mech, user string) (scram.StoredCredentials, bool) {
	if t := n.scram.Load(); t != nil {
		if mechs, ok := (*t)[user]; ok {
			c, ok := mechs[mech]
			return c, ok
		}
	}
	if n.cfg.SASL == nil || n.cfg.SASL.Credentials == nil {
		return scram.StoredCredentials{}, false
	}
	return n.cfg.SASL.Credentials(mech, user)
}

// wallClock is engine.Clock on the real clock.
type wallClock struct{}

func (wallClock) NowMillis() int64 { return time.Now().UnixMilli() }
