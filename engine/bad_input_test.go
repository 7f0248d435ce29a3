package engine

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/gregor-streaming/gregor/engine/batch"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Requests that decode but are wrong, answered as Kafka answers them
// (issue 14, item 5; cmd/gregor/testdata/conformance/17_bad_input.txt).

// TestCreateTopicsCollidingName: a name that differs from an existing
// topic's only in '.' against '_' is INVALID_TOPIC_EXCEPTION; the existing
// name itself stays TOPIC_ALREADY_EXISTS.
func TestCreateTopicsCollidingName(t *testing.T) {
	c := &testCluster{t: t}
	c.run(t, cmd("add-brokers n=1"))
	c.run(t, cmd("create-topic name=a.b partitions=1 rf=1"))
	req := kmsg.NewPtrCreateTopicsRequest()
	req.SetVersion(7)
	for _, n := range []string{"a_b", "a.b", "a-b"} {
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic, rt.NumPartitions, rt.ReplicationFactor = n, 1, 1
		req.Topics = append(req.Topics, rt)
	}
	req.ValidateOnly = true
	resp, ok := c.call(1, req, 10)
	if !ok {
		t.Fatal("no answer")
	}
	var got []string
	for _, rt := range resp.(*kmsg.CreateTopicsResponse).Topics {
		got = append(got, rt.Topic+"="+codeName(rt.ErrorCode))
	}
	want := "a_b=INVALID_TOPIC_EXCEPTION a.b=TOPIC_ALREADY_EXISTS a-b=ok"
	if strings.Join(got, " ") != want {
		t.Fatalf("got %s\nwant %s", strings.Join(got, " "), want)
	}
}

// TestDescribeConfigsInvalidTopicName: a topic name no topic can have is
// INVALID_TOPIC_EXCEPTION, a valid unknown one UNKNOWN_TOPIC_OR_PARTITION.
func TestDescribeConfigsInvalidTopicName(t *testing.T) {
	c := &testCluster{t: t}
	c.run(t, cmd("add-brokers n=1"))
	req := kmsg.NewPtrDescribeConfigsRequest()
	req.SetVersion(4)
	for _, n := range []string{"", strings.Repeat("x", 250), "bad$#!", "absent"} {
		rr := kmsg.NewDescribeConfigsRequestResource()
		rr.ResourceType, rr.ResourceName = kmsg.ConfigResourceTypeTopic, n
		req.Resources = append(req.Resources, rr)
	}
	resp, ok := c.call(1, req, 10)
	if !ok {
		t.Fatal("no answer")
	}
	var got []string
	for _, r := range resp.(*kmsg.DescribeConfigsResponse).Resources {
		got = append(got, codeName(r.ErrorCode))
	}
	want := "INVALID_TOPIC_EXCEPTION INVALID_TOPIC_EXCEPTION INVALID_TOPIC_EXCEPTION UNKNOWN_TOPIC_OR_PARTITION"
	if strings.Join(got, " ") != want {
		t.Fatalf("got %s\nwant %s", strings.Join(got, " "), want)
	}
}

// TestDeleteTopicsInvalidEntries: v6 entries with neither a name nor an
// id, or with both, and a name given twice are INVALID_REQUEST (the
// duplicate once) and not deleted; an empty name is an unknown topic.
func TestDeleteTopicsInvalidEntries(t *testing.T) {
	c := &testCluster{t: t}
	c.run(t, cmd("add-brokers n=1"))
	c.run(t, cmd("create-topic name=dup partitions=1 rf=1"))
	req := kmsg.NewPtrDeleteTopicsRequest()
	req.SetVersion(6)
	for _, e := range []struct {
		name *string
		id   byte
	}{{nil, 0}, {kmsg.StringPtr("x"), 1}, {kmsg.StringPtr("dup"), 0}, {kmsg.StringPtr("dup"), 0}, {kmsg.StringPtr(""), 0}} {
		rt := kmsg.NewDeleteTopicsRequestTopic()
		rt.Topic, rt.TopicID[0] = e.name, e.id
		req.Topics = append(req.Topics, rt)
	}
	resp, ok := c.call(1, req, 50)
	if !ok {
		t.Fatal("no answer")
	}
	var got []string
	for _, rt := range resp.(*kmsg.DeleteTopicsResponse).Topics {
		n := "<null>"
		if rt.Topic != nil {
			n = *rt.Topic
		}
		got = append(got, n+"="+codeName(rt.ErrorCode))
	}
	want := "<null>=INVALID_REQUEST x=INVALID_REQUEST dup=INVALID_REQUEST =UNKNOWN_TOPIC_OR_PARTITION"
	if strings.Join(got, " ") != want {
		t.Fatalf("got %s\nwant %s", strings.Join(got, " "), want)
	}
	if _, ok := c.broker(1).b.meta.st.Topics["dup"]; !ok {
		t.Fatal("a topic named twice was deleted")
	}
}

