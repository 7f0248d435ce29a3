package engine

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"strings"
	"testing"
	"testing/cryptotest"

	"github.com/gregor-streaming/gregor/engine/rsm"
	"github.com/gregor-streaming/gregor/raftlog"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
	pb "go.etcd.io/raft/v3/raftpb"
)

func imageSeed() []byte {
	m := newMetaSM(&Broker{cfg: Config{ID: 1}, want: map[raftlog.GroupID]wantReplica{}})
	m.apply(&metaCmd{Register: &BrokerInfo{ID: 1, Host: "h", Port: 9}}, 2)
	m.apply(&metaCmd{CreateTopic: &createTopicCmd{Name: "t", Partitions: 2, Replication: 1, Assignment: [][]int32{{1}, {2}},
		Configs: map[string]string{"retention.ms": "5"}}}, 3)
	m.apply(&metaCmd{AllocateIDs: true}, 4)
	m.apply(&metaCmd{SCRAM: &scramCmd{User: "alice", Upsert: []scramUpsertion{{Mechanism: scramSHA256,
		Cred: SCRAMCredential{Salt: []byte("s"), Iterations: 4096, StoredKey: []byte("k1"), ServerKey: []byte("k2")}}}}}, 4)
	m.apply(&metaCmd{ACL: &aclCmd{Create: []ACL{{ResourceType: resTopic, Name: "t", Pattern: patLiteral,
		Principal: "User:alice", Host: "*", Operation: opRead, Permission: permAllow}}}}, 4)
	b, err := encodeImage(4, &m.st)
	if err != nil {
		panic(err)
	}
	return b
}

func TestImageRoundTrip(t *testing.T) {
	data := imageSeed()
	applied, st, err := decodeImage(data)
	if err != nil {
		t.Fatal(err)
	}
	if applied != 4 || len(st.Topics["t"].Partitions) != 2 || st.NextProducerID != 1+producerIDBlock || st.Brokers[1].Host != "h" ||
		st.SCRAM["alice"][scramSHA256].Iterations != 4096 || string(st.SCRAM["alice"][scramSHA256].ServerKey) != "k2" ||
		len(st.ACLs) != 1 || st.ACLs[0].Principal != "User:alice" || st.ACLs[0].Operation != opRead {
		t.Fatalf("decoded %d %+v", applied, st)
	}
	again, _ := encodeImage(applied, st)
	if !bytes.Equal(again, data) {
		t.Fatal("decode then encode does not give the same bytes")
	}
	for i := range data {
		bad := bytes.Clone(data)
		bad[i] ^= 1
		if _, _, err := decodeImage(bad); err == nil {
			t.Fatalf("a flipped bit at byte %d went unnoticed", i)
		}
	}
}

// TestImageBeforeSCRAM reads an image written before SCRAM credentials
// were part of the metadata state: it has none, and takes some.
func TestImageBeforeSCRAM(t *testing.T) {
	b := append(imageMagic[:], imageVersion, 7)
	b = append(b, `{"Brokers":{"1":{"ID":1,"Host":"h","Port":9}},"Topics":{},"NextGroup":2,"NextProducerID":1}`...)
	b = binary.BigEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
	applied, st, err := decodeImage(b)
	if err != nil || applied != 7 || st.SCRAM != nil || st.Brokers[1].Host != "h" {
		t.Fatalf("decodeImage: %d %+v %v", applied, st, err)
	}
	m := newMetaSM(&Broker{cfg: Config{ID: 1}, want: map[raftlog.GroupID]wantReplica{}})
	m.setState(applied, st)
	if r := m.apply(&metaCmd{SCRAM: &scramCmd{User: "bob", Delete: []string{scramSHA512}}}, 8); !errors.Is(r.err, kerr.ResourceNotFound) {
		t.Fatalf("deleting from an old image: %v", r.err)
	}
	m.apply(&metaCmd{SCRAM: &scramCmd{User: "bob", Upsert: []scramUpsertion{{Mechanism: scramSHA512, Cred: SCRAMCredential{Iterations: 4096}}}}}, 8)
	if m.st.SCRAM["bob"][scramSHA512].Iterations != 4096 {
		t.Fatal("no credential after the upsertion")
	}
	// An image from before ACLs has none, and one without them still has
	// no ACLs key at all.
	if st.ACLs != nil {
		t.Fatalf("ACLs from an image without them: %v", st.ACLs)
	}
	if out, _ := encodeImage(8, &m.st); bytes.Contains(out, []byte("ACLs")) {
		t.Fatal("an image without ACLs has an ACLs key")
	}
	// An image without credentials still has no SCRAM key at all.
	m.apply(&metaCmd{SCRAM: &scramCmd{User: "bob", Delete: []string{scramSHA512}}}, 9)
	if out, _ := encodeImage(9, &m.st); bytes.Contains(out, []byte("SCRAM")) {
		t.Fatalf("an image without credentials names them: %s", out)
	}
}

