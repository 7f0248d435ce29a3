package engine

import (
	"sort"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// The authorizer (issue 12 part 3): Kafka's StandardAuthorizer
// semantics over the ACL bindings of the metadata group.
//
//   - Off unless Config.Authorizer (Kafka: authorizer.class.name set):
//     then every request is allowed, as before ACLs existed.
//   - A request handled without a client (Broker.Handle: the simulator,
//     the engine's own tests) carries no principal and is not
//     authorized; HandleClient always has one ("User:ANONYMOUS" at
//     least). Broker-to-broker operations (peer.go) and raft never pass
//     through the handlers.
//   - A super user (Config.SuperUsers, Kafka's super.users) may do
//     everything.
//   - The bindings that apply to a resource are its type's literal
//     bindings of that name, the literal "*", and the prefixed ones whose
//     prefix starts the name. Of those, the ones for the principal (or
//     "User:*") and host (or "*") decide: a DENY for the operation (or
//     All) refuses; else an ALLOW for it (or All, or an operation that
//     implies it: Describe by Read, Write, Delete and Alter;
//     DescribeConfigs by AlterConfigs) allows; else refused.
//   - A resource no binding applies to at all (whatever its principal,
//     host or operation) is allowed only with
//     Config.AllowEveryoneIfNoACLFound (allow.everyone.if.no.acl.found,
//     default false).

// authzConfig is what the authorizer needs of the broker's
// configuration.
type authzConfig struct {
	superUsers           map[string]bool
	allowEveryoneIfNoACL bool
}

// authorize decides one request: may principal, from host, do op on the
// resource of type rtype named name, given the ACL bindings acls, sorted
// by compareACL (as metaState.ACLs is)? It is a pure function of its
// arguments. The bindings that apply are found by binary search: the
// literal name, the literal "*", and each prefix of the name among the
// type's prefixed bindings, so a check costs O(len(name) log len(acls))
// at worst, not a scan.
func authorize(acls []ACL, cfg authzConfig, principal, host string, op, rtype int8, name string) bool {
	if cfg.superUsers[principal] {
		return true
	}
	found, allowed, denied := false, false, false
	// first is the index of the first binding at or after (rtype, pat,
	// n) in compareACL's order, within acls[lo:hi].
	first := func(lo, hi int, pat int8, n string) int {
		return lo + sort.Search(hi-lo, func(j int) bool {
			a := &acls[lo+j]
			if a.ResourceType != rtype {
				return a.ResourceType > rtype
			}
			if a.Pattern != pat {
				return a.Pattern > pat
			}
			return a.Name >= n
		})
	}
	// block looks at the bindings of one resource pattern, from i.
	block := func(i int, pat int8, n string) {
		for ; i < len(acls); i++ {
			a := &acls[i]
			if a.ResourceType != rtype || a.Pattern != pat || a.Name != n {
				return
			}
			found = true
			if a.Principal != principal && a.Principal != aclWildcardPrincipal {
				continue
			}
			if a.Host != host && a.Host != aclWildcardHost {
				continue
			}
			switch a.Permission {
			case permDeny:
				if a.Operation == op || a.Operation == opAll {
					denied = true
				}
			case permAllow:
				if aclOpImplies(a.Operation, op) {
					allowed = true
				}
			}
		}
	}
	n := len(acls)
	block(first(0, n, patLiteral, name), patLiteral, name)
	if name != aclWildcardResource {
		block(first(0, n, patLiteral, aclWildcardResource), patLiteral, aclWildcardResource)
	}
	// The type's prefixed bindings, if any: one search per prefix of the
	// name among them.
	lo := first(0, n, patPrefixed, "")
	hi := first(lo, n, patPrefixed+1, "")
	for l := 1; l <= len(name) && lo < hi && !denied; l++ {
		block(first(lo, hi, patPrefixed, name[:l]), patPrefixed, name[:l])
	}
	switch {
	case denied:
		return false
	case !found:
		return cfg.allowEveryoneIfNoACL
	}
	return allowed
}

// aclOpImplies: does an ALLOW of granted allow op?
func aclOpImplies(granted, op int8) bool {
	if granted == op || granted == opAll {
		return true
	}
	switch op {
	case opDescribe:
		return granted == opRead || granted == opWrite || granted == opDelete || granted == opAlter
	case opDescribeConfigs:
		return granted == opAlterConfigs
	}
	return false
}

// authorized reports whether the client of the request being handled may
// do op on the resource; always true when the authorizer is off or the
// request came from no client.
func (b *Broker) authorized(op, rtype int8, name string) bool {
	if !b.cfg.Authorizer || b.reqClient.principal == "" {
		return true
	}
	return authorize(b.meta.st.ACLs, b.authz, b.reqClient.principal, strings.TrimPrefix(b.reqClient.host, "/"), op, rtype, name)
}

// authorizedCluster is authorized on the Cluster resource.
func (b *Broker) authorizedCluster(op int8) bool {
	return b.authorized(op, resCluster, clusterResourceName)
}

// authorizer returns a check of op on resources of type rtype by name,
// each name decided once. It captures the principal of the request being
// handled, so it may be called from the request's later callbacks too.
func (b *Broker) authorizer(op, rtype int8) func(name string) bool {
	if !b.cfg.Authorizer || b.reqClient.principal == "" {
		return func(string) bool { return true }
	}
	principal, host := b.reqClient.principal, strings.TrimPrefix(b.reqClient.host, "/")
	seen := map[string]bool{}
	return func(name string) bool {
		ok, done := seen[name]
		if !done {
			ok = authorize(b.meta.st.ACLs, b.authz, principal, host, op, rtype, name)
			seen[name] = ok
		}
		return ok
	}
}

// authorizeAny is Kafka's Authorizer.authorizeByResourceType: may the
// principal do op (exactly, or All) on at least one resource of type
// rtype? As Kafka's default implementation: allowed if op is allowed on
// a resource named "hardcode" (so for a super user, or when no binding
// covers it and allow.everyone.if.no.acl.found is on); denied if a DENY
// on the literal "*" applies; allowed if an ALLOW on the literal "*"
// does; else allowed if some ALLOW is not dominated by a DENY (a literal
// by the same literal or a prefix of it, a prefix by a prefix of it).
// InitProducerId without a transactional id asks it for Write on topics.
func authorizeAny(acls []ACL, cfg authzConfig, principal, host string, op, rtype int8) bool {
	if authorize(acls, cfg, principal, host, op, rtype, "hardcode") {
		return true
	}
	var allows []*ACL
	denyLiteral, denyPrefixed := map[string]bool{}, map[string]bool{}
	wildcardAllow := false
	for i := range acls {
		a := &acls[i]
		if a.ResourceType != rtype || (a.Operation != op && a.Operation != opAll) ||
			(a.Principal != principal && a.Principal != aclWildcardPrincipal) || (a.Host != host && a.Host != aclWildcardHost) {
			continue
		}
		switch {
		case a.Permission == permDeny && a.Pattern == patLiteral && a.Name == aclWildcardResource:
			return false
		case a.Permission == permDeny && a.Pattern == patLiteral:
			denyLiteral[a.Name] = true
		case a.Permission == permDeny:
			denyPrefixed[a.Name] = true
		case a.Pattern == patLiteral && a.Name == aclWildcardResource:
			wildcardAllow = true
		default:
			allows = append(allows, a)
		}
	}
	if wildcardAllow {
		return true
	}
	for _, al := range allows {
		if al.Pattern == patLiteral && denyLiteral[al.Name] {
			continue
		}
		dominated := false
		for l := 1; l <= len(al.Name) && !dominated; l++ {
			dominated = denyPrefixed[al.Name[:l]]
		}
		if !dominated {
			return true
		}
	}
	return false
}

// authorizedAny is authorizeAny for the client of the request being
// handled.
func (b *Broker) authorizedAny(op, rtype int8) bool {
	if !b.cfg.Authorizer || b.reqClient.principal == "" {
		return true
	}
	return authorizeAny(b.meta.st.ACLs, b.authz, b.reqClient.principal, strings.TrimPrefix(b.reqClient.host, "/"), op, rtype)
}

// configAuthorized checks op (DescribeConfigs or AlterConfigs) on a
// config resource as Kafka does: a topic's on the topic, a broker's (and
// anything else) on the cluster. nil if allowed, else the error code.
func (b *Broker) configAuthorized(op int8, typ kmsg.ConfigResourceType, name string) *kerr.Error {
	if typ == kmsg.ConfigResourceTypeTopic {
		if !b.authorized(op, resTopic, name) {
			return kerr.TopicAuthorizationFailed
		}
		return nil
	}
	if !b.authorizedCluster(op) {
		return kerr.ClusterAuthorizationFailed
	}
	return nil
}
