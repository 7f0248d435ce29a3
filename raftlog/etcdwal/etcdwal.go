package etcdwal

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"go.etcd.io/etcd/client/pkg/v3/fileutil"
	"go.etcd.io/etcd/server/v3/storage/wal"
	"go.etcd.io/etcd/server/v3/storage/wal/walpb"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"

	"github.com/gregor-streaming/gregor/raftlog"
)

// Entry kinds: the first byte of every entry's Data.
const (
	kindRecord byte = 1
	kindImage  byte = 2
)

// entryTerm is the raft term written on every entry and checkpoint
// snapshot: the WAL holds no real raft log, so terms carry no meaning, but a
// non-zero term keeps the checkpoint HardState non-empty.
const entryTerm = 1

// SegmentBytesDefault is the size of a WAL segment file unless
// SetSegmentBytes changed it (etcd's own default).
const SegmentBytesDefault int64 = 64 * 1000 * 1000

// metadata is written at the head of every segment file; Open refuses a
// directory whose WAL says otherwise.
var metadata = []byte("gregor etcdwal v1")

// SetSegmentBytes sets the preallocated size of new WAL segment files. It is
// etcd's process-wide wal.SegmentSizeBytes: call it before any WAL is
// opened (tests: in TestMain), never while one is in use.
func SetSegmentBytes(n int64) { wal.SegmentSizeBytes = n }

// WAL is a raftlog.WAL in one directory of etcd WAL files. It is not safe
// for concurrent use.
type WAL struct {
	dir string
	lg  *zap.Logger
	w   *wal.WAL

	// next is the synthetic index of the next entry.
	next uint64

	// image and recs are what Open read, handed out once by ReadAll.
	image   []byte
	recs    [][]byte
	readOut bool

	// err is the failure of the last write. After a failed write the
	// state of the files is unknown (an fsync error is not retried on the
	// same files): the next call reopens the WAL from disk (recover), which
	// cuts a torn tail, and goes on from what is really there.
	err error
	// closed is set by Close: every later call fails.
	closed bool
}

var _ raftlog.WAL = (*WAL)(nil)

// Open opens the WAL in dir, creating it if dir holds no WAL files. An
// existing WAL is read from its newest valid checkpoint; a torn last record
// is cut off with wal.Repair. ReadAll then returns what was read.
func Open(dir string) (*WAL, error) { return OpenWithLogger(dir, nil) }

// OpenWithLogger is Open with a logger for etcd's wal (nil: no logging).
func OpenWithLogger(dir string, lg *zap.Logger) (*WAL, error) {
	if lg == nil {
		lg = zap.NewNop()
	}
	if !wal.Exist(dir) {
		w, err := wal.Create(lg, dir, metadata)
		if err != nil {
			return nil, fmt.Errorf("etcdwal: create %s: %w", dir, err)
		}
		return &WAL{dir: dir, lg: lg, w: w, next: 1}, nil
	}
	x, err := openExisting(dir, lg)
	if errors.Is(err, io.ErrUnexpectedEOF) {
		lg.Warn("repairing torn WAL tail", zap.String("dir", dir), zap.Error(err))
		if !wal.Repair(lg, dir) {
			return nil, fmt.Errorf("etcdwal: open %s: repair failed: %w", dir, err)
		}
		x, err = openExisting(dir, lg)
	}
	if err != nil {
		return nil, fmt.Errorf("etcdwal: open %s: %w", dir, err)
	}
	return x, nil
}

