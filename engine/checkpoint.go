package engine

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"strconv"
	"strings"

	"github.com/gregor-streaming/gregor/engine/producers"
	"github.com/gregor-streaming/gregor/raftlog/vfs"
)

// A replica's durable apply point. Each partition replica keeps, beside its
// segments, a checkpoint: the raft index its segments hold everything up
// to, the log's start and end offsets at that point, the leader-epoch
// history and the idempotent-producer state. The raft log is compacted
// only up to a checkpoint's index, so on recovery the segments must reach
// the checkpoint's end offset: if they do not (bit rot, a lost file), the
// entries raft would re-apply do not follow what the segments hold, and
// re-applying them would give records other offsets than on every other
// replica. Recovery then treats the state as lost and fetches it from a
// peer (repair.go) instead.
//
// Layout of a partition's directory:
//
//	partitions/<group>/CURRENT         names the live state directory
//	partitions/<group>/state-<n>/      segments + checkpoint
//
// A snapshot install builds state-<n+1> beside the live one and switches
// CURRENT to it with an atomic rename, so a crash leaves the old state or
// the new one, never half of each.

const (
	checkpointFile = "checkpoint"
	currentFile    = "CURRENT"
	stateDirPrefix = "state-"
	// checkpointVersion is the first byte after the magic: 2 adds the
	// logical log start (DeleteRecords), 3 where compaction's last round
	// ended; 1 and 2 are still read.
	checkpointVersion byte = 3
)

var checkpointMagic = [4]byte{'G', 'R', 'C', 'K'}

// errBadCheckpoint is a checkpoint that fails its checksum or framing.
var errBadCheckpoint = errors.New("engine: corrupt replica checkpoint")

// checkpoint is a replica's durable apply point.
type checkpoint struct {
	applied   uint64 // raft index the state holds everything up to
	start     int64  // the segments' first offset
	end       int64  // log end offset: the segments hold [start, end)
	logStart  int64  // the log start offset clients see (DeleteRecords): start <= logStart <= end
	cleanedTo int64  // where the last compaction round ended (compaction.go)
	epochs    []epochStart
	producers *producers.State
}

func (c *checkpoint) encode() []byte {
	b := append([]byte(nil), checkpointMagic[:]...)
	b = append(b, checkpointVersion)
	b = binary.AppendUvarint(b, c.applied)
	b = binary.AppendVarint(b, c.start)
	b = binary.AppendVarint(b, c.end)
	b = binary.AppendVarint(b, c.logStart)
	b = binary.AppendVarint(b, c.cleanedTo)
	b = binary.AppendUvarint(b, uint64(len(c.epochs)))
	for _, e := range c.epochs {
		b = binary.AppendVarint(b, int64(e.epoch))
		b = binary.AppendVarint(b, e.start)
	}
	ps := c.producers.Encode()
	b = binary.AppendUvarint(b, uint64(len(ps)))
	b = append(b, ps...)
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

// decodeCheckpoint parses encode's output; it never panics on bad input.
func decodeCheckpoint(b []byte) (*checkpoint, error) {
	if len(b) < len(checkpointMagic)+1+4 || [4]byte(b[:4]) != checkpointMagic {
		return nil, errBadCheckpoint
	}
	body, sum := b[:len(b)-4], binary.BigEndian.Uint32(b[len(b)-4:])
	if crc32.Checksum(body, castagnoli) != sum {
		return nil, errBadCheckpoint
	}
	version := body[4]
	if version < 1 || version > checkpointVersion {
		return nil, fmt.Errorf("engine: replica checkpoint version %d unknown", body[4])
	}
	r := &byteReader{b: body[5:]}
	c := &checkpoint{applied: r.uvarint(), start: r.varint(), end: r.varint()}
	c.logStart = c.start
	if version >= 2 {
		c.logStart = r.varint()
	}
	if version >= 3 {
		c.cleanedTo = r.varint()
	}
	n := r.uvarint()
	if n > uint64(len(r.b)) {
		return nil, errBadCheckpoint
	}
	for range n {
		c.epochs = append(c.epochs, epochStart{epoch: int32(r.varint()), start: r.varint()})
	}
	ps := r.bytes(r.uvarint())
	if r.err != nil || len(r.b) != 0 || c.start > c.end || c.start < 0 || c.logStart < c.start || c.logStart > c.end || c.cleanedTo < 0 || c.cleanedTo > c.end {
		return nil, errBadCheckpoint
	}
	var err error
	if c.producers, err = producers.Decode(ps); err != nil {
		return nil, errBadCheckpoint
	}
	return c, nil
}

// byteReader reads varints off a slice, remembering the first error.
type byteReader struct {
	b   []byte
	err error
}

func (r *byteReader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err, r.b = errBadCheckpoint, nil
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *byteReader) varint() int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.err, r.b = errBadCheckpoint, nil
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *byteReader) bytes(n uint64) []byte {
	if n > uint64(len(r.b)) {
		r.err, r.b = errBadCheckpoint, nil
		return nil
	}
	out := r.b[:n]
	r.b = r.b[n:]
	return out
}

