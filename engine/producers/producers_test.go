package producers

import (
	"bytes"
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
)

const maxSeq = 1<<31 - 1

type batch struct {
	pid         int64
	epoch       int16
	first, last int32
	offset      int64
}

func TestCheck(t *testing.T) {
	tests := []struct {
		name    string
		history []batch // appended with Record, in order
		check   batch   // offset unused
		want    Verdict
	}{
		{name: "unknown pid starting at 0", check: batch{1, 0, 0, 4, 0}, want: Verdict{}},
		{name: "unknown pid starting past 0", check: batch{1, 0, 5, 9, 0}, want: Verdict{Err: kerr.OutOfOrderSequenceNumber}},
		{name: "unknown pid, any epoch, seq 0", check: batch{1, 7, 0, 0, 0}, want: Verdict{}},
		{name: "not idempotent", check: batch{-1, -1, -1, -1, 0}, want: Verdict{}},
		{name: "next in sequence", history: []batch{{1, 0, 0, 4, 100}}, check: batch{1, 0, 5, 5, 0}, want: Verdict{}},
		{name: "gap", history: []batch{{1, 0, 0, 4, 100}}, check: batch{1, 0, 6, 6, 0}, want: Verdict{Err: kerr.OutOfOrderSequenceNumber}},
		{name: "overlap that is not a retry", history: []batch{{1, 0, 0, 4, 100}}, check: batch{1, 0, 3, 7, 0}, want: Verdict{Err: kerr.OutOfOrderSequenceNumber}},
		{name: "restart at 0 in the same epoch", history: []batch{{1, 0, 0, 4, 100}}, check: batch{1, 0, 0, 1, 0}, want: Verdict{Err: kerr.OutOfOrderSequenceNumber}},
		{name: "retry of the last batch", history: []batch{{1, 0, 0, 4, 100}}, check: batch{1, 0, 0, 4, 0}, want: Verdict{Duplicate: true, BaseOffset: 100}},
		{name: "retry of the 5th latest batch", history: []batch{
			{1, 0, 0, 0, 10}, {1, 0, 1, 1, 11}, {1, 0, 2, 2, 12}, {1, 0, 3, 3, 13}, {1, 0, 4, 4, 14},
		}, check: batch{1, 0, 0, 0, 0}, want: Verdict{Duplicate: true, BaseOffset: 10}},
		{name: "retry of the 6th latest batch is out of order", history: []batch{
			{1, 0, 0, 0, 10}, {1, 0, 1, 1, 11}, {1, 0, 2, 2, 12}, {1, 0, 3, 3, 13}, {1, 0, 4, 4, 14}, {1, 0, 5, 5, 15},
		}, check: batch{1, 0, 0, 0, 0}, want: Verdict{Err: kerr.OutOfOrderSequenceNumber}},
		{name: "retry interleaved with another producer", history: []batch{{1, 0, 0, 1, 10}, {2, 0, 0, 1, 12}, {1, 0, 2, 2, 14}},
			check: batch{1, 0, 0, 1, 0}, want: Verdict{Duplicate: true, BaseOffset: 10}},
		{name: "older epoch", history: []batch{{1, 3, 0, 0, 10}}, check: batch{1, 2, 1, 1, 0}, want: Verdict{Err: kerr.InvalidProducerEpoch}},
		{name: "older epoch retrying what it wrote", history: []batch{{1, 2, 0, 0, 10}, {1, 3, 0, 0, 11}}, check: batch{1, 2, 0, 0, 0},
			want: Verdict{Err: kerr.InvalidProducerEpoch}},
		{name: "newer epoch from 0", history: []batch{{1, 0, 0, 9, 10}}, check: batch{1, 1, 0, 2, 0}, want: Verdict{}},
		{name: "newer epoch not from 0", history: []batch{{1, 0, 0, 9, 10}}, check: batch{1, 1, 10, 12, 0}, want: Verdict{Err: kerr.OutOfOrderSequenceNumber}},
		{name: "new epoch forgets old batches", history: []batch{{1, 0, 0, 0, 10}, {1, 1, 0, 0, 11}}, check: batch{1, 1, 0, 0, 0},
			want: Verdict{Duplicate: true, BaseOffset: 11}},
		{name: "sequence wraps to 0", history: []batch{{1, 0, 0, maxSeq - 5, 0}, {1, 0, maxSeq - 4, maxSeq, 10}}, check: batch{1, 0, 0, 3, 0}, want: Verdict{}},
		{name: "sequence wraps, not to MinInt32", history: []batch{{1, 0, 0, maxSeq - 5, 0}, {1, 0, maxSeq - 4, maxSeq, 10}}, check: batch{1, 0, -1 << 31, 0, 0},
			want: Verdict{Err: kerr.OutOfOrderSequenceNumber}},
		{name: "batch across the wrap, then its successor", history: []batch{{1, 0, 0, maxSeq - 2, 0}, {1, 0, maxSeq - 1, 2, 10}}, check: batch{1, 0, 3, 3, 0}, want: Verdict{}},
		{name: "retry of a batch across the wrap", history: []batch{{1, 0, 0, maxSeq - 2, 0}, {1, 0, maxSeq - 1, 2, 10}}, check: batch{1, 0, maxSeq - 1, 2, 0},
			want: Verdict{Duplicate: true, BaseOffset: 10}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := New()
			for _, h := range tc.history {
				if v := s.Check(h.pid, h.epoch, h.first, h.last); v.Err != nil || v.Duplicate {
					t.Fatalf("history batch %+v refused: %+v", h, v)
				}
				s.Record(h.pid, h.epoch, h.first, h.last, h.offset, 0)
			}
			got := s.Check(tc.check.pid, tc.check.epoch, tc.check.first, tc.check.last)
			if got != tc.want {
				t.Fatalf("Check(%+v) = %+v, want %+v", tc.check, got, tc.want)
			}
			// The verdict must survive a snapshot.
			d, err := Decode(s.Encode())
			if err != nil {
				t.Fatal(err)
			}
			if got := d.Check(tc.check.pid, tc.check.epoch, tc.check.first, tc.check.last); got != tc.want {
				t.Fatalf("after Decode(Encode): Check = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestCheckDoesNotChangeState(t *testing.T) {
	s := New()
	s.Record(4, 1, 0, 3, 0, 0)
	before := s.Encode()
	s.Check(4, 1, 4, 4)
	s.Check(4, 2, 0, 0)
	s.Check(9, 0, 0, 0)
	if !bytes.Equal(before, s.Encode()) || s.Producers() != 1 {
		t.Fatal("Check changed the state")
	}
	if e, ok := s.Epoch(4); !ok || e != 1 {
		t.Fatalf("Epoch(4) = %d, %v", e, ok)
	}
	if _, ok := s.Epoch(9); ok {
		t.Fatal("Epoch of an unknown pid")
	}
	s.Record(-1, -1, -1, -1, 5, 0)
	if s.Producers() != 1 {
		t.Fatal("Record of a non-idempotent batch created state")
	}
}

func TestEncodeDeterministic(t *testing.T) {
	a, b := New(), New()
	for _, pid := range []int64{9, 3, 1 << 40, 0, 7} {
		a.Record(pid, 1, 0, 0, pid, 0)
	}
	for _, pid := range []int64{0, 7, 1 << 40, 9, 3} {
		b.Record(pid, 1, 0, 0, pid, 0)
	}
	if !bytes.Equal(a.Encode(), b.Encode()) {
		t.Fatal("insertion order leaked into the encoding")
	}
	empty := New().Encode()
	if d, err := Decode(empty); err != nil || d.Producers() != 0 {
		t.Fatalf("empty state: %v", err)
	}
}

func TestDecodeRejects(t *testing.T) {
	s := New()
	s.Record(1, 0, 0, 0, 0, 0)
	s.Record(2, 0, 0, 0, 1, 0)
	good := s.Encode()
	swapped := bytes.Clone(good)
	// Swap the two producers (no batches differ in size): pids out of order.
	rec := producerHeadBytes + batchBytes
	copy(swapped[stateHeaderBytes:], good[stateHeaderBytes+rec:])
	copy(swapped[stateHeaderBytes+rec:], good[stateHeaderBytes:stateHeaderBytes+rec])
	tooMany := New()
	tooMany.Record(1, 0, 0, 0, 0, 0)
	six := tooMany.Encode()
	six[stateHeaderBytes+producerHeadBytes-1] = batchesRetained + 1
	six = append(six, make([]byte, batchBytes*batchesRetained)...)
	for name, b := range map[string][]byte{
		"empty":           nil,
		"version":         append([]byte{encodingVersion + 1}, good[1:]...),
		"old version":     append([]byte{1}, good[1:]...),
		"truncated":       good[:len(good)-1],
		"trailing":        append(bytes.Clone(good), 0),
		"pids swapped":    swapped,
		"huge count":      {encodingVersion, 0xff, 0xff, 0xff, 0xff},
		"too many":        six,
		"negative pid":    append([]byte{encodingVersion, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, make([]byte, 11)...),
		"truncated entry": good[:stateHeaderBytes+5],
	} {
		if _, err := Decode(b); err == nil {
			t.Errorf("%s: Decode accepted %x", name, b)
		}
	}
}

func TestExpiry(t *testing.T) {
	s := New()
	s.Record(1, 0, 0, 0, 0, 1_000)
	s.Record(2, 0, 0, 0, 1, 5_000)
	s.Record(3, 0, 0, 0, 2, 9_000)
	got := s.Expired(10_000, 5_000, 10)
	if len(got) != 2 || got[0] != (Expiry{1, 1_000}) || got[1] != (Expiry{2, 5_000}) {
		t.Fatalf("Expired = %v", got)
	}
	if one := s.Expired(10_000, 5_000, 1); len(one) != 1 || one[0].PID != 1 {
		t.Fatalf("Expired with max 1 = %v", one)
	}
	// Producer 2 wrote again after the expiry was decided: it stays.
	s.Record(2, 0, 1, 1, 3, 9_500)
	if !s.Expire(1, 1_000) || s.Expire(2, 5_000) || s.Expire(7, 0) {
		t.Fatal("Expire")
	}
	if s.Producers() != 2 {
		t.Fatalf("%d producers left, want 2", s.Producers())
	}
	// An expired producer starts over at sequence 0.
	if v := s.Check(1, 0, 1, 1); v.Err == nil {
		t.Fatal("an expired producer's next sequence was accepted")
	}
}

// v2Encoding is a state written before transactions (version 2): producer 5
// at epoch 1, one batch [0, 2] at offset 7, last timestamp 9.
var v2Encoding = []byte{
	2, 0, 0, 0, 1,
	0, 0, 0, 0, 0, 0, 0, 5, 0, 1, 0, 0, 0, 0, 0, 0, 0, 9, 1,
	0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 7,
}

func TestDecodeVersion2(t *testing.T) {
	s, err := Decode(v2Encoding)
	if err != nil {
		t.Fatal(err)
	}
	if v := s.Check(5, 1, 0, 2); !v.Duplicate || v.BaseOffset != 7 {
		t.Fatalf("Check = %+v, want a duplicate at 7", v)
	}
	if _, ok := s.FirstUnstable(); ok {
		t.Fatal("a version 2 state has an open transaction")
	}
	if d, err := Decode(s.Encode()); err != nil || d.Check(5, 1, 0, 2).BaseOffset != 7 {
		t.Fatalf("re-encoded as version %d: %v", encodingVersion, err)
	}
}

// TestTransactions: the last stable offset follows the earliest open
// transaction, markers are idempotent and fenced by epoch, and aborted
// transactions are found by the fetch range they overlap.
func TestTransactions(t *testing.T) {
	s := New()
	s.Record(1, 0, 0, 0, 10, 0)
	s.BeginTxn(1, 10)
	s.Record(2, 0, 0, 0, 11, 0)
	s.BeginTxn(2, 11)
	s.Record(1, 0, 1, 1, 12, 0)
	s.BeginTxn(1, 12) // not the first: stays at 10
	if f, ok := s.FirstUnstable(); !ok || f != 10 {
		t.Fatalf("FirstUnstable = %d %v, want 10", f, ok)
	}
	if _, err := s.Marker(1, -1, 0, false); err != kerr.InvalidProducerEpoch {
		t.Fatalf("a marker of an older epoch: %v", err)
	}
	if open, err := s.Marker(1, 0, 0, false); !open || err != nil {
		t.Fatalf("Marker = %v %v", open, err)
	}
	s.EndTxn(1, 0, 3, false, 13, 0)
	if open, _ := s.Marker(1, 0, 0, false); open {
		t.Fatal("a resent marker finds the transaction still open")
	}
	// A marker that fences is written even with nothing open: for a
	// producer not seen here, and for a newer epoch; a late write of the
	// older epoch is then refused.
	if write, err := s.Marker(1, 1, 3, false); !write || err != nil {
		t.Fatalf("a marker of a newer epoch, nothing open: %v %v", write, err)
	}
	if write, err := s.Marker(99, 0, 0, false); !write || err != nil {
		t.Fatalf("a marker for an unknown producer: %v %v", write, err)
	}
	s.EndTxn(99, 4, 3, false, 100, 0)
	if v := s.Check(99, 3, 0, 0); v.Err != kerr.InvalidProducerEpoch {
		t.Fatalf("a write of an older epoch after a fencing marker: %+v", v)
	}
	if write, _ := s.Marker(99, 4, 3, false); write {
		t.Fatal("a resent fencing marker is written again")
	}
	if _, ok := s.FirstUnstable(); !ok {
		t.Fatal("a fencing marker ended another producer's transaction")
	}
	if f, ok := s.FirstUnstable(); !ok || f != 11 {
		t.Fatalf("FirstUnstable = %d %v, want 11", f, ok)
	}
	s.EndTxn(2, 1, 3, true, 14, 0) // KIP-890: the marker bumps the epoch
	if _, ok := s.FirstUnstable(); ok {
		t.Fatal("open transaction after both ended")
	}
	if e, _ := s.Epoch(2); e != 1 {
		t.Fatalf("epoch %d after a bumped marker", e)
	}
	if write, err := s.Marker(2, 1, 3, true); write || err != nil {
		t.Fatalf("the bumped marker resent, nothing open: %v %v, want nothing written", write, err)
	}
	// A marker from an older coordinator than the last one is fenced.
	s.Record(2, 1, 0, 0, 15, 0)
	s.BeginTxn(2, 15)
	// The next transaction is open at the epoch the bumped marker
	// carried: a late copy of that marker must not end it. A marker of
	// that epoch that did not bump (transactions v1) does.
	if write, err := s.Marker(2, 1, 3, true); write || err != kerr.InvalidProducerEpoch {
		t.Fatalf("a late bumped marker, the next transaction open at its epoch: %v %v, want INVALID_PRODUCER_EPOCH", write, err)
	}
	if write, err := s.Marker(2, 1, 3, false); !write || err != nil {
		t.Fatalf("a marker of the open transaction's epoch, not bumped: %v %v", write, err)
	}
	if _, err := s.Marker(2, 1, 2, false); err != kerr.TransactionCoordinatorFenced {
		t.Fatalf("a marker of coordinator epoch 2 after 3: %v", err)
	}
	s.EndTxn(2, 1, 3, true, 16, 0)
	if got := s.Describe(); len(got) != 3 || got[1] != (ProducerInfo{PID: 2, Epoch: 1, LastSequence: 0, CoordinatorEpoch: 3, TxnStartOffset: -1}) {
		t.Fatalf("Describe = %+v", got)
	}
	want := []AbortedTxn{{PID: 1, FirstOffset: 10, LastOffset: 13}}
	for _, r := range []struct{ from, to int64 }{{0, 11}, {13, 20}, {10, 11}} {
		if got := s.Aborted(r.from, r.to); !slices.Equal(got, want) {
			t.Errorf("Aborted(%d, %d) = %v, want %v", r.from, r.to, got, want)
		}
	}
	for _, r := range []struct{ from, to int64 }{{14, 20}, {0, 10}} {
		if got := s.Aborted(r.from, r.to); len(got) != 0 {
			t.Errorf("Aborted(%d, %d) = %v, want none", r.from, r.to, got)
		}
	}
	d, err := Decode(s.Encode())
	if err != nil || !slices.Equal(d.Aborted(0, 100), want) {
		t.Fatalf("after Decode(Encode): %v %v", d.Aborted(0, 100), err)
	}
	// An open transaction keeps its producer from expiring.
	s.Record(3, 0, 0, 0, 20, 0)
	s.BeginTxn(3, 20)
	if got := s.Expired(1<<40, 1, 10); len(got) != 3 || got[0].PID != 1 || got[1].PID != 2 || got[2].PID != 99 {
		t.Fatalf("Expired = %v, want producers 1, 2 and 99", got)
	}
	if s.Expire(3, 0) {
		t.Fatal("a producer with an open transaction expired")
	}
}

// TestDuplicateTimestamp: a duplicate is answered with its original's
// max timestamp (Kafka's BatchMetadata.timestamp, the LogAppendTime of
// its Produce answer), whichever of the last five it is, and a state
// decoded from its encoding answers the same.
func TestDuplicateTimestamp(t *testing.T) {
	s := New()
	s.Record(1, 0, 0, 1, 10, 1001)
	s.Record(1, 0, 2, 2, 12, 1002)
	for _, st := range []*State{s, mustDecode(t, s.Encode())} {
		if v := st.Check(1, 0, 0, 1); !v.Duplicate || v.BaseOffset != 10 || v.Timestamp != 1001 {
			t.Fatalf("Check of the first batch = %+v, want a duplicate at 10, timestamp 1001", v)
		}
		if v := st.Check(1, 0, 2, 2); !v.Duplicate || v.BaseOffset != 12 || v.Timestamp != 1002 {
			t.Fatalf("Check of the last batch = %+v, want a duplicate at 12, timestamp 1002", v)
		}
	}
}

// TestMarkerTimestamp: a marker moves its producer's last timestamp and
// coordinator epoch (Kafka's ProducerStateEntry.update), as
// DescribeProducers shows and expiry judges.
func TestMarkerTimestamp(t *testing.T) {
	s := New()
	s.Record(1, 0, 0, 1, 10, 1001)
	s.BeginTxn(1, 10)
	s.EndTxn(1, 0, 0, true, 12, 5000)
	want := ProducerInfo{PID: 1, Epoch: 0, LastSequence: 1, LastTimestamp: 5000, CoordinatorEpoch: 0, TxnStartOffset: -1}
	if got := s.Describe(); len(got) != 1 || got[0] != want {
		t.Fatalf("Describe = %+v, want %+v", got, want)
	}
	if got := s.Expired(5000+99, 100, 10); len(got) != 0 {
		t.Fatalf("Expired = %v: judged by the batch, not the marker", got)
	}
	if got := s.Expired(5000+100, 100, 10); len(got) != 1 || got[0].LastTimestamp != 5000 {
		t.Fatalf("Expired = %v, want producer 1 at 5000", got)
	}
}

// v3Encoding is a state written before batch timestamps (version 3):
// producer 5 at epoch 1, last timestamp 9, no transaction open,
// coordinator epoch -1, batches [0, 0] at 6 and [1, 2] at 7; nothing
// aborted.
var v3Encoding = []byte{
	3, 0, 0, 0, 1,
	0, 0, 0, 0, 0, 0, 0, 5, 0, 1, 0, 0, 0, 0, 0, 0, 0, 9,
	0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 2,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 6,
	0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 7,
	0, 0, 0, 0,
}

func TestDecodeVersion3(t *testing.T) {
	s := mustDecode(t, v3Encoding)
	if v := s.Check(5, 1, 1, 2); !v.Duplicate || v.BaseOffset != 7 || v.Timestamp != 9 {
		t.Fatalf("Check of the last batch = %+v, want a duplicate at 7, timestamp 9 (the producer's)", v)
	}
	if v := s.Check(5, 1, 0, 0); !v.Duplicate || v.BaseOffset != 6 || v.Timestamp != -1 {
		t.Fatalf("Check of the first batch = %+v, want a duplicate at 6, timestamp unknown", v)
	}
	if d := mustDecode(t, s.Encode()); !bytes.Equal(d.Encode(), s.Encode()) || d.Check(5, 1, 0, 0).Timestamp != -1 {
		t.Fatalf("re-encoded as version %d: not the same state", encodingVersion)
	}
}

func mustDecode(t *testing.T, b []byte) *State {
	t.Helper()
	s, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
