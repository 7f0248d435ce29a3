package memwal

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
	"pgregory.net/rapid"
)

func rec(i int) []byte { return []byte(fmt.Sprintf("record-%d", i)) }

func mustReadAll(t testing.TB, w *WAL) ([]byte, [][]byte) {
	t.Helper()
	img, rs, err := w.ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	return img, rs
}

func TestRoundTripWithoutCrash(t *testing.T) {
	w := New()
	if img, rs := mustReadAll(t, w); img != nil || rs != nil {
		t.Fatalf("new WAL read %q, %q", img, rs)
	}
	want := [][]byte{rec(0), rec(1), {}, rec(3)}
	if err := w.Append(want[:2]); err != nil {
		t.Fatal(err)
	}
	if err := w.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := w.Append(want[2:]); err != nil {
		t.Fatal(err)
	}
	_, rs := mustReadAll(t, w)
	if diff := cmp.Diff(want, rs); diff != "" {
		t.Fatalf("records (-want +got):\n%s", diff)
	}
	// ReadAll hands out copies.
	rs[0][0] = 'X'
	if _, again := mustReadAll(t, w); !bytes.Equal(again[0], rec(0)) {
		t.Fatalf("ReadAll aliases the log: %q", again[0])
	}
}

func TestCheckpointPurgesAndSurvivesCrash(t *testing.T) {
	w := New()
	for i := range 100 {
		if err := w.Append([][]byte{rec(i)}); err != nil {
			t.Fatal(err)
		}
	}
	before := w.Stats().LogBytes
	if err := w.Checkpoint([]byte("image")); err != nil {
		t.Fatal(err)
	}
	if after := w.Stats().LogBytes; after != int64(frameBytes([]byte("image"))) {
		t.Fatalf("log is %d bytes after checkpoint (was %d), want one image frame", after, before)
	}
	if err := w.Append([][]byte{rec(100)}); err != nil {
		t.Fatal(err)
	}
	w.Crash(rand.New(rand.NewPCG(1, 2)))
	img, rs := mustReadAll(t, w)
	if string(img) != "image" || len(rs) > 1 {
		t.Fatalf("after crash: %q, %q", img, rs)
	}
	// An empty image is still an image.
	if err := w.Checkpoint(nil); err != nil {
		t.Fatal(err)
	}
	w.Crash(rand.New(rand.NewPCG(1, 2)))
	if img, rs := mustReadAll(t, w); img == nil || len(img) != 0 || rs != nil {
		t.Fatalf("after empty checkpoint: %q, %q", img, rs)
	}
}

// TestCrashOutcomes crashes the same log under many seeds: synced records
// always survive, unsynced ones sometimes, torn frames happen and are cut,
// and the restarted WAL appends after the cut.
func TestCrashOutcomes(t *testing.T) {
	kept := map[int]int{}
	torn := 0
	for seed := range uint64(200) {
		w := New()
		if err := w.Append([][]byte{rec(0), rec(1)}); err != nil {
			t.Fatal(err)
		}
		if err := w.Sync(); err != nil {
			t.Fatal(err)
		}
		if err := w.Append([][]byte{rec(2), rec(3), rec(4)}); err != nil {
			t.Fatal(err)
		}
		w.Crash(rand.New(rand.NewPCG(seed, 0)))
		if err := w.Append([][]byte{rec(9)}); err == nil {
			t.Fatal("Append after Crash before ReadAll succeeded")
		}
		_, rs := mustReadAll(t, w)
		if len(rs) < 2 || len(rs) > 5 {
			t.Fatalf("seed %d: %d records survived, want 2..5", seed, len(rs))
		}
		for i, r := range rs {
			if !bytes.Equal(r, rec(i)) {
				t.Fatalf("seed %d: record %d is %q", seed, i, r)
			}
		}
		kept[len(rs)]++
		torn += int(w.Stats().TornCrashes)
		// Appends go after the cut and survive a clean restart.
		if err := w.Append([][]byte{rec(len(rs))}); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		w.Crash(rand.New(rand.NewPCG(seed, 1)))
		if _, again := mustReadAll(t, w); len(again) != len(rs)+1 || !bytes.Equal(again[len(rs)], rec(len(rs))) {
			t.Fatalf("seed %d: after append and clean restart read %q", seed, again)
		}
	}
	for n := 2; n <= 5; n++ {
		if kept[n] == 0 {
			t.Errorf("no seed kept exactly %d records: %v", n, kept)
		}
	}
	if torn == 0 {
		t.Error("no crash tore a frame")
	}
}

func TestClosed(t *testing.T) {
	w := New()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Append([][]byte{rec(0)}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Append after Close: %v", err)
	}
	if err := w.Append(nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("empty Append after Close: %v", err)
	}
}

