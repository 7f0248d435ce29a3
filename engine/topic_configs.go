package engine

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// The topic configs Gregor knows: Kafka's names, types, allowed values and
// documentation, the static broker config each falls back to (its
// synonym), and what Gregor does with it. A topic's configs are validated
// against this catalog wherever they are set (CreateTopics, AlterConfigs,
// IncrementalAlterConfigs) and replicated as given through the metadata
// log; a key the catalog does not know is INVALID_CONFIG, as Kafka answers.
//
// Enforced: max.message.bytes, min.insync.replicas and
// message.timestamp.type (Produce), segment.bytes and segment.ms (the
// segment log), retention.ms and retention.bytes (records.go),
// cleanup.policy, min.cleanable.dirty.ratio, min.compaction.lag.ms,
// max.compaction.lag.ms and delete.retention.ms (compaction.go). The
// others are accepted, stored and described.

// topicConfig is one entry of the catalog.
type topicConfig struct {
	name   string
	typ    kmsg.ConfigType
	broker string // the static broker config it defaults to ("" when none)
	doc    string
	// check validates a value already parsed by type (nil: any value of
	// the type).
	check func(v string) error
	// def is the default value (from the broker's configuration).
	def func(b *Broker) string
}

func constDefault(v string) func(*Broker) string { return func(*Broker) string { return v } }

// atLeast checks an integer config's lower bound.
func atLeast(min int64) func(string) error {
	return func(v string) error {
		n, _ := strconv.ParseInt(v, 10, 64)
		if n < min {
			return fmt.Errorf("value must be at least %d", min)
		}
		return nil
	}
}

// oneOf checks a string config (or each element of a list) against its
// allowed values.
func oneOf(allowed ...string) func(string) error {
	return func(v string) error {
		for _, e := range strings.Split(v, ",") {
			if !slices.Contains(allowed, strings.TrimSpace(e)) {
				return fmt.Errorf("%q is not one of %s", strings.TrimSpace(e), strings.Join(allowed, ", "))
			}
		}
		return nil
	}
}

