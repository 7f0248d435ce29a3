package engine

import (
	"errors"
	"fmt"
	"slices"
	"strings"

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
	stateN    uint64 // the live state directory is state-<stateN>

	// lost is set when this replica's state does not reach what raft will
	// apply next (a gap after a raft snapshot, or segments that lost
	// data): it applies nothing and serves nothing until it has installed
	// a peer's state (repair.go). delivered is the last raft index handed
	// to Apply meanwhile.
	// expiring is set while this leader's producer expiry entry is in
	// flight; nextExpiryCheck is when it looks again (its clock).
	expiring        bool
	nextExpiryCheck int64

	// storageErr is the write or sync error that stopped this replica
	// (storage.go); failedEnd is the log end offset before the entry
	// that failed, to which the log is cut back before it goes on.
	storageErr error
	failedEnd  int64
	retryTick  int64
	// undurable is set when a storage failure left applied state that
	// no checkpoint holds, until a checkpoint succeeds again. Raft may
	// meanwhile drop the entries behind it (a leader's snapshot), so a
	// crash can bring the replica back behind what it had applied: it
	// then knows it is lost and copies a peer's state.
	undurable bool

	lost       bool
	delivered  uint64
	repair     *repair
	repairTurn uint64

	leader bool
	lead   uint64
	term   uint64

	pending       rsm.Proposals[produceResult] // this run's proposals by seq
	reads         rsm.Reads
	watchers      rsm.Waiters // long-poll fetches waiting for new data
	reportPending bool
	caughtUp      map[int32]int64 // replica -> last tick its log matched the commit

	// coord is the group coordinator riding a __consumer_offsets
	// partition (coordinator.go); nil for every other topic. life is the
	// load lifecycle of whatever coordinator the partition carries (the
	// same one's), which the partition's hooks drive; nil without one.
	coord *coordinator
	txn   *txnCoordinator // on a __transaction_state partition
	life  *coordLife

	// logStart is the log start offset clients see: the segments' first
	// offset, or past it once DeleteRecords moved it (records.go).
	logStart int64
	// retaining: a retention entry is in flight; nextRetentionCheck is
	// when the leader looks again (records.go).
	retaining          bool
	nextRetentionCheck int64
	// cleanedTo is where the last compaction round ended (replicated, in
	// the checkpoint); cleanMap is this replica's cache of a round's
	// offset map; round, compacting and nextCompactCheck are the
	// leader's progress (compaction.go).
	cleanedTo        int64
	cleanMap         *offsetMap
	round            *cleanRound
	compacting       bool
	nextCompactCheck int64

	// verifying holds, per producer id, the transaction verification in
	// flight: whether it also adds the partition (transactions v2) and
	// the produce requests waiting behind it (00_produce.go).
	verifying map[int64]*verification
	// markedWhileVerifying holds the producers a marker was proposed for
	// while their verification was in flight: its answer is stale, and
	// the batch must not follow the marker (Kafka's verification guard).
	markedWhileVerifying map[int64]bool
}

type epochStart struct {
	epoch int32
	start int64
}

type produceResult struct {
	base int64
	err  error
	// duplicate: the batch was one of its producer's last five, appended
	// before at base; dupTime is that batch's max timestamp (-1 if not
	// known), which Kafka answers as the duplicate's LogAppendTime.
	duplicate bool
	dupTime   int64
}

// Operations in a partition's raft log (rsm.Header.Op).
const (
	opProduce         byte = 1 // record batches to append
	opExpireProducers byte = 2 // idempotent producers a leader found expired
	opTxnMarker       byte = 3 // a transaction marker to append (txn_partition.go)
	opDeleteRecords   byte = 4 // move the log start offset (records.go)
	opCompact         byte = 5 // one step of log compaction (compaction.go)
)

func partitionDir(g raftlog.GroupID) string { return fmt.Sprintf("partitions/%d", g) }

