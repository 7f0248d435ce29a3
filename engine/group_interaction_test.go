package engine

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/cockroachdb/datadriven"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// groupScript is what the group commands of the interaction tests keep:
// member ids by alias (m1, m2, ... in order of appearance, so transcripts
// do not depend on generated ids) and requests sent without waiting.
type groupScript struct {
	topicNames map[[16]byte]string
	alias      map[string]string // member id -> alias
	ids        map[string]string // alias -> member id
	async      map[string]uint64 // name -> token
}

func (s *groupScript) name(id string) string {
	if id == "" {
		return `""`
	}
	if s.alias == nil {
		s.alias, s.ids = map[string]string{}, map[string]string{}
	}
	if a, ok := s.alias[id]; ok {
		return a
	}
	a := "m" + strconv.Itoa(len(s.alias)+1)
	s.alias[id], s.ids[a] = a, id
	return a
}

func (s *groupScript) id(alias string) string {
	if id, ok := s.ids[alias]; ok {
		return id
	}
	return alias // an id the script makes up
}

// coordinatorOf is the broker whose replica leads group's partition.
func (c *testCluster) coordinatorOf(group string) int32 {
	return c.coordinatorOn(offsetsTopic, group)
}

// coordinatorOn is the broker whose replica leads key's partition of an
// internal topic (broker 1 before the topic exists).
func (c *testCluster) coordinatorOn(topic, key string) int32 {
	for _, tb := range c.brokers {
		if tb.down {
			continue
		}
		pm, ok := tb.b.internalPartition(topic, key)
		if !ok {
			continue
		}
		if p := tb.b.parts[pm.Group]; p != nil && p.leader {
			return tb.id
		}
	}
	return 1
}

func (c *testCluster) groupVia(d *datadriven.TestData, group string) int32 {
	if d.HasArg("via") {
		return int32(argInt(c.t, d, "via", 1))
	}
	return c.coordinatorOf(group)
}

// send hands req to broker via and returns its token without waiting.
func (c *testCluster) send(via int32, req kmsg.Request) uint64 {
	c.token++
	c.handle(c.broker(via).b, c.token, req)
	c.stabilize()
	return c.token
}

