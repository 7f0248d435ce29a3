package engine

import (
	"bytes"
	"testing"

	"github.com/gregor-streaming/gregor/engine/producers"
	"github.com/gregor-streaming/gregor/raftlog"
	"github.com/gregor-streaming/gregor/raftlog/vfs"
)

// checkpointSeed builds a real replica checkpoint: two epochs and one
// idempotent producer.
func checkpointSeed() []byte {
	ps := producers.New()
	ps.Record(5, 0, 0, 0, 1, 0)
	c := &checkpoint{applied: 9, start: 0, end: 2, epochs: []epochStart{{1, 0}, {3, 1}}, producers: ps}
	return c.encode()
}

func TestCheckpointRoundTrip(t *testing.T) {
	data := checkpointSeed()
	c, err := decodeCheckpoint(data)
	if err != nil {
		t.Fatal(err)
	}
	if c.applied != 9 || c.end != 2 || len(c.epochs) != 2 || c.epochs[1] != (epochStart{3, 1}) || c.producers.Producers() != 1 {
		t.Fatalf("decoded %+v", c)
	}
	if !bytes.Equal(c.encode(), data) {
		t.Fatal("decode then encode does not give the same bytes")
	}
	for i := range data {
		bad := bytes.Clone(data)
		bad[i] ^= 0x10
		if _, err := decodeCheckpoint(bad); err == nil {
			t.Fatalf("a flipped bit at byte %d went unnoticed", i)
		}
	}
}

func FuzzDecodeCheckpoint(f *testing.F) {
	f.Add(checkpointSeed())
	f.Add([]byte{})
	f.Add([]byte("GRCK\x01"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := decodeCheckpoint(data)
		if err != nil {
			return
		}
		if c.start > c.end {
			t.Fatalf("decoded an inverted range %d > %d", c.start, c.end)
		}
		if _, err := decodeCheckpoint(c.encode()); err != nil {
			t.Fatalf("re-encoded checkpoint does not decode: %v", err)
		}
	})
}

// FuzzPeerMessage feeds arbitrary broker-to-broker messages to a broker
// with one partition: nothing may panic, and the state must not change.
func FuzzPeerMessage(f *testing.F) {
	f.Add([]byte{peerRequest, opStateBegin, 1, 0})
	f.Add([]byte{peerRequest, opStateChunk, 2, 0, 10, 0})
	f.Add([]byte{peerResponse, opStateChunk, 3, peerOK, 1, 2, 3})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		c := &testCluster{t: t}
		c.run(t, cmd("add-brokers n=1"))
		c.run(t, cmd("create-topic name=t partitions=1 rf=1"))
		b := c.broker(1).b
		g := b.meta.st.Topics["t"].Partitions[0].Group
		before := b.parts[g].log.EndOffset()
		b.onPeer(raftlog.PeerMsg{From: 1, Group: g, Data: data})
		b.onPeer(raftlog.PeerMsg{From: 1, Group: 99, Data: data})
		if b.parts[g].log.EndOffset() != before {
			t.Fatal("a peer message changed the log")
		}
	})
}

func FuzzDecodeBoot(f *testing.F) {
	f.Add(encodeBoot(1))
	f.Add(encodeBoot(1 << 40))
	f.Add([]byte("garbage-12-b"))
	f.Fuzz(func(t *testing.T, b []byte) {
		n, err := decodeBoot(b)
		if err == nil && !bytes.Equal(encodeBoot(n), b) {
			t.Fatalf("decoded %d from bytes that do not re-encode", n)
		}
	})
}

func TestBootCounterSurvivesCrash(t *testing.T) {
	fs := vfs.NewMem()
	a, err := nextBoot(fs, 5)
	if err != nil {
		t.Fatal(err)
	}
	b, err := nextBoot(fs, 5)
	if err != nil {
		t.Fatal(err)
	}
	if a == b {
		t.Fatal("two boots with the same clock got the same id")
	}
}

// FuzzReadCurrent: the CURRENT file names the live state directory; a
// corrupt one is an error, never a wrong directory.
func FuzzReadCurrent(f *testing.F) {
	fs := vfs.NewMem()
	fs.MkdirAll("p")
	if err := writeCurrent(fs, "p", 7); err != nil {
		f.Fatal(err)
	}
	good, _ := readFile(fs, "p/CURRENT")
	f.Add(good)
	f.Add([]byte("state-0\n00000000"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		fs := vfs.NewMem()
		fs.MkdirAll("p")
		if err := vfs.WriteFile(fs, "p/CURRENT", data); err != nil {
			t.Fatal(err)
		}
		n, err := readCurrent(fs, "p")
		if err != nil {
			return
		}
		if n == 0 {
			t.Fatal("an existing CURRENT named state 0")
		}
		// What reads back rewrites to the same bytes.
		if err := writeCurrent(fs, "p", n); err != nil {
			t.Fatal(err)
		}
		if again, _ := readFile(fs, "p/CURRENT"); !bytes.Equal(again, data) {
			t.Fatalf("CURRENT %q read as %d, which writes %q", data, n, again)
		}
	})
}

// FuzzExpireProducersEntry: an expiry entry's body read from the WAL never
// panics, and a bad one changes nothing.
func FuzzExpireProducersEntry(f *testing.F) {
	f.Add([]byte{1, 10, 20})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, body []byte) {
		p := &partition{producers: producers.New()}
		p.producers.Record(5, 0, 0, 0, 0, 10)
		if _, err := p.expireProducers(body); err != nil && p.producers.Producers() != 1 {
			t.Fatal("a rejected expiry entry dropped a producer")
		}
	})
}

// FuzzCompactStepEntry: a compaction entry's body read from the WAL never
// panics; what decodes encodes to bytes that decode the same.
func FuzzCompactStepEntry(f *testing.F) {
	f.Add(compactStep{from: 0, to: 10, dirtyFrom: 4, mapTo: 12, nowMs: 1000, deleteRetentionMs: 86_400_000}.encode())
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, body []byte) {
		st, err := decodeCompactStep(body)
		if err != nil {
			return
		}
		if again, err := decodeCompactStep(st.encode()); err != nil || again != st {
			t.Fatalf("%+v decoded from %x reads back as %+v, %v", st, body, again, err)
		}
	})
}
