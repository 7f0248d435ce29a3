package segment

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/gregor-streaming/gregor/raftlog/vfs"
	"pgregory.net/rapid"
)

// fakeBatch returns bytes that pass for a batch at base: the base offset
// field, then payload.
func fakeBatch(base int64, payload []byte) []byte {
	b := binary.BigEndian.AppendUint64(nil, uint64(base))
	return append(b, payload...)
}

type refBatch struct {
	data []byte
	meta BatchMeta
}

// refLog is the reference: every batch appended since the last Reset, and
// which part of them the log holds now and durably.
type refLog struct {
	hist                   []refBatch
	histStart              int64
	start                  int64
	syncedStart, syncedEnd int64
}

func (r *refLog) end() int64 {
	if len(r.hist) == 0 {
		return r.histStart
	}
	return r.hist[len(r.hist)-1].meta.LastOffset + 1
}

// live returns the batches in [start, end).
func (r *refLog) live() []refBatch {
	for i, b := range r.hist {
		if b.meta.BaseOffset >= r.start {
			return r.hist[i:]
		}
	}
	return nil
}

func (r *refLog) isBoundary(off int64) bool {
	if off == r.end() || off == r.histStart {
		return true
	}
	for _, b := range r.hist {
		if b.meta.BaseOffset == off || b.meta.LastOffset+1 == off {
			return true
		}
	}
	return false
}

// cover returns the offset the frame of live batch i covers from: the end
// of the batch before it (a rewrite may have dropped batches between), or
// the log start for the first.
func (r *refLog) cover(live []refBatch, i int) int64 {
	if i == 0 {
		return r.start
	}
	return live[i-1].meta.LastOffset + 1
}

func collect(t interface{ Fatalf(string, ...any) }, l *Log, from int64) []refBatch {
	var got []refBatch
	err := l.Batches(from, func(batch []byte, meta BatchMeta) error {
		got = append(got, refBatch{bytes.Clone(batch), meta})
		return nil
	})
	if err != nil {
		t.Fatalf("Batches(%d): %v", from, err)
	}
	return got
}

func checkLog(t *rapid.T, l *Log, ref *refLog) {
	if l.StartOffset() != ref.start || l.EndOffset() != ref.end() {
		t.Fatalf("log [%d, %d), reference [%d, %d)", l.StartOffset(), l.EndOffset(), ref.start, ref.end())
	}
	live := ref.live()
	var wantTag uint64
	if len(live) > 0 {
		wantTag = live[len(live)-1].meta.Tag
	}
	if l.LastTag() != wantTag {
		t.Fatalf("LastTag %d, want %d", l.LastTag(), wantTag)
	}
	got := collect(t, l, ref.start)
	if len(got) != len(live) {
		t.Fatalf("log holds %d batches, reference %d", len(got), len(live))
	}
	for i := range got {
		want := live[i].meta
		want.BaseOffset = ref.cover(live, i)
		if got[i].meta != want || !bytes.Equal(got[i].data, live[i].data) {
			t.Fatalf("batch %d: got %+v, want %+v", i, got[i].meta, want)
		}
	}
}

