package netwire

import (
	"context"
	"encoding/binary"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestApiVersionsAnswersTable(t *testing.T) {
	s, _ := stubServer(t, Config{})
	rc := dial(t, s)
	for v := int16(0); v <= 4; v++ {
		req := kmsg.NewPtrApiVersionsRequest()
		req.Version = v
		req.ClientSoftwareName, req.ClientSoftwareVersion = "gregor-test", "1.0"
		corr := rc.send(req)
		resp := kmsg.NewPtrApiVersionsResponse()
		resp.Version = v
		if got := rc.recv(resp); got != corr {
			t.Fatalf("v%d: correlation id %d, want %d", v, got, corr)
		}
		if resp.ErrorCode != 0 {
			t.Fatalf("v%d: error code %d", v, resp.ErrorCode)
		}
		want := []kmsg.ApiVersionsResponseApiKey{{ApiKey: 0, MinVersion: 3, MaxVersion: 13}, {ApiKey: 3, MinVersion: 0, MaxVersion: 13}, {ApiKey: 18, MinVersion: 0, MaxVersion: 4}}
		if !slices.EqualFunc(resp.ApiKeys, want, func(a, b kmsg.ApiVersionsResponseApiKey) bool {
			return a.ApiKey == b.ApiKey && a.MinVersion == b.MinVersion && a.MaxVersion == b.MaxVersion
		}) {
			t.Fatalf("v%d: keys %+v, want %+v", v, resp.ApiKeys, want)
		}
	}
}

// TestApiVersionsFeatures: v3+ lists Config.Features as supported, and
// those finalized at a level above 0 as finalized, with epoch 1; v2 none.
func TestApiVersionsFeatures(t *testing.T) {
	s, _ := stubServer(t, Config{Features: []Feature{{Name: "transaction.version", Max: 2, Level: 2}, {Name: "other", Max: 1}}})
	rc := dial(t, s)
	for _, v := range []int16{2, 3} {
		req := kmsg.NewPtrApiVersionsRequest()
		req.Version = v
		req.ClientSoftwareName, req.ClientSoftwareVersion = "gregor-test", "1.0"
		rc.send(req)
		resp := kmsg.NewPtrApiVersionsResponse()
		resp.Version = v
		rc.recv(resp)
		got := "supported"
		for _, f := range resp.SupportedFeatures {
			got += fmt.Sprintf(" %s %d-%d", f.Name, f.MinVersion, f.MaxVersion)
		}
		got += ", finalized"
		for _, f := range resp.FinalizedFeatures {
			got += fmt.Sprintf(" %s %d-%d", f.Name, f.MinVersionLevel, f.MaxVersionLevel)
		}
		got += fmt.Sprintf(", epoch %d", resp.FinalizedFeaturesEpoch)
		want := "supported, finalized, epoch -1"
		if v >= 3 {
			want = "supported transaction.version 0-2 other 0-1, finalized transaction.version 2-2, epoch 1"
		}
		if got != want {
			t.Fatalf("v%d: %s\nwant %s", v, got, want)
		}
	}
}

func TestApiVersionsInvalidSoftwareName(t *testing.T) {
	s, _ := stubServer(t, Config{})
	rc := dial(t, s)
	req := kmsg.NewPtrApiVersionsRequest()
	req.Version = 3
	req.ClientSoftwareName, req.ClientSoftwareVersion = "-bad name", "1"
	rc.send(req)
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.Version = 3
	rc.recv(resp)
	if resp.ErrorCode != kerr.InvalidRequest.Code || len(resp.ApiKeys) != 0 {
		t.Fatalf("error %d keys %d, want INVALID_REQUEST and none", resp.ErrorCode, len(resp.ApiKeys))
	}
	rc.roundTrip(12, "still-open")
}

// TestApiVersionsFallback: a client asking ApiVersions at a version above
// ours gets a v0 body with UNSUPPORTED_VERSION listing our keys (KIP-511),
// even when the body is not decodable, and the connection stays usable.
func TestApiVersionsFallback(t *testing.T) {
	s, _ := stubServer(t, Config{})
	for _, tc := range []struct {
		name string
		v    int16
		body []byte // nil: kmsg encodes the request
	}{
		{"v5 known to kmsg", 5, nil},
		{"v9 undecodable body", 9, []byte{0xff, 0xfe, 0xfd}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rc := dial(t, s)
			if tc.body == nil {
				req := kmsg.NewPtrApiVersionsRequest()
				req.Version = tc.v
				req.ClientSoftwareName, req.ClientSoftwareVersion = "x", "1"
				rc.send(req)
			} else {
				// Header v2 by hand: key, version, corr, client id, no tags.
				frame := binary.BigEndian.AppendUint16(nil, uint16(apiVersionsKey))
				frame = binary.BigEndian.AppendUint16(frame, uint16(tc.v))
				frame = binary.BigEndian.AppendUint32(frame, 1)
				frame = binary.BigEndian.AppendUint16(frame, 0xffff) // null client id
				frame = append(frame, 0)                             // no header tags
				frame = append(frame, tc.body...)
				rc.writeRaw(binary.BigEndian.AppendUint32(nil, uint32(len(frame))))
				rc.writeRaw(frame)
				rc.corr = 1
			}
			resp := kmsg.NewPtrApiVersionsResponse() // version 0
			if corr := rc.recv(resp); corr != 1 {
				t.Fatalf("correlation id %d, want 1", corr)
			}
			if resp.ErrorCode != kerr.UnsupportedVersion.Code {
				t.Fatalf("error code %d, want UNSUPPORTED_VERSION", resp.ErrorCode)
			}
			if len(resp.ApiKeys) != 3 || resp.ApiKeys[2].ApiKey != 18 || resp.ApiKeys[2].MaxVersion != 4 {
				t.Fatalf("keys %+v", resp.ApiKeys)
			}
			rc.roundTrip(12, "after-fallback")
		})
	}
}

