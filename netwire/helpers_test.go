package netwire

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// waitLimit bounds every wait in these tests; it is a hang guard, never an
// assertion on how long something took.
const waitLimit = 10 * time.Second

// testVersions is the table the tests serve.
var testVersions = []Version{
	{Key: 3, Min: 0, Max: 13}, // Metadata
	{Key: 0, Min: 3, Max: 13}, // Produce
	{Key: 18, Min: 0, Max: 4}, // ApiVersions
}

// handlerFunc adapts a function to Handler.
type handlerFunc func(c *ConnInfo, req kmsg.Request, respond func(kmsg.Response))

func (f handlerFunc) Handle(c *ConnInfo, req kmsg.Request, respond func(kmsg.Response)) {
	f(c, req, respond)
}

// stubAnswer answers Metadata (one broker, node 0, at addr; topics as asked,
// each with one partition led by node 0; with no topics asked, topic "t")
// and Produce (acks=0: no response; otherwise base offset = a running count
// per server). Anything else panics, which closes the connection.
type stub struct {
	mu     sync.Mutex
	addr   net.Addr
	offset int64
}

func (s *stub) setAddr(a net.Addr) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.addr = a
}

func (s *stub) answer(c *ConnInfo, req kmsg.Request) kmsg.Response {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch req := req.(type) {
	case *kmsg.MetadataRequest:
		resp := req.ResponseKind().(*kmsg.MetadataResponse)
		host, port := hostPort(s.addr)
		b := kmsg.NewMetadataResponseBroker()
		b.NodeID, b.Host, b.Port = 0, host, port
		resp.Brokers = append(resp.Brokers, b)
		resp.ControllerID = 0
		names := []string{"t"}
		if req.Topics != nil {
			names = names[:0]
			for _, t := range req.Topics {
				if t.Topic != nil {
					names = append(names, *t.Topic)
				}
			}
		}
		for _, name := range names {
			t := kmsg.NewMetadataResponseTopic()
			t.Topic = kmsg.StringPtr(name)
			t.TopicID = [16]byte{1}
			p := kmsg.NewMetadataResponseTopicPartition()
			p.Partition, p.Leader, p.Replicas, p.ISR = 0, 0, []int32{0}, []int32{0}
			t.Partitions = append(t.Partitions, p)
			resp.Topics = append(resp.Topics, t)
		}
		return resp
	case *kmsg.ProduceRequest:
		if req.Acks == 0 {
			return nil
		}
		resp := req.ResponseKind().(*kmsg.ProduceResponse)
		for _, rt := range req.Topics {
			t := kmsg.NewProduceResponseTopic()
			t.Topic, t.TopicID = rt.Topic, rt.TopicID
			for _, rp := range rt.Partitions {
				p := kmsg.NewProduceResponseTopicPartition()
				p.Partition = rp.Partition
				p.BaseOffset = s.offset
				s.offset++
				t.Partitions = append(t.Partitions, p)
			}
			resp.Topics = append(resp.Topics, t)
		}
		return resp
	}
	panic(fmt.Sprintf("stub: unexpected %T", req))
}

func hostPort(a net.Addr) (string, int32) {
	ta := a.(*net.TCPAddr)
	return ta.IP.String(), int32(ta.Port)
}

// logBuf collects log lines.
type logBuf struct {
	mu    sync.Mutex
	lines []string
}

func (l *logBuf) logf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, fmt.Sprintf(format, args...))
}

// waitLine waits for a line containing sub and returns it.
func (l *logBuf) waitLine(t testing.TB, sub string) string {
	t.Helper()
	var line string
	waitFor(t, "log line containing "+sub, func() bool {
		l.mu.Lock()
		defer l.mu.Unlock()
		for _, s := range l.lines {
			if strings.Contains(s, sub) {
				line = s
				return true
			}
		}
		return false
	})
	return line
}

func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// startServer serves h on 127.0.0.1:0 and closes the server at cleanup.
func startServer(t testing.TB, cfg Config, h Handler) (*Server, *logBuf) {
	t.Helper()
	logs := &logBuf{}
	if cfg.Versions == nil {
		cfg.Versions = testVersions
	}
	cfg.Logf = logs.logf
	s := NewServer(cfg, h)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()
	waitFor(t, "Serve", func() bool { return s.Addr() != nil })
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		if err := <-served; err != ErrServerClosed {
			t.Errorf("Serve returned %v, want ErrServerClosed", err)
		}
	})
	return s, logs
}