func TestLogProperty(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		opts := Options{
			SegmentBytesMax:    rapid.Int64Range(60, 3000).Draw(t, "segmentBytesMax"),
			IndexIntervalBytes: rapid.Int64Range(1, 600).Draw(t, "indexIntervalBytes"),
		}
		fsys := vfs.NewMem()
		rng := rand.New(rand.NewPCG(rapid.Uint64().Draw(t, "seed"), 0))
		const dir = "topic-0"
		l, err := Open(fsys, dir, opts)
		if err != nil {
			t.Fatal(err)
		}
		ref := &refLog{}
		var tag uint64

		t.Repeat(map[string]func(*rapid.T){
			"append": func(t *rapid.T) {
				base := ref.end()
				n := rapid.Int64Range(1, 5).Draw(t, "records")
				payload := rapid.SliceOfN(rapid.Byte(), 0, 200).Draw(t, "payload")
				tag++
				meta := BatchMeta{BaseOffset: base, LastOffset: base + n - 1, MaxTimestamp: rapid.Int64Range(0, 1000).Draw(t, "ts"), Tag: tag}
				data := fakeBatch(base, payload)
				if err := l.Append(data, meta); err != nil {
					t.Fatal(err)
				}
				ref.hist = append(ref.hist, refBatch{data, meta})
			},
			"appendBad": func(t *rapid.T) {
				base := ref.end() + rapid.Int64Range(-3, 3).Filter(func(d int64) bool { return d != 0 }).Draw(t, "delta")
				if err := l.Append(fakeBatch(base, nil), BatchMeta{BaseOffset: base, LastOffset: base}); err == nil {
					t.Fatalf("append at %d accepted, end %d", base, ref.end())
				}
			},
			"read": func(t *rapid.T) {
				off := rapid.Int64Range(ref.start-1, ref.end()+1).Draw(t, "offset")
				maxBytes := rapid.IntRange(0, 700).Draw(t, "maxBytes")
				got, err := l.Read(off, maxBytes)
				if off < ref.start || off > ref.end() {
					if !errors.Is(err, ErrOffsetOutOfRange) {
						t.Fatalf("Read(%d) outside [%d, %d]: err %v", off, ref.start, ref.end(), err)
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				var want []byte
				for _, b := range ref.live() {
					if b.meta.LastOffset < off {
						continue
					}
					if len(want) > 0 && len(want)+len(b.data) > maxBytes {
						break
					}
					want = append(want, b.data...)
				}
				if !bytes.Equal(got, want) {
					t.Fatalf("Read(%d, %d): %d bytes, want %d", off, maxBytes, len(got), len(want))
				}
			},
			"timestamp": func(t *rapid.T) {
				ts := rapid.Int64Range(-5, 1005).Draw(t, "ts")
				off, ok := l.OffsetForTimestamp(ts)
				var wantOff int64
				wantOK := false
				live := ref.live()
				for i, b := range live {
					if b.meta.MaxTimestamp >= ts {
						wantOff, wantOK = ref.cover(live, i), true
						break
					}
				}
				if off != wantOff || ok != wantOK {
					t.Fatalf("OffsetForTimestamp(%d) = %d, %v; want %d, %v", ts, off, ok, wantOff, wantOK)
				}
			},
			"sync": func(t *rapid.T) {
				if err := l.Sync(); err != nil {
					t.Fatal(err)
				}
				ref.syncedStart, ref.syncedEnd = ref.start, ref.end()
			},
			"reset": func(t *rapid.T) {
				s := rapid.Int64Range(0, ref.end()+50).Draw(t, "start")
				if err := l.Reset(s); err != nil {
					t.Fatal(err)
				}
				*ref = refLog{histStart: s, start: s, syncedStart: s, syncedEnd: s}
			},
			"truncatePrefix": func(t *rapid.T) {
				off := rapid.Int64Range(ref.start-1, ref.end()+1).Draw(t, "offset")
				if err := l.TruncatePrefix(off); err != nil {
					t.Fatal(err)
				}
				ns := l.StartOffset()
				if ns < ref.start || ns > max(ref.start, off) || !ref.isBoundary(ns) {
					t.Fatalf("TruncatePrefix(%d): start %d, was %d", off, ns, ref.start)
				}
				ref.start = ns
			},
			"roll": func(t *rapid.T) {
				if err := l.Roll(); err != nil {
					t.Fatal(err)
				}
			},
			"rewrite": func(t *rapid.T) {
				// Batches of the sealed segments; pick [from, to) among
				// their boundaries and drop or replace some of them.
				segs := l.Segments()
				active := segs[len(segs)-1].Base
				live := ref.live()
				var sealed []int
				for i, b := range live {
					if b.meta.LastOffset < active {
						sealed = append(sealed, i)
					}
				}
				if len(sealed) == 0 {
					return
				}
				i := rapid.IntRange(0, len(sealed)-1).Draw(t, "from")
				j := rapid.IntRange(i, len(sealed)-1).Draw(t, "to")
				from, to := ref.cover(live, sealed[i]), live[sealed[j]].meta.LastOffset+1
				fates := map[int64]int{} // batch base -> 0 keep, 1 drop, 2 replace
				err := l.Rewrite(from, to, func(batch []byte, meta BatchMeta) ([]byte, int64, bool, error) {
					base := int64(binary.BigEndian.Uint64(batch))
					if base < from || meta.LastOffset >= to {
						t.Fatalf("Rewrite(%d, %d) passed batch [%d, %d]", from, to, base, meta.LastOffset)
					}
					fate := rapid.IntRange(0, 2).Draw(t, "fate")
					if meta.LastOffset == to-1 && fate == 1 {
						fate = 0
					}
					fates[base] = fate
					switch fate {
					case 1:
						return nil, 0, false, nil
					case 2:
						return fakeBatch(base, []byte("rewritten")), meta.MaxTimestamp + 1, true, nil
					}
					return batch, meta.MaxTimestamp, true, nil
				})
				if err != nil {
					t.Fatal(err)
				}
				var hist []refBatch
				for _, b := range ref.hist {
					fate, seen := fates[b.meta.BaseOffset]
					if b.meta.BaseOffset >= ref.start && b.meta.BaseOffset >= from && b.meta.LastOffset < to && !seen {
						t.Fatalf("Rewrite(%d, %d) did not pass batch at %d", from, to, b.meta.BaseOffset)
					}
					switch fate {
					case 1:
						continue
					case 2:
						b.data = fakeBatch(b.meta.BaseOffset, []byte("rewritten"))
						b.meta.MaxTimestamp++
					}
					hist = append(hist, b)
				}
				ref.hist = hist
			},
			"reopen": func(t *rapid.T) {
				if err := l.Close(); err != nil {
					t.Fatal(err)
				}
				if l, err = Open(fsys, dir, opts); err != nil {
					t.Fatal(err)
				}
			},
			"crash": func(t *rapid.T) {
				fsys.Crash(rng)
				if _, err := l.Read(ref.start, 1); err == nil && ref.start < ref.end() {
					t.Fatal("read through a crashed handle succeeded")
				}
				l.Close()
				if l, err = Open(fsys, dir, opts); err != nil {
					t.Fatal(err)
				}
				ns, ne := l.StartOffset(), l.EndOffset()
				if ns < ref.syncedStart || ns > ref.start || !ref.isBoundary(ns) || ns < ref.histStart {
					t.Fatalf("after crash start %d; synced %d, current %d", ns, ref.syncedStart, ref.start)
				}
				if ne < ref.syncedEnd || ne > ref.end() || !ref.isBoundary(ne) || ne < ns {
					t.Fatalf("after crash end %d; synced %d, current %d", ne, ref.syncedEnd, ref.end())
				}
				for len(ref.hist) > 0 && ref.end() > ne {
					ref.hist = ref.hist[:len(ref.hist)-1]
				}
				ref.start = ns
				ref.syncedStart, ref.syncedEnd = ns, ne
			},
			"": func(t *rapid.T) { checkLog(t, l, ref) },
		})
	})
}