func openExisting(dir string, lg *zap.Logger) (*WAL, error) {
	snaps, err := wal.ValidSnapshotEntries(lg, dir)
	if err != nil {
		return nil, err
	}
	if len(snaps) == 0 {
		return nil, errors.New("no valid checkpoint snapshot in the WAL")
	}
	snap := snaps[len(snaps)-1]
	w, err := wal.Open(lg, dir, snap)
	if err != nil {
		return nil, err
	}
	md, _, ents, err := w.ReadAll()
	if err == nil && !bytes.Equal(md, metadata) {
		err = fmt.Errorf("metadata %q is not %q", md, metadata)
	}
	if err != nil {
		w.Close()
		return nil, err
	}
	x := &WAL{dir: dir, lg: lg, w: w, next: snap.GetIndex() + 1}
	for _, e := range ents {
		if e.GetIndex() != x.next {
			err = fmt.Errorf("entry index %d, want %d", e.GetIndex(), x.next)
		} else if d := e.GetData(); len(d) == 0 {
			err = fmt.Errorf("entry %d has no kind byte", e.GetIndex())
		} else {
			switch d[0] {
			case kindImage:
				// The newest image wins, even one whose snapshot record
				// a crash kept from being written: it is durable and
				// covers every record before it.
				x.image, x.recs = d[1:], nil
			case kindRecord:
				x.recs = append(x.recs, d[1:])
			default:
				err = fmt.Errorf("entry %d has unknown kind %d", e.GetIndex(), d[0])
			}
		}
		if err != nil {
			w.Close()
			return nil, err
		}
		x.next++
	}
	if snap.GetIndex() > 0 && x.image == nil {
		w.Close()
		return nil, fmt.Errorf("checkpoint snapshot at %d is not followed by its image", snap.GetIndex())
	}
	return x, nil
}

// ReadAll returns the newest checkpoint image and the records after it, as
// Open read them. It may be called once, before Append.
func (x *WAL) ReadAll() (image []byte, recs [][]byte, err error) {
	if err := x.usable(); err != nil {
		return nil, nil, err
	}
	if x.readOut {
		return nil, nil, errors.New("etcdwal: ReadAll only once, before Append or Checkpoint")
	}
	x.readOut = true
	image, recs = x.image, x.recs
	x.image, x.recs = nil, nil
	return image, recs, nil
}

// Append writes recs as one wal.Save, which fsyncs before it returns: the
// records are durable once Append has returned.
func (x *WAL) Append(recs [][]byte) error {
	if err := x.usable(); err != nil {
		return err
	}
	if len(recs) == 0 {
		return nil
	}
	x.readOut = true
	n := 0
	for _, r := range recs {
		n += 1 + len(r)
	}
	slab := make([]byte, 0, n)
	ents := make([]*raftpb.Entry, len(recs))
	for i, r := range recs {
		start := len(slab)
		slab = append(slab, kindRecord)
		slab = append(slab, r...)
		ents[i] = &raftpb.Entry{
			Term:  proto.Uint64(entryTerm),
			Index: proto.Uint64(x.next + uint64(i)),
			Type:  raftpb.EntryType_EntryNormal.Enum(),
			Data:  slab[start:len(slab):len(slab)],
		}
	}
	if err := x.w.Save(&raftpb.HardState{}, ents); err != nil {
		return x.fail(fmt.Errorf("etcdwal: append: %w", err))
	}
	x.next += uint64(len(recs))
	return nil
}

// Sync does nothing more than check the WAL is usable: Append already
// fsynced (etcd's Save syncs whenever it writes entries).
func (x *WAL) Sync() error { return x.usable() }

// Checkpoint writes image as the entry at index k, then an etcd snapshot
// record at k-1 (both fsynced), so a reopen starts at the image. It then
// releases and deletes the segment files wholly before the snapshot.
func (x *WAL) Checkpoint(image []byte) error {
	if err := x.usable(); err != nil {
		return err
	}
	x.readOut = true
	k := x.next
	data := make([]byte, 1+len(image))
	data[0] = kindImage
	copy(data[1:], image)
	ent := &raftpb.Entry{
		Term:  proto.Uint64(entryTerm),
		Index: proto.Uint64(k),
		Type:  raftpb.EntryType_EntryNormal.Enum(),
		Data:  data,
	}
	// etcd only trusts snapshot records at or below the last committed
	// index (ValidSnapshotEntries), so the HardState commits the image.
	hs := &raftpb.HardState{Term: proto.Uint64(entryTerm), Commit: proto.Uint64(k)}
	if err := x.w.Save(hs, []*raftpb.Entry{ent}); err != nil {
		return x.fail(fmt.Errorf("etcdwal: checkpoint: %w", err))
	}
	x.next++
	// Create wrote the snapshot {0, 0}; a checkpoint at index 1 repeats it
	// rather than contradict its term.
	term := uint64(entryTerm)
	if k-1 == 0 {
		term = 0
	}
	snap := &walpb.Snapshot{Index: proto.Uint64(k - 1), Term: proto.Uint64(term), ConfState: &raftpb.ConfState{}}
	if err := x.w.SaveSnapshot(snap); err != nil {
		return x.fail(fmt.Errorf("etcdwal: checkpoint snapshot: %w", err))
	}
	if err := x.w.ReleaseLockTo(k - 1); err != nil {
		return x.fail(fmt.Errorf("etcdwal: release segments: %w", err))
	}
	if err := x.purge(k - 1); err != nil {
		return x.fail(fmt.Errorf("etcdwal: purge: %w", err))
	}
	return nil
}