func (c *testCluster) runGroup(t *testing.T, d *datadriven.TestData) (string, bool) {
	s := &c.groups
	if s.topicNames == nil {
		s.topicNames = map[[16]byte]string{}
	}
	for _, tb := range c.brokers {
		if !tb.down {
			for name, tm := range tb.b.meta.st.Topics {
				s.topicNames[tm.ID] = name
			}
			break
		}
	}
	group := argStr(t, d, "group", "g")
	member := s.id(argStr(t, d, "member", ""))
	gen := int32(argInt(t, d, "gen", -1))
	var inst *string
	if d.HasArg("instance") {
		v := argStr(t, d, "instance", "")
		inst = &v
	}
	var req kmsg.Request
	switch d.Cmd {
	case "find-coordinator":
		r := kmsg.NewPtrFindCoordinatorRequest()
		r.CoordinatorKey = group
		r.CoordinatorType = int8(argInt(t, d, "type", 0))
		req = r
	case "join":
		r := kmsg.NewPtrJoinGroupRequest()
		r.SetVersion(int16(argInt(t, d, "v", 9)))
		r.Group, r.MemberID, r.InstanceID = group, member, inst
		r.SessionTimeoutMillis = int32(argInt(t, d, "session", 10000))
		r.RebalanceTimeoutMillis = int32(argInt(t, d, "rebalance", 5000))
		r.ProtocolType = argStr(t, d, "type", "consumer")
		for _, p := range strings.Split(argStr(t, d, "protocols", "range"), ",") {
			if p == "" {
				continue
			}
			name, meta, _ := strings.Cut(p, ":")
			r.Protocols = append(r.Protocols, kmsg.JoinGroupRequestProtocol{Name: name, Metadata: []byte(meta)})
		}
		req = r
	case "sync":
		r := kmsg.NewPtrSyncGroupRequest()
		r.Group, r.MemberID, r.Generation, r.InstanceID = group, member, gen, inst
		if a := argStr(t, d, "assign", ""); a != "" {
			for _, kv := range strings.Split(a, ",") {
				m, v, _ := strings.Cut(kv, ":")
				r.GroupAssignment = append(r.GroupAssignment, kmsg.SyncGroupRequestGroupAssignment{MemberID: s.id(m), MemberAssignment: []byte(v)})
			}
		}
		req = r
	case "heartbeat":
		r := kmsg.NewPtrHeartbeatRequest()
		r.Group, r.MemberID, r.Generation, r.InstanceID = group, member, gen, inst
		req = r
	case "leave":
		r := kmsg.NewPtrLeaveGroupRequest()
		r.Group = group
		r.Members = append(r.Members, kmsg.LeaveGroupRequestMember{MemberID: member, InstanceID: inst})
		req = r
	case "commit":
		r := kmsg.NewPtrOffsetCommitRequest()
		r.Group, r.MemberID, r.Generation, r.InstanceID = group, member, gen, inst
		for _, kv := range strings.Split(argStr(t, d, "offsets", "t/0=0"), ",") {
			tp, off, _ := strings.Cut(kv, "=")
			topic, part, _ := strings.Cut(tp, "/")
			p, _ := strconv.Atoi(part)
			o, _ := strconv.ParseInt(off, 10, 64)
			rt := kmsg.NewOffsetCommitRequestTopic()
			rt.Topic = topic
			rp := kmsg.NewOffsetCommitRequestTopicPartition()
			rp.Partition, rp.Offset, rp.LeaderEpoch = int32(p), o, -1
			if m := argStr(t, d, "metadata-bytes", ""); m != "" {
				n, _ := strconv.Atoi(m)
				meta := strings.Repeat("x", n)
				rp.Metadata = &meta
			}
			rt.Partitions = append(rt.Partitions, rp)
			r.Topics = append(r.Topics, rt)
		}
		req = r
	case "offset-fetch":
		r := kmsg.NewPtrOffsetFetchRequest()
		r.Group = group
		r.Topics = nil // every committed partition, unless named
		for _, tp := range strings.Split(argStr(t, d, "partitions", ""), ",") {
			if topic, part, ok := strings.Cut(tp, "/"); ok {
				n, _ := strconv.Atoi(part)
				r.Topics = append(r.Topics, kmsg.OffsetFetchRequestTopic{Topic: topic, Partitions: []int32{int32(n)}})
			}
		}
		r.RequireStable = d.HasArg("stable")
		req = r
	case "cg-heartbeat":
		r := kmsg.NewPtrConsumerGroupHeartbeatRequest()
		r.SetVersion(1)
		r.Group, r.MemberID, r.InstanceID = group, member, inst
		r.MemberEpoch = int32(argInt(t, d, "epoch", 0))
		if r.MemberEpoch == 0 {
			r.RebalanceTimeoutMillis = int32(argInt(t, d, "rebalance", 5000))
			r.Topics = []kmsg.ConsumerGroupHeartbeatRequestTopic{}
		}
		if d.HasArg("subscribe") {
			r.SubscribedTopicNames = strings.Split(argStr(t, d, "subscribe", ""), ",")
		}
		if d.HasArg("regex") {
			rx := argStr(t, d, "regex", "")
			r.SubscribedTopicRegex = &rx
		}
		if d.HasArg("assignor") {
			a := argStr(t, d, "assignor", "")
			r.ServerAssignor = &a
		}
		if d.HasArg("owned") {
			r.Topics = c.ownedTopics(argStr(t, d, "owned", ""))
		}
		req = r
	case "describe-group":
		r := kmsg.NewPtrDescribeGroupsRequest()
		r.Groups = []string{group}
		req = r
	case "list-groups":
		r := kmsg.NewPtrListGroupsRequest()
		if st := argStr(t, d, "states", ""); st != "" {
			r.StatesFilter = strings.Split(st, ",")
		}
		resp, ok := c.call(int32(argInt(t, d, "via", 1)), r, 60)
		if !ok {
			return "no answer\n", true
		}
		lr := resp.(*kmsg.ListGroupsResponse)
		var out []string
		for _, g := range lr.Groups {
			out = append(out, g.Group+"("+g.GroupState+")")
		}
		slices.Sort(out)
		return fmt.Sprintf("%s %s\n", codeName(lr.ErrorCode), strings.Join(out, " ")), true
	case "delete-group":
		r := kmsg.NewPtrDeleteGroupsRequest()
		r.Groups = []string{group}
		req = r
	case "offset-delete":
		r := kmsg.NewPtrOffsetDeleteRequest()
		r.Group = group
		topic, part, _ := strings.Cut(argStr(t, d, "partition", "t/0"), "/")
		p, _ := strconv.Atoi(part)
		r.Topics = []kmsg.OffsetDeleteRequestTopic{{Topic: topic, Partitions: []kmsg.OffsetDeleteRequestTopicPartition{{Partition: int32(p)}}}}
		req = r
	case "await":
		name := argStr(t, d, "name", "")
		tok, ok := s.async[name]
		if !ok {
			return name + ": answered when sent\n", true
		}
		for i := 0; !c.answered[tok] && i < argInt(t, d, "ticks", 100); i++ {
			c.tick(1)
		}
		if !c.answered[tok] {
			return name + ": no answer\n", true
		}
		delete(s.async, name)
		return name + ": " + s.describe(c.responses[tok]), true
	default:
		return "", false
	}
	// The newest versions of each API this file speaks, unless v= says.
	if d.HasArg("v") {
		req.SetVersion(int16(argInt(t, d, "v", 0)))
	} else if d.Cmd != "join" {
		req.SetVersion(map[string]int16{"find-coordinator": 3, "sync": 5, "heartbeat": 4, "leave": 5, "commit": 8,
			"offset-fetch": 7, "describe-group": 5, "delete-group": 2, "offset-delete": 0}[d.Cmd])
	}
	via := c.groupVia(d, group)
	if name := argStr(t, d, "async", ""); name != "" {
		if s.async == nil {
			s.async = map[string]uint64{}
		}
		tok := c.send(via, req)
		s.async[name] = tok
		if c.answered[tok] {
			delete(s.async, name)
			return fmt.Sprintf("via %d: %s", via, s.describe(c.responses[tok])), true
		}
		return fmt.Sprintf("via %d: waiting\n", via), true
	}
	resp, ok := c.call(via, req, argInt(t, d, "ticks", 60))
	if !ok {
		return fmt.Sprintf("via %d: no answer\n", via), true
	}
	return fmt.Sprintf("via %d: %s", via, s.describe(resp)), true
}