func FuzzDecodeImage(f *testing.F) {
	f.Add(imageSeed())
	f.Add([]byte("GRMI\x01\x00{}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		applied, st, err := decodeImage(data)
		if err != nil {
			return
		}
		again, err := encodeImage(applied, st)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := decodeImage(again); err != nil {
			t.Fatalf("re-encoded image does not decode: %v", err)
		}
	})
}

// countingWAL counts the records appended through it.
type countingWAL struct {
	raftlog.WAL
	appends, records int
}

func (w *countingWAL) Append(recs [][]byte) error {
	w.appends++
	w.records += len(recs)
	return w.WAL.Append(recs)
}

// TestRestartDoesNotReplayDeletedPartitions: 100 partitions created and
// deleted, then a restart. Replaying the metadata log must not create and
// remove each deleted partition's raft group again (before: 200 WAL
// records, each with its own fsync, per restart), with or without a
// checkpoint (the metadata image) before the restart.
func TestRestartDoesNotReplayDeletedPartitions(t *testing.T) {
	for _, checkpoint := range []bool{false, true} {
		t.Run(fmt.Sprintf("checkpoint=%v", checkpoint), func(t *testing.T) {
			cryptotest.SetGlobalRandom(t, 1)
			c := &testCluster{t: t}
			c.run(t, cmd("add-brokers n=1"))
			for i := range 10 {
				c.run(t, cmd(fmt.Sprintf("create-topic name=gone%d partitions=10 rf=1", i)))
			}
			for i := range 10 {
				if _, resp := c.deleteTopic(fmt.Sprintf("gone%d", i)); resp != "" {
					t.Fatal(resp)
				}
			}
			c.run(t, cmd("create-topic name=kept partitions=2 rf=1"))
			if checkpoint {
				c.run(t, cmd("checkpoint broker=1"))
			}
			var counted *countingWAL
			c.wrapWAL = func(tb *testBroker) raftlog.WAL {
				counted = &countingWAL{WAL: tb.wal}
				return counted
			}
			c.run(t, cmd("crash broker=1"))
			c.run(t, cmd("restart broker=1"))
			b := c.broker(1).b
			if len(b.parts) != 2 {
				t.Fatalf("%d partitions after restart, want 2", len(b.parts))
			}
			// A new term of the metadata group and of each kept
			// partition is all that is written.
			if counted.records > 8 {
				t.Fatalf("restart wrote %d WAL records in %d appends", counted.records, counted.appends)
			}
			t.Logf("restart wrote %d WAL records in %d appends", counted.records, counted.appends)
			// The count is live: the broker's first election writes.
			c.tick(30)
			if counted.records == 0 {
				t.Fatal("the counting WAL saw nothing: the test measures nothing")
			}
		})
	}
}