// TestPipelinedOutOfOrder: the handler answers even requests at once and
// odd ones only after the last request arrived, in reverse order, from
// other goroutines; responses still come back in request order.
func TestPipelinedOutOfOrder(t *testing.T) {
	const n = 40
	st := &stub{}
	var mu sync.Mutex
	var held []func()
	s, _ := startServer(t, Config{}, handlerFunc(func(c *ConnInfo, req kmsg.Request, respond func(kmsg.Response)) {
		resp := st.answer(c, req)
		name := *req.(*kmsg.MetadataRequest).Topics[0].Topic
		var i int
		fmt.Sscanf(name, "t%d", &i)
		if i%2 == 0 {
			respond(resp)
			return
		}
		mu.Lock()
		held = append(held, func() { respond(resp) })
		release := i == n-1
		h := held
		mu.Unlock()
		if release {
			for j := len(h) - 1; j >= 0; j-- {
				go h[j]()
			}
		}
	}))
	st.setAddr(s.Addr())
	rc := dial(t, s)
	var buf []byte
	for i := range n {
		buf = append(buf, rc.f.AppendRequest(nil, metadataReq(12, fmt.Sprintf("t%d", i)), int32(i+1))...) // AppendRequest sizes from dst[0]
	}
	rc.writeRaw(buf) // all n requests before reading anything
	for i := range n {
		resp := metadataResp(12)
		if corr := rc.recv(resp); corr != int32(i+1) {
			t.Fatalf("response %d: correlation id %d", i, corr)
		}
		if got, want := *resp.Topics[0].Topic, fmt.Sprintf("t%d", i); got != want {
			t.Fatalf("response %d answers %s, want %s", i, got, want)
		}
	}
}

