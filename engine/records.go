package engine

import (
	"encoding/binary"
	"errors"

	"github.com/twmb/franz-go/pkg/kerr"
)

// The log start offset clients see. It starts at the segments' first
// offset and moves forward only, by a raft entry of the partition
// (opDeleteRecords) that carries the new start the leader decided
// (DeleteRecords, 21_delete_records.go): every replica applies the same
// move, drops the segments wholly below it, and makes it durable at once
// (a checkpoint in the apply), since the entry stores no batch whose tag
// would say it was applied. Records below it are gone for clients: Fetch
// is OFFSET_OUT_OF_RANGE there and ListOffsets' earliest is it. Producer
// state and leader epochs live in the checkpoint, so they outlive the
// batches they were built from.

// startOffset is the log start offset clients see.
func (p *partition) startOffset() int64 { return max(p.logStart, p.log.StartOffset()) }

var errBadDeleteRecords = errors.New("engine: corrupt delete-records entry")

// applyDeleteRecords moves the log start to the entry's offset (never
// back, never past the end); the result's base is the start after it.
func (p *partition) applyDeleteRecords(body []byte) produceResult {
	off, n := binary.Varint(body)
	if n <= 0 || n != len(body) || off < 0 {
		return produceResult{err: errBadDeleteRecords}
	}
	off = min(off, p.log.EndOffset())
	if off <= p.startOffset() {
		return produceResult{base: p.startOffset()}
	}
	p.logStart = off
	if err := p.log.TruncatePrefix(off); err != nil {
		p.storageFailed(err, p.log.EndOffset(), p.applied)
		return produceResult{err: kerr.KafkaStorageError}
	}
	if _, err := p.Sync(); err != nil || p.storageErr != nil {
		return produceResult{err: kerr.KafkaStorageError}
	}
	return produceResult{base: p.logStart}
}

// proposeDeleteRecords proposes moving the log start to offset; fn gets
// the start once the entry applies here, or the error.
func (p *partition) proposeDeleteRecords(offset int64, fn func(produceResult)) (uint64, bool) {
	return p.proposeOp(opDeleteRecords, binary.AppendVarint(nil, offset), fn)
}
