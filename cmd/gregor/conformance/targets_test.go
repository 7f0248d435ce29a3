package conformance

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gregor-streaming/gregor/engine"
	"github.com/gregor-streaming/gregor/engine/runtime"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// A target is one broker under test, reached over one raw connection: no
// client library in between, so the request goes out exactly as the script
// says (version included) and the answer comes back exactly as sent.
type target struct {
	name string
	addr string
	log  string // Kafka's log file

	// What save= kept of this broker's answers, and its member ids'
	// aliases (normalise).
	vars    map[string]json.RawMessage
	members map[string]string

	// brokers is how many brokers its cluster has: with more than one,
	// node ids are normalised (normalise, norm.cluster).
	brokers int
	// peers: connections to the cluster's other brokers, by address
	// (leader), sharing vars and members.
	peers map[string]*target
	// stopNode stops one broker of the cluster (not the one the harness
	// talks to) as its operator would: Kafka's controlled shutdown
	// (SIGTERM), Gregor's Node.Stop.
	stopNode func(id int32) error

	mu   sync.Mutex
	conn net.Conn
	corr int32
	fmt  *kmsg.RequestFormatter
}

// leader returns a target for the broker that leads topic's partition,
// by this broker's Metadata: t itself, or a connection of t's to it.
func (t *target) leader(topic string, partition int32) (*target, error) {
	return t.replica(topic, partition, true)
}

// follower returns a target for the lowest-numbered replica of topic's
// partition that does not lead it.
func (t *target) follower(topic string, partition int32) (*target, error) {
	return t.replica(topic, partition, false)
}

func (t *target) replica(topic string, partition int32, leads bool) (*target, error) {
	req := kmsg.NewPtrMetadataRequest()
	req.SetVersion(12)
	mt := kmsg.NewMetadataRequestTopic()
	mt.Topic = kmsg.StringPtr(topic)
	req.Topics = append(req.Topics, mt)
	resp, err := t.do(req)
	if err != nil {
		return nil, err
	}
	m := resp.(*kmsg.MetadataResponse)
	want := int32(-1)
	for _, mt := range m.Topics {
		for _, p := range mt.Partitions {
			if p.Partition != partition {
				continue
			}
			if leads {
				want = p.Leader
				break
			}
			for _, r := range slices.Sorted(slices.Values(p.Replicas)) {
				if r != p.Leader {
					want = r
					break
				}
			}
		}
	}
	for _, b := range m.Brokers {
		if b.NodeID != want {
			continue
		}
		addr := net.JoinHostPort(b.Host, strconv.Itoa(int(b.Port)))
		if addr == t.addr {
			return t, nil
		}
		if p := t.peers[addr]; p != nil {
			return p, nil
		}
		p := newTarget(t.name, addr)
		p.vars, p.members, p.brokers = t.vars, t.members, t.brokers
		if t.peers == nil {
			t.peers = map[string]*target{}
		}
		t.peers[addr] = p
		return p, nil
	}
	return nil, fmt.Errorf("%s-%d: no such replica in Metadata (leader wanted: %v, broker %d)", topic, partition, leads, want)
}

func newTarget(name, addr string) *target {
	return &target{name: name, addr: addr, vars: map[string]json.RawMessage{}, members: map[string]string{}, fmt: kmsg.NewRequestFormatter(kmsg.FormatterClientID("gregor-conformance"))}
}

// errClosed is a connection the broker closed instead of answering: what
// Gregor does with an API key or version it does not offer.
var errClosed = errors.New("connection closed by the broker")

