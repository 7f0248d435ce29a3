package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/gregor-streaming/gregor/engine"
	"github.com/gregor-streaming/gregor/engine/runtime"
)

const serveUsage = `usage: gregor serve --id N --data DIR --cluster 1=host:port/peerhost:peerport,... [flags]

Runs one broker until SIGTERM or SIGINT. Every broker of a cluster gets the
same --cluster string. Settings may also come from --config FILE, one
name=value per line with the flag names (flags on the command line win).

Listeners: --listen (and --advertise) make one PLAINTEXT listener; for
several, or for TLS and SASL, use Kafka's form instead, for example
  --listeners INTERNAL://10.0.0.1:9092,EXTERNAL://0.0.0.0:9093
  --advertised-listeners EXTERNAL://kafka.example.com:9093
  --listener-security-protocol-map INTERNAL:PLAINTEXT,EXTERNAL:SASL_SSL
  --tls-cert broker.pem --tls-key broker.key --sasl-users users
Clients are told the brokers' addresses on the listener they came in by.
SCRAM users live in the cluster (gregor user create); --sasl-users is a
bootstrap file for users the cluster does not have.

Peer transport: --peer-tls-ca ca.pem makes the raft transport between
brokers mutual TLS: each broker presents --peer-tls-cert/--peer-tls-key
(default --tls-cert/--tls-key), which must chain to that CA, name the
host of its peer address in --cluster and allow both server and client
authentication; a peer without such a certificate is refused. Give every
broker the same CA. Without --peer-tls-ca the peer port is plain TCP and
anyone who reaches it is a peer: keep it on a private network.

SIGHUP re-reads the certificate, key and users files.

ACLs: --authorizer checks every client request against the cluster's ACLs
(gregor acl, or kafka-acls.sh); --super-users User:admin may do everything.

`

// configLinesMax bounds a --config file, which is meant to be short.
const configLinesMax = 1000

// serveOptions are serve's flags.
type serveOptions struct {
	id          int
	data        string
	listen      string
	advertise   string
	peerListen  string
	adminListen string
	cluster     string
	config      string
	autoCreate  bool
	// controlledShutdown: hand leadership away on a signal before
	// stopping.
	controlledShutdown bool
	// producerExpiryMs is Kafka's producer.id.expiration.ms.
	producerExpiryMs int64
	// Group coordination, Kafka's names.
	offsetsPartitions  int
	groupDelayMs       int
	offsetsRetentionMn int
	// Transactions, Kafka's names.
	txnVersion      int
	txnIDExpiration int64
	// Topic defaults, Kafka's num.partitions and default.replication.factor.
	numPartitions     int
	defaultReplFactor int
	log               logOptions
	// sec are the listener, TLS and SASL flags (security.go); listenSet
	// records that --listen was given.
	sec       securityOptions
	listenSet bool
	// security is what nodeConfig made of sec.
	security *serveSecurity
}

// logOptions are the log cleaner's and retention's intervals, flags of
// both serve and dev.
type logOptions struct {
	cleanerBackoffMs int64
	retentionCheckMs int64
}

const (
	cleanerBackoffDefaultMs = 15_000
	retentionCheckDefaultMs = 300_000
)

func (o *logOptions) register(fs *flag.FlagSet) {
	fs.Int64Var(&o.cleanerBackoffMs, "log-cleaner-backoff-ms", cleanerBackoffDefaultMs,
		"how often a compacted partition's leader looks for records to clean (Kafka's log.cleaner.backoff.ms)")
	fs.Int64Var(&o.retentionCheckMs, "log-retention-check-interval-ms", retentionCheckDefaultMs,
		"how often a partition's leader looks for segments past retention (Kafka's log.retention.check.interval.ms)")
}

func (o *logOptions) check() error {
	if o.cleanerBackoffMs <= 0 {
		return fmt.Errorf("--log-cleaner-backoff-ms %d: must be positive", o.cleanerBackoffMs)
	}
	if o.retentionCheckMs <= 0 {
		return fmt.Errorf("--log-retention-check-interval-ms %d: must be positive", o.retentionCheckMs)
	}
	return nil
}

