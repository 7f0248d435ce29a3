package raftlog

import (
	"encoding/binary"
	"errors"
	"fmt"

	pb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// GroupID names one raft group on the cluster. Group 1 is the cluster
// metadata group; partitions get ids allocated by the metadata group.
type GroupID uint64

// Record kinds in the WAL. A record describes one group's change in one
// cycle; a checkpoint image is a sequence of create and update records.
const (
	recCreate byte = 1 // the group exists with these voters, bootstrapped at index 1
	recUpdate byte = 2 // hard state, entries and/or snapshot metadata of one Ready
	recRemove byte = 3 // the group is gone
)

// Limits on decoded sizes, so a corrupt length can never make a decoder
// allocate without bound.
const (
	votersMax         = 7
	recordEntriesMax  = 1 << 20
	envelopesMax      = 1 << 20
	decodedFieldBytes = 1 << 30
)

var errCorrupt = errors.New("raftlog: corrupt record")

// walRecord is the decoded form of one WAL record.
type walRecord struct {
	kind    byte
	group   GroupID
	voters  []uint64      // recCreate
	hs      *pb.HardState // recUpdate, may be nil
	snap    *pb.SnapshotMetadata
	entries []*pb.Entry
}

func appendUvarint(b []byte, v uint64) []byte { return binary.AppendUvarint(b, v) }

func appendProto(b []byte, m proto.Message) []byte {
	n := proto.Size(m) // caches the size in m for the marshal below
	b = appendUvarint(b, uint64(n))
	out, err := proto.MarshalOptions{UseCachedSize: true}.MarshalAppend(b, m)
	if err != nil {
		panic(fmt.Sprintf("raftlog: marshal %T: %v", m, err))
	}
	return out
}

// protoBytes is an upper bound on what appendProto adds for m: the
// message and its length prefix. Sizing a buffer with it first saves the
// repeated growth of appending to a small one (a large share of the
// produce path's allocations, by the profile).
func protoBytes(m proto.Message) int { return proto.Size(m) + binary.MaxVarintLen64 }

func encodeCreate(g GroupID, voters []uint64) []byte {
	b := []byte{recCreate}
	b = appendUvarint(b, uint64(g))
	b = appendUvarint(b, uint64(len(voters)))
	for _, v := range voters {
		b = appendUvarint(b, v)
	}
	return b
}

func encodeRemove(g GroupID) []byte {
	return appendUvarint([]byte{recRemove}, uint64(g))
}

const (
	flagHardState byte = 1 << iota
	flagSnapshot
)

func encodeUpdate(g GroupID, hs *pb.HardState, snap *pb.SnapshotMetadata, ents []*pb.Entry) []byte {
	n := 3 + 2*binary.MaxVarintLen64
	if hs != nil {
		n += protoBytes(hs)
	}
	if snap != nil {
		n += protoBytes(snap)
	}
	for _, e := range ents {
		n += protoBytes(e)
	}
	b := make([]byte, 0, n)
	b = append(b, recUpdate)
	b = appendUvarint(b, uint64(g))
	var flags byte
	if hs != nil {
		flags |= flagHardState
	}
	if snap != nil {
		flags |= flagSnapshot
	}
	b = append(b, flags)
	if hs != nil {
		b = appendProto(b, hs)
	}
	if snap != nil {
		b = appendProto(b, snap)
	}
	b = appendUvarint(b, uint64(len(ents)))
	for _, e := range ents {
		b = appendProto(b, e)
	}
	return b
}

type reader struct {
	b   []byte
	err error
}

func (r *reader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = errCorrupt
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) byte() byte {
	if r.err != nil || len(r.b) == 0 {
		r.err = errCorrupt
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *reader) bytes() []byte {
	n := r.uvarint()
	if r.err != nil {
		return nil
	}
	if n > decodedFieldBytes || n > uint64(len(r.b)) {
		r.err = errCorrupt
		return nil
	}
	out := r.b[:n:n]
	r.b = r.b[n:]
	return out
}

func (r *reader) proto(m proto.Message) {
	b := r.bytes()
	if r.err != nil {
		return
	}
	if err := proto.Unmarshal(b, m); err != nil {
		r.err = errCorrupt
	}
}

// decodeRecord decodes one WAL record. It never panics on bad input.
func decodeRecord(b []byte) (walRecord, error) {
	r := &reader{b: b}
	rec := walRecord{kind: r.byte()}
	rec.group = GroupID(r.uvarint())
	switch rec.kind {
	case recCreate:
		n := r.uvarint()
		if n > votersMax {
			return rec, errCorrupt
		}
		for i := uint64(0); i < n && r.err == nil; i++ {
			rec.voters = append(rec.voters, r.uvarint())
		}
	case recRemove:
	case recUpdate:
		flags := r.byte()
		if flags&flagHardState != 0 {
			rec.hs = &pb.HardState{}
			r.proto(rec.hs)
		}
		if flags&flagSnapshot != 0 {
			rec.snap = &pb.SnapshotMetadata{}
			r.proto(rec.snap)
		}
		n := r.uvarint()
		if n > recordEntriesMax || n > uint64(len(r.b)) {
			return rec, errCorrupt
		}
		for i := uint64(0); i < n && r.err == nil; i++ {
			e := &pb.Entry{}
			r.proto(e)
			rec.entries = append(rec.entries, e)
		}
	default:
		return rec, errCorrupt
	}
	if r.err == nil && len(r.b) != 0 {
		r.err = errCorrupt
	}
	return rec, r.err
}

// encodeImage frames a sequence of records as one checkpoint image.
func encodeImage(recs [][]byte) []byte {
	var b []byte
	b = appendUvarint(b, uint64(len(recs)))
	for _, r := range recs {
		b = appendUvarint(b, uint64(len(r)))
		b = append(b, r...)
	}
	return b
}

func decodeImage(b []byte) ([][]byte, error) {
	r := &reader{b: b}
	n := r.uvarint()
	if n > uint64(len(b)) {
		return nil, errCorrupt
	}
	var recs [][]byte
	for i := uint64(0); i < n && r.err == nil; i++ {
		recs = append(recs, r.bytes())
	}
	if r.err == nil && len(r.b) != 0 {
		r.err = errCorrupt
	}
	return recs, r.err
}

// Envelope is one raft message addressed to one group, or, when Msg is
// nil, a quiesce notice: the group's leader at Term has committed and
// replicated everything up to Commit and stops ticking it.
type Envelope struct {
	Group GroupID
	Msg   *pb.Message
	// Quiesce notice fields (Msg == nil, Peer == nil).
	Term, Commit uint64
	// Peer, when set, is a broker-to-broker message for the state machines
	// (a request or its response), opaque to raftlog: see Host.SendPeer.
	Peer []byte
}

const (
	envRaft    byte = 0
	envQuiesce byte = 1
	envPeer    byte = 2
)

// EncodeBatch frames every message from one broker to another in one cycle
// as a single transport payload. An empty batch is a liveness beat.
func EncodeBatch(from uint64, envs []Envelope) []byte {
	n := 2 * binary.MaxVarintLen64
	for _, e := range envs {
		n += 1 + 3*binary.MaxVarintLen64 + len(e.Peer)
		if e.Msg != nil {
			n += protoBytes(e.Msg)
		}
	}
	b := appendUvarint(make([]byte, 0, n), from)
	b = appendUvarint(b, uint64(len(envs)))
	for _, e := range envs {
		b = appendUvarint(b, uint64(e.Group))
		if e.Peer != nil {
			b = append(b, envPeer)
			b = appendUvarint(b, uint64(len(e.Peer)))
			b = append(b, e.Peer...)
			continue
		}
		if e.Msg == nil {
			b = append(b, envQuiesce)
			b = appendUvarint(b, e.Term)
			b = appendUvarint(b, e.Commit)
			continue
		}
		b = append(b, envRaft)
		b = appendProto(b, e.Msg)
	}
	return b
}

// DecodeBatch is EncodeBatch's inverse. It never panics on bad input.
func DecodeBatch(b []byte) (from uint64, envs []Envelope, err error) {
	r := &reader{b: b}
	from = r.uvarint()
	n := r.uvarint()
	if n > envelopesMax || n > uint64(len(r.b)) {
		return 0, nil, errCorrupt
	}
	for i := uint64(0); i < n && r.err == nil; i++ {
		e := Envelope{Group: GroupID(r.uvarint())}
		switch r.byte() {
		case envRaft:
			e.Msg = &pb.Message{}
			r.proto(e.Msg)
		case envQuiesce:
			e.Term, e.Commit = r.uvarint(), r.uvarint()
		case envPeer:
			e.Peer = r.bytes()
			if e.Peer == nil && r.err == nil {
				e.Peer = []byte{}
			}
		default:
			r.err = errCorrupt
		}
		envs = append(envs, e)
	}
	if r.err == nil && len(r.b) != 0 {
		r.err = errCorrupt
	}
	if r.err != nil {
		return 0, nil, r.err
	}
	return from, envs, nil
}

// PeerMessages calls fn with the group and data of each broker-to-broker
// message (SendPeer) in a transport payload, in order, without decoding
// its raft messages. It stops at the first malformed envelope and reports
// it. The simulator uses it to pick out the payloads of one kind of peer
// request.
func PeerMessages(b []byte, fn func(group GroupID, data []byte)) error {
	r := &reader{b: b}
	r.uvarint() // from
	n := r.uvarint()
	if n > envelopesMax || n > uint64(len(r.b)) {
		return errCorrupt
	}
	for i := uint64(0); i < n && r.err == nil; i++ {
		group := GroupID(r.uvarint())
		switch r.byte() {
		case envRaft:
			r.bytes()
		case envQuiesce:
			r.uvarint()
			r.uvarint()
		case envPeer:
			if data := r.bytes(); r.err == nil {
				fn(group, data)
			}
		default:
			r.err = errCorrupt
		}
	}
	return r.err
}
