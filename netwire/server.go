package netwire

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

const (
	// defaultMaxFrameBytes is Kafka's socket.request.max.bytes.
	defaultMaxFrameBytes int32 = 100 << 20
	// defaultMaxInFlightPerConn bounds requests awaiting responses on one
	// connection before netwire stops reading it.
	defaultMaxInFlightPerConn = 100
	// defaultMaxConns bounds open client connections per Server.
	defaultMaxConns = 1000

	// readBufferBytes is the size of each connection's read buffer.
	readBufferBytes = 64 << 10
	// writeFlushBytes is how much encoded response data a connection's
	// writer gathers before it writes even though more responses are ready.
	writeFlushBytes = 1 << 20
	// writeBufferKeepBytes is the largest write buffer kept for reuse after
	// a flush; a bigger one (after a large Fetch response) is dropped.
	writeBufferKeepBytes = 4 << 20

	// acceptBackoffMin and acceptBackoffMax bound the pause after a failed
	// Accept (for example EMFILE), doubling while failures repeat.
	acceptBackoffMin = 5 * time.Millisecond
	acceptBackoffMax = time.Second
)

// ErrServerClosed is returned by Serve after Close or Shutdown.
var ErrServerClosed = errors.New("netwire: server closed")

// Handler receives every decoded request except ApiVersions.
type Handler interface {
	// Handle is called once per request, in arrival order per connection,
	// from that connection's reader goroutine. It must eventually call
	// respond exactly once, from any goroutine; respond(nil) means "send no
	// response" (Produce with acks=0). Responses are written back in
	// request order even if respond calls arrive out of order (pipelining).
	// The response's version is set by netwire to the request's version;
	// its key must match the request's, or the connection is closed.
	//
	// While Handle runs, the connection reads nothing more, so Handle should
	// hand work off rather than wait for it. A panic in Handle is logged and
	// closes that connection.
	Handle(c *ConnInfo, req kmsg.Request, respond func(kmsg.Response))
}

// ConnInfo describes the connection and header of one request. Each request
// gets its own ConnInfo, so a Handler may keep it.
type ConnInfo struct {
	// ID is unique per connection within a Server, starting at 1.
	ID uint64
	// Remote is the peer's address.
	Remote string
	// ClientID is the client id from this request's header ("" when null).
	ClientID string
	// Listener is the name of the listener the connection came through.
	Listener string
	// Principal is who the connection is, in Kafka's form: "User:" and
	// the SASL user name, or the subject of a verified TLS client
	// certificate (RFC 2253, as Kafka's default principal builder), or
	// "User:ANONYMOUS". It is fixed before the first request reaches the
	// Handler (netwire answers the SASL exchange itself and passes
	// nothing else on before it succeeds), so the authorizer can read it
	// per request here.
	Principal string
}

// Config configures a Server. Zero values take the defaults.
type Config struct {
	// MaxFrameBytes bounds a request frame; a larger (or negative) size
	// prefix closes that connection. Default 100 MiB (Kafka's
	// socket.request.max.bytes).
	MaxFrameBytes int32
	// MaxInFlightPerConn: netwire stops reading a connection while this
	// many of its requests await responses. Default 100.
	MaxInFlightPerConn int
	// MaxConns: further connections are closed at accept with a log line.
	// Default 1000.
	MaxConns int
	// Versions is the supported API versions table. ApiVersions (key 18)
	// must be listed; netwire answers it from this table. Any other request
	// whose key is missing or whose version is outside its range closes the
	// connection, as Kafka does.
	Versions []Version
	// Features are the KIP-584 features ApiVersions v3+ advertises: each
	// is supported from Min to Max and finalized at Level (a feature at
	// level 0 is supported but not finalized, as Kafka leaves it out).
	Features []Feature
	// SASL configures SaslHandshake and SaslAuthenticate (sasl.go); it
	// must be set for any SASL_PLAINTEXT or SASL_SSL listener. netwire
	// answers both keys itself and adds them to the versions table.
	SASL *SASLConfig
	// Logf receives one line per notable event (closed connections,
	// rejected frames, handler panics, failed handshakes and
	// authentications, naming the client address and the reason). nil
	// discards.
	Logf func(format string, args ...any)
}

// Server accepts Kafka client connections and dispatches their requests to
// a Handler.
type Server struct {
	cfg   Config
	h     Handler
	table versionTable

	nextConnID atomic.Uint64

	mu       sync.Mutex
	lns      []net.Listener
	conns    map[uint64]*conn
	closed   bool          // Close or Shutdown began: accept nothing more
	quit     chan struct{} // closed with closed
	draining bool          // Shutdown: stop reading, finish responses
	// wg counts the Serve loop and each connection's two goroutines.
	wg sync.WaitGroup
	// connWG counts connections only, for Shutdown to wait on.
	connWG sync.WaitGroup
}

