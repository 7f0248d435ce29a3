package main

// The Java client's consumer groups against a 3-broker Gregor cluster:
// testdata/java's GroupCheck (java -jar gregor-java-client.jar group ...)
// subscribes and commitSyncs; a second run of the same group must resume
// from those commits. Once with group.protocol=classic and once with
// group.protocol=consumer (KIP-848), which is skipped while the cluster
// does not advertise ConsumerGroupHeartbeat (key 68) in ApiVersions, so
// it turns on by itself when the engine implements it. Like
// TestJavaClient, it fails without java or the jar rather than skipping.

import (
	"bytes"
	"context"
	"encoding/json"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// javaGroupSummary is the JSON line GroupCheck prints.
type javaGroupSummary struct {
	Protocol   string           `json:"protocol"`
	Assigned   []int32          `json:"assigned"`
	Generation int32            `json:"memberGeneration"`
	Committed  map[string]int64 `json:"committed"`
	Consumed   []struct {
		Partition int32  `json:"partition"`
		Offset    int64  `json:"offset"`
		Value     string `json:"value"`
	} `json:"consumed"`
	Rebalances []string `json:"rebalances"`
	Exception  string   `json:"exception"`
	Problems   []string `json:"problems"`
}

// runJavaGroup runs GroupCheck until it has consumed want records.
func runJavaGroup(t *testing.T, c groupCluster, topic, group, protocol string, want int) javaGroupSummary {
	t.Helper()
	java := javaCommand(t)
	ctx, cancel := context.WithTimeout(context.Background(), groupsRunMax)
	defer cancel()
	cmd := exec.CommandContext(ctx, java, "-jar", javaJar, "group", strings.Join(c.seeds(), ","), topic, group, protocol, strconv.Itoa(want))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	runErr := cmd.Run()
	t.Logf("java -jar %s group (%s, %d records) ran %v", javaJar, protocol, want, time.Since(start))
	if s := stderr.String(); s != "" {
		t.Logf("java stderr:\n%s", s)
	}
	var s javaGroupSummary
	if err := json.Unmarshal(bytes.TrimSpace(stdout.Bytes()), &s); err != nil {
		t.Fatalf("java: %v; summary is not JSON: %v\n%s", runErr, err, stdout.String())
	}
	t.Logf("assigned %v, generation %d, committed %v, rebalances %v", s.Assigned, s.Generation, s.Committed, s.Rebalances)
	if s.Exception != "" {
		t.Fatalf("the Java consumer threw: %s", s.Exception)
	}
	for _, p := range s.Problems {
		t.Errorf("the Java consumer's check: %s", p)
	}
	if runErr != nil {
		t.Fatalf("java: %v", runErr)
	}
	return s
}

// checkJavaGroupRun checks that a run consumed exactly the values of want,
// once each, none of old, and read back commits at every partition's end.
func checkJavaGroupRun(t *testing.T, s javaGroupSummary, want, old map[string]bool, ends map[int32]int64) {
	t.Helper()
	seen := map[string]int{}
	for _, r := range s.Consumed {
		seen[r.Value]++
		switch {
		case old[r.Value]:
			t.Errorf("%s: consumed %s (partition %d offset %d) again: the group had committed past it", s.Protocol, r.Value, r.Partition, r.Offset)
		case !want[r.Value]:
			t.Errorf("%s: consumed %s (partition %d offset %d), which was not produced for this run", s.Protocol, r.Value, r.Partition, r.Offset)
		case seen[r.Value] == 2:
			t.Errorf("%s: consumed %s twice", s.Protocol, r.Value)
		}
	}
	if k, some := missingValues(want, func(v string) bool { return seen[v] > 0 }); k > 0 {
		t.Errorf("%s: did not consume %d records, e.g. %v", s.Protocol, k, some)
	}
	if len(s.Assigned) != len(ends) {
		t.Errorf("%s: assigned partitions %v, want all %d", s.Protocol, s.Assigned, len(ends))
	}
	for p, end := range ends {
		if got, ok := s.Committed[strconv.Itoa(int(p))]; !ok || got != end {
			t.Errorf("%s: committed() shows partition %d at %d (present %v), want its end %d", s.Protocol, p, got, ok, end)
		}
	}
}

func TestJavaGroups(t *testing.T) {
	const partitions = 3
	c := groupClusterStart(t)
	cl := groupsProducer(c)
	adm := kadm.NewClient(cl)
	for _, protocol := range []string{"classic", "consumer"} {
		t.Run(protocol, func(t *testing.T) {
			if protocol == "consumer" && !apiAdvertised(t, cl, int16(kmsg.ConsumerGroupHeartbeat)) {
				t.Skip("KIP-848 not yet implemented: ApiVersions does not list ConsumerGroupHeartbeat (key 68)")
			}
			topic, group := "groups-java-"+protocol, "groups-java-"+protocol+"-group"
			prefix := "java-" + protocol
			rng := groupsRand(t)
			n := 100 + rng.IntN(200)
			groupCreateTopic(t, cl, topic, partitions)

			produceGroupRecords(t, cl, rng, topic, partitions, prefix, 0, n)
			ends := groupsEndOffsets(t, adm, topic)
			first := runJavaGroup(t, c, topic, group, protocol, n)
			checkJavaGroupRun(t, first, groupValues(prefix, 0, n), nil, ends)
			waitGroupCommitted(t, adm, group, topic, ends)

			produceGroupRecords(t, cl, rng, topic, partitions, prefix, n, 2*n)
			ends = groupsEndOffsets(t, adm, topic)
			second := runJavaGroup(t, c, topic, group, protocol, n)
			checkJavaGroupRun(t, second, groupValues(prefix, n, 2*n), groupValues(prefix, 0, n), ends)
			waitGroupCommitted(t, adm, group, topic, ends)
		})
	}
}
