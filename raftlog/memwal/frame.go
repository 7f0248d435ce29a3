package memwal

import (
	"encoding/binary"
	"hash/crc32"
)

// A frame is
//
//	payload length  uint32, little endian
//	CRC-32C         uint32, little endian, over kind and payload
//	kind            1 byte: kindRecord or kindImage
//	payload         length bytes
//
// A checkpoint image is a frame like any other; decoding keeps the newest
// image and the records after it.
const frameHeaderBytes = 4 + 4 + 1

// recordBytesMax bounds one record or image; a length field above it is
// corruption, not a frame.
const recordBytesMax = 64 << 20

// Frame kinds.
const (
	kindRecord byte = 1
	kindImage  byte = 2
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// frame is one decoded frame; payload aliases the decoded bytes.
type frame struct {
	kind    byte
	payload []byte
}

func frameBytes(payload []byte) int { return frameHeaderBytes + len(payload) }

// appendFrame encodes one frame onto b.
func appendFrame(b []byte, kind byte, payload []byte) []byte {
	crc := crc32.Update(crc32.Update(0, castagnoli, []byte{kind}), castagnoli, payload)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(payload)))
	b = binary.LittleEndian.AppendUint32(b, crc)
	b = append(b, kind)
	return append(b, payload...)
}

// decodeFrames decodes b up to the first frame that is incomplete, too
// long, of unknown kind or fails its CRC, and returns the whole frames
// before it and the number of bytes they span. It never fails: whatever
// follows the valid prefix is a torn or corrupt tail to cut.
func decodeFrames(b []byte) (frames []frame, valid int) {
	for {
		rest := b[valid:]
		if len(rest) < frameHeaderBytes {
			return frames, valid
		}
		n := binary.LittleEndian.Uint32(rest)
		if n > recordBytesMax || uint64(len(rest)-frameHeaderBytes) < uint64(n) {
			return frames, valid
		}
		crc := binary.LittleEndian.Uint32(rest[4:])
		kind := rest[8]
		payload := rest[frameHeaderBytes : frameHeaderBytes+int(n)]
		if kind != kindRecord && kind != kindImage {
			return frames, valid
		}
		if crc32.Update(crc32.Update(0, castagnoli, []byte{kind}), castagnoli, payload) != crc {
			return frames, valid
		}
		frames = append(frames, frame{kind: kind, payload: payload})
		valid += frameHeaderBytes + int(n)
	}
}

// fold returns the newest image among frames (nil if none) and the records
// after it, aliasing the frames' payloads.
func fold(frames []frame) (image []byte, recs [][]byte) {
	for _, f := range frames {
		switch f.kind {
		case kindImage:
			image, recs = f.payload, nil
			if image == nil {
				image = []byte{}
			}
		case kindRecord:
			recs = append(recs, f.payload)
		}
	}
	return image, recs
}
