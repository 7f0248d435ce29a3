package vfs

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"path"
	"sort"
	"strings"
)

// ErrCrashed is returned by a File that was opened before Mem.Crash.
var ErrCrashed = errors.New("vfs: file handle from before a crash")

// ErrClosed is returned by a File used after Close.
var ErrClosed = errors.New("vfs: file already closed")

// Mem is an in-memory FS that models what survives a crash. Every file has
// durable content (as of its last Sync) and current content; every
// directory entry (creation, removal, rename) is durable only once the
// parent directory has been synced. Directories created with MkdirAll are
// durable at once. Crash turns the FS into what a restart would see.
//
// Mem is deterministic: nothing depends on map iteration order, and every
// random choice comes from the *rand.Rand given to Crash. It is not safe
// for concurrent use.
type Mem struct {
	// cur and durable map a file's path to its inode; two names may share
	// an inode when a rename is durable in one directory and not the other.
	cur, durable map[string]*memInode
	// dirs holds the current directories, durableDirs the durable ones. The
	// root "." is always present.
	dirs, durableDirs map[string]bool
	// epoch counts crashes; a handle from an older epoch fails.
	epoch uint64
	// writeErr and syncErr, when set, are injected disk errors (see
	// InjectErrors); syncs counts successful file and directory syncs.
	writeErr, syncErr error
	syncs             int64
	// muts counts changes to names and contents (see Mutations).
	muts int64
	// curIn and durIn index the names of cur and durable by parent
	// directory, so that SyncDir and List cost what the directory holds.
	curIn, durIn map[string]map[string]bool
}

// index adds (or with add false, removes) name in idx under its parent.
func index(idx map[string]map[string]bool, name string, add bool) {
	dir := parent(name)
	set := idx[dir]
	if add {
		if set == nil {
			set = map[string]bool{}
			idx[dir] = set
		}
		set[name] = true
		return
	}
	delete(set, name)
	if len(set) == 0 {
		delete(idx, dir)
	}
}

func (m *Mem) setCur(name string, ino *memInode) {
	m.cur[name] = ino
	index(m.curIn, name, true)
}

func (m *Mem) delCur(name string) {
	delete(m.cur, name)
	index(m.curIn, name, false)
}

type memInode struct {
	// data is the current content. Its first keep() bytes are also the
	// first bytes of the durable content: since the last Sync the file has
	// only been appended to, or truncated, and never rewritten in place.
	data []byte
	// durLen is the durable size.
	durLen int
	// minSize is the smallest size the file had since its last Sync. When
	// it is below durLen an unsynced truncation is pending, and durOld
	// holds the durable bytes [minSize, durLen) it cut off.
	minSize int
	durOld  []byte
}

// NewMem returns an empty in-memory file system.
func NewMem() *Mem {
	return &Mem{
		cur:         map[string]*memInode{},
		durable:     map[string]*memInode{},
		curIn:       map[string]map[string]bool{},
		durIn:       map[string]map[string]bool{},
		dirs:        map[string]bool{".": true},
		durableDirs: map[string]bool{".": true},
	}
}

func notExist(op, name string) error {
	return &fs.PathError{Op: "vfs: " + op, Path: name, Err: fs.ErrNotExist}
}

// parent is path.Dir for the clean relative names Mem stores, without
// path.Clean's allocations: SyncDir and List walk every name.
func parent(name string) string {
	if i := strings.LastIndexByte(name, '/'); i >= 0 {
		return name[:i]
	}
	return "."
}

func (m *Mem) parentExists(name string) bool { return m.dirs[parent(name)] }

