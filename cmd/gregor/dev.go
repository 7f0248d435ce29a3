package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/gregor-streaming/gregor/engine"
	"github.com/gregor-streaming/gregor/engine/runtime"
)

const devUsage = `usage: gregor dev [flags]

Runs a cluster of brokers in this process on loopback: Kafka on
127.0.0.1:<base-port>.., the raft transport on 127.0.0.1:<peer-base-port>..,
broker N's data under <data>/N. Stops on SIGTERM or SIGINT.
--print-commands prints the gregor serve lines that run the same cluster as
separate processes, and exits.

--secure runs every broker with SASL_SSL (SCRAM-SHA-512, SCRAM-SHA-256 and
PLAIN) and ACLs on, as a Kafka team would in production: a CA and a broker
certificate, the super user admin (its password printed once when it is
made, or --admin-password), and client.properties (the Java tools, gregor
--command-config) and kcat.conf (kcat -F) are written under <data>/secure
and kept across restarts; --fresh makes them again.

`

const (
	devBrokersDefault  = 3
	devBrokersMax      = 9
	devBasePortDefault = 9092
	// devPeerPortOffset is how far above the Kafka ports the raft transport
	// ports sit by default (9092 -> 19092).
	devPeerPortOffset = 10000
	devDataDefault    = "data/dev"
	// With --secure, broker N's SSL listener (client certificates) and
	// SASL_PLAINTEXT listener (--sasl-plaintext) sit this far above its
	// SASL_SSL one (9092 -> 9102, 9112).
	devSSLPortOffset       = 10
	devSASLPlainPortOffset = 20
	// Broker N's admin listener (Prometheus /metrics) is this far above
	// its Kafka port (9092 -> 9122).
	devAdminPortOffset = 30
)

// devOptions are dev's flags. A basePort of 0 (tests) puts every listener
// on an ephemeral port.
type devOptions struct {
	brokers       int
	basePort      int
	peerBasePort  int // 0: basePort + devPeerPortOffset
	data          string
	fresh         bool
	printCommands bool
	autoCreate    bool
	groupDelayMs  int
	txnVersion    int
	secure        bool
	adminPassword string
	saslPlaintext bool
	log           logOptions
	// static are the Kafka names of the broker configs set by flags.
	static []string
	// engine, if set, adjusts each broker's engine configuration last
	// (gregor bench failover's --election-ticks and --tick-ms).
	engine func(*engine.Config)
}

