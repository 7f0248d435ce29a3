package vfs

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
)

// filePerm and dirPerm are the permissions of files and directories OS
// creates.
const (
	filePerm = 0o644
	dirPerm  = 0o755
)

// OS returns the real file system rooted at the directory root. Names are
// slash-separated and relative to root; a name that would leave root is
// refused. Files are opened with O_APPEND, so every Write goes to the end.
func OS(root string) FS { return osFS{root: root} }

type osFS struct{ root string }

func (o osFS) path(name string) (string, error) {
	name, err := clean(name)
	if err != nil {
		return "", err
	}
	return filepath.Join(o.root, filepath.FromSlash(name)), nil
}

func (o osFS) open(name string, flag int) (File, error) {
	p, err := o.path(name)
	if err != nil {
		return nil, err
	}
	f, err := os.OpenFile(p, flag|os.O_APPEND, filePerm)
	if err != nil {
		return nil, fmt.Errorf("vfs: %w", err)
	}
	return osFile{f}, nil
}

func (o osFS) Create(name string) (File, error) {
	return o.open(name, os.O_RDWR|os.O_CREATE|os.O_TRUNC)
}

func (o osFS) Open(name string) (File, error) { return o.open(name, os.O_RDWR) }

func (o osFS) Remove(name string) error {
	p, err := o.path(name)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil {
		return fmt.Errorf("vfs: %w", err)
	}
	return nil
}

func (o osFS) Rename(oldname, newname string) error {
	op, err := o.path(oldname)
	if err != nil {
		return err
	}
	np, err := o.path(newname)
	if err != nil {
		return err
	}
	if err := os.Rename(op, np); err != nil {
		return fmt.Errorf("vfs: %w", err)
	}
	return nil
}

func (o osFS) MkdirAll(dir string) error {
	p, err := o.path(dir)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(p, dirPerm); err != nil {
		return fmt.Errorf("vfs: %w", err)
	}
	return nil
}

func (o osFS) List(dir string) ([]string, error) {
	p, err := o.path(dir)
	if err != nil {
		return nil, err
	}
	ents, err := os.ReadDir(p)
	if err != nil {
		return nil, fmt.Errorf("vfs: %w", err)
	}
	names := make([]string, len(ents))
	for i, e := range ents {
		names[i] = e.Name()
	}
	sort.Strings(names)
	return names, nil
}

func (o osFS) SyncDir(dir string) error {
	p, err := o.path(dir)
	if err != nil {
		return err
	}
	d, err := os.Open(p)
	if err != nil {
		return fmt.Errorf("vfs: %w", err)
	}
	serr := d.Sync()
	cerr := d.Close()
	if serr != nil {
		return fmt.Errorf("vfs: sync dir %s: %w", dir, serr)
	}
	if cerr != nil {
		return fmt.Errorf("vfs: %w", cerr)
	}
	return nil
}

func (o osFS) Exists(name string) bool {
	p, err := o.path(name)
	if err != nil {
		return false
	}
	_, err = os.Stat(p)
	return err == nil
}

type osFile struct{ f *os.File }

func (f osFile) ReadAt(p []byte, off int64) (int, error) { return f.f.ReadAt(p, off) }
func (f osFile) Write(p []byte) (int, error)             { return f.f.Write(p) }
func (f osFile) Close() error                            { return f.f.Close() }
func (f osFile) Sync() error                             { return f.f.Sync() }
func (f osFile) Truncate(size int64) error               { return f.f.Truncate(size) }

func (f osFile) Size() (int64, error) {
	st, err := f.f.Stat()
	if err != nil {
		return 0, err
	}
	return st.Size(), nil
}

// clean validates a name and returns it in canonical form: "" and "." name
// the root; anything else must be a valid io/fs path (no "..", no leading
// slash).
func clean(name string) (string, error) {
	if name == "" {
		return ".", nil
	}
	if !fs.ValidPath(name) {
		return "", &fs.PathError{Op: "vfs", Path: name, Err: fs.ErrInvalid}
	}
	return name, nil
}
