package memwal

import (
	"errors"
	"fmt"
	"math/rand/v2"

	"github.com/gregor-streaming/gregor/raftlog"
)

// ErrClosed is returned by every method of a closed WAL until Crash
// restarts it.
var ErrClosed = errors.New("memwal: closed")

// WAL is a raftlog.WAL in memory. The zero value is not usable; call New.
// It is not safe for concurrent use.
type WAL struct {
	// buf is the "disk": a run of frames. buf[:synced] survives any crash.
	buf    []byte
	synced int
	// unsyncedEnds are the end offsets of the frames after synced.
	unsyncedEnds []int

	// mustRead is set by Crash: the restarted broker must ReadAll (which
	// cuts a torn tail) before it appends.
	mustRead bool
	// crashWhole is where the whole frames a crash kept end; only the
	// bytes after it may be torn.
	crashWhole int
	closed     bool
	// syncsToCrash, when > 0, counts down the Syncs until one fails with
	// ErrCrashPoint instead of syncing: the simulator's way to crash a
	// broker in the middle of a Ready cycle, between an append and its
	// sync. tripped then fails every call until Crash.
	syncsToCrash int
	tripped      bool
	// rotted is set by FlipBit: a frame that was synced may now fail its
	// CRC, which ReadAll reports as ErrCorrupt instead of cutting it.
	rotted bool
	// appendErr and syncErr are injected disk errors (InjectErrors).
	appendErr, syncErr error

	stats Stats
}

var _ raftlog.WAL = (*WAL)(nil)

// Stats counts what a WAL has done, for the simulator's reports and cost
// model.
type Stats struct {
	Appends       int64 // Append calls with at least one record
	Records       int64 // records appended
	AppendedBytes int64 // frame bytes appended
	Syncs         int64 // Sync calls that had unsynced frames
	SyncedBytes   int64 // frame bytes made durable by Sync
	Checkpoints   int64
	Crashes       int64
	TornCrashes   int64 // crashes that left a torn or corrupt last frame
	LostBytes     int64 // unsynced frame bytes dropped by crashes
	LogBytes      int64 // bytes in the log now (the "disk" size)
}

// New returns an empty WAL.
func New() *WAL { return &WAL{} }

// Stats returns the counters so far.
func (w *WAL) Stats() Stats {
	s := w.stats
	s.LogBytes = int64(len(w.buf))
	return s
}

// ErrCorrupt is what ReadAll returns when a frame that was synced fails
// its checks: bit rot on the medium (FlipBit), not a torn write. Like
// etcdwal, which refuses a CRC mismatch anywhere but a torn tail, memwal
// never cuts synced records: they may be votes and entries this broker
// acknowledged, and dropping them silently would break raft's safety.
var ErrCorrupt = errors.New("memwal: corrupt record in synced data")

// FlipBit flips one bit of the byte at off among the log's durable whole
// frames (off below DurableBytes): bit rot on the medium. The next ReadAll
// fails with ErrCorrupt, since a flipped bit breaks its frame's CRC or
// length. It is for the simulator and tests.
func (w *WAL) FlipBit(off int, bit uint) error {
	if off < 0 || off >= w.DurableBytes() {
		return fmt.Errorf("memwal: flipbit: offset %d outside the %d durable bytes", off, w.DurableBytes())
	}
	w.buf[off] ^= byte(1) << (bit % 8)
	w.rotted = true
	return nil
}

// DurableBytes is the length of the log's durable whole frames: what was
// synced, or after a crash, what the crash kept whole.
func (w *WAL) DurableBytes() int {
	if w.mustRead {
		return w.crashWhole
	}
	return w.synced
}

// InjectErrors makes the WAL's disk fail until it is called again with nil
// errors: while appendErr is set, Append and Checkpoint fail with it and
// write nothing (a full disk: syscall.ENOSPC); while syncErr is set, Sync
// fails with it and leaves the appended records unsynced, exposed to the
// next Crash (syscall.EIO). The errors are wrapped, so errors.Is sees them.
func (w *WAL) InjectErrors(appendErr, syncErr error) { w.appendErr, w.syncErr = appendErr, syncErr }