// TestMetadataSnapshotCatchUp: a broker down while the others compacted
// their metadata logs past it gets the metadata image in a raft snapshot,
// and hosts the partitions created meanwhile.
func TestMetadataSnapshotCatchUp(t *testing.T) {
	cryptotest.SetGlobalRandom(t, 1)
	c := &testCluster{t: t}
	c.run(t, cmd("add-brokers n=3"))
	c.run(t, cmd("crash broker=3"))
	c.run(t, cmd("create-topic name=late partitions=3 rf=3"))
	c.run(t, cmd("checkpoint broker=1"))
	c.run(t, cmd("checkpoint broker=2"))
	if first, _ := c.broker(1).b.host.FirstIndex(metadataGroup); first <= 2 {
		t.Fatalf("metadata log not compacted: first index %d", first)
	}
	c.run(t, cmd("restart broker=3"))
	c.tick(20)
	b := c.broker(3).b
	if _, ok := b.meta.st.Topics["late"]; !ok || len(b.parts) != 3 {
		t.Fatalf("broker 3 knows topics %v and hosts %d partitions", b.meta.topicNames(), len(b.parts))
	}
	if out := c.run(t, cmd("produce topic=late partition=1 values=x")); !strings.Contains(out, "offset 0") {
		t.Fatalf("produce: %q", out)
	}
}

// deleteTopic deletes a topic through broker 1; it returns a description
// of the failure, or "".
func (c *testCluster) deleteTopic(name string) (kmsg.Response, string) {
	req := kmsg.NewPtrDeleteTopicsRequest()
	req.Version = 4
	req.TimeoutMillis = 5000
	req.TopicNames = []string{name}
	resp, ok := c.call(1, req, 100)
	if !ok {
		return nil, "delete " + name + ": no answer"
	}
	if code := resp.(*kmsg.DeleteTopicsResponse).Topics[0].ErrorCode; code != 0 {
		return resp, fmt.Sprintf("delete %s: %s", name, codeName(code))
	}
	return resp, ""
}

// TestMetadataProposalAppliedOnce: a forwarded metadata proposal that the
// network delivered twice is two raft entries with one header; the second
// must not apply (a CreateTopic repeated after a DeleteTopic would bring
// the topic back). Distinct proposals of one broker apply in whatever
// order they commit.
func TestMetadataProposalAppliedOnce(t *testing.T) {
	m := newMetaSM(&Broker{cfg: Config{ID: 1}, want: map[raftlog.GroupID]wantReplica{}})
	p := rsm.Proposer{ID: 2, Boot: 7}
	entry := func(i uint64, h rsm.Header, cmd metaCmd) *pb.Entry {
		body, _ := json.Marshal(cmd)
		return &pb.Entry{Index: &i, Data: h.Encode(body)}
	}
	name := "t"
	create := p.Next(rsm.KindMetadata, opMeta)
	del := p.Next(rsm.KindMetadata, opMeta)
	later := p.Next(rsm.KindMetadata, opMeta)
	ct := metaCmd{CreateTopic: &createTopicCmd{Name: name, Partitions: 1, Replication: 1, Assignment: [][]int32{{1}}}}
	ents := []*pb.Entry{
		entry(2, later, metaCmd{Register: &BrokerInfo{ID: 2, Host: "h", Port: 1}}), // out of order: still applies
		entry(3, create, ct),
		entry(4, del, metaCmd{DeleteTopic: &name}),
		entry(5, create, ct), // the duplicate
	}
	if err := m.Apply(ents); err != nil {
		t.Fatal(err)
	}
	if _, ok := m.st.Topics[name]; ok {
		t.Fatal("a duplicated CreateTopic brought the deleted topic back")
	}
	if m.st.Brokers[2].Host != "h" {
		t.Fatal("a proposal that committed before an earlier one of its broker was skipped")
	}
	// Another run of the same broker starts its sequence again.
	q := rsm.Proposer{ID: 2, Boot: 8}
	if err := m.Apply([]*pb.Entry{entry(6, q.Next(rsm.KindMetadata, opMeta), ct)}); err != nil {
		t.Fatal(err)
	}
	if _, ok := m.st.Topics[name]; !ok {
		t.Fatal("a new run's first proposal was taken for a duplicate")
	}
}
