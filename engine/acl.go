package engine

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// ACL bindings in the metadata group (issue 12 part 3), as Kafka keeps
// them with KRaft: every broker applies the same set, CreateAcls
// (30_create_acls.go) and DeleteAcls (31_delete_acls.go) propose changes,
// DescribeAcls (29_describe_acls.go) reads the applied set, and the
// authorizer (authorizer.go) consults it on every request when it is on.

// Kafka's codes for resource types, pattern types, operations and
// permissions (org.apache.kafka.common.resource and .acl).
const (
	aclAny     int8 = 1 // every enum: the filter's "any"
	aclUnknown int8 = 0

	resTopic           int8 = 2
	resGroup           int8 = 3
	resCluster         int8 = 4
	resTransactionalID int8 = 5
	resDelegationToken int8 = 6
	resUser            int8 = 7

	patMatch    int8 = 2 // filters only
	patLiteral  int8 = 3
	patPrefixed int8 = 4

	opAll             int8 = 2
	opRead            int8 = 3
	opWrite           int8 = 4
	opCreate          int8 = 5
	opDelete          int8 = 6
	opAlter           int8 = 7
	opDescribe        int8 = 8
	opClusterAction   int8 = 9
	opDescribeConfigs int8 = 10
	opAlterConfigs    int8 = 11
	opIdempotentWrite int8 = 12
	opCreateTokens    int8 = 13
	opDescribeTokens  int8 = 14

	permDeny  int8 = 2
	permAllow int8 = 3
)

// clusterResourceName is the one name of the Cluster resource.
const clusterResourceName = "kafka-cluster"

// Wildcards: a literal resource named "*" matches every name of its
// type; an entry's principal "User:*" every principal, its host "*"
// every host.
const (
	aclWildcardResource  = "*"
	aclWildcardPrincipal = "User:*"
	aclWildcardHost      = "*"
)

// ACL is one binding: a resource pattern and an access control entry.
type ACL struct {
	ResourceType int8   `json:"rt"`
	Name         string `json:"n"`
	Pattern      int8   `json:"pt"`
	Principal    string `json:"p"`
	Host         string `json:"h"`
	Operation    int8   `json:"o"`
	Permission   int8   `json:"pm"`
}

// compareACL orders bindings by resource, then entry: the order
// metaState.ACLs is kept in, and DescribeAcls answers in.
func compareACL(a, b ACL) int {
	// Early returns, not cmp.Or: the authorizer's binary searches call it
	// on every check, and cmp.Or would compare every field every time.
	if c := cmp.Compare(a.ResourceType, b.ResourceType); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Pattern, b.Pattern); c != 0 {
		return c
	}
	if c := strings.Compare(a.Name, b.Name); c != 0 {
		return c
	}
	if c := strings.Compare(a.Principal, b.Principal); c != 0 {
		return c
	}
	if c := strings.Compare(a.Host, b.Host); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Operation, b.Operation); c != 0 {
		return c
	}
	return cmp.Compare(a.Permission, b.Permission)
}

// aclFilter selects bindings, as Kafka's AclBindingFilter: a nil string
// or an ANY code matches everything; pattern MATCH matches the bindings
// that would apply to the named resource (literal of that name, the
// literal "*", prefixes of it).
type aclFilter struct {
	ResourceType int8    `json:"rt"`
	Name         *string `json:"n,omitempty"`
	Pattern      int8    `json:"pt"`
	Principal    *string `json:"p,omitempty"`
	Host         *string `json:"h,omitempty"`
	Operation    int8    `json:"o"`
	Permission   int8    `json:"pm"`
}

