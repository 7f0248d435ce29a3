package main

// Consumer groups through real clients against a 3-broker Gregor cluster:
// kcat (librdkafka) -G with two members, kafkajs's consumer.run with
// commits, sarama's ConsumerGroup, and franz-go's kgo with the range and
// cooperative-sticky balancers and with static membership. Each checks
// that every produced record is consumed, by one member only, and that
// the commits land (read back with kadm); the kafkajs and sarama tests
// run a second consumer that must resume from the first one's commits.
// Like the other client tests, a missing client fails the test rather
// than skipping it (make test-deps installs them).
//
// Record counts and keys come from a seed the test prints;
// GREGOR_TEST_SEED=N repeats a run.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// groupCluster is what the group tests need of a cluster.
type groupCluster interface {
	seeds() []string
	client(opts ...kgo.Opt) *kgo.Client
}

// groupClusterStart starts the cluster the group tests run against:
// Gregor's, always. (Pointed at kfake.NewCluster, the same tests tell a
// client's or a test's problem from the engine's.)
var groupClusterStart = func(t *testing.T) groupCluster { return startLiveCluster(t) }

// groupCreateTopic creates a topic of RF 3 and waits for its leaders.
var groupCreateTopic = func(t *testing.T, cl *kgo.Client, topic string, partitions int32) {
	t.Helper()
	createTopic(t, cl, topic, partitions, 3)
}

// groupsRunMax bounds one client process of these tests.
const groupsRunMax = 90 * time.Second

// groupsRand returns a generator seeded from GREGOR_TEST_SEED or the clock,
// and logs the seed.
func groupsRand(t *testing.T) *rand.Rand {
	t.Helper()
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("GREGOR_TEST_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("GREGOR_TEST_SEED=%q: %v", s, err)
		}
		seed = v
	}
	t.Logf("seed %d (GREGOR_TEST_SEED=%d repeats this run)", seed, seed)
	return rand.New(rand.NewPCG(seed, 0x6772656730))
}

// groupValue is the value of record i in the group tests.
func groupValue(prefix string, i int) string { return fmt.Sprintf("%s-%d", prefix, i) }

// produceGroupRecords produces records prefix-from .. prefix-(to-1), record i to
// partition i mod partitions, so that every partition has some, with
// random keys; it fails the test unless every one is acknowledged.
func produceGroupRecords(t *testing.T, cl *kgo.Client, rng *rand.Rand, topic string, partitions int32, prefix string, from, to int) {
	t.Helper()
	rs := make([]*kgo.Record, 0, to-from)
	for i := from; i < to; i++ {
		rs = append(rs, &kgo.Record{
			Topic:     topic,
			Partition: int32(i) % partitions,
			Key:       []byte(fmt.Sprintf("key-%d", rng.IntN(1000))),
			Value:     []byte(groupValue(prefix, i)),
		})
	}
	ctx, cancel := context.WithTimeout(context.Background(), testWaitMax)
	defer cancel()
	if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		t.Fatalf("produce %s-%d..%d to %s: %v", prefix, from, to-1, topic, err)
	}
}

// groupsProducer is a client that produces to the partition a record
// names, uncompressed (kafkajs has no snappy codec of its own).
func groupsProducer(c groupCluster) *kgo.Client {
	return c.client(kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerBatchCompression(kgo.NoCompression()))
}

// groupsEndOffsets is every partition's high watermark.
func groupsEndOffsets(t *testing.T, adm *kadm.Client, topic string) map[int32]int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	listed, err := adm.ListEndOffsets(ctx, topic)
	if err == nil {
		err = listed.Error()
	}
	if err != nil {
		t.Fatalf("ListOffsets (latest) of %s: %v", topic, err)
	}
	out := map[int32]int64{}
	listed.Each(func(o kadm.ListedOffset) { out[o.Partition] = o.Offset })
	return out
}

// groupsCommitted is what OffsetFetch answers for group's partitions of
// topic (-1 where nothing is committed), or an error.
func groupsCommitted(adm *kadm.Client, group, topic string) (map[int32]int64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resps, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		return nil, err
	}
	out := map[int32]int64{}
	for p, r := range resps[topic] {
		if r.Err != nil {
			return nil, fmt.Errorf("partition %d: %w", p, r.Err)
		}
		out[p] = r.At
	}
	return out, nil
}