// do sends req and returns its response; nil, nil for Produce with acks=0.
func (t *target) do(req kmsg.Request) (kmsg.Response, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.conn == nil {
		c, err := net.DialTimeout("tcp", t.addr, 5*time.Second)
		if err != nil {
			return nil, err
		}
		t.conn = c
	}
	fail := func(err error) (kmsg.Response, error) {
		t.conn.Close()
		t.conn = nil
		if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || strings.Contains(err.Error(), "connection reset") {
			return nil, errClosed
		}
		return nil, err
	}
	t.corr++
	buf := t.fmt.AppendRequest(nil, req, t.corr)
	t.conn.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := t.conn.Write(buf); err != nil {
		return fail(err)
	}
	if p, ok := req.(*kmsg.ProduceRequest); ok && p.Acks == 0 {
		return nil, nil
	}
	var size [4]byte
	if _, err := io.ReadFull(t.conn, size[:]); err != nil {
		return fail(err)
	}
	body := make([]byte, binary.BigEndian.Uint32(size[:]))
	if _, err := io.ReadFull(t.conn, body); err != nil {
		return fail(err)
	}
	if len(body) < 4 || int32(binary.BigEndian.Uint32(body)) != t.corr {
		return fail(fmt.Errorf("bad correlation id in %d-byte response", len(body)))
	}
	body = body[4:]
	// Flexible responses have a tagged-field section after the
	// correlation id, except ApiVersions (KIP-511).
	if req.IsFlexible() && req.Key() != 18 {
		var err error
		if body, err = skipTags(body); err != nil {
			return fail(err)
		}
	}
	resp := req.ResponseKind()
	resp.SetVersion(req.GetVersion())
	if err := resp.ReadFrom(body); err != nil {
		return nil, fmt.Errorf("decoding %s v%d response: %v", kmsg.NameForKey(req.Key()), req.GetVersion(), err)
	}
	return resp, nil
}

// save keeps the values saves names (name -> path) of resp.
func (t *target) save(resp kmsg.Response, saves map[string]string) error {
	if len(saves) == 0 {
		return nil
	}
	raw, err := json.Marshal(resp)
	if err != nil {
		return err
	}
	for name, path := range saves {
		v := json.RawMessage(raw)
		for _, f := range strings.Split(path, ".") {
			var arr []json.RawMessage
			if json.Unmarshal(v, &arr) == nil {
				if len(arr) == 0 {
					return fmt.Errorf("%s: save %s=%s: empty array before %s", t.name, name, path, f)
				}
				v = arr[0]
			}
			var obj map[string]json.RawMessage
			if err := json.Unmarshal(v, &obj); err != nil {
				return fmt.Errorf("%s: save %s=%s: %v", t.name, name, path, err)
			}
			if v = obj[f]; v == nil {
				return fmt.Errorf("%s: save %s=%s: no field %s", t.name, name, path, f)
			}
		}
		t.vars[name] = v
	}
	return nil
}

// substitute writes the saved values where the request says "$name".
func (t *target) substitute(in string) (string, error) {
	var err error
	out := varRef.ReplaceAllStringFunc(in, func(m string) string {
		v, ok := t.vars[m[2:len(m)-1]]
		if !ok {
			err = fmt.Errorf("%s: %s was not saved", t.name, m)
			return m
		}
		return string(v)
	})
	return out, err
}

// number is v as an integer: a literal, or $name, a saved number.
func (t *target) number(v string) (int64, error) {
	if name, ok := strings.CutPrefix(v, "$"); ok {
		raw, ok := t.vars[name]
		if !ok {
			return 0, fmt.Errorf("%s: $%s was not saved", t.name, name)
		}
		v = string(raw)
	}
	return strconv.ParseInt(v, 10, 64)
}

var varRef = regexp.MustCompile(`"\$[A-Za-z][A-Za-z0-9_]*"`)

func skipTags(b []byte) ([]byte, error) {
	n, l := binary.Uvarint(b)
	if l <= 0 {
		return nil, errors.New("bad tag count")
	}
	b = b[l:]
	for range n {
		_, l := binary.Uvarint(b)
		if l <= 0 {
			return nil, errors.New("bad tag")
		}
		b = b[l:]
		size, l := binary.Uvarint(b)
		if l <= 0 || uint64(len(b)-l) < size {
			return nil, errors.New("bad tag size")
		}
		b = b[l+int(size):]
	}
	return b, nil
}

