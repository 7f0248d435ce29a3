package runtime

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestMetricsScrape: every broker of a 3-broker cluster serves /metrics
// on its admin listener; after acks=all produces, a scrape parses with
// Prometheus's own text parser and holds the request, WAL, raft stage,
// partition and Go runtime metrics with values that match what happened.
func TestMetricsScrape(t *testing.T) {
	c := startClusterWith(t, 3, clusterOptions{config: func(_ int32, cfg *Config) {
		cfg.AdminListen, cfg.Broker.AutoCreateTopics = "127.0.0.1:0", true
	}})
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.kafkaAddrs()...), kgo.DefaultProduceTopic("metrics"), kgo.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), testWaitMax)
	defer cancel()
	const records = 50
	for i := range records {
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte{byte(i)}}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	scrape := func(id int32) map[string]*dto.MetricFamily {
		t.Helper()
		addr := c.nodes[id].AdminAddr()
		if addr == "" {
			t.Fatalf("broker %d has no admin listener", id)
		}
		resp, err := http.Get("http://" + addr + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		p := expfmt.NewTextParser(model.UTF8Validation)
		fams, err := p.TextToMetricFamilies(strings.NewReader(string(body)))
		if err != nil {
			t.Fatalf("broker %d: /metrics does not parse: %v", id, err)
		}
		return fams
	}
	label := func(m *dto.Metric, name string) string {
		for _, l := range m.GetLabel() {
			if l.GetName() == name {
				return l.GetValue()
			}
		}
		return ""
	}
	all := map[string]*dto.MetricFamily{}
	for _, id := range c.ids() {
		for n, f := range scrape(id) {
			all[n] = f
		}
	}
	dashboardNames(t, all)
	var produces, commits, acks uint64
	var hw float64
	leaders := 0
	for _, id := range c.ids() {
		fams := scrape(id)
		for _, name := range []string{"gregor_request_queue_seconds", "gregor_wal_sync_seconds", "gregor_wal_append_seconds",
			"gregor_wal_written_bytes_total", "gregor_raft_entry_stage_seconds", "gregor_raft_leader_changes_total",
			"gregor_partition_high_watermark", "gregor_partition_size_bytes", "gregor_partition_under_replicated",
			"gregor_connections", "go_goroutines", "process_cpu_seconds_total"} {
			if fams[name] == nil {
				t.Errorf("broker %d: no %s", id, name)
			}
		}
		if f := fams["gregor_request_duration_seconds"]; f != nil {
			for _, m := range f.GetMetric() {
				if label(m, "api") == "Produce" {
					produces += m.GetHistogram().GetSampleCount()
				}
			}
		}
		if f := fams["gregor_wal_append_seconds"]; f != nil && f.GetMetric()[0].GetHistogram().GetSampleCount() == 0 {
			t.Errorf("broker %d: no WAL sync measured", id)
		}
		if f := fams["gregor_raft_entry_stage_seconds"]; f != nil {
			for _, m := range f.GetMetric() {
				switch label(m, "stage") {
				case "commit":
					commits += m.GetHistogram().GetSampleCount()
				case "follower_ack":
					acks += m.GetHistogram().GetSampleCount()
				}
			}
		}
		if f := fams["gregor_partition_leader"]; f != nil {
			for _, m := range f.GetMetric() {
				if label(m, "topic") == "metrics" && m.GetGauge().GetValue() == 1 {
					leaders++
					for _, h := range fams["gregor_partition_high_watermark"].GetMetric() {
						if label(h, "topic") == "metrics" && label(h, "partition") == label(m, "partition") {
							hw += h.GetGauge().GetValue()
						}
					}
				}
			}
		}
	}
	if produces < records {
		t.Errorf("the brokers counted %d Produce requests, want at least %d", produces, records)
	}
	if commits == 0 || acks == 0 {
		t.Errorf("raft stages: %d commits and %d follower acknowledgements measured", commits, acks)
	}
	if leaders != 1 || hw != records {
		t.Errorf("topic metrics: %d leaders report a high watermark of %v, want 1 leader at %d", leaders, hw, records)
	}
	// After Stop the listener is gone.
	id := c.ids()[0]
	addr := c.nodes[id].AdminAddr()
	c.stop(id)
	hc := http.Client{Timeout: 2 * time.Second}
	if resp, err := hc.Get("http://" + addr + "/metrics"); err == nil {
		resp.Body.Close()
		t.Errorf("broker %d still serves /metrics after Stop", id)
	}
}

// dashboardNames checks that every metric docs/grafana-dashboard.json
// queries is one a broker exports (fams, a scrape), so the dashboard
// follows renames.
func dashboardNames(t *testing.T, fams map[string]*dto.MetricFamily) {
	t.Helper()
	raw, err := os.ReadFile("../../docs/grafana-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("the dashboard is not JSON: %v", err)
	}
	name := regexp.MustCompile(`\b((?:gregor|go|process)_[a-z0-9_]+)`)
	seen := 0
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			for _, m := range name.FindAllStringSubmatch(tg.Expr, -1) {
				n := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(m[1], "_bucket"), "_count"), "_sum")
				seen++
				if fams[n] == nil {
					t.Errorf("dashboard panel %q queries %s, which no broker exports", p.Title, m[1])
				}
			}
		}
	}
	if seen < 10 {
		t.Errorf("the dashboard queries only %d metrics", seen)
	}
}
