package batch

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
	"github.com/twmb/franz-go/pkg/kerr"
)

// The four codecs of Kafka's record batches, for the broker's own reads of
// compressed batches (the log cleaner, a compacted topic's key check,
// ListOffsets by timestamp). klauspost/compress and pierrec/lz4 are what
// franz-go itself uses, so Gregor decodes exactly what its clients encode;
// the framing details (xerial snappy, Kafka's lz4 frames) follow franz-go's
// pkg/kgo/compression.go.

// DecompressedBytesMax bounds what one batch may decompress to, so that a
// small batch cannot make the broker allocate gigabytes (a decompression
// bomb is CORRUPT_MESSAGE).
const DecompressedBytesMax = 256 << 20

var errDecompress = errors.New("batch: cannot decompress")

// xerialPrefix starts a snappy payload framed by the Java client's
// SnappyOutputStream (xerial): the prefix, two version words, then blocks
// each a big-endian length and a raw snappy block.
var xerialPrefix = []byte{130, 83, 78, 65, 80, 80, 89, 0}

var zstdDecoder = sync.OnceValue(func() *zstd.Decoder {
	d, _ := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true), zstd.WithDecoderMaxMemory(DecompressedBytesMax))
	return d
})

var zstdEncoder = sync.OnceValue(func() *zstd.Encoder {
	e, _ := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1), zstd.WithWindowSize(64<<10), zstd.WithZeroFrames(true))
	return e
})

// Decompress returns the record bytes of a batch body compressed with
// codec. Errors wrap kerr.CorruptMessage.
func Decompress(codec int8, src []byte) ([]byte, error) {
	out, err := decompress(codec, src)
	if err != nil {
		return nil, fmt.Errorf("%w with codec %d: %v: %w", errDecompress, codec, err, kerr.CorruptMessage)
	}
	return out, nil
}

func decompress(codec int8, src []byte) ([]byte, error) {
	switch codec {
	case CompressionNone:
		return src, nil
	case CompressionSnappy:
		if len(src) >= 16 && bytes.HasPrefix(src, xerialPrefix) {
			return xerialDecode(src[16:])
		}
		return snappyBlock(nil, src)
	case CompressionZstd:
		return zstdDecoder().DecodeAll(src, nil)
	case CompressionGzip:
		r, err := gzip.NewReader(bytes.NewReader(src))
		if err != nil {
			return nil, err
		}
		return readBounded(r)
	case CompressionLZ4:
		return readBounded(lz4.NewReader(bytes.NewReader(src)))
	}
	return nil, fmt.Errorf("unknown codec")
}

func readBounded(r io.Reader) ([]byte, error) {
	var out bytes.Buffer
	n, err := out.ReadFrom(io.LimitReader(r, DecompressedBytesMax+1))
	if err != nil {
		return nil, err
	}
	if n > DecompressedBytesMax {
		return nil, fmt.Errorf("more than %d bytes", DecompressedBytesMax)
	}
	return out.Bytes(), nil
}

func snappyBlock(dst, src []byte) ([]byte, error) {
	n, err := s2.DecodedLen(src)
	if err != nil {
		return nil, err
	}
	if n > DecompressedBytesMax-len(dst) {
		return nil, fmt.Errorf("more than %d bytes", DecompressedBytesMax)
	}
	out, err := s2.Decode(nil, src)
	if err != nil {
		return nil, err
	}
	return append(dst, out...), nil
}

func xerialDecode(src []byte) ([]byte, error) {
	var out []byte
	for len(src) > 0 {
		if len(src) < 4 {
			return nil, fmt.Errorf("xerial: truncated block length")
		}
		n := binary.BigEndian.Uint32(src)
		src = src[4:]
		if uint64(n) > uint64(len(src)) {
			return nil, fmt.Errorf("xerial: block of %d bytes with %d left", n, len(src))
		}
		var err error
		if out, err = snappyBlock(out, src[:n]); err != nil {
			return nil, err
		}
		src = src[n:]
	}
	return out, nil
}

// Compress compresses record bytes with codec, deterministically (the same
// input gives the same bytes on every broker: replicas rewrite batches
// independently and must agree). Snappy is written as a raw block, as
// franz-go writes it; every Kafka client reads both that and xerial.
func Compress(codec int8, src []byte) ([]byte, error) {
	switch codec {
	case CompressionNone:
		return src, nil
	case CompressionSnappy:
		return s2.EncodeSnappy(nil, src), nil
	case CompressionZstd:
		return zstdEncoder().EncodeAll(src, nil), nil
	case CompressionGzip:
		var out bytes.Buffer
		w, err := gzip.NewWriterLevel(&out, gzip.DefaultCompression)
		if err != nil {
			return nil, err
		}
		return writeAll(w, &out, src)
	case CompressionLZ4:
		var out bytes.Buffer
		w := lz4.NewWriter(&out)
		if err := w.Apply(lz4.ConcurrencyOption(1)); err != nil {
			return nil, err
		}
		return writeAll(w, &out, src)
	}
	return nil, fmt.Errorf("batch: unknown compression codec %d", codec)
}

// writeAll writes src through the compressing w into out and closes w.
func writeAll(w io.WriteCloser, out *bytes.Buffer, src []byte) ([]byte, error) {
	if _, err := w.Write(src); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}