// Create implements FS.
func (m *Mem) Create(name string) (File, error) {
	name, err := clean(name)
	if err != nil {
		return nil, err
	}
	if m.dirs[name] {
		return nil, &fs.PathError{Op: "vfs: create", Path: name, Err: fs.ErrExist}
	}
	if m.writeErr != nil {
		return nil, &fs.PathError{Op: "vfs: create", Path: name, Err: m.writeErr}
	}
	if !m.parentExists(name) {
		return nil, notExist("create", name)
	}
	m.muts++
	ino := m.cur[name]
	if ino == nil {
		ino = &memInode{}
		m.setCur(name, ino)
	} else {
		ino.truncate(0)
	}
	return &memFile{m: m, ino: ino, epoch: m.epoch, name: name}, nil
}

// Open implements FS.
func (m *Mem) Open(name string) (File, error) {
	name, err := clean(name)
	if err != nil {
		return nil, err
	}
	ino := m.cur[name]
	if ino == nil {
		return nil, notExist("open", name)
	}
	return &memFile{m: m, ino: ino, epoch: m.epoch, name: name}, nil
}

// Remove implements FS.
func (m *Mem) Remove(name string) error {
	name, err := clean(name)
	if err != nil {
		return err
	}
	if m.cur[name] != nil {
		m.muts++
		m.delCur(name)
		return nil
	}
	if m.dirs[name] && name != "." {
		if len(m.children(name)) > 0 {
			return &fs.PathError{Op: "vfs: remove", Path: name, Err: errors.New("directory not empty")}
		}
		m.muts++
		delete(m.dirs, name)
		return nil
	}
	return notExist("remove", name)
}

// Rename implements FS. Only files can be renamed.
func (m *Mem) Rename(oldname, newname string) error {
	oldname, err := clean(oldname)
	if err != nil {
		return err
	}
	newname, err = clean(newname)
	if err != nil {
		return err
	}
	ino := m.cur[oldname]
	if ino == nil {
		return notExist("rename", oldname)
	}
	if !m.parentExists(newname) {
		return notExist("rename", newname)
	}
	if m.dirs[newname] {
		return &fs.PathError{Op: "vfs: rename", Path: newname, Err: fs.ErrExist}
	}
	m.muts++
	m.delCur(oldname)
	m.setCur(newname, ino)
	return nil
}

// MkdirAll implements FS; the directories are durable at once.
func (m *Mem) MkdirAll(dir string) error {
	dir, err := clean(dir)
	if err != nil {
		return err
	}
	for d := dir; d != "."; d = parent(d) {
		if m.cur[d] != nil {
			return &fs.PathError{Op: "vfs: mkdir", Path: d, Err: fs.ErrExist}
		}
		if m.writeErr != nil && !m.dirs[d] {
			return &fs.PathError{Op: "vfs: mkdir", Path: d, Err: m.writeErr}
		}
	}
	for d := dir; d != "."; d = parent(d) {
		if !m.dirs[d] {
			m.muts++
		}
		m.dirs[d] = true
		m.durableDirs[d] = true
	}
	return nil
}

// children returns the sorted names of the current entries directly in dir.
func (m *Mem) children(dir string) []string {
	var names []string
	for p := range m.curIn[dir] {
		names = append(names, path.Base(p))
	}
	for d := range m.dirs {
		if d != "." && parent(d) == dir {
			names = append(names, path.Base(d))
		}
	}
	sort.Strings(names)
	return names
}

// List implements FS.
func (m *Mem) List(dir string) ([]string, error) {
	dir, err := clean(dir)
	if err != nil {
		return nil, err
	}
	if !m.dirs[dir] {
		return nil, notExist("list", dir)
	}
	return m.children(dir), nil
}

// SyncDir implements FS: every creation, removal and rename of an entry
// directly inside dir becomes durable.
func (m *Mem) SyncDir(dir string) error {
	dir, err := clean(dir)
	if err != nil {
		return err
	}
	if !m.dirs[dir] {
		return notExist("syncdir", dir)
	}
	if m.syncErr != nil {
		return &fs.PathError{Op: "vfs: syncdir", Path: dir, Err: m.syncErr}
	}
	m.syncs++
	// Set operations only: the order of the map walks cannot matter.
	for p := range m.durIn[dir] {
		if m.cur[p] == nil {
			delete(m.durable, p)
			index(m.durIn, p, false)
		}
	}
	for p := range m.curIn[dir] {
		m.durable[p] = m.cur[p]
		index(m.durIn, p, true)
	}
	for d := range m.durableDirs {
		if d != "." && parent(d) == dir && !m.dirs[d] {
			delete(m.durableDirs, d)
		}
	}
	return nil
}