// stubServer serves the stub handler.
func stubServer(t testing.TB, cfg Config) (*Server, *logBuf) {
	st := &stub{}
	s, logs := startServer(t, cfg, handlerFunc(func(c *ConnInfo, req kmsg.Request, respond func(kmsg.Response)) {
		respond(st.answer(c, req))
	}))
	st.setAddr(s.Addr())
	return s, logs
}

// rawClient speaks the protocol by hand over one TCP connection: kmsg's
// RequestFormatter encodes requests, recv decodes responses with kmsg.
type rawClient struct {
	t    testing.TB
	nc   net.Conn
	br   *bufio.Reader
	f    *kmsg.RequestFormatter
	corr int32
}

func dial(t testing.TB, s *Server) *rawClient {
	t.Helper()
	nc, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(waitLimit))
	return &rawClient{t: t, nc: nc, br: bufio.NewReader(nc), f: kmsg.NewRequestFormatter(kmsg.FormatterClientID("raw-test"))}
}

// send writes req with the next correlation id and returns that id.
func (rc *rawClient) send(req kmsg.Request) int32 {
	rc.t.Helper()
	rc.corr++
	if _, err := rc.nc.Write(rc.f.AppendRequest(nil, req, rc.corr)); err != nil {
		rc.t.Fatalf("send: %v", err)
	}
	return rc.corr
}

// writeRaw writes bytes as they are.
func (rc *rawClient) writeRaw(b []byte) {
	rc.t.Helper()
	if _, err := rc.nc.Write(b); err != nil {
		rc.t.Fatalf("write: %v", err)
	}
}

// recv reads one response frame into resp (whose version must be set) and
// returns its correlation id.
func (rc *rawClient) recv(resp kmsg.Response) int32 {
	rc.t.Helper()
	corr, err := rc.tryRecv(resp)
	if err != nil {
		rc.t.Fatalf("recv %T: %v", resp, err)
	}
	return corr
}

func (rc *rawClient) tryRecv(resp kmsg.Response) (int32, error) {
	var size [4]byte
	if _, err := io.ReadFull(rc.br, size[:]); err != nil {
		return 0, err
	}
	frame := make([]byte, binary.BigEndian.Uint32(size[:]))
	if _, err := io.ReadFull(rc.br, frame); err != nil {
		return 0, err
	}
	b := kbin.Reader{Src: frame}
	corr := b.Int32()
	if resp.IsFlexible() && resp.Key() != apiVersionsKey {
		kmsg.SkipTags(&b)
	}
	if err := resp.ReadFrom(b.Src); err != nil {
		return corr, err
	}
	return corr, nil
}

// expectClosed reads until the server closes the connection; it fails if
// a response arrives instead.
func (rc *rawClient) expectClosed() {
	rc.t.Helper()
	var b [1]byte
	n, err := rc.br.Read(b[:])
	if err == nil || n > 0 {
		rc.t.Fatalf("connection still open: read %d bytes", n)
	}
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		rc.t.Fatalf("connection not closed within %v", waitLimit)
	}
}

func metadataReq(version int16, topics ...string) *kmsg.MetadataRequest {
	req := kmsg.NewPtrMetadataRequest()
	req.Version = version
	for _, name := range topics {
		t := kmsg.NewMetadataRequestTopic()
		t.Topic = kmsg.StringPtr(name)
		req.Topics = append(req.Topics, t)
	}
	return req
}

func metadataResp(version int16) *kmsg.MetadataResponse {
	resp := kmsg.NewPtrMetadataResponse()
	resp.Version = version
	return resp
}

// roundTrip sends a Metadata request for one topic and checks the answer.
func (rc *rawClient) roundTrip(version int16, topic string) {
	rc.t.Helper()
	corr := rc.send(metadataReq(version, topic))
	resp := metadataResp(version)
	if got := rc.recv(resp); got != corr {
		rc.t.Fatalf("correlation id %d, want %d", got, corr)
	}
	if len(resp.Topics) != 1 || *resp.Topics[0].Topic != topic {
		rc.t.Fatalf("metadata topics %+v, want [%s]", resp.Topics, topic)
	}
}

func produceReq(version int16, acks int16, topic string) *kmsg.ProduceRequest {
	req := kmsg.NewPtrProduceRequest()
	req.Version = version
	req.Acks = acks
	req.TimeoutMillis = 1000
	t := kmsg.NewProduceRequestTopic()
	t.Topic = topic
	p := kmsg.NewProduceRequestTopicPartition()
	p.Records = []byte{} // an empty record set is enough for netwire
	t.Partitions = append(t.Partitions, p)
	req.Topics = append(req.Topics, t)
	return req
}