var topicConfigs = []topicConfig{
	{name: "cleanup.policy", typ: kmsg.ConfigTypeList, broker: "log.cleanup.policy", check: oneOf("delete", "compact"),
		def: constDefault("delete"), doc: "delete: old segments are discarded by time or size; compact: the latest record of each key is kept."},
	{name: "compression.gzip.level", typ: kmsg.ConfigTypeInt, broker: "compression.gzip.level", check: atLeast(-1),
		def: constDefault("-1"), doc: "Accepted for compatibility: the gzip level when the topic recompresses (Gregor keeps the producer's batches)."},
	{name: "compression.lz4.level", typ: kmsg.ConfigTypeInt, broker: "compression.lz4.level", check: atLeast(1),
		def: constDefault("9"), doc: "Accepted for compatibility: the lz4 level when the topic recompresses."},
	{name: "compression.type", typ: kmsg.ConfigTypeString, broker: "compression.type",
		check: oneOf("uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"),
		def:   constDefault("producer"), doc: "The final compression of the topic's batches; producer keeps what the producer sent."},
	{name: "compression.zstd.level", typ: kmsg.ConfigTypeInt, broker: "compression.zstd.level", check: atLeast(-131072),
		def: constDefault("3"), doc: "Accepted for compatibility: the zstd level when the topic recompresses."},
	{name: "delete.retention.ms", typ: kmsg.ConfigTypeLong, broker: "log.cleaner.delete.retention.ms", check: atLeast(0),
		def: constDefault("86400000"), doc: "How long tombstones are kept on a compacted topic."},
	{name: "file.delete.delay.ms", typ: kmsg.ConfigTypeLong, broker: "log.segment.delete.delay.ms", check: atLeast(0),
		def: constDefault("60000"), doc: "How long a deleted segment's files are kept."},
	{name: "flush.messages", typ: kmsg.ConfigTypeLong, broker: "log.flush.interval.messages", check: atLeast(1),
		def: constDefault(strconv.FormatInt(math.MaxInt64, 10)), doc: "Accepted for compatibility: Gregor's durability is the raft WAL's fsync."},
	{name: "flush.ms", typ: kmsg.ConfigTypeLong, broker: "log.flush.interval.ms", check: atLeast(0),
		def: constDefault(strconv.FormatInt(math.MaxInt64, 10)), doc: "Accepted for compatibility: Gregor's durability is the raft WAL's fsync."},
	{name: "follower.replication.throttled.replicas", typ: kmsg.ConfigTypeList, def: constDefault(""),
		doc: "Accepted for compatibility (replication is raft's)."},
	{name: "index.interval.bytes", typ: kmsg.ConfigTypeInt, broker: "log.index.interval.bytes", check: atLeast(0),
		def: constDefault("4096"), doc: "Accepted for compatibility."},
	{name: "leader.replication.throttled.replicas", typ: kmsg.ConfigTypeList, def: constDefault(""),
		doc: "Accepted for compatibility (replication is raft's)."},
	{name: "local.retention.bytes", typ: kmsg.ConfigTypeLong, broker: "log.local.retention.bytes", check: atLeast(-2),
		def: constDefault("-2"), doc: "Accepted for compatibility (no tiered storage)."},
	{name: "local.retention.ms", typ: kmsg.ConfigTypeLong, broker: "log.local.retention.ms", check: atLeast(-2),
		def: constDefault("-2"), doc: "Accepted for compatibility (no tiered storage)."},
	{name: "max.compaction.lag.ms", typ: kmsg.ConfigTypeLong, broker: "log.cleaner.max.compaction.lag.ms", check: atLeast(1),
		def: constDefault(strconv.FormatInt(math.MaxInt64, 10)), doc: "The longest a record stays ineligible for compaction."},
	{name: "max.message.bytes", typ: kmsg.ConfigTypeInt, broker: "message.max.bytes", check: atLeast(0),
		def: func(b *Broker) string { return strconv.Itoa(int(b.cfg.MaxMessageBytes)) },
		doc: "The largest record batch the topic accepts (Produce answers MESSAGE_TOO_LARGE above it)."},
	{name: "message.timestamp.after.max.ms", typ: kmsg.ConfigTypeLong, broker: "log.message.timestamp.after.max.ms", check: atLeast(0),
		def: constDefault("3600000"), doc: "How far ahead of the broker's clock a CreateTime timestamp may be."},
	{name: "message.timestamp.before.max.ms", typ: kmsg.ConfigTypeLong, broker: "log.message.timestamp.before.max.ms", check: atLeast(0),
		def: constDefault(strconv.FormatInt(math.MaxInt64, 10)), doc: "How far behind the broker's clock a CreateTime timestamp may be."},
	{name: "message.timestamp.type", typ: kmsg.ConfigTypeString, broker: "log.message.timestamp.type",
		check: oneOf("CreateTime", "LogAppendTime"), def: constDefault("CreateTime"),
		doc: "CreateTime keeps the producer's timestamps; LogAppendTime replaces them with the broker's."},
	{name: "min.cleanable.dirty.ratio", typ: kmsg.ConfigTypeDouble, broker: "log.cleaner.min.cleanable.ratio",
		check: func(v string) error {
			f, _ := strconv.ParseFloat(v, 64)
			if f < 0 || f > 1 {
				return fmt.Errorf("value must be between 0 and 1")
			}
			return nil
		},
		def: constDefault("0.5"), doc: "The share of a log not yet compacted above which it is cleaned."},
	{name: "min.compaction.lag.ms", typ: kmsg.ConfigTypeLong, broker: "log.cleaner.min.compaction.lag.ms", check: atLeast(0),
		def: constDefault("0"), doc: "The shortest a record stays uncompacted."},
	{name: "min.insync.replicas", typ: kmsg.ConfigTypeInt, broker: "min.insync.replicas", check: atLeast(1),
		def: constDefault("1"), doc: "The in-sync replicas an acks=all write needs (NOT_ENOUGH_REPLICAS below); every write is committed by a raft majority in any case."},
	{name: "preallocate", typ: kmsg.ConfigTypeBoolean, broker: "log.preallocate", def: constDefault("false"),
		doc: "Accepted for compatibility."},
	{name: "remote.log.copy.disable", typ: kmsg.ConfigTypeBoolean, def: constDefault("false"),
		doc: "Accepted for compatibility (no tiered storage)."},
	{name: "remote.log.delete.on.disable", typ: kmsg.ConfigTypeBoolean, def: constDefault("false"),
		doc: "Accepted for compatibility (no tiered storage)."},
	{name: "remote.storage.enable", typ: kmsg.ConfigTypeBoolean, def: constDefault("false"),
		check: func(v string) error {
			if v == "true" {
				return fmt.Errorf("Gregor has no tiered storage")
			}
			return nil
		},
		doc: "Tiered storage: not available."},
	{name: "retention.bytes", typ: kmsg.ConfigTypeLong, broker: "log.retention.bytes", check: atLeast(-1),
		def: constDefault("-1"), doc: "The most a partition keeps before old segments are discarded (-1: no limit)."},
	{name: "retention.ms", typ: kmsg.ConfigTypeLong, broker: "log.retention.ms", check: atLeast(-1),
		def: constDefault("604800000"), doc: "How long a partition keeps a segment (-1: forever)."},
	{name: "segment.bytes", typ: kmsg.ConfigTypeInt, broker: "log.segment.bytes", check: atLeast(14),
		def: func(b *Broker) string { return strconv.FormatInt(b.segmentBytes(), 10) }, doc: "The size at which a segment is rolled."},
	{name: "segment.index.bytes", typ: kmsg.ConfigTypeInt, broker: "log.index.size.max.bytes", check: atLeast(4),
		def: constDefault("10485760"), doc: "Accepted for compatibility."},
	{name: "segment.jitter.ms", typ: kmsg.ConfigTypeLong, broker: "log.roll.jitter.ms", check: atLeast(0),
		def: constDefault("0"), doc: "Accepted for compatibility."},
	{name: "segment.ms", typ: kmsg.ConfigTypeLong, broker: "log.roll.ms", check: atLeast(1),
		def: constDefault("604800000"), doc: "The age at which a segment is rolled."},
	{name: "unclean.leader.election.enable", typ: kmsg.ConfigTypeBoolean, broker: "unclean.leader.election.enable",
		def: constDefault("false"), doc: "Accepted for compatibility: a raft leader is always elected by a majority."},
}

