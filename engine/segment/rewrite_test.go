package segment

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/gregor-streaming/gregor/raftlog/vfs"
)

var errCrashPoint = errors.New("crash point")

// crashFS counts the operations that change what is durable (file and
// directory syncs, renames, removals) and fails the one numbered point
// after crashing the file system under it.
type crashFS struct {
	*vfs.Mem
	n, point int
	rng      *rand.Rand
}

func (c *crashFS) hit() error {
	c.n++
	if c.n == c.point {
		c.Mem.Crash(c.rng)
		return errCrashPoint
	}
	return nil
}

func (c *crashFS) Create(name string) (vfs.File, error) {
	f, err := c.Mem.Create(name)
	return crashFile{f, c}, err
}

func (c *crashFS) Open(name string) (vfs.File, error) {
	f, err := c.Mem.Open(name)
	return crashFile{f, c}, err
}

func (c *crashFS) Remove(name string) error {
	if err := c.hit(); err != nil {
		return err
	}
	return c.Mem.Remove(name)
}

func (c *crashFS) Rename(a, b string) error {
	if err := c.hit(); err != nil {
		return err
	}
	return c.Mem.Rename(a, b)
}

func (c *crashFS) SyncDir(dir string) error {
	if err := c.hit(); err != nil {
		return err
	}
	return c.Mem.SyncDir(dir)
}

type crashFile struct {
	vfs.File
	c *crashFS
}

func (f crashFile) Sync() error {
	if err := f.c.hit(); err != nil {
		return err
	}
	return f.File.Sync()
}

// TestRewriteCrashAtEveryStep crashes a rewrite of three sealed segments at
// each of its durable steps in turn: the log that opens afterwards is the
// old one or the new one, whole, with its later segments intact.
func TestRewriteCrashAtEveryStep(t *testing.T) {
	const dir = "p"
	build := func() (*vfs.Mem, *Log) {
		m := vfs.NewMem()
		l, err := Open(m, dir, Options{SegmentBytesMax: 200, IndexIntervalBytes: 30})
		if err != nil {
			t.Fatal(err)
		}
		for i := int64(0); i < 12; i++ {
			if err := l.Append(fakeBatch(i*2, []byte(fmt.Sprintf("batch-%02d-%s", i, bytes.Repeat([]byte("x"), 40)))), BatchMeta{BaseOffset: i * 2, LastOffset: i*2 + 1, MaxTimestamp: i, Tag: uint64(i + 1)}); err != nil {
				t.Fatal(err)
			}
		}
		if err := l.Sync(); err != nil {
			t.Fatal(err)
		}
		l.Close()
		return m, nil
	}
	// Keep every third batch and the last of the range.
	keep := func(batch []byte, meta BatchMeta) ([]byte, int64, bool, error) {
		base := int64(binary.BigEndian.Uint64(batch))
		return batch, meta.MaxTimestamp, base%6 == 0 || meta.LastOffset == 15, nil
	}
	read := func(l *Log) string {
		var out []string
		if err := l.Batches(l.StartOffset(), func(b []byte, m BatchMeta) error {
			out = append(out, fmt.Sprintf("%d-%d@%d", m.BaseOffset, m.LastOffset, binary.BigEndian.Uint64(b)))
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return fmt.Sprint(out, l.StartOffset(), l.EndOffset())
	}
	var before, after string
	{
		m, _ := build()
		l, err := Open(m, dir, Options{SegmentBytesMax: 200, IndexIntervalBytes: 30})
		if err != nil {
			t.Fatal(err)
		}
		if n := len(l.Segments()); n < 5 {
			t.Fatalf("%d segments: the test wants the rewrite to span several", n)
		}
		before = read(l)
		if err := l.Rewrite(0, 16, keep); err != nil {
			t.Fatal(err)
		}
		after = read(l)
		l.Close()
		l, err = Open(m, dir, Options{SegmentBytesMax: 200, IndexIntervalBytes: 30})
		if err != nil {
			t.Fatal(err)
		}
		if got := read(l); got != after {
			t.Fatalf("after reopen %s, want %s", got, after)
		}
		if before == after {
			t.Fatal("the rewrite changed nothing")
		}
	}
	for point := 1; ; point++ {
		m, _ := build()
		cfs := &crashFS{Mem: m, point: -1, rng: rand.New(rand.NewPCG(uint64(point), 1))}
		l, err := Open(cfs, dir, Options{SegmentBytesMax: 200, IndexIntervalBytes: 30})
		if err != nil {
			t.Fatal(err)
		}
		cfs.n, cfs.point = 0, point
		err = l.Rewrite(0, 16, keep)
		if err == nil {
			if point == 1 {
				t.Fatal("the rewrite made no durable step")
			}
			t.Logf("crashed at each of %d steps of the rewrite", point-1)
			return
		}
		if !errors.Is(err, errCrashPoint) {
			t.Fatalf("point %d: %v", point, err)
		}
		l.Close()
		l, err = Open(m, dir, Options{SegmentBytesMax: 200, IndexIntervalBytes: 30})
		if err != nil {
			t.Fatalf("point %d: reopen: %v", point, err)
		}
		if got := read(l); got != before && got != after {
			t.Fatalf("point %d: log %s\nwant before %s\n  or after  %s", point, got, before, after)
		}
		names, _ := m.List(dir)
		for _, n := range names {
			if _, _, ok := parseName(n); !ok {
				t.Fatalf("point %d: %s left behind", point, n)
			}
		}
		l.Close()
	}
}

// TestSegmentMsRolls: a batch more than SegmentMs past the active
// segment's first batch (by record timestamps) starts a new segment, also
// after a reopen, which reads the first batch's timestamp back.
func TestSegmentMsRolls(t *testing.T) {
	m := vfs.NewMem()
	opts := Options{SegmentMs: 100}
	l, err := Open(m, "p", opts)
	if err != nil {
		t.Fatal(err)
	}
	add := func(off, ts int64) {
		t.Helper()
		if err := l.Append(fakeBatch(off, nil), BatchMeta{BaseOffset: off, LastOffset: off, MaxTimestamp: ts}); err != nil {
			t.Fatal(err)
		}
	}
	bases := func() (out []int64) {
		for _, s := range l.Segments() {
			out = append(out, s.Base)
		}
		return out
	}
	add(0, 1000)
	add(1, 1050)
	add(2, 1100) // 100 past the first: not more than segment.ms
	if got := bases(); len(got) != 1 {
		t.Fatalf("segments %v, want one", got)
	}
	add(3, 1101)
	if got := fmt.Sprint(bases()); got != "[0 3]" {
		t.Fatalf("segments %s, want [0 3]", got)
	}
	if err := l.Sync(); err != nil {
		t.Fatal(err)
	}
	l.Close()
	if l, err = Open(m, "p", opts); err != nil {
		t.Fatal(err)
	}
	add(4, 1150)
	add(5, 1202)
	if got := fmt.Sprint(bases()); got != "[0 3 5]" {
		t.Fatalf("after reopen segments %s, want [0 3 5]", got)
	}
	l.SetSegmentMs(0)
	add(6, 9999)
	if got := fmt.Sprint(bases()); got != "[0 3 5]" {
		t.Fatalf("segment.ms off: segments %s", got)
	}
}
