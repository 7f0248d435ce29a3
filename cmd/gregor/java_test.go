package main

// The Java client (Apache kafka-clients, the reference client) against a
// 3-broker Gregor cluster. The program and its pom.xml (kafka-clients
// pinned) live in testdata/java; .ci/test-deps.sh (make test-deps) builds
// the jar with Maven. The test fails without java or the jar rather than
// skipping.

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

const (
	javaDir     = "testdata/java"
	javaJar     = javaDir + "/target/gregor-java-client.jar"
	javaRecords = 1000
	javaRunMax  = 180 * time.Second
)

// javaSummary is the JSON line JavaClientCheck prints.
type javaSummary struct {
	ClusterID  string  `json:"clusterId"`
	Brokers    []int32 `json:"brokers"`
	Controller int32   `json:"controller"`
	Created    map[string]struct {
		Partitions        int    `json:"partitions"`
		ReplicationFactor int    `json:"replicationFactor"`
		TopicID           string `json:"topicId"`
		RetentionMs       string `json:"retentionMs"`
	} `json:"created"`
	ExpectedFailures map[string]string `json:"expectedFailures"`
	Described        map[string]struct {
		Partitions        int    `json:"partitions"`
		ReplicationFactor int    `json:"replicationFactor"`
		TopicID           string `json:"topicId"`
	} `json:"described"`
	DescribedByID string `json:"describedById"`
	Listed        bool   `json:"listed"`
	Configs       struct {
		RetentionMs     string `json:"retentionMs"`
		RetentionSource string `json:"retentionSource"`
		BrokerID        string `json:"brokerId"`
	} `json:"configs"`
	PartitionsAfterCreatePartitions int                         `json:"partitionsAfterCreatePartitions"`
	Produced                        int                         `json:"produced"`
	Offsets                         map[string]map[string]int64 `json:"offsets"`
	Consumed                        int                         `json:"consumed"`
	ConsumedAfterSeek               int                         `json:"consumedAfterSeek"`
	Deleted                         bool                        `json:"deleted"`
	Exception                       string                      `json:"exception"`
	Problems                        []string                    `json:"problems"`
}

// javaCommand is the java binary, once the test jar is known to be built.
func javaCommand(t *testing.T) string {
	t.Helper()
	java, err := exec.LookPath("java")
	if err != nil {
		t.Fatalf("java is not installed: run `make test-deps` (or `bash .ci/test-deps.sh`), which installs a JDK and Maven and builds %s", javaJar)
	}
	if _, err := os.Stat(javaJar); err != nil {
		t.Fatalf("%s is not built: run `make test-deps` (or `cd cmd/gregor/%s && mvn -q -B package`)", javaJar, javaDir)
	}
	return java
}

func TestJavaClient(t *testing.T) {
	java := javaCommand(t)
	c := startLiveCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), javaRunMax)
	defer cancel()
	cmd := exec.CommandContext(ctx, java, "-jar", javaJar, strings.Join(c.seeds(), ","), strconv.Itoa(javaRecords))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	runErr := cmd.Run()
	t.Logf("java -jar %s ran %v", javaJar, time.Since(start))
	if s := stderr.String(); s != "" {
		t.Logf("java stderr:\n%s", s)
	}
	t.Logf("summary: %s", stdout.String())
	var s javaSummary
	if err := json.Unmarshal(bytes.TrimSpace(stdout.Bytes()), &s); err != nil {
		t.Fatalf("java: %v; summary is not JSON: %v\n%s", runErr, err, stdout.String())
	}
	if s.Exception != "" {
		t.Fatalf("the Java client threw: %s", s.Exception)
	}
	for _, p := range s.Problems {
		t.Errorf("the Java client's check: %s", p)
	}
	if runErr != nil {
		t.Fatalf("java: %v", runErr)
	}

	if s.ClusterID == "" || len(s.Brokers) != 3 || s.Controller < 1 {
		t.Errorf("describeCluster: cluster %q, brokers %v, controller %d; want an id, 3 brokers, a controller", s.ClusterID, s.Brokers, s.Controller)
	}
	// Topic a: 3 partitions, RF 3, retention.ms set; topic b: the explicit
	// assignment of 2 partitions on 2 replicas each.
	type topicWant struct {
		partitions, rf int
		retentionMs    string
	}
	want := map[string]topicWant{"java-a-": {3, 3, "3600000"}, "java-b-": {2, 2, "604800000"}}
	if len(s.Created) != 2 || len(s.Described) != 2 {
		t.Errorf("created %d and described %d topics, want 2", len(s.Created), len(s.Described))
	}
	for name, ct := range s.Created {
		w := want[name[:len("java-a-")]]
		d := s.Described[name]
		if ct.Partitions != w.partitions || ct.ReplicationFactor != w.rf || d.Partitions != w.partitions || d.ReplicationFactor != w.rf {
			t.Errorf("%s: created %+v, described %+v; want %d partitions, RF %d", name, ct, d, w.partitions, w.rf)
		}
		if ct.TopicID == "" || ct.TopicID != d.TopicID {
			t.Errorf("%s: createTopics gave id %q, describeTopics %q", name, ct.TopicID, d.TopicID)
		}
		if ct.RetentionMs != w.retentionMs {
			t.Errorf("%s: createTopics reports retention.ms %q, want %q", name, ct.RetentionMs, w.retentionMs)
		}
	}
	if !strings.HasPrefix(s.DescribedByID, "java-a-") {
		t.Errorf("describeTopics by topic id found %q, want topic java-a-…", s.DescribedByID)
	}
	if f := s.ExpectedFailures; f["duplicate"] != "TopicExistsException" || f["replicationFactor"] != "InvalidReplicationFactorException" {
		t.Errorf("expected failures: %v", f)
	}
	if !s.Listed || s.PartitionsAfterCreatePartitions != 4 || !s.Deleted {
		t.Errorf("listTopics %v, partitions after createPartitions %d (want 4), deleted %v", s.Listed, s.PartitionsAfterCreatePartitions, s.Deleted)
	}
	if c := s.Configs; c.RetentionMs != "3600000" || c.RetentionSource != "DYNAMIC_TOPIC_CONFIG" || c.BrokerID != strconv.Itoa(int(s.Brokers[0])) {
		t.Errorf("describeConfigs: %+v", c)
	}
	// The seek goes to each partition's first record of the second half.
	if s.Produced != javaRecords || s.Consumed != javaRecords || s.ConsumedAfterSeek != javaRecords-javaRecords/2 {
		t.Errorf("produced %d, consumed %d, after seek %d; want %d, %d, %d", s.Produced, s.Consumed, s.ConsumedAfterSeek, javaRecords, javaRecords, javaRecords-javaRecords/2)
	}
	var latest int64
	for _, off := range s.Offsets["latest"] {
		latest += off
	}
	if len(s.Offsets["latest"]) != 3 || latest != javaRecords {
		t.Errorf("listOffsets latest %v, want 3 partitions summing to %d", s.Offsets["latest"], javaRecords)
	}
}