// TestCrashProperty: random Append/Sync/Checkpoint/Crash sequences. After
// each crash ReadAll returns exactly the newest checkpoint image and a
// prefix of the records appended after it that holds every synced one.
func TestCrashProperty(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		w := New()
		var (
			image    []byte // newest checkpoint image, nil if none
			hasImage bool
			recs     [][]byte // records since the checkpoint
			synced   int      // how many of recs are synced
		)
		record := rapid.SliceOfN(rapid.Byte(), 0, 64)
		t.Repeat(map[string]func(*rapid.T){
			"append": func(t *rapid.T) {
				rs := rapid.SliceOfN(record, 0, 4).Draw(t, "recs")
				if err := w.Append(rs); err != nil {
					t.Fatal(err)
				}
				recs = append(recs, rs...)
			},
			"sync": func(t *rapid.T) {
				if err := w.Sync(); err != nil {
					t.Fatal(err)
				}
				synced = len(recs)
			},
			"checkpoint": func(t *rapid.T) {
				img := record.Draw(t, "image")
				if err := w.Checkpoint(img); err != nil {
					t.Fatal(err)
				}
				image, hasImage = img, true
				recs, synced = nil, 0
			},
			"crash": func(t *rapid.T) {
				w.Crash(rand.New(rand.NewPCG(rapid.Uint64().Draw(t, "seed"), 0)))
				img, got, err := w.ReadAll()
				if err != nil {
					t.Fatal(err)
				}
				if hasImage != (img != nil) || !bytes.Equal(img, image) {
					t.Fatalf("image %q (nil %v), want %q (present %v)", img, img == nil, image, hasImage)
				}
				if len(got) < synced || len(got) > len(recs) {
					t.Fatalf("%d records survived, want %d..%d", len(got), synced, len(recs))
				}
				for i, r := range got {
					if !bytes.Equal(r, recs[i]) {
						t.Fatalf("record %d is %q, want %q", i, r, recs[i])
					}
				}
				recs = recs[:len(got)]
				synced = len(got)
			},
		})
	})
}

func encodeFrames(frames []frame) []byte {
	var b []byte
	for _, f := range frames {
		b = appendFrame(b, f.kind, f.payload)
	}
	return b
}

func FuzzDecode(f *testing.F) {
	stream := encodeFrames([]frame{
		{kindRecord, []byte("a")},
		{kindImage, []byte("image")},
		{kindRecord, []byte("after")},
		{kindRecord, nil},
	})
	f.Add([]byte{})
	f.Add(stream)
	f.Add(stream[:len(stream)-3])
	flipped := bytes.Clone(stream)
	flipped[12] ^= 0x40
	f.Add(flipped)
	f.Add(append(bytes.Clone(stream), 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 1))
	f.Fuzz(func(t *testing.T, b []byte) {
		frames, valid := decodeFrames(b)
		if valid < 0 || valid > len(b) {
			t.Fatalf("valid %d of %d bytes", valid, len(b))
		}
		// The valid prefix is exactly the frames, re-encoded.
		if re := encodeFrames(frames); !bytes.Equal(re, b[:valid]) {
			t.Fatalf("re-encoding %d frames gives %d bytes, valid prefix is %d", len(frames), len(re), valid)
		}
		// Decoding is prefix-stable: the valid prefix decodes whole.
		if again, v := decodeFrames(b[:valid]); v != valid || len(again) != len(frames) {
			t.Fatalf("valid prefix decodes to %d bytes, %d frames; want %d, %d", v, len(again), valid, len(frames))
		}
		image, recs := fold(frames)
		for _, fr := range frames {
			if fr.kind == kindImage && image == nil {
				t.Fatal("an image frame folded to no image")
			}
		}
		_ = recs
	})
}

func TestCrashAtSync(t *testing.T) {
	w := New()
	if err := w.Append([][]byte{[]byte("a")}); err != nil {
		t.Fatal(err)
	}
	if err := w.Sync(); err != nil {
		t.Fatal(err)
	}
	w.CrashAtSync(2)
	if err := w.Append([][]byte{[]byte("b")}); err != nil {
		t.Fatal(err)
	}
	if err := w.Sync(); err != nil { // the first of two: syncs
		t.Fatal(err)
	}
	if err := w.Append([][]byte{[]byte("c")}); err != nil {
		t.Fatal(err)
	}
	if w.CrashPointReached() {
		t.Fatal("crash point reached before the second sync")
	}
	if err := w.Sync(); !errors.Is(err, ErrCrashPoint) {
		t.Fatalf("second sync: %v, want ErrCrashPoint", err)
	}
	if !w.CrashPointReached() {
		t.Fatal("crash point not reported after the second sync")
	}
	if err := w.Append([][]byte{[]byte("d")}); !errors.Is(err, ErrCrashPoint) {
		t.Fatalf("append after the crash point: %v, want ErrCrashPoint", err)
	}
	w.Crash(rand.New(rand.NewPCG(1, 2)))
	if w.CrashPointReached() {
		t.Fatal("crash point still reported after Crash")
	}
	_, recs, err := w.ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) < 2 || string(recs[0]) != "a" || string(recs[1]) != "b" {
		t.Fatalf("after the crash: %q; want the synced a, b (and maybe c)", recs)
	}
	if len(recs) > 3 {
		t.Fatalf("after the crash: %q; d was never appended", recs)
	}
	if err := w.Append([][]byte{[]byte("e")}); err != nil {
		t.Fatalf("append after Crash and ReadAll: %v", err)
	}
}