// TestFetchSessionEpochs: a full fetch (epoch 0 or -1) is served whatever
// session id it names; an incremental one (any other epoch) is
// FETCH_SESSION_ID_NOT_FOUND, session id 0 included.
func TestFetchSessionEpochs(t *testing.T) {
	c := &testCluster{t: t}
	c.run(t, cmd("add-brokers n=1"))
	c.run(t, cmd("create-topic name=t partitions=1 rf=1"))
	for _, tc := range []struct {
		id, epoch int32
		want      string
	}{{0, -1, "ok"}, {12345, 0, "ok"}, {12345, -1, "ok"}, {12345, 1, "FETCH_SESSION_ID_NOT_FOUND"}, {0, 5, "FETCH_SESSION_ID_NOT_FOUND"}} {
		req := kmsg.NewPtrFetchRequest()
		req.SetVersion(12)
		req.SessionID, req.SessionEpoch = tc.id, tc.epoch
		req.MaxWaitMillis, req.MinBytes = 0, 1
		rt := kmsg.NewFetchRequestTopic()
		rt.Topic = "t"
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.PartitionMaxBytes = 1 << 20
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		resp, ok := c.call(1, req, 50)
		if !ok {
			t.Fatalf("session %d epoch %d: no answer", tc.id, tc.epoch)
		}
		if got := codeName(resp.(*kmsg.FetchResponse).ErrorCode); got != tc.want {
			t.Errorf("session %d epoch %d: %s, want %s", tc.id, tc.epoch, got, tc.want)
		}
	}
}

// TestDuplicateTopicOneAnswer: CreateTopics and CreatePartitions answer a
// name given twice once, INVALID_REQUEST, and act on the others only.
func TestDuplicateTopicOneAnswer(t *testing.T) {
	c := &testCluster{t: t}
	c.run(t, cmd("add-brokers n=1"))
	c.run(t, cmd("create-topic name=grow partitions=1 rf=1"))
	ct := kmsg.NewPtrCreateTopicsRequest()
	ct.SetVersion(7)
	ct.ValidateOnly = true
	for _, n := range []string{"d", "e", "d", "d"} {
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic, rt.NumPartitions, rt.ReplicationFactor = n, 1, 1
		ct.Topics = append(ct.Topics, rt)
	}
	resp, ok := c.call(1, ct, 10)
	if !ok {
		t.Fatal("CreateTopics: no answer")
	}
	var got []string
	for _, rt := range resp.(*kmsg.CreateTopicsResponse).Topics {
		got = append(got, rt.Topic+"="+codeName(rt.ErrorCode))
	}
	if want := "d=INVALID_REQUEST e=ok"; strings.Join(got, " ") != want {
		t.Errorf("CreateTopics: got %s\nwant %s", strings.Join(got, " "), want)
	}
	cp := kmsg.NewPtrCreatePartitionsRequest()
	cp.SetVersion(3)
	for _, n := range []int32{3, 4} {
		rt := kmsg.NewCreatePartitionsRequestTopic()
		rt.Topic, rt.Count = "grow", n
		cp.Topics = append(cp.Topics, rt)
	}
	resp, ok = c.call(1, cp, 10)
	if !ok {
		t.Fatal("CreatePartitions: no answer")
	}
	got = nil
	for _, rt := range resp.(*kmsg.CreatePartitionsResponse).Topics {
		got = append(got, rt.Topic+"="+codeName(rt.ErrorCode))
	}
	if want := "grow=INVALID_REQUEST"; strings.Join(got, " ") != want {
		t.Errorf("CreatePartitions: got %s\nwant %s", strings.Join(got, " "), want)
	}
	if n := len(c.broker(1).b.meta.st.Topics["grow"].Partitions); n != 1 {
		t.Errorf("grow has %d partitions, want 1", n)
	}
}