// describe prints a group response in one line (or a few).
func (s *groupScript) describe(resp kmsg.Response) string {
	switch r := resp.(type) {
	case *kmsg.FindCoordinatorResponse:
		if r.ErrorCode != 0 {
			return codeName(r.ErrorCode) + "\n"
		}
		return fmt.Sprintf("coordinator %d\n", r.NodeID)
	case *kmsg.JoinGroupResponse:
		if r.ErrorCode != 0 {
			return fmt.Sprintf("%s member=%s\n", codeName(r.ErrorCode), s.name(r.MemberID))
		}
		var ms []string
		for _, m := range r.Members {
			ms = append(ms, s.name(m.MemberID)+":"+string(m.ProtocolMetadata))
		}
		proto := ""
		if r.Protocol != nil {
			proto = *r.Protocol
		}
		return fmt.Sprintf("ok member=%s gen=%d leader=%s protocol=%s members=[%s]\n", s.name(r.MemberID), r.Generation,
			s.name(r.LeaderID), proto, strings.Join(ms, " "))
	case *kmsg.SyncGroupResponse:
		if r.ErrorCode != 0 {
			return codeName(r.ErrorCode) + "\n"
		}
		return fmt.Sprintf("ok assignment=%q\n", r.MemberAssignment)
	case *kmsg.HeartbeatResponse:
		return codeName(r.ErrorCode) + "\n"
	case *kmsg.LeaveGroupResponse:
		if r.ErrorCode != 0 {
			return codeName(r.ErrorCode) + "\n"
		}
		var out []string
		for _, m := range r.Members {
			out = append(out, codeName(m.ErrorCode))
		}
		return strings.Join(out, " ") + "\n"
	case *kmsg.OffsetCommitResponse:
		var out []string
		for _, t := range r.Topics {
			for _, p := range t.Partitions {
				out = append(out, fmt.Sprintf("%s/%d:%s", t.Topic, p.Partition, codeName(p.ErrorCode)))
			}
		}
		return strings.Join(out, " ") + "\n"
	case *kmsg.OffsetFetchResponse:
		if r.ErrorCode != 0 {
			return codeName(r.ErrorCode) + "\n"
		}
		var out []string
		for _, t := range r.Topics {
			for _, p := range t.Partitions {
				if p.ErrorCode != 0 {
					out = append(out, fmt.Sprintf("%s/%d=%s", t.Topic, p.Partition, codeName(p.ErrorCode)))
					continue
				}
				out = append(out, fmt.Sprintf("%s/%d=%d", t.Topic, p.Partition, p.Offset))
			}
		}
		return "offsets " + strings.Join(out, " ") + "\n"
	case *kmsg.ConsumerGroupHeartbeatResponse:
		if r.ErrorCode != 0 {
			return codeName(r.ErrorCode) + "\n"
		}
		out := fmt.Sprintf("ok member=%s epoch=%d", s.name(*r.MemberID), r.MemberEpoch)
		if r.Assignment != nil {
			var ps []string
			for _, t := range r.Assignment.Topics {
				name := s.topicName(t.TopicID)
				for _, p := range t.Partitions {
					ps = append(ps, fmt.Sprintf("%s/%d", name, p))
				}
			}
			slices.Sort(ps)
			out += " assignment=[" + strings.Join(ps, " ") + "]"
		}
		return out + "\n"
	case *kmsg.DescribeGroupsResponse:
		g := r.Groups[0]
		if g.ErrorCode != 0 {
			return codeName(g.ErrorCode) + "\n"
		}
		var ms []string
		for _, m := range g.Members {
			var ma kmsg.ConsumerMemberAssignment
			if g.ProtocolType == "consumer" && ma.ReadFrom(m.MemberAssignment) == nil {
				var ps []string
				for _, t := range ma.Topics {
					for _, p := range t.Partitions {
						ps = append(ps, fmt.Sprintf("%s/%d", t.Topic, p))
					}
				}
				ms = append(ms, fmt.Sprintf("%s[%s]", s.name(m.MemberID), strings.Join(ps, " ")))
				continue
			}
			ms = append(ms, fmt.Sprintf("%s(%q)", s.name(m.MemberID), m.MemberAssignment))
		}
		return fmt.Sprintf("%s type=%s protocol=%s members=[%s]\n", g.State, g.ProtocolType, g.Protocol, strings.Join(ms, " "))
	case *kmsg.DeleteGroupsResponse:
		return codeName(r.Groups[0].ErrorCode) + "\n"
	case *kmsg.OffsetDeleteResponse:
		if r.ErrorCode != 0 {
			return codeName(r.ErrorCode) + "\n"
		}
		var out []string
		for _, t := range r.Topics {
			for _, p := range t.Partitions {
				out = append(out, fmt.Sprintf("%s/%d:%s", t.Topic, p.Partition, codeName(p.ErrorCode)))
			}
		}
		return strings.Join(out, " ") + "\n"
	}
	return fmt.Sprintf("%T\n", resp)
}

func (s *groupScript) topicName(id [16]byte) string {
	if n, ok := s.topicNames[id]; ok {
		return n
	}
	return fmt.Sprintf("%x", id[:4])
}

// ownedTopics parses "t/0,t/1" into a heartbeat's owned partitions, by
// topic id, and remembers the names for printing.
func (c *testCluster) ownedTopics(spec string) []kmsg.ConsumerGroupHeartbeatRequestTopic {
	s := &c.groups
	byID := map[[16]byte][]int32{}
	var order [][16]byte
	for _, tp := range strings.Split(spec, ",") {
		if tp == "" {
			continue
		}
		name, part, _ := strings.Cut(tp, "/")
		p, _ := strconv.Atoi(part)
		id := c.brokers[0].b.meta.st.Topics[name].ID
		s.topicNames[id] = name
		if _, ok := byID[id]; !ok {
			order = append(order, id)
		}
		byID[id] = append(byID[id], int32(p))
	}
	out := []kmsg.ConsumerGroupHeartbeatRequestTopic{}
	for _, id := range order {
		out = append(out, kmsg.ConsumerGroupHeartbeatRequestTopic{TopicID: id, Partitions: byID[id]})
	}
	return out
}
