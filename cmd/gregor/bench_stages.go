package main

import (
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// The produce path's stages as the brokers measure them (issue 13 item
// 1): `gregor bench produce --metrics URL,...` scrapes each broker's
// /metrics before and after the run and prints, per stage, the count,
// mean and p50/p99 of the run's own observations (the difference of the
// two scrapes' histograms, summed over the brokers).

// benchStage is one latency the brokers export, named for the table.
type benchStage struct {
	name, metric string
	label        [2]string // a label the series must carry, or empty
}

var benchStages = []benchStage{
	{"request queued (netwire to the broker loop)", "gregor_request_queue_seconds", [2]string{}},
	{"leader: cycle to WAL durable (persist)", "gregor_raft_entry_stage_seconds", [2]string{"stage", "persist"}},
	{"WAL append incl. fsync, per cycle", "gregor_wal_append_seconds", [2]string{}},
	{"follower: append received to ack sent", "gregor_raft_entry_stage_seconds", [2]string{"stage", "follower_ack"}},
	{"leader: durable to committed (quorum ack)", "gregor_raft_entry_stage_seconds", [2]string{"stage", "commit"}},
	{"leader: committed to applied", "gregor_raft_entry_stage_seconds", [2]string{"stage", "apply"}},
	{"Produce request, decoded to answered", "gregor_request_duration_seconds", [2]string{"api", "Produce"}},
}

// stageHist is a cumulative histogram summed over brokers and series.
type stageHist struct {
	bounds []float64
	cum    []uint64
	count  uint64
	sum    float64
}

func (h *stageHist) add(p *dto.Histogram, sign int) {
	if h.bounds == nil {
		for _, b := range p.GetBucket() {
			h.bounds = append(h.bounds, b.GetUpperBound())
		}
		h.cum = make([]uint64, len(h.bounds))
	}
	for i, b := range p.GetBucket() {
		if i < len(h.cum) {
			h.cum[i] = uint64(int64(h.cum[i]) + int64(sign)*int64(b.GetCumulativeCount()))
		}
	}
	h.count = uint64(int64(h.count) + int64(sign)*int64(p.GetSampleCount()))
	h.sum += float64(sign) * p.GetSampleSum()
}

// quantile is the upper bound of the bucket holding quantile q (an
// over-estimate by at most one bucket), in seconds.
func (h *stageHist) quantile(q float64) float64 {
	if h.count == 0 {
		return math.NaN()
	}
	rank := uint64(math.Ceil(q * float64(h.count)))
	for i, c := range h.cum {
		if c >= rank {
			return h.bounds[i]
		}
	}
	return math.Inf(1)
}

// benchScrape reads every URL's metrics into one histogram per stage,
// added with sign (+1 after the run, -1 before).
func benchScrape(urls []string, into []stageHist, sign int) error {
	hc := http.Client{Timeout: 10 * time.Second}
	for _, u := range urls {
		resp, err := hc.Get(u)
		if err != nil {
			return fmt.Errorf("--metrics %s: %v", u, err)
		}
		parser := expfmt.NewTextParser(model.UTF8Validation)
		fams, err := parser.TextToMetricFamilies(io.LimitReader(resp.Body, 64<<20))
		resp.Body.Close()
		if err != nil {
			return fmt.Errorf("--metrics %s: %v", u, err)
		}
		for i, st := range benchStages {
			f := fams[st.metric]
			if f == nil {
				continue
			}
			for _, m := range f.GetMetric() {
				if st.label[0] != "" && !slices.ContainsFunc(m.GetLabel(), func(l *dto.LabelPair) bool {
					return l.GetName() == st.label[0] && l.GetValue() == st.label[1]
				}) {
					continue
				}
				if m.GetHistogram() != nil {
					into[i].add(m.GetHistogram(), sign)
				}
			}
		}
	}
	return nil
}

// benchMetricsURLs turns --metrics host:port or URLs into /metrics URLs.
func benchMetricsURLs(s string) []string {
	var out []string
	for _, a := range strings.Split(s, ",") {
		if a = strings.TrimSpace(a); a == "" {
			continue
		}
		if !strings.Contains(a, "://") {
			a = "http://" + a
		}
		if !strings.HasSuffix(a, "/metrics") {
			a = strings.TrimSuffix(a, "/") + "/metrics"
		}
		out = append(out, a)
	}
	return out
}

// benchPrintStages prints the stage table.
func benchPrintStages(w io.Writer, hs []stageHist) {
	fmt.Fprintf(w, "broker stages (this run, all brokers; p50/p99 are bucket upper bounds)\n")
	fmt.Fprintf(w, "  %-46s %9s %9s %9s %9s\n", "stage", "count", "mean ms", "p50 ms", "p99 ms")
	for i, st := range benchStages {
		h := hs[i]
		mean := math.NaN()
		if h.count > 0 {
			mean = h.sum / float64(h.count)
		}
		fmt.Fprintf(w, "  %-46s %9d %9.3f %9.3f %9.3f\n", st.name, h.count, mean*1e3, h.quantile(0.5)*1e3, h.quantile(0.99)*1e3)
	}
}