// waitGroupCommitted waits until group's committed offsets of topic are want,
// as OffsetFetch (kadm.FetchOffsets) reports them.
func waitGroupCommitted(t *testing.T, adm *kadm.Client, group, topic string, want map[int32]int64) {
	t.Helper()
	waitFor(t, fmt.Sprintf("group %s to commit %v on %s", group, want, topic), func() (bool, string) {
		got, err := groupsCommitted(adm, group, topic)
		if err != nil {
			return false, "OffsetFetch: " + err.Error()
		}
		for p, off := range want {
			if got[p] != off {
				return false, fmt.Sprintf("committed %v", got)
			}
		}
		return true, ""
	})
}

// waitGroupEmpty waits until DescribeGroups shows group with no members.
func waitGroupEmpty(t *testing.T, adm *kadm.Client, group string) {
	t.Helper()
	waitFor(t, "group "+group+" to be empty after its members closed", func() (bool, string) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		described, err := adm.DescribeGroups(ctx, group)
		if err != nil {
			return false, "DescribeGroups: " + err.Error()
		}
		d := described[group]
		if d.Err != nil {
			return false, "DescribeGroups: " + d.Err.Error()
		}
		return d.State == "Empty" && len(d.Members) == 0, fmt.Sprintf("state %q, %d members", d.State, len(d.Members))
	})
}

// groupValues is the set prefix-from .. prefix-(to-1).
func groupValues(prefix string, from, to int) map[string]bool {
	m := map[string]bool{}
	for i := from; i < to; i++ {
		m[groupValue(prefix, i)] = true
	}
	return m
}

// missingValues lists up to 10 of want's values not in got, and how many.
func missingValues(want map[string]bool, got func(string) bool) (int, []string) {
	var n int
	var some []string
	for _, v := range slices.Sorted(maps.Keys(want)) {
		if !got(v) {
			n++
			if len(some) < 10 {
				some = append(some, v)
			}
		}
	}
	return n, some
}

// ---- kcat -G ----

// kcatMember is one `kcat -G` process: what it printed and the assignment
// its last rebalance gave it.
type kcatMember struct {
	name string
	cmd  *exec.Cmd
	done chan struct{} // closed once both outputs are read to the end

	mu       sync.Mutex
	assigned map[int32]bool // nil before the first assignment
	got      map[string][]int32
	records  int
	stderr   strings.Builder
}

var kcatPartitionRE = regexp.MustCompile(`\[(\d+)\]`)

// startKcatMember starts kcat -G group topic with librdkafka's defaults
// except quicker heartbeats and commits, reading from the start of a
// partition without a committed offset.
func startKcatMember(t *testing.T, name, brokers, group, topic string) *kcatMember {
	t.Helper()
	m := &kcatMember{name: name, done: make(chan struct{}), got: map[string][]int32{}}
	m.cmd = exec.Command(kcatPath(t), "-b", brokers, "-G", group, "-u",
		"-f", `%p\t%o\t%s\n`,
		"-X", "client.id="+name,
		"-X", "auto.offset.reset=earliest",
		"-X", "heartbeat.interval.ms=500",
		"-X", "session.timeout.ms=10000",
		"-X", "auto.commit.interval.ms=100",
		topic)
	stdout, err := m.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr, err := m.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := m.cmd.Start(); err != nil {
		t.Fatalf("start kcat -G (%s): %v", name, err)
	}
	t.Cleanup(func() {
		if m.cmd.ProcessState == nil {
			m.cmd.Process.Kill()
			m.cmd.Wait()
		}
	})
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			f := strings.Split(sc.Text(), "\t")
			m.mu.Lock()
			if len(f) == 3 {
				p, _ := strconv.Atoi(f[0])
				m.got[f[2]] = append(m.got[f[2]], int32(p))
				m.records++
			} else {
				fmt.Fprintf(&m.stderr, "(stdout) %s\n", sc.Text())
			}
			m.mu.Unlock()
		}
	}()
	go func() {
		defer wg.Done()
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			l := sc.Text()
			m.mu.Lock()
			m.stderr.WriteString(l + "\n")
			// "% Group G rebalanced (memberid M): assigned: T [0], T [2]"
			if i := strings.Index(l, "assigned: "); i >= 0 && strings.Contains(l, "rebalanced") {
				m.assigned = map[int32]bool{}
				for _, sm := range kcatPartitionRE.FindAllStringSubmatch(l[i:], -1) {
					p, _ := strconv.Atoi(sm[1])
					m.assigned[int32(p)] = true
				}
			} else if strings.Contains(l, "revoked: ") && strings.Contains(l, "rebalanced") {
				m.assigned = map[int32]bool{}
			}
			m.mu.Unlock()
		}
	}()
	go func() { wg.Wait(); close(m.done) }()
	return m
}

