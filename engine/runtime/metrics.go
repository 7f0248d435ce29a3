package runtime

import (
	"errors"
	"net"
	"net/http"
	"net/http/pprof"
	"strconv"
	"time"

	"github.com/gregor-streaming/gregor/engine"
	"github.com/gregor-streaming/gregor/raftlog"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Metrics: the Prometheus types live here, at the edge. The engine and
// raftlog count in plain fields (raftlog.Stats, engine.PartitionStats);
// a scrape reads them on the node's loop (Do) and turns them into
// Prometheus metrics. Request counts and latencies are measured here,
// around the engine: from the moment netwire hands a decoded request to
// the node until its response is handed back.

// latencyBuckets are the request latency buckets, in seconds: raftlog's
// histogram bounds, so every latency shares one scale.
var latencyBuckets = func() []float64 {
	out := make([]float64, len(raftlog.HistogramBounds))
	for i, ns := range raftlog.HistogramBounds {
		out[i] = float64(ns) / 1e9
	}
	return out
}()

// nodeMetrics are a node's own Prometheus metrics.
type nodeMetrics struct {
	reg      *prometheus.Registry
	requests *prometheus.HistogramVec // api, version
	queued   prometheus.Histogram
	// byKey caches requests' observer per API key and version: observe
	// runs for every request (the produce and fetch paths included), on
	// the node's loop only, so a plain slice does.
	byKey [][]prometheus.Observer
}

func newNodeMetrics(n *Node) *nodeMetrics {
	m := &nodeMetrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "gregor_request_duration_seconds",
			Help:    "Kafka requests, from decoded to answered (queued, processed, replicated as the request needs), by API and version.",
			Buckets: latencyBuckets,
		}, []string{"api", "version"}),
		queued: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "gregor_request_queue_seconds",
			Help:    "Time a decoded request waits for the broker's loop.",
			Buckets: latencyBuckets,
		}),
	}
	m.reg.MustRegister(m.requests, m.queued,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		&engineCollector{n: n})
	return m
}

// observe counts a request answered after d. Called on the loop only.
func (m *nodeMetrics) observe(req kmsg.Request, d time.Duration) {
	key, version := int(req.Key()), int(req.GetVersion())
	if key < 0 || version < 0 {
		return
	}
	if key >= len(m.byKey) {
		m.byKey = append(m.byKey, make([][]prometheus.Observer, key+1-len(m.byKey))...)
	}
	if version >= len(m.byKey[key]) {
		m.byKey[key] = append(m.byKey[key], make([]prometheus.Observer, version+1-len(m.byKey[key]))...)
	}
	o := m.byKey[key][version]
	if o == nil {
		name := kmsg.NameForKey(req.Key())
		if name == "" {
			name = strconv.Itoa(key)
		}
		o = m.requests.WithLabelValues(name, strconv.Itoa(version))
		m.byKey[key][version] = o
	}
	o.Observe(d.Seconds())
}

// Metrics is the node's Prometheus registry (what /metrics serves).
func (n *Node) Metrics() *prometheus.Registry { return n.metrics.reg }

// AdminAddr is the admin (metrics) listener's address, or "" without one.
func (n *Node) AdminAddr() string {
	if n.adminLn == nil {
		return ""
	}
	return n.adminLn.Addr().String()
}

// serveAdmin serves /metrics on the admin listener until Stop.
func (n *Node) serveAdmin() {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(n.metrics.reg, promhttp.HandlerOpts{ErrorLog: logfLogger(n.cfg.Logf)}))
	// Go's profiler, for an operator's `go tool pprof http://ADMIN/debug/pprof/profile`.
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	n.admin = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		if err := n.admin.Serve(n.adminLn); err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
			n.cfg.Logf("runtime: broker %d: admin listener: %v", n.cfg.Broker.ID, err)
		}
	}()
}

type logfLogger func(string, ...any)

func (l logfLogger) Println(v ...any) { l("runtime: metrics: %v", v) }

// engineCollector turns the engine's and raftlog's counters into metrics
// at each scrape.
type engineCollector struct{ n *Node }

