package engine

import (
	"encoding/binary"
	"errors"
	"slices"

	"github.com/gregor-streaming/gregor/engine/batch"
)

// The KIP-848 consumer group records of __consumer_offsets, in Kafka's
// schemas (group-coordinator/src/main/resources/common/message): keys are
// an int16 record type and plain strings; values an int16 version (0) and
// a flexible body (compact strings and arrays, tagged fields). kmsg does
// not carry these, so they are encoded here.
const (
	keyConsumerGroupMetadata     int16 = 3 // group -> epoch
	keyConsumerGroupMember       int16 = 5 // (group, member) -> subscription
	keyConsumerTargetMetadata    int16 = 6 // group -> assignment epoch
	keyConsumerTargetMember      int16 = 7 // (group, member) -> target partitions
	keyConsumerCurrentAssignment int16 = 8 // (group, member) -> epoch, state, partitions
	consumerRecordValueVersion   int16 = 0
	consumerMetadataHashTag            = 0
)

// topicParts is a set of partitions by topic id, each list sorted.
type topicParts map[[16]byte][]int32

func (tp topicParts) ids() [][16]byte {
	ids := make([][16]byte, 0, len(tp))
	for id := range tp {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, func(a, b [16]byte) int { return slices.Compare(a[:], b[:]) })
	return ids
}

func (tp topicParts) clone() topicParts {
	out := topicParts{}
	for id, ps := range tp {
		if len(ps) > 0 {
			out[id] = slices.Clone(ps)
		}
	}
	return out
}

func (tp topicParts) equal(o topicParts) bool {
	if tp.count() != o.count() {
		return false
	}
	for id, ps := range tp {
		if len(ps) > 0 && !slices.Equal(ps, o[id]) {
			return false
		}
	}
	return true
}

func (tp topicParts) count() int {
	n := 0
	for _, ps := range tp {
		n += len(ps)
	}
	return n
}

func (tp topicParts) has(id [16]byte, p int32) bool {
	_, ok := slices.BinarySearch(tp[id], p)
	return ok
}

func (tp topicParts) add(id [16]byte, p int32) {
	ps := tp[id]
	i, ok := slices.BinarySearch(ps, p)
	if !ok {
		tp[id] = slices.Insert(ps, i, p)
	}
}

// minus is tp without o's partitions; and is tp with only o's.
func (tp topicParts) minus(o topicParts) topicParts { return tp.filter(o, false) }
func (tp topicParts) and(o topicParts) topicParts   { return tp.filter(o, true) }

func (tp topicParts) filter(o topicParts, keep bool) topicParts {
	out := topicParts{}
	for id, ps := range tp {
		for _, p := range ps {
			if o.has(id, p) == keep {
				out[id] = append(out[id], p)
			}
		}
	}
	return out
}

// --- a tiny writer and reader for Kafka's flexible encoding ---

type recWriter struct{ b []byte }

func (w *recWriter) i8(v int8)   { w.b = append(w.b, byte(v)) }
func (w *recWriter) i16(v int16) { w.b = binary.BigEndian.AppendUint16(w.b, uint16(v)) }
func (w *recWriter) i32(v int32) { w.b = binary.BigEndian.AppendUint32(w.b, uint32(v)) }
func (w *recWriter) uv(v uint64) { w.b = binary.AppendUvarint(w.b, v) }
func (w *recWriter) str(s string) {
	w.i16(int16(len(s)))
	w.b = append(w.b, s...)
}
func (w *recWriter) cstr(s string) {
	w.uv(uint64(len(s)) + 1)
	w.b = append(w.b, s...)
}
func (w *recWriter) cnstr(s *string) {
	if s == nil {
		w.uv(0)
		return
	}
	w.cstr(*s)
}
func (w *recWriter) noTags() { w.uv(0) }
func (w *recWriter) parts(tp topicParts) {
	ids := tp.ids()
	n := 0
	for _, id := range ids {
		if len(tp[id]) > 0 {
			n++
		}
	}
	w.uv(uint64(n) + 1)
	for _, id := range ids {
		ps := tp[id]
		if len(ps) == 0 {
			continue
		}
		w.b = append(w.b, id[:]...)
		w.uv(uint64(len(ps)) + 1)
		for _, p := range ps {
			w.i32(p)
		}
		w.noTags()
	}
}

var errRecordShort = errors.New("engine: consumer group record cut short")

type recReader struct {
	b   []byte
	err error
}

