package vfs

import (
	"errors"
	"io/fs"
	"testing"
)

func TestOS(t *testing.T) {
	o := OS(t.TempDir())
	if err := o.MkdirAll("p/q"); err != nil {
		t.Fatal(err)
	}
	f, err := o.Create("p/q/f")
	if err != nil {
		t.Fatal(err)
	}
	mustWrite(t, f, "hello ")
	mustWrite(t, f, "world")
	if err := f.Truncate(5); err != nil {
		t.Fatal(err)
	}
	mustWrite(t, f, "!")
	if n, _ := f.Size(); n != 6 {
		t.Fatalf("size %d, want 6", n)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if err := o.SyncDir("p/q"); err != nil {
		t.Fatal(err)
	}
	if got := content(t, o, "p/q/f"); got != "hello!" {
		t.Fatalf("content %q", got)
	}
	if err := o.Rename("p/q/f", "p/q/g"); err != nil {
		t.Fatal(err)
	}
	names, err := o.List("p/q")
	if err != nil || len(names) != 1 || names[0] != "g" {
		t.Fatalf("list = %v, %v", names, err)
	}
	if o.Exists("p/q/f") || !o.Exists("p/q/g") {
		t.Fatal("exists after rename wrong")
	}
	if err := o.Remove("p/q/g"); err != nil {
		t.Fatal(err)
	}
	if _, err := o.Open("p/q/g"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("open removed: %v", err)
	}
	if _, err := o.Create("../x"); err == nil {
		t.Fatal("created outside root")
	}
}
