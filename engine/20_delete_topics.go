package engine

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DeleteTopics, versions 1-6.
//
// Behavior:
//   - Topics by name (v0-5 TopicNames, v6 Topics with name or id).
//   - INVALID_REQUEST, as Kafka's controller answers, for a v6 entry with
//     neither a name nor an id or with both, and once for a name or an id
//     given more than once (none of those is deleted).
//   - UNKNOWN_TOPIC_OR_PARTITION (UNKNOWN_TOPIC_ID by id) for a topic that
//     does not exist; otherwise the metadata log decides, and every replica
//     stops its raft group and deletes the partition's files when it
//     applies the deletion.

func init() { regKey(kmsg.DeleteTopics, 1, 6, (*Broker).handleDeleteTopics) }

func (b *Broker) handleDeleteTopics(token uint64, r *kmsg.DeleteTopicsRequest) {
	resp := r.ResponseKind().(*kmsg.DeleteTopicsResponse)
	rep := b.newReply(token, resp)
	type target struct {
		name string
		id   [16]byte
		byID bool
	}
	// As Kafka's controller: a v6 entry with neither a name nor an id, or
	// with both, and a name or id given more than once, are each one
	// INVALID_REQUEST entry, and only the others are deleted.
	invalid := func(name *string, id [16]byte, msg string) {
		st := kmsg.NewDeleteTopicsResponseTopic()
		st.Topic, st.TopicID, st.ErrorCode = name, id, kerr.InvalidRequest.Code
		st.ErrorMessage = &msg
		resp.Topics = append(resp.Topics, st)
	}
	names, ids := map[string]int{}, map[[16]byte]int{}
	for _, n := range r.TopicNames {
		names[n]++
	}
	for _, t := range r.Topics {
		switch {
		case t.Topic == nil && t.TopicID == [16]byte{}:
			invalid(nil, t.TopicID, "Neither topic name nor id were specified.")
		case t.Topic != nil && t.TopicID != [16]byte{}:
			invalid(t.Topic, t.TopicID, "You may not specify both topic name and topic id.")
		case t.Topic != nil:
			names[*t.Topic]++
		default:
			ids[t.TopicID]++
		}
	}
	var targets []target
	add := func(tg target) {
		if tg.byID && ids[tg.id] > 1 || !tg.byID && names[tg.name] > 1 {
			return
		}
		targets = append(targets, tg)
	}
	for _, n := range r.TopicNames {
		add(target{name: n})
	}
	for _, t := range r.Topics {
		switch {
		case (t.Topic == nil) == (t.TopicID == [16]byte{}):
		case t.Topic != nil:
			add(target{name: *t.Topic})
		default:
			tg := target{id: t.TopicID, byID: true}
			for _, tm := range b.meta.st.Topics {
				if tm.ID == t.TopicID {
					tg.name = tm.Name
				}
			}
			add(tg)
		}
	}
	for n, c := range names {
		if c > 1 {
			invalid(&n, [16]byte{}, "Duplicate topic name.")
		}
	}
	for id, c := range ids {
		if c > 1 {
			invalid(nil, id, "Duplicate topic id.")
		}
	}
	mayDelete := b.authorizer(opDelete, resTopic)
	for _, tg := range targets {
		st := kmsg.NewDeleteTopicsResponseTopic()
		if !tg.byID || tg.name != "" {
			n := tg.name
			st.Topic = &n
		}
		st.TopicID = tg.id
		resp.Topics = append(resp.Topics, st)
		i := len(resp.Topics) - 1
		if tg.name != "" && !mayDelete(tg.name) {
			resp.Topics[i].ErrorCode = kerr.TopicAuthorizationFailed.Code
			continue
		}
		tm, ok := b.meta.st.Topics[tg.name]
		if !ok {
			msg := "This server does not host this topic-partition."
			if tg.byID {
				resp.Topics[i].ErrorCode = kerr.UnknownTopicID.Code
				msg = "This server does not host this topic ID."
			} else {
				resp.Topics[i].ErrorCode = kerr.UnknownTopicOrPartition.Code
			}
			resp.Topics[i].ErrorMessage = &msg
			continue
		}
		resp.Topics[i].TopicID = tm.ID
		if isInternalTopic(tg.name) {
			// Deleting it would lose every group's committed offsets.
			resp.Topics[i].ErrorCode = kerr.InvalidTopicException.Code
			msg := "the internal topic " + tg.name + " cannot be deleted"
			resp.Topics[i].ErrorMessage = &msg
			continue
		}
		name := tg.name
		rep.add()
		b.proposeMeta(metaCmd{DeleteTopic: &name}, timeoutMs(r.TimeoutMillis), func(res metaResult) {
			resp.Topics[i].ErrorCode = errCode(res.err)
			rep.done()
		})
	}
	rep.maybeSend()
}