// assignment is the member's current assignment, sorted.
func (m *kcatMember) assignment() []int32 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Sorted(maps.Keys(m.assigned))
}

// stop sends SIGTERM, on which kcat closes its consumer (a last commit
// and LeaveGroup), and waits for it to exit.
func (m *kcatMember) stop(t *testing.T) {
	t.Helper()
	if err := m.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Errorf("signal kcat %s: %v", m.name, err)
	}
	select {
	case <-m.done:
	case <-time.After(kcatRunMax):
		m.cmd.Process.Kill()
		t.Errorf("kcat %s did not exit within %v of SIGTERM", m.name, kcatRunMax)
		<-m.done
	}
	if err := m.cmd.Wait(); err != nil {
		t.Errorf("kcat %s: %v", m.name, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	t.Logf("kcat %s stderr:\n%s", m.name, m.stderr.String())
}

// disjointCover reports whether the assignments are all non-empty,
// disjoint and together cover partitions 0..n-1.
func disjointCover(n int32, as ...[]int32) bool {
	seen := map[int32]bool{}
	for _, a := range as {
		if len(a) == 0 {
			return false
		}
		for _, p := range a {
			if seen[p] || p < 0 || p >= n {
				return false
			}
			seen[p] = true
		}
	}
	return len(seen) == int(n)
}

// TestGroupClientsKcat runs two kcat -G members of one group on a
// 4-partition topic: both are assigned partitions, each record produced
// afterwards is consumed by the member that owns its partition and by no
// other, the auto-commits reach every partition's end, and once both close
// the group is empty.
func TestGroupClientsKcat(t *testing.T) {
	const (
		topic      = "groups-kcat"
		group      = "groups-kcat-group"
		partitions = 4
	)
	kcatPath(t)
	rng := groupsRand(t)
	n := 200 + rng.IntN(300)
	c := groupClusterStart(t)
	brokers := strings.Join(c.seeds(), ",")
	cl := groupsProducer(c)
	adm := kadm.NewClient(cl)
	groupCreateTopic(t, cl, topic, partitions)

	a := startKcatMember(t, "kcat-a", brokers, group, topic)
	b := startKcatMember(t, "kcat-b", brokers, group, topic)
	waitFor(t, "both kcat members to be assigned a share of the partitions", func() (bool, string) {
		as, bs := a.assignment(), b.assignment()
		return disjointCover(partitions, as, bs), fmt.Sprintf("a %v, b %v", as, bs)
	})
	owner := map[int32]string{}
	for _, m := range []*kcatMember{a, b} {
		for _, p := range m.assignment() {
			owner[p] = m.name
		}
	}
	t.Logf("assignment: %v; producing %d records", owner, n)

	produceGroupRecords(t, cl, rng, topic, partitions, "kcat", 0, n)
	want := groupValues("kcat", 0, n)
	waitFor(t, "the kcat members to consume every record", func() (bool, string) {
		a.mu.Lock()
		defer a.mu.Unlock()
		b.mu.Lock()
		defer b.mu.Unlock()
		k, some := missingValues(want, func(v string) bool { return len(a.got[v]) > 0 || len(b.got[v]) > 0 })
		return k == 0, fmt.Sprintf("%d not consumed, e.g. %v; a has %d records, b %d", k, some, a.records, b.records)
	})
	waitGroupCommitted(t, adm, group, topic, groupsEndOffsets(t, adm, topic))

	// Check what each consumed while both still run: the assignment has
	// not changed since the records were produced.
	if as, bs := a.assignment(), b.assignment(); !disjointCover(partitions, as, bs) {
		t.Errorf("the assignment changed while consuming: a %v, b %v", as, bs)
	}
	a.mu.Lock()
	b.mu.Lock()
	for _, m := range []*kcatMember{a, b} {
		for v, ps := range m.got {
			if !want[v] {
				t.Errorf("kcat %s consumed %q, which was not produced", m.name, v)
			}
			for _, p := range ps {
				if owner[p] != m.name {
					t.Errorf("kcat %s consumed %s from partition %d, assigned to %s", m.name, v, p, owner[p])
				}
			}
			if len(ps) > 1 {
				t.Logf("kcat %s consumed %s %d times", m.name, v, len(ps))
			}
		}
		if m.records == 0 {
			t.Errorf("kcat %s consumed nothing", m.name)
		}
	}
	for v := range a.got {
		if len(b.got[v]) > 0 {
			t.Errorf("%s consumed by both members", v)
		}
	}
	t.Logf("kcat-a consumed %d records, kcat-b %d", a.records, b.records)
	a.mu.Unlock()
	b.mu.Unlock()

	a.stop(t)
	b.stop(t)
	waitGroupEmpty(t, adm, group)
}

// ---- kafkajs consumer.run ----

// kafkajsGroupSummary is the JSON line group_consume.js prints.
type kafkajsGroupSummary struct {
	Consumed []struct {
		Partition int32  `json:"partition"`
		Offset    string `json:"offset"`
		Value     string `json:"value"`
	} `json:"consumed"`
	Assigned  []int32          `json:"assigned"`
	Committed map[string]int64 `json:"committed"`
	Errors    []string         `json:"errors"`
	Crashes   []string         `json:"crashes"`
	// Milliseconds from the start to the group join, to the last wanted
	// record, and to the end of disconnect.
	JoinedMs       int64 `json:"joinedMs"`
	ConsumedMs     int64 `json:"consumedMs"`
	DisconnectedMs int64 `json:"disconnectedMs"`
}

// runKafkajsGroup runs group_consume.js until it has consumed
// prefix-from .. prefix-(to-1).
func runKafkajsGroup(t *testing.T, c groupCluster, topic, group, prefix string, from, to int) kafkajsGroupSummary {
	t.Helper()
	node := kafkajsCommand(t)
	ctx, cancel := context.WithTimeout(context.Background(), groupsRunMax)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "group_consume.js", strings.Join(c.seeds(), ","), topic, group,
		prefix, strconv.Itoa(from), strconv.Itoa(to))
	cmd.Dir = kafkajsDir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	runErr := cmd.Run()
	t.Logf("node group_consume.js (%s-%d..%d) ran %v", prefix, from, to-1, time.Since(start))
	if s := stderr.String(); s != "" {
		t.Logf("kafkajs stderr:\n%s", s)
	}
	var s kafkajsGroupSummary
	if err := json.Unmarshal(bytes.TrimSpace(stdout.Bytes()), &s); err != nil {
		t.Fatalf("node group_consume.js: %v; summary is not JSON: %v\n%s", runErr, err, stdout.String())
	}
	t.Logf("kafkajs joined at %d ms, consumed everything at %d ms, left at %d ms; assigned %v, committed %v",
		s.JoinedMs, s.ConsumedMs, s.DisconnectedMs, s.Assigned, s.Committed)
	for _, e := range s.Crashes {
		t.Logf("kafkajs consumer crashed: %s", e)
	}
	for _, e := range s.Errors {
		t.Errorf("kafkajs: %s", e)
	}
	if runErr != nil {
		t.Fatalf("node group_consume.js: %v", runErr)
	}
	return s
}

