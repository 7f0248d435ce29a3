package engine

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// CreateAcls, versions 0-3 (v1 adds pattern types, KIP-290; v2
// flexible; v3 the same).
//
// Behavior:
//   - The valid creations of a request are proposed as one metadata log
//     entry, every broker applies it, and the answer comes once it has
//     applied on this broker, one result per creation in request order.
//     A binding that exists already is left as it is (success).
//   - Needs Alter on the Cluster when the authorizer is on:
//     CLUSTER_AUTHORIZATION_FAILED on every result otherwise.
//   - Each creation is checked as Kafka does, INVALID_REQUEST with a
//     message: resource type Topic, Group, Cluster, TransactionalId,
//     DelegationToken or User (not ANY/UNKNOWN); pattern LITERAL or
//     PREFIXED (v0 is LITERAL); an operation other than ANY/UNKNOWN;
//     permission DENY or ALLOW; a non-empty resource name, "kafka-cluster"
//     for the Cluster; a principal "Type:name"; a non-empty host.
//   - A creation with ANY for its resource type, operation or permission,
//     or ANY or MATCH for its pattern type (values only a filter has):
//     UNKNOWN_SERVER_ERROR, message null, on every result and nothing
//     created, as Kafka answers (its request handler cannot build the
//     binding and fails the whole request). UNKNOWN (0) values are
//     INVALID_REQUEST on their own result (Kafka closes the connection:
//     its request does not parse).
//   - A result that succeeds has ErrorMessage "", not null (Kafka's
//     default for the field).
//   - The metadata group unreachable: NOT_CONTROLLER or REQUEST_TIMED_OUT
//     after 30 s on every valid creation; they may still apply.

func init() {
	regKey(kmsg.CreateACLs, 0, 3, (*Broker).handleCreateACLs)
}

func (b *Broker) handleCreateACLs(token uint64, r *kmsg.CreateACLsRequest) {
	resp := r.ResponseKind().(*kmsg.CreateACLsResponse)
	resp.Results = make([]kmsg.CreateACLsResponseResult, len(r.Creations))
	for i := range resp.Results {
		resp.Results[i] = kmsg.NewCreateACLsResponseResult()
	}
	if !b.authorizedCluster(opAlter) {
		for i := range resp.Results {
			resp.Results[i].ErrorCode = kerr.ClusterAuthorizationFailed.Code
		}
		b.respond(token, resp)
		return
	}
	for _, c := range r.Creations {
		if c.ResourceType == kmsg.ACLResourceTypeAny || c.Operation == kmsg.ACLOperationAny || c.PermissionType == kmsg.ACLPermissionTypeAny ||
			c.ResourcePatternType == kmsg.ACLResourcePatternTypeAny || c.ResourcePatternType == kmsg.ACLResourcePatternTypeMatch {
			for i := range resp.Results {
				resp.Results[i].ErrorCode = kerr.UnknownServerError.Code
			}
			b.respond(token, resp)
			return
		}
	}
	var cmd aclCmd
	var valid []int
	for i, c := range r.Creations {
		a := ACL{ResourceType: int8(c.ResourceType), Name: c.ResourceName, Pattern: int8(c.ResourcePatternType),
			Principal: c.Principal, Host: c.Host, Operation: int8(c.Operation), Permission: int8(c.PermissionType)}
		if msg := validBinding(a); msg != "" {
			resp.Results[i].ErrorCode = kerr.InvalidRequest.Code
			resp.Results[i].ErrorMessage = kmsg.StringPtr(msg)
			continue
		}
		cmd.Create = append(cmd.Create, a)
		valid = append(valid, i)
		resp.Results[i].ErrorMessage = kmsg.StringPtr("")
	}
	if len(valid) == 0 {
		b.respond(token, resp)
		return
	}
	b.proposeMeta(metaCmd{ACL: &cmd}, 30_000, func(res metaResult) {
		if res.err != nil {
			code := errCode(res.err)
			for _, i := range valid {
				resp.Results[i].ErrorCode, resp.Results[i].ErrorMessage = code, nil
			}
		}
		b.respond(token, resp)
	})
}
