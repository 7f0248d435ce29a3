package netwire

import (
	"bufio"
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
	nc     net.Conn

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
		rq, err := readRequest(br, c.s.cfg.MaxFrameBytes, &c.s.table)
		if err != nil {
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
			c.close()
			return
		}
		sl := &slot{corr: rq.corr, key: rq.key, version: rq.version, done: make(chan struct{})}
		c.slots <- sl // never blocks: slots has room for every token
		if rq.key == apiVersionsKey {
			resp := c.s.table.answerApiVersions(rq)
			sl.version = resp.Version
			sl.resp = resp
			sl.answered.Store(true)
			close(sl.done)
			continue
		}
		if !c.handle(rq, sl) {
			c.close()
			return
		}
	}
}

// handle calls the Handler, turning a panic into false.
func (c *conn) handle(rq request, sl *slot) (ok bool) {
	defer func() {
		if r := recover(); r != nil {
			c.logf("closing: handler panic on %s v%d: %v\n%s", kmsg.NameForKey(rq.key), rq.version, r, debug.Stack())
			ok = false
		}
	}()
	info := &ConnInfo{ID: c.id, Remote: c.remote, ClientID: rq.clientID}
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
		if sl.resp != nil {
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