func (b *Broker) startPartition(topic string, index int32, g raftlog.GroupID, replicas []int32) error {
	if _, ok := b.parts[g]; ok {
		return nil
	}
	p := &partition{
		b: b, topic: topic, index: index, group: g, replicas: replicas,
		caughtUp: map[int32]int64{},
	}
	p.reads = rsm.Reads{Group: g, TimeoutTicks: int64(2 * b.cfg.ElectionTicks), NotLeader: kerr.NotLeaderForPartition.Code}
	if topic == offsetsTopic {
		p.coord = newCoordinator(p)
		p.life = &p.coord.coordLife
	}
	if topic == txnStateTopic {
		p.txn = newTxnCoordinator(p)
		p.life = &p.txn.coordLife
	}
	if err := p.open(); err != nil {
		return fmt.Errorf("engine: open partition %s-%d: %w", topic, index, err)
	}
	var voters []uint64
	for _, r := range replicas {
		voters = append(voters, uint64(r))
	}
	if err := b.hostReplica(g, voters, p, replicas[0] == b.cfg.ID); err != nil {
		p.close()
		return err
	}
	b.parts[g] = p
	// A raft log that starts beyond the state (a snapshot received before
	// a crash, or local state lost) is a gap even before the next entry.
	if first, _ := b.host.FirstIndex(g); first-1 > p.applied && !b.cfg.Unsafe.SkipApplyCheckpoint {
		p.becomeLost(first - 1)
	}
	return nil
}

func (b *Broker) stopPartition(g raftlog.GroupID) error {
	p, ok := b.parts[g]
	if !ok {
		return nil
	}
	p.failAll(kerr.UnknownTopicOrPartition)
	p.abortRepair()
	if err := b.unhostReplica(g); err != nil {
		return err
	}
	delete(b.parts, g)
	p.close()
	return removeTree(b.env.FS, partitionDir(g))
}

func (p *partition) dir() string { return partitionDir(p.group) }

func (p *partition) stateDir(n uint64) string { return p.dir() + "/" + stateDirName(n) }

func (p *partition) segmentOptions() segment.Options {
	return segment.Options{SegmentBytesMax: p.b.topicSegmentBytes(p.topic), SegmentMs: p.b.topicPolicy(p.topic).segmentMs}
}

// topicSegmentBytes is the topic's segment.bytes, or the broker's. A
// change applies to the next roll; replicas may then roll at other
// offsets, which nothing depends on (retention and DeleteRecords carry
// offsets, a state transfer copies batches).
func (b *Broker) topicSegmentBytes(topic string) int64 {
	if n := b.topicPolicy(topic).segmentBytes; n > 0 {
		return n
	}
	return b.cfg.SegmentBytes
}

// open finds the live state directory (creating the first one for a new
// replica), removes any other (a restore that a crash interrupted), and
// recovers the state from its segments and checkpoint.
func (p *partition) open() error {
	fs := p.b.env.FS
	if err := fs.MkdirAll(p.dir()); err != nil {
		return err
	}
	n, err := readCurrent(fs, p.dir())
	if err != nil {
		return err
	}
	if n == 0 {
		n = 1
		if err := fs.MkdirAll(p.stateDir(n)); err != nil {
			return err
		}
		if err := writeCurrent(fs, p.dir(), n); err != nil {
			return err
		}
	}
	p.stateN = n
	names, err := fs.List(p.dir())
	if err != nil {
		return err
	}
	for _, name := range names {
		if strings.HasPrefix(name, stateDirPrefix) && name != stateDirName(n) {
			if err := removeTree(fs, p.dir()+"/"+name); err != nil {
				return err
			}
		}
	}
	return p.recover()
}

// recover loads the live state. Segments that do not reach the
// checkpoint's end offset (bit rot, a lost file), a corrupt older segment
// or a corrupt checkpoint mean the state is not what raft's log continues
// from: the replica starts over from an empty state at the bootstrap index,
// and the first entry raft hands over shows whether it can re-apply its way
// back (an uncompacted log) or must fetch a peer's state (a gap).
func (p *partition) recover() error {
	fs := p.b.env.FS
	dir := p.stateDir(p.stateN)
	ck, err := readCheckpoint(fs, dir)
	var log *segment.Log
	if err == nil {
		log, err = segment.Open(fs, dir, p.segmentOptions())
	}
	if err == nil && ck != nil && (log.EndOffset() < ck.end || log.StartOffset() > ck.start) {
		err = fmt.Errorf("%w: segments hold [%d, %d), the checkpoint at index %d says [%d, %d)", errStateShort,
			log.StartOffset(), log.EndOffset(), ck.applied, ck.start, ck.end)
	}
	if err != nil {
		if log != nil {
			log.Close()
		}
		if !errors.Is(err, segment.ErrCorrupt) && !errors.Is(err, errBadCheckpoint) && !errors.Is(err, errStateShort) {
			return err
		}
		p.b.env.Logf("engine: partition %s-%d: local state unusable, starting over: %v", p.topic, p.index, err)
		return p.startOver()
	}
	p.log = log
	p.producers, p.epochs, p.applied, p.logStart, p.cleanedTo = producers.New(), nil, bootstrapIndex, log.StartOffset(), 0
	p.cleanMap = nil
	from := log.StartOffset()
	if ck != nil {
		p.producers, p.epochs, p.applied, p.logStart, p.cleanedTo = ck.producers, ck.epochs, ck.applied, ck.logStart, ck.cleanedTo
		from = ck.end
	}
	// Batches after the checkpoint were applied after it: their tags say
	// how far, and their headers rebuild the producer state and epochs.
	p.applied = max(p.applied, log.LastTag())
	if from < log.EndOffset() {
		err := log.Batches(from, func(b []byte, meta segment.BatchMeta) error {
			h, err := batch.ReadHeader(b)
			if err != nil {
				return err
			}
			p.noteBatch(b, h, h.BaseOffset)
			return nil
		})
		if errors.Is(err, segment.ErrCorrupt) {
			// Rot in a batch after the checkpoint: the segments do not
			// hold what they say, as above (TestRegression_RotAfterCheckpoint).
			p.log = nil
			log.Close()
			p.b.env.Logf("engine: partition %s-%d: local state unusable, starting over: %v", p.topic, p.index, err)
			return p.startOver()
		}
		if err != nil {
			return err
		}
	}
	return p.reloadCoordinator()
}