// purge deletes, oldest first, the segment files that ReleaseLockTo(index)
// released: every file before the last one whose first entry index is below
// index. A file named with index i holds entries from i on, so those files
// hold only entries before the checkpoint. Like etcd's purge it stops at a
// file it cannot lock. Each removal is made durable before the next, so a
// crash leaves a contiguous run of files (a gap would break the CRC chain).
func (x *WAL) purge(index uint64) error {
	names, err := fileutil.ReadDir(x.dir, fileutil.WithExt(".wal"))
	if err != nil {
		return err
	}
	cut := len(names) - 1
	for i, name := range names {
		var seq, first uint64
		if _, err := fmt.Sscanf(name, "%016x-%016x.wal", &seq, &first); err != nil {
			return fmt.Errorf("bad segment name %q: %w", name, err)
		}
		if first >= index {
			cut = i - 1
			break
		}
	}
	if cut <= 0 {
		return nil
	}
	d, err := fileutil.OpenDir(x.dir)
	if err != nil {
		return err
	}
	defer d.Close()
	for _, name := range names[:cut] {
		p := filepath.Join(x.dir, name)
		l, err := fileutil.TryLockFile(p, os.O_WRONLY, fileutil.PrivateFileMode)
		if err != nil {
			return nil // still in use: leave it for a later checkpoint
		}
		err = os.Remove(p)
		l.Close()
		if err != nil {
			return err
		}
		if err := fileutil.Fsync(d); err != nil {
			return err
		}
		x.lg.Info("purged WAL segment", zap.String("path", p))
	}
	return nil
}

// Close syncs and releases the WAL files.
func (x *WAL) Close() error {
	if x.closed {
		return errors.New("etcdwal: closed twice")
	}
	x.closed = true
	if x.w == nil {
		return nil
	}
	err := x.w.Close()
	x.w = nil
	if err != nil {
		return fmt.Errorf("etcdwal: close: %w", err)
	}
	return nil
}

// usable reopens the WAL after a failed write (a full disk that has space
// again, a transient I/O error); it fails if the WAL is closed or the
// reopen fails.
func (x *WAL) usable() error {
	if x.closed {
		return errors.New("etcdwal: closed")
	}
	if x.err == nil {
		return nil
	}
	if err := x.recover(); err != nil {
		return fmt.Errorf("etcdwal: reopen after %v: %w", x.err, err)
	}
	return nil
}

// recover closes the files and opens the WAL again, as a restart would:
// whatever part of the failed write reached the disk is either whole
// records (raftlog folds repeated records to the same state) or a torn
// tail, which Open cuts.
func (x *WAL) recover() error {
	if x.w != nil {
		x.w.Close()
		x.w = nil
	}
	y, err := OpenWithLogger(x.dir, x.lg)
	if err != nil {
		return err
	}
	x.lg.Warn("reopened the WAL after a failed write", zap.String("dir", x.dir), zap.Error(x.err))
	x.w, x.next, x.err = y.w, y.next, nil
	return nil
}

func (x *WAL) fail(err error) error {
	x.err = err
	return err
}