// TestEmptyTransactionalID: EndTxn and AddPartitionsToTxn with an empty
// transactional id are INVALID_REQUEST, as Kafka's coordinator answers.
func TestEmptyTransactionalID(t *testing.T) {
	c := &testCluster{t: t}
	c.run(t, cmd("add-brokers n=1"))
	c.run(t, cmd("create-topic name=t partitions=1 rf=1"))
	et := kmsg.NewPtrEndTxnRequest()
	et.SetVersion(4)
	et.ProducerID, et.Commit = 1, true
	resp, ok := c.call(1, et, 50)
	if !ok {
		t.Fatal("EndTxn: no answer")
	}
	if got := codeName(resp.(*kmsg.EndTxnResponse).ErrorCode); got != "INVALID_REQUEST" {
		t.Errorf("EndTxn: %s, want INVALID_REQUEST", got)
	}
	ap := kmsg.NewPtrAddPartitionsToTxnRequest()
	ap.SetVersion(3)
	ap.ProducerID = 1
	at := kmsg.NewAddPartitionsToTxnRequestTopic()
	at.Topic, at.Partitions = "t", []int32{0}
	ap.Topics = append(ap.Topics, at)
	resp, ok = c.call(1, ap, 50)
	if !ok {
		t.Fatal("AddPartitionsToTxn: no answer")
	}
	if got := codeName(resp.(*kmsg.AddPartitionsToTxnResponse).Topics[0].Partitions[0].ErrorCode); got != "INVALID_REQUEST" {
		t.Errorf("AddPartitionsToTxn: %s, want INVALID_REQUEST", got)
	}
}

// TestAlterConfigsTopicNames: an empty topic name is INVALID_REQUEST, an
// illegal one INVALID_TOPIC_EXCEPTION, a valid unknown one
// UNKNOWN_TOPIC_OR_PARTITION.
func TestAlterConfigsTopicNames(t *testing.T) {
	c := &testCluster{t: t}
	c.run(t, cmd("add-brokers n=1"))
	req := kmsg.NewPtrIncrementalAlterConfigsRequest()
	req.SetVersion(1)
	for _, n := range []string{"", "bad$#!", "absent"} {
		rr := kmsg.NewIncrementalAlterConfigsRequestResource()
		rr.ResourceType, rr.ResourceName = kmsg.ConfigResourceTypeTopic, n
		rc := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
		rc.Name, rc.Value = "retention.ms", kmsg.StringPtr("1000")
		rr.Configs = append(rr.Configs, rc)
		req.Resources = append(req.Resources, rr)
	}
	resp, ok := c.call(1, req, 50)
	if !ok {
		t.Fatal("no answer")
	}
	var got []string
	for _, r := range resp.(*kmsg.IncrementalAlterConfigsResponse).Resources {
		got = append(got, codeName(r.ErrorCode))
	}
	if want := "INVALID_REQUEST INVALID_TOPIC_EXCEPTION UNKNOWN_TOPIC_OR_PARTITION"; strings.Join(got, " ") != want {
		t.Fatalf("got %s\nwant %s", strings.Join(got, " "), want)
	}
}