// TestAcksZeroNoResponse: Produce acks=0 gets no response bytes; the next
// request on the same connection is answered with its own correlation id.
func TestAcksZeroNoResponse(t *testing.T) {
	var mu sync.Mutex
	var connIDs []uint64
	st := &stub{}
	s, _ := startServer(t, Config{}, handlerFunc(func(c *ConnInfo, req kmsg.Request, respond func(kmsg.Response)) {
		mu.Lock()
		connIDs = append(connIDs, c.ID)
		mu.Unlock()
		respond(st.answer(c, req))
	}))
	st.setAddr(s.Addr())
	rc := dial(t, s)
	for range 3 {
		rc.send(produceReq(9, 0, "t"))
	}
	rc.roundTrip(12, "after-acks0")
	corr := rc.send(produceReq(9, 1, "t"))
	resp := kmsg.NewPtrProduceResponse()
	resp.Version = 9
	if got := rc.recv(resp); got != corr {
		t.Fatalf("produce acks=1: correlation id %d, want %d", got, corr)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(connIDs) != 5 || slices.Compact(slices.Clone(connIDs))[0] != connIDs[0] || len(slices.Compact(slices.Clone(connIDs))) != 1 {
		t.Fatalf("handler saw connection ids %v, want 5 times one id", connIDs)
	}
}

// TestBadFrameSizeClosesOnlyThatConn: a size prefix above MaxFrameBytes,
// or negative, closes that connection with a log line; another connection
// keeps working.
func TestBadFrameSizeClosesOnlyThatConn(t *testing.T) {
	const maxFrame = 1 << 10
	s, logs := stubServer(t, Config{MaxFrameBytes: maxFrame})
	good := dial(t, s)
	good.roundTrip(12, "before")
	for _, size := range []int32{maxFrame + 1, -1} {
		bad := dial(t, s)
		bad.roundTrip(12, "bad-before")
		bad.writeRaw(binary.BigEndian.AppendUint32(nil, uint32(size)))
		bad.expectClosed()
		logs.waitLine(t, fmt.Sprintf("frame size out of range: %d", size))
		good.roundTrip(12, "after")
	}
	// A frame of exactly MaxFrameBytes is accepted.
	req := metadataReq(12, "x")
	frame := good.f.AppendRequest(nil, req, 99)
	pad := maxFrame - (len(frame) - 4) - 1 // -1: the compact length grows a byte
	req.Topics[0].Topic = kmsg.StringPtr("x" + string(make([]byte, pad)))
	frame = good.f.AppendRequest(nil, req, 99)
	if got := len(frame) - 4; got != maxFrame {
		t.Fatalf("test frame is %d bytes, want %d", got, maxFrame)
	}
	good.writeRaw(frame)
	if corr := good.recv(metadataResp(12)); corr != 99 {
		t.Fatalf("correlation id %d, want 99", corr)
	}
}

// TestBadRequestsClose: undecodable bodies, truncated headers, unknown keys
// and versions outside the table each close the connection and log why.
func TestBadRequestsClose(t *testing.T) {
	s, logs := stubServer(t, Config{})
	header := func(key, version int16) []byte {
		b := binary.BigEndian.AppendUint16(nil, uint16(key))
		b = binary.BigEndian.AppendUint16(b, uint16(version))
		b = binary.BigEndian.AppendUint32(b, 7)
		return binary.BigEndian.AppendUint16(b, 0xffff) // null client id
	}
	encoded := func(req kmsg.Request) []byte {
		return kmsg.NewRequestFormatter().AppendRequest(nil, req, 7)[4:]
	}
	for _, tc := range []struct {
		name  string
		frame []byte
		log   string
	}{
		{"garbage body", append(header(3, 4), 0x7f, 0xff, 0xff, 0xff), "decode Metadata v4"},
		{"truncated header", []byte{0, 3, 0}, "request header truncated"},
		{"empty frame", nil, "request header truncated"},
		{"unknown key", header(1000, 0), "unsupported api key 1000"},
		{"key not in table", encoded(kmsg.NewPtrFindCoordinatorRequest()), "unsupported api key 10"},
		{"version above table", encoded(&kmsg.ProduceRequest{Version: 14}), "Produce v14 outside supported v3..v13"},
		{"version below table", encoded(&kmsg.ProduceRequest{Version: 2}), "Produce v2 outside supported v3..v13"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rc := dial(t, s)
			rc.roundTrip(12, "first")
			rc.writeRaw(binary.BigEndian.AppendUint32(nil, uint32(len(tc.frame))))
			rc.writeRaw(tc.frame)
			rc.expectClosed()
			logs.waitLine(t, tc.log)
		})
	}
}

// TestHandlerPanicClosesConn: a panicking Handler closes its connection
// only, and the panic is logged.
func TestHandlerPanicClosesConn(t *testing.T) {
	st := &stub{}
	s, logs := startServer(t, Config{}, handlerFunc(func(c *ConnInfo, req kmsg.Request, respond func(kmsg.Response)) {
		if m, ok := req.(*kmsg.MetadataRequest); ok && *m.Topics[0].Topic == "boom" {
			panic("boom")
		}
		respond(st.answer(c, req))
	}))
	st.setAddr(s.Addr())
	good, bad := dial(t, s), dial(t, s)
	bad.send(metadataReq(12, "boom"))
	bad.expectClosed()
	logs.waitLine(t, "handler panic on Metadata v12: boom")
	good.roundTrip(12, "fine")
}

// TestWrongResponseKeyClosesConn: answering Produce with a Metadata
// response is a Handler bug; netwire closes the connection and logs it.
func TestWrongResponseKeyClosesConn(t *testing.T) {
	s, logs := startServer(t, Config{}, handlerFunc(func(c *ConnInfo, req kmsg.Request, respond func(kmsg.Response)) {
		respond(kmsg.NewPtrMetadataResponse())
	}))
	rc := dial(t, s)
	rc.send(produceReq(9, 1, "t"))
	rc.expectClosed()
	logs.waitLine(t, "handler answered Metadata to Produce")
}

