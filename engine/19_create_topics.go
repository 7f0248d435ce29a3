package engine

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// CreateTopics, versions 2-7.
//
// Behavior:
//   - Any broker accepts the request and proposes to the metadata group; the
//     answer comes once the metadata log applies it (or the request times
//     out with REQUEST_TIMED_OUT).
//   - NumPartitions -1 and ReplicationFactor -1 (v4+) take the broker
//     defaults.
//   - INVALID_TOPIC_EXCEPTION for a bad name, INVALID_PARTITIONS for fewer
//     than one partition, INVALID_REPLICATION_FACTOR for a factor outside
//     1..brokers, INVALID_REPLICA_ASSIGNMENT for a bad explicit assignment
//     (partitions in any order, 0..n-1 each once, replicas existing and
//     distinct, the same number for every partition),
//     TOPIC_ALREADY_EXISTS (decided by the metadata log, so two racing
//     creates get exactly one success), INVALID_TOPIC_EXCEPTION for a name
//     that differs from an existing topic's only in '.' against '_' (as
//     Kafka: their metric names would collide).
//   - A name given more than once: one INVALID_REQUEST answer for it, and
//     nothing created under it, as Kafka's controller answers.
//   - A negative TimeoutMillis: REQUEST_TIMED_OUT (no message) for every
//     topic, and more than 10,000 partitions in the whole request:
//     POLICY_VIOLATION for every topic, as Kafka's controller answers.
//   - ValidateOnly checks without creating.
//   - Configs are checked against the catalog (topic_configs.go): an
//     unknown name, a null value or a value of the wrong type or out of
//     range is INVALID_CONFIG with a message naming the key and the
//     reason; valid ones are stored as given and shown by
//     DescribeConfigs.
//   - v5+: a success (or a ValidateOnly pass) carries NumPartitions,
//     ReplicationFactor and Configs: every topic config with its value and
//     source, as DescribeConfigs shows it, sorted by name (as Kafka does).
//     An error carries -1, -1 and an empty list. Configs is never null: the
//     schema allows null, but the Java client streams configs() unchecked.

func init() { regKey(kmsg.CreateTopics, 2, 7, (*Broker).handleCreateTopics) }