// TestGroupClientsKafkaJS runs kafkajs's consumer.run in a group that
// commits each message's offset, then a second consumer of the group that
// must start at those commits: it sees the records produced since, and
// none of the first run's.
func TestGroupClientsKafkaJS(t *testing.T) {
	const (
		topic      = "groups-kafkajs"
		group      = "groups-kafkajs-group"
		partitions = 3
	)
	rng := groupsRand(t)
	n := 100 + rng.IntN(200)
	c := groupClusterStart(t)
	cl := groupsProducer(c)
	adm := kadm.NewClient(cl)
	groupCreateTopic(t, cl, topic, partitions)

	produceGroupRecords(t, cl, rng, topic, partitions, "js", 0, n)
	first := runKafkajsGroup(t, c, topic, group, "js", 0, n)
	checkKafkajsRun(t, first, groupValues("js", 0, n), nil)
	ends := groupsEndOffsets(t, adm, topic)
	for p, off := range ends {
		if got := first.Committed[strconv.Itoa(int(p))]; got != off {
			t.Errorf("after the first run, kafkajs admin.fetchOffsets shows partition %d at %d, want its end %d", p, got, off)
		}
	}
	waitGroupCommitted(t, adm, group, topic, ends)

	produceGroupRecords(t, cl, rng, topic, partitions, "js", n, 2*n)
	second := runKafkajsGroup(t, c, topic, group, "js", n, 2*n)
	checkKafkajsRun(t, second, groupValues("js", n, 2*n), groupValues("js", 0, n))
	waitGroupCommitted(t, adm, group, topic, groupsEndOffsets(t, adm, topic))
}

