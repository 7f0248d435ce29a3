package engine

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DescribeConfigs, versions 0-4.
//
// Behavior:
//   - Topics (resource type 2): the configs given at creation, over the
//     defaults below; UNKNOWN_TOPIC_OR_PARTITION for an unknown topic,
//     INVALID_TOPIC_EXCEPTION for a name no topic can have (empty, over
//     249 characters, illegal characters), as Kafka's Topic.validate.
//   - Brokers (resource type 4): the broker basics below and the
//     cluster-wide defaults of the topic configs by their broker names
//     (DYNAMIC_DEFAULT_BROKER_CONFIG when set by AlterConfigs, the only
//     ones not read-only); an empty name or this broker's id. Another
//     broker's id: INVALID_REQUEST (ask it).
//   - ConfigNames filters; null means all. IncludeSynonyms (v1+) lists
//     the chain a value comes from, most specific first: the topic's own
//     value (DYNAMIC_TOPIC_CONFIG) when set, then by the broker config's
//     name the cluster-wide dynamic default when set
//     (DYNAMIC_DEFAULT_BROKER_CONFIG), the broker's static setting when it
//     has one (STATIC_BROKER_CONFIG: Config.StaticConfigs, or a value
//     other than the built-in one) and the built-in default
//     (DEFAULT_CONFIG); the first is the config's Source.
//     IncludeDocumentation (v3+) gives the catalog's line
//     (topic_configs.go).
//   - ConfigType (v3+) is Kafka's type of each config Gregor knows (the
//     Java client shows it as ConfigEntry.type()); UNKNOWN for a name given
//     at topic creation that Gregor does not know.

func init() { regKey(kmsg.DescribeConfigs, 0, 4, (*Broker).handleDescribeConfigs) }

func (b *Broker) handleDescribeConfigs(token uint64, r *kmsg.DescribeConfigsRequest) {
	resp := r.ResponseKind().(*kmsg.DescribeConfigsResponse)
	for _, rr := range r.Resources {
		res := kmsg.NewDescribeConfigsResponseResource()
		res.ResourceType, res.ResourceName = rr.ResourceType, rr.ResourceName
		// Kafka answers an empty message, not null, for a resource it
		// describes.
		res.ErrorMessage = kmsg.StringPtr("")
		var set map[string]string
		var defaults map[string]string
		var static map[string]staticConfig
		if err := b.configAuthorized(opDescribeConfigs, rr.ResourceType, rr.ResourceName); err != nil {
			res.ErrorCode, res.ErrorMessage = err.Code, kmsg.StringPtr("Authorization failed.")
			resp.Resources = append(resp.Resources, res)
			continue
		}
		switch rr.ResourceType {
		case kmsg.ConfigResourceTypeTopic:
			if err := validTopicName(rr.ResourceName); err != nil {
				res.ErrorCode, res.ErrorMessage = kerr.InvalidTopicException.Code, kmsg.StringPtr(err.Error())
				resp.Resources = append(resp.Resources, res)
				continue
			}
			t, ok := b.meta.st.Topics[rr.ResourceName]
			if !ok {
				res.ErrorCode = kerr.UnknownTopicOrPartition.Code
				res.ErrorMessage = kmsg.StringPtr(fmt.Sprintf("The topic '%s' does not exist.", rr.ResourceName))
				resp.Resources = append(resp.Resources, res)
				continue
			}
			set, defaults = t.Configs, b.topicDefaults()
		case kmsg.ConfigResourceTypeBroker:
			if rr.ResourceName != "" && rr.ResourceName != strconv.Itoa(int(b.cfg.ID)) {
				res.ErrorCode = kerr.InvalidRequest.Code
				msg := fmt.Sprintf("ask broker %s for its own configs", rr.ResourceName)
				res.ErrorMessage = &msg
				resp.Resources = append(resp.Resources, res)
				continue
			}
			static = b.staticBrokerConfigs()
			defaults = make(map[string]string, len(static))
			for name, sc := range static {
				defaults[name] = sc.value
			}
			set = b.meta.st.BrokerConfigs
		default:
			res.ErrorCode = kerr.InvalidRequest.Code
			resp.Resources = append(resp.Resources, res)
			continue
		}
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
		for _, n := range names {
			if rr.ConfigNames != nil && !slices.Contains(rr.ConfigNames, n) {
				continue
			}
			c := kmsg.NewDescribeConfigsResponseResourceConfig()
			c.Name = n
			v, isSet := set[n]
			if !isSet {
				v = defaults[n]
			}
			c.Value = &v
			c.IsDefault = !isSet
			c.ConfigType = configTypes[n]
			// The chain a value comes from, most specific first: the
			// topic's own, the cluster-wide dynamic default, the static
			// default (Kafka's synonyms).
			type link struct {
				name, value string
				source      kmsg.ConfigSource
			}
			var chain []link
			switch rr.ResourceType {
			case kmsg.ConfigResourceTypeTopic:
				tc := topicConfigByName[n]
				if isSet {
					chain = append(chain, link{n, v, kmsg.ConfigSourceDynamicTopicConfig})
				}
				if tc != nil {
					c.ConfigType = tc.typ
					if r.IncludeDocumentation {
						c.Documentation = kmsg.StringPtr(tc.doc)
					}
					bn := cmp.Or(tc.broker, n)
					if dv, ok := b.meta.st.BrokerConfigs[tc.broker]; ok && tc.broker != "" {
						chain = append(chain, link{bn, dv, kmsg.ConfigSourceDynamicDefaultBrokerConfig})
					}
					def := b.staticDefault(tc)
					if sc, ok := b.staticBrokerConfigs()[tc.broker]; ok && tc.broker != "" {
						if sc.static {
							chain = append(chain, link{bn, sc.value, kmsg.ConfigSourceStaticBrokerConfig})
						}
						def = sc.builtin
					}
					if !kafkaNullDefault[tc.broker] {
						chain = append(chain, link{bn, def, kmsg.ConfigSourceDefaultConfig})
					}
				}
			case kmsg.ConfigResourceTypeBroker:
				c.ReadOnly = true
				if bc, ok := brokerConfigByName[n]; ok {
					c.ReadOnly, c.ConfigType = false, bc.typ
					if r.IncludeDocumentation {
						c.Documentation = kmsg.StringPtr(bc.doc)
					}
					if isSet {
						chain = append(chain, link{n, v, kmsg.ConfigSourceDynamicDefaultBrokerConfig})
					}
				}
				if sc := static[n]; sc.static {
					chain = append(chain, link{n, sc.value, kmsg.ConfigSourceStaticBrokerConfig})
				}
				chain = append(chain, link{n, static[n].builtin, kmsg.ConfigSourceDefaultConfig})
			}
			c.Source = kmsg.ConfigSourceDefaultConfig
			if len(chain) > 0 {
				c.Source = chain[0].source
				c.IsDefault = c.Source == kmsg.ConfigSourceDefaultConfig
				if !isSet {
					v = chain[0].value
					c.Value = &v
				}
			}
			if r.IncludeSynonyms {
				for _, l := range chain {
					sy := kmsg.NewDescribeConfigsResponseResourceConfigConfigSynonym()
					sy.Name, sy.Value, sy.Source = l.name, kmsg.StringPtr(l.value), l.source
					c.ConfigSynonyms = append(c.ConfigSynonyms, sy)
				}
			}
			res.Configs = append(res.Configs, c)
		}
		resp.Resources = append(resp.Resources, res)
	}
	b.respond(token, resp)
}

