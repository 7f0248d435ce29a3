// These tests drive netwire with a real franz-go client (kgo). kgo needs
// github.com/klauspost/compress and github.com/pierrec/lz4/v4, which the
// root go.mod does not list yet, hence the build tag. Until it does, run
// them with a private copy of the module file:
//
//	cp go.mod /tmp/nw.mod && cp go.sum /tmp/nw.sum
//	go get -modfile=/tmp/nw.mod github.com/twmb/franz-go@v1.22.3
//	go test -modfile=/tmp/nw.mod -tags kgo ./netwire/

package netwire

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// seen records what the handler saw, for assertions.
type seen struct {
	mu       sync.Mutex
	versions map[int16][]int16  // key -> versions
	conns    map[int16][]uint64 // key -> connection ids
	clients  map[string]bool
}

func (s *seen) note(c *ConnInfo, req kmsg.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.versions == nil {
		s.versions, s.conns, s.clients = map[int16][]int16{}, map[int16][]uint64{}, map[string]bool{}
	}
	s.versions[req.Key()] = append(s.versions[req.Key()], req.GetVersion())
	s.conns[req.Key()] = append(s.conns[req.Key()], c.ID)
	s.clients[c.ClientID] = true
}

func newKgo(t *testing.T, s *Server, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	opts = append([]kgo.Opt{
		kgo.SeedBrokers(s.Addr().String()),
		kgo.ClientID("netwire-kgo-test"),
		kgo.DisableIdempotentWrite(),
		kgo.RequestRetries(0),
	}, opts...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func kgoCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	t.Cleanup(cancel)
	return ctx
}

// TestKgoNegotiatesAndProduces: kgo negotiates versions through our
// ApiVersions, reads Metadata and produces with acks=all; the handler sees
// the highest version both sides speak. With ApiVersions capped at v2, kgo
// takes the KIP-511 fallback and still connects.
func TestKgoNegotiatesAndProduces(t *testing.T) {
	for _, apiVersionsMax := range []int16{4, 2} {
		t.Run(fmt.Sprintf("ApiVersions max v%d", apiVersionsMax), func(t *testing.T) {
			versions := []Version{
				{Key: 3, Min: 0, Max: 11}, // Metadata capped below kgo's max
				{Key: 0, Min: 3, Max: 10},
				{Key: 18, Min: 0, Max: apiVersionsMax},
			}
			st, sn := &stub{}, &seen{}
			s, _ := startServer(t, Config{Versions: versions}, handlerFunc(func(c *ConnInfo, req kmsg.Request, respond func(kmsg.Response)) {
				sn.note(c, req)
				respond(st.answer(c, req))
			}))
			st.setAddr(s.Addr())
			cl := newKgo(t, s)
			ctx := kgoCtx(t)
			if err := cl.Ping(ctx); err != nil {
				t.Fatalf("Ping: %v", err)
			}
			for i := range 3 {
				r := cl.ProduceSync(ctx, &kgo.Record{Topic: "t", Value: []byte("v")})
				if err := r.FirstErr(); err != nil {
					t.Fatalf("produce %d: %v", i, err)
				}
				if off := r[0].Record.Offset; off != int64(i) {
					t.Fatalf("produce %d: offset %d", i, off)
				}
			}
			sn.mu.Lock()
			defer sn.mu.Unlock()
			for _, v := range sn.versions[3] {
				if v != 11 {
					t.Fatalf("Metadata versions %v, want all v11", sn.versions[3])
				}
			}
			for _, v := range sn.versions[0] {
				if v != 10 {
					t.Fatalf("Produce versions %v, want all v10", sn.versions[0])
				}
			}
			if len(sn.versions[0]) != 3 || !sn.clients["netwire-kgo-test"] {
				t.Fatalf("produce calls %d, client ids %v", len(sn.versions[0]), sn.clients)
			}
		})
	}
}

// TestKgoPipelined: many concurrent kgo requests on one connection, the
// handler answering later requests sooner (earlier ones wait longer);
// every caller gets its own answer (kgo checks correlation ids in order).
func TestKgoPipelined(t *testing.T) {
	const n = 50
	st, sn := &stub{}, &seen{}
	s, _ := startServer(t, Config{}, handlerFunc(func(c *ConnInfo, req kmsg.Request, respond func(kmsg.Response)) {
		sn.note(c, req)
		resp := st.answer(c, req)
		m, ok := req.(*kmsg.MetadataRequest)
		if !ok || len(m.Topics) == 0 {
			respond(resp)
			return
		}
		var i int
		fmt.Sscanf(*m.Topics[0].Topic, "p%d", &i)
		if i%2 == 0 {
			respond(resp)
			return
		}
		time.AfterFunc(time.Duration(n-i)*time.Millisecond, func() { respond(resp) })
	}))
	st.setAddr(s.Addr())
	cl := newKgo(t, s)
	ctx := kgoCtx(t)
	seed := cl.SeedBrokers()[0]
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			name := fmt.Sprintf("p%d", i)
			resp, err := seed.Request(ctx, metadataReq(12, name))
			if err != nil {
				errs <- err
				return
			}
			if got := *resp.(*kmsg.MetadataResponse).Topics[0].Topic; got != name {
				errs <- fmt.Errorf("asked %s, answered %s", name, got)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	sn.mu.Lock()
	defer sn.mu.Unlock()
	ids := map[uint64]bool{}
	for _, id := range sn.conns[3] {
		ids[id] = true
	}
	t.Logf("%d metadata requests over %d connection(s)", len(sn.conns[3]), len(ids))
}

// TestKgoAcksZero: kgo producing with acks=0 gets no responses and keeps
// using the same connection; the client keeps working afterwards.
func TestKgoAcksZero(t *testing.T) {
	st, sn := &stub{}, &seen{}
	s, logs := startServer(t, Config{}, handlerFunc(func(c *ConnInfo, req kmsg.Request, respond func(kmsg.Response)) {
		sn.note(c, req)
		respond(st.answer(c, req))
	}))
	st.setAddr(s.Addr())
	cl := newKgo(t, s, kgo.RequiredAcks(kgo.NoAck()))
	ctx := kgoCtx(t)
	const n = 5
	for i := range n {
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "t", Value: []byte("v")}).FirstErr(); err != nil {
			t.Fatalf("produce %d: %v", i, err)
		}
	}
	waitFor(t, "all acks=0 produce requests", func() bool {
		sn.mu.Lock()
		defer sn.mu.Unlock()
		return len(sn.conns[0]) == n
	})
	if err := cl.Ping(ctx); err != nil {
		t.Fatalf("Ping after acks=0: %v", err)
	}
	sn.mu.Lock()
	defer sn.mu.Unlock()
	for _, id := range sn.conns[0] {
		if id != sn.conns[0][0] {
			t.Fatalf("acks=0 produce over connections %v, want one", sn.conns[0])
		}
	}
	logs.mu.Lock()
	defer logs.mu.Unlock()
	if len(logs.lines) != 0 {
		t.Fatalf("unexpected log lines: %q", logs.lines)
	}
}
