package engine

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"github.com/gregor-streaming/gregor/engine/batch"
	"github.com/gregor-streaming/gregor/engine/producers"
	"github.com/gregor-streaming/gregor/engine/rsm"
	"github.com/gregor-streaming/gregor/engine/segment"
	"github.com/gregor-streaming/gregor/raftlog"
	"github.com/twmb/franz-go/pkg/kerr"
	"go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"
)

// A partition is one replica of a topic partition: the raft group's state
// machine. Its state is the segment log (record batches as produced, with
// offsets assigned at apply time), the idempotent-producer state and the
// leader-epoch history, all derived from the batches alone, so that every
// replica that applies the same entries holds the same bytes.
//
// The high watermark is the applied end of the log: only committed entries
// are applied, so a fetch never returns what is not committed.
type partition struct {
	b        *Broker
	topic    string
	index    int32
	group    raftlog.GroupID
	replicas []int32

	log       *segment.Log
	producers *producers.State
	epochs    []epochStart
	applied   uint64

	leader bool
	lead   uint64
	term   uint64

	pending       rsm.Proposals[produceResult] // this run's proposals by seq
	reads         rsm.Reads
	watchers      rsm.Waiters // long-poll fetches waiting for new data
	reportPending bool
	caughtUp      map[int32]int64 // replica -> last tick its log matched the commit
}

type epochStart struct {
	epoch int32
	start int64
}

type produceResult struct {
	base int64
	err  error
}

// Operations in a partition's raft log (rsm.Header.Op).
const opProduce byte = 1

func partitionDir(g raftlog.GroupID) string { return fmt.Sprintf("partitions/%d", g) }

func (b *Broker) startPartition(topic string, index int32, g raftlog.GroupID, replicas []int32) error {
	if _, ok := b.parts[g]; ok {
		return nil
	}
	log, err := segment.Open(b.env.FS, partitionDir(g), segment.Options{SegmentBytesMax: b.cfg.SegmentBytes})
	if err != nil {
		return fmt.Errorf("engine: open partition %s-%d: %w", topic, index, err)
	}
	p := &partition{
		b: b, topic: topic, index: index, group: g, replicas: replicas, log: log,
		caughtUp: map[int32]int64{},
	}
	p.reads = rsm.Reads{Group: g, TimeoutTicks: int64(2 * b.cfg.ElectionTicks), NotLeader: kerr.NotLeaderForPartition.Code}
	if err := p.rebuild(); err != nil {
		return err
	}
	b.parts[g] = p
	var voters []uint64
	for _, r := range replicas {
		voters = append(voters, uint64(r))
	}
	return b.hostReplica(g, voters, p, replicas[0] == b.cfg.ID)
}

func (b *Broker) stopPartition(g raftlog.GroupID) error {
	p, ok := b.parts[g]
	if !ok {
		return nil
	}
	delete(b.parts, g)
	p.failAll(kerr.UnknownTopicOrPartition)
	if err := b.unhostReplica(g); err != nil {
		return err
	}
	if err := p.close(); err != nil {
		return err
	}
	return removeAll(b, partitionDir(g))
}

func removeAll(b *Broker, dir string) error {
	fs := b.env.FS
	names, err := fs.List(dir)
	if err != nil {
		return nil
	}
	for _, n := range names {
		if err := fs.Remove(dir + "/" + n); err != nil {
			return err
		}
	}
	if err := fs.Remove(dir); err != nil {
		return err
	}
	return fs.SyncDir("partitions")
}

// rebuild derives producer state, epochs and the applied index from the
// batches on disk.
func (p *partition) rebuild() error {
	p.producers = producers.New()
	p.epochs = nil
	p.applied = p.log.LastTag()
	return p.log.Batches(p.log.StartOffset(), func(b []byte, meta segment.BatchMeta) error {
		h, err := batch.ReadHeader(b)
		if err != nil {
			return err
		}
		p.noteBatch(h, meta.BaseOffset)
		return nil
	})
}

