package engine

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DeleteAcls, versions 0-3 (v1 adds pattern types, KIP-290; v2
// flexible; v3 the same).
//
// Behavior:
//   - The valid filters of a request are proposed as one metadata log
//     entry; what each removes is decided when it applies (the
//     authoritative state), and the answer, once it has applied on this
//     broker, lists per filter the bindings it removed. A binding two
//     filters match is listed under the first.
//   - Filters match as in DescribeAcls (acl.go).
//   - Needs Alter on the Cluster when the authorizer is on:
//     CLUSTER_AUTHORIZATION_FAILED on every filter otherwise.
//   - A filter with an UNKNOWN (0) or out-of-range code: INVALID_REQUEST
//     for that filter.
//   - The metadata group unreachable: NOT_CONTROLLER or REQUEST_TIMED_OUT
//     after 30 s on every valid filter; the deletion may still apply.

func init() {
	regKey(kmsg.DeleteACLs, 0, 3, (*Broker).handleDeleteACLs)
}

func (b *Broker) handleDeleteACLs(token uint64, r *kmsg.DeleteACLsRequest) {
	resp := r.ResponseKind().(*kmsg.DeleteACLsResponse)
	resp.Results = make([]kmsg.DeleteACLsResponseResult, len(r.Filters))
	for i := range resp.Results {
		resp.Results[i] = kmsg.NewDeleteACLsResponseResult()
	}
	if !b.authorizedCluster(opAlter) {
		for i := range resp.Results {
			resp.Results[i].ErrorCode = kerr.ClusterAuthorizationFailed.Code
		}
		b.respond(token, resp)
		return
	}
	var cmd aclCmd
	var valid []int
	for i, rf := range r.Filters {
		f := aclFilter{ResourceType: int8(rf.ResourceType), Name: rf.ResourceName, Pattern: int8(rf.ResourcePatternType),
			Principal: rf.Principal, Host: rf.Host, Operation: int8(rf.Operation), Permission: int8(rf.PermissionType)}
		if msg := validFilter(&f); msg != "" {
			resp.Results[i].ErrorCode, resp.Results[i].ErrorMessage = kerr.InvalidRequest.Code, kmsg.StringPtr(msg)
			continue
		}
		cmd.Delete = append(cmd.Delete, f)
		valid = append(valid, i)
	}
	if len(valid) == 0 {
		b.respond(token, resp)
		return
	}
	b.proposeMeta(metaCmd{ACL: &cmd}, 30_000, func(res metaResult) {
		for j, i := range valid {
			if res.err != nil || j >= len(res.deletedACLs) {
				resp.Results[i].ErrorCode = errCode(res.err)
				continue
			}
			for _, a := range res.deletedACLs[j] {
				m := kmsg.NewDeleteACLsResponseResultMatchingACL()
				m.ResourceType, m.ResourceName, m.ResourcePatternType = kmsg.ACLResourceType(a.ResourceType), a.Name, kmsg.ACLResourcePatternType(a.Pattern)
				m.Principal, m.Host, m.Operation, m.PermissionType = a.Principal, a.Host, kmsg.ACLOperation(a.Operation), kmsg.ACLPermissionType(a.Permission)
				resp.Results[i].MatchingACLs = append(resp.Results[i].MatchingACLs, m)
			}
		}
		b.respond(token, resp)
	})
}
