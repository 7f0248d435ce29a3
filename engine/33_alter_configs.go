package engine

import (
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// AlterConfigs, versions 0-2.
//
// Behavior:
//   - Topics (resource type 2): the topic's configs become exactly the
//     ones given (those not named return to their defaults), each checked
//     against the catalog (topic_configs.go): an unknown name or a bad
//     value is INVALID_CONFIG with a message naming the key and the
//     reason, and nothing changes; a null value INVALID_REQUEST. The
//     change is a metadata log entry, answered once it applies; every
//     replica applies it from the entry. An unknown topic:
//     UNKNOWN_TOPIC_OR_PARTITION; an empty name INVALID_REQUEST and a name
//     no topic can have INVALID_TOPIC_EXCEPTION, as Kafka's controller
//     (IncrementalAlterConfigs too).
//   - ValidateOnly checks without changing.
//   - A resource named twice in the request: INVALID_REQUEST for each.
//   - Brokers (resource type 4) with an empty name: the cluster-wide
//     defaults of the topic configs, by their broker names
//     (log.retention.ms, log.cleanup.policy, message.max.bytes...),
//     validated like the topic configs; any other broker config is
//     static (INVALID_CONFIG). A broker id: INVALID_REQUEST (no per-broker
//     overrides). Other resource types: INVALID_REQUEST.

func init() { regKey(kmsg.AlterConfigs, 0, 2, (*Broker).handleAlterConfigs) }

func (b *Broker) handleAlterConfigs(token uint64, r *kmsg.AlterConfigsRequest) {
	resp := r.ResponseKind().(*kmsg.AlterConfigsResponse)
	var reqs []configChange
	for _, rr := range r.Resources {
		c := configChange{typ: rr.ResourceType, name: rr.ResourceName, replace: true}
		for _, cfg := range rr.Configs {
			if cfg.Value == nil {
				c.err, c.msg = kerr.InvalidRequest, fmt.Sprintf("config %q: null value", cfg.Name)
				break
			}
			c.ops = append(c.ops, configOp{Name: cfg.Name, Op: configSet, Value: *cfg.Value})
		}
		reqs = append(reqs, c)
	}
	b.changeConfigs(reqs, r.ValidateOnly, func(results []configChange) {
		for _, c := range results {
			out := kmsg.NewAlterConfigsResponseResource()
			out.ResourceType, out.ResourceName = c.typ, c.name
			if c.err != nil {
				out.ErrorCode, out.ErrorMessage = c.err.Code, kmsg.StringPtr(c.msg)
			}
			resp.Resources = append(resp.Resources, out)
		}
		b.respond(token, resp)
	})
}

// configChange is one resource's change of AlterConfigs or
// IncrementalAlterConfigs, and its outcome.
type configChange struct {
	typ     kmsg.ConfigResourceType
	name    string
	replace bool
	ops     []configOp
	err     *kerr.Error // set when the change is refused
	msg     string
}

// changeConfigs validates each change and proposes the valid ones (unless
// validateOnly); done gets them back with their outcomes once all have
// applied or failed.
func (b *Broker) changeConfigs(changes []configChange, validateOnly bool, done func([]configChange)) {
	seen := map[[2]string]int{}
	for _, c := range changes {
		seen[[2]string{fmt.Sprint(c.typ), c.name}]++
	}
	left := 1
	release := func() {
		if left--; left == 0 {
			done(changes)
		}
	}
	for i := range changes {
		c := &changes[i]
		switch {
		case c.err != nil:
			continue
		case b.configAuthorized(opAlterConfigs, c.typ, c.name) != nil:
			c.err, c.msg = b.configAuthorized(opAlterConfigs, c.typ, c.name), "Authorization failed."
			continue
		case seen[[2]string{fmt.Sprint(c.typ), c.name}] > 1:
			c.err, c.msg = kerr.InvalidRequest, "resource named more than once in the request"
			continue
		case c.typ == kmsg.ConfigResourceTypeBroker:
			b.changeBrokerConfigs(c, validateOnly, &left, release)
			continue
		case c.typ != kmsg.ConfigResourceTypeTopic:
			c.err, c.msg = kerr.InvalidRequest, fmt.Sprintf("configs of resource type %d cannot be changed", c.typ)
			continue
		}
		// Kafka's controller validates the name before looking it up.
		if c.name == "" {
			c.err, c.msg = kerr.InvalidRequest, "Default topic resources are not allowed."
			continue
		}
		if err := validTopicName(c.name); err != nil {
			c.err, c.msg = kerr.InvalidTopicException, err.Error()
			continue
		}
		t, ok := b.meta.st.Topics[c.name]
		if !ok {
			c.err, c.msg = kerr.UnknownTopicOrPartition, fmt.Sprintf("unknown topic %q", c.name)
			continue
		}
		if err := validateConfigOps(c.ops); err != nil {
			c.err, c.msg = kerr.InvalidConfig, err.Error()
			continue
		}
		// What the topic would have: every value valid (an APPEND or
		// SUBTRACT changes a list).
		for name, v := range applyConfigOps(t.Configs, c.replace, c.ops) {
			if err := validateTopicConfig(name, &v); err != nil {
				c.err, c.msg = kerr.InvalidConfig, err.Error()
				break
			}
		}
		if c.err != nil || validateOnly {
			continue
		}
		left++
		b.proposeMeta(metaCmd{AlterConfigs: &alterConfigsCmd{Topic: c.name, Replace: c.replace, Ops: c.ops}}, 30_000, c.outcome(release))
	}
	release()
}

// validateConfigOps checks each operation on its own: a known name, a
// value for SET, APPEND and SUBTRACT (a valid one for SET), lists only for
// APPEND and SUBTRACT, and no name twice.
func validateConfigOps(ops []configOp) error {
	return validateOps(ops, func(name string) (*topicConfig, error) {
		if tc, ok := topicConfigByName[name]; ok {
			return tc, nil
		}
		return nil, fmt.Errorf("unknown topic config %q", name)
	})
}

// validateOps is validateConfigOps with the catalog lookup given.
func validateOps(ops []configOp, lookup func(name string) (*topicConfig, error)) error {
	names := map[string]bool{}
	for _, o := range ops {
		if names[o.Name] {
			return fmt.Errorf("config %q named more than once", o.Name)
		}
		names[o.Name] = true
		tc, err := lookup(o.Name)
		if err != nil {
			return err
		}
		switch o.Op {
		case configSet:
			if err := tc.validate(o.Name, &o.Value); err != nil {
				return err
			}
		case configDelete:
		case configAppend, configSubtract:
			if tc.typ != kmsg.ConfigTypeList {
				return fmt.Errorf("config %q is not a list: APPEND and SUBTRACT apply to lists only", o.Name)
			}
		default:
			return fmt.Errorf("config %q: unknown operation %d", o.Name, o.Op)
		}
	}
	return nil
}

// changeBrokerConfigs validates and proposes a change of the cluster-wide
// broker defaults (topic_configs.go): the broker resource with an empty
// name. A broker's own id names a per-broker override, which Gregor does
// not keep (every broker must enforce the same defaults):
// INVALID_REQUEST.
func (b *Broker) changeBrokerConfigs(c *configChange, validateOnly bool, left *int, release func()) {
	if c.name != "" {
		c.err, c.msg = kerr.InvalidRequest, fmt.Sprintf("broker %q: Gregor keeps broker config changes cluster-wide: use the broker resource with an empty name", c.name)
		return
	}
	if err := validateBrokerConfigOps(c.ops); err != nil {
		c.err, c.msg = kerr.InvalidConfig, err.Error()
		return
	}
	for name, v := range applyConfigOps(b.meta.st.BrokerConfigs, c.replace, c.ops) {
		if err := brokerConfigByName[name].validate(name, &v); err != nil {
			c.err, c.msg = kerr.InvalidConfig, err.Error()
			return
		}
	}
	if validateOnly {
		return
	}
	*left++
	b.proposeMeta(metaCmd{AlterConfigs: &alterConfigsCmd{Broker: true, Replace: c.replace, Ops: c.ops}}, 30_000, c.outcome(release))
}

// outcome is the callback of c's metadata proposal: it records the
// proposal's error, if any, and releases the request.
func (c *configChange) outcome(release func()) func(metaResult) {
	return func(res metaResult) {
		if res.err != nil {
			var ke *kerr.Error
			if !errors.As(res.err, &ke) {
				ke = kerr.UnknownServerError
			}
			c.err, c.msg = ke, res.err.Error()
		}
		release()
	}
}
