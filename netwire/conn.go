package netwire

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// conn is one client connection: a reader goroutine that decodes requests
// and calls the Handler, and a writer goroutine that writes responses in
// request order.
//
// Ordering: the reader pushes one slot per request onto slots in arrival
// order; the writer pops them in the same order and waits for each slot's
// response, so a response answered early waits for those before it.
// Backpressure: the reader takes a token before reading each frame and the
// writer returns it once that request's response is encoded (or skipped),
// so at most MaxInFlightPerConn requests are unanswered at once.
type conn struct {
	s      *Server
	id     uint64
	remote string
	nc     net.Conn // a *tls.Conn on SSL and SASL_SSL listeners
	l      *Listener

	// Owned by the reader goroutine: where the SASL exchange stands
	// (sasl.go) and who the connection is (ConnInfo.Principal).
	sasl      saslState
	mech      string
	exchange  saslExchange
	principal string

	slots  chan *slot
	tokens chan struct{}

	closeOnce sync.Once
	quit      chan struct{} // closed by close: both goroutines end

	drainOnce sync.Once
	drain     chan struct{} // closed by stopReading (Shutdown)
}

// slot is the place of one request's response in the connection's order.
type slot struct {
	corr    int32
	key     int16
	version int16

	answered atomic.Bool
	done     chan struct{} // closed once resp is set
	resp     kmsg.Response // nil: send nothing
	// raw, when not nil, is a raw SASL token to send instead (after
	// SaslHandshake v0): a 4-byte size and the bytes, no header.
	raw []byte
}

// answer fills sl from the reader goroutine itself.
func (sl *slot) answer(resp kmsg.Response) {
	sl.resp = resp
	sl.answered.Store(true)
	close(sl.done)
}

func (c *conn) logf(format string, args ...any) {
	c.s.cfg.Logf("netwire: conn %d from %s: "+format, append([]any{c.id, c.remote}, args...)...)
}

// close ends the connection at once; pending responses are dropped.
func (c *conn) close() {
	c.closeOnce.Do(func() {
		close(c.quit)
		c.nc.Close()
	})
}

// stopReading makes the reader stop at the next frame boundary (or abandon
// a partly read frame); the writer then finishes the responses already
// owed and closes the connection.
func (c *conn) stopReading() {
	c.drainOnce.Do(func() {
		close(c.drain)
		c.nc.SetReadDeadline(time.Now())
	})
}

func (c *conn) draining() bool {
	select {
	case <-c.drain:
		return true
	default:
		return false
	}
}

func (c *conn) readLoop() {
	defer c.s.wg.Done()
	defer close(c.slots)
	if !c.handshake() {
		c.close()
		return
	}
	br := bufio.NewReaderSize(c.nc, readBufferBytes)
	for {
		select {
		case c.tokens <- struct{}{}:
		case <-c.quit:
			return
		case <-c.drain:
			return
		}
		if c.draining() { // a frame may already sit in br; leave it
			return
		}
		if c.sasl == saslRawTokens {
			if !c.rawToken(br) {
				if !c.draining() {
					c.close()
				}
				return
			}
			continue
		}
		maxFrame := c.s.cfg.MaxFrameBytes
		if c.sasl != saslDone {
			maxFrame = min(maxFrame, saslFrameBytesMax)
		}
		rq, err := readRequest(br, maxFrame, &c.s.table)
		if err != nil {
			if c.draining() {
				return // the writer finishes what is owed
			}
			c.readFailed(err)
			c.close()
			return
		}
		sl := &slot{corr: rq.corr, key: rq.key, version: rq.version, done: make(chan struct{})}
		c.slots <- sl // never blocks: slots has room for every token
		switch {
		case rq.key == apiVersionsKey:
			resp := c.s.table.answerApiVersions(rq)
			sl.version = resp.Version
			sl.answer(resp)
			continue
		case rq.key == saslHandshakeKey || rq.key == saslAuthenticateKey:
			a := c.saslRequest(rq)
			sl.answer(a.resp)
			if a.close {
				return // the writer sends the answer, then closes
			}
			continue
		case c.sasl != saslDone:
			c.logf("closing: %s before authentication", kmsg.NameForKey(rq.key))
			c.close()
			return
		}
		if !c.handle(rq, sl) {
			c.close()
			return
		}
	}
}

// readFailed logs why reading a frame failed, unless the connection was
// closed or is draining (nothing to report) or the client just left.
func (c *conn) readFailed(err error) {
	if c.draining() {
		return
	}
	select {
	case <-c.quit: // closed by us: nothing to report
	default:
		if !errors.Is(err, io.EOF) {
			c.logf("closing: %v", err)
		}
	}
}

