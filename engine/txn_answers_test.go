package engine

// Answers of the idempotent and transactional paths that
// cmd/gregor/conformance compares with Apache Kafka's: each test names
// the Kafka code it follows.

import (
	"fmt"
	"testing"

	"github.com/gregor-streaming/gregor/engine/batch"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// produceIdempotent sends one batch of producer 7 (epoch, seq) to t-0's
// leader, records at 10_000 and 10_500, and returns the partition's
// answer after a round trip through the wire.
func produceIdempotent(t *testing.T, c *testCluster, epoch int16, seq int32) kmsg.ProduceResponseTopicPartition {
	t.Helper()
	req := kmsg.NewPtrProduceRequest()
	req.SetVersion(11)
	req.Acks, req.TimeoutMillis = -1, 5000
	pt := kmsg.NewProduceRequestTopic()
	pt.Topic = "t"
	pp := kmsg.NewProduceRequestTopicPartition()
	pp.Records = batch.Build(batch.BuildOptions{ProducerID: 7, ProducerEpoch: epoch, BaseSequence: seq, FirstTimestamp: 10_000},
		[]batch.Record{{Value: []byte("a")}, {Value: []byte("b"), TimestampDelta: 500}})
	pt.Partitions = append(pt.Partitions, pp)
	req.Topics = append(req.Topics, pt)
	resp, ok := c.call(c.leaderOf("t", 0), req, 60)
	if !ok {
		t.Fatalf("produce epoch %d seq %d: no answer", epoch, seq)
	}
	return wire(t, resp).(*kmsg.ProduceResponse).Topics[0].Partitions[0]
}

// Kafka answers a duplicate with its original's max timestamp as
// LogAppendTime, on a CreateTime topic too (UnifiedLog.append), and the
// errors its log append throws (OUT_OF_ORDER_SEQUENCE_NUMBER,
// INVALID_PRODUCER_EPOCH) with the log start offset
// (ReplicaManager.appendToLocalLog).
func TestProduceAnswersLikeKafkasLogAppend(t *testing.T) {
	c := newResponseCluster(t)
	for seq := int32(0); seq < 4; seq += 2 {
		if p := produceIdempotent(t, c, 1, seq); p.ErrorCode != 0 || p.LogAppendTime != -1 {
			t.Fatalf("seq %d: error %d, LogAppendTime %d; want 0, -1 (CreateTime)", seq, p.ErrorCode, p.LogAppendTime)
		}
	}
	del := kmsg.NewPtrDeleteRecordsRequest()
	dt := kmsg.NewDeleteRecordsRequestTopic()
	dt.Topic = "t"
	dp := kmsg.NewDeleteRecordsRequestTopicPartition()
	dp.Offset = 1
	dt.Partitions = append(dt.Partitions, dp)
	del.Topics = append(del.Topics, dt)
	del.TimeoutMillis = 5000
	if r, ok := c.call(c.leaderOf("t", 0), del, 60); !ok || r.(*kmsg.DeleteRecordsResponse).Topics[0].Partitions[0].ErrorCode != 0 {
		t.Fatalf("DeleteRecords: %v %+v", ok, r)
	}
	if p := produceIdempotent(t, c, 1, 0); p.ErrorCode != 0 || p.BaseOffset != 0 || p.LogAppendTime != 10_500 || p.LogStartOffset != 1 {
		t.Errorf("a duplicate: error %d, base %d, LogAppendTime %d, LogStartOffset %d; want 0, 0, 10500, 1", p.ErrorCode, p.BaseOffset, p.LogAppendTime, p.LogStartOffset)
	}
	for _, tc := range []struct {
		epoch int16
		seq   int32
		want  *kerr.Error
	}{
		{1, 9, kerr.OutOfOrderSequenceNumber},
		{0, 4, kerr.InvalidProducerEpoch},
	} {
		p := produceIdempotent(t, c, tc.epoch, tc.seq)
		if p.ErrorCode != tc.want.Code || p.BaseOffset != -1 || p.LogAppendTime != -1 || p.LogStartOffset != 1 {
			t.Errorf("epoch %d seq %d: error %d, base %d, LogAppendTime %d, LogStartOffset %d; want %s, -1, -1, 1",
				tc.epoch, tc.seq, p.ErrorCode, p.BaseOffset, p.LogAppendTime, p.LogStartOffset, tc.want.Message)
		}
	}
}

// Kafka's DescribeTransactions leaves producer id, epoch and start time at
// their zero defaults for an id it has no state for
// (TransactionCoordinator.handleDescribeTransactions).
func TestDescribeTransactionsUnknownIDIsZero(t *testing.T) {
	c := newResponseCluster(t)
	find := kmsg.NewPtrFindCoordinatorRequest()
	find.CoordinatorKey, find.CoordinatorType = "app", 1
	c.call(1, find, 60) // creates __transaction_state
	c.tick(30)
	init := kmsg.NewPtrInitProducerIDRequest()
	init.TransactionalID, init.TransactionTimeoutMillis = kmsg.StringPtr("app"), 60000
	via := c.txnCoordinatorOf("app")
	if r, ok := c.call(via, init, 60); !ok || r.(*kmsg.InitProducerIDResponse).ErrorCode != 0 {
		t.Fatalf("InitProducerId: %v %+v", ok, r)
	}
	nobody := "nobody"
	for i := 0; c.txnCoordinatorOf(nobody) != via; i++ {
		nobody = fmt.Sprintf("nobody-%d", i) // one the same broker coordinates
	}
	req := kmsg.NewPtrDescribeTransactionsRequest()
	req.TransactionalIDs = []string{"app", nobody}
	resp, ok := c.call(via, req, 60)
	if !ok {
		t.Fatal("DescribeTransactions: no answer")
	}
	st := wire(t, resp).(*kmsg.DescribeTransactionsResponse).TransactionStates
	if len(st) != 2 || st[0].ErrorCode != 0 || st[0].StartTimestamp != -1 || st[0].State != "Empty" {
		t.Fatalf("app: %+v; want Empty, start -1", st)
	}
	if n := st[1]; n.ErrorCode != kerr.TransactionalIDNotFound.Code || n.ProducerID != 0 || n.ProducerEpoch != 0 || n.StartTimestamp != 0 {
		t.Errorf("%s: %+v; want TRANSACTIONAL_ID_NOT_FOUND, producer id, epoch and start 0", nobody, n)
	}
}
