package runtime

import (
	"context"
	"testing"
	"time"

	"github.com/gregor-streaming/gregor/engine"
)

// TestControlledShutdown: HandOffLeadership moves the leadership of every
// raft group a broker leads (its partitions, __consumer_offsets' and the
// metadata group, when it leads them) to the other brokers while it keeps
// running, and the cluster goes on without an election after it stops:
// everything produced before and after is read back.
func TestControlledShutdown(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-broker cluster")
	}
	const (
		topic      = "handoff"
		partitions = 6
		batch      = 200
	)
	c := startCluster(t, 3)
	cl := newClient(t, c)
	createTopic(t, cl, topic, partitions, 3)
	lead := leaders(t, cl, topic, partitions)
	want := acked{}
	produce(t, cl, topic, 0, batch, want)

	victim := lead[0]
	led := func() (n int) {
		if err := c.nodes[victim].Do(func(b *engine.Broker) {
			for _, r := range b.Replicas() {
				if r.Leader {
					n++
				}
			}
		}); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if led() == 0 {
		t.Fatalf("broker %d leads no partition before the hand-off", victim)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if left, err := c.nodes[victim].HandOffLeadership(ctx); err != nil || left != 0 {
		t.Fatalf("HandOffLeadership: %d groups left, %v", left, err)
	}
	if n := led(); n != 0 {
		t.Fatalf("broker %d still leads %d partitions after the hand-off", victim, n)
	}
	c.stop(victim)
	produce(t, cl, topic, batch, batch, want)
	consumeAll(t, c, topic, want)
}
