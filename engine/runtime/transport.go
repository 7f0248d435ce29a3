package runtime

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

const (
	// peerQueueMax bounds the payloads waiting to be written to one peer.
	// When it is full new payloads are dropped and counted: raft resends.
	peerQueueMax = 1024
	// peerDialBackoffMin and peerDialBackoffMax bound the pause between
	// dial attempts to an unreachable peer, doubling while failures repeat.
	peerDialBackoffMin = 10 * time.Millisecond
	peerDialBackoffMax = time.Second
	// peerDialTimeout bounds one dial attempt, its TLS handshake
	// included, and the TLS handshake of an accepted connection.
	peerDialTimeout = 2 * time.Second
	// peerWriteTimeout bounds one write to a peer: a stuck peer must not
	// hold its queue forever.
	peerWriteTimeout = 10 * time.Second
	// peerBufferBytes is the size of each peer connection's read and write
	// buffers.
	peerBufferBytes = 64 << 10
)

// transport is the inter-broker raft transport over TCP: one outgoing
// connection per peer, dialled lazily and redialled with backoff, each fed
// by a bounded queue; and an accept loop whose connections read frames and
// hand each payload to deliver.
//
// With mutual TLS (PeerTLS) the listener is a tls.NewListener, each
// accepted connection completes its handshake (the peer's certificate
// verified) before a byte of it is read as a frame, and dials are TLS
// with clientTLS.
type transport struct {
	ln      net.Listener
	deliver func(payload []byte)
	logf    func(string, ...any)
	// clientTLS, if set, makes dials TLS; ServerName is set per dial
	// from the peer address's host when it is empty.
	clientTLS *tls.Config
	// ctx is cancelled by close, ending dials under way.
	ctx    context.Context
	cancel context.CancelFunc

	mu     sync.Mutex
	addrs  map[int32]string
	peers  map[int32]*peerSender
	conns  map[net.Conn]struct{} // accepted
	closed bool

	quit chan struct{}
	wg   sync.WaitGroup

	dropped  atomic.Uint64 // payloads dropped: queue full or peer unreachable
	sent     atomic.Uint64 // payloads written
	received atomic.Uint64 // payloads read from accepted connections and delivered
	refused  atomic.Uint64 // accepted connections whose TLS handshake failed
}

func newTransport(ln net.Listener, deliver func([]byte), logf func(string, ...any)) *transport {
	ctx, cancel := context.WithCancel(context.Background())
	return &transport{
		ln: ln, deliver: deliver, logf: logf, ctx: ctx, cancel: cancel,
		addrs: map[int32]string{}, peers: map[int32]*peerSender{}, conns: map[net.Conn]struct{}{},
		quit: make(chan struct{}),
	}
}

// setPeers replaces the peer address book. Senders pick up a changed
// address on their next dial.
func (t *transport) setPeers(addrs map[int32]string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.addrs = make(map[int32]string, len(addrs))
	for id, a := range addrs {
		t.addrs[id] = a
	}
}

func (t *transport) addr(id int32) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.addrs[id]
}

// send queues payload for broker to, never blocking. The payload must not
// be modified afterwards.
func (t *transport) send(to int32, payload []byte) {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return
	}
	p, ok := t.peers[to]
	if !ok {
		p = &peerSender{t: t, id: to, q: make(chan []byte, peerQueueMax)}
		t.peers[to] = p
		t.wg.Add(1)
		go p.run()
	}
	t.mu.Unlock()
	select {
	case p.q <- payload:
	default:
		t.dropped.Add(1)
	}
}

// serve runs the accept loop until the listener is closed.
func (t *transport) serve() {
	defer t.wg.Done()
	var backoff time.Duration
	for {
		c, err := t.ln.Accept()
		if err != nil {
			if t.isClosed() || errors.Is(err, net.ErrClosed) {
				return
			}
			backoff = min(max(2*backoff, peerDialBackoffMin), peerDialBackoffMax)
			t.logf("runtime: peer accept: %v; retrying in %v", err, backoff)
			if !t.sleep(backoff) {
				return
			}
			continue
		}
		backoff = 0
		t.mu.Lock()
		if t.closed {
			t.mu.Unlock()
			c.Close()
			return
		}
		t.conns[c] = struct{}{}
		t.wg.Add(1)
		t.mu.Unlock()
		go t.readConn(c)
	}
}

// readConn reads frames from one accepted connection until it fails.
// A TLS connection first completes its handshake, within
// peerDialTimeout: one that fails (no certificate, one not from the
// cluster's CA, not TLS at all, silence) is closed with one log line
// naming the remote address, and nothing it sent is read as a frame.
func (t *transport) readConn(c net.Conn) {
	defer t.wg.Done()
	defer func() {
		t.mu.Lock()
		delete(t.conns, c)
		t.mu.Unlock()
		c.Close()
	}()
	if tc, ok := c.(*tls.Conn); ok {
		tc.SetDeadline(time.Now().Add(peerDialTimeout))
		if err := tc.Handshake(); err != nil {
			t.refused.Add(1)
			if !t.isClosed() && !errors.Is(err, net.ErrClosed) && !errors.Is(err, io.EOF) {
				t.logf("runtime: peer connection from %s: refused: %v", c.RemoteAddr(), err)
			}
			return
		}
		tc.SetDeadline(time.Time{})
	}
	r := bufio.NewReaderSize(c, peerBufferBytes)
	for {
		payload, err := readFrame(r, frameBytesMax)
		if err != nil {
			if !t.isClosed() && !errors.Is(err, net.ErrClosed) && !errors.Is(err, io.EOF) {
				t.logf("runtime: peer connection from %s: %v", c.RemoteAddr(), err)
			}
			return
		}
		t.received.Add(1)
		t.deliver(payload)
	}
}

