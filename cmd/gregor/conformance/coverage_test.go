package conformance

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/gregor-streaming/gregor/engine"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// apiVersion is one version of one API: key, version.
type apiVersion [2]int16

func (k apiVersion) String() string {
	return fmt.Sprintf("%s(%d) v%d", kmsg.NameForKey(k[0]), k[0], k[1])
}

// versionGaps are the versions Gregor advertises that no script sends,
// each with why. The list only shrinks: a version a script comes to send
// must leave it (TestVersionCoverage says so).
var versionGaps = map[apiVersion]string{
	// Kafka 4 removed these versions (KIP-896): it closes the connection,
	// so there is no answer of Kafka's to record and compare. Gregor
	// still answers them for older clients.
	{8, 0}:  removedInKafka4, // OffsetCommit
	{8, 1}:  removedInKafka4,
	{9, 0}:  removedInKafka4, // OffsetFetch
	{27, 0}: removedInKafka4, // WriteTxnMarkers
	{29, 0}: removedInKafka4, // DescribeAcls
	{30, 0}: removedInKafka4, // CreateAcls
	{31, 0}: removedInKafka4, // DeleteAcls
	{32, 0}: removedInKafka4, // DescribeConfigs
	{35, 0}: removedInKafka4, // DescribeLogDirs
	// WriteTxnMarkers v2 (KIP-1228, the transaction version in each
	// marker) is newer than Kafka 4.1.1, which offers v1 only.
	{27, 2}: "newer than Kafka 4.1.1 (it offers WriteTxnMarkers v1 only): nothing to compare with",
}

const removedInKafka4 = "Kafka 4 removed it (KIP-896) and closes the connection: nothing to compare with"

var sendLine = regexp.MustCompile(`^send api=(\S+) v=(\d+)`)

// TestVersionCoverage: every (API key, version) Gregor advertises
// (engine.APIVersions, what ApiVersions answers) is sent by some step of
// some script, or is in versionGaps with its reason.
func TestVersionCoverage(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(scripts, "*.txt"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no scripts in %s: %v", scripts, err)
	}
	sent := map[apiVersion]bool{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(b), "\n") {
			m := sendLine.FindStringSubmatch(line)
			if m == nil {
				continue
			}
			key, ok := apiKeys[strings.ToLower(m[1])]
			if !ok {
				n, err := strconv.Atoi(m[1])
				if err != nil {
					t.Fatalf("%s: unknown api %q", f, m[1])
				}
				key = int16(n)
			}
			v, _ := strconv.Atoi(m[2])
			sent[apiVersion{key, int16(v)}] = true
		}
	}
	advertised := map[apiVersion]bool{}
	var missing []string
	for _, a := range engine.APIVersions() {
		for v := a.Min; v <= a.Max; v++ {
			k := apiVersion{a.Key, v}
			advertised[k] = true
			_, gap := versionGaps[k]
			switch {
			case sent[k] && gap:
				t.Errorf("%s: a script sends it now: remove it from versionGaps", k)
			case !sent[k] && !gap:
				missing = append(missing, k.String())
			}
		}
	}
	for k := range versionGaps {
		if !advertised[k] {
			t.Errorf("%s is in versionGaps but Gregor does not advertise it", k)
		}
	}
	if len(missing) > 0 {
		t.Errorf("%d advertised versions no script sends (add steps, or add them to versionGaps with a reason):\n  %s", len(missing), strings.Join(missing, "\n  "))
	}
}