func (b *Broker) handleCreateTopics(token uint64, r *kmsg.CreateTopicsRequest) {
	resp := r.ResponseKind().(*kmsg.CreateTopicsResponse)
	rep := b.newReply(token, resp)
	seen, dupAnswered := map[string]int{}, map[string]bool{}
	for _, rt := range r.Topics {
		seen[rt.Topic]++
	}
	// Kafka's controller refuses a whole request creating more than
	// 10,000 partitions (MAX_RECORDS_PER_USER_OP), counted as it counts
	// them, before it looks at each topic.
	total := 0
	for _, rt := range r.Topics {
		switch {
		case len(rt.ReplicaAssignment) > 0:
			total += len(rt.ReplicaAssignment)
		case rt.NumPartitions == -1:
			total += int(b.cfg.DefaultPartitions)
		default:
			total += int(rt.NumPartitions)
		}
	}
	// Create on the cluster allows every topic; else each needs its own.
	mayCreate := b.authorizer(opCreate, resTopic)
	if b.authorizedCluster(opCreate) {
		mayCreate = func(string) bool { return true }
	}
	for _, rt := range r.Topics {
		st := kmsg.NewCreateTopicsResponseTopic()
		st.Topic = rt.Topic
		st.NumPartitions, st.ReplicationFactor = -1, -1
		st.Configs = []kmsg.CreateTopicsResponseTopicConfig{}
		resp.Topics = append(resp.Topics, st)
		i := len(resp.Topics) - 1
		fail := func(err *kerr.Error, msg string) {
			out := &resp.Topics[i]
			out.ErrorCode = err.Code
			out.ErrorMessage = &msg
			out.NumPartitions, out.ReplicationFactor = -1, -1
			out.Configs = []kmsg.CreateTopicsResponseTopicConfig{}
		}
		if seen[rt.Topic] > 1 {
			// One answer for the name, as Kafka's controller.
			if dupAnswered[rt.Topic] {
				resp.Topics = resp.Topics[:i]
				continue
			}
			dupAnswered[rt.Topic] = true
			fail(kerr.InvalidRequest, "Duplicate topic name.")
			continue
		}
		if !mayCreate(rt.Topic) {
			fail(kerr.TopicAuthorizationFailed, "Authorization failed.")
			continue
		}
		if r.TimeoutMillis < 0 {
			// Kafka's controller gets a deadline already past.
			fail(kerr.RequestTimedOut, "")
			resp.Topics[i].ErrorMessage = nil
			continue
		}
		if total > partitionsMax {
			fail(kerr.PolicyViolation, "Excessively large number of partitions per request.")
			continue
		}
		cmd, kerrv, msg := b.createTopicCmd(rt)
		if kerrv != nil {
			fail(kerrv, msg)
			continue
		}
		if _, ok := b.meta.st.Topics[rt.Topic]; ok {
			fail(kerr.TopicAlreadyExists, fmt.Sprintf("topic %q already exists", rt.Topic))
			continue
		}
		if other, ok := b.collidingTopic(rt.Topic); ok {
			fail(kerr.InvalidTopicException, fmt.Sprintf("Topic '%s' collides with existing topic: %s", rt.Topic, other))
			continue
		}
		resp.Topics[i].NumPartitions, resp.Topics[i].ReplicationFactor = cmd.Partitions, cmd.Replication
		resp.Topics[i].Configs = b.createdTopicConfigs(cmd.Configs)
		if r.ValidateOnly {
			continue
		}
		rep.add()
		b.proposeMeta(metaCmd{CreateTopic: cmd}, timeoutMs(r.TimeoutMillis), func(res metaResult) {
			if res.err != nil {
				var ke *kerr.Error
				if !errors.As(res.err, &ke) {
					ke = kerr.UnknownServerError
				}
				fail(ke, res.err.Error())
			} else if t, ok := b.meta.st.Topics[rt.Topic]; ok {
				resp.Topics[i].TopicID = t.ID
			}
			rep.done()
		})
	}
	rep.maybeSend()
}

