package conformance

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"
	"github.com/twmb/franz-go/pkg/kmsg"
)

var withKafka = flag.Bool("kafka", false,
	"mode B: run every script against Apache Kafka (started from cmd/gregor/testdata/kafka) and Gregor, print per API matched/different/only-in-Kafka; with -rewrite record Kafka's answers")

const scripts = "../testdata/conformance"

// The script language (datadriven):
//
//	send api=<name or key> v=<version> [ignore=(Path.Field, ...)] [records=(ts, ...)] [value-bytes=N] [batches=N] [trailing=HEX] [producer=(id, epoch, seq)] [transactional] [leader=(topic, partition) | follower=(topic, partition)] [save=(name=Path.Field, ...)] [differs=(reason)]
//	<the request as JSON of its kmsg struct>
//	----
//	<Kafka's normalised answer>
//
// save= keeps a value of each broker's own answer (a path of kmsg field
// names from the response's top, an array's first element taken) under a
// name; a later request of that script writes "$name" (with the quotes)
// where it wants it, and each broker gets its own value: its member id,
// generation, producer id and epoch. leader= sends the request to the
// partition's leader in each cluster (three-broker scripts), follower= to
// one of its other replicas, not to the broker the harness talks to.
//
// records= fills every produced partition whose Records is null with one
// uncompressed batch, a record per timestamp (values v0, v1, ...; or
// value-bytes bytes each), repeated batches= times and followed by the
// trailing= bytes (hex); producer= gives that batch a producer id,
// epoch and first sequence (each a number or a saved "$name", without
// quotes), transactional sets its transactional bit. A step marked
// differs= has two answers:
//
//	kafka:
//	<Kafka's>
//	gregor:
//	<Gregor's>
//
//	wait-leaders topic=T partitions=N
//
// polls Metadata on every broker under test until T's N partitions have
// leaders and every replica in sync (but those offline), and then ListOffsets until each
// answers without an error (output: ok), and
//
//	wait-coordinator key=G [type=T]
//
// polls FindCoordinator until each broker names G's coordinator (ok);
// type=1 a transactional id's, and until the broker hands out producer
// ids. And
//
//	wait-transaction id=X state=S
//
// polls DescribeTransactions until X is in state S on each broker (ok):
// Kafka answers EndTxn before it writes the markers (PrepareCommit). And
//
//	wait-acls n=N
//
// polls DescribeAcls until it lists N bindings (ok): Kafka's broker learns
// an ACL change from its metadata log after CreateAcls or DeleteAcls
// answered. In three-broker scripts
//
//	stop-broker id=N
//	wait-isr topic=T partition=P size=N
//
// stop broker N (2 or 3; Kafka's controlled shutdown, Gregor's Node.Stop)
// for the rest of the script's kind, and poll Metadata until the
// partition's ISR has N replicas.
//
// A script's comment lines at its top may hold
//
//	# targets: [authorizer] [brokers=3]
//
// and the script then runs against brokers with an authorizer on
// (User:ANONYMOUS, the harness's principal, a super user) or clusters of
// three brokers (targetOpts); each kind is started when a script needs
// it, one at a time.
func TestConformance(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(scripts, "*.txt"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no scripts in %s: %v", scripts, err)
	}
	// Scripts run grouped by the brokers they ask for (one cluster of
	// each kind at a time: the machine may be small), the default first,
	// each group in file order.
	opts := map[string]targetOpts{}
	for _, f := range files {
		if opts[f], err = scriptTargets(f); err != nil {
			t.Fatal(err)
		}
	}
	sort.SliceStable(files, func(i, j int) bool { return opts[files[i]].String() < opts[files[j]].String() })
	start := time.Now()
	r := &run{stats: map[string]*apiStat{}}
	t.Cleanup(r.stopTargets)
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".txt"), func(t *testing.T) {
			r.useTargets(t, opts[f])
			// Each script names member ids from <member-1>, whatever ran
			// before it, so one runs alone as in the whole corpus.
			for _, tg := range r.targets() {
				clear(tg.members)
			}
			datadriven.RunTest(t, f, func(t *testing.T, d *datadriven.TestData) string {
				return r.step(t, d)
			})
		})
	}
	if r.gregor == nil {
		return // every script filtered out
	}
	if *withKafka {
		r.report(t)
	}
	t.Logf("%d scripts in %v", len(files), time.Since(start).Round(time.Millisecond))
}