// TestEmptyGroupIDCommit: the empty group id takes an admin commit
// (generation -1) and answers OffsetFetch with it, as Kafka; OffsetDelete
// refuses it.
func TestEmptyGroupIDCommit(t *testing.T) {
	c := &testCluster{t: t}
	c.run(t, cmd("add-brokers n=1"))
	c.run(t, cmd("create-topic name=t partitions=1 rf=1"))
	for range 20 {
		fc := kmsg.NewPtrFindCoordinatorRequest()
		if resp, ok := c.call(1, fc, 10); ok && resp.(*kmsg.FindCoordinatorResponse).ErrorCode == 0 {
			break
		}
	}
	oc := kmsg.NewPtrOffsetCommitRequest()
	oc.SetVersion(8)
	oc.Generation = -1
	ot := kmsg.NewOffsetCommitRequestTopic()
	ot.Topic = "t"
	op := kmsg.NewOffsetCommitRequestTopicPartition()
	op.Offset = 7
	ot.Partitions = append(ot.Partitions, op)
	oc.Topics = append(oc.Topics, ot)
	resp, ok := c.call(1, oc, 50)
	if !ok {
		t.Fatal("OffsetCommit: no answer")
	}
	if got := codeName(resp.(*kmsg.OffsetCommitResponse).Topics[0].Partitions[0].ErrorCode); got != "ok" {
		t.Fatalf("OffsetCommit: %s, want ok", got)
	}
	of := kmsg.NewPtrOffsetFetchRequest()
	of.SetVersion(7)
	ft := kmsg.NewOffsetFetchRequestTopic()
	ft.Topic, ft.Partitions = "t", []int32{0}
	of.Topics = append(of.Topics, ft)
	resp, ok = c.call(1, of, 50)
	if !ok {
		t.Fatal("OffsetFetch: no answer")
	}
	fr := resp.(*kmsg.OffsetFetchResponse)
	if fr.ErrorCode != 0 || fr.Topics[0].Partitions[0].Offset != 7 {
		t.Fatalf("OffsetFetch: %s, offset %d; want ok, 7", codeName(fr.ErrorCode), fr.Topics[0].Partitions[0].Offset)
	}
	od := kmsg.NewPtrOffsetDeleteRequest()
	resp, ok = c.call(1, od, 50)
	if !ok {
		t.Fatal("OffsetDelete: no answer")
	}
	if got := codeName(resp.(*kmsg.OffsetDeleteResponse).ErrorCode); got != "INVALID_GROUP_ID" {
		t.Fatalf("OffsetDelete: %s, want INVALID_GROUP_ID", got)
	}
}

// TestCreateTopicsRequestWide: a negative timeout is REQUEST_TIMED_OUT and
// more than 10,000 partitions in the request POLICY_VIOLATION, for every
// topic of the request, as Kafka's controller answers.
func TestCreateTopicsRequestWide(t *testing.T) {
	c := &testCluster{t: t}
	c.run(t, cmd("add-brokers n=1"))
	for _, tc := range []struct {
		timeout int32
		parts   []int32
		want    string
	}{
		{-1, []int32{1, 2}, "REQUEST_TIMED_OUT REQUEST_TIMED_OUT"},
		{10000, []int32{6000, 5000}, "POLICY_VIOLATION POLICY_VIOLATION"},
		{10000, []int32{1, 100000000}, "POLICY_VIOLATION POLICY_VIOLATION"},
		{10000, []int32{1, 2}, "ok ok"},
	} {
		req := kmsg.NewPtrCreateTopicsRequest()
		req.SetVersion(7)
		req.TimeoutMillis, req.ValidateOnly = tc.timeout, true
		for i, n := range tc.parts {
			rt := kmsg.NewCreateTopicsRequestTopic()
			rt.Topic, rt.NumPartitions, rt.ReplicationFactor = fmt.Sprintf("t%d", i), n, 1
			req.Topics = append(req.Topics, rt)
		}
		resp, ok := c.call(1, req, 10)
		if !ok {
			t.Fatal("no answer")
		}
		var got []string
		for _, rt := range resp.(*kmsg.CreateTopicsResponse).Topics {
			got = append(got, codeName(rt.ErrorCode))
		}
		if strings.Join(got, " ") != tc.want {
			t.Errorf("timeout %d, partitions %v: got %s, want %s", tc.timeout, tc.parts, strings.Join(got, " "), tc.want)
		}
	}
}