func (o *logOptions) apply(c *engine.Config) {
	c.CleanerBackoffMs, c.RetentionCheckIntervalMs = o.cleanerBackoffMs, o.retentionCheckMs
}

// flags are the non-default ones as gregor serve arguments.
func (o *logOptions) flags() string {
	var b strings.Builder
	if o.cleanerBackoffMs != 0 && o.cleanerBackoffMs != cleanerBackoffDefaultMs {
		fmt.Fprintf(&b, " --log-cleaner-backoff-ms %d", o.cleanerBackoffMs)
	}
	if o.retentionCheckMs != 0 && o.retentionCheckMs != retentionCheckDefaultMs {
		fmt.Fprintf(&b, " --log-retention-check-interval-ms %d", o.retentionCheckMs)
	}
	return b.String()
}

// txnVersionDefault is the transaction.version a cluster finalizes, as
// new Kafka 4 clusters do.
const (
	txnVersionDefault = 2
	txnVersionUsage   = "the transaction.version feature the cluster finalizes: 2 lets clients use transactions v2 (KIP-890), 1 keeps them on v1"
)

// checkTxnVersion refuses a --transaction-version Gregor does not speak.
func checkTxnVersion(v int) error {
	if v != 1 && v != 2 {
		return fmt.Errorf("--transaction-version %d: want 1 or 2", v)
	}
	return nil
}

// groupDelayDefaultMs is Kafka's group.initial.rebalance.delay.ms.
const groupDelayDefaultMs = 3000

// groupConfig sets the group coordination flags in cfg (a delay of 0 is
// none, which engine.Config spells -1).
func groupConfig(cfg *engine.Config, offsetsPartitions, delayMs, retentionMinutes int) {
	cfg.OffsetsTopicPartitions = int32(offsetsPartitions)
	cfg.GroupInitialRebalanceDelayMs = int32(delayMs)
	if delayMs == 0 {
		cfg.GroupInitialRebalanceDelayMs = -1
	}
	cfg.OffsetsRetentionMs = int64(retentionMinutes) * 60_000
}

func serveFlagSet(o *serveOptions, stderr io.Writer) *flag.FlagSet {
	fs := newFlagSet("gregor serve", serveUsage, stderr)
	fs.IntVar(&o.id, "id", 0, "this broker's id, one of the ids in --cluster")
	fs.StringVar(&o.data, "data", "", "data directory (segments, and the WAL under wal/)")
	fs.StringVar(&o.listen, "listen", "127.0.0.1:9092", "Kafka listener address")
	fs.StringVar(&o.advertise, "advertise", "", "Kafka address clients are told to use (default --listen)")
	fs.StringVar(&o.peerListen, "peer-listen", "", "inter-broker raft transport listener (default this broker's peer address in --cluster)")
	fs.StringVar(&o.adminListen, "admin-listen", "", "admin HTTP listener serving Prometheus /metrics, host:port (default none)")
	fs.StringVar(&o.cluster, "cluster", "", "initial brokers: id=host:kafkaport/peerhost:peerport,... (the same on every broker)")
	fs.StringVar(&o.config, "config", "", "file of name=value lines with the same names as these flags")
	fs.BoolVar(&o.autoCreate, "auto-create-topics", false, "create unknown topics on Metadata and Produce")
	fs.BoolVar(&o.controlledShutdown, "controlled-shutdown", true,
		"on SIGTERM or SIGINT, hand the leadership of every partition this broker leads to another in-sync replica before stopping (Kafka's controlled.shutdown.enable; at most 15 s, a second signal stops at once)")
	fs.Int64Var(&o.producerExpiryMs, "producer-id-expiration-ms", 24*60*60*1000,
		"drop an idempotent producer's state when its last batch is this old (Kafka's producer.id.expiration.ms)")
	fs.IntVar(&o.offsetsPartitions, "offsets-topic-partitions", 50,
		"partitions of __consumer_offsets when it is created (Kafka's offsets.topic.num.partitions); fixed afterwards")
	fs.IntVar(&o.groupDelayMs, "group-initial-rebalance-delay-ms", groupDelayDefaultMs,
		"how long the first rebalance of an empty group waits for more members (Kafka's group.initial.rebalance.delay.ms)")
	fs.IntVar(&o.offsetsRetentionMn, "offsets-retention-minutes", 7*24*60,
		"delete the offsets of a group empty this long (Kafka's offsets.retention.minutes)")
	fs.IntVar(&o.numPartitions, "num-partitions", 1,
		"partitions of a topic created without a count: auto-created, or CreateTopics with -1 (Kafka's num.partitions)")
	fs.IntVar(&o.defaultReplFactor, "default-replication-factor", 0,
		"replicas of a topic created without a factor (Kafka's default.replication.factor; default min(3, brokers))")
	fs.IntVar(&o.txnVersion, "transaction-version", txnVersionDefault, txnVersionUsage)
	fs.Int64Var(&o.txnIDExpiration, "transactional-id-expiration-ms", 7*24*60*60*1000,
		"forget a transactional id with no transaction open and no change for this long (Kafka's transactional.id.expiration.ms)")
	o.log.register(fs)
	o.sec.register(fs)
	return fs
}