var (
	descCycles      = prometheus.NewDesc("gregor_raft_ready_cycles_total", "Raft Ready cycles (each at most one WAL append and sync).", nil, nil)
	descWALAppends  = prometheus.NewDesc("gregor_wal_appends_total", "WAL appends.", nil, nil)
	descWALBytes    = prometheus.NewDesc("gregor_wal_written_bytes_total", "Bytes appended to the WAL.", nil, nil)
	descWALSyncs    = prometheus.NewDesc("gregor_wal_syncs_total", "WAL syncs (fsync).", nil, nil)
	descWALSync     = prometheus.NewDesc("gregor_wal_sync_seconds", "Latency of a WAL sync after an append (near zero with etcd's WAL, which syncs inside the append).", nil, nil)
	descWALAppend   = prometheus.NewDesc("gregor_wal_append_seconds", "Latency of a WAL append, with the fsync when the WAL syncs within it (etcd's WAL does).", nil, nil)
	descCampaigns   = prometheus.NewDesc("gregor_raft_campaigns_total", "Elections (pre-votes included) this broker started.", nil, nil)
	descLeaderChg   = prometheus.NewDesc("gregor_raft_leader_changes_total", "Leader changes seen by this broker's raft groups.", nil, nil)
	descDropped     = prometheus.NewDesc("gregor_raft_proposals_dropped_total", "Proposals raft refused (no leader, leadership moving).", nil, nil)
	descSnapshots   = prometheus.NewDesc("gregor_raft_snapshots_sent_total", "Raft snapshots sent to followers.", nil, nil)
	descMsgSent     = prometheus.NewDesc("gregor_raft_messages_sent_total", "Raft messages sent to peers.", nil, nil)
	descMsgRecv     = prometheus.NewDesc("gregor_raft_messages_received_total", "Raft messages received from peers.", nil, nil)
	descStage       = prometheus.NewDesc("gregor_raft_entry_stage_seconds", "Stages of an entry proposed on a leader here: persist (its cycle to the WAL sync), commit (WAL sync to a quorum's acknowledgement), apply (commit to applied); follower_ack is a follower's append message to its acknowledgement.", []string{"stage"}, nil)
	descConnsOpen   = prometheus.NewDesc("gregor_connections", "Open client connections.", nil, nil)
	descConnsTotal  = prometheus.NewDesc("gregor_connections_accepted_total", "Client connections accepted.", nil, nil)
	descPeerDropped = prometheus.NewDesc("gregor_peer_payloads_dropped_total", "Raft transport payloads dropped (queue full or peer unreachable).", nil, nil)
	partLabels      = []string{"topic", "partition"}
	descHW          = prometheus.NewDesc("gregor_partition_high_watermark", "High watermark of each replica hosted here.", partLabels, nil)
	descLogStart    = prometheus.NewDesc("gregor_partition_log_start_offset", "Log start offset of each replica hosted here.", partLabels, nil)
	descSize        = prometheus.NewDesc("gregor_partition_size_bytes", "Bytes of the segments of each replica hosted here.", partLabels, nil)
	descLeader      = prometheus.NewDesc("gregor_partition_leader", "1 if this broker leads the partition.", partLabels, nil)
	descUnderRep    = prometheus.NewDesc("gregor_partition_under_replicated", "1 if this broker leads the partition and fewer replicas than all are in sync.", partLabels, nil)
)

func (c *engineCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descCycles, descWALAppends, descWALBytes, descWALSyncs, descWALSync, descWALAppend,
		descCampaigns, descLeaderChg, descDropped, descSnapshots, descMsgSent, descMsgRecv, descStage,
		descConnsOpen, descConnsTotal, descPeerDropped, descHW, descLogStart, descSize, descLeader, descUnderRep} {
		ch <- d
	}
}

func (c *engineCollector) Collect(ch chan<- prometheus.Metric) {
	n := c.n
	var rs raftlog.Stats
	var ps []engine.PartitionStats
	if err := n.Do(func(b *engine.Broker) { rs, ps = b.RaftStats(), b.PartitionStats() }); err != nil {
		return // stopped: nothing to report
	}
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	hist := func(d *prometheus.Desc, h raftlog.Histogram, labels ...string) {
		buckets := make(map[float64]uint64, len(raftlog.HistogramBounds))
		var cum uint64
		for i, ns := range raftlog.HistogramBounds {
			cum += h.Counts[i]
			buckets[float64(ns)/1e9] = cum
		}
		ch <- prometheus.MustNewConstHistogram(d, h.Count, float64(h.SumNs)/1e9, buckets, labels...)
	}
	counter(descCycles, rs.Cycles)
	counter(descWALAppends, rs.WALAppends)
	counter(descWALBytes, rs.WALBytes)
	counter(descWALSyncs, rs.WALSyncs)
	hist(descWALSync, rs.WALSync)
	hist(descWALAppend, rs.WALAppend)
	counter(descCampaigns, rs.Campaigns)
	counter(descLeaderChg, rs.LeaderChanges)
	counter(descDropped, rs.ProposalsDropped)
	counter(descSnapshots, rs.SnapshotsSent)
	counter(descMsgSent, rs.MessagesSent)
	counter(descMsgRecv, rs.MessagesReceived)
	hist(descStage, rs.EntryPersist, "persist")
	hist(descStage, rs.EntryCommit, "commit")
	hist(descStage, rs.EntryApply, "apply")
	hist(descStage, rs.FollowerAck, "follower_ack")
	if n.server != nil {
		open, accepted := n.server.Connections()
		gauge(descConnsOpen, float64(open))
		counter(descConnsTotal, accepted)
	}
	counter(descPeerDropped, n.tr.dropped.Load())
	for _, p := range ps {
		tp := []string{p.Topic, strconv.Itoa(int(p.Partition))}
		gauge(descHW, float64(p.HighWatermark), tp...)
		gauge(descLogStart, float64(p.StartOffset), tp...)
		gauge(descSize, float64(p.SizeBytes), tp...)
		lead, under := 0.0, 0.0
		if p.Leader {
			lead = 1
			if p.InSync < p.Replicas {
				under = 1
			}
		}
		gauge(descLeader, lead, tp...)
		gauge(descUnderRep, under, tp...)
	}
}
