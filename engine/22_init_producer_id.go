package engine

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// InitProducerID, versions 0-4.
//
// Behavior:
//   - Idempotent producers (null transactional id) get a fresh producer id
//     with epoch 0. Ids come from blocks of 1000 that the metadata log
//     hands each broker, so ids are unique across the cluster and never
//     reused after a restart.
//   - A client bumping its own epoch (v3+, ProducerID >= 0) is given a new
//     producer id instead, which KIP-360 allows.
//   - A transactional id goes to its transaction coordinator
//     (txn_coordinator.go): NOT_COORDINATOR elsewhere; an empty id:
//     INVALID_REQUEST; a timeout outside (0, TransactionMaxTimeoutMs]:
//     INVALID_TRANSACTION_TIMEOUT. A new id gets a fresh producer id with
//     epoch 0; a known one in Empty, CompleteCommit or CompleteAbort gets
//     its epoch bumped (a new producer id once the epoch is exhausted,
//     Short.MAX_VALUE - 1, as Kafka), which fences the previous producer.
//     The state is a record in __transaction_state, answered once it
//     applies. A request naming the producer (v3+, KIP-360) must name the
//     current producer id and epoch (or the one before a bump that was
//     answered already: the retry gets the same answer), else
//     PRODUCER_FENCED (INVALID_PRODUCER_EPOCH before v4). While another
//     request for the id is in flight, or its transaction is being
//     completed: CONCURRENT_TRANSACTIONS. An Ongoing transaction is
//     aborted first, with the epoch bumped (fencing the previous
//     producer everywhere), and the caller gets CONCURRENT_TRANSACTIONS
//     until that abort is complete.

func init() { regKey(kmsg.InitProducerID, 0, 4, (*Broker).handleInitProducerID) }

func (b *Broker) handleInitProducerID(token uint64, r *kmsg.InitProducerIDRequest) {
	resp := r.ResponseKind().(*kmsg.InitProducerIDResponse)
	resp.ProducerID, resp.ProducerEpoch = -1, -1
	if r.TransactionalID != nil {
		if !b.authorized(opWrite, resTransactionalID, *r.TransactionalID) {
			resp.ErrorCode = kerr.TransactionalIDAuthorizationFailed.Code
			b.respond(token, resp)
			return
		}
		b.initTransactional(token, r, resp)
		return
	}
	// An idempotent producer: IdempotentWrite on the cluster, or Write on
	// some topic (KIP-679), as Kafka.
	if !b.authorizedCluster(opIdempotentWrite) && !b.authorizedAny(opWrite, resTopic) {
		resp.ErrorCode = kerr.ClusterAuthorizationFailed.Code
		b.respond(token, resp)
		return
	}
	b.allocateProducerID(func(id int64, err error) {
		if err != nil {
			resp.ErrorCode = errCode(err)
		} else {
			resp.ProducerID, resp.ProducerEpoch = id, 0
		}
		b.respond(token, resp)
	})
}

type pidBlock struct {
	next, end int64
	waiters   []func(int64, error)
	asking    bool
}

func (b *Broker) allocateProducerID(fn func(int64, error)) {
	if b.pids.next < b.pids.end {
		id := b.pids.next
		b.pids.next++
		fn(id, nil)
		return
	}
	b.pids.waiters = append(b.pids.waiters, fn)
	if b.pids.asking {
		return
	}
	b.pids.asking = true
	b.proposeMeta(metaCmd{AllocateIDs: true}, 10_000, func(res metaResult) {
		b.pids.asking = false
		ws := b.pids.waiters
		b.pids.waiters = nil
		if res.err != nil {
			code := res.err
			if code == kerr.NotController {
				code = kerr.CoordinatorNotAvailable
			}
			for _, w := range ws {
				w(0, code)
			}
			return
		}
		b.pids.next, b.pids.end = res.producerIDs, res.producerIDs+producerIDBlock
		for _, w := range ws {
			b.allocateProducerID(w)
		}
	})
}
