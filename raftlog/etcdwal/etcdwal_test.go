package etcdwal

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// testSegmentBytes makes segment files small, so a few hundred records cut
// several of them and purge has something to delete.
const testSegmentBytes = 32 << 10

func TestMain(m *testing.M) {
	SetSegmentBytes(testSegmentBytes)
	os.Exit(m.Run())
}

// rec returns a record of n bytes that names i, so mix-ups show.
func rec(i, n int) []byte {
	s := fmt.Sprintf("rec-%d;", i)
	return []byte(strings.Repeat(s, n/len(s)+1)[:n])
}

func recs(from, to, n int) [][]byte {
	var rs [][]byte
	for i := from; i < to; i++ {
		rs = append(rs, rec(i, n))
	}
	return rs
}

func mustOpen(t *testing.T, dir string) *WAL {
	t.Helper()
	w, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// reopen closes w, opens dir again and reads it.
func reopen(t *testing.T, w *WAL, dir string) (*WAL, []byte, [][]byte) {
	t.Helper()
	if w != nil {
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}
	w = mustOpen(t, dir)
	img, rs, err := w.ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	return w, img, rs
}

func mustAppend(t *testing.T, w *WAL, rs [][]byte) {
	t.Helper()
	if err := w.Append(rs); err != nil {
		t.Fatal(err)
	}
	if err := w.Sync(); err != nil {
		t.Fatal(err)
	}
}

func walFiles(t *testing.T, dir string) []string {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(dir, "*.wal"))
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(names)
	return names
}

func TestRoundTrip(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "wal")
	w, img, rs := reopen(t, nil, dir)
	if img != nil || rs != nil {
		t.Fatalf("new WAL read %q, %q", img, rs)
	}
	var want [][]byte
	for b := range 5 {
		batch := recs(b*10, b*10+10, 100+b*37)
		want = append(want, batch...)
		mustAppend(t, w, batch)
	}
	mustAppend(t, w, [][]byte{{}}) // an empty record survives too
	want = append(want, []byte{})
	w, img, rs = reopen(t, w, dir)
	if img != nil {
		t.Fatalf("image %q, want none", img)
	}
	if diff := cmp.Diff(want, rs); diff != "" {
		t.Fatalf("records (-want +got):\n%s", diff)
	}
	if _, _, err := w.ReadAll(); err == nil {
		t.Fatal("second ReadAll succeeded")
	}
	more := recs(100, 110, 50)
	mustAppend(t, w, more)
	want = append(want, more...)
	w, _, rs = reopen(t, w, dir)
	if diff := cmp.Diff(want, rs); diff != "" {
		t.Fatalf("records after second session (-want +got):\n%s", diff)
	}
	w.Close()
}

func TestOpenLocked(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "wal")
	w := mustOpen(t, dir)
	defer w.Close()
	mustAppend(t, w, recs(0, 3, 10))
	if w2, err := Open(dir); err == nil {
		w2.Close()
		t.Fatal("opened a WAL that is already open")
	}
}

func TestCheckpoint(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "wal")
	w := mustOpen(t, dir)
	// A checkpoint on an empty WAL sits at index 1 (snapshot 0).
	if err := w.Checkpoint([]byte("image-0")); err != nil {
		t.Fatal(err)
	}
	w, img, rs := reopen(t, w, dir)
	if string(img) != "image-0" || rs != nil {
		t.Fatalf("got %q, %q; want image-0 and no records", img, rs)
	}
	mustAppend(t, w, recs(0, 20, 64))
	if err := w.Checkpoint([]byte("image-1")); err != nil {
		t.Fatal(err)
	}
	later := recs(20, 30, 64)
	mustAppend(t, w, later[:4])
	mustAppend(t, w, later[4:])
	w, img, rs = reopen(t, w, dir)
	if string(img) != "image-1" {
		t.Fatalf("image %q, want image-1", img)
	}
	if diff := cmp.Diff(later, rs); diff != "" {
		t.Fatalf("records after checkpoint (-want +got):\n%s", diff)
	}
	// Back-to-back checkpoints: the newest wins, nothing after it.
	for _, s := range []string{"image-2", "image-3"} {
		if err := w.Checkpoint([]byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	w, img, rs = reopen(t, w, dir)
	if string(img) != "image-3" || rs != nil {
		t.Fatalf("got %q, %q; want image-3 and no records", img, rs)
	}
	w.Close()
}

func TestPurgeDeletesOldSegments(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "wal")
	w := mustOpen(t, dir)
	const recBytes = 2 << 10
	for i := range 200 {
		mustAppend(t, w, [][]byte{rec(i, recBytes)})
	}
	before := walFiles(t, dir)
	if len(before) < 5 {
		t.Fatalf("%d segment files after 400 KiB of records with %d-byte segments; want several", len(before), testSegmentBytes)
	}
	if err := w.Checkpoint([]byte("image")); err != nil {
		t.Fatal(err)
	}
	after := walFiles(t, dir)
	t.Logf("segment files: %d before checkpoint, %d after", len(before), len(after))
	if len(after) > 2 {
		t.Fatalf("after checkpoint %d segment files remain, want at most 2: %v", len(after), after)
	}
	for _, f := range before[:len(before)-2] {
		if _, err := os.Stat(f); !os.IsNotExist(err) {
			t.Fatalf("segment %s wholly before the checkpoint survived (err %v)", f, err)
		}
	}
	later := recs(1000, 1050, recBytes)
	for _, r := range later {
		mustAppend(t, w, [][]byte{r})
	}
	w, img, rs := reopen(t, w, dir)
	if string(img) != "image" {
		t.Fatalf("image %q", img)
	}
	if diff := cmp.Diff(later, rs); diff != "" {
		t.Fatalf("records after purge (-want +got):\n%s", diff)
	}
	// A second checkpoint purges the files the first one kept.
	if err := w.Checkpoint([]byte("image-2")); err != nil {
		t.Fatal(err)
	}
	final := walFiles(t, dir)
	if len(final) > 2 || slices.Contains(final, after[0]) {
		t.Fatalf("after second checkpoint: %v (first kept %v)", final, after)
	}
	w, img, rs = reopen(t, w, dir)
	if string(img) != "image-2" || rs != nil {
		t.Fatalf("got %q, %d records", img, len(rs))
	}
	w.Close()
}

