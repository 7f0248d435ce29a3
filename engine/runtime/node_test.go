package runtime

import (
	"errors"
	"path/filepath"
	"testing"

	"github.com/gregor-streaming/gregor/engine"
)

// TestNodeLifecycle starts a one-broker node, runs a function on its
// owner goroutine, stops it twice, and starts it again from its data.
func TestNodeLifecycle(t *testing.T) {
	cfg := Config{
		Broker:      engine.Config{ID: 7, Cluster: []engine.BrokerInfo{{ID: 7, Host: "127.0.0.1"}}, TickMillis: testTickMillis},
		DataDir:     filepath.Join(t.TempDir(), "7"),
		KafkaListen: "127.0.0.1:0",
		PeerListen:  "127.0.0.1:0",
		Logf:        t.Logf,
	}
	for run := range 2 {
		n, err := Start(cfg)
		if err != nil {
			t.Fatalf("run %d: %v", run, err)
		}
		var id int32
		if err := n.Do(func(b *engine.Broker) { id = b.ID() }); err != nil {
			t.Fatal(err)
		}
		if id != 7 {
			t.Fatalf("Do saw broker %d", id)
		}
		if got := n.Config().Broker.Cluster[0]; got.Port == 0 || got.Host != "127.0.0.1" {
			t.Fatalf("advertised %+v: port not filled from the listener", got)
		}
		if err := n.Stop(); err != nil {
			t.Fatal(err)
		}
		if err := n.Stop(); err != nil {
			t.Fatalf("second Stop: %v", err)
		}
		if err := n.Do(func(*engine.Broker) {}); !errors.Is(err, ErrStopped) {
			t.Fatalf("Do after Stop: %v, want ErrStopped", err)
		}
	}
}

// TestNodeStopWithoutRun checks a node that only listened can be stopped.
func TestNodeStopWithoutRun(t *testing.T) {
	n, err := Listen(Config{DataDir: t.TempDir(), KafkaListen: "127.0.0.1:0", PeerListen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := n.Do(func(*engine.Broker) {}); !errors.Is(err, ErrStopped) {
		t.Fatalf("Do after Stop: %v, want ErrStopped", err)
	}
}