type run struct {
	kafka, gregor *target
	opts          targetOpts // what kafka and gregor are
	stop          []func()

	mu       sync.Mutex
	stats    map[string]*apiStat
	problems []string // mode B: recordings or differs marks out of date
	diffs    []string // mode B: every step that differs
}

// useTargets makes the brokers o asks for the targets, stopping the
// previous ones if they are of another kind. The report's ApiVersions
// comparison asks the last ones.
func (r *run) useTargets(t *testing.T, o targetOpts) {
	if r.gregor != nil && r.opts == o {
		return
	}
	r.stopTargets()
	r.opts = o
	start := time.Now()
	if *withKafka {
		k, stop := startKafka(t, o)
		r.kafka, r.stop = k, append(r.stop, stop)
		t.Logf("kafka (%s) ready at %s in %v", o, k.addr, time.Since(start).Round(time.Millisecond))
	}
	g, stop := startGregor(t, o)
	r.gregor, r.stop = g, append(r.stop, stop)
}

func (r *run) stopTargets() {
	for _, s := range r.stop {
		s()
	}
	r.stop, r.kafka, r.gregor = nil, nil, nil
}

type apiStat struct{ matched, different, onlyKafka int }

func (r *run) targets() []*target {
	if r.kafka != nil {
		return []*target{r.kafka, r.gregor}
	}
	return []*target{r.gregor}
}

// onTargets runs fn on each target in turn, failing the test at the
// first error; it answers a wait step's "ok".
func (r *run) onTargets(t *testing.T, d *datadriven.TestData, fn func(*target) error) string {
	t.Helper()
	for _, tg := range r.targets() {
		if err := fn(tg); err != nil {
			t.Fatalf("%s: %s: %v", d.Pos, tg.name, err)
		}
	}
	return "ok"
}

func (r *run) step(t *testing.T, d *datadriven.TestData) string {
	switch d.Cmd {
	case "send":
		return r.send(t, d)
	case "wait-leaders":
		var topic string
		var n int
		d.ScanArgs(t, "topic", &topic)
		d.ScanArgs(t, "partitions", &n)
		return r.onTargets(t, d, func(tg *target) error { return waitLeaders(tg, topic, n) })
	case "wait-coordinator":
		var key string
		var typ int
		d.ScanArgs(t, "key", &key)
		if d.HasArg("type") {
			d.ScanArgs(t, "type", &typ)
		}
		return r.onTargets(t, d, func(tg *target) error { return waitCoordinator(tg, key, int8(typ)) })
	case "stop-broker":
		var id int
		d.ScanArgs(t, "id", &id)
		return r.onTargets(t, d, func(tg *target) error {
			if tg.stopNode == nil {
				return errors.New("no broker to stop")
			}
			return tg.stopNode(int32(id))
		})
	case "wait-isr":
		var topic string
		var part, size int
		d.ScanArgs(t, "topic", &topic)
		d.ScanArgs(t, "partition", &part)
		d.ScanArgs(t, "size", &size)
		return r.onTargets(t, d, func(tg *target) error { return waitISR(tg, topic, int32(part), size) })
	case "wait-acls":
		var n int
		d.ScanArgs(t, "n", &n)
		return r.onTargets(t, d, func(tg *target) error { return waitACLs(tg, n) })
	case "wait-transaction":
		var id, state string
		d.ScanArgs(t, "id", &id)
		d.ScanArgs(t, "state", &state)
		return r.onTargets(t, d, func(tg *target) error { return waitTransaction(tg, id, state) })
	}
	t.Fatalf("%s: unknown command %q", d.Pos, d.Cmd)
	return ""
}

