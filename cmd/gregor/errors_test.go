package main

// Each Kafka error code a client can meet from Gregor, provoked with raw
// kmsg requests through a franz-go client and checked on the wire.

import (
	"context"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Record batch v2 layout (Kafka's DefaultRecordBatch).
const (
	batchHeaderBytes = 61 // through the record count
	batchCRCStart    = 21 // attributes: the CRC covers from here to the end
	batchMagicAt     = 16
	attrLogAppend    = 0x08
	attrTransact     = 0x10
	attrControl      = 0x20
)

// producerRef is the idempotence fields of a batch; noProducer for none.
type producerRef struct {
	id    int64
	epoch int16
	seq   int32
}

var noProducer = producerRef{id: -1, epoch: -1, seq: -1}

// recordBatch encodes an uncompressed v2 batch of values with a correct
// CRC-32C.
func recordBatch(pr producerRef, attrs int16, values ...[]byte) []byte {
	var recs []byte
	for i, v := range values {
		r := kmsg.Record{OffsetDelta: int32(i), Value: v}
		body := r.AppendTo(nil) // Length 0 encodes as one byte
		r.Length = int32(len(body) - 1)
		recs = r.AppendTo(recs)
	}
	now := time.Now().UnixMilli()
	b := kmsg.RecordBatch{
		Length:          int32(batchHeaderBytes - 12 + len(recs)),
		Magic:           2,
		Attributes:      attrs,
		LastOffsetDelta: int32(len(values) - 1),
		FirstTimestamp:  now,
		MaxTimestamp:    now,
		ProducerID:      pr.id,
		ProducerEpoch:   pr.epoch,
		FirstSequence:   pr.seq,
		NumRecords:      int32(len(values)),
		Records:         recs,
	}
	out := b.AppendTo(nil)
	crc := crc32.Checksum(out[batchCRCStart:], crc32.MakeTable(crc32.Castagnoli))
	out[17], out[18], out[19], out[20] = byte(crc>>24), byte(crc>>16), byte(crc>>8), byte(crc)
	return out
}

// errCluster is the cluster and topic the error tests share.
type errCluster struct {
	*liveCluster
	cl    *kgo.Client
	topic string
	parts map[int32]partitionInfo
}

const errTopic = "errors"

func (e *errCluster) request(t *testing.T, broker int32, req kmsg.Request) kmsg.Response {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var r kmsg.Requestor = e.cl
	if broker > 0 {
		r = e.cl.Broker(int(broker))
	}
	resp, err := r.Request(ctx, req)
	if err != nil {
		t.Fatalf("%T to broker %d: %v", req, broker, err)
	}
	return resp
}

// produce sends one partition's records with acks to broker and returns
// that partition's answer.
func (e *errCluster) produce(t *testing.T, broker int32, topic string, partition int32, acks int16, records []byte) kmsg.ProduceResponseTopicPartition {
	t.Helper()
	req := kmsg.NewPtrProduceRequest()
	req.Acks, req.TimeoutMillis = acks, 10_000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Partition, rp.Records = partition, records
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp := e.request(t, broker, req).(*kmsg.ProduceResponse)
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		t.Fatalf("produce answered %+v, want one topic with one partition", resp.Topics)
	}
	return resp.Topics[0].Partitions[0]
}

// rawRequest sends req at version to broker over a connection of its own,
// bypassing kgo, which rewrites a Produce request's acks to its own
// setting and routes a transactional InitProducerID to a transaction
// coordinator Gregor does not have.
func (e *errCluster) rawRequest(t *testing.T, broker int32, version int16, req kmsg.Request) kmsg.Response {
	t.Helper()
	conn, err := net.DialTimeout("tcp", e.seeds()[broker-1], 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(20 * time.Second))
	req.SetVersion(version)
	const correlation = 7
	frame := kmsg.NewRequestFormatter(kmsg.FormatterClientID("gregor-raw")).AppendRequest(nil, req, correlation)
	if _, err := conn.Write(frame); err != nil {
		t.Fatal(err)
	}
	var size [4]byte
	if _, err := io.ReadFull(conn, size[:]); err != nil {
		t.Fatalf("%T v%d: reading the answer: %v", req, version, err)
	}
	body := make([]byte, binary.BigEndian.Uint32(size[:]))
	if _, err := io.ReadFull(conn, body); err != nil {
		t.Fatal(err)
	}
	if got := int32(binary.BigEndian.Uint32(body)); got != correlation {
		t.Fatalf("answer carries correlation id %d, want %d", got, correlation)
	}
	body = body[4:]
	if req.IsFlexible() && req.Key() != int16(kmsg.ApiVersions) {
		body = body[1:] // empty tagged fields of response header v1
	}
	resp := req.ResponseKind()
	if err := resp.ReadFrom(body); err != nil {
		t.Fatalf("%T v%d: decoding the answer: %v", resp, version, err)
	}
	return resp
}

func (e *errCluster) leader(p int32) int32 { return e.parts[p].leader }

// follower is a replica of partition p that does not lead it.
func (e *errCluster) follower(p int32) int32 {
	for _, r := range e.parts[p].replicas {
		if r != e.parts[p].leader {
			return r
		}
	}
	panic("no follower")
}

func wantCode(t *testing.T, what string, got int16, want *kerr.Error) {
	t.Helper()
	if got != want.Code {
		t.Errorf("%s: got %v, want %s", what, kerr.ErrorForCode(got), want.Message)
	} else {
		t.Logf("%s: %s", what, want.Message)
	}
}

func createTopicsReq(topics ...kmsg.CreateTopicsRequestTopic) *kmsg.CreateTopicsRequest {
	req := kmsg.NewPtrCreateTopicsRequest()
	req.TimeoutMillis = 10_000
	req.Topics = topics
	return req
}

func newTopic(name string, partitions int32, rf int16) kmsg.CreateTopicsRequestTopic {
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = name, partitions, rf
	return rt
}

func TestErrorCodesOnTheWire(t *testing.T) {
	c := startLiveCluster(t)
	e := &errCluster{liveCluster: c, cl: c.client(), topic: errTopic}
	createTopic(t, e.cl, errTopic, 2, 3)
	e.parts = leaders(t, e.cl, errTopic, 2)
	value := []byte("hello")

	// A good produce first, so the partition has records.
	if p := e.produce(t, e.leader(0), errTopic, 0, -1, recordBatch(noProducer, 0, value, value)); p.ErrorCode != 0 || p.BaseOffset != 0 {
		t.Fatalf("produce to the leader: %v at base offset %d", kerr.ErrorForCode(p.ErrorCode), p.BaseOffset)
	}

	t.Run("Produce", func(t *testing.T) {
		good := recordBatch(noProducer, 0, value)
		wantCode(t, "produce to a follower", e.produce(t, e.follower(0), errTopic, 0, -1, good).ErrorCode, kerr.NotLeaderForPartition)
		wantCode(t, "produce to an unknown topic", e.produce(t, e.leader(0), "no-such-topic", 0, -1, good).ErrorCode, kerr.UnknownTopicOrPartition)
		wantCode(t, "produce to partition 7 of a 2-partition topic", e.produce(t, e.leader(0), errTopic, 7, -1, good).ErrorCode, kerr.UnknownTopicOrPartition)
		for _, v := range []int16{3, 9} {
			req := kmsg.NewPtrProduceRequest()
			req.Acks, req.TimeoutMillis = 2, 10_000
			rt := kmsg.NewProduceRequestTopic()
			rt.Topic = errTopic
			rp := kmsg.NewProduceRequestTopicPartition()
			rp.Records = good
			rt.Partitions = append(rt.Partitions, rp)
			req.Topics = append(req.Topics, rt)
			resp := e.rawRequest(t, e.leader(0), v, req).(*kmsg.ProduceResponse)
			wantCode(t, fmt.Sprintf("produce v%d with acks=2", v), resp.Topics[0].Partitions[0].ErrorCode, kerr.InvalidRequiredAcks)
		}

		corrupt := recordBatch(noProducer, 0, value)
		corrupt[len(corrupt)-1] ^= 0xff // inside the CRC range
		wantCode(t, "produce a batch with a flipped byte", e.produce(t, e.leader(0), errTopic, 0, -1, corrupt).ErrorCode, kerr.CorruptMessage)

		truncated := recordBatch(noProducer, 0, value)
		truncated = truncated[:len(truncated)-3]
		// Kafka's answer (ByteBufferLogInputStream finds no whole batch),
		// recorded in conformance/17_bad_input.
		wantCode(t, "produce a truncated batch", e.produce(t, e.leader(0), errTopic, 0, -1, truncated).ErrorCode, kerr.InvalidRecord)

		big := recordBatch(noProducer, 0, make([]byte, 1<<20+1))
		wantCode(t, "produce a batch over 1 MiB", e.produce(t, e.leader(0), errTopic, 0, -1, big).ErrorCode, kerr.MessageTooLarge)

		magic1 := recordBatch(noProducer, 0, value)
		magic1[batchMagicAt] = 1
		wantCode(t, "produce a magic-1 batch", e.produce(t, e.leader(0), errTopic, 0, -1, magic1).ErrorCode, kerr.UnsupportedForMessageFormat)

		wantCode(t, "produce a LogAppendTime batch", e.produce(t, e.leader(0), errTopic, 0, -1, recordBatch(noProducer, attrLogAppend, value)).ErrorCode, kerr.InvalidTimestamp)
		wantCode(t, "produce an empty partition record set", e.produce(t, e.leader(0), errTopic, 0, -1, []byte{}).ErrorCode, kerr.InvalidRecord)
	})

	t.Run("Idempotence", func(t *testing.T) {
		init := e.request(t, 0, kmsg.NewPtrInitProducerIDRequest()).(*kmsg.InitProducerIDResponse)
		if init.ErrorCode != 0 || init.ProducerID < 0 {
			t.Fatalf("InitProducerID: %v, id %d", kerr.ErrorForCode(init.ErrorCode), init.ProducerID)
		}
		pid, epoch := init.ProducerID, init.ProducerEpoch
		l := e.leader(1)
		first := e.produce(t, l, errTopic, 1, -1, recordBatch(producerRef{pid, epoch, 0}, 0, value, value))
		if first.ErrorCode != 0 {
			t.Fatalf("first idempotent batch: %v", kerr.ErrorForCode(first.ErrorCode))
		}
		retry := e.produce(t, l, errTopic, 1, -1, recordBatch(producerRef{pid, epoch, 0}, 0, value, value))
		if retry.ErrorCode != 0 || retry.BaseOffset != first.BaseOffset {
			t.Errorf("retried batch: %v at %d, want the original offset %d", kerr.ErrorForCode(retry.ErrorCode), retry.BaseOffset, first.BaseOffset)
		}
		gap := e.produce(t, l, errTopic, 1, -1, recordBatch(producerRef{pid, epoch, 5}, 0, value))
		wantCode(t, "idempotent batch with a sequence gap", gap.ErrorCode, kerr.OutOfOrderSequenceNumber)
		if next := e.produce(t, l, errTopic, 1, -1, recordBatch(producerRef{pid, epoch + 1, 0}, 0, value)); next.ErrorCode != 0 {
			t.Fatalf("batch at a new producer epoch: %v", kerr.ErrorForCode(next.ErrorCode))
		}
		old := e.produce(t, l, errTopic, 1, -1, recordBatch(producerRef{pid, epoch, 2}, 0, value))
		wantCode(t, "batch at the producer's previous epoch", old.ErrorCode, kerr.InvalidProducerEpoch)
		ctl := e.produce(t, l, errTopic, 1, -1, recordBatch(producerRef{pid, epoch + 1, 1}, attrTransact|attrControl, value))
		wantCode(t, "control batch from a client", ctl.ErrorCode, kerr.InvalidRecord)
		plain := e.produce(t, l, errTopic, 1, -1, recordBatch(noProducer, attrTransact, value))
		wantCode(t, "transactional batch without a producer id", plain.ErrorCode, kerr.InvalidProducerIDMapping)
		old = e.produce(t, l, errTopic, 1, -1, recordBatch(producerRef{pid, epoch, 2}, attrTransact, value))
		wantCode(t, "transactional batch at the producer's previous epoch", old.ErrorCode, kerr.InvalidProducerEpoch)

		treq := kmsg.NewPtrInitProducerIDRequest()
		treq.TransactionalID = kmsg.StringPtr("")
		treq.TransactionTimeoutMillis = 60_000
		tresp := e.rawRequest(t, 1, 4, treq).(*kmsg.InitProducerIDResponse)
		wantCode(t, "InitProducerID with an empty transactional id", tresp.ErrorCode, kerr.InvalidRequest)
		treq.TransactionalID = kmsg.StringPtr("txn")
		treq.TransactionTimeoutMillis = 900_001
		tresp = e.rawRequest(t, 1, 4, treq).(*kmsg.InitProducerIDResponse)
		wantCode(t, "InitProducerID with a transaction timeout over the maximum", tresp.ErrorCode, kerr.InvalidTransactionTimeout)
	})

	t.Run("FetchAndListOffsets", func(t *testing.T) {
		l := e.leader(0)
		wantCode(t, "fetch from a follower", fetchOnce(t, e.cl, e.follower(0), errTopic, 0, 0, -1).Topics[0].Partitions[0].ErrorCode, kerr.NotLeaderForPartition)
		wantCode(t, "fetch an unknown topic", fetchOnce(t, e.cl, l, "no-such-topic", 0, 0, -1).Topics[0].Partitions[0].ErrorCode, kerr.UnknownTopicOrPartition)
		wantCode(t, "fetch past the high watermark", fetchOnce(t, e.cl, l, errTopic, 0, 1000, -1).Topics[0].Partitions[0].ErrorCode, kerr.OffsetOutOfRange)
		wantCode(t, "fetch a negative offset", fetchOnce(t, e.cl, l, errTopic, 0, -5, -1).Topics[0].Partitions[0].ErrorCode, kerr.OffsetOutOfRange)
		wantCode(t, "fetch with a leader epoch from the future", fetchOnce(t, e.cl, l, errTopic, 0, 0, e.parts[0].epoch+5).Topics[0].Partitions[0].ErrorCode, kerr.UnknownLeaderEpoch)

		req := kmsg.NewPtrFetchRequest()
		req.SessionID, req.SessionEpoch, req.MaxBytes = 42, 1, 1<<20
		resp := e.request(t, l, req).(*kmsg.FetchResponse)
		wantCode(t, "fetch naming a session", resp.ErrorCode, kerr.FetchSessionIDNotFound)

		lo := kmsg.NewPtrListOffsetsRequest()
		lt := kmsg.NewListOffsetsRequestTopic()
		lt.Topic = "no-such-topic"
		lp := kmsg.NewListOffsetsRequestTopicPartition()
		lp.Timestamp = -1
		lt.Partitions = append(lt.Partitions, lp)
		lo.Topics = append(lo.Topics, lt)
		lresp := e.request(t, l, lo).(*kmsg.ListOffsetsResponse)
		wantCode(t, "ListOffsets of an unknown topic", lresp.Topics[0].Partitions[0].ErrorCode, kerr.UnknownTopicOrPartition)
	})

	t.Run("Admin", func(t *testing.T) {
		ct := func(what string, want *kerr.Error, topics ...kmsg.CreateTopicsRequestTopic) {
			t.Helper()
			resp := e.request(t, 0, createTopicsReq(topics...)).(*kmsg.CreateTopicsResponse)
			wantCode(t, what, resp.Topics[0].ErrorCode, want)
		}
		ct("create an existing topic", kerr.TopicAlreadyExists, newTopic(errTopic, 2, 3))
		ct("create with 0 partitions", kerr.InvalidPartitions, newTopic("zero", 0, 3))
		ct("create with replication factor 4 on 3 brokers", kerr.InvalidReplicationFactor, newTopic("rf4", 1, 4))
		ct("create with replication factor 0", kerr.InvalidReplicationFactor, newTopic("rf0", 1, 0))
		ct("create a topic named with '/'", kerr.InvalidTopicException, newTopic("bad/name", 1, 1))
		ct("create the same topic twice in one request", kerr.InvalidRequest, newTopic("twice", 1, 1), newTopic("twice", 1, 1))
		bad := newTopic("badassign", -1, -1)
		ra := kmsg.NewCreateTopicsRequestTopicReplicaAssignment()
		ra.Partition, ra.Replicas = 0, []int32{1, 1}
		bad.ReplicaAssignment = append(bad.ReplicaAssignment, ra)
		ct("create with a replica listed twice", kerr.InvalidReplicaAssignment, bad)

		cp := func(what string, want *kerr.Error, topic string, count int32, assign bool) {
			t.Helper()
			req := kmsg.NewPtrCreatePartitionsRequest()
			req.TimeoutMillis = 10_000
			rt := kmsg.NewCreatePartitionsRequestTopic()
			rt.Topic, rt.Count = topic, count
			if assign {
				a := kmsg.NewCreatePartitionsRequestTopicAssignment()
				a.Replicas = []int32{1, 2, 3}
				rt.Assignment = append(rt.Assignment, a)
			}
			req.Topics = append(req.Topics, rt)
			resp := e.request(t, 0, req).(*kmsg.CreatePartitionsResponse)
			wantCode(t, what, resp.Topics[0].ErrorCode, want)
		}
		cp("CreatePartitions to fewer partitions", kerr.InvalidPartitions, errTopic, 1, false)
		cp("CreatePartitions to the same count", kerr.InvalidPartitions, errTopic, 2, false)
		cp("CreatePartitions of an unknown topic", kerr.UnknownTopicOrPartition, "no-such-topic", 4, false)
		cp("CreatePartitions with an explicit assignment", kerr.InvalidReplicaAssignment, errTopic, 3, true)

		dt := kmsg.NewPtrDeleteTopicsRequest()
		dt.TimeoutMillis = 10_000
		dtt := kmsg.NewDeleteTopicsRequestTopic()
		dtt.Topic = kmsg.StringPtr("no-such-topic")
		dt.Topics, dt.TopicNames = append(dt.Topics, dtt), []string{"no-such-topic"}
		dresp := e.request(t, 0, dt).(*kmsg.DeleteTopicsResponse)
		wantCode(t, "delete an unknown topic", dresp.Topics[0].ErrorCode, kerr.UnknownTopicOrPartition)

		md := kmsg.NewPtrMetadataRequest()
		mt := kmsg.NewMetadataRequestTopic()
		mt.TopicID = [16]byte{1, 2, 3}
		md.Topics = append(md.Topics, mt)
		mresp := e.request(t, 0, md).(*kmsg.MetadataResponse)
		wantCode(t, "metadata for an unknown topic id", mresp.Topics[0].ErrorCode, kerr.UnknownTopicID)
		md = kmsg.NewPtrMetadataRequest()
		mt = kmsg.NewMetadataRequestTopic()
		mt.Topic = kmsg.StringPtr("no-such-topic")
		md.Topics = append(md.Topics, mt)
		mresp = e.request(t, 0, md).(*kmsg.MetadataResponse)
		wantCode(t, "metadata for an unknown topic (auto-creation off)", mresp.Topics[0].ErrorCode, kerr.UnknownTopicOrPartition)

		dc := kmsg.NewPtrDescribeConfigsRequest()
		for _, r := range []struct {
			typ  kmsg.ConfigResourceType
			name string
		}{{kmsg.ConfigResourceTypeTopic, "no-such-topic"}, {kmsg.ConfigResourceTypeBroker, "2"}} {
			rr := kmsg.NewDescribeConfigsRequestResource()
			rr.ResourceType, rr.ResourceName = r.typ, r.name
			dc.Resources = append(dc.Resources, rr)
		}
		dcresp := e.request(t, 1, dc).(*kmsg.DescribeConfigsResponse)
		wantCode(t, "DescribeConfigs of an unknown topic", dcresp.Resources[0].ErrorCode, kerr.UnknownTopicOrPartition)
		wantCode(t, "DescribeConfigs of broker 2 asked of broker 1", dcresp.Resources[1].ErrorCode, kerr.InvalidRequest)

		dcl := kmsg.NewPtrDescribeClusterRequest()
		dcl.EndpointType = 2 // controllers
		dclresp := e.request(t, 0, dcl).(*kmsg.DescribeClusterResponse)
		if dclresp.Version >= 1 {
			wantCode(t, "DescribeCluster for controller endpoints", dclresp.ErrorCode, kerr.UnsupportedEndpointType)
		}
	})

	// Kafka answers a partition with nothing to return with an empty,
	// non-null record set; librdkafka refuses a null one (see
	// TestKcatExitAtEnd).
	t.Run("EmptyFetchRecordsNotNull", func(t *testing.T) {
		createTopic(t, e.cl, "empty", 1, 3)
		if emptyFetchHasNullRecords(t, e.cl, "empty", 1) {
			t.Fatal("Fetch answers null Records (length -1) for a partition with no new records; want an empty record set (length 0)")
		}
	})

	// Last, as it stops a broker: after a failover, a fetch (and
	// ListOffsets and OffsetForLeaderEpoch) carrying the old leader epoch
	// is fenced, and OffsetForLeaderEpoch tells where the old epoch ended.
	t.Run("FencedLeaderEpoch", func(t *testing.T) {
		old := e.parts[0]
		hw := fetchOnce(t, e.cl, old.leader, errTopic, 0, 0, old.epoch).Topics[0].Partitions[0].HighWatermark
		c.stop(old.leader)
		var now partitionInfo
		waitFor(t, "a new leader of partition 0", func() (bool, string) {
			now = leaders(t, e.cl, errTopic, 2)[0]
			return now.leader != old.leader && now.epoch > old.epoch, fmt.Sprintf("leader %d epoch %d", now.leader, now.epoch)
		})
		t.Logf("partition 0: leader %d epoch %d -> leader %d epoch %d", old.leader, old.epoch, now.leader, now.epoch)
		fr := fetchOnce(t, e.cl, now.leader, errTopic, 0, 0, old.epoch).Topics[0].Partitions[0]
		wantCode(t, "fetch with the old leader epoch", fr.ErrorCode, kerr.FencedLeaderEpoch)
		if cur := fetchOnce(t, e.cl, now.leader, errTopic, 0, 0, now.epoch).Topics[0].Partitions[0]; cur.ErrorCode != 0 || cur.HighWatermark < hw {
			t.Errorf("fetch with the current epoch: %v, high watermark %d (was %d)", kerr.ErrorForCode(cur.ErrorCode), cur.HighWatermark, hw)
		}

		lo := kmsg.NewPtrListOffsetsRequest()
		lt := kmsg.NewListOffsetsRequestTopic()
		lt.Topic = errTopic
		lp := kmsg.NewListOffsetsRequestTopicPartition()
		lp.Timestamp, lp.CurrentLeaderEpoch = -1, old.epoch
		lt.Partitions = append(lt.Partitions, lp)
		lo.Topics = append(lo.Topics, lt)
		lresp := e.request(t, now.leader, lo).(*kmsg.ListOffsetsResponse)
		wantCode(t, "ListOffsets with the old leader epoch", lresp.Topics[0].Partitions[0].ErrorCode, kerr.FencedLeaderEpoch)

		oe := func(current, asked int32) kmsg.OffsetForLeaderEpochResponseTopicPartition {
			req := kmsg.NewPtrOffsetForLeaderEpochRequest()
			req.ReplicaID = -1
			rt := kmsg.NewOffsetForLeaderEpochRequestTopic()
			rt.Topic = errTopic
			rp := kmsg.NewOffsetForLeaderEpochRequestTopicPartition()
			rp.Partition, rp.CurrentLeaderEpoch, rp.LeaderEpoch = 0, current, asked
			rt.Partitions = append(rt.Partitions, rp)
			req.Topics = append(req.Topics, rt)
			return e.request(t, now.leader, req).(*kmsg.OffsetForLeaderEpochResponse).Topics[0].Partitions[0]
		}
		wantCode(t, "OffsetForLeaderEpoch with the old current epoch", oe(old.epoch, old.epoch).ErrorCode, kerr.FencedLeaderEpoch)
		if r := oe(now.epoch, old.epoch); r.ErrorCode != 0 || r.LeaderEpoch > old.epoch || r.EndOffset != hw {
			t.Errorf("OffsetForLeaderEpoch(epoch %d): %v, epoch %d ends at %d, want the old epoch's end %d",
				old.epoch, kerr.ErrorForCode(r.ErrorCode), r.LeaderEpoch, r.EndOffset, hw)
		}
		good := recordBatch(noProducer, 0, value)
		wantCode(t, "produce to a surviving follower after the failover", e.produce(t, followerOf(now, old.leader), errTopic, 0, -1, good).ErrorCode, kerr.NotLeaderForPartition)
	})
}

// followerOf is a live replica of p that does not lead it.
func followerOf(p partitionInfo, stopped int32) int32 {
	for _, r := range p.replicas {
		if r != p.leader && r != stopped {
			return r
		}
	}
	return -1
}