// checkKafkajsRun checks that a run consumed every value of want, each
// once, and none of old.
func checkKafkajsRun(t *testing.T, s kafkajsGroupSummary, want, old map[string]bool) {
	t.Helper()
	seen := map[string]int{}
	for _, r := range s.Consumed {
		seen[r.Value]++
		switch {
		case old[r.Value]:
			t.Errorf("kafkajs consumed %s (partition %d offset %s) again: the group committed past it", r.Value, r.Partition, r.Offset)
		case !want[r.Value]:
			t.Errorf("kafkajs consumed %s (partition %d offset %s), which it was not waiting for", r.Value, r.Partition, r.Offset)
		case seen[r.Value] == 2:
			t.Errorf("kafkajs consumed %s twice in one run", r.Value)
		}
	}
	if k, some := missingValues(want, func(v string) bool { return seen[v] > 0 }); k > 0 {
		t.Errorf("kafkajs did not consume %d records, e.g. %v", k, some)
	}
	if len(s.Assigned) == 0 {
		t.Errorf("kafkajs reported no assigned partitions")
	}
}

// ---- sarama ConsumerGroup ----

// saramaHandler consumes until it has seen every value of want, marking
// and committing each message.
type saramaHandler struct {
	want map[string]bool
	done context.CancelFunc

	mu       sync.Mutex
	got      map[string]int
	claimed  map[int32]bool
	sessions int
}

func (h *saramaHandler) Setup(s sarama.ConsumerGroupSession) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.sessions++
	for _, ps := range s.Claims() {
		for _, p := range ps {
			h.claimed[p] = true
		}
	}
	return nil
}

func (h *saramaHandler) Cleanup(s sarama.ConsumerGroupSession) error {
	s.Commit()
	return nil
}

func (h *saramaHandler) ConsumeClaim(s sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	for {
		select {
		case msg, ok := <-claim.Messages():
			if !ok {
				return nil
			}
			s.MarkMessage(msg, "")
			if len(claim.Messages()) == 0 {
				s.Commit()
			}
			h.mu.Lock()
			h.got[string(msg.Value)]++
			k, _ := missingValues(h.want, func(v string) bool { return h.got[v] > 0 })
			h.mu.Unlock()
			if k == 0 {
				s.Commit()
				h.done()
			}
		case <-s.Context().Done():
			return nil
		}
	}
}

