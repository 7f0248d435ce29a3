package main

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestGroupCoordinatorFailover kills a group's coordinator while a third
// member is joining (the group mid-rebalance): the members find the new
// coordinator and carry on,
// every record produced before and after is consumed, and no committed
// offset moves backwards.
func TestGroupCoordinatorFailover(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []kgo.Opt
	}{
		{"classic", []kgo.Opt{kgo.Balancers(kgo.CooperativeStickyBalancer())}},
		// No KIP-848 variant: franz-go v1.22.3's ConsumerGroupHeartbeat
		// loop keeps retrying the coordinator it has cached after its
		// broker died (dial errors do not make it look the coordinator up
		// again), so its members never reach the new one; measured here
		// on 2026-12-02 (a, b and a joining c kept heartbeating the dead
		// broker for 60 s). The engine's KIP-848 failover is tested in
		// engine/testdata/group_consumer_failover.txt.
	} {
		t.Run(tc.name, func(t *testing.T) {
			const partitions = 6
			topic, group := "failover-"+tc.name, "failover-"+tc.name+"-group"
			rng := groupsRand(t)
			c := startLiveCluster(t)
			cl := groupsProducer(c)
			adm := kadm.NewClient(cl)
			groupCreateTopic(t, cl, topic, partitions)
			a := startKgoMember(t, c, "fo-a", group, topic, tc.opts...)
			b := startKgoMember(t, c, "fo-b", group, topic, tc.opts...)
			waitFor(t, "both members assigned", func() (bool, string) {
				return disjointCover(partitions, a.assignment(), b.assignment()), fmt.Sprint(a.assignment(), b.assignment())
			})
			produceGroupRecords(t, cl, rng, topic, partitions, "before", 0, 300)
			waitGroupCommitted(t, adm, group, topic, groupsEndOffsets(t, adm, topic))
			before, err := groupsCommitted(adm, group, topic)
			if err != nil {
				t.Fatal(err)
			}

			req := kmsg.NewPtrFindCoordinatorRequest()
			req.CoordinatorKey = group
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			resp, err := req.RequestWith(ctx, cl)
			cancel()
			if err != nil || resp.ErrorCode != 0 {
				t.Fatalf("FindCoordinator: %v %+v", err, resp)
			}
			m3 := startKgoMember(t, c, "fo-c", group, topic, tc.opts...)
			t.Logf("stopping broker %d, the coordinator, while fo-c joins", resp.NodeID)
			c.stop(resp.NodeID)

			// A fresh admin client, seeded with the live brokers: kgo's
			// sharded OffsetFetch path keeps a dead coordinator cached
			// after a failed dial (the members' own group path does not).
			var live []string
			for i, s := range c.seeds() {
				if int32(i+1) != resp.NodeID {
					live = append(live, s)
				}
			}
			adm = kadm.NewClient(c.client(kgo.SeedBrokers(live...)))
			produceGroupRecords(t, cl, rng, topic, partitions, "after", 0, 300)
			want := groupValues("after", 0, 300)
			for v := range groupValues("before", 0, 300) {
				want[v] = true
			}
			members := []*kgoMember{a, b, m3}
			waitFor(t, "every record consumed by some member", func() (bool, string) {
				k, some := missingValues(want, func(v string) bool {
					for _, m := range members {
						m.mu.Lock()
						n := m.got[v]
						m.mu.Unlock()
						if n > 0 {
							return true
						}
					}
					return false
				})
				return k == 0, fmt.Sprintf("%d missing, e.g. %v", k, some)
			})
			waitGroupCommitted(t, adm, group, topic, groupsEndOffsets(t, adm, topic))
			after, err := groupsCommitted(adm, group, topic)
			if err != nil {
				t.Fatal(err)
			}
			for p, off := range before {
				if after[p] < off {
					t.Errorf("partition %d: committed offset went back from %d to %d across the failover", p, off, after[p])
				}
			}
			waitFor(t, "the three members to share the partitions", func() (bool, string) {
				return disjointCover(partitions, a.assignment(), b.assignment(), m3.assignment()),
					fmt.Sprint(a.assignment(), b.assignment(), m3.assignment())
			})
		})
	}
}
