package vfs

import "io"

// FS is a file system.
type FS interface {
	// Create creates the named file, truncating it if it exists, and opens it
	// for reading and writing. The new name is not durable until the parent
	// directory is synced.
	Create(name string) (File, error)
	// Open opens an existing file for reading and writing.
	Open(name string) (File, error)
	// Remove deletes a file or an empty directory. The removal is not
	// durable until the parent directory is synced.
	Remove(name string) error
	// Rename atomically replaces newname with oldname. Not durable until the
	// directory is synced.
	Rename(oldname, newname string) error
	// MkdirAll creates a directory and its parents (durably, for simplicity).
	MkdirAll(dir string) error
	// List returns the names (not paths) of the entries in dir, sorted.
	List(dir string) ([]string, error)
	// SyncDir makes creations, removals and renames inside dir durable.
	SyncDir(dir string) error
	// Exists reports whether name exists.
	Exists(name string) bool
}

// File is an open file. Writes go to the end of the file (append-only);
// Truncate shortens it.
type File interface {
	io.ReaderAt
	io.Writer
	io.Closer
	// Sync makes the file's content durable.
	Sync() error
	// Truncate cuts the file to size bytes.
	Truncate(size int64) error
	// Size returns the current size, including unsynced bytes.
	Size() (int64, error)
}