func (t *target) close() {
	for _, p := range t.peers {
		p.close()
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.conn != nil {
		t.conn.Close()
		t.conn = nil
	}
}

// targetOpts are the brokers a script runs against, from its
// "# targets:" line (targetOpts.parse); the zero value is one broker
// without an authorizer.
type targetOpts struct {
	// authorizer: Kafka with authorizer.class.name
	// (StandardAuthorizer), Gregor with its authorizer (Config.Authorizer,
	// `serve --authorizer`); on both User:ANONYMOUS, the principal of the
	// harness's unauthenticated connections, is a super user.
	authorizer bool
	// brokers: how many brokers each cluster has (1 or 3): Kafka
	// combined KRaft nodes 1..n, all voters; Gregor brokers 1..n.
	brokers int
}

func (o targetOpts) String() string {
	s := fmt.Sprintf("brokers=%d", o.n())
	if o.authorizer {
		s += " authorizer"
	}
	return s
}

func (o targetOpts) n() int { return max(o.brokers, 1) }

// scriptTargets reads a script's "# targets: [authorizer] [brokers=N]"
// line, among the comment lines at its top.
func scriptTargets(path string) (targetOpts, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return targetOpts{}, err
	}
	var o targetOpts
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(line, "#") {
			break
		}
		rest, ok := strings.CutPrefix(line, "# targets:")
		if !ok {
			continue
		}
		for _, f := range strings.Fields(rest) {
			switch {
			case f == "authorizer":
				o.authorizer = true
			case strings.HasPrefix(f, "brokers="):
				n, err := strconv.Atoi(strings.TrimPrefix(f, "brokers="))
				if err != nil || (n != 1 && n != 3) {
					return o, fmt.Errorf("%s: %q: brokers=1 or brokers=3", path, f)
				}
				o.brokers = n
			default:
				return o, fmt.Errorf("%s: unknown target option %q", path, f)
			}
		}
	}
	return o, nil
}

const anonymous = "User:ANONYMOUS"