func (p *partition) noteBatch(h batch.Header, base int64) {
	if h.Idempotent() {
		p.producers.Record(h.ProducerID, h.ProducerEpoch, h.BaseSequence, h.LastSequence(), base)
	}
	if n := len(p.epochs); n == 0 || p.epochs[n-1].epoch < h.PartitionLeaderEpoch {
		p.epochs = append(p.epochs, epochStart{h.PartitionLeaderEpoch, base})
	}
}

func (p *partition) close() error { return p.log.Close() }

// highWatermark is the end of the applied (committed) log.
func (p *partition) highWatermark() int64 { return p.log.EndOffset() }

// --- raftlog.StateMachine ---

func (p *partition) AppliedIndex() uint64 { return p.applied }

// Sync makes the segments durable. The durable point is the raft index of
// the last stored batch: entries after it produced no batch and are simply
// re-applied after a crash, with the same result.
func (p *partition) Sync() (uint64, error) {
	if err := p.log.Sync(); err != nil {
		return 0, err
	}
	return p.log.LastTag(), nil
}

func (p *partition) LeaderChanged(lead, term uint64) {
	was, oldTerm := p.leader, p.term
	p.lead, p.term = lead, term
	p.leader = lead == uint64(p.b.cfg.ID)
	if was && (!p.leader || term != oldTerm) {
		// A new term, even one this replica leads again, may have
		// replaced the old term's uncommitted entries: their proposers
		// would wait for applies that never come. They retry instead
		// (idempotence dedupes what did commit).
		p.failAll(kerr.NotLeaderForPartition)
	}
	if p.leader && !was {
		// Proposing to the metadata group from inside this group's Ready
		// handling would touch another group mid-cycle: do it after.
		p.b.effects = append(p.b.effects, func() error { p.b.reportLeader(p); return nil })
	}
}

// failAll answers everything waiting on this replica with code.
func (p *partition) failAll(code error) {
	p.pending.FailAll(produceResult{err: code})
	p.reads.Fail(errCode(code))
	p.watchers.Wake()
}

func (p *partition) Apply(ents []*pb.Entry) error {
	for _, e := range ents {
		if e.GetIndex() <= p.applied {
			continue
		}
		p.applied = e.GetIndex()
		data := e.GetData()
		if len(data) == 0 {
			continue // a new leader's empty entry
		}
		h, records, err := rsm.Parse(data)
		if err == nil && h.Kind != rsm.KindPartition {
			err = fmt.Errorf("entry of kind %v", h.Kind)
		}
		if err != nil {
			return fmt.Errorf("engine: partition %s-%d entry %d: %w", p.topic, p.index, e.GetIndex(), err)
		}
		if h.Op != opProduce {
			return fmt.Errorf("engine: partition %s-%d entry %d: unknown op %d", p.topic, p.index, e.GetIndex(), h.Op)
		}
		res := p.applyProduce(records, e.GetIndex(), int32(e.GetTerm()))
		if p.b.prop.Mine(h) {
			p.pending.Resolve(h.Seq, res)
		}
	}
	p.reads.Applied(p.applied)
	p.watchers.Wake()
	return nil
}

