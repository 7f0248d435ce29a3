package runtime

import (
	"fmt"
	"net"
	"testing"
	"time"
)

func listenLocal(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// TestTransportDeliversAndRedials sends payloads from one transport to
// another, restarts the receiver on the same address, and checks the
// sender redials and delivers again.
func TestTransportDeliversAndRedials(t *testing.T) {
	got := make(chan []byte, 100)
	deliver := func(p []byte) { got <- p }
	lnB := listenLocal(t)
	addrB := lnB.Addr().String()
	b := newTransport(lnB, deliver, t.Logf)
	b.wg.Add(1)
	go b.serve()

	a := newTransport(listenLocal(t), func([]byte) {}, t.Logf)
	a.wg.Add(1)
	go a.serve()
	defer a.close()
	a.setPeers(map[int32]string{2: addrB})

	for i := range 10 {
		a.send(2, fmt.Appendf(nil, "m%d", i))
	}
	for i := range 10 {
		if p := <-got; string(p) != fmt.Sprintf("m%d", i) {
			t.Fatalf("payload %d = %q", i, p)
		}
	}
	if err := b.close(); err != nil {
		t.Fatal(err)
	}

	lnB2, err := net.Listen("tcp", addrB)
	if err != nil {
		t.Skipf("cannot listen again on %s: %v", addrB, err)
	}
	b2 := newTransport(lnB2, deliver, t.Logf)
	b2.wg.Add(1)
	go b2.serve()
	defer b2.close()
	// Writes into the dead connection are lost until the sender notices;
	// keep sending until one arrives on the new listener.
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		a.send(2, []byte("again"))
		select {
		case p := <-got:
			if string(p) != "again" {
				t.Fatalf("after redial got %q", p)
			}
			return
		case <-tick.C:
		}
	}
}

// TestTransportDropsWhenUnreachable checks that a peer with no listener
// costs drops, never a blocked send.
func TestTransportDropsWhenUnreachable(t *testing.T) {
	a := newTransport(listenLocal(t), func([]byte) {}, t.Logf)
	a.wg.Add(1)
	go a.serve()
	dead := listenLocal(t)
	addr := dead.Addr().String()
	dead.Close()
	a.setPeers(map[int32]string{3: addr})
	for range 3 * peerQueueMax {
		a.send(3, []byte("x"))
	}
	if a.dropped.Load() == 0 {
		t.Fatalf("no payload dropped after %d sends to an unreachable peer", 3*peerQueueMax)
	}
	if err := a.close(); err != nil {
		t.Fatal(err)
	}
	a.send(3, []byte("after close")) // must not panic or block
}