// runSaramaGroup runs a sarama ConsumerGroup member until it has consumed
// every value of want, and returns what it consumed.
func runSaramaGroup(t *testing.T, c groupCluster, topic, group string, want map[string]bool) *saramaHandler {
	t.Helper()
	cfg := sarama.NewConfig()
	cfg.ClientID = "gregor-sarama-test"
	cfg.Consumer.Return.Errors = true
	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	cfg.Consumer.Offsets.AutoCommit.Enable = false
	cfg.Consumer.Group.Heartbeat.Interval = 500 * time.Millisecond
	cfg.Metadata.Retry.Backoff = 100 * time.Millisecond
	cfg.Consumer.Retry.Backoff = 100 * time.Millisecond
	cg, err := sarama.NewConsumerGroup(c.seeds(), group, cfg)
	if err != nil {
		t.Fatalf("sarama.NewConsumerGroup: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), testWaitMax)
	defer cancel()
	h := &saramaHandler{want: want, done: cancel, got: map[string]int{}, claimed: map[int32]bool{}}
	var errs []error
	var errsMu sync.Mutex
	errsDone := make(chan struct{})
	go func() {
		defer close(errsDone)
		for err := range cg.Errors() {
			errsMu.Lock()
			errs = append(errs, err)
			errsMu.Unlock()
		}
	}()
	start := time.Now()
	for ctx.Err() == nil {
		if err := cg.Consume(ctx, []string{topic}, h); err != nil {
			if ctx.Err() == nil {
				t.Errorf("sarama Consume: %v", err)
			}
			break
		}
	}
	if err := cg.Close(); err != nil {
		t.Errorf("sarama ConsumerGroup.Close: %v", err)
	}
	<-errsDone
	t.Logf("sarama member ran %v, %d sessions, claimed %v", time.Since(start), h.sessions, slices.Sorted(maps.Keys(h.claimed)))
	for _, err := range errs {
		t.Logf("sarama reported: %v", err)
	}
	if k, some := missingValues(want, func(v string) bool { return h.got[v] > 0 }); k > 0 {
		t.Fatalf("sarama did not consume %d records within %v, e.g. %v; errors %v", k, testWaitMax, some, errs)
	}
	return h
}

// TestGroupClientsSarama runs a sarama ConsumerGroup member that marks
// and commits what it consumes, then a second member of the group that
// must resume from those commits.
func TestGroupClientsSarama(t *testing.T) {
	const (
		topic      = "groups-sarama"
		group      = "groups-sarama-group"
		partitions = 3
	)
	rng := groupsRand(t)
	n := 100 + rng.IntN(200)
	c := groupClusterStart(t)
	cl := groupsProducer(c)
	adm := kadm.NewClient(cl)
	groupCreateTopic(t, cl, topic, partitions)

	produceGroupRecords(t, cl, rng, topic, partitions, "sarama", 0, n)
	first := runSaramaGroup(t, c, topic, group, groupValues("sarama", 0, n))
	for v, k := range first.got {
		if k > 1 {
			t.Errorf("the first sarama member consumed %s %d times", v, k)
		}
	}
	waitGroupCommitted(t, adm, group, topic, groupsEndOffsets(t, adm, topic))

	produceGroupRecords(t, cl, rng, topic, partitions, "sarama", n, 2*n)
	second := runSaramaGroup(t, c, topic, group, groupValues("sarama", n, 2*n))
	old := groupValues("sarama", 0, n)
	for v, k := range second.got {
		if old[v] {
			t.Errorf("the second sarama member consumed %s, committed by the first", v)
		} else if k > 1 {
			t.Errorf("the second sarama member consumed %s %d times", v, k)
		}
	}
	waitGroupCommitted(t, adm, group, topic, groupsEndOffsets(t, adm, topic))
}

// ---- franz-go kgo groups ----

// kgoMember is one kgo group member: a client polling in a goroutine and
// committing what it polled, its assignment as the callbacks tell it, and
// what it consumed.
type kgoMember struct {
	name   string
	cl     *kgo.Client
	cancel context.CancelFunc
	done   chan struct{}

	mu       sync.Mutex
	assigned map[int32]bool
	revoked  int // partitions revoked or lost so far
	got      map[string]int
	errs     []string
}

func startKgoMember(t *testing.T, c groupCluster, name, group, topic string, opts ...kgo.Opt) *kgoMember {
	t.Helper()
	m := &kgoMember{name: name, done: make(chan struct{}), assigned: map[int32]bool{}, got: map[string]int{}}
	drop := func(_ context.Context, _ *kgo.Client, ps map[string][]int32) {
		m.mu.Lock()
		defer m.mu.Unlock()
		for _, p := range ps[topic] {
			delete(m.assigned, p)
			m.revoked++
		}
	}
	opts = append([]kgo.Opt{
		kgo.ClientID(name),
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.DisableAutoCommit(),
		kgo.HeartbeatInterval(500 * time.Millisecond),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, ps map[string][]int32) {
			m.mu.Lock()
			defer m.mu.Unlock()
			for _, p := range ps[topic] {
				m.assigned[p] = true
			}
		}),
		kgo.OnPartitionsRevoked(func(ctx context.Context, cl *kgo.Client, ps map[string][]int32) {
			// Commit what was consumed before giving the partitions up.
			if err := cl.CommitUncommittedOffsets(ctx); err != nil {
				m.logErr("commit on revoke: %v", err)
			}
			drop(ctx, cl, ps)
		}),
		kgo.OnPartitionsLost(drop),
	}, opts...)
	m.cl = c.client(opts...)
	ctx, cancel := context.WithCancel(context.Background())
	m.cancel = cancel
	go func() {
		defer close(m.done)
		for ctx.Err() == nil {
			pctx, pcancel := context.WithTimeout(ctx, pollRoundMax)
			fs := m.cl.PollFetches(pctx)
			pcancel()
			fs.EachError(func(topic string, p int32, err error) {
				if ctx.Err() == nil && err != context.DeadlineExceeded && err != context.Canceled {
					m.logErr("fetch %s-%d: %v", topic, p, err)
				}
			})
			m.mu.Lock()
			fs.EachRecord(func(r *kgo.Record) { m.got[string(r.Value)]++ })
			m.mu.Unlock()
			if len(m.cl.UncommittedOffsets()) > 0 && ctx.Err() == nil {
				cctx, ccancel := context.WithTimeout(ctx, 10*time.Second)
				if err := m.cl.CommitUncommittedOffsets(cctx); err != nil && ctx.Err() == nil {
					m.logErr("commit: %v", err)
				}
				ccancel()
			}
		}
	}()
	t.Cleanup(func() { m.close(t) })
	return m
}

