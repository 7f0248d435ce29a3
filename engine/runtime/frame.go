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

// frameReadStepBytes bounds how far readFrame's memory runs ahead of the
// payload bytes that have actually arrived: a peer that announces a large
// frame and then sends little costs at most this much.
const frameReadStepBytes = 1 << 20

// appendFrame appends payload framed to dst.
func appendFrame(dst, payload []byte) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(payload)))
	return append(dst, payload...)
}

// readFrame reads one frame from r. A length above max is an error before
// anything is allocated; a stream that ends inside a frame is
// io.ErrUnexpectedEOF, one that ends between frames io.EOF.
func readFrame(r io.Reader, max uint32) ([]byte, error) {
	return readFrameStep(r, max, frameReadStepBytes)
}

// readFrameStep is readFrame reading the payload in chunks of at most step
// bytes, so that what it has allocated never exceeds what has arrived by
// more than step: the announced length is only trusted once the bytes are
// there. A payload of at most step bytes is read in one allocation; a
// longer one is gathered in chunks and copied into one slice when complete.
func readFrameStep(r io.Reader, max uint32, step int) ([]byte, error) {
	var hdr [frameHeaderBytes]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n > max {
		return nil, fmt.Errorf("runtime: peer frame of %d bytes exceeds the %d byte limit", n, max)
	}
	size := int(n)
	if size <= step {
		buf := make([]byte, size)
		if _, err := io.ReadFull(r, buf); err != nil {
			return nil, unexpectedEOF(err)
		}
		return buf, nil
	}
	var chunks [][]byte
	for got := 0; got < size; {
		c := make([]byte, min(step, size-got))
		if _, err := io.ReadFull(r, c); err != nil {
			return nil, unexpectedEOF(err)
		}
		chunks = append(chunks, c)
		got += len(c)
	}
	buf := make([]byte, 0, size)
	for _, c := range chunks {
		buf = append(buf, c...)
	}
	return buf, nil
}

// unexpectedEOF turns io.EOF, a stream ending inside a frame, into
// io.ErrUnexpectedEOF.
func unexpectedEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}