// NewServer returns a Server for cfg and h. It panics if cfg.Versions is
// not a valid table (unknown key, duplicate, bad range, no ApiVersions):
// the table is fixed in code, so that is a programming error.
func NewServer(cfg Config, h Handler) *Server {
	if cfg.MaxFrameBytes <= 0 {
		cfg.MaxFrameBytes = defaultMaxFrameBytes
	}
	if cfg.MaxInFlightPerConn <= 0 {
		cfg.MaxInFlightPerConn = defaultMaxInFlightPerConn
	}
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = defaultMaxConns
	}
	if cfg.Logf == nil {
		cfg.Logf = func(string, ...any) {}
	}
	vs := cfg.Versions
	for _, v := range vs {
		if v.Key == saslHandshakeKey || v.Key == saslAuthenticateKey {
			panic("netwire: Versions lists a SASL key; netwire answers them itself when Config.SASL is set")
		}
	}
	if cfg.SASL != nil {
		vs = append(slices.Clone(vs), saslVersions...)
	}
	t, err := newVersionTable(vs)
	if err != nil {
		panic(err)
	}
	for _, f := range cfg.Features {
		if f.Name == "" || f.Min < 0 || f.Min > f.Max || f.Level != 0 && (f.Level < f.Min || f.Level > f.Max) {
			panic(fmt.Sprintf("netwire: feature %q: level %d outside %d..%d", f.Name, f.Level, f.Min, f.Max))
		}
	}
	t.features = slices.Clone(cfg.Features)
	return &Server{cfg: cfg, h: h, table: t, conns: make(map[uint64]*conn), quit: make(chan struct{})}
}

// Serve is ServeListener for a PLAINTEXT listener named PLAINTEXT.
func (s *Server) Serve(ln net.Listener) error {
	return s.ServeListener(ln, Listener{Name: "PLAINTEXT", Protocol: Plaintext})
}

// ServeListener accepts connections on ln, speaking l's security
// protocol, until ln is closed or the Server is closed; then it returns
// ErrServerClosed (after Close or Shutdown) or the listener's error. A
// Server serves any number of listeners, each from its own
// ServeListener call.
func (s *Server) ServeListener(ln net.Listener, l Listener) error {
	if err := l.check(s.cfg.SASL != nil); err != nil {
		ln.Close()
		return err
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		ln.Close()
		return ErrServerClosed
	}
	s.lns = append(s.lns, ln)
	s.wg.Add(1)
	s.mu.Unlock()
	defer s.wg.Done()

	var backoff time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if s.isClosed() {
				return ErrServerClosed
			}
			if errors.Is(err, net.ErrClosed) {
				return err
			}
			backoff = min(max(2*backoff, acceptBackoffMin), acceptBackoffMax)
			s.cfg.Logf("netwire: accept: %v; retrying in %v", err, backoff)
			t := time.NewTimer(backoff)
			select {
			case <-t.C:
			case <-s.quit:
				t.Stop()
				return ErrServerClosed
			}
			continue
		}
		backoff = 0
		s.startConn(nc, &l)
	}
}

// Addr returns the address of the first listener served, or nil before
// Serve.
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.lns) == 0 {
		return nil
	}
	return s.lns[0].Addr()
}

// Connections reports how many client connections are open and how many
// were accepted since the server started.
func (s *Server) Connections() (open int, accepted uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns), s.nextConnID.Load()
}

// Close closes the listener and every connection at once, dropping
// responses not yet written, and waits for netwire's goroutines to end.
// Respond calls that arrive later are ignored.
func (s *Server) Close() error {
	s.mu.Lock()
	var err error
	if !s.closed {
		s.closed = true
		close(s.quit)
		for _, ln := range s.lns {
			if e := ln.Close(); e != nil && !errors.Is(e, net.ErrClosed) && err == nil {
				err = e
			}
		}
	}
	for _, c := range s.conns {
		c.close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}

// Shutdown closes the listener, stops reading requests on every
// connection, and waits until every request already read has been answered
// and written, or ctx ends; then it Closes. It returns ctx's error if ctx
// ended first.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if !s.closed {
		s.closed = true
		close(s.quit)
		for _, ln := range s.lns {
			ln.Close()
		}
	}
	s.draining = true
	for _, c := range s.conns {
		c.stopReading()
	}
	s.mu.Unlock()

	done := make(chan struct{})
	go func() { s.connWG.Wait(); close(done) }()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = ctx.Err()
	}
	s.Close()
	<-done
	return err
}

func (s *Server) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// startConn registers nc and starts its reader and writer, or closes it if
// the Server is closed or at MaxConns.
func (s *Server) startConn(nc net.Conn, l *Listener) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		nc.Close()
		return
	}
	if len(s.conns) >= s.cfg.MaxConns {
		s.cfg.Logf("netwire: closing connection from %s: %d connections open (MaxConns)", nc.RemoteAddr(), len(s.conns))
		nc.Close()
		return
	}
	if l.TLS != nil {
		nc = tls.Server(nc, l.TLS) // the reader runs the handshake
	}
	c := &conn{
		s:      s,
		id:     s.nextConnID.Add(1),
		remote: nc.RemoteAddr().String(),
		nc:     nc,
		l:      l,
		slots:  make(chan *slot, s.cfg.MaxInFlightPerConn),
		tokens: make(chan struct{}, s.cfg.MaxInFlightPerConn),
		quit:   make(chan struct{}),
		drain:  make(chan struct{}),
	}
	s.conns[c.id] = c
	s.wg.Add(2)
	s.connWG.Add(1)
	go c.readLoop()
	go c.writeLoop()
}

// removeConn forgets c; called once when its writer ends.
func (s *Server) removeConn(c *conn) {
	s.mu.Lock()
	delete(s.conns, c.id)
	s.mu.Unlock()
	s.connWG.Done()
}
