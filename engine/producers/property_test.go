package producers

import (
	"bytes"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"pgregory.net/rapid"
)

// seqMod is the sequence number space: sequences wrap from MaxInt32 to 0.
const seqMod = 1 << 31

// sent is one batch a producer made. id tells batches apart: after a full
// wrap of the sequence space a new batch can reuse an old one's range.
type sent struct {
	id          int
	pid         int64
	epoch       int16
	first, last int32
	count       int64
}

// model is a deliberately simple broker: it keeps every batch ever
// appended, per pid and epoch, and does its sequence arithmetic in int64.
type model struct {
	epoch    map[int64]int16
	appended map[int64][]sent // the current epoch's batches, all of them
	offsetOf map[int]int64    // by sent.id, every batch ever appended
}

func (m *model) expect(b sent) Verdict {
	epoch, known := m.epoch[b.pid]
	if !known {
		if b.first != 0 {
			return Verdict{Err: kerr.OutOfOrderSequenceNumber}
		}
		return Verdict{}
	}
	if b.epoch == epoch {
		hist := m.appended[b.pid]
		for _, a := range hist[max(0, len(hist)-batchesRetained):] {
			if a.first == b.first && a.last == b.last {
				return Verdict{Duplicate: true, BaseOffset: m.offsetOf[a.id]}
			}
		}
	}
	switch {
	case b.epoch < epoch:
		return Verdict{Err: kerr.InvalidProducerEpoch}
	case b.epoch > epoch:
		if b.first != 0 {
			return Verdict{Err: kerr.OutOfOrderSequenceNumber}
		}
		return Verdict{}
	}
	hist := m.appended[b.pid]
	if int64(b.first) != (int64(hist[len(hist)-1].last)+1)%seqMod {
		return Verdict{Err: kerr.OutOfOrderSequenceNumber}
	}
	return Verdict{}
}

func (m *model) append(b sent, offset int64) {
	if e, ok := m.epoch[b.pid]; !ok || e != b.epoch {
		m.epoch[b.pid] = b.epoch
		m.appended[b.pid] = nil
	}
	m.appended[b.pid] = append(m.appended[b.pid], b)
	m.offsetOf[b.id] = offset
}

// client is one producer: its epoch, next sequence, and every batch it has
// made (any of which the network may deliver, late or again).
type client struct {
	pid     int64
	epoch   int16
	nextSeq int64
	sizes   []int64 // the batch sizes it draws from
	made    []sent
	pending []sent // made but not yet delivered once
}