// parseServe turns serve's arguments (and --config file) into a node
// configuration. Errors name the flag at fault.
func parseServe(args []string, stderr io.Writer) (runtime.Config, error) {
	cfg, _, err := parseServeSecure(args, stderr)
	return cfg, err
}

// parseServeSecure is parseServe that also returns what SIGHUP re-reads.
func parseServeSecure(args []string, stderr io.Writer) (runtime.Config, *serveSecurity, error) {
	cfg, o, err := parseServeOptions(args, stderr)
	return cfg, o.security, err
}

// parseServeOptions is parseServe that also returns the options.
func parseServeOptions(args []string, stderr io.Writer) (runtime.Config, *serveOptions, error) {
	var o serveOptions
	fs := serveFlagSet(&o, stderr)
	if err := parseFlagsOnly(fs, args); err != nil {
		return runtime.Config{}, &o, err
	}
	if o.config != "" {
		if err := applyConfigFile(fs, o.config); err != nil {
			return runtime.Config{}, &o, err
		}
	}
	fs.Visit(func(f *flag.Flag) { o.listenSet = o.listenSet || f.Name == "listen" })
	cfg, err := o.nodeConfig()
	cfg.Broker.StaticConfigs = staticConfigs(fs)
	return cfg, &o, err
}

// controlledShutdownTimeout bounds a controlled shutdown's hand-over of
// leadership (Kafka retries its controlled shutdown 3 times, 5 s apart).
const controlledShutdownTimeout = 15 * time.Second

// controlledShutdown hands the leadership of every raft group the node
// leads to another live voter before it stops (Kafka's
// controlled.shutdown.enable), so that its clients see a leader change
// instead of an election timeout; a second signal stops at once.
func controlledShutdown(node *runtime.Node, logger *log.Logger) {
	start := time.Now()
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer cancel()
	ctx, cancel2 := context.WithTimeout(ctx, controlledShutdownTimeout)
	defer cancel2()
	left, err := node.HandOffLeadership(ctx)
	switch {
	case err == nil:
		logger.Printf("controlled shutdown: leadership handed over in %v", time.Since(start).Round(time.Millisecond))
	default:
		logger.Printf("controlled shutdown: still leading %d raft groups after %v (%v); stopping anyway", left, time.Since(start).Round(time.Millisecond), err)
	}
}

// kafkaConfigNames are the Kafka broker configs of serve's and dev's
// flags.
var kafkaConfigNames = map[string]string{
	"auto-create-topics":               "auto.create.topics.enable",
	"producer-id-expiration-ms":        "producer.id.expiration.ms",
	"offsets-topic-partitions":         "offsets.topic.num.partitions",
	"group-initial-rebalance-delay-ms": "group.initial.rebalance.delay.ms",
	"offsets-retention-minutes":        "offsets.retention.minutes",
	"num-partitions":                   "num.partitions",
	"default-replication-factor":       "default.replication.factor",
	"transactional-id-expiration-ms":   "transactional.id.expiration.ms",
	"log-cleaner-backoff-ms":           "log.cleaner.backoff.ms",
	"log-retention-check-interval-ms":  "log.retention.check.interval.ms",
}