// kafkaNullDefault are the broker synonyms of topic configs whose default
// is null in Kafka (the topic's default comes from a coarser synonym, such
// as log.retention.hours): Kafka lists no DEFAULT_CONFIG synonym for them,
// so neither does Gregor (the conformance script 08_configs checks it).
var kafkaNullDefault = map[string]bool{
	"log.retention.ms":      true,
	"log.roll.ms":           true,
	"log.roll.jitter.ms":    true,
	"log.flush.interval.ms": true,
}

// configTypes are Kafka's types of the broker configs (brokerConfigs);
// topic configs have theirs in the catalog (topic_configs.go).
var configTypes = map[string]kmsg.ConfigType{
	"broker.id":                                kmsg.ConfigTypeInt,
	"auto.create.topics.enable":                kmsg.ConfigTypeBoolean,
	"default.replication.factor":               kmsg.ConfigTypeInt,
	"num.partitions":                           kmsg.ConfigTypeInt,
	"message.max.bytes":                        kmsg.ConfigTypeInt,
	"log.segment.bytes":                        kmsg.ConfigTypeInt,
	"producer.id.expiration.ms":                kmsg.ConfigTypeInt,
	"offsets.topic.num.partitions":             kmsg.ConfigTypeInt,
	"offsets.topic.replication.factor":         kmsg.ConfigTypeShort,
	"offsets.retention.minutes":                kmsg.ConfigTypeInt,
	"offsets.retention.check.interval.ms":      kmsg.ConfigTypeLong,
	"group.initial.rebalance.delay.ms":         kmsg.ConfigTypeInt,
	"group.min.session.timeout.ms":             kmsg.ConfigTypeInt,
	"group.max.session.timeout.ms":             kmsg.ConfigTypeInt,
	"group.max.size":                           kmsg.ConfigTypeInt,
	"group.consumer.session.timeout.ms":        kmsg.ConfigTypeInt,
	"group.consumer.heartbeat.interval.ms":     kmsg.ConfigTypeInt,
	"group.consumer.assignors":                 kmsg.ConfigTypeList,
	"transaction.state.log.num.partitions":     kmsg.ConfigTypeInt,
	"transaction.state.log.replication.factor": kmsg.ConfigTypeShort,
	"transaction.max.timeout.ms":               kmsg.ConfigTypeInt,
	"transactional.id.expiration.ms":           kmsg.ConfigTypeInt,
	"log.retention.hours":                      kmsg.ConfigTypeInt,
	"log.retention.check.interval.ms":          kmsg.ConfigTypeLong,
	"log.cleaner.backoff.ms":                   kmsg.ConfigTypeLong,
}

