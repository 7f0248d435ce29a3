package engine

import (
	"errors"

	"github.com/gregor-streaming/gregor/engine/segment"
	"github.com/twmb/franz-go/pkg/kerr"
)

// Disk faults are errors, not panics. A partition replica whose segment
// write, sync or checkpoint fails (disk full, an I/O error) stops: it
// applies nothing more, answers produce and fetch with KAFKA_STORAGE_ERROR,
// reports nothing durable beyond its last checkpoint (so raft keeps the
// entries since), hands leadership away (it is lost: handOffLeadership),
// and the rest of the broker goes on. Every storageRetryTicks it tries again: it reopens its state
// directory, cuts the log back to where it was before the entry that
// failed (a partial append must not count as applied), reloads the
// checkpoint, and re-applies the entries raft delivered meanwhile from
// raft's log. If raft no longer has them, it repairs from a peer instead.

// storageRetryTicks is how often a stopped replica tries its storage again.
const storageRetryTicks = 10

// storageFailed stops the replica after err while applying entry index
// (or, from Sync, with entry index the last applied), whose batches start
// at log offset end.
func (p *partition) storageFailed(err error, end int64, index uint64) {
	if p.storageErr != nil {
		return
	}
	p.b.env.Logf("engine: partition %s-%d: storage failed at offset %d (raft index %d): %v; retrying every %d ticks",
		p.topic, p.index, end, index, err, storageRetryTicks)
	p.storageErr, p.failedEnd = err, end
	p.undurable = true
	p.retryTick = p.b.ticks + storageRetryTicks
	p.lost = true
	p.delivered = max(p.delivered, index)
	p.abortRepair()
	p.failAll(kerr.KafkaStorageError)
}

// retryStorage tries to bring a stopped replica back from its own disk.
func (p *partition) retryStorage() {
	if p.b.ticks < p.retryTick {
		return
	}
	p.retryTick = p.b.ticks + storageRetryTicks
	if err := p.reopenAfterFailure(); err != nil {
		p.b.env.Logf("engine: partition %s-%d: storage still failing: %v", p.topic, p.index, err)
		return
	}
	p.b.env.Logf("engine: partition %s-%d: storage works again; state at index %d", p.topic, p.index, p.applied)
	p.storageErr = nil
	first, _ := p.b.host.FirstIndex(p.group)
	if first-1 > p.applied {
		// Raft compacted past what the checkpoint holds (a raft
		// snapshot arrived meanwhile): fetch a peer's state.
		return
	}
	p.lost = false
	if err := p.applyDelivered(); err != nil {
		p.b.env.Logf("engine: partition %s-%d: re-apply after storage failure: %v", p.topic, p.index, err)
		p.becomeLost(p.applied + 1)
	}
}

// reopenAfterFailure reopens the live state directory, cuts the log back
// to before the entry that failed, and reloads the state from checkpoint
// and segments.
func (p *partition) reopenAfterFailure() error {
	// The failed log stays in place (closed: reads fail, offsets still
	// answer) until a new one opens.
	p.log.Close()
	log, err := segment.Open(p.b.env.FS, p.stateDir(p.stateN), p.segmentOptions())
	if err == nil && log.EndOffset() > p.failedEnd {
		if p.failedEnd < log.StartOffset() {
			err = errors.New("engine: failed entry lies below the log start")
		} else {
			err = log.TruncateSuffix(p.failedEnd)
		}
	}
	if err == nil {
		err = log.Sync()
	}
	if log != nil {
		log.Close()
	}
	if err != nil && !errors.Is(err, segment.ErrCorrupt) {
		return err
	}
	// recover reopens; a corrupt state starts over (then repairs from a
	// peer), which needs the disk to work too.
	return p.recover()
}
