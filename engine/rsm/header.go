package rsm

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Kind names the kind of state machine an entry belongs to. Every entry of
// a group carries its group's kind, so an entry applied to the wrong kind
// of state machine is an error rather than garbage.
type Kind byte

const (
	KindMetadata  Kind = 1 // the cluster metadata group
	KindPartition Kind = 2 // a Kafka topic partition
)

func (k Kind) String() string {
	switch k {
	case KindMetadata:
		return "metadata"
	case KindPartition:
		return "partition"
	}
	return fmt.Sprintf("kind(%d)", byte(k))
}

// headerVersion is the first byte of every entry. A new header layout gets
// a new version; decoders refuse versions they do not know.
const headerVersion byte = 1

// Header opens every entry a state machine proposes: which kind of state
// machine it is for, which operation, and who proposed it. (Proposer,
// Boot, Seq) identifies the proposal, so the proposer's broker can answer
// the request waiting for it when the entry applies: Boot tells this run's
// proposals from an earlier run's after a restart.
type Header struct {
	Kind     Kind
	Op       byte
	Proposer int32
	Boot     uint64
	Seq      uint64
}

// headerBytesMax bounds an encoded Header.
const headerBytesMax = 3 + 3*binary.MaxVarintLen64

// ErrBadHeader is returned for an entry whose header cannot be read.
var ErrBadHeader = errors.New("rsm: corrupt entry header")

// Append appends the encoded header to b.
func (h Header) Append(b []byte) []byte {
	b = append(b, headerVersion, byte(h.Kind), h.Op)
	b = binary.AppendUvarint(b, uint64(uint32(h.Proposer)))
	b = binary.AppendUvarint(b, h.Boot)
	return binary.AppendUvarint(b, h.Seq)
}

// Encode returns the header followed by body, in one allocation.
func (h Header) Encode(body []byte) []byte {
	b := make([]byte, 0, headerBytesMax+len(body))
	return append(h.Append(b), body...)
}

// Parse reads the header at the start of data and returns it with the
// body that follows. It never panics on bad input.
func Parse(data []byte) (Header, []byte, error) {
	if len(data) < 3 || data[0] != headerVersion {
		return Header{}, nil, ErrBadHeader
	}
	h := Header{Kind: Kind(data[1]), Op: data[2]}
	rest := data[3:]
	var vals [3]uint64
	for i := range vals {
		v, n := binary.Uvarint(rest)
		if n <= 0 {
			return Header{}, nil, ErrBadHeader
		}
		vals[i], rest = v, rest[n:]
	}
	if vals[0] > 0xffffffff {
		return Header{}, nil, ErrBadHeader
	}
	h.Proposer, h.Boot, h.Seq = int32(uint32(vals[0])), vals[1], vals[2]
	return h, rest, nil
}

// Proposer stamps this broker's proposals: its id, this run's boot number
// and a sequence shared by every state machine on the broker.
type Proposer struct {
	ID   int32
	Boot uint64
	seq  uint64
}

// Next returns a header for a new proposal of the given kind and op.
func (p *Proposer) Next(kind Kind, op byte) Header {
	p.seq++
	return Header{Kind: kind, Op: op, Proposer: p.ID, Boot: p.Boot, Seq: p.seq}
}

// Mine reports whether h was proposed by this broker in this run.
func (p *Proposer) Mine(h Header) bool { return h.Proposer == p.ID && h.Boot == p.Boot }
