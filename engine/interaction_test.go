package engine

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"strconv"
	"strings"
	"testing"
	"testing/cryptotest"

	"github.com/cockroachdb/datadriven"
	"github.com/gregor-streaming/gregor/engine/batch"
	"github.com/gregor-streaming/gregor/engine/segment"
	"github.com/gregor-streaming/gregor/raftlog"
	"github.com/gregor-streaming/gregor/raftlog/memwal"
	"github.com/gregor-streaming/gregor/raftlog/vfs"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestInteraction runs the transcripts in testdata/*.txt: readable stories
// of a small cluster, in the style of etcd/raft's interaction tests. Run
// with -rewrite to regenerate the expected output, and read the diff before
// committing it.
//
// Commands (each handler says its arguments):
//
//	add-brokers n=3
//	create-topic name=t partitions=1 rf=3 [via=1]
//	produce topic=t partition=0 values=a,b [via=N] [pid=P epoch=E seq=S] [acks=-1]
//	fetch topic=t partition=0 offset=0 [via=N] [max-wait-ms=0]
//	list-offsets topic=t partition=0 ts=-1 [via=N]
//	metadata [via=N] [topics=a;b]
//	leaders
//	log broker=N [topic=t partition=0]
//	tick [n=1]
//	stabilize
//	partition 1 | 2 3      (cut every link between the two sides)
//	cut from=1 to=2        (one-way)
//	heal
//	crash broker=N [seed=S]
//	restart broker=N
//	checkpoint broker=N
//
// Any command takes principal=User:x: its requests then come from that
// client (HandleClient), which the authorizer checks when add-brokers
// had authorizer [super-users=User:a;User:b] [allow-if-no-acl].
func TestInteraction(t *testing.T) {
	datadriven.Walk(t, "testdata", func(t *testing.T, path string) {
		if strings.Contains(path, "testdata/rapid/") {
			t.Skip("a failure file of a rapid property test, not a transcript")
		}
		// etcd/raft draws election jitter from crypto/rand: seed it, or
		// elections (and so the transcripts) differ from run to run.
		cryptotest.SetGlobalRandom(t, 1)
		c := &testCluster{t: t}
		datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
			return c.run(t, d)
		})
	})
}

type testClock struct{ ms int64 }

func (c *testClock) NowMillis() int64 { return c.ms }

type testBroker struct {
	id   int32
	b    *Broker
	wal  raftlog.WAL
	fs   vfs.FS
	down bool
	// memWAL and memFS are set when the broker runs on simulated storage,
	// which is what crash needs.
	memWAL *memwal.WAL
	memFS  *vfs.Mem
}

// testCluster is a deterministic in-process cluster: brokers are stepped
// in id order, messages are delivered in order, time moves only on tick.
type testCluster struct {
	t       *testing.T
	clock   testClock
	brokers []*testBroker
	cut     map[[2]int32]bool
	token   uint64
	// responses by token, collected from every broker.
	responses map[uint64]kmsg.Response
	answered  map[uint64]bool
	// tune, if set, adjusts every broker's Config (Go tests only).
	tune func(*Config)
	// observe, if set, sees every payload delivered between brokers.
	observe func(payload []byte)
	// wrapWAL, if set, wraps a broker's WAL when it starts.
	wrapWAL func(tb *testBroker) raftlog.WAL
	// wrapFS, if set, wraps a broker's file system when it starts.
	wrapFS func(tb *testBroker) vfs.FS
	// groups is the state of the group commands (group_interaction_test.go).
	groups groupScript
	// authz is the authorizer configuration of add-brokers' authorizer
	// and super-users arguments (acl_test.go).
	authz *authzConfig
	// principal, set by a command's principal= argument, sends its
	// requests as that client (HandleClient from 127.0.0.1); without it
	// they are sent with no client and are not authorized.
	principal string
}

func (c *testCluster) cfg(id int32) Config {
	var cl []BrokerInfo
	for _, tb := range c.brokers {
		cl = append(cl, BrokerInfo{ID: tb.id, Host: "127.0.0.1", Port: 9091 + tb.id})
	}
	// Few coordinator partitions and no initial rebalance delay keep the
	// group transcripts (group_*.txt) short.
	cfg := Config{ID: id, Cluster: cl, TickMillis: 100, OffsetsTopicPartitions: 3, TransactionStatePartitions: 3, GroupInitialRebalanceDelayMs: -1}
	if c.authz != nil {
		cfg.Authorizer, cfg.AllowEveryoneIfNoACLFound = true, c.authz.allowEveryoneIfNoACL
		for u := range c.authz.superUsers {
			cfg.SuperUsers = append(cfg.SuperUsers, u)
		}
	}
	if c.tune != nil {
		c.tune(&cfg)
	}
	return cfg
}

func (c *testCluster) startBroker(tb *testBroker) {
	fs := tb.fs
	if c.wrapFS != nil {
		fs = c.wrapFS(tb)
	}
	wal := tb.wal
	if c.wrapWAL != nil {
		wal = c.wrapWAL(tb)
	}
	b, err := NewBroker(c.cfg(tb.id), Env{FS: fs, WAL: wal, Clock: &c.clock, Logf: func(f string, a ...any) { c.t.Logf("broker %d: "+f, append([]any{tb.id}, a...)...) }})
	if err != nil {
		c.t.Fatalf("start broker %d: %v", tb.id, err)
	}
	tb.b, tb.down = b, false
}

func (c *testCluster) broker(id int32) *testBroker {
	for _, tb := range c.brokers {
		if tb.id == id {
			return tb
		}
	}
	c.t.Fatalf("no broker %d", id)
	return nil
}

// stabilize steps every broker and delivers messages until nothing moves.
func (c *testCluster) stabilize() {
	for range 1000 {
		moved := false
		for _, tb := range c.brokers {
			if tb.down {
				continue
			}
			if err := tb.b.Process(); err != nil {
				c.t.Fatalf("broker %d: %v", tb.id, err)
			}
			for _, r := range tb.b.Responses() {
				c.responses[r.Token] = r.Msg
				c.answered[r.Token] = true
			}
			for _, out := range tb.b.Outbox() {
				to := c.broker(int32(out.To))
				if to.down || c.cut[[2]int32{tb.id, to.id}] {
					continue
				}
				_, envs, err := raftlog.DecodeBatch(out.Payload)
				if err != nil {
					c.t.Fatal(err)
				}
				if len(envs) > 0 {
					moved = true
				}
				if c.observe != nil {
					c.observe(out.Payload)
				}
				if err := to.b.Receive(out.Payload); err != nil {
					c.t.Fatalf("broker %d receive: %v", to.id, err)
				}
			}
		}
		if !moved {
			return
		}
	}
	c.t.Fatal("stabilize: cluster did not quiesce")
}

func (c *testCluster) tick(n int) {
	for range n {
		c.clock.ms += 100
		for _, tb := range c.brokers {
			if !tb.down {
				tb.b.Tick()
			}
		}
		c.stabilize()
	}
}

// call sends req to broker via and runs the cluster until it answers or
// maxTicks pass.
func (c *testCluster) call(via int32, req kmsg.Request, maxTicks int) (kmsg.Response, bool) {
	c.token++
	tok := c.token
	tb := c.broker(via)
	if tb.down {
		c.t.Fatalf("broker %d is down", via)
	}
	c.handle(tb.b, tok, req)
	c.stabilize()
	for i := 0; !c.answered[tok] && i < maxTicks; i++ {
		c.tick(1)
	}
	return c.responses[tok], c.answered[tok]
}

// handle gives req to broker b, as the client of principal= if the
// command named one.
func (c *testCluster) handle(b *Broker, tok uint64, req kmsg.Request) {
	if c.principal != "" {
		b.HandleClient(tok, req, Client{ID: "test", Host: "127.0.0.1", Principal: c.principal})
		return
	}
	b.Handle(tok, req)
}

func (c *testCluster) leaderOf(topic string, part int32) int32 {
	for _, tb := range c.brokers {
		if tb.down {
			continue
		}
		if pm, ok := tb.b.meta.partition(topic, part); ok {
			if p := tb.b.parts[pm.Group]; p != nil && p.leader {
				return tb.id
			}
		}
	}
	return 0
}

func (c *testCluster) via(d *datadriven.TestData, topic string, part int32) int32 {
	if d.HasArg("via") {
		var v int
		d.ScanArgs(c.t, "via", &v)
		return int32(v)
	}
	if l := c.leaderOf(topic, part); l != 0 {
		return l
	}
	for _, tb := range c.brokers {
		if !tb.down {
			return tb.id
		}
	}
	return 1
}

// callPartition sends req to the broker named by via= (by default the
// partition's leader) and waits up to 60 ticks. noAnswer is the line to
// print when none came.
func (c *testCluster) callPartition(d *datadriven.TestData, topic string, part int32, req kmsg.Request) (via int32, resp kmsg.Response, noAnswer string) {
	via = c.via(d, topic, part)
	resp, ok := c.call(via, req, 60)
	if !ok {
		return via, nil, fmt.Sprintf("via %d: no answer\n", via)
	}
	return via, resp, ""
}

func argInt(t *testing.T, d *datadriven.TestData, key string, def int) int {
	if !d.HasArg(key) {
		return def
	}
	var v int
	d.ScanArgs(t, key, &v)
	return v
}

func argStr(t *testing.T, d *datadriven.TestData, key, def string) string {
	if !d.HasArg(key) {
		return def
	}
	var v string
	d.ScanArgs(t, key, &v)
	return v
}

func (c *testCluster) run(t *testing.T, d *datadriven.TestData) string {
	c.t = t
	c.principal = argStr(t, d, "principal", "")
	defer func() { c.principal = "" }()
	switch d.Cmd {
	case "add-brokers":
		n := argInt(t, d, "n", 3)
		if d.HasArg("authorizer") {
			c.authz = &authzConfig{superUsers: map[string]bool{}, allowEveryoneIfNoACL: d.HasArg("allow-if-no-acl")}
			for _, u := range splitArg(t, d, "super-users") {
				c.authz.superUsers[u] = true
			}
		}
		c.cut = map[[2]int32]bool{}
		c.responses, c.answered = map[uint64]kmsg.Response{}, map[uint64]bool{}
		if d.HasArg("txn-expiry-ms") || d.HasArg("txn-version") || d.HasArg("segment-bytes") || d.HasArg("retention-check-ms") || d.HasArg("cleaner-ms") {
			expiry, version := int64(argInt(t, d, "txn-expiry-ms", 0)), int16(argInt(t, d, "txn-version", 0))
			segment, check := int64(argInt(t, d, "segment-bytes", 0)), int64(argInt(t, d, "retention-check-ms", 0))
			cleaner, step := int64(argInt(t, d, "cleaner-ms", 0)), int64(argInt(t, d, "cleaner-step-bytes", 0))
			c.tune = func(cfg *Config) {
				cfg.TransactionalIDExpirationMs, cfg.TransactionVersion, cfg.SegmentBytes = expiry, version, segment
				cfg.RetentionCheckIntervalMs = check
				cfg.CleanerBackoffMs, cfg.CleanerStepBytes = cleaner, step
			}
		}
		for i := 1; i <= n; i++ {
			w, fs := memwal.New(), vfs.NewMem()
			c.brokers = append(c.brokers, &testBroker{id: int32(i), wal: w, fs: fs, memWAL: w, memFS: fs})
		}
		for _, tb := range c.brokers {
			c.startBroker(tb)
		}
		c.stabilize()
		return c.leaders()
	case "create-topic":
		name := argStr(t, d, "name", "t")
		req := kmsg.NewPtrCreateTopicsRequest()
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic = name
		rt.NumPartitions = int32(argInt(t, d, "partitions", 1))
		rt.ReplicationFactor = int16(argInt(t, d, "rf", 3))
		if d.HasArg("configs") {
			for _, kv := range strings.Split(argStr(t, d, "configs", ""), ";") {
				k, v, _ := strings.Cut(kv, "=")
				rt.Configs = append(rt.Configs, kmsg.CreateTopicsRequestTopicConfig{Name: k, Value: kmsg.StringPtr(v)})
			}
		}
		req.Topics = append(req.Topics, rt)
		resp, ok := c.call(int32(argInt(t, d, "via", 1)), req, 50)
		if !ok {
			return "no answer\n"
		}
		c.stabilize()
		c.tick(10) // leaders elected and reported to the metadata log
		r := resp.(*kmsg.CreateTopicsResponse).Topics[0]
		if r.ErrorCode != 0 && r.ErrorMessage != nil && d.HasArg("configs") {
			return fmt.Sprintf("%s: %s: %s\n", r.Topic, codeName(r.ErrorCode), *r.ErrorMessage)
		}
		return fmt.Sprintf("%s: %s\n%s", r.Topic, codeName(r.ErrorCode), c.leaders())
	case "produce":
		topic := argStr(t, d, "topic", "t")
		part := int32(argInt(t, d, "partition", 0))
		var recs []batch.Record
		if d.HasArg("kv") {
			// kv=k:v,k2:v2 records with keys; a value of ~ is null (a
			// tombstone), a key of ~ is null.
			for _, kv := range strings.Split(argStr(t, d, "kv", ""), ",") {
				k, v, _ := strings.Cut(kv, ":")
				r := batch.Record{Key: []byte(k), Value: []byte(v)}
				if k == "~" {
					r.Key = nil
				}
				if v == "~" {
					r.Value = nil
				}
				recs = append(recs, r)
			}
		} else {
			for _, v := range strings.Split(argStr(t, d, "values", "x"), ",") {
				recs = append(recs, batch.Record{Value: []byte(v)})
			}
		}
		opts := batch.BuildOptions{ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1, FirstTimestamp: c.clock.ms}
		if d.HasArg("pid") {
			opts.ProducerID = int64(argInt(t, d, "pid", 0))
			opts.ProducerEpoch = int16(argInt(t, d, "epoch", 0))
			opts.BaseSequence = int32(argInt(t, d, "seq", 0))
			opts.Transactional = d.HasArg("txn") || d.HasArg("control")
			opts.Control = d.HasArg("control")
		}
		req := kmsg.NewPtrProduceRequest()
		req.SetVersion(int16(argInt(t, d, "v", 9)))
		if d.HasArg("txn-id") {
			req.TransactionID = kmsg.StringPtr(argStr(t, d, "txn-id", ""))
		}
		req.Acks = int16(argInt(t, d, "acks", -1))
		req.TimeoutMillis = 5000
		rt := kmsg.NewProduceRequestTopic()
		rt.Topic = topic
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Partition = part
		rp.Records = batch.Build(opts, recs)
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		via, resp, noAnswer := c.callPartition(d, topic, part, req)
		switch {
		case noAnswer != "":
			return noAnswer
		case resp == nil:
			return fmt.Sprintf("via %d: no response (acks=0)\n", via)
		}
		r := resp.(*kmsg.ProduceResponse).Topics[0].Partitions[0]
		if r.ErrorCode != 0 {
			return fmt.Sprintf("via %d: %s\n", via, codeName(r.ErrorCode))
		}
		return fmt.Sprintf("via %d: offset %d\n", via, r.BaseOffset)
	case "fetch":
		topic := argStr(t, d, "topic", "t")
		part := int32(argInt(t, d, "partition", 0))
		req := kmsg.NewPtrFetchRequest()
		req.SetVersion(12)
		committed := argStr(t, d, "isolation", "uncommitted") == "committed"
		if committed {
			req.IsolationLevel = 1
		}
		req.MaxWaitMillis = int32(argInt(t, d, "max-wait-ms", 0))
		req.MaxBytes = 1 << 20
		req.SessionEpoch = -1
		rt := kmsg.NewFetchRequestTopic()
		rt.Topic = topic
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition = part
		rp.FetchOffset = int64(argInt(t, d, "offset", 0))
		rp.PartitionMaxBytes = 1 << 20
		rp.CurrentLeaderEpoch = int32(argInt(t, d, "epoch", -1))
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		via, resp, noAnswer := c.callPartition(d, topic, part, req)
		if noAnswer != "" {
			return noAnswer
		}
		r := resp.(*kmsg.FetchResponse).Topics[0].Partitions[0]
		if r.ErrorCode != 0 {
			return fmt.Sprintf("via %d: %s\n", via, codeName(r.ErrorCode))
		}
		var sb strings.Builder
		fmt.Fprintf(&sb, "via %d: hw=%d", via, r.HighWatermark)
		if r.LastStableOffset != r.HighWatermark {
			fmt.Fprintf(&sb, " lso=%d", r.LastStableOffset)
		}
		if committed {
			fmt.Fprintf(&sb, " aborted=[")
			for i, a := range r.AbortedTransactions {
				if i > 0 {
					sb.WriteString(" ")
				}
				fmt.Fprintf(&sb, "pid %d from %d", a.ProducerID, a.FirstOffset)
			}
			sb.WriteString("]")
		}
		if len(r.RecordBatches) > 0 {
			bs, err := batch.Split(r.RecordBatches)
			if err != nil {
				t.Fatal(err)
			}
			for _, bb := range bs {
				h, _ := batch.ReadHeader(bb)
				recs, err := batch.Records(bb)
				if err != nil {
					t.Fatal(err)
				}
				for _, rec := range recs {
					v := string(rec.Value)
					if rec.Key != nil && !h.Control() {
						v = string(rec.Key) + "=" + v
						if rec.Value == nil {
							v = string(rec.Key) + "=~"
						}
					}
					if h.Control() {
						v = "ABORT"
						if commit, _, _ := controlType(bb); commit {
							v = "COMMIT"
						}
					}
					fmt.Fprintf(&sb, " %d:%s(e%d)", rec.Offset, v, h.PartitionLeaderEpoch)
				}
			}
		}
		return sb.String() + "\n"
	case "init-producer-id":
		req := kmsg.NewPtrInitProducerIDRequest()
		req.SetVersion(int16(argInt(t, d, "v", 4)))
		if d.HasArg("txn") {
			req.TransactionalID = kmsg.StringPtr(argStr(t, d, "txn", ""))
		}
		req.TransactionTimeoutMillis = int32(argInt(t, d, "timeout", 60_000))
		req.ProducerID = int64(argInt(t, d, "pid", -1))
		req.ProducerEpoch = int16(argInt(t, d, "epoch", -1))
		via, resp, noAnswer := c.callCoordinator(d, txnStateTopic, argStr(t, d, "txn", ""), req)
		if noAnswer != "" {
			return noAnswer
		}
		r := resp.(*kmsg.InitProducerIDResponse)
		if r.ErrorCode != 0 {
			return fmt.Sprintf("via %d: %s\n", via, codeName(r.ErrorCode))
		}
		return fmt.Sprintf("via %d: pid %d epoch %d\n", via, r.ProducerID, r.ProducerEpoch)
	case "add-partitions":
		if v := argInt(t, d, "v", 3); v >= 4 {
			return c.addPartitionsBatched(t, d, int16(v))
		}
		req := kmsg.NewPtrAddPartitionsToTxnRequest()
		req.SetVersion(int16(argInt(t, d, "v", 3)))
		req.TransactionalID = argStr(t, d, "txn", "")
		req.ProducerID = int64(argInt(t, d, "pid", -1))
		req.ProducerEpoch = int16(argInt(t, d, "epoch", -1))
		for _, tp := range strings.Split(argStr(t, d, "partitions", "t:0"), ",") {
			topic, part, _ := strings.Cut(tp, ":")
			n, _ := strconv.Atoi(part)
			rt := kmsg.NewAddPartitionsToTxnRequestTopic()
			rt.Topic, rt.Partitions = topic, []int32{int32(n)}
			req.Topics = append(req.Topics, rt)
		}
		via, resp, noAnswer := c.callCoordinator(d, txnStateTopic, req.TransactionalID, req)
		if noAnswer != "" {
			return noAnswer
		}
		var sb strings.Builder
		fmt.Fprintf(&sb, "via %d:", via)
		for _, rt := range resp.(*kmsg.AddPartitionsToTxnResponse).Topics {
			for _, rp := range rt.Partitions {
				fmt.Fprintf(&sb, " %s:%d %s", rt.Topic, rp.Partition, codeName(rp.ErrorCode))
			}
		}
		return sb.String() + "\n"
	case "add-offsets":
		req := kmsg.NewPtrAddOffsetsToTxnRequest()
		req.SetVersion(3)
		req.TransactionalID = argStr(t, d, "txn", "")
		req.ProducerID = int64(argInt(t, d, "pid", -1))
		req.ProducerEpoch = int16(argInt(t, d, "epoch", -1))
		req.Group = argStr(t, d, "group", "g")
		via, resp, noAnswer := c.callCoordinator(d, txnStateTopic, req.TransactionalID, req)
		if noAnswer != "" {
			return noAnswer
		}
		return fmt.Sprintf("via %d: %s\n", via, codeName(resp.(*kmsg.AddOffsetsToTxnResponse).ErrorCode))
	case "txn-commit":
		req := kmsg.NewPtrTxnOffsetCommitRequest()
		req.SetVersion(int16(argInt(t, d, "v", 3)))
		req.TransactionalID = argStr(t, d, "txn", "")
		req.ProducerID = int64(argInt(t, d, "pid", -1))
		req.ProducerEpoch = int16(argInt(t, d, "epoch", -1))
		req.Group = argStr(t, d, "group", "g")
		req.Generation = int32(argInt(t, d, "gen", -1))
		req.MemberID = c.groups.id(argStr(t, d, "member", ""))
		for _, tpo := range strings.Split(argStr(t, d, "offsets", "t/0=0"), ",") {
			tp, off, _ := strings.Cut(tpo, "=")
			topic, part, _ := strings.Cut(tp, "/")
			n, _ := strconv.Atoi(part)
			o, _ := strconv.Atoi(off)
			rt := kmsg.NewTxnOffsetCommitRequestTopic()
			rt.Topic = topic
			rp := kmsg.NewTxnOffsetCommitRequestTopicPartition()
			rp.Partition, rp.Offset = int32(n), int64(o)
			rt.Partitions = append(rt.Partitions, rp)
			req.Topics = append(req.Topics, rt)
		}
		via, resp, noAnswer := c.callCoordinator(d, offsetsTopic, req.Group, req)
		if noAnswer != "" {
			return noAnswer
		}
		var sb strings.Builder
		fmt.Fprintf(&sb, "via %d:", via)
		for _, rt := range resp.(*kmsg.TxnOffsetCommitResponse).Topics {
			for _, rp := range rt.Partitions {
				fmt.Fprintf(&sb, " %s:%d %s", rt.Topic, rp.Partition, codeName(rp.ErrorCode))
			}
		}
		return sb.String() + "\n"
	case "end-txn":
		req := kmsg.NewPtrEndTxnRequest()
		req.SetVersion(int16(argInt(t, d, "v", 3)))
		req.TransactionalID = argStr(t, d, "txn", "")
		req.ProducerID = int64(argInt(t, d, "pid", -1))
		req.ProducerEpoch = int16(argInt(t, d, "epoch", -1))
		req.Commit = d.HasArg("commit")
		via, resp, noAnswer := c.callCoordinator(d, txnStateTopic, req.TransactionalID, req)
		if noAnswer != "" {
			return noAnswer
		}
		r := resp.(*kmsg.EndTxnResponse)
		if r.ErrorCode == 0 && req.Version >= 5 {
			return fmt.Sprintf("via %d: ok, next pid %d epoch %d\n", via, r.ProducerID, r.ProducerEpoch)
		}
		return fmt.Sprintf("via %d: %s\n", via, codeName(r.ErrorCode))
	case "alter-configs":
		return c.alterConfigs(t, d)
	case "describe-configs":
		req := kmsg.NewPtrDescribeConfigsRequest()
		req.SetVersion(4)
		rr := kmsg.NewDescribeConfigsRequestResource()
		rr.ResourceType, rr.ResourceName = kmsg.ConfigResourceTypeTopic, argStr(t, d, "topic", "t")
		if d.HasArg("broker") {
			rr.ResourceType, rr.ResourceName = kmsg.ConfigResourceTypeBroker, optionalArg(d, "broker")
		}
		if d.HasArg("names") {
			rr.ConfigNames = strings.Split(argStr(t, d, "names", ""), ",")
		}
		req.IncludeSynonyms, req.IncludeDocumentation = d.HasArg("synonyms"), d.HasArg("docs")
		req.Resources = append(req.Resources, rr)
		resp, ok := c.call(int32(argInt(t, d, "via", 1)), req, 60)
		if !ok {
			return "no answer\n"
		}
		var sb strings.Builder
		for _, res := range resp.(*kmsg.DescribeConfigsResponse).Resources {
			if res.ErrorCode != 0 {
				fmt.Fprintf(&sb, "%s: %s\n", res.ResourceName, codeName(res.ErrorCode))
			}
			for _, cfg := range res.Configs {
				fmt.Fprintf(&sb, "%s=%s (%s, %s)", cfg.Name, *cfg.Value, cfg.Source, configTypeName(cfg.ConfigType))
				for _, sy := range cfg.ConfigSynonyms {
					fmt.Fprintf(&sb, " [%s=%s %s]", sy.Name, *sy.Value, sy.Source)
				}
				if cfg.Documentation != nil {
					fmt.Fprintf(&sb, " doc: %s", *cfg.Documentation)
				}
				sb.WriteString("\n")
			}
		}
		return sb.String()
	case "delete-records":
		topic := argStr(t, d, "topic", "t")
		part := int32(argInt(t, d, "partition", 0))
		req := kmsg.NewPtrDeleteRecordsRequest()
		req.SetVersion(2)
		req.TimeoutMillis = 5000
		rt := kmsg.NewDeleteRecordsRequestTopic()
		rt.Topic = topic
		rp := kmsg.NewDeleteRecordsRequestTopicPartition()
		rp.Partition, rp.Offset = part, int64(argInt(t, d, "offset", -1))
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		via, resp, noAnswer := c.callPartition(d, topic, part, req)
		if noAnswer != "" {
			return noAnswer
		}
		r := resp.(*kmsg.DeleteRecordsResponse).Topics[0].Partitions[0]
		if r.ErrorCode != 0 {
			return fmt.Sprintf("via %d: %s\n", via, codeName(r.ErrorCode))
		}
		return fmt.Sprintf("via %d: low watermark %d\n", via, r.LowWatermark)
	case "describe-txns":
		req := kmsg.NewPtrDescribeTransactionsRequest()
		req.TransactionalIDs = strings.Split(argStr(t, d, "ids", ""), ",")
		via := int32(argInt(t, d, "via", int(c.txnCoordinatorOf(req.TransactionalIDs[0]))))
		resp, ok := c.call(via, req, 60)
		if !ok {
			return fmt.Sprintf("via %d: no answer\n", via)
		}
		var sb strings.Builder
		for _, st := range resp.(*kmsg.DescribeTransactionsResponse).TransactionStates {
			if st.ErrorCode != 0 {
				fmt.Fprintf(&sb, "%s: %s\n", st.TransactionalID, codeName(st.ErrorCode))
				continue
			}
			fmt.Fprintf(&sb, "%s: %s pid %d epoch %d timeout %d start %d", st.TransactionalID, st.State, st.ProducerID, st.ProducerEpoch, st.TimeoutMillis, st.StartTimestamp)
			for _, tt := range st.Topics {
				fmt.Fprintf(&sb, " %s%v", tt.Topic, tt.Partitions)
			}
			sb.WriteString("\n")
		}
		return sb.String()
	case "list-txns":
		req := kmsg.NewPtrListTransactionsRequest()
		req.SetVersion(int16(argInt(t, d, "v", 2)))
		if d.HasArg("states") {
			req.StateFilters = strings.Split(argStr(t, d, "states", ""), ",")
		}
		if d.HasArg("pattern") {
			req.TransactionalIDPattern = kmsg.StringPtr(argStr(t, d, "pattern", ""))
		}
		req.DurationFilterMillis = int64(argInt(t, d, "duration", -1))
		via := int32(argInt(t, d, "via", 1))
		resp, ok := c.call(via, req, 60)
		if !ok {
			return fmt.Sprintf("via %d: no answer\n", via)
		}
		r := resp.(*kmsg.ListTransactionsResponse)
		var sb strings.Builder
		fmt.Fprintf(&sb, "via %d: %s", via, codeName(r.ErrorCode))
		if len(r.UnknownStateFilters) > 0 {
			fmt.Fprintf(&sb, " unknown states %v", r.UnknownStateFilters)
		}
		sb.WriteString("\n")
		for _, ts := range r.TransactionStates {
			fmt.Fprintf(&sb, "%s: %s pid %d\n", ts.TransactionalID, ts.TransactionState, ts.ProducerID)
		}
		return sb.String()
	case "describe-producers":
		topic := argStr(t, d, "topic", "t")
		part := int32(argInt(t, d, "partition", 0))
		req := kmsg.NewPtrDescribeProducersRequest()
		rt := kmsg.NewDescribeProducersRequestTopic()
		rt.Topic, rt.Partitions = topic, []int32{part}
		req.Topics = append(req.Topics, rt)
		via, resp, noAnswer := c.callPartition(d, topic, part, req)
		if noAnswer != "" {
			return noAnswer
		}
		r := resp.(*kmsg.DescribeProducersResponse).Topics[0].Partitions[0]
		if r.ErrorCode != 0 {
			return fmt.Sprintf("via %d: %s\n", via, codeName(r.ErrorCode))
		}
		var sb strings.Builder
		fmt.Fprintf(&sb, "via %d:", via)
		for _, ap := range r.ActiveProducers {
			fmt.Fprintf(&sb, " pid %d epoch %d seq %d coord %d txn %d;", ap.ProducerID, ap.ProducerEpoch, ap.LastSequence, ap.CoordinatorEpoch, ap.CurrentTxnStartOffset)
		}
		return sb.String() + "\n"
	case "marker":
		topic := argStr(t, d, "topic", "t")
		part := int32(argInt(t, d, "partition", 0))
		req := kmsg.NewPtrWriteTxnMarkersRequest()
		req.SetVersion(1)
		m := kmsg.NewWriteTxnMarkersRequestMarker()
		m.ProducerID = int64(argInt(t, d, "pid", 0))
		m.ProducerEpoch = int16(argInt(t, d, "epoch", 0))
		m.Committed = d.HasArg("commit")
		m.CoordinatorEpoch = int32(argInt(t, d, "coord-epoch", 0))
		mt := kmsg.NewWriteTxnMarkersRequestMarkerTopic()
		mt.Topic, mt.Partitions = topic, []int32{part}
		m.Topics = append(m.Topics, mt)
		req.Markers = append(req.Markers, m)
		via, resp, noAnswer := c.callPartition(d, topic, part, req)
		if noAnswer != "" {
			return noAnswer
		}
		code := resp.(*kmsg.WriteTxnMarkersResponse).Markers[0].Topics[0].Partitions[0].ErrorCode
		return fmt.Sprintf("via %d: %s\n", via, codeName(code))
	case "list-offsets":
		topic := argStr(t, d, "topic", "t")
		part := int32(argInt(t, d, "partition", 0))
		req := kmsg.NewPtrListOffsetsRequest()
		req.SetVersion(7)
		if argStr(t, d, "isolation", "uncommitted") == "committed" {
			req.IsolationLevel = 1
		}
		rt := kmsg.NewListOffsetsRequestTopic()
		rt.Topic = topic
		rp := kmsg.NewListOffsetsRequestTopicPartition()
		rp.Partition = part
		rp.Timestamp = int64(argInt(t, d, "ts", -1))
		rp.CurrentLeaderEpoch = -1
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		via, resp, noAnswer := c.callPartition(d, topic, part, req)
		if noAnswer != "" {
			return noAnswer
		}
		r := resp.(*kmsg.ListOffsetsResponse).Topics[0].Partitions[0]
		if r.ErrorCode != 0 {
			return fmt.Sprintf("via %d: %s\n", via, codeName(r.ErrorCode))
		}
		return fmt.Sprintf("via %d: offset %d epoch %d\n", via, r.Offset, r.LeaderEpoch)
	case "metadata":
		req := kmsg.NewPtrMetadataRequest()
		req.SetVersion(12)
		for _, name := range splitArg(t, d, "topics") {
			req.Topics = append(req.Topics, kmsg.MetadataRequestTopic{Topic: kmsg.StringPtr(name)})
		}
		resp, _ := c.call(int32(argInt(t, d, "via", 1)), req, 5)
		m := resp.(*kmsg.MetadataResponse)
		var sb strings.Builder
		fmt.Fprintf(&sb, "controller %d, brokers", m.ControllerID)
		for _, br := range m.Brokers {
			fmt.Fprintf(&sb, " %d@%s:%d", br.NodeID, br.Host, br.Port)
		}
		sb.WriteString("\n")
		for _, tp := range m.Topics {
			if tp.ErrorCode != 0 {
				fmt.Fprintf(&sb, "%s: %s\n", *tp.Topic, codeName(tp.ErrorCode))
			}
			for _, p := range tp.Partitions {
				fmt.Fprintf(&sb, "%s-%d: leader %d epoch %d replicas %v isr %v %s\n", *tp.Topic, p.Partition, p.Leader, p.LeaderEpoch, p.Replicas, p.ISR, codeName(p.ErrorCode))
			}
		}
		return sb.String()
	case "log":
		// log broker=N [topic=t partition=0]: one replica's local log.
		tb := c.broker(int32(argInt(t, d, "broker", 1)))
		pm, ok := tb.b.meta.partition(argStr(t, d, "topic", "t"), int32(argInt(t, d, "partition", 0)))
		if !ok {
			return "no such partition\n"
		}
		p := tb.b.parts[pm.Group]
		if p == nil {
			return "not a replica\n"
		}
		var sb strings.Builder
		fmt.Fprintf(&sb, "broker %d: hw=%d", tb.id, p.highWatermark())
		if p.startOffset() > 0 || p.log.StartOffset() > 0 {
			fmt.Fprintf(&sb, " start=%d segments-from=%d", p.startOffset(), p.log.StartOffset())
		}
		_ = p.log.Batches(p.log.StartOffset(), func(bb []byte, _ segment.BatchMeta) error {
			recs, err := batch.Records(bb)
			h, _ := batch.ReadHeader(bb)
			for _, rec := range recs {
				switch {
				case h.Control():
					v := "ABORT"
					if commit, _, _ := controlType(bb); commit {
						v = "COMMIT"
					}
					fmt.Fprintf(&sb, " %d:%s", rec.Offset, v)
				case rec.Key == nil:
					fmt.Fprintf(&sb, " %d:%s", rec.Offset, rec.Value)
				case rec.Value == nil:
					fmt.Fprintf(&sb, " %d:%s=~", rec.Offset, rec.Key)
				default:
					fmt.Fprintf(&sb, " %d:%s=%s", rec.Offset, rec.Key, rec.Value)
				}
			}
			return err
		})
		if d.HasArg("segments") {
			for _, s := range p.log.Segments() {
				fmt.Fprintf(&sb, " [%d,%d)", s.Base, s.End)
			}
		}
		return sb.String() + "\n"
	case "leaders":
		return c.leaders()
	case "tick":
		c.tick(argInt(t, d, "n", 1))
		return ""
	case "stabilize":
		c.stabilize()
		return ""
	case "partition":
		sides := strings.Split(strings.Join(argsRaw(d), " "), "|")
		if len(sides) != 2 {
			t.Fatalf("partition: want 'A | B', got %q", d.CmdArgs)
		}
		a, b := parseIDs(t, sides[0]), parseIDs(t, sides[1])
		for _, x := range a {
			for _, y := range b {
				c.cut[[2]int32{x, y}], c.cut[[2]int32{y, x}] = true, true
			}
		}
		return ""
	case "cut":
		c.cut[[2]int32{int32(argInt(t, d, "from", 0)), int32(argInt(t, d, "to", 0))}] = true
		return ""
	case "heal":
		clear(c.cut)
		return ""
	case "crash":
		tb := c.broker(int32(argInt(t, d, "broker", 0)))
		rng := rand.New(rand.NewPCG(uint64(argInt(t, d, "seed", 1)), 0))
		tb.down = true
		tb.b.Close()
		tb.memWAL.Crash(rng)
		tb.memFS.Crash(rng)
		return ""
	case "restart":
		tb := c.broker(int32(argInt(t, d, "broker", 0)))
		c.startBroker(tb)
		c.stabilize()
		return ""
	case "checkpoint":
		tb := c.broker(int32(argInt(t, d, "broker", 0)))
		if err := tb.b.Checkpoint(); err != nil {
			return fmt.Sprintf("error: %v\n", err)
		}
		return ""
	}
	if out, ok := c.runACL(t, d); ok {
		return out
	}
	if out, ok := c.runSCRAM(t, d); ok {
		return out
	}
	if out, ok := c.runGroup(t, d); ok {
		return out
	}
	t.Fatalf("unknown command %q", d.Cmd)
	return ""
}

// optionalArg is the value of key=value, or "" for a bare key.
func optionalArg(d *datadriven.TestData, key string) string {
	for _, a := range d.CmdArgs {
		if a.Key == key && len(a.Vals) > 0 {
			return a.Vals[0]
		}
	}
	return ""
}

func argsRaw(d *datadriven.TestData) []string {
	var out []string
	for _, a := range d.CmdArgs {
		out = append(out, a.String())
	}
	return out
}

func parseIDs(t *testing.T, s string) []int32 {
	var ids []int32
	for _, f := range strings.Fields(s) {
		n, err := strconv.Atoi(f)
		if err != nil {
			t.Fatalf("bad broker id %q", f)
		}
		ids = append(ids, int32(n))
	}
	return ids
}

// leaders prints, per raft group, which broker leads it and at what term,
// as each live broker sees it.
func (c *testCluster) leaders() string {
	type row struct {
		name string
		line string
	}
	var rows []row
	groups := map[raftlog.GroupID]string{metadataGroup: "metadata"}
	for _, tb := range c.brokers {
		if tb.down {
			continue
		}
		for name, tm := range tb.b.meta.st.Topics {
			for i, pm := range tm.Partitions {
				groups[pm.Group] = fmt.Sprintf("%s-%d", name, i)
			}
		}
	}
	for g, name := range groups {
		var leads []string
		for _, tb := range c.brokers {
			if tb.down {
				continue
			}
			if st, ok := tb.b.host.Status(g); ok && st.Leader {
				leads = append(leads, fmt.Sprintf("%d(term %d)", tb.id, st.Term))
			}
		}
		rows = append(rows, row{name, fmt.Sprintf("%s: leader %s", name, strings.Join(leads, ","))})
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].name < rows[j].name })
	var sb strings.Builder
	for _, r := range rows {
		sb.WriteString(r.line + "\n")
	}
	return sb.String()
}

func codeName(code int16) string {
	if code == 0 {
		return "ok"
	}
	if e := kerrByCode(code); e != "" {
		return e
	}
	return "error " + strconv.Itoa(int(code))
}

// txnCoordinatorOf is the broker whose replica leads id's
// __transaction_state partition.
func (c *testCluster) txnCoordinatorOf(id string) int32 { return c.coordinatorOn(txnStateTopic, id) }

// callCoordinator sends req to the broker named by via=, by default the
// one leading key's partition of the internal topic.
func (c *testCluster) callCoordinator(d *datadriven.TestData, topic, key string, req kmsg.Request) (via int32, resp kmsg.Response, noAnswer string) {
	via = int32(argInt(c.t, d, "via", 0))
	if via == 0 {
		via = c.coordinatorOn(topic, key)
	}
	resp, ok := c.call(via, req, 60)
	if !ok {
		return via, nil, fmt.Sprintf("via %d: no answer\n", via)
	}
	return via, resp, ""
}

// addPartitionsBatched is add-partitions at v4+ (the brokers' form): one
// transaction, verify-only or adding.
func (c *testCluster) addPartitionsBatched(t *testing.T, d *datadriven.TestData, v int16) string {
	req := kmsg.NewPtrAddPartitionsToTxnRequest()
	req.SetVersion(v)
	tx := kmsg.NewAddPartitionsToTxnRequestTransaction()
	tx.TransactionalID = argStr(t, d, "txn", "")
	tx.ProducerID = int64(argInt(t, d, "pid", -1))
	tx.ProducerEpoch = int16(argInt(t, d, "epoch", -1))
	tx.VerifyOnly = d.HasArg("verify-only")
	for _, tp := range strings.Split(argStr(t, d, "partitions", "t:0"), ",") {
		topic, part, _ := strings.Cut(tp, ":")
		n, _ := strconv.Atoi(part)
		rt := kmsg.NewAddPartitionsToTxnRequestTransactionTopic()
		rt.Topic, rt.Partitions = topic, []int32{int32(n)}
		tx.Topics = append(tx.Topics, rt)
	}
	req.Transactions = append(req.Transactions, tx)
	via, resp, noAnswer := c.callCoordinator(d, txnStateTopic, tx.TransactionalID, req)
	if noAnswer != "" {
		return noAnswer
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "via %d:", via)
	for _, rt := range resp.(*kmsg.AddPartitionsToTxnResponse).Transactions {
		for _, tt := range rt.Topics {
			for _, rp := range tt.Partitions {
				fmt.Fprintf(&sb, " %s:%d %s", tt.Topic, rp.Partition, codeName(rp.ErrorCode))
			}
		}
	}
	return sb.String() + "\n"
}

// alterConfigs is alter-configs: IncrementalAlterConfigs with
// incremental (set=, delete=, append=, subtract=, each k=v;k=v or k;k),
// else AlterConfigs with set=; validate-only; broker[=id] for the broker
// resource (cluster-wide without an id).
func (c *testCluster) alterConfigs(t *testing.T, d *datadriven.TestData) string {
	topic := argStr(t, d, "topic", "t")
	typ := kmsg.ConfigResourceTypeTopic
	if d.HasArg("broker") {
		typ, topic = kmsg.ConfigResourceTypeBroker, optionalArg(d, "broker")
	}
	pairs := func(key string) [][2]string {
		var out [][2]string
		if !d.HasArg(key) {
			return nil
		}
		for _, kv := range strings.Split(argStr(t, d, key, ""), ";") {
			k, v, _ := strings.Cut(kv, "=")
			out = append(out, [2]string{k, v})
		}
		return out
	}
	var req kmsg.Request
	if d.HasArg("incremental") {
		r := kmsg.NewPtrIncrementalAlterConfigsRequest()
		rr := kmsg.NewIncrementalAlterConfigsRequestResource()
		rr.ResourceType, rr.ResourceName = typ, topic
		for op, key := range []string{"set", "delete", "append", "subtract"} {
			for _, kv := range pairs(key) {
				cfg := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
				cfg.Name, cfg.Op, cfg.Value = kv[0], kmsg.IncrementalAlterConfigOp(op), kmsg.StringPtr(kv[1])
				rr.Configs = append(rr.Configs, cfg)
			}
		}
		r.Resources, r.ValidateOnly = append(r.Resources, rr), d.HasArg("validate-only")
		req = r
	} else {
		r := kmsg.NewPtrAlterConfigsRequest()
		rr := kmsg.NewAlterConfigsRequestResource()
		rr.ResourceType, rr.ResourceName = typ, topic
		for _, kv := range pairs("set") {
			rr.Configs = append(rr.Configs, kmsg.AlterConfigsRequestResourceConfig{Name: kv[0], Value: kmsg.StringPtr(kv[1])})
		}
		r.Resources, r.ValidateOnly = append(r.Resources, rr), d.HasArg("validate-only")
		req = r
	}
	resp, ok := c.call(int32(argInt(t, d, "via", 1)), req, 60)
	if !ok {
		return "no answer\n"
	}
	var code int16
	var msg *string
	switch r := resp.(type) {
	case *kmsg.AlterConfigsResponse:
		code, msg = r.Resources[0].ErrorCode, r.Resources[0].ErrorMessage
	case *kmsg.IncrementalAlterConfigsResponse:
		code, msg = r.Resources[0].ErrorCode, r.Resources[0].ErrorMessage
	}
	if msg != nil {
		return fmt.Sprintf("%s: %s\n", codeName(code), *msg)
	}
	return codeName(code) + "\n"
}