func (b *Broker) brokerConfigs() map[string]string {
	return map[string]string{
		"broker.id":                                strconv.Itoa(int(b.cfg.ID)),
		"auto.create.topics.enable":                strconv.FormatBool(b.cfg.AutoCreateTopics),
		"default.replication.factor":               strconv.Itoa(int(b.cfg.DefaultReplicationFactor)),
		"num.partitions":                           strconv.Itoa(int(b.cfg.DefaultPartitions)),
		"message.max.bytes":                        strconv.Itoa(int(b.cfg.MaxMessageBytes)),
		"log.segment.bytes":                        strconv.FormatInt(b.segmentBytes(), 10),
		"log.retention.hours":                      "168",
		"log.retention.check.interval.ms":          strconv.FormatInt(b.cfg.RetentionCheckIntervalMs, 10),
		"log.cleaner.backoff.ms":                   strconv.FormatInt(b.cfg.CleanerBackoffMs, 10),
		"producer.id.expiration.ms":                strconv.FormatInt(b.cfg.ProducerIDExpirationMs, 10),
		"offsets.topic.num.partitions":             strconv.Itoa(int(b.cfg.OffsetsTopicPartitions)),
		"offsets.topic.replication.factor":         strconv.Itoa(int(b.cfg.OffsetsTopicReplicationFactor)),
		"offsets.retention.minutes":                strconv.FormatInt(b.cfg.OffsetsRetentionMs/60_000, 10),
		"offsets.retention.check.interval.ms":      strconv.FormatInt(b.cfg.OffsetsRetentionCheckIntervalMs, 10),
		"group.initial.rebalance.delay.ms":         strconv.Itoa(int(max(b.cfg.GroupInitialRebalanceDelayMs, 0))),
		"group.min.session.timeout.ms":             strconv.Itoa(int(b.cfg.GroupMinSessionTimeoutMs)),
		"group.max.session.timeout.ms":             strconv.Itoa(int(b.cfg.GroupMaxSessionTimeoutMs)),
		"group.max.size":                           strconv.Itoa(int(b.cfg.GroupMaxSize)),
		"group.consumer.session.timeout.ms":        strconv.Itoa(int(b.cfg.GroupConsumerSessionTimeoutMs)),
		"group.consumer.heartbeat.interval.ms":     strconv.Itoa(int(b.cfg.GroupConsumerHeartbeatIntervalMs)),
		"group.consumer.assignors":                 assignorUniform + "," + assignorRange,
		"transaction.state.log.num.partitions":     strconv.Itoa(int(b.cfg.TransactionStatePartitions)),
		"transaction.state.log.replication.factor": strconv.Itoa(int(b.cfg.TransactionStateReplicationFactor)),
		"transaction.max.timeout.ms":               strconv.Itoa(int(b.cfg.TransactionMaxTimeoutMs)),
		"transactional.id.expiration.ms":           strconv.FormatInt(b.cfg.TransactionalIDExpirationMs, 10),
	}
}

// staticBrokerConfigs are this broker's settings and where each comes
// from: the value of every broker config (brokerConfigs, and the broker
// names of the topic configs' static defaults), whether it is static
// (STATIC_BROKER_CONFIG: named in Config.StaticConfigs, or set to a value
// other than the built-in one) and the built-in value a broker started
// with no settings has (DEFAULT_CONFIG, Kafka's synonym of last resort).
// Computed once: a broker's static settings do not change while it runs.
func (b *Broker) staticBrokerConfigs() map[string]staticConfig {
	if b.static != nil {
		return b.static
	}
	builtin := &Broker{cfg: Config{ID: b.cfg.ID, Cluster: b.cfg.Cluster}}
	builtin.cfg.setDefaults()
	values, defaults := b.brokerConfigs(), builtin.brokerConfigs()
	for name, c := range brokerConfigByName {
		values[name], defaults[name] = b.staticDefault(c), builtin.staticDefault(c)
	}
	b.static = make(map[string]staticConfig, len(values))
	for name, v := range values {
		b.static[name] = staticConfig{value: v, builtin: defaults[name], static: v != defaults[name] || slices.Contains(b.cfg.StaticConfigs, name)}
	}
	return b.static
}

// staticConfig is one broker config as the broker started with it.
type staticConfig struct {
	value, builtin string
	static         bool
}

func (b *Broker) segmentBytes() int64 {
	if b.cfg.SegmentBytes > 0 {
		return b.cfg.SegmentBytes
	}
	return 64 << 20
}
