package engine

import (
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ConsumerGroupDescribe, versions 0-1.
//
// Behavior: each consumer group from its coordinator's live state: state
// (Empty, Assigning, Reconciling, Stable), group and assignment epochs,
// the assignor, and every member with its epoch, subscription, current
// and target assignment (topic ids and names). Unknown:
// GROUP_ID_NOT_FOUND ("Group G not found.", Kafka's message); a classic
// group: GROUP_ID_NOT_FOUND ("not a consumer group");
// coordinated elsewhere: NOT_COORDINATOR.

func init() { regKey(kmsg.ConsumerGroupDescribe, 0, 1, (*Broker).handleConsumerGroupDescribe) }

func (b *Broker) handleConsumerGroupDescribe(token uint64, r *kmsg.ConsumerGroupDescribeRequest) {
	resp := r.ResponseKind().(*kmsg.ConsumerGroupDescribeResponse)
	for _, id := range r.Groups {
		dg := kmsg.NewConsumerGroupDescribeResponseGroup()
		dg.Group = id
		dg.AuthorizedOperations = -2147483648
		if r.IncludeAuthorizedOperations {
			dg.AuthorizedOperations = groupAllOperations
		}
		c, code := b.coordinatorFor(id)
		if !b.authorized(opDescribe, resGroup, id) {
			code = kerr.GroupAuthorizationFailed.Code
		}
		var g *group
		if code == 0 {
			g = c.groups[id]
			if g == nil || g.state == gsDead {
				code = kerr.GroupIDNotFound.Code
				msg := "Group " + id + " not found." // Kafka's words
				dg.ErrorMessage = &msg
			} else if g.cons == nil {
				code = kerr.GroupIDNotFound.Code
				msg := "group " + id + " is not a consumer group"
				dg.ErrorMessage = &msg
			}
		}
		if code != 0 {
			dg.ErrorCode = code
			resp.Groups = append(resp.Groups, dg)
			continue
		}
		cg := g.cons
		dg.State, dg.Epoch, dg.AssignmentEpoch, dg.AssignorName = cg.stateName(), cg.epoch, cg.assignmentEpoch, cg.assignorName()
		for _, mid := range cg.memberIDs() {
			m := cg.members[mid]
			dm := kmsg.NewConsumerGroupDescribeResponseGroupMember()
			dm.MemberID, dm.InstanceID, dm.RackID, dm.MemberEpoch = m.id, m.meta.instanceID, m.meta.rackID, m.cur.epoch
			dm.ClientID, dm.ClientHost = m.meta.clientID, m.meta.clientHost
			dm.SubscribedTopics, dm.SubscribedTopicRegex = slices.Clone(m.meta.topics), m.meta.regex
			dm.Assignment = b.describeAssignment(m.cur.assigned)
			dm.TargetAssignment = b.describeAssignment(cg.targets[m.id])
			dm.MemberType = 1
			dg.Members = append(dg.Members, dm)
		}
		resp.Groups = append(resp.Groups, dg)
	}
	b.respond(token, resp)
}

func (b *Broker) describeAssignment(tp topicParts) kmsg.Assignment {
	var a kmsg.Assignment
	for _, tid := range tp.ids() {
		at := kmsg.AssignmentTopicPartition{TopicID: tid, Partitions: slices.Clone(tp[tid])}
		at.Topic, _ = b.topicName(tid)
		a.TopicPartitions = append(a.TopicPartitions, at)
	}
	return a
}