// TestProduceDuplicatePartition: a partition named twice is written once,
// with the last entry's records, and answered once; an empty record set
// or a truncated batch is INVALID_RECORD without a message.
func TestProduceDuplicatePartition(t *testing.T) {
	c := &testCluster{t: t}
	c.run(t, cmd("add-brokers n=1"))
	c.run(t, cmd("create-topic name=t partitions=1 rf=1"))
	one := batch.Build(batch.BuildOptions{ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1}, []batch.Record{{Value: []byte("v")}})
	req := kmsg.NewPtrProduceRequest()
	req.SetVersion(9)
	req.Acks, req.TimeoutMillis = -1, 5000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = "t"
	for range 2 {
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Records = one
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt, rt)
	resp, ok := c.call(1, req, 50)
	if !ok {
		t.Fatal("no answer")
	}
	pr := resp.(*kmsg.ProduceResponse)
	if len(pr.Topics) != 1 || len(pr.Topics[0].Partitions) != 1 || pr.Topics[0].Partitions[0].ErrorCode != 0 {
		t.Fatalf("answer %+v, want one partition, ok", pr.Topics)
	}
	req.Topics = req.Topics[:1]
	req.Topics[0].Partitions = req.Topics[0].Partitions[:1]
	resp, ok = c.call(1, req, 50)
	if !ok {
		t.Fatal("no answer")
	}
	if base := resp.(*kmsg.ProduceResponse).Topics[0].Partitions[0].BaseOffset; base != 1 {
		t.Fatalf("next base offset %d, want 1 (the duplicate written once)", base)
	}
	req.Topics[0].Partitions[0].Records = []byte{}
	resp, ok = c.call(1, req, 50)
	if !ok {
		t.Fatal("no answer")
	}
	if p := resp.(*kmsg.ProduceResponse).Topics[0].Partitions[0]; codeName(p.ErrorCode) != "INVALID_RECORD" || p.ErrorMessage != nil {
		t.Fatalf("empty records: %s, message %v; want INVALID_RECORD, none", codeName(p.ErrorCode), p.ErrorMessage)
	}
	req.Topics[0].Partitions[0].Records = one[:len(one)-1]
	resp, ok = c.call(1, req, 50)
	if !ok {
		t.Fatal("no answer")
	}
	if p := resp.(*kmsg.ProduceResponse).Topics[0].Partitions[0]; codeName(p.ErrorCode) != "INVALID_RECORD" || p.ErrorMessage != nil {
		t.Fatalf("truncated batch: %s, message %v; want INVALID_RECORD, none", codeName(p.ErrorCode), p.ErrorMessage)
	}
}

// Produce v3+ carries exactly one batch per partition, as Kafka's
// ProduceRequest.validateRecords: a second whole batch is INVALID_RECORD
// (a second size field under the minimum CORRUPT_MESSAGE), without a
// message; bytes after the batch too short to be one are dropped.
func TestProduceOneBatch(t *testing.T) {
	c := &testCluster{t: t}
	c.run(t, cmd("add-brokers n=1"))
	c.run(t, cmd("create-topic name=t partitions=1 rf=1"))
	one := oneRecord("v")
	produce := func(records []byte) kmsg.ProduceResponseTopicPartition {
		t.Helper()
		resp, ok := c.call(1, produceRequest(9, "t", records), 50)
		if !ok {
			t.Fatal("no answer")
		}
		return resp.(*kmsg.ProduceResponse).Topics[0].Partitions[0]
	}
	cat := func(parts ...[]byte) []byte { return slices.Concat(parts...) }
	for _, tc := range []struct {
		name    string
		records []byte
		code    string
		base    int64
	}{
		{"two batches", cat(one, one), "INVALID_RECORD", -1},
		{"a second size under the minimum", cat(one, make([]byte, 12)), "CORRUPT_MESSAGE", -1},
		{"5 bytes after", cat(one, make([]byte, 5)), "ok", 0},
		{"a part of a second batch", cat(one, one[:len(one)-1]), "ok", 1},
		{"one batch", one, "ok", 2},
	} {
		p := produce(tc.records)
		if codeName(p.ErrorCode) != tc.code || p.ErrorMessage != nil || p.BaseOffset != tc.base {
			t.Errorf("%s: %s (message %s) at %d; want %s, no message, at %d", tc.name, codeName(p.ErrorCode), deref(p.ErrorMessage), p.BaseOffset, tc.code, tc.base)
		}
	}
}

