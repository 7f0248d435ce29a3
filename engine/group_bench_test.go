package engine

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/gregor-streaming/gregor/engine/segment"
	"github.com/gregor-streaming/gregor/raftlog"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Group coordination benchmarks, on three brokers on the real disk
// (etcd WALs, fsync every cycle), stepped in process as in
// BenchmarkClusterProduce: the figures are the coordinator's and the
// storage path's cost, not a network's. Numbers in docs/performance.md.

// groupBenchCluster starts three disk brokers with __consumer_offsets
// created and every coordinator loaded.
func groupBenchCluster(b *testing.B) *testCluster {
	c, _ := diskCluster(b, 3)
	b.Cleanup(func() {
		for _, tb := range c.brokers {
			if !tb.down {
				diskStop(tb)
			}
		}
	})
	c.call(1, &kmsg.FindCoordinatorRequest{CoordinatorKey: "x"}, 10)
	c.tick(40)
	return c
}

// sendTo hands req to broker id and returns the token to wait on.
func (c *testCluster) sendTo(id int32, req kmsg.Request) uint64 {
	c.token++
	c.broker(id).b.Handle(c.token, req)
	return c.token
}

// waitAll steps the cluster until every token is answered.
func (c *testCluster) waitAll(b *testing.B, toks []uint64) {
	for i := 0; ; i++ {
		c.stabilize()
		done := true
		for _, t := range toks {
			if !c.answered[t] {
				done = false
				break
			}
		}
		if done {
			return
		}
		if i > 1000 {
			b.Fatalf("requests not answered")
		}
		c.tick(1)
	}
}

// BenchmarkGroupOffsetCommit: 100 groups commit at once (one partition
// each, admin commits to empty groups), each to its coordinator; an
// iteration ends when all 100 are acknowledged (applied on a majority).
//
//	go test -run '^$' -bench GroupOffsetCommit -benchtime 200x -count 5 ./engine/
func BenchmarkGroupOffsetCommit(b *testing.B) {
	const groups = 100
	c := groupBenchCluster(b)
	coord := make([]int32, groups)
	for g := range groups {
		coord[g] = c.coordinatorOf(fmt.Sprintf("bench-%d", g))
	}
	var rounds []time.Duration
	b.ResetTimer()
	for i := range b.N {
		start := time.Now()
		toks := make([]uint64, 0, groups)
		for g := range groups {
			r := kmsg.NewPtrOffsetCommitRequest()
			r.SetVersion(8)
			r.Group, r.Generation = fmt.Sprintf("bench-%d", g), -1
			r.Topics = []kmsg.OffsetCommitRequestTopic{{Topic: "t", Partitions: []kmsg.OffsetCommitRequestTopicPartition{{Partition: 0, Offset: int64(i), LeaderEpoch: -1}}}}
			toks = append(toks, c.sendTo(coord[g], r))
		}
		c.waitAll(b, toks)
		rounds = append(rounds, time.Since(start))
		for _, t := range toks {
			if code := c.responses[t].(*kmsg.OffsetCommitResponse).Topics[0].Partitions[0].ErrorCode; code != 0 {
				b.Fatalf("commit: %s", codeName(code))
			}
			delete(c.responses, t)
		}
	}
	b.StopTimer()
	slices.Sort(rounds)
	b.ReportMetric(float64(b.N*groups)/b.Elapsed().Seconds(), "commits/s")
	b.ReportMetric(float64(rounds[len(rounds)*99/100].Microseconds())/1000, "p99-ms")
}