// handshake runs the TLS handshake of an SSL or SASL_SSL connection,
// bounded by tlsHandshakeTimeout, and sets the connection's starting
// principal and SASL state. False: the connection must close.
func (c *conn) handshake() bool {
	c.principal = anonymous
	if c.l.Protocol.SASL() {
		c.sasl = saslNeedHandshake
	} else {
		c.sasl = saslDone
	}
	tc, ok := c.nc.(*tls.Conn)
	if !ok {
		return true
	}
	ctx, cancel := context.WithTimeout(context.Background(), tlsHandshakeTimeout)
	defer cancel()
	if err := tc.HandshakeContext(ctx); err != nil {
		c.readFailed(fmt.Errorf("TLS handshake: %w", err))
		return false
	}
	if !c.l.Protocol.SASL() {
		c.principal = certPrincipal(tc.ConnectionState())
	}
	return true
}

// rawToken reads one raw SASL token (after SaslHandshake v0) and queues
// the answer; false: the exchange failed or the client left, close.
func (c *conn) rawToken(br *bufio.Reader) bool {
	tok, err := readFrame(br, saslFrameBytesMax)
	if err != nil {
		c.readFailed(err)
		return false
	}
	out, err := c.saslStep(tok)
	if err != nil {
		return false // Kafka closes without an answer here
	}
	sl := &slot{key: -1, done: make(chan struct{}), raw: out}
	if sl.raw == nil {
		sl.raw = []byte{}
	}
	c.slots <- sl
	sl.answer(nil)
	return true
}

// handle calls the Handler, turning a panic into false.
func (c *conn) handle(rq request, sl *slot) (ok bool) {
	defer func() {
		if r := recover(); r != nil {
			c.logf("closing: handler panic on %s v%d: %v\n%s", kmsg.NameForKey(rq.key), rq.version, r, debug.Stack())
			ok = false
		}
	}()
	info := &ConnInfo{ID: c.id, Remote: c.remote, ClientID: rq.clientID, Listener: c.l.Name, Principal: c.principal}
	c.s.h.Handle(info, rq.kreq, func(resp kmsg.Response) {
		if !sl.answered.CompareAndSwap(false, true) {
			c.logf("respond called twice for %s correlation id %d; ignored", kmsg.NameForKey(sl.key), sl.corr)
			return
		}
		sl.resp = resp
		close(sl.done)
	})
	return true
}

func (c *conn) writeLoop() {
	defer c.s.wg.Done()
	defer c.s.removeConn(c)
	defer c.close()
	var buf []byte
	flush := func() bool {
		if len(buf) == 0 {
			return true
		}
		_, err := c.nc.Write(buf)
		if err != nil {
			select {
			case <-c.quit:
			default:
				c.logf("closing: write: %v", err)
			}
			return false
		}
		if cap(buf) > writeBufferKeepBytes {
			buf = nil
		} else {
			buf = buf[:0]
		}
		return true
	}
	for {
		// Take the next slot, writing what is gathered before waiting.
		var sl *slot
		var ok bool
		select {
		case sl, ok = <-c.slots:
		default:
			if !flush() {
				return
			}
			select {
			case sl, ok = <-c.slots:
			case <-c.quit:
				return
			}
		}
		if !ok { // reader ended while draining: all owed responses are out
			flush()
			return
		}
		// Wait for its response, likewise.
		select {
		case <-sl.done:
		default:
			if !flush() {
				return
			}
			select {
			case <-sl.done:
			case <-c.quit:
				return
			}
		}
		if sl.raw != nil {
			buf = binary.BigEndian.AppendUint32(buf, uint32(len(sl.raw)))
			buf = append(buf, sl.raw...)
		} else if sl.resp != nil {
			var err error
			if buf, err = encodeResponse(buf, sl); err != nil {
				c.logf("closing: %v", err)
				return
			}
		}
		<-c.tokens
		if len(buf) >= writeFlushBytes && !flush() {
			return
		}
	}
}

// encodeResponse appends sl's response frame to buf, checking that the
// Handler answered with the request's key and turning an encoding panic
// (a malformed response) into an error.
func encodeResponse(buf []byte, sl *slot) (out []byte, err error) {
	if k := sl.resp.Key(); k != sl.key {
		return buf, fmt.Errorf("handler answered %s to %s (correlation id %d)", kmsg.NameForKey(k), kmsg.NameForKey(sl.key), sl.corr)
	}
	defer func() {
		if r := recover(); r != nil {
			out, err = buf, fmt.Errorf("encoding %s v%d response panicked: %v", kmsg.NameForKey(sl.key), sl.version, r)
		}
	}()
	sl.resp.SetVersion(sl.version)
	return appendResponse(buf, sl.corr, sl.resp), nil
}
