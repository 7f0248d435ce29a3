package runtime

import (
	"bytes"
	"errors"
	"io"
	"testing"

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

// FuzzReadFrame feeds arbitrary bytes to the frame reader: it must never
// panic, never return a payload over the limit, and every frame it returns
// must re-encode to the bytes it consumed.
func FuzzReadFrame(f *testing.F) {
	f.Add([]byte{})
	f.Add(appendFrame(nil, []byte("hello")))
	f.Add(appendFrame(appendFrame(nil, nil), []byte{1, 2, 3}))
	f.Add([]byte{0, 0, 0, 9, 1})
	f.Add([]byte{0x7f, 0xff, 0xff, 0xff})
	const max = 1 << 16
	f.Fuzz(func(t *testing.T, in []byte) {
		r := bytes.NewReader(in)
		var consumed []byte
		for {
			p, err := readFrame(r, max)
			if err != nil {
				break
			}
			if len(p) > max {
				t.Fatalf("payload of %d bytes over the %d limit", len(p), max)
			}
			consumed = appendFrame(consumed, p)
		}
		if !bytes.HasPrefix(in, consumed) {
			t.Fatalf("frames read do not re-encode to a prefix of the input")
		}
	})
}
