package engine

import (
	"regexp"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ListTransactions, versions 0-2.
//
// Behavior: the transactional ids this broker coordinates (clients ask
// every broker), from every loaded transaction coordinator, by id.
// StateFilters keeps the ids in the named states (Kafka's names, exact
// case); a name that is no state comes back in UnknownStateFilters.
// ProducerIDFilters keeps the ids of those producer ids. v1+:
// DurationFilterMillis >= 0 keeps transactions open at least that long
// (ids with none open are left out). v2+: TransactionalIDPattern keeps the
// ids the regular expression matches anywhere (Go's RE2 syntax, which is
// Java's for the patterns clients send); one that does not compile is
// INVALID_REGULAR_EXPRESSION. A coordinator of this broker still
// loading: COORDINATOR_LOAD_IN_PROGRESS with the ids of the others.

func init() { regKey(kmsg.ListTransactions, 0, 2, (*Broker).handleListTransactions) }

func (b *Broker) handleListTransactions(token uint64, r *kmsg.ListTransactionsRequest) {
	resp := r.ResponseKind().(*kmsg.ListTransactionsResponse)
	var states []txnState
	for _, name := range r.StateFilters {
		if i := slices.Index(txnStateNames[:], name); i >= 0 {
			states = append(states, txnState(i))
		} else {
			resp.UnknownStateFilters = append(resp.UnknownStateFilters, name)
		}
	}
	var re *regexp.Regexp
	if r.Version >= 2 && r.TransactionalIDPattern != nil && *r.TransactionalIDPattern != "" {
		var err error
		if re, err = regexp.Compile(*r.TransactionalIDPattern); err != nil {
			resp.ErrorCode = kerr.InvalidRegularExpression.Code
			b.respond(token, resp)
			return
		}
	}
	duration := int64(-1)
	if r.Version >= 1 {
		duration = r.DurationFilterMillis
	}
	now := b.nowMillis()
	mayDescribe := b.authorizer(opDescribe, resTransactionalID)
	for _, gid := range b.partIDs() {
		p := b.parts[gid]
		if p.txn == nil || !p.leader || p.lost {
			continue
		}
		if !p.txn.loaded {
			resp.ErrorCode = kerr.CoordinatorLoadInProgress.Code
			continue
		}
		for _, id := range p.txn.sortedIDs() {
			v := p.txn.ids[id]
			switch {
			case len(r.StateFilters) > 0 && !slices.Contains(states, v.state),
				len(r.ProducerIDFilters) > 0 && !slices.Contains(r.ProducerIDFilters, v.producerID),
				duration >= 0 && (v.startMs < 0 || v.state != txnOngoing && v.state != txnPrepareCommit && v.state != txnPrepareAbort || now-v.startMs < duration),
				re != nil && !re.MatchString(id),
				!mayDescribe(id): // as Kafka: only the ids the principal may Describe
				continue
			}
			ts := kmsg.NewListTransactionsResponseTransactionState()
			ts.TransactionalID, ts.ProducerID, ts.TransactionState = id, v.producerID, v.state.String()
			resp.TransactionStates = append(resp.TransactionStates, ts)
		}
	}
	b.respond(token, resp)
}
