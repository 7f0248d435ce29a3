package netwire

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// BenchmarkPipelinedProduce measures loopback round trips of Produce
// (acks=1, 1 KiB record set) requests, window of them in flight at a time,
// through the stub handler: netwire's framing, decode, ordering and encode
// cost plus kmsg's on the client side.
func BenchmarkPipelinedProduce(b *testing.B) {
	const window = 64
	st := &stub{}
	s, _ := startServer(b, Config{}, handlerFunc(func(c *ConnInfo, req kmsg.Request, respond func(kmsg.Response)) {
		respond(st.answer(c, req))
	}))
	st.setAddr(s.Addr())
	rc := dial(b, s)
	rc.nc.SetDeadline(time.Time{})
	req := produceReq(9, 1, "t")
	req.Topics[0].Partitions[0].Records = make([]byte, 1024)
	frame := rc.f.AppendRequest(nil, req, 0)
	resp := kmsg.NewPtrProduceResponse()
	resp.Version = 9
	b.SetBytes(int64(len(frame)))
	b.ResetTimer()
	sent, got := 0, 0
	for got < b.N {
		for sent < b.N && sent-got < window {
			rc.writeRaw(frame)
			sent++
		}
		rc.recv(resp)
		got++
	}
}
