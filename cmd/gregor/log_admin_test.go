package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestKadmLogAdmin: kadm's config, DeleteRecords and log-dir calls
// against a live cluster: incremental and whole-state config changes
// (validated, refused with Kafka's errors), DeleteRecords moving the
// start that Fetch and ListOffsets then see, DescribeAllLogDirs sizes on
// every replica.
func TestKadmLogAdmin(t *testing.T) {
	c := startLiveCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), testWaitMax)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.seeds()...), kgo.DefaultProduceTopic("la"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	if _, err := adm.CreateTopic(ctx, 2, 3, map[string]*string{"retention.ms": kadm.StringPtr("86400000")}, "la"); err != nil {
		t.Fatal(err)
	}
	if _, err := adm.CreateTopic(ctx, 1, 3, map[string]*string{"no.such.config": kadm.StringPtr("1")}, "la-bad"); !errors.Is(err, kerr.InvalidConfig) {
		t.Errorf("CreateTopic with an unknown config: %v, want INVALID_CONFIG", err)
	}
	leaders(t, cl, "la", 2)

	// Incremental: set and append; the values and sources come back.
	rs, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{
		{Op: kadm.SetConfig, Name: "max.message.bytes", Value: kadm.StringPtr("5000")},
		{Op: kadm.AppendConfig, Name: "cleanup.policy", Value: kadm.StringPtr("compact")},
	}, "la")
	if err == nil {
		err = rs[0].Err
	}
	if err != nil {
		t.Fatalf("AlterTopicConfigs: %v", err)
	}
	// DescribeConfigs is answered from the metadata of whichever broker
	// gets it, which may apply the change a moment after the broker that
	// answered (as a Kafka broker's metadata cache lags the controller).
	var described kadm.ResourceConfigs
	var rc kadm.ResourceConfig
	want := map[string]string{"retention.ms": "86400000", "max.message.bytes": "5000", "cleanup.policy": "delete,compact"}
	waitFor(t, "the altered configs in DescribeConfigs", func() (bool, string) {
		described, err = adm.DescribeTopicConfigs(ctx, "la")
		if err != nil {
			return false, err.Error()
		}
		if rc, err = described.On("la", nil); err != nil {
			return false, err.Error()
		}
		got := map[string]string{}
		for _, c := range rc.Configs {
			if c.Source == 1 { // DYNAMIC_TOPIC_CONFIG
				got[c.Key] = c.MaybeValue()
			}
		}
		for k, v := range want {
			if got[k] != v {
				return false, fmt.Sprintf("%s=%q, want %q (topic configs %v)", k, got[k], v, got)
			}
		}
		return true, ""
	})
	// A bad value is refused, with its reason; validation changes nothing.
	rs, _ = adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "segment.bytes", Value: kadm.StringPtr("tiny")}}, "la")
	if len(rs) != 1 || !errors.Is(rs[0].Err, kerr.InvalidConfig) || !strings.Contains(rs[0].ErrMessage, "segment.bytes") {
		t.Errorf("a bad value: %+v, want INVALID_CONFIG naming segment.bytes", rs)
	}
	if rs, err := adm.ValidateAlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "retention.ms", Value: kadm.StringPtr("1")}}, "la"); err != nil || rs[0].Err != nil {
		t.Errorf("ValidateAlterTopicConfigs: %v %+v", err, rs)
	}
	// The whole state: what is not named returns to its default.
	if rs, err := adm.AlterTopicConfigsState(ctx, []kadm.AlterConfig{{Name: "retention.ms", Value: kadm.StringPtr("3600000")}}, "la"); err != nil || rs[0].Err != nil {
		t.Fatalf("AlterTopicConfigsState: %v %+v", err, rs)
	}
	// DescribeConfigs is answered from the metadata of whichever broker
	// gets it, which applies the change a moment after the one that
	// answered AlterConfigs (as a Kafka broker's metadata cache lags the
	// controller): wait for it.
	var stillSet []string
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		stillSet = stillSet[:0]
		described, _ = adm.DescribeTopicConfigs(ctx, "la")
		rc, _ = described.On("la", nil)
		for _, c := range rc.Configs {
			if (c.Key == "max.message.bytes" || c.Key == "cleanup.policy") && c.Source == 1 {
				stillSet = append(stillSet, c.Key+"="+c.MaybeValue())
			}
		}
		if len(stillSet) == 0 || time.Now().After(deadline) {
			break
		}
	}
	if len(stillSet) > 0 {
		t.Errorf("after AlterTopicConfigsState: still set on the topic: %v", stillSet)
	}

	// DeleteRecords: the start moves; reads below it are out of range.
	for i := range 10 {
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte{byte('a' + i)}, Partition: 0}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	dr, err := adm.DeleteRecords(ctx, kadm.Offsets{"la": {0: {At: 4}}})
	if err != nil {
		t.Fatal(err)
	}
	if r, ok := dr.Lookup("la", 0); !ok || r.Err != nil || r.LowWatermark != 4 {
		t.Fatalf("DeleteRecords: %+v", r)
	}
	starts, err := adm.ListStartOffsets(ctx, "la")
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := starts.Lookup("la", 0); o.Offset != 4 {
		t.Errorf("start offset after DeleteRecords: %d, want 4", o.Offset)
	}
	rc2, err := kgo.NewClient(kgo.SeedBrokers(c.seeds()...), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{"la": {0: kgo.NewOffset().At(0)}}))
	if err != nil {
		t.Fatal(err)
	}
	defer rc2.Close()
	// A consumer asking for offset 0 is told it is out of range and, with
	// franz-go's default reset (the start), reads from 4.
	fs := rc2.PollRecords(ctx, 1)
	if rs := fs.Records(); len(rs) == 0 || rs[0].Offset != 4 {
		t.Errorf("consuming from 0 after DeleteRecords: %v %v, want offset 4 first", fs.Errors(), rs)
	}
	if dr, _ := adm.DeleteRecords(ctx, kadm.Offsets{"la": {0: {At: 100}}}); !errors.Is(dr.Error(), kerr.OffsetOutOfRange) {
		t.Errorf("DeleteRecords above the high watermark: %v, want OFFSET_OUT_OF_RANGE", dr.Error())
	}

	// LogAppendTime: the broker's clock replaces the producer's timestamp.
	if _, err := adm.CreateTopic(ctx, 1, 3, map[string]*string{"message.timestamp.type": kadm.StringPtr("LogAppendTime")}, "la-time"); err != nil {
		t.Fatal(err)
	}
	leaders(t, cl, "la-time", 1)
	old := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	before := time.Now().Add(-time.Minute)
	pr := cl.ProduceSync(ctx, &kgo.Record{Topic: "la-time", Value: []byte("t"), Timestamp: old})
	if err := pr.FirstErr(); err != nil {
		t.Fatal(err)
	}
	tc, err := kgo.NewClient(kgo.SeedBrokers(c.seeds()...), kgo.ConsumeTopics("la-time"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	if rs := tc.PollRecords(ctx, 1).Records(); len(rs) != 1 || rs[0].Timestamp.Before(before) || rs[0].Attrs.TimestampType() != 1 {
		t.Errorf("LogAppendTime topic: records %v, want one stamped by the broker (type 1)", rs)
	}

	// Log dirs: every replica of both partitions, sized.
	dirs, err := adm.DescribeAllLogDirs(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	replicas := 0
	dirs.Each(func(d kadm.DescribedLogDir) {
		if d.Err != nil {
			t.Errorf("broker %d dir %s: %v", d.Broker, d.Dir, d.Err)
		}
		d.Topics.Each(func(p kadm.DescribedLogDirPartition) {
			if p.Topic == "la" {
				replicas++
				if p.Partition == 0 && p.Size == 0 {
					t.Errorf("broker %d: la-0 has no bytes", p.Broker)
				}
			}
		})
	})
	if replicas != 6 { // la's 2 partitions × 3 (la-time is not counted)
		t.Errorf("DescribeAllLogDirs: %d replicas of la, want 6", replicas)
	}
}
