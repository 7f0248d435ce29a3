package engine

import (
	"slices"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestAPIVersions pins what Gregor advertises: the registrations in the
// NN_name.go files, sorted by key. Changing a range is a compatibility
// decision (docs/compatibility.md), not a side effect.
func TestAPIVersions(t *testing.T) {
	want := []APIVersion{
		{int16(kmsg.Produce), 3, 12},
		{int16(kmsg.Fetch), 4, 12},
		{int16(kmsg.ListOffsets), 1, 7},
		{int16(kmsg.Metadata), 0, 12},
		{int16(kmsg.OffsetCommit), 0, 9},
		{int16(kmsg.OffsetFetch), 0, 9},
		{int16(kmsg.FindCoordinator), 0, 6},
		{int16(kmsg.JoinGroup), 0, 9},
		{int16(kmsg.Heartbeat), 0, 4},
		{int16(kmsg.LeaveGroup), 0, 5},
		{int16(kmsg.SyncGroup), 0, 5},
		{int16(kmsg.DescribeGroups), 0, 5},
		{int16(kmsg.ListGroups), 0, 5},
		{int16(kmsg.ApiVersions), 0, 3},
		{int16(kmsg.CreateTopics), 2, 7},
		{int16(kmsg.DeleteTopics), 1, 6},
		{int16(kmsg.DeleteRecords), 0, 2},
		{int16(kmsg.InitProducerID), 0, 4},
		{int16(kmsg.OffsetForLeaderEpoch), 2, 4},
		{int16(kmsg.AddPartitionsToTxn), 0, 5},
		{int16(kmsg.AddOffsetsToTxn), 0, 4},
		{int16(kmsg.EndTxn), 0, 5},

		{int16(kmsg.WriteTxnMarkers), 0, 2},
		{int16(kmsg.TxnOffsetCommit), 0, 5},
		{int16(kmsg.DescribeACLs), 0, 3},
		{int16(kmsg.CreateACLs), 0, 3},
		{int16(kmsg.DeleteACLs), 0, 3},
		{int16(kmsg.DescribeConfigs), 0, 4},
		{int16(kmsg.AlterConfigs), 0, 2},
		{int16(kmsg.DescribeLogDirs), 0, 4},
		{int16(kmsg.CreatePartitions), 0, 3},
		{int16(kmsg.DeleteGroups), 0, 2},
		{int16(kmsg.IncrementalAlterConfigs), 0, 1},
		{int16(kmsg.OffsetDelete), 0, 0},
		{int16(kmsg.DescribeUserSCRAMCredentials), 0, 0},
		{int16(kmsg.AlterUserSCRAMCredentials), 0, 0},
		{int16(kmsg.DescribeCluster), 0, 1},
		{int16(kmsg.DescribeProducers), 0, 0},
		{int16(kmsg.DescribeTransactions), 0, 0},
		{int16(kmsg.ListTransactions), 0, 2},
		{int16(kmsg.ConsumerGroupHeartbeat), 0, 1},
		{int16(kmsg.ConsumerGroupDescribe), 0, 1},
	}
	if got := APIVersions(); !slices.Equal(got, want) {
		t.Fatalf("APIVersions() = %v\nwant %v", got, want)
	}
}

// TestRegKeyRejects checks that a registration naming the wrong request
// type, a bad range or a key already taken panics at init, not at the
// first request.
func TestRegKeyRejects(t *testing.T) {
	for name, reg := range map[string]func(){
		"wrong request type": func() {
			regKey(kmsg.SASLHandshake, 0, 1, (*Broker).handleProduce)
		},
		"max below min": func() {
			regKey(kmsg.SASLHandshake, 1, 0, func(*Broker, uint64, *kmsg.SASLHandshakeRequest) {})
		},
		"max above kmsg's": func() {
			regKey(kmsg.SASLHandshake, 0, 1000, func(*Broker, uint64, *kmsg.SASLHandshakeRequest) {})
		},
		"twice": func() {
			regKey(kmsg.Produce, 3, 9, (*Broker).handleProduce)
		},
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Fatal("regKey did not panic")
				}
			}()
			reg()
		})
	}
	if _, ok := apis[int16(kmsg.SASLHandshake)]; ok {
		t.Fatal("a rejected registration was kept")
	}
}

// TestMetadataInvalidTopicName: a name Kafka's rules refuse is
// INVALID_TOPIC_EXCEPTION, with auto-creation on or off, as Kafka answers;
// a valid unknown one UNKNOWN_TOPIC_OR_PARTITION (issue 14).
func TestMetadataInvalidTopicName(t *testing.T) {
	c := &testCluster{t: t}
	c.run(t, cmd("add-brokers n=1"))
	for _, auto := range []bool{false, true} {
		c.broker(1).b.cfg.AutoCreateTopics = auto
		req := kmsg.NewPtrMetadataRequest()
		req.SetVersion(12)
		req.AllowAutoTopicCreation = auto
		for _, n := range []string{"bad$#!", "..", "fine-but-absent"} {
			rt := kmsg.NewMetadataRequestTopic()
			rt.Topic = kmsg.StringPtr(n)
			req.Topics = append(req.Topics, rt)
		}
		resp, ok := c.call(1, req, 10)
		if !ok {
			t.Fatal("no answer")
		}
		var got []string
		for _, mt := range resp.(*kmsg.MetadataResponse).Topics {
			got = append(got, *mt.Topic+"="+codeName(mt.ErrorCode))
		}
		// Auto-created or not, the topic is unknown until it exists (as
		// Kafka 4 answers: cmd/gregor/testdata/conformance).
		want := "bad$#!=INVALID_TOPIC_EXCEPTION ..=INVALID_TOPIC_EXCEPTION fine-but-absent=UNKNOWN_TOPIC_OR_PARTITION"
		if strings.Join(got, " ") != want {
			t.Errorf("auto-create %v: %s\nwant %s", auto, strings.Join(got, " "), want)
		}
	}
}
