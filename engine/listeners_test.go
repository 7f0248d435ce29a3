package engine

// Kafka tells a client, of every broker, the address of the listener the
// client came through, and leaves out brokers without it.

import (
	"fmt"
	"slices"
	"testing"
	"testing/cryptotest"

	"github.com/cockroachdb/datadriven"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// callAs is call for a request that came through listener.
func (c *testCluster) callAs(via int32, listener string, req kmsg.Request) kmsg.Response {
	c.t.Helper()
	c.token++
	tok := c.token
	c.broker(via).b.HandleClient(tok, req, Client{ID: "test", Host: "127.0.0.1", Listener: listener, Principal: "User:ANONYMOUS"})
	c.stabilize()
	for i := 0; !c.answered[tok] && i < 60; i++ {
		c.tick(1)
	}
	if !c.answered[tok] {
		c.t.Fatalf("%s via %s: no answer", kmsg.NameForKey(req.Key()), listener)
	}
	return wire(c.t, c.responses[tok])
}

func TestMetadataAnswersTheClientsListener(t *testing.T) {
	cryptotest.SetGlobalRandom(t, 1)
	c := &testCluster{t: t}
	// Brokers 1 and 2 have an INTERNAL and an EXTERNAL listener, broker 3
	// only INTERNAL.
	c.tune = func(cfg *Config) {
		for i, bi := range cfg.Cluster {
			cfg.Cluster[i].Listeners = []Endpoint{{Name: "INTERNAL", Host: "int", Port: 1000 + bi.ID}}
			if bi.ID != 3 {
				cfg.Cluster[i].Listeners = append(cfg.Cluster[i].Listeners, Endpoint{Name: "EXTERNAL", Host: "ext", Port: 2000 + bi.ID})
			}
		}
	}
	c.run(t, &datadriven.TestData{Cmd: "add-brokers"})
	c.run(t, &datadriven.TestData{Cmd: "create-topic", CmdArgs: []datadriven.CmdArg{{Key: "partitions", Vals: []string{"3"}}}})

	brokers := func(resp *kmsg.MetadataResponse) []string {
		var out []string
		for _, b := range resp.Brokers {
			out = append(out, fmt.Sprintf("%d=%s:%d", b.NodeID, b.Host, b.Port))
		}
		return out
	}
	for _, tc := range []struct {
		listener string
		want     []string
	}{
		{"INTERNAL", []string{"1=int:1001", "2=int:1002", "3=int:1003"}},
		{"EXTERNAL", []string{"1=ext:2001", "2=ext:2002"}},
		{"", []string{"1=127.0.0.1:9092", "2=127.0.0.1:9093", "3=127.0.0.1:9094"}},
	} {
		resp := c.callAs(1, tc.listener, kmsg.NewPtrMetadataRequest()).(*kmsg.MetadataResponse)
		if got := brokers(resp); !slices.Equal(got, tc.want) {
			t.Errorf("Metadata via %q: brokers %v, want %v", tc.listener, got, tc.want)
		}
		led3 := 0
		for _, p := range resp.Topics[0].Partitions {
			if tc.listener == "EXTERNAL" && slices.Contains(p.Replicas, 3) && p.Replicas[0] == 3 {
				led3++
				if p.ErrorCode != kerr.ListenerNotFound.Code || p.Leader != -1 {
					t.Errorf("via EXTERNAL, partition %d led by broker 3: error %d leader %d, want LISTENER_NOT_FOUND and -1", p.Partition, p.ErrorCode, p.Leader)
				}
			} else if p.ErrorCode != 0 {
				t.Errorf("via %q, partition %d: error %d", tc.listener, p.Partition, p.ErrorCode)
			}
		}
		if tc.listener == "EXTERNAL" && led3 != 1 {
			t.Errorf("%d partitions led by broker 3, want 1 (placement changed?)", led3)
		}

		dc := c.callAs(1, tc.listener, kmsg.NewPtrDescribeClusterRequest()).(*kmsg.DescribeClusterResponse)
		var got []string
		for _, b := range dc.Brokers {
			got = append(got, fmt.Sprintf("%d=%s:%d", b.NodeID, b.Host, b.Port))
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("DescribeCluster via %q: brokers %v, want %v", tc.listener, got, tc.want)
		}
	}

	// A coordinator without the client's listener is not available to it.
	var onThree, onOne string
	for i := range 200 {
		g := fmt.Sprintf("g%d", i)
		resp := c.callAs(1, "INTERNAL", &kmsg.FindCoordinatorRequest{Version: 3, CoordinatorKey: g}).(*kmsg.FindCoordinatorResponse)
		if resp.ErrorCode != 0 {
			continue // the topic is being created
		}
		switch resp.NodeID {
		case 3:
			onThree = g
		case 1:
			onOne = g
		}
		if onThree != "" && onOne != "" {
			break
		}
	}
	if onThree == "" || onOne == "" {
		t.Fatalf("no group found coordinated by brokers 1 and 3")
	}
	resp := c.callAs(1, "EXTERNAL", &kmsg.FindCoordinatorRequest{Version: 3, CoordinatorKey: onThree}).(*kmsg.FindCoordinatorResponse)
	if resp.ErrorCode != kerr.CoordinatorNotAvailable.Code {
		t.Errorf("FindCoordinator via EXTERNAL for a group on broker 3: error %d node %d, want COORDINATOR_NOT_AVAILABLE", resp.ErrorCode, resp.NodeID)
	}
	resp = c.callAs(1, "EXTERNAL", &kmsg.FindCoordinatorRequest{Version: 3, CoordinatorKey: onOne}).(*kmsg.FindCoordinatorResponse)
	if resp.ErrorCode != 0 || resp.Host != "ext" || resp.Port != 2001 {
		t.Errorf("FindCoordinator via EXTERNAL for a group on broker 1: error %d at %s:%d, want ext:2001", resp.ErrorCode, resp.Host, resp.Port)
	}
}
