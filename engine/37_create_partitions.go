package engine

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// CreatePartitions, versions 0-3.
//
// Behavior:
//   - Count is the new total; it must exceed the current count
//     (INVALID_PARTITIONS otherwise), UNKNOWN_TOPIC_OR_PARTITION (no
//     message, as Kafka) for an unknown topic. Explicit assignments are not supported yet
//     (INVALID_REPLICA_ASSIGNMENT); new partitions keep the topic's
//     replication factor and are spread like CreateTopics spreads them.
//   - A topic named more than once: one INVALID_REQUEST answer for it and
//     nothing grown, as Kafka's controller answers.

func init() { regKey(kmsg.CreatePartitions, 0, 3, (*Broker).handleCreatePartitions) }

func (b *Broker) handleCreatePartitions(token uint64, r *kmsg.CreatePartitionsRequest) {
	resp := r.ResponseKind().(*kmsg.CreatePartitionsResponse)
	rep := b.newReply(token, resp)
	mayAlter := b.authorizer(opAlter, resTopic)
	seen, dupAnswered := map[string]int{}, map[string]bool{}
	for _, rt := range r.Topics {
		seen[rt.Topic]++
	}
	for _, rt := range r.Topics {
		if dupAnswered[rt.Topic] {
			continue
		}
		st := kmsg.NewCreatePartitionsResponseTopic()
		st.Topic = rt.Topic
		resp.Topics = append(resp.Topics, st)
		i := len(resp.Topics) - 1
		fail := func(e *kerr.Error, msg string) {
			resp.Topics[i].ErrorCode = e.Code
			resp.Topics[i].ErrorMessage = &msg
		}
		if seen[rt.Topic] > 1 {
			// One answer for the name and nothing grown, as Kafka's
			// controller.
			dupAnswered[rt.Topic] = true
			fail(kerr.InvalidRequest, "Duplicate topic name.")
			continue
		}
		t, ok := b.meta.st.Topics[rt.Topic]
		switch {
		case !mayAlter(rt.Topic):
			fail(kerr.TopicAuthorizationFailed, "Authorization failed.")
			continue
		case !ok:
			// No message, as Kafka.
			resp.Topics[i].ErrorCode = kerr.UnknownTopicOrPartition.Code
			continue
		case isInternalTopic(rt.Topic):
			// Its partition count maps every group to its coordinator.
			fail(kerr.InvalidRequest, "the partition count of "+rt.Topic+" cannot change")
			continue
		case len(rt.Assignment) > 0:
			fail(kerr.InvalidReplicaAssignment, "explicit partition assignments are not supported")
			continue
		case rt.Count <= int32(len(t.Partitions)):
			fail(kerr.InvalidPartitions, fmt.Sprintf("topic has %d partitions; the new count %d must be larger", len(t.Partitions), rt.Count))
			continue
		case rt.Count > partitionsMax:
			fail(kerr.InvalidPartitions, fmt.Sprintf("at most %d partitions", partitionsMax))
			continue
		}
		if r.ValidateOnly {
			continue
		}
		rep.add()
		b.proposeMeta(metaCmd{CreatePartitions: &createPartitionsCmd{Name: rt.Topic, Count: rt.Count}}, timeoutMs(r.TimeoutMillis), func(res metaResult) {
			resp.Topics[i].ErrorCode = errCode(res.err)
			rep.done()
		})
	}
	rep.maybeSend()
}
