package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestCompactionKgo: a compacted topic on a live 3-broker cluster, written
// by franz-go producers with snappy (its default) and zstd batches,
// overwrites and tombstones. The cleaner, looking every 200 ms, leaves
// exactly the latest value of every key; deleted keys vanish once
// delete.retention.ms has passed; a consumer reading from the start sees
// offsets only increase, over the gaps; the log start stays 0.
func TestCompactionKgo(t *testing.T) {
	c := startLiveCluster(t, func(o *devOptions) { o.log.cleanerBackoffMs = 200 })
	ctx, cancel := context.WithTimeout(context.Background(), 2*testWaitMax)
	defer cancel()
	const topic = "compacted"
	snappy := c.client(kgo.DefaultProduceTopic(topic))
	zstd := c.client(kgo.DefaultProduceTopic(topic), kgo.ProducerBatchCompression(kgo.ZstdCompression()))
	adm := kadm.NewClient(snappy)
	if _, err := adm.CreateTopic(ctx, 1, 3, map[string]*string{
		"cleanup.policy":            kadm.StringPtr("compact"),
		"segment.bytes":             kadm.StringPtr("2048"),
		"min.cleanable.dirty.ratio": kadm.StringPtr("0.01"),
		"delete.retention.ms":       kadm.StringPtr("1000"),
	}, topic); err != nil {
		t.Fatal(err)
	}
	leaders(t, snappy, topic, 1)

	// A record without a key is refused.
	if err := snappy.ProduceSync(ctx, &kgo.Record{Value: []byte("no key")}).FirstErr(); err == nil {
		t.Fatal("a record without a key was accepted on a compacted topic")
	}

	latest := map[string]string{} // key -> value; "" for a tombstone
	for round := range 12 {
		cl := snappy
		if round%2 == 1 {
			cl = zstd
		}
		var recs []*kgo.Record
		for k := range 20 {
			key := fmt.Sprintf("k%02d", k)
			v := fmt.Sprintf("%s-v%02d", key, round)
			r := &kgo.Record{Key: []byte(key), Value: []byte(v)}
			if round == 11 && k%5 == 0 {
				r.Value, v = nil, ""
			}
			latest[key] = v
			recs = append(recs, r)
		}
		if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	want := map[string]string{}
	for k, v := range latest {
		if v != "" {
			want[k] = v
		}
	}

	// Wait for the log to hold exactly want (plus the filler key that
	// keeps the cleaner busy so that it comes back for the tombstones).
	deadline := time.Now().Add(testWaitMax)
	var got map[string]string
	var n int
	for {
		if err := snappy.ProduceSync(ctx, &kgo.Record{Key: []byte("filler"), Value: []byte(time.Now().String())}).FirstErr(); err != nil {
			t.Fatal(err)
		}
		got, n = readCompacted(t, ctx, c, topic)
		delete(got, "filler")
		if maps.Equal(got, want) && n <= len(want)+3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: the log holds %d records, %d keys besides the filler:\n%v\nwant %d keys:\n%v", testWaitMax, n, len(got), got, len(want), want)
		}
		time.Sleep(300 * time.Millisecond)
	}
	t.Run("java", func(t *testing.T) { readCompactedJava(t, ctx, c, topic, got) })

	offs, err := adm.ListStartOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := offs.Lookup(topic, 0); o.Offset != 0 {
		t.Errorf("log start %d after compaction, want 0", o.Offset)
	}
}

// readCompactedJava has the Java consumer read the compacted partition:
// it must step over the gaps and the cleaner's empty batches and find the
// same latest values (want, plus the filler key).
func readCompactedJava(t *testing.T, ctx context.Context, c *liveCluster, topic string, want map[string]string) {
	java := javaCommand(t)
	cmd := exec.CommandContext(ctx, java, "-jar", javaJar, "read-compacted", strings.Join(c.seeds(), ","), topic)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	runErr := cmd.Run()
	var s struct {
		Position, End, Records int64
		Increasing             bool
		Latest                 map[string]string
		Exception              string
	}
	if err := json.Unmarshal(bytes.TrimSpace(out.Bytes()), &s); err != nil || s.Exception != "" || runErr != nil {
		t.Fatalf("java: %v %s (%v)\n%s\n%s", err, s.Exception, runErr, out.String(), errOut.String())
	}
	delete(s.Latest, "filler")
	if !s.Increasing || s.Position < s.End || !maps.Equal(s.Latest, want) {
		t.Errorf("the Java consumer read to %d of %d, %d records, increasing %v:\n%v\nwant\n%v", s.Position, s.End, s.Records, s.Increasing, s.Latest, want)
	}
}

// readCompacted reads the partition from the start to its end and returns
// the latest value of every key (tombstones remove the key) and the
// number of records read; offsets must increase.
func readCompacted(t *testing.T, ctx context.Context, c *liveCluster, topic string) (map[string]string, int) {
	t.Helper()
	cl := c.client(kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}))
	defer cl.Close()
	offs, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	end, _ := offs.Lookup(topic, 0)
	got := map[string]string{}
	n, last := 0, int64(-1)
	for last < end.Offset-1 {
		fs := cl.PollFetches(ctx)
		if err := fs.Err(); err != nil {
			t.Fatal(err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset <= last {
				t.Fatalf("offset %d after %d", r.Offset, last)
			}
			last = r.Offset
			n++
			if r.Value == nil {
				delete(got, string(r.Key))
			} else {
				got[string(r.Key)] = string(r.Value)
			}
		})
	}
	return got, n
}
