package engine

import (
	"github.com/gregor-streaming/gregor/engine/batch"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ConsumerGroupHeartbeat, versions 0-1 (KIP-848; consumer_group.go has
// the protocol).
//
// Behavior:
//   - Malformed requests: INVALID_REQUEST with a message (empty group id;
//     no member id from v1, or for an epoch other than 0 in v0; a join
//     without a rebalance timeout, without a subscription or with owned
//     partitions; an epoch below -2). An assignor other than "uniform" or
//     "range": UNSUPPORTED_ASSIGNOR. A regex RE2 cannot compile:
//     INVALID_REGULAR_EXPRESSION.
//   - A group id in use by a classic group with members: GROUP_ID_NOT_FOUND
//     ("not a consumer group"); an empty classic group becomes a consumer
//     group (its offsets stay).
//   - Epoch 0 joins (v0: the coordinator makes the member id); -1 leaves;
//     -2 (a static member leaving) leaves too; a leave's answer has
//     heartbeat interval 0, as Kafka's. An unknown member:
//     UNKNOWN_MEMBER_ID. An epoch ahead of the member's, or behind it
//     other than the previous epoch with owned partitions inside the
//     assignment (a lost response): FENCED_MEMBER_EPOCH. An instance id
//     held by another live member: UNRELEASED_INSTANCE_ID; a member whose
//     instance id differs: FENCED_INSTANCE_ID. GroupMaxSize members:
//     GROUP_MAX_SIZE_REACHED.
//   - The answer waits for the heartbeat's records to apply.

func init() { regKey(kmsg.ConsumerGroupHeartbeat, 0, 1, (*Broker).handleConsumerGroupHeartbeat) }

func (b *Broker) handleConsumerGroupHeartbeat(token uint64, r *kmsg.ConsumerGroupHeartbeatRequest) {
	fail := func(code int16, msg string) {
		resp := r.ResponseKind().(*kmsg.ConsumerGroupHeartbeatResponse)
		resp.ErrorCode = code
		if msg == "" {
			msg = kerr.ErrorForCode(code).Error()
		}
		resp.ErrorMessage = &msg
		b.respond(token, resp)
	}
	if !b.authorized(opRead, resGroup, r.Group) {
		fail(kerr.GroupAuthorizationFailed.Code, "")
		return
	}
	if msg := invalidConsumerHeartbeat(r); msg != "" {
		fail(kerr.InvalidRequest.Code, msg)
		return
	}
	if r.ServerAssignor != nil && *r.ServerAssignor != assignorUniform && *r.ServerAssignor != assignorRange {
		fail(kerr.UnsupportedAssignor.Code, "the coordinator runs the assignors uniform and range, not "+*r.ServerAssignor)
		return
	}
	c, code := b.coordinatorFor(r.Group)
	if code != 0 {
		fail(code, "")
		return
	}
	g := c.groups[r.Group]
	var pre []batch.Record
	converted := false
	switch {
	case g == nil && r.MemberEpoch != 0:
		fail(kerr.UnknownMemberID.Code, "")
		return
	case g == nil:
		g = c.newGroup(r.Group)
		g.cons = newConsumerGroup()
	case g.state == gsDead:
		fail(kerr.CoordinatorNotAvailable.Code, "")
		return
	case g.cons == nil && r.MemberEpoch != 0:
		fail(kerr.UnknownMemberID.Code, "")
		return
	case g.cons == nil && (g.state != gsEmpty || len(g.members) > 0):
		fail(kerr.GroupIDNotFound.Code, "group "+r.Group+" is a classic group with members, not a consumer group")
		return
	case g.cons == nil:
		// An empty classic group (or one that only stores offsets)
		// becomes a consumer group.
		converted = true
		g.joinTimer.stop()
		g.cons = newConsumerGroup()
		if _, ok := c.store.groups[r.Group]; ok {
			pre = append(pre, groupMetadataRecord(r.Group, nil))
		}
	}
	if code := g.consumerHeartbeat(token, r, pre); code != 0 {
		if converted {
			g.cons = nil // refused before anything changed
		}
		fail(code, "")
	}
}

// invalidConsumerHeartbeat is why a heartbeat is malformed, or "".
func invalidConsumerHeartbeat(r *kmsg.ConsumerGroupHeartbeatRequest) string {
	switch {
	case r.Group == "":
		return "GroupId can't be empty."
	case r.MemberEpoch < -2:
		return "MemberEpoch is invalid."
	case r.Version >= 1 && r.MemberID == "":
		return "MemberId can't be empty."
	case r.Version == 0 && r.MemberEpoch != 0 && r.MemberID == "":
		return "MemberId can't be empty."
	case r.MemberEpoch == 0 && r.RebalanceTimeoutMillis <= 0:
		return "RebalanceTimeoutMs must be provided in first request."
	case r.MemberEpoch == 0 && (r.Topics == nil || len(r.Topics) > 0):
		return "TopicPartitions must be empty when (re-)joining."
	case r.MemberEpoch == 0 && r.SubscribedTopicNames == nil && r.SubscribedTopicRegex == nil:
		return "SubscribedTopicNames or SubscribedTopicRegex must be set in first request."
	}
	return ""
}
