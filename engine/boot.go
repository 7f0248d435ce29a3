package engine

import (
	"encoding/binary"
	"errors"
	"hash/crc32"

	"github.com/gregor-streaming/gregor/raftlog/vfs"
)

// The boot counter tells this run's proposals from an earlier run's: a
// proposal is matched to its waiting request by (broker, boot, seq), and
// after a restart old entries may still be applied. It is a 12-byte file:
// the counter, big-endian, then its CRC-32C.

const bootFile = "boot"

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func encodeBoot(n uint64) []byte {
	b := binary.BigEndian.AppendUint64(nil, n)
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

var errBadBoot = errors.New("engine: corrupt boot file")

func decodeBoot(b []byte) (uint64, error) {
	if len(b) != 12 || crc32.Checksum(b[:8], castagnoli) != binary.BigEndian.Uint32(b[8:]) {
		return 0, errBadBoot
	}
	return binary.BigEndian.Uint64(b[:8]), nil
}

// nextBoot reads, increments and durably rewrites the boot counter. A
// missing or corrupt file counts as 0; the clock is mixed in so even then
// two runs are told apart unless the clock also repeats.
func nextBoot(fs vfs.FS, nowMillis int64) (uint64, error) {
	var n uint64
	if f, err := fs.Open(bootFile); err == nil {
		buf := make([]byte, 12)
		if k, _ := f.ReadAt(buf, 0); k == 12 {
			n, _ = decodeBoot(buf)
		}
		f.Close()
	}
	n++
	f, err := fs.Create(bootFile + ".tmp")
	if err != nil {
		return 0, err
	}
	if _, err := f.Write(encodeBoot(n)); err != nil {
		f.Close()
		return 0, err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return 0, err
	}
	f.Close()
	if err := fs.Rename(bootFile+".tmp", bootFile); err != nil {
		return 0, err
	}
	if err := fs.SyncDir(""); err != nil {
		return 0, err
	}
	return n<<24 ^ uint64(nowMillis)&(1<<24-1), nil
}