// startGregor runs o.n() Gregor brokers in this process, as `gregor dev`
// does (engine/runtime, 127.0.0.1, ports chosen by the OS), with the
// settings Kafka gets in kafkaProperties: auto-creation on, Kafka's
// default partitions and replication factor, no initial rebalance delay.
// The target is broker 1; stop stops them all.
func startGregor(t *testing.T, o targetOpts) (*target, func()) {
	t.Helper()
	dir, err := os.MkdirTemp("", "gregor-conformance-")
	if err != nil {
		t.Fatal(err)
	}
	// The broker's log only with GREGOR_CONFORMANCE_LOG set: make
	// conformance runs with -v for its table.
	var logf func(string, ...any)
	if os.Getenv("GREGOR_CONFORMANCE_LOG") != "" {
		logf = func(format string, args ...any) { t.Logf("gregor: "+format, args...) }
	}
	var nodes []*runtime.Node
	stopped := map[int]bool{}
	stop := func() {
		for i, n := range nodes {
			if !stopped[i] {
				n.Stop()
			}
		}
		os.RemoveAll(dir)
	}
	fail := func(format string, args ...any) {
		stop()
		t.Fatalf(format, args...)
	}
	var infos []engine.BrokerInfo
	peers := map[int32]string{}
	for id := int32(1); id <= int32(o.n()); id++ {
		cfg := engine.Config{
			ID:                           id,
			AutoCreateTopics:             true,
			DefaultPartitions:            1,
			DefaultReplicationFactor:     1,
			GroupInitialRebalanceDelayMs: -1,
			TransactionVersion:           2,
			// Set in kafkaProperties' server.properties too.
			StaticConfigs: []string{"auto.create.topics.enable", "num.partitions", "default.replication.factor",
				"offsets.topic.replication.factor", "transaction.state.log.replication.factor", "group.initial.rebalance.delay.ms"},
		}
		if o.authorizer {
			cfg.Authorizer, cfg.SuperUsers = true, []string{anonymous}
		}
		n, err := runtime.Listen(runtime.Config{
			Broker:      cfg,
			DataDir:     filepath.Join(dir, fmt.Sprintf("broker-%d", id)),
			KafkaListen: "127.0.0.1:0",
			PeerListen:  "127.0.0.1:0",
			Logf:        logf,
		})
		if err != nil {
			fail("gregor: %v", err)
		}
		nodes = append(nodes, n)
		host, port := splitAddr(t, n.KafkaAddr())
		infos = append(infos, engine.BrokerInfo{ID: id, Host: host, Port: port})
		peers[id] = n.PeerAddr()
	}
	for _, n := range nodes {
		n.SetCluster(infos)
		n.SetPeers(peers)
	}
	for _, n := range nodes {
		if err := n.Run(); err != nil {
			fail("gregor: %v", err)
		}
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		var lead uint64
		if err := nodes[0].Do(func(b *engine.Broker) { lead = b.MetadataLeader() }); err == nil && lead != 0 {
			break
		}
		if time.Now().After(deadline) {
			fail("gregor: no controller within 20s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	tg := newTarget("gregor", nodes[0].KafkaAddr())
	tg.brokers = o.n()
	tg.stopNode = func(id int32) error {
		i := int(id) - 1
		if i <= 0 || i >= len(nodes) || stopped[i] {
			return fmt.Errorf("broker %d: not one that may be stopped", id)
		}
		stopped[i] = true
		return nodes[i].Stop()
	}
	if err := waitBrokers(tg, o.n()); err != nil {
		fail("gregor: %v", err)
	}
	return tg, func() { tg.close(); stop() }
}

// waitBrokers polls Metadata until it lists n brokers and a controller.
func waitBrokers(tg *target, n int) error {
	deadline := time.Now().Add(60 * time.Second)
	last := "no answer"
	for time.Now().Before(deadline) {
		req := kmsg.NewPtrMetadataRequest()
		req.SetVersion(12)
		if r, err := tg.do(req); err == nil {
			m := r.(*kmsg.MetadataResponse)
			if m.ControllerID >= 0 && len(m.Brokers) == n {
				return nil
			}
			last = fmt.Sprintf("controller %d, %d brokers", m.ControllerID, len(m.Brokers))
		} else {
			last = err.Error()
		}
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("%d brokers not ready within 60s: %s", n, last)
}

func splitAddr(t *testing.T, addr string) (string, int32) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	var port int32
	fmt.Sscan(p, &port)
	return host, port
}

// freePorts returns n distinct ports nothing listens on: all are held
// open until all are chosen, so that two calls cannot get the same port
// back (a Kafka node given the same port for both its listeners exits).
func freePorts(t *testing.T, n int) []int {
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports
}

const kafkaDir = "../testdata/kafka"

// kafkaProperties is node id of the KRaft cluster Gregor is compared
// with (voters: its controller quorum): the settings differ from Kafka's
// defaults only where a one-broker cluster needs them (replication
// factors of the internal topics) and where startGregor sets the same
// thing.
func kafkaProperties(id, port, cport int, voters, logDir string, o targetOpts) string {
	props := []string{
		"process.roles=broker,controller",
		fmt.Sprintf("node.id=%d", id),
		"controller.quorum.voters=" + voters,
		fmt.Sprintf("listeners=PLAINTEXT://127.0.0.1:%d,CONTROLLER://127.0.0.1:%d", port, cport),
		fmt.Sprintf("advertised.listeners=PLAINTEXT://127.0.0.1:%d", port),
		"controller.listener.names=CONTROLLER",
		"listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
		"log.dirs=" + logDir,
		"auto.create.topics.enable=true",
		"num.partitions=1",
		"default.replication.factor=1",
		"offsets.topic.replication.factor=1",
		"transaction.state.log.replication.factor=1",
		"transaction.state.log.min.isr=1",
		"group.initial.rebalance.delay.ms=0",
	}
	if o.authorizer {
		props = append(props,
			"authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
			"super.users="+anonymous)
	}
	return strings.Join(props, "\n") + "\n"
}

// startKafka builds the broker's class path on first use (mvn, about 12 s
// with a warm Maven repository), formats a fresh KRaft log directory per
// node and runs o.n() combined nodes, all voters; the target is node 1,
// and stop stops them (SIGTERM, then SIGKILL).
func startKafka(t *testing.T, o targetOpts) (*target, func()) {
	t.Helper()
	lib := filepath.Join(kafkaDir, "target", "lib")
	if _, err := os.Stat(filepath.Join(lib, "kafka_2.13-4.1.1.jar")); err != nil {
		t.Logf("building Kafka's class path in %s (mvn -q -B package)", kafkaDir)
		cmd := exec.Command("mvn", "-q", "-B", "package")
		cmd.Dir = kafkaDir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("mvn: %v\n%s", err, out)
		}
	}
	cp, err := filepath.Abs(lib)
	if err != nil {
		t.Fatal(err)
	}
	cp = filepath.Join(cp, "*")
	dir, err := os.MkdirTemp("", "kafka-conformance-")
	if err != nil {
		t.Fatal(err)
	}
	n := o.n()
	free := freePorts(t, 2*n)
	ports, cports := free[:n], free[n:]
	var voters []string
	for i := range n {
		voters = append(voters, fmt.Sprintf("%d@127.0.0.1:%d", i+1, cports[i]))
	}
	var dones []chan struct{}
	var cmds []*exec.Cmd
	stop := func() {
		for _, c := range cmds {
			c.Process.Signal(os.Interrupt)
		}
		for i, c := range cmds {
			select {
			case <-dones[i]:
			case <-time.After(15 * time.Second):
				c.Process.Kill()
				<-dones[i]
			}
		}
		os.RemoveAll(dir)
	}
	logs := make([]string, n)
	fail := func(format string, args ...any) {
		stop()
		t.Fatalf(format, args...)
	}
	// Smaller heaps with more nodes: the machine is shared.
	heap := "-Xmx512m"
	if n > 1 {
		heap = "-Xmx320m"
	}
	for i := range n {
		nodeDir := filepath.Join(dir, fmt.Sprintf("node-%d", i+1))
		if err := os.MkdirAll(nodeDir, 0o755); err != nil {
			fail("%v", err)
		}
		props := filepath.Join(nodeDir, "server.properties")
		if err := os.WriteFile(props, []byte(kafkaProperties(i+1, ports[i], cports[i], strings.Join(voters, ","), filepath.Join(nodeDir, "data"), o)), 0o644); err != nil {
			fail("%v", err)
		}
		if out, err := exec.Command("java", "-cp", cp, "kafka.tools.StorageTool", "format",
			"-t", "MkU3OEVBNTcwNTJENDM2Qg", "-c", props).CombinedOutput(); err != nil {
			fail("kafka storage format: %v\n%s", err, out)
		}
		logs[i] = filepath.Join(nodeDir, "kafka.log")
		logFile, err := os.Create(logs[i])
		if err != nil {
			fail("%v", err)
		}
		cmd := exec.Command("java", heap, "-cp", cp, "kafka.Kafka", props)
		cmd.Stdout, cmd.Stderr = logFile, logFile
		if err := cmd.Start(); err != nil {
			fail("%v", err)
		}
		done := make(chan struct{})
		go func() { cmd.Wait(); logFile.Close(); close(done) }()
		cmds, dones = append(cmds, cmd), append(dones, done)
	}
	tg := newTarget("kafka", fmt.Sprintf("127.0.0.1:%d", ports[0]))
	tg.log, tg.brokers = logs[0], n
	tg.stopNode = func(id int32) error {
		i := int(id) - 1
		if i <= 0 || i >= len(cmds) {
			return fmt.Errorf("node %d: not one that may be stopped", id)
		}
		cmds[i].Process.Signal(os.Interrupt)
		select {
		case <-dones[i]:
			return nil
		case <-time.After(60 * time.Second):
			cmds[i].Process.Kill()
			<-dones[i]
			return fmt.Errorf("node %d: no controlled shutdown within 60s (killed)", id)
		}
	}
	ready := make(chan error, 1)
	go func() { ready <- waitBrokers(tg, n) }()
	for {
		select {
		case err := <-ready:
			if err != nil {
				fail("kafka: %v\n%s", err, tail(logs[0]))
			}
			return tg, func() { tg.close(); stop() }
		case <-time.After(200 * time.Millisecond):
		}
		for i, d := range dones {
			select {
			case <-d:
				fail("kafka node %d exited:\n%s\n...\n%s", i+1, firstErrors(logs[i]), tail(logs[i]))
			default:
			}
		}
	}
}

// firstErrors is the first lines of a Kafka log that say ERROR or
// Exception: why a node stopped, which its last lines (shutting down) do
// not say.
func firstErrors(path string) string {
	b, _ := os.ReadFile(path)
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, "ERROR") || strings.Contains(l, "Exception") {
			out = append(out, l)
			if len(out) == 10 {
				break
			}
		}
	}
	return strings.Join(out, "\n")
}

func tail(path string) string {
	b, _ := os.ReadFile(path)
	var lines []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	return strings.Join(lines[max(0, len(lines)-40):], "\n")
}