// answer is one broker's normalised response to a step.
func answer(tg *target, req kmsg.Request, ignore map[string]bool, saves map[string]string) (string, error) {
	resp, err := tg.do(req)
	switch {
	case err == errClosed:
		if tg.log != "" {
			fmt.Fprintf(os.Stderr, "kafka closed the connection; its log ends:\n%s\n", tail(tg.log))
		}
		return "connection closed by the broker\n", nil
	case err != nil:
		return "", err
	case resp == nil:
		return "no response\n", nil
	}
	if err := tg.save(resp, saves); err != nil {
		return "", err
	}
	s, err := normalise(resp, &norm{ignore: ignore, members: tg.members, cluster: tg.brokers > 1, api: resp.Key()})
	return s + "\n", err
}

func (r *run) send(t *testing.T, d *datadriven.TestData) string {
	req, ignore, differs, saves := parseSend(t, d, r.gregor)
	api := kmsg.NameForKey(req.Key())
	gregorOut, err := answer(r.to(t, d, r.gregor), req, ignore, saves)
	if err != nil {
		t.Fatalf("%s: gregor: %v", d.Pos, err)
	}
	if r.kafka == nil {
		// Mode A: Gregor against the recording.
		kafkaRec, gregorRec, marked := splitExpected(d.Expected)
		if marked && differs == "" && !d.Rewrite {
			t.Fatalf("%s: the expected answer has a gregor: section but the step has no differs=(reason)", d.Pos)
		}
		if differs == "" {
			return gregorOut
		}
		_ = gregorRec
		return "kafka:\n" + kafkaRec + "gregor:\n" + gregorOut
	}
	// Mode B: Kafka and Gregor side by side. Kafka answers first, so a
	// step that depends on time (auto-creation) gives Gregor no head start.
	kafkaReq, _, _, _ := parseSend(t, d, r.kafka)
	kafkaOut, err := answer(r.to(t, d, r.kafka), kafkaReq, ignore, saves)
	if err != nil {
		t.Fatalf("%s: kafka: %v", d.Pos, err)
	}
	kafkaRec, _, _ := splitExpected(d.Expected)
	r.mu.Lock()
	defer r.mu.Unlock()
	st := r.stats[api]
	if st == nil {
		st = &apiStat{}
		r.stats[api] = st
	}
	same := kafkaOut == gregorOut
	switch {
	case same:
		st.matched++
	case gregorOut == "connection closed by the broker\n":
		st.onlyKafka++
	default:
		st.different++
	}
	if !same {
		r.diffs = append(r.diffs, fmt.Sprintf("%s %s v%d (differs=%q):\n%s", d.Pos, api, req.GetVersion(), differs, lineDiff(kafkaOut, gregorOut)))
	}
	if !d.Rewrite && kafkaOut != kafkaRec {
		r.problems = append(r.problems, fmt.Sprintf("%s: Kafka's answer is not the recorded one (re-record with -rewrite):\n%s", d.Pos, lineDiff(kafkaRec, kafkaOut)))
	}
	if same && differs != "" {
		r.problems = append(r.problems, fmt.Sprintf("%s: marked differs=(%s) but Gregor now answers as Kafka: remove the mark (and its line in docs/compatibility.md)", d.Pos, differs))
	}
	if !same && differs == "" {
		r.problems = append(r.problems, fmt.Sprintf("%s: Gregor differs from Kafka and the step is not marked differs=(reason)", d.Pos))
	}
	if !d.Rewrite {
		return d.Expected
	}
	if same && differs == "" {
		return kafkaOut
	}
	return "kafka:\n" + kafkaOut + "gregor:\n" + gregorOut
}