// writeFileAtomic durably replaces dir/name with data: write a temporary
// file, sync it, rename it over name, sync the directory. A crash leaves
// the old content or the new, never a mix.
func writeFileAtomic(fsys vfs.FS, dir, name string, data []byte) error {
	tmp := dir + "/" + name + ".tmp"
	if err := vfs.WriteFile(fsys, tmp, data); err != nil {
		return err
	}
	if err := fsys.Rename(tmp, dir+"/"+name); err != nil {
		return err
	}
	return fsys.SyncDir(dir)
}

// readFile reads a whole file; a missing file is (nil, nil).
func readFile(fsys vfs.FS, name string) ([]byte, error) {
	if !fsys.Exists(name) {
		return nil, nil
	}
	return vfs.ReadFile(fsys, name)
}

// readCheckpoint reads the checkpoint of a state directory; nil if there
// is none yet.
func readCheckpoint(fsys vfs.FS, stateDir string) (*checkpoint, error) {
	b, err := readFile(fsys, stateDir+"/"+checkpointFile)
	if err != nil || b == nil {
		return nil, err
	}
	return decodeCheckpoint(b)
}

func writeCheckpoint(fsys vfs.FS, stateDir string, c *checkpoint) error {
	return writeFileAtomic(fsys, stateDir, checkpointFile, c.encode())
}

// stateDirName is the name of state directory n.
func stateDirName(n uint64) string { return stateDirPrefix + strconv.FormatUint(n, 10) }

// readCurrent returns the number of the live state directory of a
// partition directory, or 0 if CURRENT does not exist. CURRENT holds
// "state-<n>\n" and a CRC-32C of that line, as 8 hex digits.
func readCurrent(fsys vfs.FS, dir string) (uint64, error) {
	b, err := readFile(fsys, dir+"/"+currentFile)
	if err != nil || b == nil {
		return 0, err
	}
	line, sum, ok := strings.Cut(string(b), "\n")
	want := fmt.Sprintf("%08x", crc32.Checksum([]byte(line), castagnoli))
	n, perr := strconv.ParseUint(strings.TrimPrefix(line, stateDirPrefix), 10, 64)
	if !ok || sum != want || !strings.HasPrefix(line, stateDirPrefix) || perr != nil || n == 0 {
		return 0, fmt.Errorf("engine: corrupt %s/%s", dir, currentFile)
	}
	return n, nil
}

// writeCurrent atomically makes state-<n> the live state of dir.
func writeCurrent(fsys vfs.FS, dir string, n uint64) error {
	line := stateDirName(n)
	return writeFileAtomic(fsys, dir, currentFile, fmt.Appendf(nil, "%s\n%08x", line, crc32.Checksum([]byte(line), castagnoli)))
}

// removeTree removes dir and everything below it (files and directories),
// then syncs dir's parent.
func removeTree(fsys vfs.FS, dir string) error {
	if err := removeBelow(fsys, dir); err != nil {
		return err
	}
	if err := fsys.Remove(dir); err != nil {
		return err
	}
	parent := "."
	if i := strings.LastIndexByte(dir, '/'); i >= 0 {
		parent = dir[:i]
	}
	return fsys.SyncDir(parent)
}

func removeBelow(fsys vfs.FS, dir string) error {
	names, err := fsys.List(dir)
	if err != nil {
		return nil
	}
	for _, n := range names {
		p := dir + "/" + n
		if err := fsys.Remove(p); err != nil {
			// A directory that is not empty: empty it first.
			if err := removeBelow(fsys, p); err != nil {
				return err
			}
			if err := fsys.Remove(p); err != nil {
				return err
			}
		}
	}
	return nil
}
