package engine

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DescribeAcls, versions 0-3 (v1 adds pattern types, KIP-290; v2
// flexible; v3 the same).
//
// Behavior:
//   - Answered from this broker's applied metadata, as Kafka's brokers
//     answer from their metadata image: the bindings the filter matches
//     (acl.go, Kafka's AclBindingFilter: ANY or null match everything,
//     MATCH every pattern that applies to the named resource; principal
//     and host compare exactly), grouped by resource pattern, sorted by
//     resource type, pattern type and name.
//   - Needs Describe on the Cluster when the authorizer is on:
//     CLUSTER_AUTHORIZATION_FAILED otherwise.
//   - A filter with an UNKNOWN (0) or out-of-range code: INVALID_REQUEST
//     (Kafka closes the connection: its request does not parse).
//   - Success has ErrorMessage "", not null: Kafka's default for the
//     field.

func init() {
	regKey(kmsg.DescribeACLs, 0, 3, (*Broker).handleDescribeACLs)
}

func (b *Broker) handleDescribeACLs(token uint64, r *kmsg.DescribeACLsRequest) {
	resp := r.ResponseKind().(*kmsg.DescribeACLsResponse)
	f := aclFilter{ResourceType: int8(r.ResourceType), Name: r.ResourceName, Pattern: int8(r.ResourcePatternType),
		Principal: r.Principal, Host: r.Host, Operation: int8(r.Operation), Permission: int8(r.PermissionType)}
	if !b.authorizedCluster(opDescribe) {
		resp.ErrorCode = kerr.ClusterAuthorizationFailed.Code
		b.respond(token, resp)
		return
	}
	if msg := validFilter(&f); msg != "" {
		resp.ErrorCode, resp.ErrorMessage = kerr.InvalidRequest.Code, kmsg.StringPtr(msg)
		b.respond(token, resp)
		return
	}
	resp.ErrorMessage = kmsg.StringPtr("")
	for _, a := range b.meta.st.ACLs { // sorted by resource first
		if !f.matches(a) {
			continue
		}
		n := len(resp.Resources)
		if n == 0 || resp.Resources[n-1].ResourceType != kmsg.ACLResourceType(a.ResourceType) ||
			resp.Resources[n-1].ResourcePatternType != kmsg.ACLResourcePatternType(a.Pattern) || resp.Resources[n-1].ResourceName != a.Name {
			res := kmsg.NewDescribeACLsResponseResource()
			res.ResourceType, res.ResourceName, res.ResourcePatternType = kmsg.ACLResourceType(a.ResourceType), a.Name, kmsg.ACLResourcePatternType(a.Pattern)
			resp.Resources = append(resp.Resources, res)
			n++
		}
		e := kmsg.NewDescribeACLsResponseResourceACL()
		e.Principal, e.Host, e.Operation, e.PermissionType = a.Principal, a.Host, kmsg.ACLOperation(a.Operation), kmsg.ACLPermissionType(a.Permission)
		resp.Resources[n-1].ACLs = append(resp.Resources[n-1].ACLs, e)
	}
	b.respond(token, resp)
}
