package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
)

// TestJavaLogAdmin: the Java AdminClient's incrementalAlterConfigs (SET,
// APPEND, a bad value refused as InvalidConfigurationException),
// describeConfigs, deleteRecords and describeLogDirs against a live
// cluster.
func TestJavaLogAdmin(t *testing.T) {
	java := javaCommand(t)
	c := startLiveCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*testWaitMax)
	defer cancel()
	cmd := exec.CommandContext(ctx, java, "-jar", javaJar, "log-admin", strings.Join(c.seeds(), ","), "java-log-admin")
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	runErr := cmd.Run()
	if s := errOut.String(); s != "" {
		t.Logf("java stderr:\n%s", s)
	}
	var s struct {
		BadValue     string            `json:"badValue"`
		TopicConfigs map[string]string `json:"topicConfigs"`
		LowWatermark int64             `json:"lowWatermark"`
		Replicas     int               `json:"replicas"`
		Bytes        int64             `json:"bytes"`
		Exception    string            `json:"exception"`
	}
	if err := json.Unmarshal(bytes.TrimSpace(out.Bytes()), &s); err != nil {
		t.Fatalf("java: %v; summary is not JSON: %v\n%s", runErr, err, out.String())
	}
	if s.Exception != "" || runErr != nil {
		t.Fatalf("the Java client threw: %s (%v)", s.Exception, runErr)
	}
	if !strings.HasPrefix(s.BadValue, "InvalidConfigurationException") || !strings.Contains(s.BadValue, "segment.bytes") {
		t.Errorf("a bad value: %q, want InvalidConfigurationException naming segment.bytes", s.BadValue)
	}
	if s.TopicConfigs["retention.ms"] != "3600000" || s.TopicConfigs["cleanup.policy"] != "delete,compact" {
		t.Errorf("topic configs after incrementalAlterConfigs: %v", s.TopicConfigs)
	}
	if s.LowWatermark != 4 {
		t.Errorf("deleteRecords low watermark %d, want 4", s.LowWatermark)
	}
	if s.Replicas != 3 || s.Bytes <= 0 {
		t.Errorf("describeLogDirs: %d replicas, %d bytes; want 3 replicas with bytes", s.Replicas, s.Bytes)
	}
}
