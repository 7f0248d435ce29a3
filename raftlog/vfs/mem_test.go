package vfs

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"slices"
	"syscall"
	"testing"

	"pgregory.net/rapid"
)

func mustWrite(t *testing.T, f File, s string) {
	t.Helper()
	if _, err := f.Write([]byte(s)); err != nil {
		t.Fatal(err)
	}
}

func content(t *testing.T, fsys FS, name string) string {
	t.Helper()
	b, err := ReadFile(fsys, name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestMemRenameNeedsSyncDir(t *testing.T) {
	for seed := range uint64(20) {
		m := NewMem()
		if err := m.MkdirAll("d"); err != nil {
			t.Fatal(err)
		}
		if err := WriteFile(m, "d/tmp", []byte("new")); err != nil {
			t.Fatal(err)
		}
		if err := WriteFile(m, "d/x", []byte("old")); err != nil {
			t.Fatal(err)
		}
		if err := m.SyncDir("d"); err != nil {
			t.Fatal(err)
		}
		if err := m.Rename("d/tmp", "d/x"); err != nil {
			t.Fatal(err)
		}
		m.Crash(rand.New(rand.NewPCG(seed, 1)))
		if got := content(t, m, "d/x"); got != "old" {
			t.Fatalf("seed %d: unsynced rename survived: d/x = %q", seed, got)
		}
		if !m.Exists("d/tmp") {
			t.Fatalf("seed %d: unsynced rename source vanished", seed)
		}
		if err := m.Rename("d/tmp", "d/x"); err != nil {
			t.Fatal(err)
		}
		if err := m.SyncDir("d"); err != nil {
			t.Fatal(err)
		}
		m.Crash(rand.New(rand.NewPCG(seed, 2)))
		if got := content(t, m, "d/x"); got != "new" || m.Exists("d/tmp") {
			t.Fatalf("seed %d: synced rename lost: d/x = %q", seed, got)
		}
	}
}

func TestMemCreateAndRemoveNeedSyncDir(t *testing.T) {
	m := NewMem()
	if err := WriteFile(m, "a", []byte("a")); err != nil {
		t.Fatal(err)
	}
	m.Crash(rand.New(rand.NewPCG(1, 1)))
	if m.Exists("a") {
		t.Fatal("creation survived a crash without SyncDir")
	}
	if err := WriteFile(m, "a", []byte("a")); err != nil {
		t.Fatal(err)
	}
	if err := m.SyncDir("."); err != nil {
		t.Fatal(err)
	}
	if err := m.Remove("a"); err != nil {
		t.Fatal(err)
	}
	m.Crash(rand.New(rand.NewPCG(1, 2)))
	if got := content(t, m, "a"); got != "a" {
		t.Fatalf("after undone removal a = %q", got)
	}
}

func TestMemSyncedDataSurvivesUnsyncedIsPrefix(t *testing.T) {
	lens := map[int]bool{}
	for seed := range uint64(200) {
		m := NewMem()
		f, err := m.Create("f")
		if err != nil {
			t.Fatal(err)
		}
		mustWrite(t, f, "synced|")
		if err := f.Sync(); err != nil {
			t.Fatal(err)
		}
		if err := m.SyncDir("."); err != nil {
			t.Fatal(err)
		}
		mustWrite(t, f, "unsynced")
		m.Crash(rand.New(rand.NewPCG(seed, 0)))
		got := content(t, m, "f")
		if len(got) < len("synced|") || !bytes.HasPrefix([]byte("synced|unsynced"), []byte(got)) {
			t.Fatalf("seed %d: after crash f = %q", seed, got)
		}
		lens[len(got)] = true
		if _, err := f.Write([]byte("x")); !errors.Is(err, ErrCrashed) {
			t.Fatalf("stale handle write: err = %v, want ErrCrashed", err)
		}
		if _, err := f.ReadAt(make([]byte, 1), 0); !errors.Is(err, ErrCrashed) {
			t.Fatalf("stale handle read: err = %v, want ErrCrashed", err)
		}
	}
	if !lens[len("synced|")] || !lens[len("synced|unsynced")] || len(lens) < 5 {
		t.Fatalf("crash outcomes not varied enough: %v", lens)
	}
}

func TestMemUnsyncedTruncate(t *testing.T) {
	outcomes := map[string]bool{}
	for seed := range uint64(100) {
		m := NewMem()
		f, _ := m.Create("f")
		mustWrite(t, f, "0123456789")
		f.Sync()
		m.SyncDir(".")
		if err := f.Truncate(4); err != nil {
			t.Fatal(err)
		}
		mustWrite(t, f, "ab")
		m.Crash(rand.New(rand.NewPCG(seed, 0)))
		got := content(t, m, "f")
		switch got {
		case "0123456789", "0123", "0123a", "0123ab":
		default:
			t.Fatalf("seed %d: after crash f = %q", seed, got)
		}
		outcomes[got] = true
	}
	if len(outcomes) != 4 {
		t.Fatalf("outcomes %v, want all four", outcomes)
	}
}

func TestMemDeterministic(t *testing.T) {
	run := func() string {
		m := NewMem()
		for i := range 20 {
			f, _ := m.Create(fmt.Sprintf("f%02d", i))
			mustWrite(t, f, "durable")
			f.Sync()
			mustWrite(t, f, "0123456789")
		}
		m.SyncDir(".")
		m.Crash(rand.New(rand.NewPCG(7, 7)))
		var out bytes.Buffer
		names, _ := m.List(".")
		for _, n := range names {
			fmt.Fprintf(&out, "%s=%s;", n, content(t, m, n))
		}
		return out.String()
	}
	if a, b := run(), run(); a != b {
		t.Fatalf("same seed, different outcome:\n%s\n%s", a, b)
	}
}

func TestMemErrors(t *testing.T) {
	m := NewMem()
	if _, err := m.Open("nope"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("open missing: %v", err)
	}
	if _, err := m.Create("nodir/f"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("create in missing dir: %v", err)
	}
	if _, err := m.Create("../escape"); err == nil {
		t.Fatal("create ../escape succeeded")
	}
	m.MkdirAll("d/e")
	WriteFile(m, "d/e/f", nil)
	if err := m.Remove("d/e"); err == nil {
		t.Fatal("removed a non-empty directory")
	}
	f, _ := m.Open("d/e/f")
	f.Close()
	if _, err := f.Write([]byte("x")); !errors.Is(err, ErrClosed) {
		t.Fatalf("write after close: %v", err)
	}
}

// memModel is the reference for the property test: whole copies of the
// durable and current content of every inode, and both namespaces.
type memModel struct {
	inodes      []*modelInode
	cur, durNms map[string]int // name -> inode index
}

type modelInode struct {
	cur, synced []byte
	minSize     int
}

func (mi *modelInode) keep() int { return min(mi.minSize, len(mi.synced)) }

func TestMemProperty(t *testing.T) {
	names := []string{"a/x", "a/y", "b/x", "b/z"}
	dirs := []string{"a", "b"}
	rapid.Check(t, func(t *rapid.T) {
		m := NewMem()
		for _, d := range dirs {
			m.MkdirAll(d)
		}
		model := memModel{cur: map[string]int{}, durNms: map[string]int{}}
		rng := rand.New(rand.NewPCG(rapid.Uint64().Draw(t, "seed"), 0))
		var stale []File

		check := func() {
			for _, n := range names {
				idx, ok := model.cur[n]
				if m.Exists(n) != ok {
					t.Fatalf("%s: exists = %v, model %v", n, m.Exists(n), ok)
				}
				if !ok {
					continue
				}
				got, err := ReadFile(m, n)
				if err != nil {
					t.Fatal(err)
				}
				if want := model.inodes[idx].cur; !bytes.Equal(got, want) {
					t.Fatalf("%s = %q, model %q", n, got, want)
				}
			}
		}
		withFile := func(n string, fn func(File)) {
			f, err := m.Open(n)
			if err != nil {
				t.Fatal(err)
			}
			fn(f)
			f.Close()
		}

		t.Repeat(map[string]func(*rapid.T){
			"create": func(t *rapid.T) {
				n := rapid.SampledFrom(names).Draw(t, "name")
				f, err := m.Create(n)
				if err != nil {
					t.Fatal(err)
				}
				f.Close()
				if idx, ok := model.cur[n]; ok {
					mi := model.inodes[idx]
					mi.cur = nil
					mi.minSize = 0
				} else {
					model.inodes = append(model.inodes, &modelInode{})
					model.cur[n] = len(model.inodes) - 1
				}
			},
			"write": func(t *rapid.T) {
				n := rapid.SampledFrom(names).Draw(t, "name")
				idx, ok := model.cur[n]
				if !ok {
					t.Skip("no file")
				}
				data := rapid.SliceOfN(rapid.Byte(), 1, 8).Draw(t, "data")
				withFile(n, func(f File) { f.Write(data) })
				mi := model.inodes[idx]
				mi.cur = append(mi.cur, data...)
			},
			"truncate": func(t *rapid.T) {
				n := rapid.SampledFrom(names).Draw(t, "name")
				idx, ok := model.cur[n]
				if !ok {
					t.Skip("no file")
				}
				mi := model.inodes[idx]
				size := rapid.IntRange(0, len(mi.cur)).Draw(t, "size")
				withFile(n, func(f File) {
					if err := f.Truncate(int64(size)); err != nil {
						t.Fatal(err)
					}
				})
				mi.cur = slices.Clone(mi.cur[:size])
				mi.minSize = min(mi.minSize, size)
			},
			"sync": func(t *rapid.T) {
				n := rapid.SampledFrom(names).Draw(t, "name")
				idx, ok := model.cur[n]
				if !ok {
					t.Skip("no file")
				}
				withFile(n, func(f File) { f.Sync() })
				mi := model.inodes[idx]
				mi.synced = slices.Clone(mi.cur)
				mi.minSize = len(mi.cur)
			},
			"remove": func(t *rapid.T) {
				n := rapid.SampledFrom(names).Draw(t, "name")
				_, ok := model.cur[n]
				if err := m.Remove(n); (err == nil) != ok {
					t.Fatalf("remove %s: err %v, model exists %v", n, err, ok)
				}
				delete(model.cur, n)
			},
			"rename": func(t *rapid.T) {
				a := rapid.SampledFrom(names).Draw(t, "old")
				b := rapid.SampledFrom(names).Draw(t, "new")
				idx, ok := model.cur[a]
				if err := m.Rename(a, b); (err == nil) != ok {
					t.Fatalf("rename %s: err %v, model exists %v", a, err, ok)
				}
				if ok {
					delete(model.cur, a)
					model.cur[b] = idx
				}
			},
			"syncdir": func(t *rapid.T) {
				d := rapid.SampledFrom(dirs).Draw(t, "dir")
				m.SyncDir(d)
				for _, n := range names {
					if n[:1] != d {
						continue
					}
					if idx, ok := model.cur[n]; ok {
						model.durNms[n] = idx
					} else {
						delete(model.durNms, n)
					}
				}
			},
			"hold": func(t *rapid.T) {
				n := rapid.SampledFrom(names).Draw(t, "name")
				if f, err := m.Open(n); err == nil {
					stale = append(stale, f)
				}
			},
			"crash": func(t *rapid.T) {
				m.Crash(rng)
				for _, f := range stale {
					if _, err := f.Size(); !errors.Is(err, ErrCrashed) {
						t.Fatalf("stale handle: %v", err)
					}
				}
				stale = nil
				model.cur = map[string]int{}
				done := map[int]bool{}
				for _, n := range names {
					idx, ok := model.durNms[n]
					if !ok {
						continue
					}
					model.cur[n] = idx
					if done[idx] {
						continue
					}
					done[idx] = true
					mi := model.inodes[idx]
					got, err := ReadFile(m, n)
					if err != nil {
						t.Fatalf("durable %s missing after crash: %v", n, err)
					}
					okPrefix := len(got) >= mi.keep() && bytes.HasPrefix(mi.cur, got)
					okOld := mi.keep() < len(mi.synced) && bytes.Equal(got, mi.synced)
					if !okPrefix && !okOld {
						t.Fatalf("%s after crash = %q; synced %q, current %q, min size %d", n, got, mi.synced, mi.cur, mi.minSize)
					}
					mi.cur = slices.Clone(got)
					mi.synced = slices.Clone(got)
					mi.minSize = len(got)
				}
			},
			"": func(t *rapid.T) { check() },
		})
	})
}

// TestMemInjectErrors: a full or failing disk refuses writes and syncs,
// writes nothing, leaves unsynced data exposed to a crash, and recovers
// when the errors are cleared.
func TestMemInjectErrors(t *testing.T) {
	m := NewMem()
	m.MkdirAll("d")
	f, err := m.Create("d/f")
	if err != nil {
		t.Fatal(err)
	}
	mustWrite(t, f, "durable")
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	syncs := m.Syncs()
	mustWrite(t, f, "+pending")

	m.InjectErrors(syscall.ENOSPC, syscall.EIO)
	if n, err := f.Write([]byte("lost")); n != 0 || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("write on a full disk: %d, %v", n, err)
	}
	if _, err := m.Create("d/g"); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("create on a full disk: %v", err)
	}
	if err := m.MkdirAll("d/e"); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("mkdir on a full disk: %v", err)
	}
	if err := m.MkdirAll("d"); err != nil {
		t.Fatalf("mkdir of an existing directory on a full disk: %v", err)
	}
	if err := f.Sync(); !errors.Is(err, syscall.EIO) {
		t.Fatalf("sync on a failing disk: %v", err)
	}
	if err := m.SyncDir("d"); !errors.Is(err, syscall.EIO) {
		t.Fatalf("syncdir on a failing disk: %v", err)
	}
	if m.Syncs() != syncs {
		t.Fatalf("failed syncs counted: %d, want %d", m.Syncs(), syncs)
	}
	if got := content(t, m, "d/f"); got != "durable+pending" {
		t.Fatalf("content %q after failed writes", got)
	}
	// The failed sync made nothing durable: a crash may cut the pending bytes.
	cut := false
	for seed := range uint64(20) {
		c := NewMem()
		c.MkdirAll("d")
		g, _ := c.Create("d/f")
		mustWrite(t, g, "durable")
		g.Sync()
		c.SyncDir("d")
		mustWrite(t, g, "+pending")
		c.InjectErrors(nil, syscall.EIO)
		if err := g.Sync(); err == nil {
			t.Fatal("sync succeeded")
		}
		c.Crash(rand.New(rand.NewPCG(seed, 0)))
		got := content(t, c, "d/f")
		if got != "durable+pending"[:len(got)] || len(got) < len("durable") {
			t.Fatalf("seed %d: after crash %q", seed, got)
		}
		cut = cut || got != "durable+pending"
	}
	if !cut {
		t.Fatal("no crash lost the bytes whose sync failed")
	}

	m.InjectErrors(nil, nil)
	mustWrite(t, f, "!")
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	if m.Syncs() != syncs+1 {
		t.Fatalf("syncs %d, want %d", m.Syncs(), syncs+1)
	}
	if got := content(t, m, "d/f"); got != "durable+pending!" {
		t.Fatalf("content %q after the disk recovered", got)
	}
}

// TestMemMutations: every change counts, reads and syncs do not.
func TestMemMutations(t *testing.T) {
	m := NewMem()
	last := m.Mutations()
	step := func(what string, changes bool, fn func()) {
		t.Helper()
		fn()
		if got := m.Mutations(); (got != last) != changes {
			t.Fatalf("%s: mutations %d -> %d", what, last, got)
		}
		last = m.Mutations()
	}
	var f File
	step("mkdir", true, func() { m.MkdirAll("d") })
	step("mkdir existing", false, func() { m.MkdirAll("d") })
	step("create", true, func() { f, _ = m.Create("d/f") })
	step("write", true, func() { f.Write([]byte("abc")) })
	step("sync", false, func() { f.Sync(); m.SyncDir("d") })
	step("read", false, func() { f.ReadAt(make([]byte, 2), 0); m.List("d"); m.Exists("d/f") })
	step("truncate", true, func() { f.Truncate(1) })
	step("rename", true, func() { m.Rename("d/f", "d/g") })
	step("flipbit", true, func() { m.FlipBit("d/g", 0, 0) })
	step("remove", true, func() { m.Remove("d/g") })
	step("crash", true, func() { m.Crash(rand.New(rand.NewPCG(1, 1))) })
}