// staticConfigs are the Kafka names of the broker configs set on the
// command line or in the --config file (engine.Config.StaticConfigs:
// DescribeConfigs reports them as STATIC_BROKER_CONFIG, as Kafka does
// those in server.properties).
func staticConfigs(fs *flag.FlagSet) []string {
	var names []string
	fs.Visit(func(f *flag.Flag) {
		if n, ok := kafkaConfigNames[f.Name]; ok {
			names = append(names, n)
		}
	})
	return names
}

// applyConfigFile sets every flag named in the file that the command line
// did not set.
func applyConfigFile(fs *flag.FlagSet, path string) error {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("--config: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		if line > configLinesMax {
			return fmt.Errorf("--config %s: more than %d lines", path, configLinesMax)
		}
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		name, value, ok := strings.Cut(text, "=")
		name, value = strings.TrimSpace(name), strings.TrimSpace(value)
		if !ok {
			return fmt.Errorf("--config %s line %d: want name=value, got %q", path, line, text)
		}
		if name == "config" || fs.Lookup(name) == nil {
			return fmt.Errorf("--config %s line %d: unknown setting %q", path, line, name)
		}
		if set[name] {
			continue
		}
		if err := fs.Set(name, value); err != nil {
			return fmt.Errorf("--config %s line %d: %s: %v", path, line, name, err)
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("--config %s: %v", path, err)
	}
	return nil
}

func (o *serveOptions) nodeConfig() (runtime.Config, error) {
	if o.cluster == "" {
		return runtime.Config{}, errors.New("--cluster is required")
	}
	members, err := parseCluster(o.cluster)
	if err != nil {
		return runtime.Config{}, err
	}
	if o.id <= 0 {
		return runtime.Config{}, fmt.Errorf("--id is required (a positive broker id from --cluster)")
	}
	var self *clusterMember
	for i := range members {
		if members[i].ID == int32(o.id) {
			self = &members[i]
		}
	}
	if self == nil {
		return runtime.Config{}, fmt.Errorf("--id %d is not in --cluster", o.id)
	}
	if o.data == "" {
		return runtime.Config{}, errors.New("--data is required")
	}
	sec, err := o.sec.build(o.listen, o.advertise, o.listenSet)
	if err != nil {
		return runtime.Config{}, err
	}
	o.security = sec
	legacy := o.sec.listeners == ""
	if legacy {
		if _, _, err := splitHostPort(o.listen); err != nil {
			return runtime.Config{}, fmt.Errorf("--listen: %v", err)
		}
	}
	advertise := sec.listeners[0].Advertise
	if advertise == "" {
		advertise = o.listen
	}
	host, port, err := splitHostPort(advertise)
	if err != nil {
		return runtime.Config{}, fmt.Errorf("--advertise: %v", err)
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		return runtime.Config{}, fmt.Errorf("--advertise %q: clients need a concrete host; set --advertise", advertise)
	}
	peerListen := o.peerListen
	if peerListen == "" {
		peerListen = self.PeerAddr
	}
	if _, _, err := splitHostPort(peerListen); err != nil {
		return runtime.Config{}, fmt.Errorf("--peer-listen: %v", err)
	}
	if o.adminListen != "" {
		if _, _, err := splitHostPort(o.adminListen); err != nil {
			return runtime.Config{}, fmt.Errorf("--admin-listen: %v", err)
		}
	}
	if o.producerExpiryMs <= 0 {
		return runtime.Config{}, fmt.Errorf("--producer-id-expiration-ms %d: must be positive", o.producerExpiryMs)
	}
	if o.offsetsPartitions <= 0 || o.offsetsPartitions > 10000 {
		return runtime.Config{}, fmt.Errorf("--offsets-topic-partitions %d: must be between 1 and 10000", o.offsetsPartitions)
	}
	if o.groupDelayMs < 0 {
		return runtime.Config{}, fmt.Errorf("--group-initial-rebalance-delay-ms %d: must not be negative", o.groupDelayMs)
	}
	if o.offsetsRetentionMn <= 0 {
		return runtime.Config{}, fmt.Errorf("--offsets-retention-minutes %d: must be positive", o.offsetsRetentionMn)
	}
	if err := checkTxnVersion(o.txnVersion); err != nil {
		return runtime.Config{}, err
	}
	if o.numPartitions < 1 || o.numPartitions > 10_000 {
		return runtime.Config{}, fmt.Errorf("--num-partitions %d: must be between 1 and 10000", o.numPartitions)
	}
	if o.defaultReplFactor < 0 || o.defaultReplFactor > len(members) {
		return runtime.Config{}, fmt.Errorf("--default-replication-factor %d: must be between 1 and the %d brokers of --cluster", o.defaultReplFactor, len(members))
	}
	if o.txnIDExpiration <= 0 {
		return runtime.Config{}, fmt.Errorf("--transactional-id-expiration-ms %d: must be positive", o.txnIDExpiration)
	}
	if err := o.log.check(); err != nil {
		return runtime.Config{}, err
	}
	cluster := brokerInfos(members)
	for i := range cluster {
		if cluster[i].ID == int32(o.id) {
			cluster[i].Host, cluster[i].Port = host, port
		}
	}
	bc := engine.Config{
		ID:                          int32(o.id),
		Cluster:                     cluster,
		AutoCreateTopics:            o.autoCreate,
		ProducerIDExpirationMs:      o.producerExpiryMs,
		TransactionVersion:          int16(o.txnVersion),
		TransactionalIDExpirationMs: o.txnIDExpiration,
		DefaultPartitions:           int32(o.numPartitions),
		DefaultReplicationFactor:    int16(o.defaultReplFactor),
	}
	groupConfig(&bc, o.offsetsPartitions, o.groupDelayMs, o.offsetsRetentionMn)
	o.log.apply(&bc)
	if err := o.sec.applyAuthorizer(&bc); err != nil {
		return runtime.Config{}, err
	}
	rc := runtime.Config{
		Broker:      bc,
		DataDir:     o.data,
		KafkaListen: o.listen,
		PeerListen:  peerListen,
		Peers:       peerAddrs(members),
		PeerTLS:     sec.peer,
		SASL:        sec.sasl,
		AdminListen: o.adminListen,
	}
	if !legacy {
		rc.KafkaListen, rc.Listeners = "", sec.listeners
	}
	return rc, nil
}

