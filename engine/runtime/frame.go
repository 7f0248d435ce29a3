package runtime

import (
	"encoding/binary"
	"fmt"
	"io"
)

// Peer frames: a 4-byte big-endian length, then that many payload bytes.
// The payload is one raftlog transport batch, opaque here.

// frameBytesMax bounds one peer frame. A raft snapshot (a partition's
// segments) travels in a single message, so the bound is generous.
const frameBytesMax = 256 << 20

// frameHeaderBytes is the size of the length prefix.
const frameHeaderBytes = 4

// appendFrame appends payload framed to dst.
func appendFrame(dst, payload []byte) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(payload)))
	return append(dst, payload...)
}

// readFrame reads one frame from r. A length above max is an error before
// anything is allocated; a stream that ends inside a frame is
// io.ErrUnexpectedEOF, one that ends between frames io.EOF.
func readFrame(r io.Reader, max uint32) ([]byte, error) {
	var hdr [frameHeaderBytes]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n > max {
		return nil, fmt.Errorf("runtime: peer frame of %d bytes exceeds the %d byte limit", n, max)
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(r, buf); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return buf, nil
}