// reloadCoordinator rebuilds a coordinator's state from the log now live.
func (p *partition) reloadCoordinator() error {
	if p.life == nil {
		return nil
	}
	return p.life.reload()
}

// errStateShort: the segments do not hold what the checkpoint says they do.
var errStateShort = errors.New("engine: replica state short of its checkpoint")

// bootstrapIndex is the raft index every group starts from (raftlog's
// bootstrap snapshot); a new replica's state is applied up to it.
const bootstrapIndex = 1

// startOver replaces the live state by an empty one (a new state
// directory, switched to atomically) applied up to the bootstrap index.
func (p *partition) startOver() error {
	fs := p.b.env.FS
	n := p.stateN + 1
	if err := fs.MkdirAll(p.stateDir(n)); err != nil {
		return err
	}
	log, err := segment.Open(fs, p.stateDir(n), p.segmentOptions())
	if err != nil {
		return err
	}
	empty := &checkpoint{applied: bootstrapIndex, producers: producers.New()}
	if err := p.switchState(n, log, empty); err != nil {
		log.Close()
		return err
	}
	return nil
}

// switchState makes state directory n, whose log is open and whose state
// ck describes, the live one: CURRENT is renamed to name it (the atomic
// step), then the old directory goes. A crash before the rename leaves the
// old state, after it the new one; open removes a directory left behind.
func (p *partition) switchState(n uint64, log *segment.Log, ck *checkpoint) error {
	fs := p.b.env.FS
	if err := writeCurrent(fs, p.dir(), n); err != nil {
		return err
	}
	old := p.stateN
	if p.log != nil {
		p.log.Close()
	}
	p.log, p.stateN = log, n
	p.producers, p.epochs, p.applied, p.logStart = ck.producers, ck.epochs, ck.applied, max(ck.logStart, log.StartOffset())
	p.cleanedTo, p.cleanMap = ck.cleanedTo, nil
	if err := removeTree(fs, p.stateDir(old)); err != nil {
		p.b.env.Logf("engine: partition %s-%d: remove %s: %v (removed at the next start)", p.topic, p.index, p.stateDir(old), err)
	}
	return p.reloadCoordinator()
}

// applyDelivered applies what raft handed over while the replica could
// not apply (lost, or stopped by a disk error), from raft's in-memory log.
func (p *partition) applyDelivered() error {
	if p.delivered <= p.applied {
		return nil
	}
	ents, err := p.b.host.Entries(p.group, p.applied+1, p.delivered+1)
	if err != nil {
		return err
	}
	return p.Apply(ents)
}

