package runtime

import (
	"sync"

	"github.com/gregor-streaming/gregor/raftlog"
)

// walWriter owns the WAL on a goroutine of its own, so the broker loop
// never waits for an fsync: each raft cycle's records (Broker.TakeWrite)
// are appended and synced there while the loop goes on stepping, and the
// outcome comes back to the loop on done. The engine's own WAL calls
// (group creation and removal, checkpoints, retries after a failure) go
// through the same queue and wait for their turn, so the WAL sees every
// call in the order the loop made it: a group's removal never lands
// before that group's last records.
type walWriter struct {
	wal  raftlog.WAL
	ops  chan func()
	done chan error // one outcome per submitted write, read by the loop
	wg   sync.WaitGroup
}

var _ raftlog.WAL = (*walWriter)(nil)

func newWALWriter(w raftlog.WAL) *walWriter {
	x := &walWriter{wal: w, ops: make(chan func(), 16), done: make(chan error, 1)}
	x.wg.Add(1)
	go func() {
		defer x.wg.Done()
		for op := range x.ops {
			op()
		}
	}()
	return x
}

// submit queues a cycle's records; their outcome arrives on done. The
// broker has at most one write in flight, so done never fills.
func (x *walWriter) submit(recs [][]byte) {
	x.ops <- func() {
		err := x.wal.Append(recs)
		if err == nil {
			err = x.wal.Sync()
		}
		x.done <- err
	}
}

// call runs fn on the writer's goroutine after everything queued before
// it, and waits for it.
func (x *walWriter) call(fn func() error) error {
	reply := make(chan error, 1)
	x.ops <- func() { reply <- fn() }
	return <-reply
}

func (x *walWriter) Append(recs [][]byte) error {
	return x.call(func() error { return x.wal.Append(recs) })
}

func (x *walWriter) Sync() error { return x.call(x.wal.Sync) }

func (x *walWriter) Checkpoint(image []byte) error {
	return x.call(func() error { return x.wal.Checkpoint(image) })
}

func (x *walWriter) ReadAll() (image []byte, recs [][]byte, err error) {
	err = x.call(func() error {
		var err error
		image, recs, err = x.wal.ReadAll()
		return err
	})
	return image, recs, err
}

// Close stops the writer after what is queued; the WAL itself is closed
// by its owner, the Node.
func (x *walWriter) Close() error {
	close(x.ops)
	x.wg.Wait()
	return nil
}
