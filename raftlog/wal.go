package raftlog

import "errors"

// ErrHalt, wrapped in an error a WAL returns, means the broker must stop at
// once: the simulator's crash point, a power loss at that instant. Process
// returns such an error. Any other WAL error is a disk fault (a full disk,
// an I/O error) that the host waits out: it stalls and retries.
var ErrHalt = errors.New("raftlog: halt")

// ErrRestoreRetry, wrapped in an error a StateMachine's Restore returns,
// means it could not make the snapshot's state durable yet (a failing
// disk): the host stalls as it does on a WAL error, with the cycle neither
// persisted nor advanced, and calls Restore again before it goes on. Raft
// must not record the snapshot, and so drop the entries before it, while
// the state machine's durable state is behind it.
var ErrRestoreRetry = errors.New("raftlog: restore must be retried")

// WAL is a broker's write-ahead log: one log shared by every raft group on
// the broker, so persisting a whole Ready cycle costs one fsync however many
// partitions it touched (see docs/storage.md for the measurement behind that
// choice). Records are opaque bytes to the WAL; raftlog encodes and folds
// them (codec.go).
//
// Two implementations: raftlog/etcdwal wraps go.etcd.io/etcd/server/v3's
// wal package on the real disk; raftlog/memwal is the simulator's, which
// keeps only synced records across a crash, plus any prefix of the unsynced
// tail, possibly with a torn last record.
type WAL interface {
	// Append adds records to the end of the log. They are durable only once
	// Sync has returned.
	Append(recs [][]byte) error
	// Sync makes every appended record durable.
	Sync() error
	// Checkpoint durably writes image, a full description of the state the
	// records so far add up to. Records before the newest durable checkpoint
	// may then be purged; ReadAll starts from it.
	Checkpoint(image []byte) error
	// ReadAll returns the newest durable checkpoint image (nil if there is
	// none) and every durable record after it, in order. A torn or corrupt
	// tail is cut off, never returned.
	ReadAll() (image []byte, recs [][]byte, err error)
	// Close releases the log.
	Close() error
}