// applyProduce appends one produce entry's batches. Batches were validated
// by the leader before proposing; apply is deterministic on every replica.
func (p *partition) applyProduce(records []byte, index uint64, epoch int32) produceResult {
	batches, err := batch.Split(records)
	if err != nil {
		return produceResult{err: err}
	}
	hdrs := make([]batch.Header, len(batches))
	for i, b := range batches {
		if hdrs[i], err = batch.ReadHeader(b); err != nil {
			return produceResult{err: err}
		}
	}
	if len(hdrs) == 1 && hdrs[0].Idempotent() && !p.b.cfg.Unsafe.NoDedupe {
		h := hdrs[0]
		v := p.producers.Check(h.ProducerID, h.ProducerEpoch, h.BaseSequence, h.LastSequence())
		if v.Err != nil {
			return produceResult{err: v.Err}
		}
		if v.Duplicate {
			return produceResult{base: v.BaseOffset}
		}
	}
	base := p.log.EndOffset()
	off := base
	for i, b := range batches {
		// NB: this edits the entry's bytes in place, and they are shared
		// with raft's in-memory log. That is safe: the edit is the same on
		// every replica and every re-application (offsets and epoch are
		// functions of the log), both fields sit outside the CRC, and every
		// other reader of those bytes (WAL encode, transport encode) runs on
		// this goroutine and copies them. It saves a copy of every batch.
		batch.SetBaseOffset(b, off)
		batch.SetPartitionLeaderEpoch(b, epoch)
		h := hdrs[i]
		h.PartitionLeaderEpoch = epoch
		meta := segment.BatchMeta{BaseOffset: off, LastOffset: off + int64(h.LastOffsetDelta), MaxTimestamp: h.MaxTimestamp, Tag: index}
		if err := p.log.Append(b, meta); err != nil {
			// A replica that cannot store a committed entry must not go on
			// as if it had: its log would diverge from the others.
			panic(fmt.Sprintf("engine: partition %s-%d append at %d: %v", p.topic, p.index, off, err))
		}
		p.noteBatch(h, off)
		off = meta.LastOffset + 1
	}
	return produceResult{base: base}
}

// --- snapshots ---

// Snapshot encodes the whole partition: applied index, log start, the
// producer state, and every batch with its meta.
func (p *partition) Snapshot() ([]byte, error) {
	b := binary.AppendUvarint(nil, p.applied)
	b = binary.AppendVarint(b, p.log.StartOffset())
	ps := p.producers.Encode()
	b = binary.AppendUvarint(b, uint64(len(ps)))
	b = append(b, ps...)
	err := p.log.Batches(p.log.StartOffset(), func(batch []byte, m segment.BatchMeta) error {
		b = binary.AppendVarint(b, m.BaseOffset)
		b = binary.AppendVarint(b, m.LastOffset)
		b = binary.AppendVarint(b, m.MaxTimestamp)
		b = binary.AppendUvarint(b, m.Tag)
		b = binary.AppendUvarint(b, uint64(len(batch)))
		b = append(b, batch...)
		return nil
	})
	return b, err
}

type snapshotData struct {
	applied   uint64
	start     int64
	producers *producers.State
	metas     []segment.BatchMeta
	batches   [][]byte
}

var errBadSnapshot = errors.New("engine: corrupt partition snapshot")

// decodeSnapshot parses Snapshot's output. It never panics on bad input.
func decodeSnapshot(data []byte) (*snapshotData, error) {
	r := bytes.NewReader(data)
	var s snapshotData
	var err error
	if s.applied, err = binary.ReadUvarint(r); err != nil {
		return nil, errBadSnapshot
	}
	if s.start, err = binary.ReadVarint(r); err != nil {
		return nil, errBadSnapshot
	}
	n, err := binary.ReadUvarint(r)
	if err != nil || n > uint64(r.Len()) {
		return nil, errBadSnapshot
	}
	off := len(data) - r.Len()
	if s.producers, err = producers.Decode(data[off : off+int(n)]); err != nil {
		return nil, errBadSnapshot
	}
	r.Seek(int64(off+int(n)), 0)
	next := s.start
	for r.Len() > 0 {
		var m segment.BatchMeta
		m.BaseOffset, err = binary.ReadVarint(r)
		if err == nil {
			m.LastOffset, err = binary.ReadVarint(r)
		}
		if err == nil {
			m.MaxTimestamp, err = binary.ReadVarint(r)
		}
		if err == nil {
			m.Tag, err = binary.ReadUvarint(r)
		}
		var l uint64
		if err == nil {
			l, err = binary.ReadUvarint(r)
		}
		if err != nil || l > uint64(r.Len()) || m.BaseOffset != next || m.LastOffset < m.BaseOffset {
			return nil, errBadSnapshot
		}
		pos := len(data) - r.Len()
		s.metas = append(s.metas, m)
		s.batches = append(s.batches, data[pos:pos+int(l)])
		r.Seek(int64(pos+int(l)), 0)
		next = m.LastOffset + 1
	}
	return &s, nil
}

