package engine

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DescribeGroups, versions 0-5.
//
// Behavior: each group from its coordinator's live state: state, protocol
// type, and members with client id and host. As in Kafka, the protocol and
// each member's metadata and assignment are given only while the group is
// Stable. A group this coordinator does not have: state "Dead", no error.
// A group coordinated elsewhere: NOT_COORDINATOR (or the load error) in
// its entry. Authorized operations (v3+) are all operations (-2147483648
// when not asked for).

func init() { regKey(kmsg.DescribeGroups, 0, 5, (*Broker).handleDescribeGroups) }

func (b *Broker) handleDescribeGroups(token uint64, r *kmsg.DescribeGroupsRequest) {
	resp := r.ResponseKind().(*kmsg.DescribeGroupsResponse)
	for _, id := range r.Groups {
		dg := kmsg.NewDescribeGroupsResponseGroup()
		dg.Group = id
		dg.AuthorizedOperations = -2147483648
		if !b.authorized(opDescribe, resGroup, id) {
			dg.ErrorCode = kerr.GroupAuthorizationFailed.Code
			resp.Groups = append(resp.Groups, dg)
			continue
		}
		c, code := b.coordinatorFor(id)
		if code != 0 {
			dg.ErrorCode = code
			resp.Groups = append(resp.Groups, dg)
			continue
		}
		if r.IncludeAuthorizedOperations {
			dg.AuthorizedOperations = groupAllOperations
		}
		g := c.groups[id]
		if g == nil {
			dg.State = gsDead.String()
			resp.Groups = append(resp.Groups, dg)
			continue
		}
		if g.cons != nil && g.state != gsDead {
			b.describeConsumerAsClassic(g, &dg)
			resp.Groups = append(resp.Groups, dg)
			continue
		}
		dg.State, dg.ProtocolType = g.state.String(), g.protocolType
		if g.state == gsStable {
			dg.Protocol = g.protocol
		}
		for _, mid := range g.memberIDs() {
			m := g.members[mid]
			dm := kmsg.NewDescribeGroupsResponseGroupMember()
			dm.MemberID, dm.ClientID, dm.ClientHost = m.id, m.clientID, m.clientHost
			if m.instanceID != "" {
				inst := m.instanceID
				dm.InstanceID = &inst
			}
			if g.state == gsStable {
				dm.ProtocolMetadata, dm.MemberAssignment = m.metadataFor(g.protocol), m.assignment
			}
			dg.Members = append(dg.Members, dm)
		}
		resp.Groups = append(resp.Groups, dg)
	}
	b.respond(token, resp)
}

// groupAllOperations is the bit set of the ACL operations on a group
// (READ, DESCRIBE, DELETE) that everyone holds until ACLs exist.
const groupAllOperations = 1<<3 | 1<<8 | 1<<6

// describeConsumerAsClassic describes a KIP-848 group as DescribeGroups
// does in Kafka: protocol type "consumer", the assignor as the protocol,
// and each member's current assignment in the consumer protocol's
// encoding, so that tools that only speak the classic API show it.
func (b *Broker) describeConsumerAsClassic(g *group, dg *kmsg.DescribeGroupsResponseGroup) {
	cg := g.cons
	dg.State, dg.ProtocolType, dg.Protocol = cg.stateName(), "consumer", cg.assignorName()
	for _, mid := range cg.memberIDs() {
		m := cg.members[mid]
		dm := kmsg.NewDescribeGroupsResponseGroupMember()
		dm.MemberID, dm.InstanceID, dm.ClientID, dm.ClientHost = m.id, m.meta.instanceID, m.meta.clientID, m.meta.clientHost
		md := kmsg.NewConsumerMemberMetadata()
		md.Version = 3
		md.Topics = g.subscribedTopics(m)
		dm.ProtocolMetadata = md.AppendTo(nil)
		ma := kmsg.NewConsumerMemberAssignment()
		ma.Version = 3
		for _, tid := range m.cur.assigned.ids() {
			name, ok := b.topicName(tid)
			if !ok {
				continue
			}
			ma.Topics = append(ma.Topics, kmsg.ConsumerMemberAssignmentTopic{Topic: name, Partitions: m.cur.assigned[tid]})
		}
		dm.MemberAssignment = ma.AppendTo(nil)
		dg.Members = append(dg.Members, dm)
	}
}