func (r *recReader) take(n int) []byte {
	if r.err != nil || n < 0 || len(r.b) < n {
		r.err = errRecordShort
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}
func (r *recReader) i8() int8 {
	v := r.take(1)
	if v == nil {
		return 0
	}
	return int8(v[0])
}
func (r *recReader) i16() int16 {
	v := r.take(2)
	if v == nil {
		return 0
	}
	return int16(binary.BigEndian.Uint16(v))
}
func (r *recReader) i32() int32 {
	v := r.take(4)
	if v == nil {
		return 0
	}
	return int32(binary.BigEndian.Uint32(v))
}
func (r *recReader) uv() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = errRecordShort
		return 0
	}
	r.b = r.b[n:]
	return v
}
func (r *recReader) str() string {
	n := r.i16()
	return string(r.take(int(n)))
}

// cnstr reads a compact nullable string.
func (r *recReader) cnstr() *string {
	n := r.uv()
	if n == 0 || r.err != nil {
		return nil
	}
	if n-1 > uint64(len(r.b)) {
		r.err = errRecordShort
		return nil
	}
	s := string(r.take(int(n - 1)))
	return &s
}
func (r *recReader) cstr() string {
	if s := r.cnstr(); s != nil {
		return *s
	}
	return ""
}

// arrayLen reads a compact array length, bounded by what is left.
func (r *recReader) arrayLen() int {
	n := r.uv()
	if r.err != nil || n == 0 {
		return 0
	}
	if n-1 > uint64(len(r.b)) {
		r.err = errRecordShort
		return 0
	}
	return int(n - 1)
}

// tags reads a tagged-field section, handing each field to fn (which may
// read its value from the bytes given) and skipping the rest.
func (r *recReader) tags(fn func(tag uint64, val []byte)) {
	n := r.uv()
	for i := uint64(0); i < n && r.err == nil; i++ {
		tag := r.uv()
		size := r.uv()
		if size > uint64(len(r.b)) {
			r.err = errRecordShort
			return
		}
		v := r.take(int(size))
		if fn != nil && r.err == nil {
			fn(tag, v)
		}
	}
}
func (r *recReader) parts() topicParts {
	tp := topicParts{}
	n := r.arrayLen()
	for i := 0; i < n && r.err == nil; i++ {
		var id [16]byte
		copy(id[:], r.take(16))
		m := r.arrayLen()
		for j := 0; j < m && r.err == nil; j++ {
			tp.add(id, r.i32())
		}
		r.tags(nil)
	}
	return tp
}

// done reports the first error, or trailing bytes.
func (r *recReader) done() error {
	if r.err == nil && len(r.b) > 0 {
		return errors.New("engine: consumer group record has trailing bytes")
	}
	return r.err
}

// --- the records ---

func consumerKey(kind int16, group string, member string, withMember bool) []byte {
	w := recWriter{}
	w.i16(kind)
	w.str(group)
	if withMember {
		w.str(member)
	}
	return w.b
}

// consumerMember is what a member's metadata record holds.
type consumerMember struct {
	instanceID, rackID *string
	clientID           string
	clientHost         string
	topics             []string
	regex              *string
	rebalanceMs        int32
	assignor           *string
}

// consumerCurrent is a member's current assignment record.
type consumerCurrent struct {
	epoch, prevEpoch int32
	state            int8
	assigned         topicParts
	pending          topicParts
}

// Member states (Kafka's MemberState).
const (
	memberStable               int8 = 0
	memberUnrevokedPartitions  int8 = 1
	memberUnreleasedPartitions int8 = 2
)

// consumerRecord is one KIP-848 record: key, and a value of version 0
// whose body write encodes (nil write: a tombstone).
func consumerRecord(key []byte, write func(w *recWriter)) batch.Record {
	r := batch.Record{Key: key}
	if write != nil {
		w := recWriter{}
		w.i16(consumerRecordValueVersion)
		write(&w)
		r.Value = w.b
	}
	return r
}

func consumerGroupEpochRecord(group string, epoch int32, metadataHash int64, tombstone bool) batch.Record {
	key := consumerKey(keyConsumerGroupMetadata, group, "", false)
	if tombstone {
		return consumerRecord(key, nil)
	}
	return consumerRecord(key, func(w *recWriter) {
		w.i32(epoch)
		// Tagged: MetadataHash (tag 0, int64).
		w.uv(1)
		w.uv(consumerMetadataHashTag)
		w.uv(8)
		w.b = binary.BigEndian.AppendUint64(w.b, uint64(metadataHash))
	})
}

func consumerMemberRecord(group, member string, m *consumerMember) batch.Record {
	key := consumerKey(keyConsumerGroupMember, group, member, true)
	if m == nil {
		return consumerRecord(key, nil)
	}
	return consumerRecord(key, func(w *recWriter) {
		w.cnstr(m.instanceID)
		w.cnstr(m.rackID)
		w.cstr(m.clientID)
		w.cstr(m.clientHost)
		w.uv(uint64(len(m.topics)) + 1)
		for _, t := range m.topics {
			w.cstr(t)
		}
		w.cnstr(m.regex)
		w.i32(m.rebalanceMs)
		w.cnstr(m.assignor)
		w.noTags()
	})
}

