package engine

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// AddOffsetsToTxn, versions 0-4 (v4 only allows TRANSACTION_ABORTABLE,
// which Gregor does not answer here).
//
// Behavior:
//   - As AddPartitionsToTxn, for the one partition of __consumer_offsets
//     that holds the group: the transaction's marker then goes there too,
//     and commits (or drops) the offsets TxnOffsetCommit staged.
//   - Before __consumer_offsets exists: it is created, and the answer is
//     COORDINATOR_NOT_AVAILABLE (retriable).

func init() { regKey(kmsg.AddOffsetsToTxn, 0, 4, (*Broker).handleAddOffsetsToTxn) }

func (b *Broker) handleAddOffsetsToTxn(token uint64, r *kmsg.AddOffsetsToTxnRequest) {
	resp := r.ResponseKind().(*kmsg.AddOffsetsToTxnResponse)
	answer := func(code int16) {
		resp.ErrorCode = code
		b.respond(token, resp)
	}
	if !b.authorized(opWrite, resTransactionalID, r.TransactionalID) {
		answer(kerr.TransactionalIDAuthorizationFailed.Code)
		return
	}
	if !b.authorized(opRead, resGroup, r.Group) {
		answer(kerr.GroupAuthorizationFailed.Code)
		return
	}
	if r.Group == "" {
		answer(kerr.InvalidGroupID.Code)
		return
	}
	t, ok := b.meta.st.Topics[offsetsTopic]
	if !ok || len(t.Partitions) == 0 {
		b.createInternalTopic(offsetsTopic)
		answer(kerr.CoordinatorNotAvailable.Code)
		return
	}
	part := groupPartition(r.Group, len(t.Partitions))
	b.addToTxn(r.TransactionalID, r.ProducerID, r.ProducerEpoch, r.Version,
		[]txnLogPartitions{{topic: offsetsTopic, partitions: []int32{part}}}, answer)
}
