package engine

import (
	"strings"
	"testing"
	"testing/cryptotest"
)

// TestRegression_CompactionResurrectsDeletedKey: an engine bug the
// simulator's lifecycle workload found (sim/lifecycle.go, seed 10 at the
// commit that added it: go run ./cmd/gregor sim --seed 10). It failed with
// compacted-state: lc/1's key k0 read from the log start as l28.82 at
// offset 14, an old value, after its tombstones at offsets 20 and 23 had
// gone. The cleaner dropped k0's later values, but a batch left with no
// record that ends a cleaning step (segments keep their end) or is its
// producer's last batch kept its last record, here the superseded k0 at
// 14; once the key's tombstone passed delete.retention.ms and went, that
// value was the key's latest again: a deleted key came back. Kafka's
// cleaner keeps such a batch empty (its header, offsets and producer
// fields, no record). Fixed the same way.
//
// Segments of one batch each and steps of two segments: the first step
// cleans [0, 2), whose last batch holds only a=1, which the tombstone at 2
// supersedes; the tombstone's batch does not end a step, so it goes once
// its horizon has passed.
func TestRegression_CompactionResurrectsDeletedKey(t *testing.T) {
	c := &testCluster{t: t}
	cryptotest.SetGlobalRandom(t, 1)
	c.run(t, cmd("add-brokers n=3 segment-bytes=200 cleaner-ms=1000 cleaner-step-bytes=200"))
	c.run(t, cmd("create-topic name=t partitions=1 rf=3 configs=cleanup.policy=compact;min.cleanable.dirty.ratio=0.01;delete.retention.ms=3000"))
	for _, kv := range []string{"x:1", "a:1", "a:~", "b:1", "c:1"} {
		if got := c.run(t, cmd("produce kv="+kv)); !strings.Contains(got, "offset") {
			t.Fatalf("produce %s: %s", kv, got)
		}
	}
	c.tick(20)
	// The tombstone's horizon passes; new closed segments make the log
	// dirty again, and the next round drops the tombstone.
	c.tick(40)
	for _, kv := range []string{"d:1", "e:1"} {
		if got := c.run(t, cmd("produce kv="+kv)); !strings.Contains(got, "offset") {
			t.Fatalf("produce %s: %s", kv, got)
		}
	}
	c.tick(20)
	for b := 1; b <= 3; b++ {
		got := c.run(t, cmd("log broker="+string(rune('0'+b))+" segments"))
		t.Log(strings.TrimSpace(got))
		if strings.Contains(got, "a=~") {
			t.Fatalf("the tombstone of a is still there: the scenario did not reach its removal: %s", got)
		}
		if strings.Contains(got, "a=") {
			t.Errorf("a was deleted (tombstone at 2, gone after delete.retention.ms), but broker %d's log still holds a value of it: %s", b, got)
		}
	}
	if got := c.run(t, cmd("fetch offset=0")); strings.Contains(got, "a=") {
		t.Errorf("a fetch from the log start returns a deleted key: %s", got)
	}
	// The empty batch [1,1] keeps the first segment's end; a replica reads
	// it back after a restart, and a fetch inside it answers from the
	// next batch.
	before := c.run(t, cmd("log broker=2 segments"))
	c.run(t, cmd("crash broker=2 seed=3"))
	c.run(t, cmd("restart broker=2"))
	c.tick(5)
	if got := c.run(t, cmd("log broker=2 segments")); got != before {
		t.Errorf("after a restart broker 2 holds %s, before %s", got, before)
	}
	if got := c.run(t, cmd("fetch offset=1")); !strings.Contains(got, "3:b=1") || strings.Contains(got, "a=") {
		t.Errorf("fetch at 1: %s", got)
	}
}