// Exists implements FS.
func (m *Mem) Exists(name string) bool {
	name, err := clean(name)
	if err != nil {
		return false
	}
	return m.cur[name] != nil || m.dirs[name]
}

// Crash turns m into what a restart after a power loss would see, drawing
// every choice from rng:
//   - directory entries revert to their durable state: undurable creations
//     vanish, undurable removals and renames are undone;
//   - a file keeps its durable content plus a random-length prefix (possibly
//     empty, possibly all) of the bytes appended since its last Sync, which
//     also models a torn last write;
//   - a file truncated below its durable size since its last Sync comes back
//     either at its durable content or truncated (plus a prefix of what was
//     appended after the truncation), chosen at random.
//
// Afterwards every file's content is durable, and handles opened before the
// crash fail with ErrCrashed.
func (m *Mem) Crash(rng *rand.Rand) {
	m.epoch++
	m.muts++
	seen := map[*memInode]bool{}
	m.cur, m.curIn = map[string]*memInode{}, map[string]map[string]bool{}
	for _, p := range sortedKeys(m.durable) {
		ino := m.durable[p]
		m.setCur(p, ino)
		if seen[ino] {
			continue
		}
		seen[ino] = true
		ino.crash(rng)
	}
	m.dirs = map[string]bool{}
	for _, d := range sortedKeys(m.durableDirs) {
		m.dirs[d] = true
	}
	// A directory whose removal became durable while a durable file inside
	// it did not disappear comes back with the file.
	for _, p := range sortedKeys(m.cur) {
		for d := parent(p); d != "."; d = parent(d) {
			m.dirs[d] = true
			m.durableDirs[d] = true
		}
	}
}

// FlipBit flips one bit of the byte at off of the named file, in its
// current and its durable content alike: bit rot on the medium. It is for
// tests.
func (m *Mem) FlipBit(name string, off int64, bit uint) error {
	name, err := clean(name)
	if err != nil {
		return err
	}
	ino := m.cur[name]
	if ino == nil {
		return notExist("flipbit", name)
	}
	if off < 0 || off >= int64(len(ino.data)) {
		return fmt.Errorf("vfs: flipbit %s: offset %d outside file of %d bytes", name, off, len(ino.data))
	}
	m.muts++
	mask := byte(1) << (bit % 8)
	ino.data[off] ^= mask
	if k := int64(ino.keep()); off >= k && off-k < int64(len(ino.durOld)) {
		ino.durOld[off-k] ^= mask
	}
	return nil
}

// InjectErrors makes the disk fail until it is called again with nil
// errors. While write is set, Create, MkdirAll of a missing directory and
// every File.Write fail with it and write nothing (a full disk: pass
// syscall.ENOSPC; a failing medium: syscall.EIO). While sync is set,
// File.Sync and SyncDir fail with it and make nothing durable, so what was
// written since the last successful sync stays exposed to the next Crash.
// Reads, removals, renames and truncations keep working (they free space
// or touch only metadata). The errors come back wrapped in *fs.PathError,
// so errors.Is(err, syscall.ENOSPC) holds here as on the OS.
//
// Not modelled: Linux may drop the dirty pages of a failed writeback, so
// that a later fsync succeeds without the data ever reaching the disk
// ("fsyncgate"); here a later successful Sync makes them durable. A broker
// that treats a failed sync as fatal and restarts (a Crash here, which
// keeps only a random prefix of unsynced data) sees the same under both.
func (m *Mem) InjectErrors(write, sync error) { m.writeErr, m.syncErr = write, sync }