// ErrCrashPoint is what Sync returns when the crash point armed by
// CrashAtSync is reached. The simulator then crashes the broker.
var ErrCrashPoint = fmt.Errorf("memwal: crash point reached: %w", raftlog.ErrHalt)

// CrashAtSync arms a crash point: the nth Sync from now (n >= 1) fails with
// ErrCrashPoint and leaves what was appended unsynced; every later call
// fails too, until Crash. n <= 0 disarms.
func (w *WAL) CrashAtSync(n int) {
	w.syncsToCrash = max(n, 0)
}

// CrashPointReached reports whether the armed crash point was reached:
// the broker is to crash now, whatever its caller did with the error (a
// raft host may keep a failed cycle and retry instead of returning it).
func (w *WAL) CrashPointReached() bool { return w.tripped }

func (w *WAL) check(op string) error {
	if w.tripped {
		return fmt.Errorf("memwal: %s: %w", op, ErrCrashPoint)
	}
	if w.closed {
		return fmt.Errorf("memwal: %s: %w", op, ErrClosed)
	}
	if w.mustRead {
		return fmt.Errorf("memwal: %s after a crash before ReadAll", op)
	}
	return nil
}

// Append adds one frame per record. They are lost by a crash until Sync.
func (w *WAL) Append(recs [][]byte) error {
	if err := w.check("append"); err != nil {
		return err
	}
	for _, r := range recs {
		if len(r) > recordBytesMax {
			return fmt.Errorf("memwal: append: record of %d bytes exceeds %d", len(r), recordBytesMax)
		}
	}
	if len(recs) == 0 {
		return nil
	}
	if w.appendErr != nil {
		return fmt.Errorf("memwal: append: %w", w.appendErr)
	}
	start := len(w.buf)
	for _, r := range recs {
		w.buf = appendFrame(w.buf, kindRecord, r)
		w.unsyncedEnds = append(w.unsyncedEnds, len(w.buf))
	}
	w.stats.Appends++
	w.stats.Records += int64(len(recs))
	w.stats.AppendedBytes += int64(len(w.buf) - start)
	return nil
}

// Sync makes every appended frame survive crashes.
func (w *WAL) Sync() error {
	if err := w.check("sync"); err != nil {
		return err
	}
	if w.syncsToCrash > 0 {
		w.syncsToCrash--
		if w.syncsToCrash == 0 {
			w.tripped = true
			return fmt.Errorf("memwal: sync: %w", ErrCrashPoint)
		}
	}
	if len(w.unsyncedEnds) == 0 {
		return nil
	}
	if w.syncErr != nil {
		return fmt.Errorf("memwal: sync: %w", w.syncErr)
	}
	w.stats.Syncs++
	w.stats.SyncedBytes += int64(len(w.buf) - w.synced)
	w.synced = len(w.buf)
	w.unsyncedEnds = w.unsyncedEnds[:0]
	return nil
}

// Checkpoint replaces the whole log with one durable image frame: the
// image covers every record before it, synced or not, and they are purged.
func (w *WAL) Checkpoint(image []byte) error {
	if err := w.check("checkpoint"); err != nil {
		return err
	}
	if len(image) > recordBytesMax {
		return fmt.Errorf("memwal: checkpoint: image of %d bytes exceeds %d", len(image), recordBytesMax)
	}
	if w.appendErr != nil {
		return fmt.Errorf("memwal: checkpoint: %w", w.appendErr)
	}
	if w.syncErr != nil {
		return fmt.Errorf("memwal: checkpoint: %w", w.syncErr)
	}
	w.buf = appendFrame(w.buf[:0], kindImage, image)
	w.synced = len(w.buf)
	w.unsyncedEnds = w.unsyncedEnds[:0]
	w.stats.Checkpoints++
	return nil
}