// dataEnd returns the offset just past the last non-zero byte of a segment
// file (the rest is preallocated zeros).
func dataEnd(t *testing.T, path string) int64 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	i := len(b)
	for i > 0 && b[i-1] == 0 {
		i--
	}
	return int64(i)
}

func TestTornTailRepaired(t *testing.T) {
	for _, tc := range []struct {
		name string
		tear func(t *testing.T, path string, end int64)
	}{
		{"truncated", func(t *testing.T, path string, end int64) {
			if err := os.Truncate(path, end-3); err != nil {
				t.Fatal(err)
			}
		}},
		{"zeroed-sectors", func(t *testing.T, path string, end int64) {
			// The last sectors of the last record never reached the disk.
			f, err := os.OpenFile(path, os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if _, err := f.WriteAt(make([]byte, 1100), end-1100); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "wal")
			w := mustOpen(t, dir)
			mustAppend(t, w, recs(0, 30, 300))
			if err := w.Checkpoint([]byte("image")); err != nil {
				t.Fatal(err)
			}
			want := recs(30, 60, 300)
			mustAppend(t, w, want)
			mustAppend(t, w, [][]byte{rec(60, 3000)}) // to be torn
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			files := walFiles(t, dir)
			last := files[len(files)-1]
			tc.tear(t, last, dataEnd(t, last))

			w, img, rs := reopen(t, nil, dir)
			if broken, _ := filepath.Glob(filepath.Join(dir, "*.broken")); len(broken) != 1 {
				t.Fatalf("want one .broken backup from wal.Repair, got %v", broken)
			}
			if string(img) != "image" {
				t.Fatalf("image %q", img)
			}
			if diff := cmp.Diff(want, rs); diff != "" {
				t.Fatalf("records after repair (-want +got):\n%s", diff)
			}
			// The repaired WAL takes appends and keeps them.
			more := recs(70, 75, 500)
			mustAppend(t, w, more)
			w, _, rs = reopen(t, w, dir)
			if diff := cmp.Diff(append(want, more...), rs); diff != "" {
				t.Fatalf("records after repair and append (-want +got):\n%s", diff)
			}
			w.Close()
		})
	}
}

func TestCorruptMiddleRefused(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "wal")
	w := mustOpen(t, dir)
	mustAppend(t, w, recs(0, 10, 200))
	mustAppend(t, w, recs(10, 20, 200))
	w.Close()
	files := walFiles(t, dir)
	b, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(b, rec(3, 200))
	if i < 0 {
		t.Fatal("record 3 not found in the first segment")
	}
	b[i+10] ^= 0xff
	if err := os.WriteFile(files[0], b, 0o600); err != nil {
		t.Fatal(err)
	}
	if w, err := Open(dir); err == nil {
		_, rs, _ := w.ReadAll()
		w.Close()
		t.Fatalf("opened a WAL with a corrupt record in the middle; read %d records", len(rs))
	}
}

// TestFullDiskThenSpace fills a small tmpfs under the WAL until an Append
// fails, frees the space, and appends again: the WAL reopens itself from
// disk and goes on, and a reopen reads back every record whose Append
// succeeded, in order (a failed Append's records may be there too, whole:
// raftlog folds repeats). Before, a failed write failed every later call.
// Mounting needs root (CI runs as root); elsewhere the test is skipped.
func TestFullDiskThenSpace(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root")
	}
	mnt := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", mnt).CombinedOutput(); err != nil {
		t.Fatalf("mount tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", mnt).Run() })
	dir := filepath.Join(mnt, "wal")
	w := mustOpen(t, dir)
	var ok [][]byte
	ballast, err := os.Create(filepath.Join(mnt, "ballast"))
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := ballast.Write(make([]byte, 4<<10)); err != nil {
			break
		}
	}
	failed := false
	for i := range 200 {
		r := rec(i, 1000)
		if err := w.Append([][]byte{r}); err != nil {
			t.Logf("append %d failed: %v", i, err)
			failed = true
			break
		}
		ok = append(ok, r)
	}
	if !failed {
		t.Fatal("200 KB of appends on a full disk all succeeded")
	}
	ballast.Close()
	os.Remove(filepath.Join(mnt, "ballast"))
	for i := 1000; i < 1100; i++ {
		r := rec(i, 1000)
		if err := w.Append([][]byte{r}); err != nil {
			t.Fatalf("append %d after space returned: %v", i, err)
		}
		ok = append(ok, r)
	}
	w, _, got := reopen(t, w, dir)
	w.Close()
	j := 0
	for _, r := range got {
		if j < len(ok) && bytes.Equal(r, ok[j]) {
			j++
		}
	}
	if j != len(ok) {
		t.Fatalf("read back %d records; %d of the %d appended ones in order", len(got), j, len(ok))
	}
}
