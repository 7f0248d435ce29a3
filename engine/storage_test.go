package engine

import (
	"errors"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"testing/cryptotest"

	"github.com/gregor-streaming/gregor/raftlog/vfs"
)

// fullFS fails every write, sync and creation with ENOSPC while *full is
// set: a disk that ran out of space.
type fullFS struct {
	vfs.FS
	full *bool
}

var errNoSpace = fmt.Errorf("test: write: %w", syscall.ENOSPC)

func (f fullFS) Create(name string) (vfs.File, error) {
	if *f.full {
		return nil, errNoSpace
	}
	file, err := f.FS.Create(name)
	return fullFile{file, f.full}, err
}

func (f fullFS) Open(name string) (vfs.File, error) {
	file, err := f.FS.Open(name)
	if err != nil {
		return nil, err
	}
	return fullFile{file, f.full}, nil
}

func (f fullFS) MkdirAll(dir string) error {
	if *f.full {
		return errNoSpace
	}
	return f.FS.MkdirAll(dir)
}

func (f fullFS) SyncDir(dir string) error {
	if *f.full {
		return errNoSpace
	}
	return f.FS.SyncDir(dir)
}

type fullFile struct {
	vfs.File
	full *bool
}

func (f fullFile) Write(p []byte) (int, error) {
	if *f.full {
		// A short write, as a full disk gives.
		n, _ := f.File.Write(p[:len(p)/2])
		return n, errNoSpace
	}
	return f.File.Write(p)
}

func (f fullFile) Sync() error {
	if *f.full {
		return errNoSpace
	}
	return f.File.Sync()
}

// TestDiskFullIsAnError: the leader of a partition runs out of disk space.
// Its broker stays up; the produce waiting on it gets KAFKA_STORAGE_ERROR,
// leadership moves, produces go on at the other replicas; when space
// returns the replica cuts off its partial append, re-applies from raft's
// log and ends with the same log as the others. Before, the failed append
// panicked the broker.
func TestDiskFullIsAnError(t *testing.T) {
	cryptotest.SetGlobalRandom(t, 1)
	full := false
	c := &testCluster{t: t, tune: func(cfg *Config) { cfg.SegmentBytes = 600 }}
	c.wrapFS = func(tb *testBroker) vfs.FS {
		if tb.id != 3 {
			return tb.fs
		}
		return fullFS{tb.fs, &full}
	}
	c.run(t, cmd("add-brokers n=3"))
	c.run(t, cmd("create-topic name=t partitions=1 rf=3"))
	if l := c.leaderOf("t", 0); l != 3 {
		t.Fatalf("partition led by %d; the test wants broker 3", l)
	}
	for i := range 5 {
		c.run(t, cmd(fmt.Sprintf("produce topic=t partition=0 values=before-%d", i)))
	}
	full = true
	out := c.run(t, cmd("produce topic=t partition=0 values=x1,x2,x3 via=3"))
	if !strings.Contains(out, "KAFKA_STORAGE_ERROR") {
		t.Fatalf("produce to the full leader: %q", out)
	}
	p := c.part(3)
	if p.storageErr == nil || !errors.Is(p.storageErr, syscall.ENOSPC) {
		t.Fatalf("replica on broker 3 not stopped: %v", p.storageErr)
	}
	c.tick(30)
	if l := c.leaderOf("t", 0); l == 3 || l == 0 {
		t.Fatalf("leadership did not move off the full broker: %d", l)
	}
	for i := range 5 {
		if out := c.run(t, cmd(fmt.Sprintf("produce topic=t partition=0 values=during-%d", i))); strings.Contains(out, "ERROR") {
			t.Fatalf("produce while broker 3 is full: %q", out)
		}
	}
	// Broker 3 still answers what needs no disk.
	if out := c.run(t, cmd("metadata via=3")); !strings.Contains(out, "t-0") {
		t.Fatalf("metadata from the full broker: %q", out)
	}
	full = false
	c.tick(30)
	if p := c.part(3); p.storageErr != nil || p.lost {
		t.Fatalf("replica on broker 3 did not recover: %v lost=%v", p.storageErr, p.lost)
	}
	want := c.recordsOf(1)
	if got := c.recordsOf(3); got != want {
		t.Fatalf("after recovery broker 3 has\n%s\nbroker 1 has\n%s", got, want)
	}
	if !strings.Contains(want, ":x1 ") || !strings.Contains(want, "during-4") {
		t.Fatalf("log %s misses the committed entries", want)
	}
}