// ReadAll decodes the log: the newest image and every record after it. A
// torn or corrupt tail (only a crash leaves one) is cut off, so appends go
// after the last whole frame. A frame that was synced and fails its checks
// after FlipBit is ErrCorrupt, and the log is left as it is. Without
// FlipBit it panics if the cut reaches synced bytes: memwal itself never
// loses them, so that is a bug.
func (w *WAL) ReadAll() (image []byte, recs [][]byte, err error) {
	if w.closed {
		return nil, nil, fmt.Errorf("memwal: read: %w", ErrClosed)
	}
	frames, valid := decodeFrames(w.buf)
	if valid < len(w.buf) {
		whole := len(w.buf)
		if w.mustRead {
			whole = w.crashWhole
		}
		if w.rotted && valid < whole {
			return nil, nil, fmt.Errorf("memwal: read: frame at byte %d of %d synced: %w", valid, whole, ErrCorrupt)
		}
		if !w.mustRead || valid < w.crashWhole {
			panic(fmt.Sprintf("memwal: decoding stopped at byte %d of %d, inside bytes that were synced or never crashed", valid, len(w.buf)))
		}
		w.buf = w.buf[:valid]
	}
	w.synced = min(w.synced, valid)
	w.mustRead = false
	image, recs = fold(frames)
	return copyOut(image, recs)
}

// copyOut copies image and recs into one fresh slab, so callers never alias
// the log.
func copyOut(image []byte, recs [][]byte) ([]byte, [][]byte, error) {
	n := len(image)
	for _, r := range recs {
		n += len(r)
	}
	slab := make([]byte, 0, n)
	var img []byte
	if image != nil {
		slab = append(slab, image...)
		img = slab[:len(image):len(image)]
	}
	var out [][]byte
	if len(recs) > 0 {
		out = make([][]byte, len(recs))
	}
	for i, r := range recs {
		start := len(slab)
		slab = append(slab, r...)
		out[i] = slab[start:len(slab):len(slab)]
	}
	return img, out, nil
}

// Close syncs the log (as etcd's wal does) and closes it. Close then Crash
// is a clean restart: nothing is lost.
func (w *WAL) Close() error {
	if w.closed {
		return fmt.Errorf("memwal: close: %w", ErrClosed)
	}
	if !w.mustRead {
		if err := w.Sync(); err != nil {
			return err
		}
	}
	w.closed = true
	return nil
}

// Crash models the broker losing power, then restarting with this WAL: it
// keeps every synced frame and checkpoint, and of the unsynced frames a
// random prefix (possibly none), after which it may leave the next frame
// torn (a strict prefix of its bytes) or corrupt (one byte flipped). The
// restarted broker must call ReadAll, which cuts the torn frame, before
// appending. Crash also reopens a closed WAL.
func (w *WAL) Crash(rng *rand.Rand) {
	w.stats.Crashes++
	w.closed = false
	w.tripped, w.syncsToCrash = false, 0
	if w.mustRead {
		return // nothing happened since the last crash
	}
	ends := w.unsyncedEnds
	keep := rng.IntN(len(ends) + 1)
	whole := w.synced
	if keep > 0 {
		whole = ends[keep-1]
	}
	cut := whole
	if keep < len(ends) && rng.IntN(2) == 0 {
		next := ends[keep]
		if rng.IntN(4) == 0 {
			// The whole frame reached the disk, but one byte is wrong.
			cut = next
			i := whole + rng.IntN(next-whole)
			w.buf[i] ^= byte(1 + rng.IntN(255))
		} else {
			cut = whole + 1 + rng.IntN(next-whole-1)
		}
		w.stats.TornCrashes++
	}
	w.stats.LostBytes += int64(len(w.buf) - whole)
	w.buf = w.buf[:cut]
	w.crashWhole = whole
	w.synced = cut
	w.unsyncedEnds = w.unsyncedEnds[:0]
	w.mustRead = true
}
