package main

// kafkajs 2.x (Node.js) against a 3-broker Gregor cluster. The script and
// its pinned package-lock.json live in testdata/kafkajs; .ci/test-deps.sh
// (make test-deps) runs npm ci there. The test fails without them rather
// than skipping.

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

const (
	kafkajsDir      = "testdata/kafkajs"
	kafkajsMessages = 3000
	kafkajsRunMax   = 120 * time.Second
)

// kafkajsSummary is the JSON line produce_consume.js prints.
type kafkajsSummary struct {
	Topic              string           `json:"topic"`
	Created            bool             `json:"created"`
	MetadataPartitions int              `json:"metadataPartitions"`
	Produced           int              `json:"produced"`
	Consumed           int              `json:"consumed"`
	HighWatermarks     map[string]int64 `json:"highWatermarks"`
	Errors             []string         `json:"errors"`
	Partitions         map[string]struct {
		Acked   int  `json:"acked"`
		Fetched int  `json:"fetched"`
		Matches int  `json:"matches"`
		InOrder bool `json:"inOrder"`
	} `json:"partitions"`
}

// kafkajsCommand is the node binary, once kafkajs is known to be installed.
func kafkajsCommand(t *testing.T) string {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node is not installed: run `make test-deps` (or `bash .ci/test-deps.sh`), which installs nodejs and kafkajs")
	}
	if _, err := os.Stat(filepath.Join(kafkajsDir, "node_modules", "kafkajs", "package.json")); err != nil {
		t.Fatalf("kafkajs is not installed in %s/node_modules: run `make test-deps` (or `cd cmd/gregor/%s && npm ci`)", kafkajsDir, kafkajsDir)
	}
	return node
}

func TestKafkaJS(t *testing.T) {
	node := kafkajsCommand(t)
	c := startLiveCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), kafkajsRunMax)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "produce_consume.js", strings.Join(c.seeds(), ","), "kafkajs", strconv.Itoa(kafkajsMessages))
	cmd.Dir = kafkajsDir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	t.Logf("node produce_consume.js ran %v", time.Since(start))
	if s := stderr.String(); s != "" {
		t.Logf("kafkajs stderr:\n%s", s)
	}
	if err != nil {
		t.Fatalf("node produce_consume.js: %v\nstdout:\n%s", err, stdout.String())
	}
	t.Logf("summary: %s", stdout.String())
	var s kafkajsSummary
	if err := json.Unmarshal(bytes.TrimSpace(stdout.Bytes()), &s); err != nil {
		t.Fatalf("summary is not JSON: %v\n%s", err, stdout.String())
	}
	if !s.Created || s.MetadataPartitions != 3 {
		t.Errorf("admin: created %v, metadata shows %d partitions, want true and 3", s.Created, s.MetadataPartitions)
	}
	if len(s.Errors) > 0 {
		t.Errorf("kafkajs reported: %v", s.Errors)
	}
	if s.Produced != kafkajsMessages || s.Consumed != kafkajsMessages {
		t.Errorf("produced %d, consumed %d, want %d each", s.Produced, s.Consumed, kafkajsMessages)
	}
	if len(s.Partitions) != 3 {
		t.Errorf("summary covers %d partitions, want 3", len(s.Partitions))
	}
	for p, ps := range s.Partitions {
		if ps.Fetched != ps.Acked || ps.Matches != ps.Acked || !ps.InOrder {
			t.Errorf("partition %s: %+v, want every acknowledged record fetched once, in order, at its offset", p, ps)
		}
		if hw := s.HighWatermarks[p]; hw != int64(ps.Acked) {
			t.Errorf("partition %s: ListOffsets latest %d, %d acknowledged", p, hw, ps.Acked)
		}
	}
}
