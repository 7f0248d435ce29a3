package engine

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"github.com/gregor-streaming/gregor/engine/batch"
	"github.com/gregor-streaming/gregor/engine/segment"
	"github.com/twmb/franz-go/pkg/kerr"
)

// Repair: a replica whose state does not reach what raft applies next
// (a raft snapshot was installed, or local segments lost data) fetches a
// peer replica's state and installs it atomically.
//
//  1. It asks a peer (the raft leader first, then the other replicas in
//     turn) for its state header at the peer's applied index S: log start
//     and end, epochs, producer state (opStateBegin). The peer refuses if
//     it is lost itself or S is below what this replica's raft log can go
//     on from (FirstIndex - 1).
//  2. It copies the batches [start, end) in chunks of at most
//     Config.SnapshotChunkBytes (opStateChunk), one request at a time,
//     validating every batch's CRC, into a new state directory.
//  3. It writes the checkpoint there, switches CURRENT to it (an atomic
//     rename), removes the old directory, and applies the entries raft
//     handed over meanwhile, (S, delivered], from raft's in-memory log.
//
// Any error, refusal or timeout drops the new directory and starts again
// with the next peer. Memory stays bounded by one chunk; raft never holds
// the data.

// repairTimeoutMs bounds each peer request of a repair.
const repairTimeoutMs = 5_000

type repair struct {
	source  int32
	n       uint64 // the new state directory's number
	log     *segment.Log
	ck      *checkpoint
	next    int64
	waiting bool
}

// becomeLost marks the replica lost at entry index (which lies beyond the
// applied index + 1): it stops applying and serving until repaired.
func (p *partition) becomeLost(index uint64) {
	p.b.env.Logf("engine: partition %s-%d: raft entry %d follows applied index %d: fetching the state from a peer",
		p.topic, p.index, index, p.applied)
	p.lost = true
	p.delivered = max(p.delivered, index)
	p.failAll(kerr.NotLeaderForPartition)
}

// repairSources lists the replicas to ask, the raft leader first.
func (p *partition) repairSources() []int32 {
	var out []int32
	if p.lead != 0 && int32(p.lead) != p.b.cfg.ID {
		out = append(out, int32(p.lead))
	}
	for _, r := range p.replicas {
		if r != p.b.cfg.ID && !slices.Contains(out, r) {
			out = append(out, r)
		}
	}
	return out
}

// handOffLeadership asks raft to move leadership to another replica: a
// lost replica (repairing, or stopped by its disk) cannot serve. It runs on
// every tick such a replica leads, so a lost transfer is asked again.
func (p *partition) handOffLeadership() {
	if srcs := p.repairSources(); len(srcs) > 0 {
		p.b.host.TransferLeadership(p.group, uint64(srcs[0]))
	}
}

// tickRepair starts a repair of a lost replica when none runs.
func (p *partition) tickRepair() {
	if p.storageErr != nil {
		p.retryStorage()
		return
	}
	if !p.lost || p.repair != nil {
		return
	}
	srcs := p.repairSources()
	if len(srcs) == 0 {
		return
	}
	p.repairTurn++
	src := srcs[int(p.repairTurn)%len(srcs)]
	first, ok := p.b.host.FirstIndex(p.group)
	if !ok {
		return
	}
	r := &repair{source: src, n: p.stateN + 1, waiting: true}
	p.repair = r
	p.b.callPeer(src, p.group, opStateBegin, binary.AppendUvarint(nil, first-1), repairTimeoutMs, func(body []byte, err error) {
		if p.repair != r {
			return
		}
		r.waiting = false
		if err == nil {
			err = p.beginRepair(r, body)
		}
		if err != nil {
			p.failRepair(err)
			return
		}
		p.nextChunk(r)
	})
}

func (p *partition) beginRepair(r *repair, body []byte) error {
	ck, err := decodeCheckpoint(body)
	if err != nil {
		return err
	}
	fs := p.b.env.FS
	dir := p.stateDir(r.n)
	if fs.Exists(dir) {
		if err := removeTree(fs, dir); err != nil {
			return err
		}
	}
	if err := fs.MkdirAll(dir); err != nil {
		return err
	}
	log, err := segment.Open(fs, dir, p.segmentOptions())
	if err != nil {
		return err
	}
	if ck.start != 0 {
		if err := log.Reset(ck.start); err != nil {
			log.Close()
			return err
		}
	}
	r.log, r.ck, r.next = log, ck, ck.start
	return nil
}