// matches is Kafka's ResourcePatternFilter.matches and
// AccessControlEntryFilter.matches: entries compare exactly, no
// wildcard expansion.
func (f *aclFilter) matches(a ACL) bool {
	if f.ResourceType != aclAny && f.ResourceType != a.ResourceType {
		return false
	}
	if f.Pattern != aclAny && f.Pattern != patMatch && f.Pattern != a.Pattern {
		return false
	}
	if f.Name != nil {
		switch {
		case f.Pattern == aclAny || f.Pattern == a.Pattern:
			if *f.Name != a.Name {
				return false
			}
		case a.Pattern == patLiteral: // MATCH
			if *f.Name != a.Name && a.Name != aclWildcardResource {
				return false
			}
		case a.Pattern == patPrefixed: // MATCH
			if !strings.HasPrefix(*f.Name, a.Name) {
				return false
			}
		default:
			return false
		}
	}
	if f.Principal != nil && *f.Principal != a.Principal {
		return false
	}
	if f.Host != nil && *f.Host != a.Host {
		return false
	}
	if f.Operation != aclAny && f.Operation != a.Operation {
		return false
	}
	return f.Permission == aclAny || f.Permission == a.Permission
}

// validFilter checks a DescribeAcls or DeleteAcls filter as Kafka does:
// no UNKNOWN anywhere; "" otherwise the reason.
func validFilter(f *aclFilter) string {
	switch {
	case f.ResourceType < resAnyFilter || f.ResourceType > resUser:
		return "Invalid resource type"
	case f.Pattern < aclAny || f.Pattern > patPrefixed:
		return "Invalid pattern type"
	case f.Operation < aclAny || f.Operation > opDescribeTokens:
		return "Invalid operation"
	case f.Permission < aclAny || f.Permission > permAllow:
		return "Invalid permission type"
	}
	return ""
}

const resAnyFilter = aclAny

// validBinding checks a new binding as Kafka's CreateAcls does; "" if
// it may be stored, otherwise the reason (INVALID_REQUEST).
func validBinding(a ACL) string {
	switch {
	case a.ResourceType < resTopic || a.ResourceType > resUser:
		return fmt.Sprintf("Invalid resource type %d", a.ResourceType)
	case a.Pattern != patLiteral && a.Pattern != patPrefixed:
		return fmt.Sprintf("Invalid pattern type %d", a.Pattern)
	case a.Operation < opAll || a.Operation > opDescribeTokens:
		return fmt.Sprintf("Invalid operation %d", a.Operation)
	case a.Permission != permDeny && a.Permission != permAllow:
		return fmt.Sprintf("Invalid permission type %d", a.Permission)
	case a.Name == "":
		return "Invalid empty resource name"
	case a.ResourceType == resCluster && a.Name != clusterResourceName:
		return "The only valid name for the CLUSTER resource is " + clusterResourceName
	case !validPrincipal(a.Principal):
		return "Could not parse principal from `" + a.Principal + "` (no colon is present separating the principal type from the principal name)"
	case a.Host == "":
		return "Invalid empty host"
	}
	return ""
}

// validPrincipal: Kafka's "Type:name" form.
func validPrincipal(p string) bool {
	typ, _, ok := strings.Cut(p, ":")
	return ok && typ != ""
}

// aclCmd changes the ACL set: Create adds bindings (already present:
// no change), then each filter of Delete removes what it matches of
// what is left. The proposer validated both.
type aclCmd struct {
	Create []ACL       `json:",omitempty"`
	Delete []aclFilter `json:",omitempty"`
}

// applyACL applies c; the result's deleted holds, per filter of Delete,
// the bindings it removed (a binding two filters match is reported by
// the first).
func (m *metaSM) applyACL(c *aclCmd) metaResult {
	st := &m.st
	for _, a := range c.Create {
		if i, found := slices.BinarySearchFunc(st.ACLs, a, compareACL); !found {
			st.ACLs = slices.Insert(st.ACLs, i, a)
		}
	}
	var res metaResult
	for _, f := range c.Delete {
		var gone []ACL
		st.ACLs = slices.DeleteFunc(st.ACLs, func(a ACL) bool {
			if f.matches(a) {
				gone = append(gone, a)
				return true
			}
			return false
		})
		res.deletedACLs = append(res.deletedACLs, gone)
	}
	if len(st.ACLs) == 0 {
		st.ACLs = nil
	}
	return res
}