// noteBatch updates the state a batch's header (and, for a transaction
// marker, its one record) determines: producer sequences, open and ended
// transactions, leader epochs. Apply and recovery both go through it.
func (p *partition) noteBatch(b []byte, h batch.Header, base int64) {
	switch {
	case h.Control():
		p.noteMarker(b, h, base)
	case h.Idempotent():
		p.producers.Record(h.ProducerID, h.ProducerEpoch, h.BaseSequence, h.LastSequence(), base, h.MaxTimestamp)
		if h.Transactional() {
			p.producers.BeginTxn(h.ProducerID, base)
		}
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

// Sync makes the segments durable and then writes the checkpoint naming
// the applied index as the durable apply point, so the raft log may be
// compacted up to it even when the last entries stored nothing (rejected
// retries, a new leader's empty entry). A lost replica has no durable
// point beyond what it had: the entries raft holds are what it will
// apply after its repair.
func (p *partition) Sync() (uint64, error) {
	if p.lost {
		return 0, nil
	}
	if p.b.cfg.Unsafe.SkipApplyCheckpoint {
		return p.applied, nil
	}
	err := p.log.Sync()
	if err == nil {
		err = writeCheckpoint(p.b.env.FS, p.stateDir(p.stateN), p.checkpoint())
	}
	if err != nil {
		// Nothing is durable beyond the last checkpoint: the raft log
		// keeps the entries since, and the replica stops until its
		// storage works again.
		p.storageFailed(err, p.log.EndOffset(), p.applied)
		return 0, nil
	}
	p.undurable = false
	return p.applied, nil
}

// checkpoint describes the state now.
func (p *partition) checkpoint() *checkpoint {
	return &checkpoint{
		applied: p.applied, start: p.log.StartOffset(), end: p.log.EndOffset(), logStart: p.startOffset(), cleanedTo: p.cleanedTo,
		epochs: slices.Clone(p.epochs), producers: p.producers,
	}
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
		p.round = nil
	}
	if p.leader && !was {
		// Proposing to the metadata group from inside this group's Ready
		// handling would touch another group mid-cycle: do it after.
		p.b.effects = append(p.b.effects, func() { p.b.reportLeader(p) })
	}
	if p.life != nil {
		p.life.leaderChanged()
	}
}

// failAll answers everything waiting on this replica with code.
func (p *partition) failAll(code error) {
	p.pending.FailAll(produceResult{err: code})
	p.reads.Fail(errCode(code))
	p.watchers.Wake()
	if p.life != nil {
		p.life.unload(kerr.NotCoordinator.Code)
	}
}

func (p *partition) Apply(ents []*pb.Entry) error {
	for _, e := range ents {
		if e.GetIndex() <= p.applied {
			continue
		}
		if p.lost {
			p.delivered = max(p.delivered, e.GetIndex())
			continue
		}
		if e.GetIndex() > p.applied+1 && !p.b.cfg.Unsafe.SkipApplyCheckpoint {
			p.becomeLost(e.GetIndex())
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
		var res produceResult
		switch h.Op {
		case opProduce:
			res = p.applyProduce(records, e.GetIndex(), int32(e.GetTerm()))
		case opExpireProducers:
			res.err = p.applyExpireProducers(records)
		case opTxnMarker:
			res = p.applyMarker(records, e.GetIndex(), int32(e.GetTerm()))
		case opDeleteRecords:
			res = p.applyDeleteRecords(records)
		case opCompact:
			res = p.applyCompact(records)
		default:
			return fmt.Errorf("engine: partition %s-%d entry %d: unknown op %d", p.topic, p.index, e.GetIndex(), h.Op)
		}
		if p.storageErr != nil {
			// The entry was not stored: it stays unapplied, delivered,
			// and so does every later entry of this call, which raft
			// counts as applied and will not hand over again: the retry
			// re-applies them all from raft's log (applyDelivered).
			// Before, only this entry counted as delivered, and a replica
			// whose group then went quiet stayed behind raft for good
			// (TestRegression_StorageFailureMidApply).
			p.applied = e.GetIndex() - 1
			p.delivered = max(p.delivered, ents[len(ents)-1].GetIndex())
			break
		}
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
			return produceResult{base: v.BaseOffset, duplicate: true, dupTime: v.Timestamp}
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
			// as if it had: its log would diverge from the others. It
			// stops applying until its storage works again (storage.go),
			// and undoes the part of this entry that was written.
			p.storageFailed(err, base, index)
			return produceResult{err: kerr.KafkaStorageError}
		}
		p.noteBatch(b, h, off)
		off = meta.LastOffset + 1
	}
	if p.life != nil {
		p.life.applyBatches(batches)
	}
	return produceResult{base: base}
}

// --- snapshots ---

// snapshotDescriptor is what a partition puts in a raft snapshot: no data,
// only a version. A follower that receives a raft snapshot finds the next
// entry beyond its applied index, and fetches the state itself from a
// peer in bounded chunks (repair.go); nothing large is kept in raft's
// memory or sent in one message.
const snapshotDescriptorVersion byte = 2

var errBadSnapshot = errors.New("engine: unknown partition snapshot descriptor")

func (p *partition) Snapshot() ([]byte, error) {
	return []byte{snapshotDescriptorVersion, byte(rsm.KindPartition)}, nil
}

// Restore takes a raft snapshot's descriptor. The state stays as it is:
// raft's next entry lies beyond it, Apply sees the gap, and the repair
// replaces the state atomically once a peer's has arrived. A crash in
// between leaves the old state, whole.
func (p *partition) Restore(index uint64, data []byte) error {
	if len(data) != 2 || data[0] != snapshotDescriptorVersion || data[1] != byte(rsm.KindPartition) {
		return errBadSnapshot
	}
	if index > p.applied && !p.lost {
		// Raft is about to drop the entries up to index, and with them
		// the only durable copy of what this replica applied but has not
		// synced: make that durable first, so a crash before the repair
		// brings back everything it had applied.
		if _, err := p.Sync(); err != nil {
			return err
		}
		if !p.lost {
			p.becomeLost(index)
		}
	}
	p.delivered = max(p.delivered, index)
	return nil
}

// --- linearizable reads ---

// read calls fn once a read of this replica's state is linearizable: after
// a ReadIndex round started after the call has confirmed leadership and the
// state has applied up to the read index (rsm.Reads). fn gets 0 or a Kafka
// error code.
func (p *partition) read(fn func(errCode int16)) {
	if p.b.cfg.Unsafe.StaleRead && !p.lost {
		fn(0)
		return
	}
	p.readIndex(fn)
}

// readIndex is read without the StaleRead knob, which concerns what
// clients read: a coordinator loads its state with it (coordinator.go),
// so that the knob's runs show stale client reads, not coordinators
// working from state they have not finished applying.
func (p *partition) readIndex(fn func(errCode int16)) {
	if p.lost {
		fn(kerr.NotLeaderForPartition.Code)
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
	p.tickRepair()
	if p.leader {
		if p.lost {
			p.handOffLeadership()
		}
		p.trackISR()
		p.maybeExpireProducers()
		p.maybeRetain()
		p.maybeCompact()
	}
	if p.life != nil {
		p.life.tick()
	}
}

// isrLagTicks is how long a follower may trail the commit index and stay in
// sync (Kafka's replica.lag.time.max.ms, in ticks).
func (p *partition) isrLagTicks() int64 { return int64(3 * p.b.cfg.ElectionTicks) }

func (p *partition) trackISR() {
	if p.b.host.IsQuiesced(p.group) {
		// A leader quiesces only with every follower's broker alive and
		// at its last index, and wakes when one falls silent: all in sync.
		for _, r := range p.replicas {
			p.caughtUp[r] = p.b.ticks
		}
		return
	}
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

// isr is the leader's view of its in-sync replicas, sorted. A replica
// whose broker this one has not heard from lately is out, however caught
// up its log was: with no writes its log stays at the commit, and Kafka's
// controller takes a broker that shuts down or stops heartbeating out of
// every ISR.
func (p *partition) isr() []int32 {
	var out []int32
	for _, r := range p.replicas {
		if r == p.b.cfg.ID {
			out = append(out, r)
			continue
		}
		if t, ok := p.caughtUp[r]; ok && p.b.ticks-t <= p.isrLagTicks() && p.b.brokerAlive(r) {
			out = append(out, r)
		}
	}
	slices.Sort(out)
	return out
}

// epochEnd answers OffsetForLeaderEpoch as Kafka's
// LeaderEpochFileCache.endOffsetFor does, the leader's current term being
// the latest epoch (Kafka's leader adds its epoch when it is elected):
//   - the latest epoch: it and the log end;
//   - one after it, or -1: -1 and -1 (UNDEFINED);
//   - an earlier one: the largest epoch <= asked (or asked itself, if it
//     is older than the log's first) and where the next epoch starts (the
//     log end for the current term, which has no batch yet).
func (p *partition) epochEnd(asked int32) (int32, int64) {
	latest := int32(-1)
	if n := len(p.epochs); n > 0 {
		latest = p.epochs[n-1].epoch
	}
	if p.leader && int32(p.term) > latest {
		latest = int32(p.term)
	}
	switch {
	case asked < 0 || asked > latest:
		return -1, -1
	case asked == latest:
		return asked, p.log.EndOffset()
	}
	i, _ := slices.BinarySearchFunc(p.epochs, asked+1, func(e epochStart, t int32) int { return int(e.epoch - t) })
	next := p.log.EndOffset() // the current term's start: it has no batch
	if i < len(p.epochs) {
		next = p.epochs[i].start
	}
	if i == 0 {
		return asked, next
	}
	return p.epochs[i-1].epoch, next
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