func (m *kgoMember) logErr(f string, a ...any) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.errs) < 20 {
		m.errs = append(m.errs, fmt.Sprintf(f, a...))
	}
}

// close stops polling and closes the client (which leaves the group
// unless the member is static); idempotent.
func (m *kgoMember) close(t *testing.T) {
	select {
	case <-m.done:
		return
	default:
	}
	m.cancel()
	<-m.done
	m.cl.Close()
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.errs) > 0 {
		t.Logf("%s reported: %s", m.name, strings.Join(m.errs, "; "))
	}
}

func (m *kgoMember) assignment() []int32 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Sorted(maps.Keys(m.assigned))
}

// consumeWithKgo waits until members are assigned a share of the topic's
// partitions each, produces prefix-from .. prefix-(to-1), waits until the
// members have consumed them all and committed up to every partition's
// end, and checks that no record went to two members.
func consumeWithKgo(t *testing.T, cl *kgo.Client, rng *rand.Rand, topic, group string, partitions int32, prefix string, from, to int, members ...*kgoMember) {
	t.Helper()
	adm := kadm.NewClient(cl)
	assignments := func() [][]int32 {
		var as [][]int32
		for _, m := range members {
			as = append(as, m.assignment())
		}
		return as
	}
	waitFor(t, "every member to be assigned a share of the partitions", func() (bool, string) {
		as := assignments()
		return disjointCover(partitions, as...), fmt.Sprintf("assignments %v", as)
	})
	t.Logf("assignments %v; producing %s-%d..%d", assignments(), prefix, from, to-1)
	produceGroupRecords(t, cl, rng, topic, partitions, prefix, from, to)
	want := groupValues(prefix, from, to)
	waitFor(t, "the members to consume every record", func() (bool, string) {
		var counts []int
		for _, m := range members {
			m.mu.Lock()
			defer m.mu.Unlock()
			counts = append(counts, len(m.got))
		}
		k, some := missingValues(want, func(v string) bool {
			for _, m := range members {
				if m.got[v] > 0 {
					return true
				}
			}
			return false
		})
		return k == 0, fmt.Sprintf("%d not consumed, e.g. %v; the members hold %v distinct records", k, some, counts)
	})
	waitGroupCommitted(t, adm, group, topic, groupsEndOffsets(t, adm, topic))
	if as := assignments(); !disjointCover(partitions, as...) {
		t.Errorf("the assignment changed while consuming: %v", as)
	}
	by := map[string][]string{}
	for _, m := range members {
		m.mu.Lock()
		for v, k := range m.got {
			if want[v] {
				by[v] = append(by[v], m.name)
				if k > 1 {
					t.Logf("%s consumed %s %d times", m.name, v, k)
				}
			}
		}
		m.mu.Unlock()
	}
	for v, ms := range by {
		if len(ms) > 1 {
			t.Errorf("%s consumed by %v: the members' assignments overlap", v, ms)
		}
	}
}