func consumerTargetEpochRecord(group string, epoch int32, tombstone bool) batch.Record {
	key := consumerKey(keyConsumerTargetMetadata, group, "", false)
	if tombstone {
		return consumerRecord(key, nil)
	}
	return consumerRecord(key, func(w *recWriter) {
		w.i32(epoch)
		w.noTags()
	})
}

func consumerTargetRecord(group, member string, tp topicParts) batch.Record {
	key := consumerKey(keyConsumerTargetMember, group, member, true)
	if tp == nil {
		return consumerRecord(key, nil)
	}
	return consumerRecord(key, func(w *recWriter) {
		w.parts(tp)
		w.noTags()
	})
}

func consumerCurrentRecord(group, member string, c *consumerCurrent) batch.Record {
	key := consumerKey(keyConsumerCurrentAssignment, group, member, true)
	if c == nil {
		return consumerRecord(key, nil)
	}
	return consumerRecord(key, func(w *recWriter) {
		w.i32(c.epoch)
		w.i32(c.prevEpoch)
		w.i8(c.state)
		w.parts(c.assigned)
		w.parts(c.pending)
		w.noTags()
	})
}

// storedConsumerGroup is the applied state of one KIP-848 group.
type storedConsumerGroup struct {
	epoch           int32
	metadataHash    int64
	assignmentEpoch int32
	members         map[string]*consumerMember
	targets         map[string]topicParts
	current         map[string]*consumerCurrent
}

func (s *groupStore) consumerGroup(group string) *storedConsumerGroup {
	g := s.consumers[group]
	if g == nil {
		g = &storedConsumerGroup{members: map[string]*consumerMember{}, targets: map[string]topicParts{}, current: map[string]*consumerCurrent{}}
		s.consumers[group] = g
	}
	return g
}

// applyConsumerRecord folds one KIP-848 record in.
func (s *groupStore) applyConsumerRecord(kind int16, key, value []byte) error {
	kr := recReader{b: key[2:]}
	group := kr.str()
	member := ""
	if kind != keyConsumerGroupMetadata && kind != keyConsumerTargetMetadata {
		member = kr.str()
	}
	if err := kr.done(); err != nil {
		return err
	}
	if value == nil {
		g := s.consumers[group]
		if g == nil {
			return nil
		}
		switch kind {
		case keyConsumerGroupMetadata:
			delete(s.consumers, group)
		case keyConsumerGroupMember:
			delete(g.members, member)
		case keyConsumerTargetMember:
			delete(g.targets, member)
		case keyConsumerCurrentAssignment:
			delete(g.current, member)
		}
		return nil
	}
	vr := recReader{b: value}
	if v := vr.i16(); v != consumerRecordValueVersion && vr.err == nil {
		return errors.New("engine: consumer group record of an unknown version")
	}
	// Decode fully before touching the state: a bad record changes nothing.
	switch kind {
	case keyConsumerGroupMetadata:
		epoch := vr.i32()
		var hash int64
		vr.tags(func(tag uint64, val []byte) {
			if tag == consumerMetadataHashTag && len(val) == 8 {
				hash = int64(binary.BigEndian.Uint64(val))
			}
		})
		if err := vr.done(); err != nil {
			return err
		}
		g := s.consumerGroup(group)
		g.epoch, g.metadataHash = epoch, hash
	case keyConsumerGroupMember:
		m := &consumerMember{}
		m.instanceID, m.rackID = vr.cnstr(), vr.cnstr()
		m.clientID, m.clientHost = vr.cstr(), vr.cstr()
		n := vr.arrayLen()
		for i := 0; i < n && vr.err == nil; i++ {
			m.topics = append(m.topics, vr.cstr())
		}
		m.regex = vr.cnstr()
		m.rebalanceMs = vr.i32()
		m.assignor = vr.cnstr()
		vr.tags(nil)
		if err := vr.done(); err != nil {
			return err
		}
		s.consumerGroup(group).members[member] = m
	case keyConsumerTargetMetadata:
		epoch := vr.i32()
		vr.tags(nil)
		if err := vr.done(); err != nil {
			return err
		}
		s.consumerGroup(group).assignmentEpoch = epoch
	case keyConsumerTargetMember:
		tp := vr.parts()
		vr.tags(nil)
		if err := vr.done(); err != nil {
			return err
		}
		s.consumerGroup(group).targets[member] = tp
	case keyConsumerCurrentAssignment:
		c := &consumerCurrent{}
		c.epoch, c.prevEpoch, c.state = vr.i32(), vr.i32(), vr.i8()
		c.assigned, c.pending = vr.parts(), vr.parts()
		vr.tags(nil)
		if err := vr.done(); err != nil {
			return err
		}
		s.consumerGroup(group).current[member] = c
	}
	return nil
}
