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

	mu   sync.Mutex
	conn net.Conn
	corr int32
	fmt  *kmsg.RequestFormatter
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
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.conn != nil {
		t.conn.Close()
		t.conn = nil
	}
}

// startGregor runs one Gregor broker in this process, as `gregor dev`
// does (engine/runtime, 127.0.0.1, ports chosen by the OS), with the
// settings Kafka gets in kafkaProperties: auto-creation on, Kafka's
// default partitions and replication factor, no initial rebalance delay.
func startGregor(t *testing.T) *target {
	t.Helper()
	dir := t.TempDir()
	// The broker's log only with GREGOR_CONFORMANCE_LOG set: make
	// conformance runs with -v for its table.
	var logf func(string, ...any)
	if os.Getenv("GREGOR_CONFORMANCE_LOG") != "" {
		logf = func(format string, args ...any) { t.Logf("gregor: "+format, args...) }
	}
	n, err := runtime.Listen(runtime.Config{
		Broker: engine.Config{
			ID:                           1,
			AutoCreateTopics:             true,
			DefaultPartitions:            1,
			DefaultReplicationFactor:     1,
			GroupInitialRebalanceDelayMs: -1,
			TransactionVersion:           2,
		},
		DataDir:     filepath.Join(dir, "broker-1"),
		KafkaListen: "127.0.0.1:0",
		PeerListen:  "127.0.0.1:0",
		Logf:        logf,
	})
	if err != nil {
		t.Fatalf("gregor: %v", err)
	}
	host, port := splitAddr(t, n.KafkaAddr())
	n.SetCluster([]engine.BrokerInfo{{ID: 1, Host: host, Port: port}})
	n.SetPeers(map[int32]string{1: n.PeerAddr()})
	if err := n.Run(); err != nil {
		n.Stop()
		t.Fatalf("gregor: %v", err)
	}
	t.Cleanup(func() { n.Stop() })
	deadline := time.Now().Add(20 * time.Second)
	for {
		var lead uint64
		if err := n.Do(func(b *engine.Broker) { lead = b.MetadataLeader() }); err == nil && lead != 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("gregor: no controller within 20s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	tg := newTarget("gregor", n.KafkaAddr())
	t.Cleanup(tg.close)
	return tg
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

func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

const kafkaDir = "../testdata/kafka"

// kafkaProperties is the single KRaft node Gregor is compared with: the
// settings differ from Kafka's defaults only where a one-broker cluster
// needs them (replication factors of the internal topics) and where
// startGregor sets the same thing.
func kafkaProperties(port, cport int, logDir string) string {
	return strings.Join([]string{
		"process.roles=broker,controller",
		"node.id=1",
		fmt.Sprintf("controller.quorum.voters=1@127.0.0.1:%d", cport),
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
	}, "\n") + "\n"
}

// startKafka builds the broker's class path on first use (mvn, about 12 s
// with a warm Maven repository), formats a fresh KRaft log directory and
// runs one node, stopped (SIGTERM, then SIGKILL) at cleanup.
func startKafka(t *testing.T) *target {
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
	dir := t.TempDir()
	port, cport := freePort(t), freePort(t)
	props := filepath.Join(dir, "server.properties")
	if err := os.WriteFile(props, []byte(kafkaProperties(port, cport, filepath.Join(dir, "data"))), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("java", "-cp", cp, "kafka.tools.StorageTool", "format",
		"-t", "MkU3OEVBNTcwNTJENDM2Qg", "-c", props).CombinedOutput(); err != nil {
		t.Fatalf("kafka storage format: %v\n%s", err, out)
	}
	logPath := filepath.Join(dir, "kafka.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("java", "-Xmx512m", "-cp", cp, "kafka.Kafka", props)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); logFile.Close(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	tg := newTarget("kafka", fmt.Sprintf("127.0.0.1:%d", port))
	tg.log = logPath
	t.Cleanup(tg.close)
	deadline := time.Now().Add(60 * time.Second)
	for {
		req := kmsg.NewPtrMetadataRequest()
		req.SetVersion(12)
		if r, err := tg.do(req); err == nil && r.(*kmsg.MetadataResponse).ControllerID >= 0 {
			break
		}
		select {
		case <-done:
			t.Fatalf("kafka exited:\n%s", tail(logPath))
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("kafka not ready within 60s:\n%s", tail(logPath))
		}
		time.Sleep(200 * time.Millisecond)
	}
	return tg
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
