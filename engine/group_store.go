package engine

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"strings"
	"unicode/utf16"

	"github.com/gregor-streaming/gregor/engine/batch"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// The group coordinator's replicated state lives in the internal topic
// __consumer_offsets, in Kafka's own record format: offset commits (key
// version 1: group, topic, partition; value version 3: offset, leader
// epoch, metadata, commit timestamp) and group metadata (key version 2:
// group; value version 3: protocol type, generation, protocol, leader,
// members with their subscriptions and assignments). A null value is a
// tombstone. Each partition of the topic is a raft group like any other:
// its records are appended, offset-stamped and stored by the partition
// state machine, so its durability, checkpoints, snapshots and repair are
// the partition's; and every replica folds the records it applies into a
// groupStore, the applied state the coordinator answers from. Tools that
// read __consumer_offsets (kafka-console-consumer with Kafka's formatters,
// kcat) read what Kafka would have written.

// offsetsTopic is Kafka's name for the group coordinator's topic.
const offsetsTopic = "__consumer_offsets"

// isInternalTopic reports whether clients may not produce to name.
func isInternalTopic(name string) bool { return name == offsetsTopic || name == txnStateTopic }

// Record key versions of __consumer_offsets.
const (
	keyOffsetCommitV0  int16 = 0
	keyOffsetCommit    int16 = 1
	keyGroupMetadata   int16 = 2
	valueOffsetCommit  int16 = 3
	valueGroupMetadata int16 = 3
)

// javaStringHash is Java's String.hashCode: over UTF-16 code units.
func javaStringHash(s string) int32 {
	var h int32
	for _, c := range utf16.Encode([]rune(s)) {
		h = 31*h + int32(c)
	}
	return h
}

// groupPartition maps a group to its __consumer_offsets partition as Kafka
// does: Utils.abs(groupId.hashCode()) % partitions.
func groupPartition(group string, partitions int) int32 {
	h := javaStringHash(group)
	if h == math.MinInt32 {
		h = 0
	} else if h < 0 {
		h = -h
	}
	return h % int32(partitions)
}

// offsetKey names one committed partition of a group.
type offsetKey struct {
	topic string
	part  int32
}

// storedOffset is one committed offset as applied.
type storedOffset struct {
	offset      int64
	leaderEpoch int32
	metadata    string
	commitTs    int64
	// logOffset is where the commit's record sits in __consumer_offsets:
	// when a transaction's commit lands, its offsets replace only those
	// committed before its own records (Kafka's olderThan).
	logOffset int64
}

// groupStore is the applied state of one __consumer_offsets partition:
// the last group metadata record of each group and its committed offsets.
// Every replica holds the same; only the leader's live coordinator
// (coordinator.go) acts on it.
type groupStore struct {
	groups  map[string]*kmsg.GroupMetadataValue
	offsets map[string]map[offsetKey]storedOffset
	// consumers are the KIP-848 groups (consumer_records.go).
	consumers map[string]*storedConsumerGroup
	// pending are offsets committed inside transactions (TxnOffsetCommit,
	// a transactional batch of the producer), by producer id, until its
	// marker commits them into offsets or aborts them.
	pending map[int64]map[string]map[offsetKey]storedOffset
}

func newGroupStore() groupStore {
	return groupStore{groups: map[string]*kmsg.GroupMetadataValue{}, offsets: map[string]map[offsetKey]storedOffset{},
		consumers: map[string]*storedConsumerGroup{}, pending: map[int64]map[string]map[offsetKey]storedOffset{}}
}

// hasPending reports whether an open transaction has committed offsets of
// group (for topic and part, or any when topic is "").
func (s *groupStore) hasPending(group, topic string, part int32) bool {
	for _, groups := range s.pending {
		offs := groups[group]
		if topic == "" && len(offs) > 0 {
			return true
		}
		if _, ok := offs[offsetKey{topic, part}]; ok {
			return true
		}
	}
	return false
}

