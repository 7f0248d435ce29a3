package producers

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
)

// Encoding of a State, for raft snapshots and checkpoints, all integers
// big-endian:
//
//	version    uint8  (encodingVersion)
//	producers  uint32
//	producers times, in strictly increasing pid order:
//	  pid      int64  (>= 0)
//	  epoch    int16
//	  lastTs   int64  (the last batch's max timestamp; version 2)
//	  txnFirst int64  (first offset of the open transaction, or -1; version 3)
//	  coordEp  int32  (coordinator epoch of the last marker, or -1; version 3)
//	  batches  uint8  (<= batchesRetained)
//	  batches times, oldest first:
//	    firstSeq int32, lastSeq int32, baseOffset int64,
//	    maxTs int64 (the batch's max timestamp, or -1; version 4)
//	aborted    uint32 (version 3)
//	aborted times, in increasing LastOffset order:
//	  pid int64, firstOffset int64, lastOffset int64 (first <= last)
//
// The encoding is canonical: one State has one encoding, and Decode accepts
// nothing else of the current version, so Encode(Decode(b)) == b. Decode
// also reads version 2 (no transactions) and 3 (no batch timestamps: the
// last batch's is the producer's last timestamp, the others' -1), so
// replicas written before keep their state. It carries no checksum: it is meant to
// sit inside a checksummed snapshot.
const (
	encodingVersion   = 4
	stateHeaderBytes  = 1 + 4
	producerHeadBytes = 8 + 2 + 8 + 8 + 4 + 1
	batchBytes        = 4 + 4 + 8 + 8
	abortedBytes      = 8 + 8 + 8
	// v3 and v2 lack the batch timestamps.
	batchBytesV3 = batchBytes - 8
	// v2 lacks txnFirst and coordEp.
	producerHeadBytesV2 = producerHeadBytes - 8 - 4
)

// Encode returns the state's canonical encoding, producers sorted by pid.
func (s *State) Encode() []byte {
	pids := make([]int64, 0, len(s.producers))
	size := stateHeaderBytes + 4 + abortedBytes*len(s.aborted)
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
		b = binary.BigEndian.AppendUint64(b, uint64(p.txnFirst))
		b = binary.BigEndian.AppendUint32(b, uint32(p.coordEpoch))
		b = append(b, byte(len(p.batches)))
		for _, m := range p.batches {
			b = binary.BigEndian.AppendUint32(b, uint32(m.firstSeq))
			b = binary.BigEndian.AppendUint32(b, uint32(m.lastSeq))
			b = binary.BigEndian.AppendUint64(b, uint64(m.baseOffset))
			b = binary.BigEndian.AppendUint64(b, uint64(m.maxTimestamp))
		}
	}
	b = binary.BigEndian.AppendUint32(b, uint32(len(s.aborted)))
	for _, a := range s.aborted {
		b = binary.BigEndian.AppendUint64(b, uint64(a.PID))
		b = binary.BigEndian.AppendUint64(b, uint64(a.FirstOffset))
		b = binary.BigEndian.AppendUint64(b, uint64(a.LastOffset))
	}
	return b
}

var errTruncated = errors.New("producers: state encoding is truncated")

