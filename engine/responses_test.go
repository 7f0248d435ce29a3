package engine

// Response fields a client reads, checked after a round trip through the
// wire encoding at the version asked: a nil slice that the schema lets be
// null is sent as null, and the Java client (kafka-clients) dereferences
// some of those. Each test names the client behaviour it guards.

import (
	"fmt"
	"slices"
	"testing"
	"testing/cryptotest"

	"github.com/cockroachdb/datadriven"
	"github.com/google/go-cmp/cmp"
	"github.com/gregor-streaming/gregor/engine/batch"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// newResponseCluster is the transcript harness's 3-broker cluster with
// topic "t" (1 partition, RF 3) created and led.
func newResponseCluster(t *testing.T) *testCluster {
	t.Helper()
	cryptotest.SetGlobalRandom(t, 1)
	c := &testCluster{t: t}
	c.run(t, &datadriven.TestData{Cmd: "add-brokers"})
	c.run(t, &datadriven.TestData{Cmd: "create-topic"})
	return c
}

// ask sends req at version v to broker 1 and returns the answer as a
// client decodes it from the wire.
func (c *testCluster) ask(v int16, req kmsg.Request) kmsg.Response {
	c.t.Helper()
	req.SetVersion(v)
	resp, ok := c.call(1, req, 60)
	if !ok {
		c.t.Fatalf("%s v%d: no answer", kmsg.NameForKey(req.Key()), v)
	}
	return wire(c.t, resp)
}

// wire encodes resp at its version and decodes it again.
func wire(t *testing.T, resp kmsg.Response) kmsg.Response {
	t.Helper()
	out := kmsg.ResponseForKey(resp.Key())
	out.SetVersion(resp.GetVersion())
	if err := out.ReadFrom(resp.AppendTo(nil)); err != nil {
		t.Fatalf("%s v%d: decoding our own response: %v", kmsg.NameForKey(resp.Key()), resp.GetVersion(), err)
	}
	return out
}

// deref shows a nullable string.
func deref(s *string) string {
	if s == nil {
		return "<null>"
	}
	return *s
}

// The Java client reads CreateTopics v5+ configs() without a null check
// (KafkaAdminClient: "Cannot invoke List.stream() because configs is
// null"), and takes NumPartitions -1 as "not supported by the broker".
func TestCreateTopicsReplyCarriesConfigs(t *testing.T) {
	c := newResponseCluster(t)
	for v := int16(2); v <= 7; v++ {
		req := kmsg.NewPtrCreateTopicsRequest()
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic, rt.NumPartitions, rt.ReplicationFactor = fmt.Sprintf("cfg-v%d", v), 2, 3
		val := "3600000"
		cfg := kmsg.NewCreateTopicsRequestTopicConfig()
		cfg.Name, cfg.Value = "retention.ms", &val
		rt.Configs = append(rt.Configs, cfg)
		dup := kmsg.NewCreateTopicsRequestTopic()
		dup.Topic, dup.NumPartitions, dup.ReplicationFactor = "t", 1, 1
		req.Topics = append(req.Topics, rt, dup)
		req.TimeoutMillis = 5000
		resp := c.ask(v, req).(*kmsg.CreateTopicsResponse)
		if len(resp.Topics) != 2 {
			t.Fatalf("v%d: %d topics answered, want 2", v, len(resp.Topics))
		}
		ok, bad := resp.Topics[0], resp.Topics[1]
		if ok.ErrorCode != 0 || bad.ErrorCode != kerr.TopicAlreadyExists.Code {
			t.Fatalf("v%d: codes %d and %d, want 0 and TOPIC_ALREADY_EXISTS", v, ok.ErrorCode, bad.ErrorCode)
		}
		if v < 5 {
			continue
		}
		if ok.NumPartitions != 2 || ok.ReplicationFactor != 3 {
			t.Errorf("v%d: NumPartitions %d, ReplicationFactor %d, want 2 and 3", v, ok.NumPartitions, ok.ReplicationFactor)
		}
		if ok.Configs == nil || bad.Configs == nil {
			t.Fatalf("v%d: Configs sent as null (success %v, error %v); the Java client needs a list", v, ok.Configs == nil, bad.Configs == nil)
		}
		if len(bad.Configs) != 0 || bad.NumPartitions != -1 || bad.ReplicationFactor != -1 {
			t.Errorf("v%d: an error carries %d configs, %d partitions, RF %d; want none, -1, -1", v, len(bad.Configs), bad.NumPartitions, bad.ReplicationFactor)
		}
		got := map[string]kmsg.CreateTopicsResponseTopicConfig{}
		for _, c := range ok.Configs {
			got[c.Name] = c
		}
		if c := got["retention.ms"]; c.Value == nil || *c.Value != val || c.Source != int8(kmsg.ConfigSourceDynamicTopicConfig) {
			t.Errorf("v%d: retention.ms %+v, want %s from DYNAMIC_TOPIC_CONFIG", v, c, val)
		}
		if c := got["cleanup.policy"]; c.Value == nil || *c.Value != "delete" || c.Source != int8(kmsg.ConfigSourceDefaultConfig) {
			t.Errorf("v%d: cleanup.policy %+v, want delete from DEFAULT_CONFIG", v, c)
		}
	}
}

// The Java client sends NewTopic's assignment map in hash order; Kafka
// takes the partitions in any order and refuses gaps and repeats.
func TestCreateTopicsAssignmentInAnyOrder(t *testing.T) {
	c := newResponseCluster(t)
	assign := func(name string, parts ...int32) kmsg.CreateTopicsRequestTopic {
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic, rt.NumPartitions, rt.ReplicationFactor = name, -1, -1
		for _, p := range parts {
			ra := kmsg.NewCreateTopicsRequestTopicReplicaAssignment()
			ra.Partition, ra.Replicas = p, []int32{p%3 + 1, (p+1)%3 + 1}
			rt.ReplicaAssignment = append(rt.ReplicaAssignment, ra)
		}
		return rt
	}
	req := kmsg.NewPtrCreateTopicsRequest()
	req.TimeoutMillis = 5000
	req.Topics = append(req.Topics, assign("reversed", 2, 0, 1), assign("gap", 0, 2), assign("twice", 0, 0))
	resp := c.ask(7, req).(*kmsg.CreateTopicsResponse)
	want := []int16{0, kerr.InvalidReplicaAssignment.Code, kerr.InvalidReplicaAssignment.Code}
	for i, rt := range resp.Topics {
		if rt.ErrorCode != want[i] {
			t.Errorf("%s: error %d (%s), want %d", rt.Topic, rt.ErrorCode, deref(rt.ErrorMessage), want[i])
		}
	}
	c.tick(10)
	md := kmsg.NewPtrMetadataRequest()
	name := "reversed"
	mt := kmsg.NewMetadataRequestTopic()
	mt.Topic = &name
	md.Topics = append(md.Topics, mt)
	for _, p := range c.ask(12, md).(*kmsg.MetadataResponse).Topics[0].Partitions {
		if want := []int32{p.Partition%3 + 1, (p.Partition+1)%3 + 1}; !slices.Equal(p.Replicas, want) {
			t.Errorf("reversed-%d: replicas %v, want %v as assigned", p.Partition, p.Replicas, want)
		}
	}
}

// The Java client asks Metadata for topic ids (describeTopics by
// TopicCollection.ofTopicIds) with an empty, not null, name, and throws
// IllegalStateException ("Use errors() when managing topic using topic
// name") on any answered topic without an id.
func TestMetadataByTopicIDWithEmptyName(t *testing.T) {
	c := newResponseCluster(t)
	byName := kmsg.NewPtrMetadataRequest()
	mt := kmsg.NewMetadataRequestTopic()
	name := "t"
	mt.Topic = &name
	byName.Topics = append(byName.Topics, mt)
	id := c.ask(12, byName).(*kmsg.MetadataResponse).Topics[0].TopicID
	if id == ([16]byte{}) {
		t.Fatal("Metadata v12 gave topic t no id")
	}
	unknown := [16]byte{1, 2, 3}
	req := kmsg.NewPtrMetadataRequest()
	for _, tid := range [][16]byte{id, unknown} {
		rt := kmsg.NewMetadataRequestTopic()
		empty := ""
		rt.Topic, rt.TopicID = &empty, tid
		req.Topics = append(req.Topics, rt)
	}
	resp := c.ask(12, req).(*kmsg.MetadataResponse)
	if len(resp.Topics) != 2 {
		t.Fatalf("%d topics answered, want 2: %+v", len(resp.Topics), resp.Topics)
	}
	for _, rt := range resp.Topics {
		switch rt.TopicID {
		case id:
			if rt.ErrorCode != 0 || rt.Topic == nil || *rt.Topic != "t" || len(rt.Partitions) != 1 {
				t.Errorf("by id: error %d, name %q, %d partitions; want t with 1 partition", rt.ErrorCode, deref(rt.Topic), len(rt.Partitions))
			}
		case unknown:
			if rt.ErrorCode != kerr.UnknownTopicID.Code || rt.Topic != nil {
				t.Errorf("unknown id: error %d, name %q; want UNKNOWN_TOPIC_ID and a null name", rt.ErrorCode, deref(rt.Topic))
			}
		default:
			t.Errorf("answered topic %q with id %x, which was not asked", deref(rt.Topic), rt.TopicID)
		}
	}
}

// The Java client's offsetsForTimes and Admin listOffsets(forTimestamp,
// maxTimestamp) report the answer's Timestamp and LeaderEpoch as the
// record's; Kafka answers the record, not the batch or the time asked.
func TestListOffsetsAnswersTheRecord(t *testing.T) {
	c := newResponseCluster(t)
	recs := []batch.Record{{Value: []byte("a")}, {Value: []byte("b"), TimestampDelta: 1000}, {Value: []byte("c"), TimestampDelta: 2000}, {Value: []byte("d"), TimestampDelta: 1500}}
	produce := kmsg.NewPtrProduceRequest()
	produce.Acks, produce.TimeoutMillis = -1, 5000
	pt := kmsg.NewProduceRequestTopic()
	pt.Topic = "t"
	pp := kmsg.NewProduceRequestTopicPartition()
	pp.Records = batch.Build(batch.BuildOptions{ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1, FirstTimestamp: 10_000}, recs)
	pt.Partitions = append(pt.Partitions, pp)
	produce.Topics = append(produce.Topics, pt)
	via := c.leaderOf("t", 0)
	r, ok := c.call(via, produce, 60)
	if !ok || r.(*kmsg.ProduceResponse).Topics[0].Partitions[0].ErrorCode != 0 {
		t.Fatalf("produce: answered %v: %+v", ok, r)
	}
	for _, tc := range []struct{ ask, offset, ts int64 }{
		{10_500, 1, 11_000}, // the first record at or after, not the batch start
		{11_600, 2, 12_000},
		{-3, 2, 12_000}, // the first record with the largest timestamp
		{12_001, -1, -1},
	} {
		req := kmsg.NewPtrListOffsetsRequest()
		req.ReplicaID = -1
		lt := kmsg.NewListOffsetsRequestTopic()
		lt.Topic = "t"
		lp := kmsg.NewListOffsetsRequestTopicPartition()
		lp.Timestamp = tc.ask
		lt.Partitions = append(lt.Partitions, lp)
		req.Topics = append(req.Topics, lt)
		req.SetVersion(7)
		resp, ok := c.call(via, req, 60)
		if !ok {
			t.Fatalf("ListOffsets %d: no answer", tc.ask)
		}
		p := wire(t, resp).(*kmsg.ListOffsetsResponse).Topics[0].Partitions[0]
		if p.ErrorCode != 0 || p.Offset != tc.offset || p.Timestamp != tc.ts {
			t.Errorf("ListOffsets %d: error %d, offset %d, timestamp %d; want offset %d, timestamp %d", tc.ask, p.ErrorCode, p.Offset, p.Timestamp, tc.offset, tc.ts)
		}
		if (p.LeaderEpoch >= 0) != (tc.offset >= 0) {
			t.Errorf("ListOffsets %d: leader epoch %d for offset %d", tc.ask, p.LeaderEpoch, p.Offset)
		}
	}
}

// The Java client shows DescribeConfigs v3+ ConfigType as ConfigEntry.type();
// 0 is UNKNOWN. Kafka types every config.
func TestDescribeConfigsTypesEveryConfig(t *testing.T) {
	c := newResponseCluster(t)
	req := kmsg.NewPtrDescribeConfigsRequest()
	for _, r := range []struct {
		typ  kmsg.ConfigResourceType
		name string
	}{{kmsg.ConfigResourceTypeTopic, "t"}, {kmsg.ConfigResourceTypeBroker, "1"}} {
		rr := kmsg.NewDescribeConfigsRequestResource()
		rr.ResourceType, rr.ResourceName = r.typ, r.name
		req.Resources = append(req.Resources, rr)
	}
	resp := c.ask(4, req).(*kmsg.DescribeConfigsResponse)
	for _, res := range resp.Resources {
		if res.ErrorCode != 0 || len(res.Configs) == 0 {
			t.Fatalf("%s %q: error %d, %d configs", res.ResourceType, res.ResourceName, res.ErrorCode, len(res.Configs))
		}
		for _, cfg := range res.Configs {
			if cfg.ConfigType == kmsg.ConfigTypeUnknown {
				t.Errorf("%s %q: config %s has no type", res.ResourceType, res.ResourceName, cfg.Name)
			}
		}
	}
}

// DescribeConfigs reports a broker setting given at start (Kafka's
// server.properties; Config.StaticConfigs) or set to a value other than
// the built-in one as STATIC_BROKER_CONFIG, with the built-in value as its
// DEFAULT_CONFIG synonym, for the broker and for the topic configs it is
// the default of.
func TestDescribeConfigsStaticBrokerConfig(t *testing.T) {
	cryptotest.SetGlobalRandom(t, 1)
	c := &testCluster{t: t}
	c.tune = func(cfg *Config) {
		cfg.SegmentBytes = 1 << 20
		cfg.StaticConfigs = []string{"num.partitions"}
	}
	c.run(t, &datadriven.TestData{Cmd: "add-brokers"})
	c.run(t, &datadriven.TestData{Cmd: "create-topic"})
	req := kmsg.NewPtrDescribeConfigsRequest()
	req.IncludeSynonyms = true
	for _, r := range []struct {
		typ   kmsg.ConfigResourceType
		name  string
		names []string
	}{
		{kmsg.ConfigResourceTypeBroker, "1", []string{"log.segment.bytes", "message.max.bytes", "num.partitions"}},
		{kmsg.ConfigResourceTypeTopic, "t", []string{"segment.bytes"}},
	} {
		rr := kmsg.NewDescribeConfigsRequestResource()
		rr.ResourceType, rr.ResourceName, rr.ConfigNames = r.typ, r.name, r.names
		req.Resources = append(req.Resources, rr)
	}
	resp := c.ask(4, req).(*kmsg.DescribeConfigsResponse)
	var got []string
	for _, res := range resp.Resources {
		for _, cfg := range res.Configs {
			line := fmt.Sprintf("%s %s=%s %s:", res.ResourceType, cfg.Name, deref(cfg.Value), cfg.Source)
			for _, s := range cfg.ConfigSynonyms {
				line += fmt.Sprintf(" %s=%s(%s)", s.Name, deref(s.Value), s.Source)
			}
			got = append(got, line)
		}
	}
	want := []string{
		"BROKER log.segment.bytes=1048576 STATIC_BROKER_CONFIG: log.segment.bytes=1048576(STATIC_BROKER_CONFIG) log.segment.bytes=67108864(DEFAULT_CONFIG)",
		"BROKER message.max.bytes=1048588 DEFAULT_CONFIG: message.max.bytes=1048588(DEFAULT_CONFIG)",
		"BROKER num.partitions=1 STATIC_BROKER_CONFIG: num.partitions=1(STATIC_BROKER_CONFIG) num.partitions=1(DEFAULT_CONFIG)",
		"TOPIC segment.bytes=1048576 STATIC_BROKER_CONFIG: log.segment.bytes=1048576(STATIC_BROKER_CONFIG) log.segment.bytes=67108864(DEFAULT_CONFIG)",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}