// to is the broker of tg's cluster a step goes to: with
// leader=(topic, partition) that partition's leader (each cluster's own),
// with follower=(topic, partition) its lowest-numbered replica that does
// not lead it, else the one the harness talks to.
func (r *run) to(t *testing.T, d *datadriven.TestData, tg *target) *target {
	for _, a := range d.CmdArgs {
		if a.Key != "leader" && a.Key != "follower" {
			continue
		}
		if len(a.Vals) != 2 {
			t.Fatalf("%s: %s=(topic, partition)", d.Pos, a.Key)
		}
		p, err := strconv.Atoi(a.Vals[1])
		if err != nil {
			t.Fatalf("%s: %s=(%s): %v", d.Pos, a.Key, strings.Join(a.Vals, ", "), err)
		}
		l, err := tg.replica(a.Vals[0], int32(p), a.Key == "leader")
		if err != nil {
			t.Fatalf("%s: %s: %v", d.Pos, tg.name, err)
		}
		return l
	}
	return tg
}

// splitExpected splits a recorded answer into Kafka's and Gregor's.
func splitExpected(exp string) (kafka, gregor string, marked bool) {
	if !strings.HasPrefix(exp, "kafka:\n") {
		return exp, "", false
	}
	rest := strings.TrimPrefix(exp, "kafka:\n")
	if i := strings.Index(rest, "\ngregor:\n"); i >= 0 {
		return rest[:i+1], rest[i+len("\ngregor:\n"):], true
	}
	return rest, "", true
}

var apiKeys = func() map[string]int16 {
	m := map[string]int16{}
	for k := int16(0); k < 200; k++ {
		if kmsg.RequestForKey(k) != nil {
			m[strings.ToLower(kmsg.NameForKey(k))] = k
		}
	}
	return m
}()

func parseSend(t *testing.T, d *datadriven.TestData, tg *target) (req kmsg.Request, ignore map[string]bool, differs string, saves map[string]string) {
	var apiArg string
	var version int
	d.ScanArgs(t, "api", &apiArg)
	d.ScanArgs(t, "v", &version)
	key, ok := apiKeys[strings.ToLower(apiArg)]
	if !ok {
		n, err := strconv.Atoi(apiArg)
		if err != nil {
			t.Fatalf("%s: unknown api %q", d.Pos, apiArg)
		}
		key = int16(n)
	}
	req = kmsg.RequestForKey(key)
	if req == nil {
		t.Fatalf("%s: no kmsg request for key %d", d.Pos, key)
	}
	if strings.TrimSpace(d.Input) != "" {
		input, err := tg.substitute(d.Input)
		if err != nil {
			t.Fatalf("%s: %v", d.Pos, err)
		}
		if err := fill(reflect.ValueOf(req).Elem(), json.RawMessage(input)); err != nil {
			t.Fatalf("%s: request JSON: %v", d.Pos, err)
		}
	}
	req.SetVersion(int16(version))
	ignore, saves = map[string]bool{}, map[string]string{}
	for _, a := range d.CmdArgs {
		switch a.Key {
		case "api", "v", "value-bytes", "producer", "transactional", "leader", "follower", "batches", "trailing":
		case "ignore":
			for _, v := range a.Vals {
				ignore[v] = true
			}
		case "differs":
			differs = strings.Join(a.Vals, ", ")
		case "save":
			for _, v := range a.Vals {
				name, path, ok := strings.Cut(v, "=")
				if !ok {
					t.Fatalf("%s: save=(%s): want name=Path.To.Field", d.Pos, v)
				}
				saves[name] = path
			}
		case "records":
			var ts []int64
			for _, v := range a.Vals {
				n, err := strconv.ParseInt(v, 10, 64)
				if err != nil {
					t.Fatalf("%s: records=(%s): %v", d.Pos, v, err)
				}
				ts = append(ts, n)
			}
			valueBytes := 0
			if d.HasArg("value-bytes") {
				d.ScanArgs(t, "value-bytes", &valueBytes)
			}
			p, ok := req.(*kmsg.ProduceRequest)
			if !ok {
				t.Fatalf("%s: records= is for Produce", d.Pos)
			}
			var prod []int64
			if d.HasArg("producer") {
				for _, a := range d.CmdArgs {
					if a.Key != "producer" {
						continue
					}
					for _, v := range a.Vals {
						n, err := tg.number(v)
						if err != nil {
							t.Fatalf("%s: producer=(%s): %v", d.Pos, v, err)
						}
						prod = append(prod, n)
					}
				}
				if len(prod) != 3 {
					t.Fatalf("%s: producer=(id, epoch, seq): got %d values", d.Pos, len(prod))
				}
			}
			batch := buildBatch(ts, valueBytes, prod, d.HasArg("transactional"))
			if d.HasArg("batches") {
				var n int
				d.ScanArgs(t, "batches", &n)
				batch = bytes.Repeat(batch, n)
			}
			if d.HasArg("trailing") {
				var h string
				d.ScanArgs(t, "trailing", &h)
				tail, err := hex.DecodeString(h)
				if err != nil {
					t.Fatalf("%s: trailing=(%s): %v", d.Pos, h, err)
				}
				batch = append(batch, tail...)
			}
			for i := range p.Topics {
				for j := range p.Topics[i].Partitions {
					if p.Topics[i].Partitions[j].Records == nil {
						p.Topics[i].Partitions[j].Records = batch
					}
				}
			}
		default:
			t.Fatalf("%s: unknown argument %q", d.Pos, a.Key)
		}
	}
	return req, ignore, differs, saves
}

