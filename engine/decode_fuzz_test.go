package engine

import (
	"bytes"
	"testing"

	"github.com/gregor-streaming/gregor/engine/batch"
	"github.com/gregor-streaming/gregor/engine/producers"
	"github.com/gregor-streaming/gregor/engine/segment"
	"github.com/gregor-streaming/gregor/raftlog/vfs"
)

// snapshotSeed builds a real partition snapshot: a replica with a few
// batches, one from an idempotent producer.
func snapshotSeed(t testing.TB) []byte {
	log, err := segment.Open(vfs.NewMem(), "p", segment.Options{})
	if err != nil {
		t.Fatal(err)
	}
	p := &partition{log: log, producers: producers.New(), applied: 9}
	for i, pid := range []int64{batch.NoProducerID, 5} {
		b := batch.Build(batch.BuildOptions{BaseOffset: int64(i), ProducerID: pid, ProducerEpoch: 0, BaseSequence: 0}, []batch.Record{{Value: []byte("v")}})
		if pid < 0 {
			b = batch.Build(batch.BuildOptions{BaseOffset: int64(i), ProducerID: pid, ProducerEpoch: -1, BaseSequence: -1}, []batch.Record{{Value: []byte("v")}})
		}
		if err := log.Append(b, segment.BatchMeta{BaseOffset: int64(i), LastOffset: int64(i), Tag: uint64(3 + i)}); err != nil {
			t.Fatal(err)
		}
	}
	p.producers.Record(5, 0, 0, 0, 1)
	data, err := p.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestSnapshotRoundTrip(t *testing.T) {
	data := snapshotSeed(t)
	s, err := decodeSnapshot(data)
	if err != nil {
		t.Fatal(err)
	}
	if s.applied != 9 || s.start != 0 || len(s.batches) != 2 || s.metas[1].Tag != 4 || s.producers.Producers() != 1 {
		t.Fatalf("decoded %+v", s)
	}
	log, _ := segment.Open(vfs.NewMem(), "q", segment.Options{})
	q := &partition{log: log, producers: producers.New(), b: &Broker{}}
	if err := q.Restore(data); err != nil {
		t.Fatal(err)
	}
	again, _ := q.Snapshot()
	if !bytes.Equal(again, data) {
		t.Fatal("Restore then Snapshot does not give the same bytes")
	}
}

func FuzzDecodeSnapshot(f *testing.F) {
	f.Add(snapshotSeed(f))
	f.Add([]byte{})
	f.Add([]byte{1, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := decodeSnapshot(data)
		if err != nil {
			return
		}
		// Whatever decodes must restore into a log without error or
		// panic, and offsets must be contiguous.
		log, err := segment.Open(vfs.NewMem(), "p", segment.Options{})
		if err != nil {
			t.Fatal(err)
		}
		next := s.start
		for i, m := range s.metas {
			if m.BaseOffset != next {
				t.Fatalf("batch %d at %d, want %d", i, m.BaseOffset, next)
			}
			next = m.LastOffset + 1
		}
		_ = log
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