func parseDev(args []string, stderr io.Writer) (devOptions, error) {
	var o devOptions
	fs := newFlagSet("gregor dev", devUsage, stderr)
	fs.IntVar(&o.brokers, "brokers", devBrokersDefault, "number of brokers")
	fs.IntVar(&o.basePort, "base-port", devBasePortDefault, "Kafka port of broker 1; broker N gets base-port+N-1")
	fs.IntVar(&o.peerBasePort, "peer-base-port", 0, "raft transport port of broker 1 (default base-port+10000)")
	fs.StringVar(&o.data, "data", devDataDefault, "data directory; broker N uses <data>/N")
	fs.BoolVar(&o.fresh, "fresh", false, "delete the brokers' data directories first")
	fs.BoolVar(&o.printCommands, "print-commands", false, "print the equivalent gregor serve command lines and exit")
	fs.BoolVar(&o.autoCreate, "auto-create-topics", true, "create unknown topics on Metadata and Produce")
	// As Kafka's own quickstart containers do: a developer's group should
	// not sit out 3 s before its first assignment.
	fs.IntVar(&o.groupDelayMs, "group-initial-rebalance-delay-ms", 0,
		"how long the first rebalance of an empty group waits for more members (Kafka's group.initial.rebalance.delay.ms)")
	fs.IntVar(&o.txnVersion, "transaction-version", txnVersionDefault, txnVersionUsage)
	fs.BoolVar(&o.secure, "secure", false, "SASL_SSL with SCRAM, ACLs and a super user admin; certificates and client files under <data>/secure")
	fs.BoolVar(&o.saslPlaintext, "sasl-plaintext", false,
		"with --secure: also a SASL_PLAINTEXT listener per broker at base-port+20.. (SCRAM sends no password, but the traffic is not encrypted; for clients without TLS)")
	fs.StringVar(&o.adminPassword, "admin-password", "", "with --secure: the password of the super user admin (default: the stored one, or a new one printed once)")
	o.log.register(fs)
	if err := parseFlagsOnly(fs, args); err != nil {
		return o, err
	}
	o.static = staticConfigs(fs)
	if err := o.log.check(); err != nil {
		return o, err
	}
	if err := checkTxnVersion(o.txnVersion); err != nil {
		return o, err
	}
	if o.brokers < 1 || o.brokers > devBrokersMax {
		return o, fmt.Errorf("--brokers %d: want 1 to %d", o.brokers, devBrokersMax)
	}
	if o.peerBasePort == 0 && o.basePort != 0 {
		o.peerBasePort = o.basePort + devPeerPortOffset
	}
	for _, p := range []int{o.basePort, o.peerBasePort} {
		if p < 0 || p+o.brokers-1 > 65535 {
			return o, fmt.Errorf("port %d: the brokers' ports must fit in 1-65535", p)
		}
	}
	if o.data == "" {
		return o, errors.New("--data is empty")
	}
	if o.groupDelayMs < 0 {
		return o, fmt.Errorf("--group-initial-rebalance-delay-ms %d: must not be negative", o.groupDelayMs)
	}
	if o.saslPlaintext && !o.secure {
		return o, errors.New("--sasl-plaintext needs --secure")
	}
	if o.basePort != 0 && o.basePort+devAdminPortOffset+o.brokers-1 > 65535 {
		return o, fmt.Errorf("--base-port %d: the listeners up to base-port+%d (the metrics) must fit in 1-65535", o.basePort, devAdminPortOffset+o.brokers-1)
	}
	if o.adminPassword != "" {
		if !o.secure {
			return o, errors.New("--admin-password needs --secure")
		}
		if err := checkDevPassword(o.adminPassword); err != nil {
			return o, err
		}
	}
	return o, nil
}

// members are the dev cluster's brokers at their configured ports (port
// 0 when ephemeral).
func (o devOptions) members() []clusterMember {
	var ms []clusterMember
	for i := range o.brokers {
		kafka, peer := 0, 0
		if o.basePort != 0 {
			kafka = o.basePort + i
		}
		if o.peerBasePort != 0 {
			peer = o.peerBasePort + i
		}
		ms = append(ms, clusterMember{
			ID:        int32(i + 1),
			KafkaAddr: "127.0.0.1:" + strconv.Itoa(kafka),
			PeerAddr:  "127.0.0.1:" + strconv.Itoa(peer),
		})
	}
	return ms
}

// secureListeners are broker id's listener addresses with --secure.
func (o devOptions) secureListeners(id int32) devListeners {
	at := func(offset int) string {
		if o.basePort == 0 {
			return "127.0.0.1:0"
		}
		return "127.0.0.1:" + strconv.Itoa(o.basePort+offset+int(id)-1)
	}
	l := devListeners{saslSSL: at(0), ssl: at(devSSLPortOffset)}
	if o.saslPlaintext {
		l.saslPlain = at(devSASLPlainPortOffset)
	}
	return l
}

// adminListen is broker id's admin (metrics) listener address.
func (o devOptions) adminListen(id int32) string {
	if o.basePort == 0 {
		return "127.0.0.1:0"
	}
	return "127.0.0.1:" + strconv.Itoa(o.basePort+devAdminPortOffset+int(id)-1)
}

func (o devOptions) brokerDir(id int32) string {
	return filepath.Join(o.data, strconv.Itoa(int(id)))
}