// fill decodes raw into v as encoding/json would, except that every
// struct, nested ones included, starts from kmsg's Default(): a field the
// script leaves out has the value a client would send (-1 epochs, tagged
// fields at their defaults, which kmsg then leaves off the wire), not Go's
// zero. Unknown field names are errors. An integer field takes a JSON
// number even where kmsg's type wants its name.
func fill(v reflect.Value, raw json.RawMessage) error {
	if string(bytes.TrimSpace(raw)) == "null" {
		return json.Unmarshal(raw, v.Addr().Interface())
	}
	switch {
	case v.Kind() == reflect.Struct:
		if d, ok := v.Addr().Interface().(interface{ Default() }); ok {
			d.Default()
		}
		var fields map[string]json.RawMessage
		if err := json.Unmarshal(raw, &fields); err != nil {
			return err
		}
		for name, fr := range fields {
			f := v.FieldByName(name)
			if !f.IsValid() || !f.CanSet() {
				return fmt.Errorf("%s has no field %s", v.Type(), name)
			}
			if err := fill(f, fr); err != nil {
				return fmt.Errorf("%s: %v", name, err)
			}
		}
		return nil
	case v.Kind() == reflect.Slice && v.Type().Elem().Kind() == reflect.Struct:
		var elems []json.RawMessage
		if err := json.Unmarshal(raw, &elems); err != nil {
			return err
		}
		s := reflect.MakeSlice(v.Type(), len(elems), len(elems))
		for i, e := range elems {
			if err := fill(s.Index(i), e); err != nil {
				return fmt.Errorf("[%d]: %v", i, err)
			}
		}
		v.Set(s)
		return nil
	}
	if n, err := strconv.ParseInt(string(bytes.TrimSpace(raw)), 10, 64); err == nil && v.CanInt() {
		// A number for a kmsg enum (ACL types, operations ...), whose
		// JSON form is its name: a value no name stands for, such as
		// 0 (UNKNOWN), which a script sends to see it refused.
		v.SetInt(n)
		return nil
	}
	return json.Unmarshal(raw, v.Addr().Interface())
}

