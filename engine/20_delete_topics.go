package engine

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DeleteTopics, versions 1-6.
//
// Behavior:
//   - Topics by name (v0-5 TopicNames, v6 Topics with name or id).
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
	var targets []target
	for _, n := range r.TopicNames {
		targets = append(targets, target{name: n})
	}
	for _, t := range r.Topics {
		if t.Topic != nil {
			targets = append(targets, target{name: *t.Topic})
		} else {
			tg := target{id: t.TopicID, byID: true}
			for _, tm := range b.meta.st.Topics {
				if tm.ID == t.TopicID {
					tg.name = tm.Name
				}
			}
			targets = append(targets, tg)
		}
	}
	mayDelete := b.authorizer(opDelete, resTopic)
	for _, tg := range targets {
		st := kmsg.NewDeleteTopicsResponseTopic()
		if tg.name != "" {
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
