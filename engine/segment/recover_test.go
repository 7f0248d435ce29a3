package segment

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/gregor-streaming/gregor/raftlog/vfs"
)

const testDir = "p"

// fill appends n one-record batches with payloads of size bytes and
// timestamps 10*offset, and syncs.
func fill(t *testing.T, l *Log, n, size int) {
	t.Helper()
	for range n {
		base := l.EndOffset()
		b := fakeBatch(base, bytes.Repeat([]byte{byte(base)}, size))
		if err := l.Append(b, BatchMeta{BaseOffset: base, LastOffset: base, MaxTimestamp: 10 * base, Tag: uint64(base) + 100}); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Sync(); err != nil {
		t.Fatal(err)
	}
}

func openT(t *testing.T, fsys vfs.FS, opts Options) *Log {
	t.Helper()
	l, err := Open(fsys, testDir, opts)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func allBatches(t *testing.T, l *Log) []BatchMeta {
	t.Helper()
	var metas []BatchMeta
	if err := l.Batches(l.StartOffset(), func(_ []byte, m BatchMeta) error {
		metas = append(metas, m)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return metas
}

var smallSegments = Options{SegmentBytesMax: 1000, IndexIntervalBytes: 100}

func TestIndexRebuiltWhenMissingOrDamaged(t *testing.T) {
	damages := map[string]func(m *vfs.Mem, name string){
		"missing": func(m *vfs.Mem, name string) { m.Remove(name) },
		"bitflip": func(m *vfs.Mem, name string) { m.FlipBit(name, 13, 2) },
		"garbage": func(m *vfs.Mem, name string) {
			f, _ := m.Open(name)
			f.Write([]byte("not an index entry at all"))
			f.Close()
		},
		"wrong position": func(m *vfs.Mem, name string) {
			// A valid-looking entry that points into the middle of a frame.
			f, _ := m.Open(name)
			f.Truncate(0)
			if path := name[len(name)-len(extIndex):]; path == extIndex {
				f.Write(appendOffsetEntry(nil, 0, indexEntry{rel: 1, pos: 7}))
			} else {
				f.Write(appendTimeEntry(nil, 0, indexEntry{rel: 1, tsBefore: 0}))
			}
			f.Close()
		},
	}
	for what, damage := range damages {
		for _, ext := range []string{extIndex, extTimeIndex} {
			t.Run(what+ext, func(t *testing.T) {
				m := vfs.NewMem()
				l := openT(t, m, smallSegments)
				fill(t, l, 40, 50)
				want := allBatches(t, l)
				l.Close()
				names, _ := m.List(testDir)
				for _, n := range names {
					if n[len(n)-len(ext):] == ext && (ext != extIndex || n[len(n)-len(extTimeIndex):] != extTimeIndex) {
						damage(m, testDir+"/"+n)
					}
				}
				l = openT(t, m, smallSegments)
				if got := allBatches(t, l); fmt.Sprint(got) != fmt.Sprint(want) {
					t.Fatalf("after index damage: %v, want %v", got, want)
				}
				for off := int64(0); off < 40; off++ {
					b, err := l.Read(off, 1)
					if err != nil || len(b) != 58 || int64(b[7]) != off {
						t.Fatalf("Read(%d) = %d bytes, %v", off, len(b), err)
					}
					if got, ok := l.OffsetForTimestamp(10*off - 5); !ok || got != off {
						t.Fatalf("OffsetForTimestamp(%d) = %d, %v", 10*off-5, got, ok)
					}
				}
				// The rebuilt index equals the one Append writes.
				fresh := openT(t, vfs.NewMem(), smallSegments)
				fill(t, fresh, 40, 50)
				for i := range l.segs {
					if fmt.Sprint(l.segs[i].entries) != fmt.Sprint(fresh.segs[i].entries) {
						t.Fatalf("segment %d entries %v, fresh %v", i, l.segs[i].entries, fresh.segs[i].entries)
					}
				}
			})
		}
	}
}

func TestBitRotIsNeverServed(t *testing.T) {
	m := vfs.NewMem()
	l := openT(t, m, smallSegments)
	fill(t, l, 40, 50)
	if len(l.segs) < 3 {
		t.Fatalf("want several segments, have %d", len(l.segs))
	}
	// Rot a payload byte of a frame in the middle of the first segment.
	seg := l.segs[0]
	pos := int64(2*(frameHeaderBytes+58) + frameHeaderBytes + 20)
	if err := m.FlipBit(testDir+"/"+segmentName(seg.base, extLog), pos, 0); err != nil {
		t.Fatal(err)
	}
	if b, err := l.Read(0, 1<<20); !errors.Is(err, ErrCorrupt) || b != nil {
		t.Fatalf("Read over rotten byte: %d bytes, err %v", len(b), err)
	}
	if b, err := l.Read(2, 1); !errors.Is(err, ErrCorrupt) || b != nil {
		t.Fatalf("Read of rotten batch: %d bytes, err %v", len(b), err)
	}
	if _, ok, err := l.LookupTimestamp(15); !errors.Is(err, ErrCorrupt) || ok {
		t.Fatalf("LookupTimestamp over rotten byte: %v, %v", ok, err)
	}
	// Batches before the rot are still served.
	if b, err := l.Read(0, 1); err != nil || len(b) != 58 {
		t.Fatalf("Read(0) = %d bytes, %v", len(b), err)
	}
	// A restart does not hide the rot in a sealed segment, and does not
	// serve it either.
	l.Close()
	l = openT(t, m, smallSegments)
	if _, err := l.Read(2, 1); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("after reopen Read of rotten batch: %v", err)
	}
}

func TestTornTailCutOff(t *testing.T) {
	m := vfs.NewMem()
	l := openT(t, m, Options{})
	fill(t, l, 5, 30)
	l.Close()
	name := testDir + "/" + segmentName(0, extLog)
	f, _ := m.Open(name)
	size, _ := f.Size()
	torn := appendFrame(nil, BatchMeta{BaseOffset: 5, LastOffset: 5}, fakeBatch(5, make([]byte, 30)))
	f.Write(torn[:len(torn)-3])
	f.Close()
	l = openT(t, m, Options{})
	if l.EndOffset() != 5 {
		t.Fatalf("end %d after torn tail, want 5", l.EndOffset())
	}
	if got, _ := vfs.ReadFile(m, name); int64(len(got)) != size {
		t.Fatalf("log file %d bytes, want %d", len(got), size)
	}
	// The repair is durable: a crash does not bring the torn frame back.
	m.Crash(rand.New(rand.NewPCG(1, 1)))
	if got, _ := vfs.ReadFile(m, name); int64(len(got)) != size {
		t.Fatalf("after crash log file %d bytes, want %d", len(got), size)
	}
	l = openT(t, m, Options{})
	fill(t, l, 1, 30)
	if l.EndOffset() != 6 || l.LastTag() != 105 {
		t.Fatalf("end %d tag %d", l.EndOffset(), l.LastTag())
	}
}

func TestCorruptMiddleOfActiveSegmentCutsTail(t *testing.T) {
	m := vfs.NewMem()
	l := openT(t, m, Options{})
	fill(t, l, 10, 30)
	l.Close()
	m.FlipBit(testDir+"/"+segmentName(0, extLog), 4*(frameHeaderBytes+38)+45, 3)
	l = openT(t, m, Options{})
	if l.EndOffset() != 4 || l.LastTag() != 103 {
		t.Fatalf("end %d tag %d, want 4 and 103", l.EndOffset(), l.LastTag())
	}
}

func TestResetOffsetSurvivesCrash(t *testing.T) {
	m := vfs.NewMem()
	l := openT(t, m, smallSegments)
	fill(t, l, 30, 50)
	if err := l.Reset(1234); err != nil {
		t.Fatal(err)
	}
	m.Crash(rand.New(rand.NewPCG(2, 2)))
	l = openT(t, m, smallSegments)
	if l.StartOffset() != 1234 || l.EndOffset() != 1234 || l.LastTag() != 0 {
		t.Fatalf("after reset and crash [%d, %d) tag %d", l.StartOffset(), l.EndOffset(), l.LastTag())
	}
	if b, err := l.Read(1234, 100); err != nil || len(b) != 0 {
		t.Fatalf("Read at end: %d bytes, %v", len(b), err)
	}
	if _, err := l.Read(0, 100); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("Read below start: %v", err)
	}
	names, _ := m.List(testDir)
	if len(names) != 3 {
		t.Fatalf("files after reset: %v", names)
	}
}

func TestOrphansAndGapsRemoved(t *testing.T) {
	m := vfs.NewMem()
	l := openT(t, m, smallSegments)
	fill(t, l, 30, 50)
	last := l.segs[len(l.segs)-1].base
	l.Close()
	// An orphan index and a segment beyond a gap, as a real file system
	// might leave after a crash inside Reset.
	vfs.WriteFile(m, testDir+"/"+segmentName(7777, extIndex), []byte("x"))
	far := openT(t, vfs.NewMem(), smallSegments)
	far.Reset(5000)
	fill(t, far, 3, 50)
	data, _ := vfs.ReadFile(far.fs, testDir+"/"+segmentName(5000, extLog))
	vfs.WriteFile(m, testDir+"/"+segmentName(5000, extLog), data)
	l = openT(t, m, smallSegments)
	if l.EndOffset() != 30 || l.segs[len(l.segs)-1].base != last {
		t.Fatalf("end %d", l.EndOffset())
	}
	for _, n := range []string{segmentName(7777, extIndex), segmentName(5000, extLog)} {
		if m.Exists(testDir + "/" + n) {
			t.Fatalf("%s not removed", n)
		}
	}
}

func TestAppendRejects(t *testing.T) {
	l := openT(t, vfs.NewMem(), Options{})
	for name, c := range map[string]struct {
		batch []byte
		meta  BatchMeta
	}{
		"gap":         {fakeBatch(1, nil), BatchMeta{BaseOffset: 1, LastOffset: 1}},
		"short":       {[]byte{0, 0}, BatchMeta{}},
		"field":       {fakeBatch(9, nil), BatchMeta{}},
		"last<base":   {fakeBatch(0, nil), BatchMeta{LastOffset: -1}},
		"last<base 2": {fakeBatch(0, nil), BatchMeta{BaseOffset: 0, LastOffset: -5}},
	} {
		if err := l.Append(c.batch, c.meta); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if l.EndOffset() != 0 {
		t.Fatalf("end %d", l.EndOffset())
	}
}

// TestRotInSealedSegmentRefused: a rolled segment was synced before the
// next one began, so frames that fail their checks there are bit rot, not
// a torn write. Open refuses the log (ErrCorrupt) and removes nothing;
// before, it cut the log there and deleted every later segment, and the
// partition above re-appended what followed at other offsets.
func TestRotInSealedSegmentRefused(t *testing.T) {
	m := vfs.NewMem()
	l := openT(t, m, smallSegments)
	fill(t, l, 40, 50)
	if len(l.segs) < 3 {
		t.Fatalf("want several segments, have %d", len(l.segs))
	}
	first := testDir + "/" + segmentName(l.segs[0].base, extLog)
	size := l.segs[0].size
	l.Close()
	before, _ := m.List(testDir)
	// The last frame of the first segment lies past its last index entry,
	// where recovery scans.
	if err := m.FlipBit(first, size-10, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(m, testDir, smallSegments); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Open over a rotten sealed segment: %v, want ErrCorrupt", err)
	}
	if after, _ := m.List(testDir); !slices.Equal(before, after) {
		t.Fatalf("files changed by a refused Open:\n%v\n%v", before, after)
	}
}

// TestTruncateSuffix: dropping the batches from an offset on, in the
// active segment, in an older one, and at a segment's start, is durable at
// once (a crash right after does not bring them back), and appends go on
// from the new end with the right tag and index.
func TestTruncateSuffix(t *testing.T) {
	for _, cut := range []int64{39, 30, 0, 12} {
		m := vfs.NewMem()
		l := openT(t, m, smallSegments)
		fill(t, l, 40, 50)
		segs := len(l.segs)
		if err := l.TruncateSuffix(cut); err != nil {
			t.Fatalf("cut %d: %v", cut, err)
		}
		if l.EndOffset() != cut {
			t.Fatalf("cut %d: log ends at %d", cut, l.EndOffset())
		}
		if want := uint64(0); cut > 0 {
			want = uint64(cut-1) + 100
			if l.LastTag() != want {
				t.Fatalf("cut %d: last tag %d, want %d", cut, l.LastTag(), want)
			}
		}
		m.Crash(rand.New(rand.NewPCG(uint64(cut), 1)))
		l = openT(t, m, smallSegments)
		if l.EndOffset() != cut || len(l.segs) > segs {
			t.Fatalf("cut %d: after a crash the log ends at %d", cut, l.EndOffset())
		}
		fill(t, l, 3, 50)
		metas := allBatches(t, l)
		if len(metas) != int(cut)+3 || metas[len(metas)-1].BaseOffset != cut+2 {
			t.Fatalf("cut %d: %d batches after appending, last %+v", cut, len(metas), metas[len(metas)-1])
		}
	}
	m := vfs.NewMem()
	l := openT(t, m, smallSegments)
	fill(t, l, 5, 50)
	if err := l.TruncateSuffix(9); err == nil {
		t.Fatal("truncate past the end accepted")
	}
}

// TestOpenFailsCleanly: a write that recovery needs (here rebuilding a
// missing index) failing makes Open return the error. Regression: every
// error return of loadSegment set its named result to nil before the
// deferred cleanup closed it, so Open panicked instead; the simulator's
// disk errors reached it through a replica's retry after a storage
// failure.
func TestOpenFailsCleanly(t *testing.T) {
	m := vfs.NewMem()
	l := openT(t, m, smallSegments)
	fill(t, l, 20, 100)
	l.Close()
	if err := m.Remove(testDir + "/" + segmentName(0, extIndex)); err != nil {
		t.Fatal(err)
	}
	errWrite := errors.New("injected write error")
	m.InjectErrors(errWrite, nil)
	if _, err := Open(m, testDir, smallSegments); !errors.Is(err, errWrite) {
		t.Fatalf("Open with failing writes: %v, want the write error", err)
	}
	m.InjectErrors(nil, nil)
	l = openT(t, m, smallSegments)
	if got := len(allBatches(t, l)); got != 20 {
		t.Fatalf("%d batches after the disk works again, want 20", got)
	}
}

// TestEndsBatch: an offset is a batch boundary when a frame ends just
// before it (the log's start and end are too); inside a frame it is not.
func TestEndsBatch(t *testing.T) {
	l := openT(t, vfs.NewMem(), smallSegments)
	for _, m := range []BatchMeta{{BaseOffset: 0, LastOffset: 1}, {BaseOffset: 2, LastOffset: 4}, {BaseOffset: 5, LastOffset: 5}} {
		if err := l.Append(fakeBatch(m.BaseOffset, bytes.Repeat([]byte{1}, 80)), m); err != nil {
			t.Fatal(err)
		}
	}
	for off, want := range map[int64]bool{0: true, 1: false, 2: true, 3: false, 4: false, 5: true, 6: true, 7: false} {
		if got, err := l.EndsBatch(off); err != nil || got != want {
			t.Errorf("EndsBatch(%d) = %v, %v; want %v", off, got, err, want)
		}
	}
}
