package engine

import (
	"math"
	"strings"
	"testing"
	"testing/cryptotest"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestTxnEpochExhausted: an id whose epoch cannot be bumped again gets a
// new producer id at epoch 0, remembering the old one, as Kafka's
// TransactionMetadata does at Short.MAX_VALUE - 1; a retry of that bump
// (the producer named itself, KIP-360) gets the same answer, and after
// anyone else's bump the old producer is fenced.
func TestTxnEpochExhausted(t *testing.T) {
	c := &testCluster{t: t}
	cryptotest.SetGlobalRandom(t, 1)
	c.run(t, cmd("add-brokers n=3"))
	c.run(t, cmd("find-coordinator group=app type=1"))
	c.tick(30)
	first := c.run(t, cmd("init-producer-id txn=app"))
	if !strings.Contains(first, "pid 1 epoch 0") {
		t.Fatalf("first InitProducerId: %s", first)
	}
	co, code := c.broker(c.txnCoordinatorOf("app")).b.txnCoordinatorFor("app")
	if code != 0 {
		t.Fatalf("coordinator: %s", codeName(code))
	}
	co.ids["app"].producerEpoch = math.MaxInt16 - 1
	got := c.run(t, cmd("init-producer-id txn=app pid=1 epoch=32766"))
	if strings.Contains(got, "pid 1 ") || !strings.Contains(got, "epoch 0") {
		t.Fatalf("InitProducerId at an exhausted epoch: %s, want a new producer id at epoch 0", got)
	}
	v := co.ids["app"]
	if v.previousProducerID != 1 {
		t.Fatalf("previous producer id %d, want 1", v.previousProducerID)
	}
	again := c.run(t, cmd("init-producer-id txn=app pid=1 epoch=32766"))
	if again != got {
		t.Fatalf("a retry naming the old producer: %s, want %s", again, got)
	}
	// Another producer takes the id (a bump it did not ask for): the old
	// one, retrying, is fenced.
	if out := c.run(t, cmd("init-producer-id txn=app")); !strings.Contains(out, "epoch 1") {
		t.Fatalf("another producer's InitProducerId: %s", out)
	}
	if out := c.run(t, cmd("init-producer-id txn=app pid=1 epoch=32766")); !strings.Contains(out, "PRODUCER_FENCED") {
		t.Fatalf("the old producer after another's bump: %s, want PRODUCER_FENCED", out)
	}
	// The stored value decodes as Kafka's: the old id in the tagged field.
	rec, err := txnLogRecord("app", v, txnLogVersion)
	if err != nil {
		t.Fatal(err)
	}
	var val kmsg.TxnMetadataValue
	if err := val.ReadFrom(rec.Value); err != nil || val.PreviousProducerID != 1 || val.ProducerEpoch != 0 {
		t.Fatalf("kmsg reads %+v, %v", val, err)
	}
}

// TestTxnEndAtExhaustedEpoch: EndTxn v5 at an epoch that cannot be
// bumped keeps it for the markers and moves the id to a new producer id
// at epoch 0 once the transaction completes (Kafka's nextProducerId); the
// answer names the new producer, and a retry naming the old one gets the
// same answer.
func TestTxnEndAtExhaustedEpoch(t *testing.T) {
	c := &testCluster{t: t}
	cryptotest.SetGlobalRandom(t, 1)
	c.run(t, cmd("add-brokers n=3"))
	c.run(t, cmd("create-topic name=t partitions=1 rf=3"))
	c.run(t, cmd("find-coordinator group=app type=1"))
	c.tick(30)
	c.run(t, cmd("init-producer-id txn=app"))
	co, code := c.broker(c.txnCoordinatorOf("app")).b.txnCoordinatorFor("app")
	if code != 0 {
		t.Fatalf("coordinator: %s", codeName(code))
	}
	co.ids["app"].producerEpoch = math.MaxInt16 - 1
	if got := c.run(t, cmd("produce topic=t values=a pid=1 epoch=32766 seq=0 txn txn-id=app v=12")); !strings.Contains(got, "offset 0") {
		t.Fatalf("produce: %s", got)
	}
	got := c.run(t, cmd("end-txn txn=app pid=1 epoch=32766 commit v=5"))
	if !strings.Contains(got, "ok, next pid") || strings.Contains(got, "next pid 1 ") || !strings.HasSuffix(got, "epoch 0\n") {
		t.Fatalf("EndTxn at an exhausted epoch: %q, want a new producer id at epoch 0", got)
	}
	c.tick(10)
	if got := c.run(t, cmd("fetch topic=t isolation=committed")); !strings.Contains(got, "0:a(e1) 1:COMMIT") {
		t.Fatalf("the commit: %s", got)
	}
	if got := c.run(t, cmd("describe-producers topic=t")); !strings.Contains(got, "epoch 32766") {
		t.Fatalf("the marker keeps the exhausted epoch: %s", got)
	}
	v := co.ids["app"]
	if v.previousProducerID != 1 || v.producerEpoch != 0 || v.nextProducerID != -1 || v.state != txnCompleteCommit {
		t.Fatalf("after the transaction: %+v", *v)
	}
	if again := c.run(t, cmd("end-txn txn=app pid=1 epoch=32766 commit v=5")); again != got {
		t.Fatalf("a retry naming the old producer: %q, want %q", again, got)
	}
}

// FuzzTxnPeerBodies: the transaction bodies brokers send each other (a
// marker to write, a verification to answer) decode without panicking,
// and what decodes re-encodes to the same bytes.
func FuzzTxnPeerBodies(f *testing.F) {
	f.Add(txnMarker{pid: 7, epoch: 2, commit: true, coordEpoch: 3, timestampMs: 1}.encode())
	f.Add(txnMarker{pid: 7, epoch: 2, commit: true, coordEpoch: 3, timestampMs: 1, bumped: true}.encode())
	f.Add(txnVerify{id: "app", pid: 7, epoch: 2, topic: "t", part: 1}.encode())
	f.Add(txnVerify{id: "app", pid: 7, epoch: 2, topic: "t", part: 1, add: true}.encode())
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		if m, err := decodeMarker(b); err == nil {
			if again := m.encode(); string(again) != string(b) {
				if m2, err := decodeMarker(again); err != nil || m2 != m {
					t.Fatalf("marker %+v does not round trip", m)
				}
			}
			m.controlBatch()
		}
		if v, err := decodeTxnVerify(b); err == nil {
			if v2, err := decodeTxnVerify(v.encode()); err != nil || v2 != v {
				t.Fatalf("verification %+v does not round trip", v)
			}
		}
	})
}