// createdTopicConfigs is the v5+ answer's list of a new topic's configs:
// those given at creation over the topic defaults, sorted by name.
func (b *Broker) createdTopicConfigs(set map[string]string) []kmsg.CreateTopicsResponseTopicConfig {
	defaults := b.topicDefaults()
	names := make([]string, 0, len(defaults)+len(set))
	for n := range defaults {
		names = append(names, n)
	}
	for n := range set {
		if _, ok := defaults[n]; !ok {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	out := make([]kmsg.CreateTopicsResponseTopicConfig, 0, len(names))
	for _, n := range names {
		c := kmsg.NewCreateTopicsResponseTopicConfig()
		c.Name = n
		v, isSet := set[n]
		c.Source = int8(kmsg.ConfigSourceDefaultConfig)
		if isSet {
			c.Source = int8(kmsg.ConfigSourceDynamicTopicConfig)
		} else {
			v = defaults[n]
		}
		c.Value = &v
		out = append(out, c)
	}
	return out
}

func timeoutMs(ms int32) int64 {
	if ms <= 0 {
		return 30_000
	}
	return int64(ms)
}

func (b *Broker) createTopicCmd(rt kmsg.CreateTopicsRequestTopic) (*createTopicCmd, *kerr.Error, string) {
	if err := validTopicName(rt.Topic); err != nil {
		return nil, kerr.InvalidTopicException, err.Error()
	}
	brokers := int16(len(b.cfg.Cluster))
	cmd := &createTopicCmd{Name: rt.Topic, Partitions: rt.NumPartitions, Replication: rt.ReplicationFactor}
	if len(rt.ReplicaAssignment) > 0 {
		if rt.NumPartitions != -1 || rt.ReplicationFactor != -1 {
			return nil, kerr.InvalidRequest, "both an assignment and partitions/replication factor given"
		}
		// Any order, as in Kafka: the Java client sends its assignment map
		// in hash order. Together they must name partitions 0..n-1 once.
		cmd.Partitions = int32(len(rt.ReplicaAssignment))
		cmd.Replication = int16(len(rt.ReplicaAssignment[0].Replicas))
		cmd.Assignment = make([][]int32, cmd.Partitions)
		for _, a := range rt.ReplicaAssignment {
			if a.Partition < 0 || a.Partition >= cmd.Partitions || cmd.Assignment[a.Partition] != nil {
				return nil, kerr.InvalidReplicaAssignment, fmt.Sprintf("partitions in an assignment must be 0..%d, each once; got %d", cmd.Partitions-1, a.Partition)
			}
			if int16(len(a.Replicas)) != cmd.Replication || !b.validReplicas(a.Replicas) {
				return nil, kerr.InvalidReplicaAssignment, fmt.Sprintf("bad assignment for partition %d", a.Partition)
			}
			cmd.Assignment[a.Partition] = slices.Clone(a.Replicas)
		}
	}
	if cmd.Partitions == -1 {
		cmd.Partitions = b.cfg.DefaultPartitions
	}
	if cmd.Replication == -1 {
		cmd.Replication = min(b.cfg.DefaultReplicationFactor, brokers)
	}
	if cmd.Partitions < 1 {
		return nil, kerr.InvalidPartitions, fmt.Sprintf("number of partitions must be at least 1, got %d", cmd.Partitions)
	}
	if cmd.Partitions > partitionsMax {
		return nil, kerr.InvalidPartitions, fmt.Sprintf("number of partitions must be at most %d, got %d", partitionsMax, cmd.Partitions)
	}
	if cmd.Replication < 1 || cmd.Replication > brokers {
		return nil, kerr.InvalidReplicationFactor, fmt.Sprintf("replication factor must be between 1 and %d brokers, got %d", brokers, cmd.Replication)
	}
	for _, c := range rt.Configs {
		if err := validateTopicConfig(c.Name, c.Value); err != nil {
			return nil, kerr.InvalidConfig, err.Error()
		}
		if cmd.Configs == nil {
			cmd.Configs = map[string]string{}
		}
		cmd.Configs[c.Name] = *c.Value
	}
	return cmd, nil, ""
}

// partitionsMax bounds one topic's partitions: every one is a raft group.
const partitionsMax = 10_000

func (b *Broker) validReplicas(rs []int32) bool {
	seen := map[int32]bool{}
	for _, r := range rs {
		if seen[r] || !slices.ContainsFunc(b.cfg.Cluster, func(bi BrokerInfo) bool { return bi.ID == r }) {
			return false
		}
		seen[r] = true
	}
	return len(rs) > 0
}

// collidingTopic is an existing topic whose name differs from name only
// in '.' against '_' (the least such, for a stable message): Kafka refuses
// to create it (KAFKA-13743), since both would have the same metric names.
func (b *Broker) collidingTopic(name string) (string, bool) {
	if !strings.ContainsAny(name, "._") {
		return "", false
	}
	unify := func(s string) string { return strings.ReplaceAll(s, ".", "_") }
	want, found := unify(name), ""
	for n := range b.meta.st.Topics {
		if n != name && unify(n) == want && (found == "" || n < found) {
			found = n
		}
	}
	return found, found != ""
}

// validTopicName applies Kafka's rules: 1-249 characters of [a-zA-Z0-9._-],
// not "." or "..".
func validTopicName(name string) error {
	if name == "" || name == "." || name == ".." {
		return fmt.Errorf("topic name %q is illegal", name)
	}
	if len(name) > 249 {
		return fmt.Errorf("topic name is longer than 249 characters")
	}
	if i := strings.IndexFunc(name, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-')
	}); i >= 0 {
		return fmt.Errorf("topic name %q contains an illegal character at %d; legal are ASCII letters, digits, '.', '_' and '-'", name, i)
	}
	return nil
}