// topicConfigByName indexes topicConfigs.
var topicConfigByName = func() map[string]*topicConfig {
	m := make(map[string]*topicConfig, len(topicConfigs))
	for i := range topicConfigs {
		m[topicConfigs[i].name] = &topicConfigs[i]
	}
	return m
}()

// validateTopicConfig checks one name and value: a known key, a value of
// its type, within its range. The error names the key and the reason.
func validateTopicConfig(name string, value *string) error {
	c, ok := topicConfigByName[name]
	if !ok {
		return fmt.Errorf("unknown topic config %q", name)
	}
	return c.validate(name, value)
}

// validate checks a value of c, set under name (the topic config's or its
// broker synonym's).
func (c *topicConfig) validate(name string, value *string) error {
	if value == nil {
		return fmt.Errorf("config %q: null value", name)
	}
	v := *value
	var err error
	switch c.typ {
	case kmsg.ConfigTypeInt:
		_, err = strconv.ParseInt(strings.TrimSpace(v), 10, 32)
	case kmsg.ConfigTypeLong:
		_, err = strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	case kmsg.ConfigTypeDouble:
		_, err = strconv.ParseFloat(strings.TrimSpace(v), 64)
	case kmsg.ConfigTypeBoolean:
		if lv := strings.ToLower(strings.TrimSpace(v)); lv != "true" && lv != "false" {
			err = fmt.Errorf("not true or false")
		}
	}
	if err != nil {
		return fmt.Errorf("config %q: value %q is not a valid %s", name, v, configTypeName(c.typ))
	}
	if c.check != nil {
		if err := c.check(strings.TrimSpace(v)); err != nil {
			return fmt.Errorf("config %q: value %q: %v", name, v, err)
		}
	}
	return nil
}

// Cluster-wide broker defaults. A topic config's broker synonym (its
// `broker` name: log.retention.ms for retention.ms) may be set for the
// whole cluster with AlterConfigs or IncrementalAlterConfigs on the
// broker resource with an empty name, as Kafka's cluster-wide dynamic
// default: every topic that does not set the config itself takes it.
// The defaults are metadata state (metaState.BrokerConfigs), changed by a
// metadata log entry, so every broker enforces the same ones. Other broker
// configs are static (gregor serve's flags): INVALID_CONFIG.

// brokerConfigByName indexes the topic configs by their broker synonym.
var brokerConfigByName = func() map[string]*topicConfig {
	m := map[string]*topicConfig{}
	for i := range topicConfigs {
		if c := &topicConfigs[i]; c.broker != "" {
			m[c.broker] = c
		}
	}
	return m
}()

// validateBrokerConfigOps checks operations on the cluster-wide defaults.
func validateBrokerConfigOps(ops []configOp) error {
	return validateOps(ops, func(name string) (*topicConfig, error) {
		if c, ok := brokerConfigByName[name]; ok {
			return c, nil
		}
		if _, static := configTypes[name]; static {
			return nil, fmt.Errorf("broker config %q cannot be changed dynamically: it is a flag of gregor serve", name)
		}
		return nil, fmt.Errorf("unknown broker config %q (dynamic ones: the topic configs' broker defaults, such as log.retention.ms)", name)
	})
}

