package segment

import (
	"bytes"
	"testing"
)

func FuzzDecodeFrame(f *testing.F) {
	good := appendFrame(nil, BatchMeta{BaseOffset: 7, LastOffset: 9, MaxTimestamp: 1700000000000, Tag: 42}, fakeBatch(7, []byte("payload")))
	f.Add(good)
	f.Add(good[:len(good)-1])
	f.Add(good[:frameHeaderBytes])
	f.Add([]byte{})
	bad := bytes.Clone(good)
	bad[len(bad)-1] ^= 1
	f.Add(bad)
	f.Fuzz(func(t *testing.T, b []byte) {
		meta, batch, n, err := decodeFrame(b)
		if err != nil {
			return
		}
		if n > len(b) || n != frameHeaderBytes+len(batch) || meta.LastOffset < meta.BaseOffset {
			t.Fatalf("decoded n=%d batch=%d meta=%+v from %d bytes", n, len(batch), meta, len(b))
		}
		if again := appendFrame(nil, meta, batch); !bytes.Equal(again, b[:n]) {
			t.Fatalf("re-encoding differs")
		}
	})
}

func FuzzDecodeIndex(f *testing.F) {
	e := indexEntry{rel: 3, pos: 400, tsBefore: 99}
	f.Add(appendOffsetEntry(nil, 100, e), appendTimeEntry(nil, 100, e), int64(100), int64(1000))
	f.Add(appendOffsetEntry(nil, 100, e), appendTimeEntry(nil, 100, e), int64(100), int64(400))
	f.Add(appendOffsetEntry(nil, 0, e), appendTimeEntry(nil, 100, e), int64(100), int64(1000))
	f.Add([]byte("short"), []byte{}, int64(0), int64(0))
	f.Fuzz(func(t *testing.T, offsets, times []byte, segBase, logSize int64) {
		if rel, pos, err := decodeOffsetEntry(offsets, segBase); err == nil {
			if got := appendOffsetEntry(nil, segBase, indexEntry{rel: rel, pos: pos}); !bytes.Equal(got, offsets[:offsetEntryBytes]) {
				t.Fatal("offset entry re-encoding differs")
			}
		}
		if ts, rel, err := decodeTimeEntry(times, segBase); err == nil {
			if got := appendTimeEntry(nil, segBase, indexEntry{rel: rel, tsBefore: ts}); !bytes.Equal(got, times[:timeEntryBytes]) {
				t.Fatal("time entry re-encoding differs")
			}
		}
		entries := decodeIndex(offsets, times, segBase, logSize)
		for i, e := range entries {
			if e.pos == 0 || int64(e.pos) >= logSize {
				t.Fatalf("entry %d position %d outside (0, %d)", i, e.pos, logSize)
			}
			if i > 0 && (e.rel <= entries[i-1].rel || e.pos <= entries[i-1].pos || e.tsBefore < entries[i-1].tsBefore) {
				t.Fatalf("entries %d and %d out of order", i-1, i)
			}
		}
	})
}

func FuzzParseName(f *testing.F) {
	f.Add("00000000000000000000.log")
	f.Add("00000000000000001234.timeindex")
	f.Add("-0000000000000000001.index")
	f.Fuzz(func(t *testing.T, n string) {
		base, ext, ok := parseName(n)
		if ok && segmentName(base, ext) != n {
			t.Fatalf("%q parsed as %d %q", n, base, ext)
		}
	})
}