// ListOffsets answers a partition named more than once once,
// INVALID_REQUEST, and a topic named more than once once, as Kafka does.
func TestListOffsetsDuplicatePartition(t *testing.T) {
	c := &testCluster{t: t}
	c.run(t, cmd("add-brokers n=1"))
	c.run(t, cmd("create-topic name=t partitions=2 rf=1"))
	req := kmsg.NewPtrListOffsetsRequest()
	req.SetVersion(7)
	for _, parts := range [][]int32{{0, 1}, {1}} {
		rt := kmsg.NewListOffsetsRequestTopic()
		rt.Topic = "t"
		for _, p := range parts {
			rp := kmsg.NewListOffsetsRequestTopicPartition()
			rp.Partition, rp.Timestamp = p, -1
			rt.Partitions = append(rt.Partitions, rp)
		}
		req.Topics = append(req.Topics, rt)
	}
	resp, ok := c.call(1, req, 50)
	if !ok {
		t.Fatal("no answer")
	}
	var got []string
	for _, rt := range resp.(*kmsg.ListOffsetsResponse).Topics {
		for _, p := range rt.Partitions {
			got = append(got, fmt.Sprintf("%s/%d %s offset %d", rt.Topic, p.Partition, codeName(p.ErrorCode), p.Offset))
		}
	}
	want := []string{"t/0 ok offset 0", "t/1 INVALID_REQUEST offset -1"}
	if !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

// TestNamedTwice: namedTwice finds a repeated topic or partition in small
// requests (compared pairwise) and large ones (through a set) alike.
func TestNamedTwice(t *testing.T) {
	req := func(topics int, parts int, dupTopic, dupPart bool) *kmsg.ListOffsetsRequest {
		r := kmsg.NewPtrListOffsetsRequest()
		for i := range topics {
			rt := kmsg.NewListOffsetsRequestTopic()
			rt.Topic = fmt.Sprint("t", i)
			if dupTopic && i == topics-1 {
				rt.Topic = "t0"
			}
			for k := range parts {
				rp := kmsg.NewListOffsetsRequestTopicPartition()
				rp.Partition = int32(k)
				if dupPart && i == 0 && k == parts-1 {
					rp.Partition = 0
				}
				rt.Partitions = append(rt.Partitions, rp)
			}
			r.Topics = append(r.Topics, rt)
		}
		return r
	}
	for _, n := range []int{3, namedTwiceSmall + 5} {
		for _, tc := range []struct{ dupTopic, dupPart, want bool }{{false, false, false}, {true, false, true}, {false, true, true}} {
			r := req(n, n, tc.dupTopic, tc.dupPart)
			got := namedTwice(r.Topics, func(t *kmsg.ListOffsetsRequestTopic) string { return t.Topic },
				func(t *kmsg.ListOffsetsRequestTopic) []kmsg.ListOffsetsRequestTopicPartition { return t.Partitions },
				func(p *kmsg.ListOffsetsRequestTopicPartition) int32 { return p.Partition })
			if got != tc.want {
				t.Errorf("%d topics of %d partitions, topic twice %v, partition twice %v: %v, want %v", n, n, tc.dupTopic, tc.dupPart, got, tc.want)
			}
		}
	}
}
