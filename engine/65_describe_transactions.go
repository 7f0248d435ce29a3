package engine

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DescribeTransactions, version 0.
//
// Behavior: each transactional id is answered by its coordinator from the
// applied state: its state by Kafka's name (Empty, Ongoing,
// PrepareCommit, ...), timeout, producer id and epoch, the start of its
// last transaction (kept once it completes, -1 from InitProducerId until
// the next one begins, as Kafka's txnStartTimestamp) and the partitions
// it holds. An id this broker does not coordinate: NOT_COORDINATOR
// (COORDINATOR_LOAD_IN_PROGRESS while loading); an id it has no state
// for: TRANSACTIONAL_ID_NOT_FOUND. An error leaves the other fields at
// zero (producer id and epoch, start time), as Kafka's answer does.

func init() { regKey(kmsg.DescribeTransactions, 0, 0, (*Broker).handleDescribeTransactions) }

func (b *Broker) handleDescribeTransactions(token uint64, r *kmsg.DescribeTransactionsRequest) {
	resp := r.ResponseKind().(*kmsg.DescribeTransactionsResponse)
	for _, id := range r.TransactionalIDs {
		st := kmsg.NewDescribeTransactionsResponseTransactionState()
		st.TransactionalID = id
		c, code := b.txnCoordinatorFor(id)
		v := (*txnLogValue)(nil)
		if !b.authorized(opDescribe, resTransactionalID, id) {
			code = kerr.TransactionalIDAuthorizationFailed.Code
		}
		if code == 0 && id == "" {
			code = kerr.InvalidRequest.Code // as Kafka's coordinator
		}
		if code == 0 {
			if v = c.ids[id]; v == nil {
				code = kerr.TransactionalIDNotFound.Code
			}
		}
		st.ErrorCode = code
		if v != nil {
			st.State, st.TimeoutMillis = v.state.String(), v.timeoutMs
			st.ProducerID, st.ProducerEpoch = v.producerID, v.producerEpoch
			st.StartTimestamp = v.startMs
			for _, t := range v.partitions {
				tt := kmsg.NewDescribeTransactionsResponseTransactionStateTopic()
				tt.Topic, tt.Partitions = t.topic, append([]int32(nil), t.partitions...)
				st.Topics = append(st.Topics, tt)
			}
		}
		resp.TransactionStates = append(resp.TransactionStates, st)
	}
	b.respond(token, resp)
}