// TestMaxInFlightBackpressure: with a Handler that holds every response,
// netwire reads exactly MaxInFlightPerConn requests and no more; answering
// one lets exactly one more in; answering all drains the rest in order.
func TestMaxInFlightBackpressure(t *testing.T) {
	const limit, sent = 4, 10
	var mu sync.Mutex
	var held []func(kmsg.Response)
	var resps []kmsg.Response
	st := &stub{}
	s, _ := startServer(t, Config{MaxInFlightPerConn: limit}, handlerFunc(func(c *ConnInfo, req kmsg.Request, respond func(kmsg.Response)) {
		mu.Lock()
		defer mu.Unlock()
		held = append(held, respond)
		resps = append(resps, st.answer(c, req))
	}))
	st.setAddr(s.Addr())
	handled := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(held)
	}
	rc := dial(t, s)
	var buf []byte
	for i := range sent {
		buf = append(buf, rc.f.AppendRequest(nil, metadataReq(12, fmt.Sprintf("t%d", i)), int32(i+1))...) // AppendRequest sizes from dst[0]
	}
	rc.writeRaw(buf)
	waitFor(t, "limit requests handled", func() bool { return handled() == limit })
	// Give the reader every chance to overrun the limit. This can only
	// miss a bug, never fail a correct server.
	time.Sleep(20 * time.Millisecond)
	if got := handled(); got != limit {
		t.Fatalf("handler saw %d requests, limit %d", got, limit)
	}
	mu.Lock()
	held[0](resps[0])
	mu.Unlock()
	waitFor(t, "one more request", func() bool { return handled() == limit+1 })
	time.Sleep(20 * time.Millisecond)
	if got := handled(); got != limit+1 {
		t.Fatalf("after one answer the handler saw %d requests, want %d", got, limit+1)
	}
	// Answer everything as it arrives.
	answered := 1
	for answered < sent {
		waitFor(t, "next request", func() bool { return handled() > answered })
		mu.Lock()
		for ; answered < len(held); answered++ {
			held[answered](resps[answered])
		}
		mu.Unlock()
	}
	for i := range sent {
		resp := metadataResp(12)
		if corr := rc.recv(resp); corr != int32(i+1) || *resp.Topics[0].Topic != fmt.Sprintf("t%d", i) {
			t.Fatalf("response %d: correlation id %d topic %s", i, corr, *resp.Topics[0].Topic)
		}
	}
}

// TestMaxConns: connections beyond MaxConns are closed at accept and
// logged; the open ones keep working, and a slot frees when one closes.
func TestMaxConns(t *testing.T) {
	s, logs := stubServer(t, Config{MaxConns: 2})
	a, b := dial(t, s), dial(t, s)
	a.roundTrip(12, "a")
	b.roundTrip(12, "b")
	c := dial(t, s)
	c.expectClosed()
	logs.waitLine(t, "connections open (MaxConns)")
	a.roundTrip(12, "a2")
	b.nc.Close()
	waitFor(t, "b forgotten", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return len(s.conns) == 1
	})
	dial(t, s).roundTrip(12, "d")
}

// TestShutdownDrains: Shutdown stops reading but writes the responses
// already owed, then closes the connection; Serve returns ErrServerClosed.
func TestShutdownDrains(t *testing.T) {
	st := &stub{}
	gotReq := make(chan func(), 1)
	s, _ := startServer(t, Config{}, handlerFunc(func(c *ConnInfo, req kmsg.Request, respond func(kmsg.Response)) {
		resp := st.answer(c, req)
		gotReq <- func() { respond(resp) }
	}))
	st.setAddr(s.Addr())
	rc := dial(t, s)
	corr := rc.send(metadataReq(12, "owed"))
	answer := <-gotReq
	shut := make(chan error, 1)
	go func() { shut <- s.Shutdown(context.Background()) }()
	waitFor(t, "listener closed", func() bool { return s.isClosed() })
	answer()
	resp := metadataResp(12)
	if got := rc.recv(resp); got != corr || *resp.Topics[0].Topic != "owed" {
		t.Fatalf("got correlation id %d topic %s", got, *resp.Topics[0].Topic)
	}
	rc.expectClosed()
	if err := <-shut; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
}

// TestCloseWithPendingResponses: Close does not wait for responses that
// never come, and a late respond is harmless.
func TestCloseWithPendingResponses(t *testing.T) {
	gotReq := make(chan func(kmsg.Response), 1)
	s, _ := startServer(t, Config{}, handlerFunc(func(c *ConnInfo, req kmsg.Request, respond func(kmsg.Response)) {
		gotReq <- respond
	}))
	rc := dial(t, s)
	rc.send(metadataReq(12, "never"))
	respond := <-gotReq
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	rc.expectClosed()
	respond(kmsg.NewPtrMetadataResponse())
	respond(kmsg.NewPtrMetadataResponse()) // twice: logged, ignored
}

func TestNewServerRejectsBadTables(t *testing.T) {
	for _, vs := range [][]Version{
		nil,                              // no ApiVersions
		{{Key: 18, Max: 4}, {Key: 18}},   // duplicate
		{{Key: 18, Max: 4}, {Key: 9999}}, // unknown key
		{{Key: 18, Min: 3, Max: 2}},      // min > max
		{{Key: 18, Max: 99}},             // beyond kmsg
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("NewServer accepted %+v", vs)
				}
			}()
			NewServer(Config{Versions: vs}, handlerFunc(nil))
		}()
	}
}