// groupIDs lists every group with metadata or offsets, sorted.
func (s *groupStore) groupIDs() []string {
	var ids []string
	for g := range s.groups {
		ids = append(ids, g)
	}
	for g := range s.consumers {
		if _, ok := s.groups[g]; !ok {
			ids = append(ids, g)
		}
	}
	for g := range s.offsets {
		_, classic := s.groups[g]
		_, consumer := s.consumers[g]
		if !classic && !consumer {
			ids = append(ids, g)
		}
	}
	slices.Sort(ids)
	return ids
}

// sortedOffsetKeys returns a group's committed partitions in order.
func sortedOffsetKeys(m map[offsetKey]storedOffset) []offsetKey {
	ks := make([]offsetKey, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.SortFunc(ks, func(a, b offsetKey) int {
		return cmp.Or(strings.Compare(a.topic, b.topic), cmp.Compare(a.part, b.part))
	})
	return ks
}

// applyBatch folds one stored batch's records into the state.
func (s *groupStore) applyBatch(b []byte) error {
	h, err := batch.ReadHeader(b)
	if err != nil {
		return err
	}
	if h.Control() {
		if commit, _, ok := controlType(b); ok {
			s.endTxn(h.ProducerID, commit)
		}
		return nil
	}
	recs, err := batch.Records(b)
	if err != nil {
		return err
	}
	for _, r := range recs {
		if h.Transactional() {
			err = s.applyTxnRecord(h.ProducerID, r.Key, r.Value, r.Offset)
		} else {
			err = s.applyRecord(r.Key, r.Value, r.Offset)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// applyTxnRecord stages one offset commit of producer pid's transaction;
// a transaction carries nothing else.
func (s *groupStore) applyTxnRecord(pid int64, key, value []byte, logOffset int64) error {
	if len(key) < 2 || value == nil {
		return fmt.Errorf("engine: transactional %s record without an offset commit", offsetsTopic)
	}
	if v := int16(binary.BigEndian.Uint16(key)); v != keyOffsetCommitV0 && v != keyOffsetCommit {
		return fmt.Errorf("engine: transactional %s record of key version %d", offsetsTopic, v)
	}
	var k kmsg.OffsetCommitKey
	if err := k.ReadFrom(key); err != nil {
		return fmt.Errorf("engine: offset commit key: %w", err)
	}
	o, err := decodeStoredOffset(value, logOffset)
	if err != nil {
		return err
	}
	groups := s.pending[pid]
	if groups == nil {
		groups = map[string]map[offsetKey]storedOffset{}
		s.pending[pid] = groups
	}
	m := groups[k.Group]
	if m == nil {
		m = map[offsetKey]storedOffset{}
		groups[k.Group] = m
	}
	m[offsetKey{k.Topic, k.Partition}] = o
	return nil
}

// endTxn applies producer pid's transaction marker: a commit makes its
// staged offsets the committed ones, except where an offset was committed
// after them (a later record wins, as in Kafka); an abort drops them.
func (s *groupStore) endTxn(pid int64, commit bool) {
	groups := s.pending[pid]
	delete(s.pending, pid)
	if !commit {
		return
	}
	for group, offs := range groups {
		m := s.offsets[group]
		if m == nil {
			m = map[offsetKey]storedOffset{}
			s.offsets[group] = m
		}
		for k, o := range offs {
			if cur, ok := m[k]; !ok || cur.logOffset < o.logOffset {
				m[k] = o
			}
		}
	}
}

// decodeStoredOffset reads an offset commit value.
func decodeStoredOffset(value []byte, logOffset int64) (storedOffset, error) {
	var v kmsg.OffsetCommitValue
	if err := v.ReadFrom(value); err != nil {
		return storedOffset{}, fmt.Errorf("engine: offset commit value: %w", err)
	}
	epoch := v.LeaderEpoch
	if v.Version < 3 {
		epoch = -1
	}
	return storedOffset{offset: v.Offset, leaderEpoch: epoch, metadata: v.Metadata, commitTs: v.CommitTimestamp, logOffset: logOffset}, nil
}

// applyRecord folds one record in. Keys of versions it does not know are
// skipped, so a log written by a newer version still loads; a record it
// knows but cannot decode is an error and changes nothing.
func (s *groupStore) applyRecord(key, value []byte, logOffset int64) error {
	if len(key) < 2 {
		return fmt.Errorf("engine: %s record key of %d bytes", offsetsTopic, len(key))
	}
	switch int16(binary.BigEndian.Uint16(key)) {
	case keyOffsetCommitV0, keyOffsetCommit:
		var k kmsg.OffsetCommitKey
		if err := k.ReadFrom(key); err != nil {
			return fmt.Errorf("engine: offset commit key: %w", err)
		}
		ok := offsetKey{k.Topic, k.Partition}
		if value == nil {
			if m := s.offsets[k.Group]; m != nil {
				delete(m, ok)
				if len(m) == 0 {
					delete(s.offsets, k.Group)
				}
			}
			return nil
		}
		o, err := decodeStoredOffset(value, logOffset)
		if err != nil {
			return err
		}
		m := s.offsets[k.Group]
		if m == nil {
			m = map[offsetKey]storedOffset{}
			s.offsets[k.Group] = m
		}
		m[ok] = o
	case keyGroupMetadata:
		var k kmsg.GroupMetadataKey
		if err := k.ReadFrom(key); err != nil {
			return fmt.Errorf("engine: group metadata key: %w", err)
		}
		if value == nil {
			delete(s.groups, k.Group)
			return nil
		}
		v := new(kmsg.GroupMetadataValue)
		if err := v.ReadFrom(value); err != nil {
			return fmt.Errorf("engine: group metadata value: %w", err)
		}
		for i := range v.Members {
			// The decoder's byte slices alias the record: keep copies.
			v.Members[i].Subscription = slices.Clone(v.Members[i].Subscription)
			v.Members[i].Assignment = slices.Clone(v.Members[i].Assignment)
		}
		s.groups[k.Group] = v
	case keyConsumerGroupMetadata, keyConsumerGroupMember, keyConsumerTargetMetadata, keyConsumerTargetMember, keyConsumerCurrentAssignment:
		return s.applyConsumerRecord(int16(binary.BigEndian.Uint16(key)), key, value)
	}
	return nil
}

// offsetCommitRecord encodes one commit (a nil value: a tombstone).
func offsetCommitRecord(group, topic string, part int32, o *storedOffset) batch.Record {
	k := kmsg.OffsetCommitKey{Version: keyOffsetCommit, Group: group, Topic: topic, Partition: part}
	r := batch.Record{Key: k.AppendTo(nil)}
	if o != nil {
		v := kmsg.OffsetCommitValue{Version: valueOffsetCommit, Offset: o.offset, LeaderEpoch: o.leaderEpoch,
			Metadata: o.metadata, CommitTimestamp: o.commitTs}
		r.Value = v.AppendTo(nil)
	}
	return r
}

// groupMetadataRecord encodes a group's metadata (a nil value: a tombstone).
func groupMetadataRecord(group string, v *kmsg.GroupMetadataValue) batch.Record {
	k := kmsg.GroupMetadataKey{Version: keyGroupMetadata, Group: group}
	r := batch.Record{Key: k.AppendTo(nil)}
	if v != nil {
		v.Version = valueGroupMetadata
		r.Value = v.AppendTo(nil)
	}
	return r
}

// buildCoordinatorBatch makes one plain batch of recs stamped now.
func buildCoordinatorBatch(now int64, recs []batch.Record) []byte {
	return batch.Build(batch.BuildOptions{FirstTimestamp: now, ProducerID: batch.NoProducerID}, recs)
}

func recordsOf(recs ...batch.Record) []batch.Record { return recs }
