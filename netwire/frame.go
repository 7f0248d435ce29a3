package netwire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kmsg"
)

const (
	// apiVersionsKey is the Kafka API key of ApiVersions, which netwire
	// answers itself and whose response header is always v0.
	apiVersionsKey int16 = 18

	// controlledShutdownKey is the one API whose v0 request header has no
	// client id (request header v0).
	controlledShutdownKey int16 = 7

	// frameSizeBytes is the length of the big-endian size prefix of every
	// request and response frame.
	frameSizeBytes = 4
)

// Version is one row of the supported API versions table: the range of
// versions of one Kafka API key the broker accepts and advertises through
// ApiVersions.
type Version struct {
	Key      int16
	Min, Max int16
}

// versionTable is the validated form of Config.Versions.
type versionTable struct {
	byKey map[int16]Version
	// apiKeys is the table sorted by key, as ApiVersions answers it.
	apiKeys []kmsg.ApiVersionsResponseApiKey
	// features is Config.Features, as ApiVersions v3+ answers them.
	features []Feature
}

// newVersionTable validates vs: keys known to kmsg, no duplicates,
// 0 <= Min <= Max <= the highest version kmsg can decode, and ApiVersions
// present (clients cannot negotiate without it).
func newVersionTable(vs []Version) (versionTable, error) {
	t := versionTable{byKey: make(map[int16]Version, len(vs))}
	for _, v := range vs {
		kreq := kmsg.RequestForKey(v.Key)
		if kreq == nil {
			return t, fmt.Errorf("netwire: Versions lists key %d, unknown to kmsg", v.Key)
		}
		if _, dup := t.byKey[v.Key]; dup {
			return t, fmt.Errorf("netwire: Versions lists key %d (%s) twice", v.Key, kmsg.NameForKey(v.Key))
		}
		if v.Min < 0 || v.Min > v.Max || v.Max > kreq.MaxVersion() {
			return t, fmt.Errorf("netwire: Versions range %d..%d for %s is not within 0..%d",
				v.Min, v.Max, kmsg.NameForKey(v.Key), kreq.MaxVersion())
		}
		t.byKey[v.Key] = v
		t.apiKeys = append(t.apiKeys, kmsg.ApiVersionsResponseApiKey{ApiKey: v.Key, MinVersion: v.Min, MaxVersion: v.Max})
	}
	if _, ok := t.byKey[apiVersionsKey]; !ok {
		return t, errors.New("netwire: Versions must list ApiVersions (key 18)")
	}
	slices.SortFunc(t.apiKeys, func(a, b kmsg.ApiVersionsResponseApiKey) int { return int(a.ApiKey) - int(b.ApiKey) })
	return t, nil
}

// request is one decoded request frame.
type request struct {
	key      int16
	version  int16
	corr     int32
	clientID string
	// kreq is the decoded body. For an ApiVersions request whose version is
	// above what we support, the body is not decoded (its layout may be
	// unknown) and kreq is an empty ApiVersionsRequest of that version.
	kreq kmsg.Request
	// apiVersionsTooNew marks that case: the answer is the KIP-511
	// fallback, a v0 body with UNSUPPORTED_VERSION.
	apiVersionsTooNew bool
}

// errFrameSize reports a size prefix outside [0, MaxFrameBytes].
var errFrameSize = errors.New("netwire: frame size out of range")

// eagerFrameBytes: frames up to this size are allocated whole up front.
const eagerFrameBytes = 1 << 20

// readRequest reads one size-prefixed request frame from r and decodes it.
// A clean end of stream before any byte of the frame is io.EOF; every other
// error means the connection must be closed. It is the server's only parse
// path and the fuzz target.
func readRequest(r io.Reader, maxFrameBytes int32, t *versionTable) (request, error) {
	frame, err := readFrame(r, maxFrameBytes)
	if err != nil {
		return request{}, err
	}
	return parseRequest(frame, t)
}

