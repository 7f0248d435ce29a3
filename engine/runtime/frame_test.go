package runtime

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	goruntime "runtime"
	"testing"
	"testing/iotest"

	"pgregory.net/rapid"
)

// TestFrameRoundTrip checks that any sequence of payloads written as
// frames reads back the same, then io.EOF.
func TestFrameRoundTrip(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		payloads := rapid.SliceOf(rapid.SliceOf(rapid.Byte())).Draw(t, "payloads")
		var buf []byte
		for _, p := range payloads {
			buf = appendFrame(buf, p)
		}
		r := bytes.NewReader(buf)
		for i, want := range payloads {
			got, err := readFrame(r, frameBytesMax)
			if err != nil {
				t.Fatalf("frame %d: %v", i, err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("frame %d: got %x, want %x", i, got, want)
			}
		}
		if _, err := readFrame(r, frameBytesMax); err != io.EOF {
			t.Fatalf("after the last frame: %v, want io.EOF", err)
		}
	})
}

func TestReadFrameRejects(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []byte
		max  uint32
		want error // nil: any non-nil error
	}{
		{"short header", []byte{0, 0}, 10, io.ErrUnexpectedEOF},
		{"short body", []byte{0, 0, 0, 5, 1, 2}, 10, io.ErrUnexpectedEOF},
		{"over max", []byte{0, 0, 0, 11}, 10, nil},
		{"huge length", []byte{0xff, 0xff, 0xff, 0xff}, frameBytesMax, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := readFrame(bytes.NewReader(tc.in), tc.max)
			if err == nil || (tc.want != nil && !errors.Is(err, tc.want)) {
				t.Fatalf("readFrame(%x) = %v, want %v", tc.in, err, tc.want)
			}
		})
	}
}

// FuzzReadFrame feeds arbitrary bytes to the frame reader, with a small
// read step so that long frames are gathered in several chunks, and a
// reader that may return one byte at a time. The frames and the final
// error must be those of a direct parse of the input: no payload over the
// limit, a stream ending inside a frame is io.ErrUnexpectedEOF, one ending
// between frames io.EOF. It must never panic.
func FuzzReadFrame(f *testing.F) {
	f.Add([]byte{}, uint8(0), false)
	f.Add(appendFrame(nil, []byte("hello")), uint8(2), false)
	f.Add(appendFrame(appendFrame(nil, nil), []byte{1, 2, 3}), uint8(1), true)
	f.Add(appendFrame(nil, bytes.Repeat([]byte{7}, 100)), uint8(9), true)
	f.Add([]byte{0, 0, 0, 9, 1}, uint8(3), false)
	f.Add([]byte{0, 0, 0, 30, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, uint8(4), true)
	f.Add([]byte{0x7f, 0xff, 0xff, 0xff}, uint8(0), false)
	f.Add([]byte{0, 0, 0}, uint8(0), false)
	const max = 1 << 16
	f.Fuzz(func(t *testing.T, in []byte, stepByte uint8, oneByte bool) {
		step := int(stepByte%16) + 1
		var r io.Reader = bytes.NewReader(in)
		if oneByte {
			r = iotest.OneByteReader(r)
		}
		wantFrames, wantErr := parseFrames(in, max)
		for i := 0; ; i++ {
			p, err := readFrameStep(r, max, step)
			if err != nil {
				if i != len(wantFrames) {
					t.Fatalf("error %v after %d frames, want %d frames", err, i, len(wantFrames))
				}
				if wantErr != nil && !errors.Is(err, wantErr) {
					t.Fatalf("error %v, want %v", err, wantErr)
				}
				if wantErr == nil && (errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)) {
					t.Fatalf("error %v, want the limit error", err)
				}
				return
			}
			if len(p) > max {
				t.Fatalf("payload of %d bytes over the %d limit", len(p), max)
			}
			if i >= len(wantFrames) || !bytes.Equal(p, wantFrames[i]) {
				t.Fatalf("frame %d: got %d bytes, which the input does not hold there", i, len(p))
			}
		}
	})
}

// parseFrames is the reference decoder: the frames at the start of in, then
// the error readFrame must end with (nil for the over-limit error).
func parseFrames(in []byte, max uint32) ([][]byte, error) {
	var frames [][]byte
	for {
		switch {
		case len(in) == 0:
			return frames, io.EOF
		case len(in) < frameHeaderBytes:
			return frames, io.ErrUnexpectedEOF
		}
		n := binary.BigEndian.Uint32(in)
		if n > max {
			return frames, nil
		}
		if uint64(len(in)-frameHeaderBytes) < uint64(n) {
			return frames, io.ErrUnexpectedEOF
		}
		frames = append(frames, in[frameHeaderBytes:frameHeaderBytes+int(n)])
		in = in[frameHeaderBytes+int(n):]
	}
}

// TestReadFrameAnnouncedIsNotAllocated checks that a header announcing a
// huge frame, followed by a few bytes and the end of the stream, costs
// memory in proportion to what arrived, not to what was announced.
func TestReadFrameAnnouncedIsNotAllocated(t *testing.T) {
	const announced = 200 << 20
	in := binary.BigEndian.AppendUint32(nil, announced)
	in = append(in, "0123456789"...)
	var before, after goruntime.MemStats
	goruntime.GC()
	goruntime.ReadMemStats(&before)
	_, err := readFrame(bytes.NewReader(in), frameBytesMax)
	goruntime.ReadMemStats(&after)
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("readFrame = %v, want io.ErrUnexpectedEOF", err)
	}
	// One read step plus slack for anything else the process allocates
	// meanwhile; the old reader allocated all 200 MiB here.
	const limit = frameReadStepBytes + 4<<20
	if got := after.TotalAlloc - before.TotalAlloc; got > limit {
		t.Fatalf("readFrame allocated %d bytes for a frame announcing %d with 10 present, want at most %d", got, announced, limit)
	}
}

// TestReadFrameLong checks a frame longer than one read step, gathered in
// chunks, and a stream that ends in its second chunk.
func TestReadFrameLong(t *testing.T) {
	payload := make([]byte, 2*frameReadStepBytes+123)
	for i := range payload {
		payload[i] = byte(i * 7)
	}
	framed := appendFrame(nil, payload)
	got, err := readFrame(iotest.HalfReader(bytes.NewReader(framed)), frameBytesMax)
	if err != nil || !bytes.Equal(got, payload) {
		t.Fatalf("readFrame = %d bytes, %v; want the %d byte payload", len(got), err, len(payload))
	}
	if _, err := readFrame(bytes.NewReader(framed[:frameReadStepBytes+100]), frameBytesMax); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("truncated long frame: %v, want io.ErrUnexpectedEOF", err)
	}
}