func (p *partition) Restore(data []byte) error {
	s, err := decodeSnapshot(data)
	if err != nil {
		return err
	}
	if err := p.log.Reset(s.start); err != nil {
		return err
	}
	for i, b := range s.batches {
		if err := p.log.Append(slices.Clone(b), s.metas[i]); err != nil {
			return err
		}
	}
	if err := p.log.Sync(); err != nil {
		return err
	}
	if err := p.rebuild(); err != nil {
		return err
	}
	p.producers = s.producers
	p.applied = s.applied
	p.failAll(kerr.NotLeaderForPartition)
	return nil
}

// --- linearizable reads ---

// read calls fn once a read of this replica's state is linearizable: after
// a ReadIndex round started after the call has confirmed leadership and the
// state has applied up to the read index (rsm.Reads). fn gets 0 or a Kafka
// error code.
func (p *partition) read(fn func(errCode int16)) {
	if p.b.cfg.Unsafe.StaleRead {
		fn(0)
		return
	}
	if !p.leader {
		fn(kerr.NotLeaderForPartition.Code)
		return
	}
	p.reads.Add(fn)
}

func (p *partition) startReads() { p.reads.Start(p.b.host, p.leader, p.b.ticks) }

func (p *partition) ReadIndexReady(states []raft.ReadState) { p.reads.Ready(states, p.applied) }

func (p *partition) tick() {
	p.reads.Tick(p.b.ticks)
	if p.leader {
		p.trackISR()
	}
}

// isrLagTicks is how long a follower may trail the commit index and stay in
// sync (Kafka's replica.lag.time.max.ms, in ticks).
func (p *partition) isrLagTicks() int64 { return int64(3 * p.b.cfg.ElectionTicks) }

func (p *partition) trackISR() {
	st, ok := p.b.host.Status(p.group)
	if !ok || !st.Leader {
		return
	}
	for _, r := range p.replicas {
		if st.Progress[uint64(r)] >= st.Commit {
			p.caughtUp[r] = p.b.ticks
		}
	}
}

// isr is the leader's view of its in-sync replicas, sorted.
func (p *partition) isr() []int32 {
	var out []int32
	for _, r := range p.replicas {
		if r == p.b.cfg.ID {
			out = append(out, r)
			continue
		}
		if t, ok := p.caughtUp[r]; ok && p.b.ticks-t <= p.isrLagTicks() {
			out = append(out, r)
		}
	}
	slices.Sort(out)
	return out
}

// epochEnd answers OffsetForLeaderEpoch: the largest epoch <= asked and
// the offset where it ended (the next epoch's start, or the log end).
func (p *partition) epochEnd(asked int32) (int32, int64) {
	i, _ := slices.BinarySearchFunc(p.epochs, asked+1, func(e epochStart, t int32) int { return int(e.epoch - t) })
	if i == 0 {
		return -1, -1
	}
	if i < len(p.epochs) {
		return p.epochs[i-1].epoch, p.epochs[i].start
	}
	// The newest epoch in the log; the leader's current term extends it.
	e := p.epochs[i-1].epoch
	if p.leader && asked >= int32(p.term) {
		e = int32(p.term)
	}
	return e, p.log.EndOffset()
}

func errCode(err error) int16 {
	var ke *kerr.Error
	if errors.As(err, &ke) {
		return ke.Code
	}
	if err == nil {
		return 0
	}
	return kerr.UnknownServerError.Code
}