// Decode parses what Encode wrote (or version 2 or 3). It rejects anything
// Encode could not have written: another version, pids out of order or
// negative, more than batchesRetained batches, a transaction's first
// offset below -1, aborted transactions out of order or inverted,
// trailing bytes.
func Decode(b []byte) (*State, error) {
	if len(b) < stateHeaderBytes {
		return nil, errTruncated
	}
	v := b[0]
	if v != encodingVersion && v != 3 && v != 2 {
		return nil, fmt.Errorf("producers: state encoding version %d, want %d", b[0], encodingVersion)
	}
	head, bb := producerHeadBytes, batchBytes
	if v == 2 {
		head = producerHeadBytesV2
	}
	if v <= 3 {
		bb = batchBytesV3
	}
	n := binary.BigEndian.Uint32(b[1:])
	b = b[stateHeaderBytes:]
	if uint64(n) > uint64(len(b)/head) {
		return nil, fmt.Errorf("producers: %d producers cannot fit in %d bytes", n, len(b))
	}
	s := &State{producers: make(map[int64]*producer, n)}
	prev := int64(-1)
	for range n {
		if len(b) < head {
			return nil, errTruncated
		}
		pid := int64(binary.BigEndian.Uint64(b))
		if pid <= prev {
			return nil, fmt.Errorf("producers: pid %d after %d: not in increasing order", pid, prev)
		}
		prev = pid
		p := &producer{epoch: int16(binary.BigEndian.Uint16(b[8:])), lastTimestamp: int64(binary.BigEndian.Uint64(b[10:])), txnFirst: -1, coordEpoch: -1}
		if v >= 3 {
			p.txnFirst = int64(binary.BigEndian.Uint64(b[18:]))
			p.coordEpoch = int32(binary.BigEndian.Uint32(b[26:]))
			if p.txnFirst < -1 || p.coordEpoch < -1 {
				return nil, fmt.Errorf("producers: pid %d: transaction first offset %d, coordinator epoch %d", pid, p.txnFirst, p.coordEpoch)
			}
		}
		nb := int(b[head-1])
		b = b[head:]
		if nb > batchesRetained {
			return nil, fmt.Errorf("producers: pid %d has %d batches, at most %d are kept", pid, nb, batchesRetained)
		}
		if len(b) < nb*bb {
			return nil, errTruncated
		}
		p.batches = make([]batchMeta, nb, batchesRetained)
		for i := range p.batches {
			p.batches[i] = batchMeta{
				firstSeq:     int32(binary.BigEndian.Uint32(b)),
				lastSeq:      int32(binary.BigEndian.Uint32(b[4:])),
				baseOffset:   int64(binary.BigEndian.Uint64(b[8:])),
				maxTimestamp: -1,
			}
			switch {
			case v >= 4:
				p.batches[i].maxTimestamp = int64(binary.BigEndian.Uint64(b[16:]))
			case i == nb-1:
				// Before version 4 the producer's last timestamp was
				// always its last batch's (markers did not move it).
				p.batches[i].maxTimestamp = p.lastTimestamp
			}
			b = b[bb:]
		}
		s.producers[pid] = p
		if p.txnFirst >= 0 {
			s.open++
		}
	}
	if v >= 3 {
		if len(b) < 4 {
			return nil, errTruncated
		}
		na := binary.BigEndian.Uint32(b)
		b = b[4:]
		if uint64(na) > uint64(len(b)/abortedBytes) {
			return nil, fmt.Errorf("producers: %d aborted transactions cannot fit in %d bytes", na, len(b))
		}
		s.aborted = make([]AbortedTxn, 0, na)
		for range na {
			a := AbortedTxn{
				PID:         int64(binary.BigEndian.Uint64(b)),
				FirstOffset: int64(binary.BigEndian.Uint64(b[8:])),
				LastOffset:  int64(binary.BigEndian.Uint64(b[16:])),
			}
			b = b[abortedBytes:]
			if a.PID < 0 || a.FirstOffset < 0 || a.FirstOffset > a.LastOffset {
				return nil, fmt.Errorf("producers: aborted transaction %+v", a)
			}
			if k := len(s.aborted); k > 0 && s.aborted[k-1].LastOffset >= a.LastOffset {
				return nil, fmt.Errorf("producers: aborted transaction at %d after one at %d", a.LastOffset, s.aborted[k-1].LastOffset)
			}
			s.aborted = append(s.aborted, a)
		}
	}
	if len(b) != 0 {
		return nil, fmt.Errorf("producers: %d bytes after the last producer", len(b))
	}
	return s, nil
}