// TestPropertyAgainstModel drives the State and the model with producers
// that send, retry, reorder and bump epochs, with snapshots in between, and
// checks that they agree, that a retry of any of the last 5 batches gets its
// original offset, and that the log is exactly-once: per pid and epoch the
// appended batches are contiguous from sequence 0 and never repeat.
func TestPropertyAgainstModel(t *testing.T) {
	// Weighted so that one epoch often lives long enough to wrap its
	// sequence numbers: 0 make, 1 deliver in order, 2 deliver out of order,
	// 3 redeliver, 4 bump epoch, 5 snapshot.
	actions := []int{0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 2, 2, 3, 3, 3, 4, 5, 5}
	rapid.Check(t, func(t *rapid.T) {
		s := New()
		m := &model{epoch: map[int64]int16{}, appended: map[int64][]sent{}, offsetOf: map[int]int64{}}
		pids := rapid.SliceOfNDistinct(rapid.Int64Range(0, 1<<62), 1, 4, rapid.ID[int64]).Draw(t, "pids")
		clients := make([]*client, len(pids))
		for i, pid := range pids {
			clients[i] = &client{pid: pid, epoch: rapid.Int16Range(0, 3).Draw(t, "startEpoch"),
				// Ten batches never span the whole sequence space (a real
				// batch holds far fewer than 2^31/10 records), so the
				// ranges of the dedup window and of the batches in flight
				// stay distinct. Sixteen 2^27 batches end exactly at
				// MaxInt32.
				sizes: rapid.SampledFrom([][]int64{{1, 2, 5}, {1 << 27}, {1, 5, 1 << 27, 1<<27 - 3}}).Draw(t, "sizes")}
		}
		logEnd := int64(0)
		nextID := 0
		lastAppended := map[int64]sent{} // per pid, to check contiguity

		deliver := func(b sent) Verdict {
			got := s.Check(b.pid, b.epoch, b.first, b.last)
			want := m.expect(b)
			if got != want {
				t.Fatalf("Check(%+v) = %+v, model says %+v", b, got, want)
			}
			if off, ok := m.offsetOf[b.id]; got.Duplicate && (!ok || got.BaseOffset != off) {
				t.Fatalf("duplicate %+v answered with offset %d; appended: %v at %d", b, got.BaseOffset, ok, off)
			}
			if got.Err == nil && !got.Duplicate {
				if _, dup := m.offsetOf[b.id]; dup {
					t.Fatalf("batch %+v appended twice", b)
				}
				if prev, ok := lastAppended[b.pid]; ok && prev.epoch == b.epoch {
					if int64(b.first) != (int64(prev.last)+1)%seqMod {
						t.Fatalf("gap: %+v appended after %+v", b, prev)
					}
				} else if b.first != 0 {
					t.Fatalf("%+v starts a producer epoch past sequence 0", b)
				}
				lastAppended[b.pid] = b
				s.Record(b.pid, b.epoch, b.first, b.last, logEnd, 0)
				m.append(b, logEnd)
				logEnd += b.count
			}
			return got
		}

		steps := rapid.IntRange(20, 400).Draw(t, "steps")
		for range steps {
			c := clients[rapid.IntRange(0, len(clients)-1).Draw(t, "client")]
			switch rapid.SampledFrom(actions).Draw(t, "action") {
			case 0: // make a batch, at most 5 unacknowledged (max in flight)
				unacked := 0
				for _, b := range c.made {
					if _, ok := m.offsetOf[b.id]; !ok && b.epoch == c.epoch {
						unacked++
					}
				}
				if unacked >= batchesRetained {
					break
				}
				n := rapid.SampledFrom(c.sizes).Draw(t, "records")
				nextID++
				b := sent{id: nextID, pid: c.pid, epoch: c.epoch, first: int32(c.nextSeq), last: int32((c.nextSeq + n - 1) % seqMod), count: n}
				c.nextSeq = (c.nextSeq + n) % seqMod
				c.made = append(c.made, b)
				c.pending = append(c.pending, b)
			case 1: // deliver the oldest pending batch: the in-order case
				if len(c.pending) > 0 {
					deliver(c.pending[0])
					c.pending = c.pending[1:]
				}
			case 2: // deliver any pending batch: reordering
				if len(c.pending) > 0 {
					i := rapid.IntRange(0, len(c.pending)-1).Draw(t, "pending")
					deliver(c.pending[i])
					c.pending = append(c.pending[:i], c.pending[i+1:]...)
				}
			case 3: // redeliver one of the last 10 batches made (a client
				// retries only what is in flight, and the network holds
				// a duplicate for a bounded time)
				if len(c.made) > 0 {
					recent := c.made[max(0, len(c.made)-2*batchesRetained):]
					deliver(recent[rapid.IntRange(0, len(recent)-1).Draw(t, "made")])
				}
			case 4: // KIP-360 epoch bump: sequences restart; old batches linger
				c.epoch++
				c.nextSeq = 0
			case 5: // snapshot and restore
				enc := s.Encode()
				d, err := Decode(enc)
				if err != nil {
					t.Fatalf("Decode(Encode): %v", err)
				}
				if !bytes.Equal(d.Encode(), enc) {
					t.Fatal("Encode(Decode(Encode(s))) differs")
				}
				s = d
			}
			// A retry of any of the last 5 appended batches of the current
			// epoch is always a duplicate with the original offset.
			hist := m.appended[c.pid]
			if len(hist) > 0 {
				recent := hist[max(0, len(hist)-batchesRetained):]
				b := recent[rapid.IntRange(0, len(recent)-1).Draw(t, "recent")]
				if v := deliver(b); !v.Duplicate || v.BaseOffset != m.offsetOf[b.id] {
					t.Fatalf("retry of recent batch %+v: %+v", b, v)
				}
			}
		}
		if s.Producers() != len(m.epoch) {
			t.Fatalf("Producers() = %d, model has %d", s.Producers(), len(m.epoch))
		}
	})
}

func FuzzDecode(f *testing.F) {
	f.Add(New().Encode())
	one := New()
	one.Record(3, 1, 0, 4, 100, 0)
	f.Add(one.Encode())
	full := New()
	for i := range int32(7) {
		full.Record(1<<40, 2, i*2, i*2+1, int64(i)*10, 0)
		full.Record(5, 0, i, i, int64(i), 0)
	}
	full.Record(5, 1, 0, 0, 99, 0)
	f.Add(full.Encode())
	f.Add([]byte{1, 0, 0, 0, 1})
	f.Add([]byte{2})
	txn := New()
	txn.Record(3, 0, 0, 0, 10, 0)
	txn.BeginTxn(3, 10)
	txn.Record(4, 0, 0, 0, 11, 0)
	txn.BeginTxn(4, 11)
	txn.EndTxn(4, 0, 1, false, 12, 0)
	f.Add(txn.Encode())
	f.Add(v2Encoding)

	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := Decode(b)
		if err != nil {
			return
		}
		enc := s.Encode()
		if b[0] == encodingVersion && !bytes.Equal(enc, b) {
			t.Fatalf("Encode(Decode(b)) = %x, want %x", enc, b)
		}
		s2, err := Decode(enc)
		if err != nil || !bytes.Equal(s2.Encode(), enc) {
			t.Fatalf("round trip: %v", err)
		}
		// Any decoded state must be usable.
		s.FirstUnstable()
		s.Aborted(0, 1<<62)
		for pid := range s.producers {
			e, _ := s.Epoch(pid)
			s.Check(pid, e, 0, 0)
			s.Record(pid, e, 0, 0, 0, 0)
			s.BeginTxn(pid, 0)
			if open, err := s.Marker(pid, e, 1<<30, false); open && err == nil {
				s.EndTxn(pid, e, 1<<30, false, 1<<40, 0)
			}
			s.Describe()
		}
	})
}