// staticDefault is a config's default before any cluster-wide dynamic
// one: Kafka's, or the broker's flag.
func (b *Broker) staticDefault(c *topicConfig) string { return c.def(b) }

// topicDefault is the value a topic that does not set c has: the
// cluster-wide dynamic default, or the static one.
func (b *Broker) topicDefault(c *topicConfig) string {
	if v, ok := b.meta.st.BrokerConfigs[c.broker]; ok && c.broker != "" {
		return v
	}
	return b.staticDefault(c)
}

func configTypeName(t kmsg.ConfigType) string {
	switch t {
	case kmsg.ConfigTypeInt:
		return "int"
	case kmsg.ConfigTypeLong:
		return "long"
	case kmsg.ConfigTypeDouble:
		return "double"
	case kmsg.ConfigTypeBoolean:
		return "boolean"
	case kmsg.ConfigTypeList:
		return "list"
	}
	return "string"
}

// topicDefaults are every known topic config's default value.
func (b *Broker) topicDefaults() map[string]string {
	m := make(map[string]string, len(topicConfigs))
	for i := range topicConfigs {
		m[topicConfigs[i].name] = b.topicDefault(&topicConfigs[i])
	}
	return m
}

// topicPolicy is what the broker enforces of a topic's configs, parsed
// once from them (the catalog validated every value that is set) and
// cached on the topic until its configs change.
type topicPolicy struct {
	maxMessageBytes int // 0: the broker's
	minISR          int
	logAppendTime   bool
	deletes         bool // cleanup.policy includes delete
	compacts        bool // cleanup.policy includes compact
	segmentBytes    int64
	segmentMs       int64
	retentionMs     int64
	retentionBytes  int64
	// Compaction (compaction.go).
	minCleanableDirtyRatio float64
	minCompactionLagMs     int64
	maxCompactionLagMs     int64
	deleteRetentionMs      int64
}

// parseTopicPolicy reads the enforced configs from the topic's full set
// (its own over the defaults).
func parseTopicPolicy(cfgs map[string]string) *topicPolicy {
	pol := &topicPolicy{
		maxMessageBytes:        int(configInt(cfgs, "max.message.bytes", 0)),
		minISR:                 int(configInt(cfgs, "min.insync.replicas", 1)),
		logAppendTime:          cfgs["message.timestamp.type"] == "LogAppendTime",
		deletes:                true,
		segmentBytes:           configInt(cfgs, "segment.bytes", 0),
		segmentMs:              configInt(cfgs, "segment.ms", 604_800_000),
		retentionMs:            configInt(cfgs, "retention.ms", 604_800_000),
		retentionBytes:         configInt(cfgs, "retention.bytes", -1),
		minCleanableDirtyRatio: 0.5,
		minCompactionLagMs:     configInt(cfgs, "min.compaction.lag.ms", 0),
		maxCompactionLagMs:     configInt(cfgs, "max.compaction.lag.ms", math.MaxInt64),
		deleteRetentionMs:      configInt(cfgs, "delete.retention.ms", 86_400_000),
	}
	if v, ok := cfgs["cleanup.policy"]; ok {
		l := splitList(strings.ToLower(v))
		pol.deletes, pol.compacts = slices.Contains(l, "delete"), slices.Contains(l, "compact")
	}
	if v, ok := cfgs["min.cleanable.dirty.ratio"]; ok {
		if f, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil {
			pol.minCleanableDirtyRatio = f
		}
	}
	return pol
}

// topicPolicy is the enforced policy of topic (the defaults' for a topic
// not in the metadata). Internal topics never delete by retention: Kafka
// compacts them; Gregor keeps them whole (their coordinators replay them).
func (b *Broker) topicPolicy(topic string) *topicPolicy {
	t, ok := b.meta.st.Topics[topic]
	if !ok {
		return parseTopicPolicy(b.topicDefaults())
	}
	if t.policy == nil {
		all := b.topicDefaults()
		maps.Copy(all, t.Configs)
		t.policy = parseTopicPolicy(all)
		if isInternalTopic(topic) {
			t.policy.deletes, t.policy.compacts = false, false
		}
	}
	return t.policy
}

// maxMessageBytes is a topic's max.message.bytes, or the broker's.
func (b *Broker) maxMessageBytes(pol *topicPolicy) int {
	if pol.maxMessageBytes > 0 {
		return pol.maxMessageBytes
	}
	return int(b.cfg.MaxMessageBytes)
}