func serveCmd(args []string, stdout, stderr io.Writer) int {
	cfg, o, err := parseServeOptions(args, stderr)
	if err != nil {
		return flagsFailed("gregor serve", err, stderr)
	}
	sec := o.security
	logger := log.New(stderr, fmt.Sprintf("broker %d: ", cfg.Broker.ID), log.LstdFlags|log.Lmicroseconds)
	cfg.Logf = logger.Printf

	// SIGHUP re-reads the TLS certificates and keys (listeners' and
	// peer transport's) and the users file; on an error the old ones
	// stay.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer func() { signal.Stop(hup); close(hup) }()
	go func() {
		for range hup {
			if err := sec.reload(); err != nil {
				logger.Printf("SIGHUP: %v; keeping the previous certificates and users", err)
			} else {
				logger.Printf("SIGHUP: certificates and users re-read")
			}
		}
	}()

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	node, err := runtime.Start(cfg)
	if err != nil {
		fmt.Fprintf(stderr, "gregor serve: %v\n", err)
		return exitError
	}
	fmt.Fprintf(stdout, "broker %d ready: kafka %s peer %s data %s\n", cfg.Broker.ID, node.KafkaAddr(), node.PeerAddr(), cfg.DataDir)
	if a := node.AdminAddr(); a != "" {
		fmt.Fprintf(stdout, "broker %d metrics: http://%s/metrics\n", cfg.Broker.ID, a)
	}
	if len(cfg.Listeners) > 0 {
		for _, l := range cfg.Listeners {
			fmt.Fprintf(stdout, "broker %d listener %s (%s) on %s\n", cfg.Broker.ID, l.Name, l.Protocol, node.ListenerAddr(l.Name))
		}
	}
	select {
	case <-ctx.Done():
		logger.Printf("stopping on signal")
		if o.controlledShutdown {
			controlledShutdown(node, logger)
		}
	case <-node.Done():
	}
	if err := node.Stop(); err != nil {
		fmt.Fprintf(stderr, "gregor serve: %v\n", err)
		return exitError
	}
	return exitOK
}
