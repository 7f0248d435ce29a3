package engine

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// IncrementalAlterConfigs, versions 0-1.
//
// Behavior: as AlterConfigs (33_alter_configs.go), but each config names
// an operation applied to what the topic has when the metadata entry
// applies (two racing changes both take effect): SET (0) a value, DELETE
// (1) back to the default, APPEND (2) and SUBTRACT (3) elements of a list
// config (an unset list starts from its default). An unknown operation,
// APPEND or SUBTRACT on a config that is not a list, a config named twice,
// an unknown name or a value that is not valid (alone, or once applied):
// INVALID_CONFIG with a message, and nothing changes. A null value for
// SET, APPEND or SUBTRACT: INVALID_REQUEST.

func init() {
	regKey(kmsg.IncrementalAlterConfigs, 0, 1, (*Broker).handleIncrementalAlterConfigs)
}

func (b *Broker) handleIncrementalAlterConfigs(token uint64, r *kmsg.IncrementalAlterConfigsRequest) {
	resp := r.ResponseKind().(*kmsg.IncrementalAlterConfigsResponse)
	var reqs []configChange
	for _, rr := range r.Resources {
		c := configChange{typ: rr.ResourceType, name: rr.ResourceName}
		for _, cfg := range rr.Configs {
			op := configOp{Name: cfg.Name, Op: int8(cfg.Op)}
			if cfg.Value != nil {
				op.Value = *cfg.Value
			} else if op.Op != configDelete {
				c.err, c.msg = kerr.InvalidRequest, fmt.Sprintf("config %q: null value", cfg.Name)
				break
			}
			c.ops = append(c.ops, op)
		}
		reqs = append(reqs, c)
	}
	b.changeConfigs(reqs, r.ValidateOnly, func(results []configChange) {
		for _, c := range results {
			out := kmsg.NewIncrementalAlterConfigsResponseResource()
			out.ResourceType, out.ResourceName = c.typ, c.name
			if c.err != nil {
				out.ErrorCode, out.ErrorMessage = c.err.Code, kmsg.StringPtr(c.msg)
			}
			resp.Resources = append(resp.Resources, out)
		}
		b.respond(token, resp)
	})
}