// TestFlipBitRefused: bit rot anywhere in synced frames, the middle of the
// log or its last frame, before or after a crash, is ErrCorrupt. ReadAll
// never cuts synced records (votes and entries the broker acknowledged)
// as if they were a torn tail.
func TestFlipBitRefused(t *testing.T) {
	build := func() *WAL {
		w := New()
		for i := range 5 {
			if err := w.Append([][]byte{rec(i)}); err != nil {
				t.Fatal(err)
			}
			if err := w.Sync(); err != nil {
				t.Fatal(err)
			}
		}
		return w
	}
	size := build().DurableBytes()
	last := size - frameBytes(rec(4))
	for _, crash := range []bool{false, true} {
		for _, off := range []int{0, 3, 4, 8, 9, size / 2, last, last + 8, size - 1} {
			w := build()
			if crash {
				if err := w.Append([][]byte{rec(5)}); err != nil { // unsynced
					t.Fatal(err)
				}
				w.Crash(rand.New(rand.NewPCG(uint64(off), 0)))
			}
			if err := w.FlipBit(off, uint(off)); err != nil {
				t.Fatal(err)
			}
			if _, recs, err := w.ReadAll(); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("crash %v, rot at %d of %d: ReadAll gave %d records, %v; want ErrCorrupt", crash, off, size, len(recs), err)
			}
		}
	}
	w := build()
	if err := w.FlipBit(size, 0); err == nil {
		t.Fatal("FlipBit beyond the durable bytes succeeded")
	}
	if err := w.Append([][]byte{rec(5)}); err != nil {
		t.Fatal(err)
	}
	if err := w.FlipBit(size, 0); err == nil {
		t.Fatal("FlipBit of an unsynced frame succeeded")
	}
}

// TestInjectErrors: a full disk refuses appends and checkpoints and writes
// nothing; a failing sync leaves the records unsynced, so a crash may lose
// them; clearing the errors restores the WAL.
func TestInjectErrors(t *testing.T) {
	w := New()
	if err := w.Append([][]byte{rec(0)}); err != nil {
		t.Fatal(err)
	}
	if err := w.Sync(); err != nil {
		t.Fatal(err)
	}
	w.InjectErrors(syscall.ENOSPC, nil)
	if err := w.Append([][]byte{rec(1)}); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("append on a full disk: %v", err)
	}
	if err := w.Checkpoint([]byte("img")); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("checkpoint on a full disk: %v", err)
	}
	w.InjectErrors(nil, syscall.EIO)
	if err := w.Append([][]byte{rec(1)}); err != nil {
		t.Fatal(err)
	}
	if err := w.Sync(); !errors.Is(err, syscall.EIO) {
		t.Fatalf("sync on a failing disk: %v", err)
	}
	if s := w.Stats(); s.Syncs != 1 {
		t.Fatalf("%d syncs counted, want 1", s.Syncs)
	}
	lost := false
	for seed := range uint64(20) {
		c := New()
		c.Append([][]byte{rec(0)})
		c.Sync()
		c.InjectErrors(nil, syscall.EIO)
		c.Append([][]byte{rec(1)})
		if err := c.Sync(); err == nil {
			t.Fatal("sync succeeded")
		}
		c.Crash(rand.New(rand.NewPCG(seed, 0)))
		_, rs := mustReadAll(t, c)
		if len(rs) == 0 || !bytes.Equal(rs[0], rec(0)) {
			t.Fatalf("seed %d: the synced record was lost: %q", seed, rs)
		}
		lost = lost || len(rs) == 1
	}
	if !lost {
		t.Fatal("no crash lost the record whose sync failed")
	}
	w.InjectErrors(nil, nil)
	if err := w.Sync(); err != nil {
		t.Fatal(err)
	}
	if _, rs := mustReadAll(t, w); len(rs) != 2 {
		t.Fatalf("after the disk recovered: %q", rs)
	}
}