// nextChunk asks for the next range of batches, or installs the state
// when every batch has arrived.
func (p *partition) nextChunk(r *repair) {
	if r.next >= r.ck.end {
		if err := p.installRepair(r); err != nil {
			p.failRepair(err)
		}
		return
	}
	body := binary.AppendVarint(nil, r.next)
	body = binary.AppendVarint(body, r.ck.end)
	body = binary.AppendUvarint(body, uint64(p.b.cfg.SnapshotChunkBytes))
	r.waiting = true
	p.b.callPeer(r.source, p.group, opStateChunk, body, repairTimeoutMs, func(body []byte, err error) {
		if p.repair != r {
			return
		}
		r.waiting = false
		if err == nil {
			err = p.storeChunk(r, body)
		}
		if err != nil {
			p.failRepair(err)
			return
		}
		p.nextChunk(r)
	})
}

var errBadChunk = errors.New("engine: bad state chunk from peer")

// storeChunk validates a chunk's batches and appends them to the new state.
func (p *partition) storeChunk(r *repair, body []byte) error {
	bs, err := batch.Split(body)
	if err != nil || len(bs) == 0 {
		return errBadChunk
	}
	for _, b := range bs {
		// The structure and CRC only: a peer's log holds what no client
		// may send (transaction markers, a coordinator's own batches).
		// A batch may start past r.next where the peer's log was
		// compacted (compaction.go): the frame covers the gap.
		h, err := batch.ValidateStructure(b)
		if err != nil || h.BaseOffset < r.next || h.BaseOffset+int64(h.LastOffsetDelta) >= r.ck.end {
			return fmt.Errorf("%w: batch at %d (want %d)", errBadChunk, h.BaseOffset, r.next)
		}
		meta := segment.BatchMeta{BaseOffset: r.next, LastOffset: h.BaseOffset + int64(h.LastOffsetDelta), MaxTimestamp: h.MaxTimestamp}
		if err := r.log.Append(slices.Clone(b), meta); err != nil {
			return err
		}
		r.next = meta.LastOffset + 1
	}
	return nil
}

// installRepair makes the fetched state the replica's, atomically, and
// applies what raft delivered meanwhile.
func (p *partition) installRepair(r *repair) error {
	first, _ := p.b.host.FirstIndex(p.group)
	if r.ck.applied+1 < first {
		return fmt.Errorf("engine: peer state at %d is older than raft's log, which starts at %d", r.ck.applied, first)
	}
	fs := p.b.env.FS
	if err := r.log.Sync(); err != nil {
		return err
	}
	if err := writeCheckpoint(fs, p.stateDir(r.n), r.ck); err != nil {
		return err
	}
	if err := p.switchState(r.n, r.log, r.ck); err != nil {
		return err
	}
	p.repair, p.lost = nil, false
	p.b.env.Logf("engine: partition %s-%d: installed the state of broker %d at index %d (offsets [%d, %d))",
		p.topic, p.index, r.source, r.ck.applied, r.ck.start, r.ck.end)
	return p.applyDelivered()
}

// failRepair drops a repair in progress; the next tick starts another
// with the next peer.
func (p *partition) failRepair(err error) {
	p.b.env.Logf("engine: partition %s-%d: repair: %v", p.topic, p.index, err)
	p.abortRepair()
}

func (p *partition) abortRepair() {
	r := p.repair
	if r == nil {
		return
	}
	p.repair = nil
	if r.log != nil {
		r.log.Close()
		if err := removeTree(p.b.env.FS, p.stateDir(r.n)); err != nil {
			p.b.env.Logf("engine: partition %s-%d: remove %s: %v", p.topic, p.index, p.stateDir(r.n), err)
		}
	}
}

// serveStateBegin answers opStateBegin: this replica's checkpoint at its
// applied index, if it is at least the asked minimum.
func (p *partition) serveStateBegin(body []byte) ([]byte, error) {
	min, n := binary.Uvarint(body)
	if n <= 0 {
		return nil, errBadChunk
	}
	if p.lost || p.applied < min {
		return nil, errPeerRefused
	}
	return p.checkpoint().encode(), nil
}

// serveStateChunk answers opStateChunk: whole batches from an offset,
// below an end offset, at most max bytes (at least one batch).
func (p *partition) serveStateChunk(body []byte) ([]byte, error) {
	r := &byteReader{b: body}
	from, end, maxBytes := r.varint(), r.varint(), r.uvarint()
	if r.err != nil || p.lost || from < p.log.StartOffset() || end > p.log.EndOffset() || from >= end {
		return nil, errPeerRefused
	}
	data, err := p.log.Read(from, int(min(maxBytes, 64<<20)))
	if err != nil {
		return nil, err
	}
	// Cut at end: the log may have grown since the state header was taken.
	out := data[:0]
	bs, err := batch.Split(data)
	if err != nil {
		return nil, err
	}
	for _, b := range bs {
		h, err := batch.ReadHeader(b)
		if err != nil || h.BaseOffset >= end {
			break
		}
		out = append(out, b...)
	}
	return out, nil
}