func waitLeaders(tg *target, topic string, n int) error {
	deadline := time.Now().Add(20 * time.Second)
	var last string
	for time.Now().Before(deadline) {
		req := kmsg.NewPtrMetadataRequest()
		req.SetVersion(12)
		mt := kmsg.NewMetadataRequestTopic()
		mt.Topic = kmsg.StringPtr(topic)
		req.Topics = append(req.Topics, mt)
		req.AllowAutoTopicCreation = false
		resp, err := tg.do(req)
		if err == nil {
			m := resp.(*kmsg.MetadataResponse)
			ready := len(m.Topics) == 1 && m.Topics[0].ErrorCode == 0 && len(m.Topics[0].Partitions) == n
			if ready {
				for _, p := range m.Topics[0].Partitions {
					// Gregor's ISR holds only a new leader until each
					// follower first acknowledges (Kafka's starts as all
					// the replicas): docs/compatibility.md. Replicas on a
					// broker that is down are not waited for.
					ready = ready && p.ErrorCode == 0 && p.Leader >= 0 && len(p.ISR) == len(p.Replicas)-len(p.OfflineReplicas)
				}
			}
			if ready {
				// Kafka's Metadata names a leader as soon as its
				// metadata cache has it, a moment before the broker acts
				// as the leader: Produce then answers
				// NOT_LEADER_OR_FOLLOWER. ListOffsets goes through the
				// same check.
				if last, ready = servesPartitions(tg, topic, n); ready {
					return nil
				}
			} else {
				b, _ := json.Marshal(m.Topics)
				last = string(b)
			}
		} else {
			last = err.Error()
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("topic %s: %d partitions with leaders not seen within 20s; last: %s", topic, n, last)
}

// servesPartitions reports whether ListOffsets (latest) answers every one
// of topic's n partitions without an error, each asked of its leader, and
// if not what it answered.
func servesPartitions(tg *target, topic string, n int) (string, bool) {
	for i := range n {
		l, err := tg.leader(topic, int32(i))
		if err != nil {
			return err.Error(), false
		}
		req := kmsg.NewPtrListOffsetsRequest()
		req.SetVersion(7)
		req.ReplicaID = -1
		lt := kmsg.NewListOffsetsRequestTopic()
		lt.Topic = topic
		lp := kmsg.NewListOffsetsRequestTopicPartition()
		lp.Partition, lp.Timestamp = int32(i), -1
		lt.Partitions = append(lt.Partitions, lp)
		req.Topics = append(req.Topics, lt)
		resp, err := l.do(req)
		if err != nil {
			return err.Error(), false
		}
		for _, t := range resp.(*kmsg.ListOffsetsResponse).Topics {
			for _, p := range t.Partitions {
				if p.ErrorCode != 0 {
					return fmt.Sprintf("ListOffsets %s-%d: error code %d", topic, p.Partition, p.ErrorCode), false
				}
			}
		}
	}
	return "", true
}

// waitISR polls Metadata until topic's partition has size replicas in
// sync.
func waitISR(tg *target, topic string, partition int32, size int) error {
	deadline := time.Now().Add(60 * time.Second)
	var last string
	for time.Now().Before(deadline) {
		req := kmsg.NewPtrMetadataRequest()
		req.SetVersion(12)
		mt := kmsg.NewMetadataRequestTopic()
		mt.Topic = kmsg.StringPtr(topic)
		req.Topics = append(req.Topics, mt)
		resp, err := tg.do(req)
		if err != nil {
			return err
		}
		for _, t := range resp.(*kmsg.MetadataResponse).Topics {
			for _, p := range t.Partitions {
				if p.Partition == partition {
					if p.ErrorCode == 0 && len(p.ISR) == size {
						return nil
					}
					last = fmt.Sprintf("error %d, ISR %v", p.ErrorCode, p.ISR)
				}
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("%s-%d: ISR not of %d within 60s; last: %s", topic, partition, size, last)
}

// waitACLs polls DescribeAcls (every binding) until it lists n: Kafka
// answers CreateAcls and DeleteAcls once its controller has the change,
// and its broker's authorizer learns it from the metadata log a moment
// later.
func waitACLs(tg *target, n int) error {
	deadline := time.Now().Add(20 * time.Second)
	var last string
	for time.Now().Before(deadline) {
		req := kmsg.NewPtrDescribeACLsRequest()
		req.SetVersion(3)
		req.ResourceType, req.ResourcePatternType = kmsg.ACLResourceTypeAny, kmsg.ACLResourcePatternTypeAny
		req.Operation, req.PermissionType = kmsg.ACLOperationAny, kmsg.ACLPermissionTypeAny
		resp, err := tg.do(req)
		if err != nil {
			return err
		}
		d := resp.(*kmsg.DescribeACLsResponse)
		got := 0
		for _, r := range d.Resources {
			got += len(r.ACLs)
		}
		if d.ErrorCode == 0 && got == n {
			return nil
		}
		last = fmt.Sprintf("error code %d, %d bindings", d.ErrorCode, got)
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("not %d ACL bindings within 20s; last: %s", n, last)
}

// waitTransaction polls DescribeTransactions until id is in state.
func waitTransaction(tg *target, id, state string) error {
	deadline := time.Now().Add(30 * time.Second)
	var last string
	for time.Now().Before(deadline) {
		req := kmsg.NewPtrDescribeTransactionsRequest()
		req.TransactionalIDs = []string{id}
		resp, err := tg.do(req)
		if err != nil {
			return err
		}
		s := resp.(*kmsg.DescribeTransactionsResponse).TransactionStates
		if len(s) == 1 && s[0].ErrorCode == 0 && s[0].State == state {
			return nil
		}
		last = fmt.Sprintf("%+v", s)
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("transaction %s not %s within 30s; last: %s", id, state, last)
}

// waitCoordinator polls FindCoordinator (a group, or typ 1 a
// transactional id) until the broker names one, then DescribeGroups (or
// DescribeTransactions) until that coordinator answers: the first ask
// creates __consumer_offsets (__transaction_state), and Kafka answers
// COORDINATOR_NOT_AVAILABLE, then NOT_COORDINATOR or
// COORDINATOR_LOAD_IN_PROGRESS while it loads the partition.
func waitCoordinator(tg *target, key string, typ int8) error {
	deadline := time.Now().Add(30 * time.Second)
	var last string
	for time.Now().Before(deadline) {
		req := kmsg.NewPtrFindCoordinatorRequest()
		req.SetVersion(3)
		req.CoordinatorKey = key
		req.CoordinatorType = typ
		resp, err := tg.do(req)
		if err == nil {
			f := resp.(*kmsg.FindCoordinatorResponse)
			last = fmt.Sprintf("FindCoordinator: error code %d", f.ErrorCode)
			if f.ErrorCode == 0 && f.NodeID >= 0 && typ == 1 {
				dt := kmsg.NewPtrDescribeTransactionsRequest()
				dt.TransactionalIDs = []string{key}
				resp, err := tg.do(dt)
				if err != nil {
					return err
				}
				s := resp.(*kmsg.DescribeTransactionsResponse).TransactionStates
				// 105 TRANSACTIONAL_ID_NOT_FOUND: loaded, and not there yet.
				if len(s) == 1 && (s[0].ErrorCode == 0 || s[0].ErrorCode == 105) {
					// Kafka's first InitProducerId fetches a block of
					// producer ids from the controller and answers
					// COORDINATOR_LOAD_IN_PROGRESS meanwhile.
					ip := kmsg.NewPtrInitProducerIDRequest()
					ip.SetVersion(4)
					resp, err := tg.do(ip)
					if err != nil {
						return err
					}
					ec := resp.(*kmsg.InitProducerIDResponse).ErrorCode
					if ec == 0 {
						return nil
					}
					last = fmt.Sprintf("InitProducerId: error code %d", ec)
				} else {
					last = fmt.Sprintf("DescribeTransactions: %+v", s)
				}
			} else if f.ErrorCode == 0 && f.NodeID >= 0 {
				dg := kmsg.NewPtrDescribeGroupsRequest()
				dg.SetVersion(5)
				dg.Groups = []string{key}
				resp, err := tg.do(dg)
				if err != nil {
					return err
				}
				g := resp.(*kmsg.DescribeGroupsResponse).Groups
				if len(g) == 1 && g[0].ErrorCode == 0 {
					return nil
				}
				last = fmt.Sprintf("DescribeGroups: %+v", g)
			}
		} else {
			last = err.Error()
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("no coordinator for %s within 30s; last: %s", key, last)
}

// lineDiff shows the lines only a has (-) and only b has (+), from a
// longest common subsequence of lines.
func lineDiff(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	n, m := len(al), len(bl)
	lcs := make([][]int, n+1)
	for i := range lcs {
		lcs[i] = make([]int, m+1)
	}
	for i := n - 1; i >= 0; i-- {
		for j := m - 1; j >= 0; j-- {
			if al[i] == bl[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	var out bytes.Buffer
	i, j := 0, 0
	for i < n || j < m {
		switch {
		case i < n && j < m && al[i] == bl[j]:
			i, j = i+1, j+1
		case j < m && (i == n || lcs[i][j+1] >= lcs[i+1][j]):
			fmt.Fprintf(&out, "  + %s\n", bl[j])
			j++
		default:
			fmt.Fprintf(&out, "  - %s\n", al[i])
			i++
		}
	}
	return out.String()
}

// report prints mode B's table: per API the steps that matched, differed
// and reached an API only Kafka offers, then what ApiVersions says each
// broker offers.
func (r *run) report(t *testing.T) {
	var b strings.Builder
	names := make([]string, 0, len(r.stats))
	for n := range r.stats {
		names = append(names, n)
	}
	sort.Strings(names)
	fmt.Fprintf(&b, "\nconformance against Kafka, per API (steps):\n")
	fmt.Fprintf(&b, "  %-24s %8s %10s %14s\n", "API", "matched", "different", "only-in-Kafka")
	var tm, td, to int
	for _, n := range names {
		s := r.stats[n]
		fmt.Fprintf(&b, "  %-24s %8d %10d %14d\n", n, s.matched, s.different, s.onlyKafka)
		tm, td, to = tm+s.matched, td+s.different, to+s.onlyKafka
	}
	fmt.Fprintf(&b, "  %-24s %8d %10d %14d\n", "total", tm, td, to)
	kv, gv := apiVersions(t, r.kafka), apiVersions(t, r.gregor)
	var only, ranges []string
	keys := make([]int, 0, len(kv))
	for k := range kv {
		keys = append(keys, int(k))
	}
	sort.Ints(keys)
	for _, k := range keys {
		kr := kv[int16(k)]
		gr, ok := gv[int16(k)]
		switch {
		case !ok:
			only = append(only, fmt.Sprintf("%s(%d) v%d-%d", kmsg.NameForKey(int16(k)), k, kr[0], kr[1]))
		case gr != kr:
			ranges = append(ranges, fmt.Sprintf("%s(%d) Kafka v%d-%d, Gregor v%d-%d", kmsg.NameForKey(int16(k)), k, kr[0], kr[1], gr[0], gr[1]))
		}
	}
	fmt.Fprintf(&b, "APIs only Kafka offers (%d): %s\n", len(only), strings.Join(only, ", "))
	fmt.Fprintf(&b, "APIs both offer at different versions (%d):\n  %s\n", len(ranges), strings.Join(ranges, "\n  "))
	if len(r.diffs) > 0 {
		fmt.Fprintf(&b, "differences (- Kafka, + Gregor):\n%s", strings.Join(r.diffs, ""))
	}
	fmt.Fprint(os.Stdout, b.String())
	for _, p := range r.problems {
		t.Error(p)
	}
}

func apiVersions(t *testing.T, tg *target) map[int16][2]int16 {
	req := kmsg.NewPtrApiVersionsRequest()
	req.SetVersion(3)
	req.ClientSoftwareName, req.ClientSoftwareVersion = "gregor-conformance", "1"
	resp, err := tg.do(req)
	if err != nil {
		t.Fatalf("%s: ApiVersions: %v", tg.name, err)
	}
	out := map[int16][2]int16{}
	for _, k := range resp.(*kmsg.ApiVersionsResponse).ApiKeys {
		out[k.ApiKey] = [2]int16{k.MinVersion, k.MaxVersion}
	}
	return out
}
