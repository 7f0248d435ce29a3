package raftlog

import (
	"fmt"
	"testing"
)

// BenchmarkHostReady measures raft Ready processing across many groups on
// three hosts with an in-memory WAL: each iteration proposes one 1 KiB entry
// to every group at its leader, then runs every host's Ready cycles and
// delivers messages until all are committed and applied everywhere. The
// cost per group-entry is the multi-raft overhead alone (no disk).
//
//	go test -run '^$' -bench HostReady ./raftlog/
func BenchmarkHostReady(b *testing.B) {
	for _, groups := range []int{1, 16, 256} {
		b.Run(fmt.Sprintf("groups=%d", groups), func(b *testing.B) {
			c := newCluster(&testing.T{}, 3)
			for g := 1; g <= groups; g++ {
				c.createGroup(GroupID(g), 1, 2, 3)
			}
			c.stabilize()
			data := make([]byte, 1024)
			b.SetBytes(int64(groups * len(data)))
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				for g := 1; g <= groups; g++ {
					if err := c.nodes[1].host.Propose(GroupID(g), data); err != nil {
						b.Fatal(err)
					}
				}
				c.stabilize()
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N*groups)/b.Elapsed().Seconds(), "entries/s")
		})
	}
}