func (t *transport) isClosed() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.closed
}

// sleep waits d, or returns false early when the transport closes.
func (t *transport) sleep(d time.Duration) bool {
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
		return true
	case <-t.quit:
		return false
	}
}

// close stops accepting, closes every connection and waits for every
// goroutine of the transport to end. Queued payloads are dropped.
func (t *transport) close() error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil
	}
	t.closed = true
	close(t.quit)
	t.cancel()
	err := t.ln.Close()
	for c := range t.conns {
		c.Close()
	}
	for _, p := range t.peers {
		p.closeConn()
	}
	t.mu.Unlock()
	t.wg.Wait()
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}

// peerSender owns the outgoing connection to one peer.
type peerSender struct {
	t  *transport
	id int32
	q  chan []byte

	mu   sync.Mutex
	conn net.Conn
}

func (p *peerSender) setConn(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.t.isClosed() {
		return false
	}
	p.conn = c
	return true
}

func (p *peerSender) closeConn() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conn != nil {
		p.conn.Close()
		p.conn = nil
	}
}

// run dials the peer, then writes queued payloads, flushing whenever the
// queue runs dry. After a failure it drops what is queued (raft resends
// fresher messages) and redials, with backoff after a failed dial or a
// connection that failed within peerDialBackoffMax of being made (with
// TLS 1.3 a peer refuses our certificate after our side of the
// handshake is done, so the refusal shows as a failed write: it must
// not become a tight redial loop).
func (p *peerSender) run() {
	defer p.t.wg.Done()
	var backoff time.Duration
	var lastTLSErr string // the last handshake failure logged
	for {
		c, err := p.dial()
		if err != nil {
			if p.t.isClosed() {
				return
			}
			if errors.As(err, new(handshakeError)) && err.Error() != lastTLSErr {
				lastTLSErr = err.Error()
				p.t.logf("runtime: peer %d: %v; redialling with backoff", p.id, err)
			}
			p.dropQueued()
			backoff = min(max(2*backoff, peerDialBackoffMin), peerDialBackoffMax)
			if !p.t.sleep(backoff) {
				return
			}
			continue
		}
		if !p.setConn(c) {
			c.Close()
			return
		}
		lastTLSErr = ""
		connected := time.Now()
		err = p.write(c)
		p.closeConn()
		if p.t.isClosed() {
			return
		}
		p.t.logf("runtime: peer %d: %v; redialling", p.id, err)
		p.dropQueued()
		if time.Since(connected) >= peerDialBackoffMax {
			backoff = 0
			continue
		}
		backoff = min(max(2*backoff, peerDialBackoffMin), peerDialBackoffMax)
		if !p.t.sleep(backoff) {
			return
		}
	}
}

// handshakeError is a dial whose TCP connection was made and whose TLS
// handshake failed.
type handshakeError struct{ err error }

func (e handshakeError) Error() string { return "TLS handshake: " + e.err.Error() }
func (e handshakeError) Unwrap() error { return e.err }

// dial connects to the peer, and with clientTLS completes the TLS
// handshake, verifying the peer's certificate against the host of its
// address; all within peerDialTimeout, and ended early by close.
func (p *peerSender) dial() (net.Conn, error) {
	addr := p.t.addr(p.id)
	if addr == "" {
		return nil, errors.New("runtime: no address")
	}
	ctx, cancel := context.WithTimeout(p.t.ctx, peerDialTimeout)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil || p.t.clientTLS == nil {
		return c, err
	}
	cfg := p.t.clientTLS
	if cfg.ServerName == "" {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			c.Close()
			return nil, err
		}
		cfg = cfg.Clone()
		cfg.ServerName = host
	}
	tc := tls.Client(c, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		c.Close()
		return nil, handshakeError{err}
	}
	return tc, nil
}

// write sends queued payloads on c until a write fails or the transport
// closes.
func (p *peerSender) write(c net.Conn) error {
	w := bufio.NewWriterSize(c, peerBufferBytes)
	var hdr [frameHeaderBytes]byte
	for {
		var payload []byte
		select {
		case payload = <-p.q:
		default:
			if w.Buffered() > 0 {
				c.SetWriteDeadline(time.Now().Add(peerWriteTimeout))
				if err := w.Flush(); err != nil {
					return err
				}
			}
			select {
			case payload = <-p.q:
			case <-p.t.quit:
				return net.ErrClosed
			}
		}
		if len(payload) > frameBytesMax {
			p.t.logf("runtime: peer %d: dropping a %d byte payload above the %d byte frame limit", p.id, len(payload), frameBytesMax)
			p.t.dropped.Add(1)
			continue
		}
		c.SetWriteDeadline(time.Now().Add(peerWriteTimeout))
		binary.BigEndian.PutUint32(hdr[:], uint32(len(payload)))
		if _, err := w.Write(hdr[:]); err != nil {
			return err
		}
		if _, err := w.Write(payload); err != nil {
			return err
		}
		p.t.sent.Add(1)
	}
}

func (p *peerSender) dropQueued() {
	for {
		select {
		case <-p.q:
			p.t.dropped.Add(1)
		default:
			return
		}
	}
}
