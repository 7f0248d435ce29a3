package engine

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"slices"

	"github.com/gregor-streaming/gregor/raftlog"
)

// The metadata image, in the spirit of KRaft's snapshots: the applied
// metadata state at one raft index, written by Sync at every checkpoint
// (metadata/image, atomically) so the metadata raft log is compacted like
// any other, and sent whole in a raft snapshot to a broker that fell behind
// the compaction (it is small: topics, placements, brokers, counters).
//
// Format: "GRMI", a version byte, the applied index (uvarint), the state
// as JSON (encoding/json sorts map keys, so one state has one encoding),
// and a CRC-32C of everything before it.

const (
	metadataDir  = "metadata"
	imageFile    = "image"
	imageVersion = 1
)

var imageMagic = [4]byte{'G', 'R', 'M', 'I'}

var errBadImage = errors.New("engine: corrupt metadata image")

func encodeImage(applied uint64, st *metaState) ([]byte, error) {
	js, err := json.Marshal(st)
	if err != nil {
		return nil, err
	}
	b := append([]byte(nil), imageMagic[:]...)
	b = append(b, imageVersion)
	b = binary.AppendUvarint(b, applied)
	b = append(b, js...)
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b, castagnoli)), nil
}

// decodeImage parses encodeImage's output; it never panics on bad input.
func decodeImage(b []byte) (uint64, *metaState, error) {
	if len(b) < 4+1+1+4 || [4]byte(b[:4]) != imageMagic {
		return 0, nil, errBadImage
	}
	body := b[:len(b)-4]
	if crc32.Checksum(body, castagnoli) != binary.BigEndian.Uint32(b[len(b)-4:]) {
		return 0, nil, errBadImage
	}
	if body[4] != imageVersion {
		return 0, nil, fmt.Errorf("engine: metadata image version %d unknown", body[4])
	}
	applied, n := binary.Uvarint(body[5:])
	if n <= 0 {
		return 0, nil, errBadImage
	}
	st := &metaState{}
	if err := json.Unmarshal(body[5+n:], st); err != nil {
		return 0, nil, errBadImage
	}
	if st.Brokers == nil {
		st.Brokers = map[int32]BrokerInfo{}
	}
	if st.Topics == nil {
		st.Topics = map[string]*topicMeta{}
	}
	for name, t := range st.Topics {
		if t == nil || t.Name != name {
			return 0, nil, errBadImage
		}
	}
	return applied, st, nil
}

// Sync writes the image of the applied state; the metadata raft log may
// then be compacted up to its index.
func (m *metaSM) Sync() (uint64, error) {
	if err := m.writeImage(); err != nil {
		// Nothing durable beyond the last image; the log keeps the rest.
		m.b.env.Logf("engine: write metadata image: %v", err)
	}
	return m.imaged, nil
}

// writeImage makes the applied state durable as the image, if it is not.
func (m *metaSM) writeImage() error {
	if m.imaged == m.applied {
		return nil
	}
	b, err := encodeImage(m.applied, &m.st)
	if err != nil {
		return err
	}
	fs := m.b.env.FS
	if err := fs.MkdirAll(metadataDir); err != nil {
		return err
	}
	if err := writeFileAtomic(fs, metadataDir, imageFile, b); err != nil {
		return err
	}
	m.imaged = m.applied
	return nil
}

// Snapshot is the image of the applied state, for a broker behind the
// compacted metadata log.
func (m *metaSM) Snapshot() ([]byte, error) { return encodeImage(m.applied, &m.st) }

// Restore replaces the metadata state by a leader's image, durably, and
// sets which partition replicas this broker should host from it.
func (m *metaSM) Restore(index uint64, data []byte) error {
	applied, st, err := decodeImage(data)
	if err != nil {
		return err
	}
	if applied > m.applied {
		m.setState(applied, st)
	}
	// Raft drops every entry up to index once this returns: the image must
	// hold them first, or a crash would bring back a state without them
	// and nothing would tell it so (the metadata group has no repair).
	if err := m.writeImage(); err != nil {
		return fmt.Errorf("engine: metadata image at %d not durable: %w (%w)", m.applied, raftlog.ErrRestoreRetry, err)
	}
	return nil
}

// loadImage reads the image written by Sync, if any, at startup.
func (m *metaSM) loadImage() error {
	b, err := readFile(m.b.env.FS, metadataDir+"/"+imageFile)
	if err != nil || b == nil {
		return err
	}
	applied, st, err := decodeImage(b)
	if err != nil {
		return fmt.Errorf("engine: metadata image: %w", err)
	}
	m.setState(applied, st)
	m.imaged = applied
	return nil
}

// setState installs a whole metadata state and recomputes the replicas
// this broker should host.
func (m *metaSM) setState(applied uint64, st *metaState) {
	m.st, m.applied = *st, applied
	m.scramGen++
	m.b.wantChanged = true
	clear(m.b.want)
	for _, t := range m.st.Topics {
		for i, p := range t.Partitions {
			if slices.Contains(p.Replicas, m.b.cfg.ID) {
				m.b.want[p.Group] = wantReplica{topic: t.Name, index: int32(i), replicas: slices.Clone(p.Replicas)}
			}
		}
	}
}

// wantReplica is a partition replica the metadata says this broker hosts.
type wantReplica struct {
	topic    string
	index    int32
	replicas []int32
}

// reconcileReplicas starts the replicas the metadata wants here and stops
// the ones it no longer does. It runs after raft cycles, not inside apply,
// so a topic created and deleted within what one Process applies (a
// restart replaying its metadata log) costs nothing on disk. A start or
// stop that fails (disk errors) is retried on the next call.
func (b *Broker) reconcileReplicas() error {
	if !b.wantChanged {
		return nil
	}
	b.wantChanged, b.reconcileFailed = false, false
	for _, g := range b.partIDs() {
		if _, ok := b.want[g]; !ok {
			if err := b.stopPartition(g); errors.Is(err, raftlog.ErrHalt) {
				return err
			} else if err != nil {
				// A full or failing disk must not stop the broker.
				b.env.Logf("engine: stop partition group %d: %v; retrying", g, err)
				b.reconcileFailed = true
			}
		}
	}
	gs := make([]raftlog.GroupID, 0, len(b.want))
	for g := range b.want {
		if _, ok := b.parts[g]; !ok {
			gs = append(gs, g)
		}
	}
	slices.Sort(gs)
	for _, g := range gs {
		w := b.want[g]
		if err := b.startPartition(w.topic, w.index, g, w.replicas); errors.Is(err, raftlog.ErrHalt) {
			return err
		} else if err != nil {
			b.env.Logf("engine: start partition %s-%d: %v; retrying", w.topic, w.index, err)
			b.reconcileFailed = true
		}
	}
	return nil
}
