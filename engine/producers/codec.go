package producers

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
)

// Encoding of a State, for raft snapshots, all integers big-endian:
//
//	version    uint8  (encodingVersion)
//	producers  uint32
//	producers times, in strictly increasing pid order:
//	  pid      int64  (>= 0)
//	  epoch    int16
//	  lastTs   int64  (the last batch's max timestamp; version 2)
//	  batches  uint8  (<= batchesRetained)
//	  batches times, oldest first:
//	    firstSeq int32, lastSeq int32, baseOffset int64
//
// The encoding is canonical: one State has one encoding, and Decode accepts
// nothing else, so Encode(Decode(b)) == b. It carries no checksum: it is
// meant to sit inside a checksummed snapshot.
const (
	encodingVersion   = 2
	stateHeaderBytes  = 1 + 4
	producerHeadBytes = 8 + 2 + 8 + 1
	batchBytes        = 4 + 4 + 8
)

// Encode returns the state's canonical encoding, producers sorted by pid.
func (s *State) Encode() []byte {
	pids := make([]int64, 0, len(s.producers))
	size := stateHeaderBytes
	for pid, p := range s.producers {
		pids = append(pids, pid)
		size += producerHeadBytes + batchBytes*len(p.batches)
	}
	slices.Sort(pids)
	b := make([]byte, 0, size)
	b = append(b, encodingVersion)
	b = binary.BigEndian.AppendUint32(b, uint32(len(pids)))
	for _, pid := range pids {
		p := s.producers[pid]
		b = binary.BigEndian.AppendUint64(b, uint64(pid))
		b = binary.BigEndian.AppendUint16(b, uint16(p.epoch))
		b = binary.BigEndian.AppendUint64(b, uint64(p.lastTimestamp))
		b = append(b, byte(len(p.batches)))
		for _, m := range p.batches {
			b = binary.BigEndian.AppendUint32(b, uint32(m.firstSeq))
			b = binary.BigEndian.AppendUint32(b, uint32(m.lastSeq))
			b = binary.BigEndian.AppendUint64(b, uint64(m.baseOffset))
		}
	}
	return b
}

var errTruncated = errors.New("producers: state encoding is truncated")

// Decode parses what Encode wrote. It rejects anything Encode could not have
// written: another version, pids out of order or negative, more than
// batchesRetained batches, trailing bytes.
func Decode(b []byte) (*State, error) {
	if len(b) < stateHeaderBytes {
		return nil, errTruncated
	}
	if b[0] != encodingVersion {
		return nil, fmt.Errorf("producers: state encoding version %d, want %d", b[0], encodingVersion)
	}
	n := binary.BigEndian.Uint32(b[1:])
	b = b[stateHeaderBytes:]
	if uint64(n) > uint64(len(b)/producerHeadBytes) {
		return nil, fmt.Errorf("producers: %d producers cannot fit in %d bytes", n, len(b))
	}
	s := &State{producers: make(map[int64]*producer, n)}
	prev := int64(-1)
	for range n {
		if len(b) < producerHeadBytes {
			return nil, errTruncated
		}
		pid := int64(binary.BigEndian.Uint64(b))
		if pid <= prev {
			return nil, fmt.Errorf("producers: pid %d after %d: not in increasing order", pid, prev)
		}
		prev = pid
		p := &producer{epoch: int16(binary.BigEndian.Uint16(b[8:])), lastTimestamp: int64(binary.BigEndian.Uint64(b[10:]))}
		nb := int(b[18])
		b = b[producerHeadBytes:]
		if nb > batchesRetained {
			return nil, fmt.Errorf("producers: pid %d has %d batches, at most %d are kept", pid, nb, batchesRetained)
		}
		if len(b) < nb*batchBytes {
			return nil, errTruncated
		}
		p.batches = make([]batchMeta, nb, batchesRetained)
		for i := range p.batches {
			p.batches[i] = batchMeta{
				firstSeq:   int32(binary.BigEndian.Uint32(b)),
				lastSeq:    int32(binary.BigEndian.Uint32(b[4:])),
				baseOffset: int64(binary.BigEndian.Uint64(b[8:])),
			}
			b = b[batchBytes:]
		}
		s.producers[pid] = p
	}
	if len(b) != 0 {
		return nil, fmt.Errorf("producers: %d bytes after the last producer", len(b))
	}
	return s, nil
}