// BenchmarkGroupJoinToStable: 10 members join a new group over a
// 100-partition topic, from the first JoinGroup to the last SyncGroup
// answered (classic, with group.initial.rebalance.delay.ms off: with
// Kafka's 3 s default that delay dominates), and from the first
// ConsumerGroupHeartbeat to every member Stable at the group's epoch
// (KIP-848, members heartbeating back-to-back with what they own).
//
//	go test -run '^$' -bench GroupJoinToStable -benchtime 20x -count 5 ./engine/
func BenchmarkGroupJoinToStable(b *testing.B) {
	const members = 10
	c := groupBenchCluster(b)
	createDiskTopic(b, c, "t100", 100, 3)
	b.Run("classic", func(b *testing.B) {
		for i := range b.N {
			group := fmt.Sprintf("classic-%d", i)
			via := c.coordinatorOf(group)
			join := func(member string) uint64 {
				r := kmsg.NewPtrJoinGroupRequest()
				r.SetVersion(9)
				r.Group, r.MemberID, r.SessionTimeoutMillis, r.RebalanceTimeoutMillis = group, member, 30000, 30000
				r.ProtocolType = "consumer"
				r.Protocols = []kmsg.JoinGroupRequestProtocol{{Name: "range", Metadata: []byte("t100")}}
				return c.sendTo(via, r)
			}
			var toks []uint64
			for range members {
				toks = append(toks, join(""))
			}
			c.waitAll(b, toks)
			var ids []string
			for _, t := range toks {
				ids = append(ids, c.responses[t].(*kmsg.JoinGroupResponse).MemberID)
			}
			toks = toks[:0]
			for _, id := range ids {
				toks = append(toks, join(id))
			}
			c.waitAll(b, toks)
			var syncs []uint64
			var gen int32
			for j, t := range toks {
				jr := c.responses[t].(*kmsg.JoinGroupResponse)
				gen = jr.Generation
				r := kmsg.NewPtrSyncGroupRequest()
				r.SetVersion(5)
				r.Group, r.MemberID, r.Generation = group, ids[j], gen
				if jr.LeaderID == ids[j] {
					for k, m := range jr.Members {
						r.GroupAssignment = append(r.GroupAssignment, kmsg.SyncGroupRequestGroupAssignment{MemberID: m.MemberID, MemberAssignment: []byte{byte(k)}})
					}
				}
				syncs = append(syncs, c.sendTo(via, r))
			}
			c.waitAll(b, syncs)
			for _, t := range syncs {
				if code := c.responses[t].(*kmsg.SyncGroupResponse).ErrorCode; code != 0 {
					b.Fatalf("sync: %s", codeName(code))
				}
			}
		}
	})
	b.Run("consumer", func(b *testing.B) {
		topicID := c.brokers[0].b.meta.st.Topics["t100"].ID
		var rounds int
		for i := range b.N {
			group := fmt.Sprintf("consumer-%d", i)
			via := c.coordinatorOf(group)
			epochs := map[string]int32{}
			owned := map[string][]int32{}
			ids := make([]string, members)
			for m := range members {
				ids[m] = fmt.Sprintf("m%02d", m)
			}
			for round := 0; ; round++ {
				toks := make([]uint64, members)
				for m, id := range ids {
					r := kmsg.NewPtrConsumerGroupHeartbeatRequest()
					r.SetVersion(1)
					r.Group, r.MemberID, r.MemberEpoch = group, id, epochs[id]
					if epochs[id] == 0 {
						r.RebalanceTimeoutMillis, r.SubscribedTopicNames = 30000, []string{"t100"}
						r.Topics = []kmsg.ConsumerGroupHeartbeatRequestTopic{}
					} else {
						r.Topics = []kmsg.ConsumerGroupHeartbeatRequestTopic{{TopicID: topicID, Partitions: owned[id]}}
					}
					toks[m] = c.sendTo(via, r)
				}
				c.waitAll(b, toks)
				for m, t := range toks {
					hr := c.responses[t].(*kmsg.ConsumerGroupHeartbeatResponse)
					if hr.ErrorCode != 0 {
						b.Fatalf("heartbeat: %s", codeName(hr.ErrorCode))
					}
					epochs[ids[m]] = hr.MemberEpoch
					if hr.Assignment != nil {
						owned[ids[m]] = nil
						for _, at := range hr.Assignment.Topics {
							owned[ids[m]] = append(owned[ids[m]], at.Partitions...)
						}
					}
				}
				g := c.broker(via).b.parts[c.offsetsGroupOf(group, via)].coord.groups[group]
				if g.cons.stateName() == "Stable" {
					rounds += round + 1
					break
				}
				if round > 50 {
					b.Fatalf("not stable after %d rounds: %s", round, g.cons.stateName())
				}
			}
		}
		b.ReportMetric(float64(rounds)/float64(b.N), "heartbeat-rounds")
	})
}

// offsetsGroupOf is the raft group of group's __consumer_offsets partition.
func (c *testCluster) offsetsGroupOf(group string, via int32) raftlog.GroupID {
	pm, _ := c.broker(via).b.offsetsPartition(group)
	return pm.Group
}

// BenchmarkGroupRecovery10k: 10,000 groups with one committed offset
// each (and a classic group's metadata for every tenth), then one broker
// restarts: the figure is the restart, which reloads every coordinator
// partition it holds from its log; the bytes are that broker's
// __consumer_offsets segments.
//
//	go test -run '^$' -bench GroupRecovery10k -benchtime 3x ./engine/
func BenchmarkGroupRecovery10k(b *testing.B) {
	const groups = 10000
	var elapsed time.Duration
	var stored int64
	for range b.N {
		c, dir := diskCluster(b, 3)
		c.call(1, &kmsg.FindCoordinatorRequest{CoordinatorKey: "x"}, 10)
		c.tick(40)
		for start := 0; start < groups; start += 1000 {
			var toks []uint64
			for g := start; g < start+1000; g++ {
				name := fmt.Sprintf("group-%05d", g)
				r := kmsg.NewPtrOffsetCommitRequest()
				r.SetVersion(8)
				r.Group, r.Generation = name, -1
				r.Topics = []kmsg.OffsetCommitRequestTopic{{Topic: "t", Partitions: []kmsg.OffsetCommitRequestTopicPartition{{Partition: 0, Offset: int64(g), LeaderEpoch: -1}}}}
				toks = append(toks, c.sendTo(c.coordinatorOf(name), r))
			}
			c.waitAll(b, toks)
		}
		tb := c.brokers[0]
		stored = 0
		for _, p := range tb.b.parts {
			if p.coord != nil {
				p.log.Batches(p.log.StartOffset(), func(bb []byte, _ segment.BatchMeta) error {
					stored += int64(len(bb))
					return nil
				})
			}
		}
		if err := tb.b.Checkpoint(); err != nil {
			b.Fatal(err)
		}
		diskStop(tb)
		start := time.Now()
		diskStart(b, c, tb, dir)
		elapsed += time.Since(start)
		n := 0
		for _, p := range tb.b.parts {
			if p.coord != nil {
				n += len(p.coord.store.offsets)
			}
		}
		if n == 0 {
			b.Fatal("no groups reloaded")
		}
		for _, x := range c.brokers {
			diskStop(x)
		}
	}
	b.ReportMetric(elapsed.Seconds()/float64(b.N), "s/restart")
	b.ReportMetric(float64(stored)/1e6, "MB-stored")
}