// serveCommands is the gregor serve command line of each broker of the
// dev cluster, one per line.
func (o devOptions) serveCommands(sec *devSecure) string {
	ms := o.members()
	cluster := formatCluster(ms)
	var b strings.Builder
	for _, m := range ms {
		fmt.Fprintf(&b, "gregor serve --id %d --data %s", m.ID, shellQuote(o.brokerDir(m.ID)))
		if sec != nil {
			b.WriteString(sec.serveFlags(o.secureListeners(m.ID)))
		} else {
			fmt.Fprintf(&b, " --listen %s", m.KafkaAddr)
		}
		fmt.Fprintf(&b, " --peer-listen %s --admin-listen %s --cluster %s", m.PeerAddr, o.adminListen(m.ID), cluster)
		if o.autoCreate {
			b.WriteString(" --auto-create-topics")
		}
		if o.groupDelayMs != groupDelayDefaultMs {
			fmt.Fprintf(&b, " --group-initial-rebalance-delay-ms %d", o.groupDelayMs)
		}
		if o.txnVersion != txnVersionDefault {
			fmt.Fprintf(&b, " --transaction-version %d", o.txnVersion)
		}
		b.WriteString(o.log.flags())
		b.WriteByte('\n')
	}
	return b.String()
}

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	safe := s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./:=,@%+", r))
	}) < 0
	if safe {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// startDev starts the dev cluster and returns its nodes, sorted by id.
// Listeners open first, so ephemeral ports are known before any broker is
// configured.
func startDev(o devOptions, sec *devSecure, logf func(id int32) func(string, ...any)) (nodes []*runtime.Node, err error) {
	defer func() {
		if err != nil {
			stopDev(nodes)
			nodes = nil
		}
	}()
	ms := o.members()
	if o.fresh {
		for _, m := range ms {
			if err := os.RemoveAll(o.brokerDir(m.ID)); err != nil {
				return nil, fmt.Errorf("--fresh: %v", err)
			}
		}
	}
	for _, m := range ms {
		bc := engine.Config{ID: m.ID, AutoCreateTopics: o.autoCreate, TransactionVersion: int16(o.txnVersion), StaticConfigs: o.static}
		groupConfig(&bc, 50, o.groupDelayMs, 7*24*60)
		o.log.apply(&bc)
		if o.engine != nil {
			o.engine(&bc)
		}
		rc := runtime.Config{
			Broker:      bc,
			DataDir:     o.brokerDir(m.ID),
			KafkaListen: m.KafkaAddr,
			PeerListen:  m.PeerAddr,
			AdminListen: o.adminListen(m.ID),
			Logf:        logf(m.ID),
		}
		if sec != nil {
			so := sec.options(o.secureListeners(m.ID))
			ss, err := so.build("", "", false)
			if err == nil {
				err = so.applyAuthorizer(&rc.Broker)
			}
			if err != nil {
				return nodes, fmt.Errorf("--secure: %v", err)
			}
			rc.Listeners, rc.SASL, rc.PeerTLS = ss.listeners, ss.sasl, ss.peer
		}
		n, err := runtime.Listen(rc)
		if err != nil {
			return nodes, fmt.Errorf("broker %d: %v", m.ID, err)
		}
		nodes = append(nodes, n)
		ms[m.ID-1].KafkaAddr, ms[m.ID-1].PeerAddr = n.KafkaAddr(), n.PeerAddr()
	}
	for _, n := range nodes {
		n.SetCluster(brokerInfos(ms))
		n.SetPeers(peerAddrs(ms))
	}
	for _, n := range nodes {
		if err := n.Run(); err != nil {
			return nodes, err
		}
	}
	return nodes, nil
}

// stopDev stops every node, reporting the first error.
func stopDev(nodes []*runtime.Node) error {
	var errs []error
	for _, n := range nodes {
		errs = append(errs, n.Stop())
	}
	return errors.Join(errs...)
}

func devCmd(args []string, stdout, stderr io.Writer) int {
	o, err := parseDev(args, stderr)
	if err != nil {
		return flagsFailed("gregor dev", err, stderr)
	}
	var sec *devSecure
	if o.secure {
		sec = newDevSecure(o.data)
		if err := sec.prepare(o.fresh, o.adminPassword); err != nil {
			fmt.Fprintf(stderr, "gregor dev: --secure: %v\n", err)
			return exitError
		}
	}
	if o.printCommands {
		fmt.Fprint(stdout, o.serveCommands(sec))
		return exitOK
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	logf := func(id int32) func(string, ...any) {
		return log.New(stderr, fmt.Sprintf("broker %d: ", id), log.LstdFlags|log.Lmicroseconds).Printf
	}
	nodes, err := startDev(o, sec, logf)
	if err != nil {
		fmt.Fprintf(stderr, "gregor dev: %v\n", err)
		return exitError
	}
	if sec != nil {
		var addrs []string
		for _, n := range nodes {
			addrs = append(addrs, n.KafkaAddr())
		}
		if err := sec.writeClientFiles(addrs); err != nil {
			stopDev(nodes)
			fmt.Fprintf(stderr, "gregor dev: --secure: %v\n", err)
			return exitError
		}
	}
	// "Ready" means clients can use the cluster: every broker knows the
	// controller (the metadata group has a leader), so a Metadata request
	// made right after the lines appear names one; with --secure (named
	// listeners) every broker also lists every other (waitListed).
	if !waitController(nodes, devReadyMax) {
		fmt.Fprintf(stderr, "gregor dev: no controller elected within %v; starting anyway\n", devReadyMax)
	} else if sec != nil {
		if err := sec.waitListed(nodes, devReadyMax); err != nil {
			fmt.Fprintf(stderr, "gregor dev: %v; starting anyway\n", err)
		}
	}
	for _, n := range nodes {
		c := n.Config()
		if sec == nil {
			fmt.Fprintf(stdout, "broker %d ready: kafka %s data %s metrics http://%s/metrics\n", c.Broker.ID, n.KafkaAddr(), c.DataDir, n.AdminAddr())
			continue
		}
		fmt.Fprintf(stdout, "broker %d ready: kafka %s (SASL_SSL), %s (SSL, client certificate)", c.Broker.ID, n.KafkaAddr(), n.ListenerAddr("SSL"))
		if a := n.ListenerAddr("SASL_PLAINTEXT"); a != "" {
			fmt.Fprintf(stdout, ", %s (SASL_PLAINTEXT)", a)
		}
		fmt.Fprintf(stdout, " data %s metrics http://%s/metrics\n", c.DataDir, n.AdminAddr())
	}
	if sec != nil {
		fmt.Fprintf(stdout, "secure: SASL_SSL, %s, ACLs on; CA %s\n", devMechanism, sec.caCert)
		if sec.newPassword {
			fmt.Fprintf(stdout, "secure: super user %s, password %s (shown once; it is in the files below)\n", devAdminUser, sec.password)
		} else {
			fmt.Fprintf(stdout, "secure: super user %s, password as before (in the files below)\n", devAdminUser)
		}
		fmt.Fprintf(stdout, "secure: clients: %s (Java tools, gregor --command-config), %s (kcat -F); client certificate %s, key %s\n",
			sec.clientProps, sec.kcatConf, sec.adminCert, sec.adminKey)
	}
	select {
	case <-ctx.Done():
	case <-firstDone(nodes):
	}
	if err := stopDev(nodes); err != nil {
		fmt.Fprintf(stderr, "gregor dev: %v\n", err)
		return exitError
	}
	return exitOK
}

// devReadyMax bounds how long dev waits for a controller before saying
// ready anyway.
const devReadyMax = 10 * time.Second

// waitController waits until every node knows the metadata group's leader.
func waitController(nodes []*runtime.Node, max time.Duration) bool {
	deadline := time.Now().Add(max)
	for time.Now().Before(deadline) {
		known := 0
		for _, n := range nodes {
			var lead uint64
			if err := n.Do(func(b *engine.Broker) { lead = b.MetadataLeader() }); err == nil && lead != 0 {
				known++
			}
		}
		if known == len(nodes) {
			return true
		}
		time.Sleep(10 * time.Millisecond)
	}
	return false
}

// firstDone is closed when any node's loop ends (a failure).
func firstDone(nodes []*runtime.Node) <-chan struct{} {
	ch := make(chan struct{}, 1)
	for _, n := range nodes {
		go func() {
			<-n.Done()
			select {
			case ch <- struct{}{}:
			default:
			}
		}()
	}
	return ch
}