// readFrame reads one size-prefixed frame and returns it without its
// size. A clean end of stream before any byte is io.EOF.
func readFrame(r io.Reader, maxFrameBytes int32) ([]byte, error) {
	var sizeBuf [frameSizeBytes]byte
	if _, err := io.ReadFull(r, sizeBuf[:]); err != nil {
		return nil, err
	}
	size := int32(binary.BigEndian.Uint32(sizeBuf[:]))
	if size < 0 || size > maxFrameBytes {
		return nil, fmt.Errorf("%w: %d not in [0, %d]", errFrameSize, size, maxFrameBytes)
	}
	// Frames up to eagerFrameBytes (nearly all of them) are read into a
	// buffer of exactly their size. Larger ones are read through a
	// LimitReader, growing as bytes arrive, so a peer that announces a
	// large frame and sends nothing does not pin MaxFrameBytes of memory.
	// The frame is never reused: kmsg's ReadFrom may alias byte slices
	// (records) into it.
	if size <= eagerFrameBytes {
		frame := make([]byte, size)
		if _, err := io.ReadFull(r, frame); err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		return frame, nil
	}
	frame, err := io.ReadAll(io.LimitReader(r, int64(size)))
	if err != nil {
		return nil, err
	}
	if len(frame) != int(size) {
		return nil, io.ErrUnexpectedEOF
	}
	return frame, nil
}

// parseRequest decodes a frame without its size prefix: the request header
// (v0 for ControlledShutdown v0, v1, or v2 with tagged fields for flexible
// versions) and the body through kmsg.
func parseRequest(frame []byte, t *versionTable) (request, error) {
	b := kbin.Reader{Src: frame}
	rq := request{key: b.Int16(), version: b.Int16(), corr: b.Int32()}
	if !b.Ok() {
		return rq, fmt.Errorf("netwire: request header truncated (%d bytes)", len(frame))
	}
	v, known := t.byKey[rq.key]
	if !known {
		return rq, fmt.Errorf("netwire: unsupported api key %d (%s)", rq.key, kmsg.NameForKey(rq.key))
	}
	kreq := kmsg.RequestForKey(rq.key)
	kreq.SetVersion(rq.version)
	if !(rq.key == controlledShutdownKey && rq.version == 0) {
		if id := b.NullableString(); id != nil {
			rq.clientID = *id
		}
	}
	if kreq.IsFlexible() {
		kmsg.SkipTags(&b)
	}
	if !b.Ok() {
		return rq, fmt.Errorf("netwire: %s v%d request header truncated", kmsg.NameForKey(rq.key), rq.version)
	}
	rq.kreq = kreq
	if rq.version < v.Min || rq.version > v.Max {
		if rq.key == apiVersionsKey && rq.version > v.Max {
			// KIP-511: the broker does not parse a too-new ApiVersions
			// body; it answers v0 listing what it supports.
			rq.apiVersionsTooNew = true
			return rq, nil
		}
		if rq.key != apiVersionsKey {
			return rq, fmt.Errorf("netwire: %s v%d outside supported v%d..v%d",
				kmsg.NameForKey(rq.key), rq.version, v.Min, v.Max)
		}
		// ApiVersions below our minimum is decoded and answered with
		// UNSUPPORTED_VERSION at the client's version.
	}
	if err := kreq.ReadFrom(b.Src); err != nil {
		return rq, fmt.Errorf("netwire: decode %s v%d: %w", kmsg.NameForKey(rq.key), rq.version, err)
	}
	return rq, nil
}

// appendResponse appends one response frame: size, correlation id, the
// empty tagged-field section of header v1 when the response is flexible
// (never for ApiVersions, whose response header is always v0), and the
// body encoded by kmsg. resp's version must already be set.
func appendResponse(dst []byte, corr int32, resp kmsg.Response) []byte {
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0)
	dst = binary.BigEndian.AppendUint32(dst, uint32(corr))
	if resp.IsFlexible() && resp.Key() != apiVersionsKey {
		dst = append(dst, 0)
	}
	dst = resp.AppendTo(dst)
	binary.BigEndian.PutUint32(dst[start:], uint32(len(dst)-start-frameSizeBytes))
	return dst
}