// Syncs counts the successful File.Sync and SyncDir calls so far, for the
// simulator's cost model.
func (m *Mem) Syncs() int64 { return m.syncs }

// Mutations counts the changes to the file system so far: creations,
// removals, renames, writes, truncations, flipped bits and crashes. While
// it stays the same, everything a reader could see stays the same (the
// simulator skips its checks of a broker whose files did not change).
func (m *Mem) Mutations() int64 { return m.muts }

// keep returns how many leading bytes the current and durable content share
// by construction.
func (ino *memInode) keep() int { return min(ino.minSize, ino.durLen) }

func (ino *memInode) truncate(size int) {
	if size < ino.keep() {
		k := ino.keep()
		old := make([]byte, 0, k-size+len(ino.durOld))
		old = append(old, ino.data[size:k]...)
		ino.durOld = append(old, ino.durOld...)
	}
	ino.data = ino.data[:size:size]
	ino.minSize = min(ino.minSize, size)
}

func (ino *memInode) sync() {
	ino.durLen = len(ino.data)
	ino.minSize = len(ino.data)
	ino.durOld = nil
}

func (ino *memInode) crash(rng *rand.Rand) {
	k := ino.keep()
	if k < ino.durLen && rng.IntN(2) == 0 {
		// The pending truncation was lost, and with it whatever was
		// written after it.
		content := make([]byte, 0, ino.durLen)
		content = append(content, ino.data[:k]...)
		ino.data = append(content, ino.durOld...)
	} else {
		ino.data = ino.data[:k+rng.IntN(len(ino.data)-k+1)]
	}
	ino.sync()
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

type memFile struct {
	m      *Mem
	ino    *memInode
	epoch  uint64
	name   string
	closed bool
}

func (f *memFile) check() error {
	if f.closed {
		return fmt.Errorf("%w: %s", ErrClosed, f.name)
	}
	if f.epoch != f.m.epoch {
		return fmt.Errorf("%w: %s", ErrCrashed, f.name)
	}
	return nil
}

func (f *memFile) ReadAt(p []byte, off int64) (int, error) {
	if err := f.check(); err != nil {
		return 0, err
	}
	if off < 0 {
		return 0, fmt.Errorf("vfs: read %s: negative offset", f.name)
	}
	if off >= int64(len(f.ino.data)) {
		return 0, io.EOF
	}
	n := copy(p, f.ino.data[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (f *memFile) Write(p []byte) (int, error) {
	if err := f.check(); err != nil {
		return 0, err
	}
	if f.m.writeErr != nil {
		return 0, &fs.PathError{Op: "vfs: write", Path: f.name, Err: f.m.writeErr}
	}
	f.m.muts++
	f.ino.data = append(f.ino.data, p...)
	return len(p), nil
}

func (f *memFile) Close() error {
	if err := f.check(); err != nil {
		return err
	}
	f.closed = true
	return nil
}

func (f *memFile) Sync() error {
	if err := f.check(); err != nil {
		return err
	}
	if f.m.syncErr != nil {
		return &fs.PathError{Op: "vfs: sync", Path: f.name, Err: f.m.syncErr}
	}
	f.m.syncs++
	f.ino.sync()
	return nil
}

func (f *memFile) Truncate(size int64) error {
	if err := f.check(); err != nil {
		return err
	}
	if size < 0 || size > int64(len(f.ino.data)) {
		return fmt.Errorf("vfs: truncate %s to %d: file has %d bytes (only shrinking is supported)", f.name, size, len(f.ino.data))
	}
	f.m.muts++
	f.ino.truncate(int(size))
	return nil
}

func (f *memFile) Size() (int64, error) {
	if err := f.check(); err != nil {
		return 0, err
	}
	return int64(len(f.ino.data)), nil
}