// TestGroupClientsKgo runs two kgo members of a group on a 6-partition
// topic with each balancer, and with static membership (KIP-345), where
// a member that closes and comes back with its instance id gets its
// partitions back and resumes from its commits.
func TestGroupClientsKgo(t *testing.T) {
	const partitions = 6
	for _, tc := range []struct {
		name     string
		balancer kgo.GroupBalancer
		extra    []kgo.Opt
	}{
		{"range", kgo.RangeBalancer(), nil},
		{"cooperative-sticky", kgo.CooperativeStickyBalancer(), nil},
		// KIP-848: franz-go's opt-in to ConsumerGroupHeartbeat, the
		// coordinator assigning with its range assignor.
		{"kip848", kgo.RangeBalancer(), []kgo.Opt{kgo.ServerSideBalancer()}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			topic, group := "groups-kgo-"+tc.name, "groups-kgo-"+tc.name+"-group"
			rng := groupsRand(t)
			n := 200 + rng.IntN(300)
			c := groupClusterStart(t)
			cl := groupsProducer(c)
			groupCreateTopic(t, cl, topic, partitions)
			opts := append([]kgo.Opt{kgo.Balancers(tc.balancer)}, tc.extra...)
			a := startKgoMember(t, c, "kgo-a", group, topic, opts...)
			b := startKgoMember(t, c, "kgo-b", group, topic, opts...)
			consumeWithKgo(t, cl, rng, topic, group, partitions, "kgo", 0, n, a, b)
			if tc.extra != nil {
				// The group really is a KIP-848 group, both members in it.
				req := kmsg.NewPtrConsumerGroupDescribeRequest()
				req.Groups = []string{group}
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				resp, err := req.RequestWith(ctx, cl)
				cancel()
				if err != nil || len(resp.Groups) != 1 || resp.Groups[0].ErrorCode != 0 || len(resp.Groups[0].Members) != 2 {
					t.Fatalf("ConsumerGroupDescribe: %v %+v", err, resp)
				}
			}
			a.close(t)
			b.close(t)
			waitGroupEmpty(t, kadm.NewClient(cl), group)
		})
	}

	t.Run("static", func(t *testing.T) {
		const topic, group = "groups-kgo-static", "groups-kgo-static-group"
		rng := groupsRand(t)
		n := 200 + rng.IntN(300)
		c := groupClusterStart(t)
		cl := groupsProducer(c)
		adm := kadm.NewClient(cl)
		groupCreateTopic(t, cl, topic, partitions)
		static := func(id string) *kgoMember {
			return startKgoMember(t, c, id, group, topic, kgo.InstanceID(id), kgo.SessionTimeout(30*time.Second))
		}
		a, b := static("static-a"), static("static-b")
		consumeWithKgo(t, cl, rng, topic, group, partitions, "static", 0, n, a, b)

		// DescribeGroups shows the two members by instance id.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		described, err := adm.DescribeGroups(ctx, group)
		cancel()
		if err != nil {
			t.Fatalf("DescribeGroups: %v", err)
		}
		d := described[group]
		var ids []string
		for _, m := range d.Members {
			if m.InstanceID != nil {
				ids = append(ids, *m.InstanceID)
			}
		}
		slices.Sort(ids)
		if d.Err != nil || d.State != "Stable" || !slices.Equal(ids, []string{"static-a", "static-b"}) {
			t.Errorf("DescribeGroups: error %v, state %q, instance ids %v; want Stable with static-a and static-b", d.Err, d.State, ids)
		}

		// b closes without leaving (static) and comes back: the same
		// partitions, and no record of the first batch again.
		before := b.assignment()
		aRevoked := func() int { a.mu.Lock(); defer a.mu.Unlock(); return a.revoked }
		revokedBefore := aRevoked()
		b.close(t)
		b2 := static("static-b")
		waitFor(t, "the restarted static-b to get its partitions back", func() (bool, string) {
			got := b2.assignment()
			return slices.Equal(got, before), fmt.Sprintf("static-b had %v, has %v after its restart; static-a has %v", before, got, a.assignment())
		})
		consumeWithKgo(t, cl, rng, topic, group, partitions, "static", n, 2*n, a, b2)
		b2.mu.Lock()
		for v := range b2.got {
			if i, _ := strconv.Atoi(strings.TrimPrefix(v, "static-")); i < n {
				t.Errorf("the restarted static-b consumed %s again, committed before its restart", v)
			}
		}
		b2.mu.Unlock()
		if r := aRevoked(); r != revokedBefore {
			t.Logf("static-a had %d partitions revoked while static-b restarted (a rebalance)", r-revokedBefore)
		}
		a.close(t)
		b2.close(t)
	})
}

// apiAdvertised reports whether the cluster's ApiVersions lists key.
func apiAdvertised(t *testing.T, cl *kgo.Client, key int16) bool {
	t.Helper()
	req := kmsg.NewPtrApiVersionsRequest()
	req.ClientSoftwareName, req.ClientSoftwareVersion = "gregor-test", "1"
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatalf("ApiVersions: %v", err)
	}
	for _, k := range resp.ApiKeys {
		if k.ApiKey == key {
			return true
		}
	}
	return false
}
