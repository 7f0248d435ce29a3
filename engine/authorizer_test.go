package engine

import (
	"fmt"
	"slices"
	"testing"

	"pgregory.net/rapid"
)

// refAuthorize is a deliberately simple statement of Kafka's rules, for
// TestAuthorizeMatchesReference: first the bindings on the resource,
// then the principal's, then deny, then allow with the implied
// operations spelled out as lists.
func refAuthorize(acls []ACL, superUsers []string, allowIfNone bool, principal, host string, op, rtype int8, name string) bool {
	if slices.Contains(superUsers, principal) {
		return true
	}
	var onResource []ACL
	for _, a := range acls {
		if a.ResourceType != rtype {
			continue
		}
		literal := a.Pattern == patLiteral && (a.Name == name || a.Name == "*")
		prefixed := a.Pattern == patPrefixed && len(a.Name) <= len(name) && name[:len(a.Name)] == a.Name
		if literal || prefixed {
			onResource = append(onResource, a)
		}
	}
	if len(onResource) == 0 {
		return allowIfNone
	}
	var mine []ACL
	for _, a := range onResource {
		if (a.Principal == principal || a.Principal == "User:*") && (a.Host == host || a.Host == "*") {
			mine = append(mine, a)
		}
	}
	for _, a := range mine {
		if a.Permission == permDeny && (a.Operation == op || a.Operation == opAll) {
			return false
		}
	}
	allowedBy := []int8{op, opAll}
	switch op {
	case opDescribe:
		allowedBy = []int8{opDescribe, opRead, opWrite, opDelete, opAlter, opAll}
	case opDescribeConfigs:
		allowedBy = []int8{opDescribeConfigs, opAlterConfigs, opAll}
	}
	for _, a := range mine {
		if a.Permission == permAllow && slices.Contains(allowedBy, a.Operation) {
			return true
		}
	}
	return false
}

// Small alphabets, so random bindings and requests collide often:
// names that prefix each other, the wildcards, a second principal type.
var (
	genName      = rapid.SampledFrom([]string{"a", "ab", "abc", "b", "*", "x"})
	genPrincipal = rapid.SampledFrom([]string{"User:alice", "User:bob", "User:*", "Group:alice"})
	genHost      = rapid.SampledFrom([]string{"10.0.0.1", "10.0.0.2", "*"})
	genOp        = rapid.SampledFrom([]int8{opAll, opRead, opWrite, opDelete, opAlter, opDescribe, opDescribeConfigs, opAlterConfigs, opCreate})
	genRType     = rapid.SampledFrom([]int8{resTopic, resGroup})
)

func genACL() *rapid.Generator[ACL] {
	return rapid.Custom(func(t *rapid.T) ACL {
		return ACL{
			ResourceType: genRType.Draw(t, "rtype"),
			Name:         genName.Draw(t, "name"),
			Pattern:      rapid.SampledFrom([]int8{patLiteral, patPrefixed}).Draw(t, "pattern"),
			Principal:    genPrincipal.Draw(t, "principal"),
			Host:         genHost.Draw(t, "host"),
			Operation:    genOp.Draw(t, "op"),
			Permission:   rapid.SampledFrom([]int8{permDeny, permAllow}).Draw(t, "perm"),
		}
	})
}

// TestAuthorizeMatchesReference: authorize agrees with refAuthorize on
// random ACL sets and configurations, for every request over small
// alphabets.
func TestAuthorizeMatchesReference(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		acls := rapid.SliceOfN(genACL(), 0, 12).Draw(t, "acls")
		// authorize takes the bindings as the metadata keeps them.
		slices.SortFunc(acls, compareACL)
		acls = slices.Compact(acls)
		supers := rapid.SliceOfN(rapid.SampledFrom([]string{"User:alice", "User:bob", "User:carol"}), 0, 1).Draw(t, "super")
		allowIfNone := rapid.Bool().Draw(t, "allowIfNone")
		cfg := authzConfig{superUsers: map[string]bool{}, allowEveryoneIfNoACL: allowIfNone}
		for _, u := range supers {
			cfg.superUsers[u] = true
		}
		// Every request over the small alphabets: the names include
		// extensions of the bindings' names, so prefixes are exercised.
		names := []string{"a", "ab", "abc", "abd", "b", "x", "*", "xa"}
		for _, a := range acls {
			names = append(names, a.Name+"c")
		}
		for _, principal := range []string{"User:alice", "User:bob", "User:carol", "Group:alice"} {
			for _, host := range []string{"10.0.0.1", "10.0.0.2"} {
				for _, op := range []int8{opRead, opWrite, opDelete, opAlter, opDescribe, opDescribeConfigs, opAlterConfigs, opCreate} {
					for _, rtype := range []int8{resTopic, resGroup} {
						for _, name := range names {
							got := authorize(acls, cfg, principal, host, op, rtype, name)
							want := refAuthorize(acls, supers, allowIfNone, principal, host, op, rtype, name)
							if got != want {
								t.Fatalf("authorize(%s@%s op %d on %d/%q) = %v, the reference says %v", principal, host, op, rtype, name, got, want)
							}
							// Adding an exact DENY refuses, unless the
							// principal is a super user.
							deny := ACL{ResourceType: rtype, Name: name, Pattern: patLiteral, Principal: principal, Host: host, Operation: op, Permission: permDeny}
							withDeny := append(slices.Clone(acls), deny)
							slices.SortFunc(withDeny, compareACL)
							if authorize(withDeny, cfg, principal, host, op, rtype, name) != cfg.superUsers[principal] {
								t.Fatalf("an exact DENY did not decide %s@%s op %d on %d/%q", principal, host, op, rtype, name)
							}
						}
					}
				}
			}
		}
	})
}

// TestAuthorizeAnyMatchesWitnesses: authorizeAny (Kafka's
// authorizeByResourceType) allows an operation on topics exactly when
// authorize allows it on the probe "hardcode" (with implied operations)
// or, counting only bindings of that very operation or All, on some
// topic: a literal binding's name, or a name only a prefixed binding
// covers (its prefix and a byte no generated name has). Without allow.everyone.if.no.acl.found: with
// it, Kafka's probe may refuse while an uncovered name is open.
func TestAuthorizeAnyMatchesWitnesses(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		acls := rapid.SliceOfN(genACL(), 0, 12).Draw(t, "acls")
		slices.SortFunc(acls, compareACL)
		acls = slices.Compact(acls)
		cfg := authzConfig{}
		witnesses := []string{"hardcode"}
		for _, a := range acls {
			witnesses = append(witnesses, a.Name, a.Name+"\x01")
		}
		for _, principal := range []string{"User:alice", "User:bob"} {
			for _, host := range []string{"10.0.0.1", "10.0.0.2"} {
				for _, op := range []int8{opWrite, opRead, opDescribe} {
					// authorizeByResourceType matches the operation exactly
					// (or All): no implied Describe, so the witnesses are
					// asked without the ALLOWs that only imply it.
					exact := acls
					if op == opDescribe {
						exact = slices.DeleteFunc(slices.Clone(acls), func(a ACL) bool {
							return a.Permission == permAllow && a.Operation != opDescribe && a.Operation != opAll
						})
					}
					// The probe is an ordinary check, implications and all.
					want := authorize(acls, cfg, principal, host, op, resTopic, "hardcode")
					for _, n := range witnesses[1:] {
						want = want || authorize(exact, cfg, principal, host, op, resTopic, n)
					}
					if got := authorizeAny(acls, cfg, principal, host, op, resTopic); got != want {
						t.Fatalf("authorizeAny(%s@%s op %d) = %v; authorize on some topic: %v", principal, host, op, got, want)
					}
				}
			}
		}
	})
}

// TestAuthorizeExamples pins the rules that are easy to get wrong.
func TestAuthorizeExamples(t *testing.T) {
	cfg := authzConfig{superUsers: map[string]bool{"User:admin": true}}
	allow := func(rtype int8, name string, pat int8, p string, op int8) ACL {
		return ACL{ResourceType: rtype, Name: name, Pattern: pat, Principal: p, Host: "*", Operation: op, Permission: permAllow}
	}
	acls := []ACL{
		allow(resTopic, "orders", patLiteral, "User:alice", opRead),
		allow(resTopic, "logs-", patPrefixed, "User:bob", opAll),
		allow(resGroup, "*", patLiteral, "User:*", opRead),
		allow(resTopic, "cfg", patLiteral, "User:alice", opAlterConfigs),
		{ResourceType: resTopic, Name: "orders", Pattern: patLiteral, Principal: "User:alice", Host: "10.0.0.9", Operation: opRead, Permission: permDeny},
	}
	slices.SortFunc(acls, compareACL)
	for _, c := range []struct {
		principal, host string
		op, rtype       int8
		name            string
		want            bool
	}{
		{"User:alice", "10.0.0.1", opRead, resTopic, "orders", true},
		{"User:alice", "10.0.0.1", opDescribe, resTopic, "orders", true}, // implied by Read
		{"User:alice", "10.0.0.1", opWrite, resTopic, "orders", false},
		{"User:alice", "10.0.0.9", opRead, resTopic, "orders", false},    // the host's DENY wins
		{"User:alice", "10.0.0.9", opDescribe, resTopic, "orders", true}, // a DENY of Read does not deny Describe
		{"User:bob", "10.0.0.1", opDelete, resTopic, "logs-app", true},
		{"User:bob", "10.0.0.1", opDelete, resTopic, "logs", false},
		{"User:carol", "10.0.0.1", opRead, resGroup, "any-group", true},
		{"User:carol", "10.0.0.1", opRead, resTopic, "unguarded", false}, // no ACL: refused by default
		{"User:admin", "10.0.0.9", opRead, resTopic, "orders", true},
		{"User:alice", "10.0.0.1", opDescribeConfigs, resTopic, "cfg", true},
		{"User:alice", "10.0.0.1", opDescribe, resTopic, "cfg", false},
	} {
		if got := authorize(acls, cfg, c.principal, c.host, c.op, c.rtype, c.name); got != c.want {
			t.Errorf("%s@%s op %d on %d/%s: %v, want %v", c.principal, c.host, c.op, c.rtype, c.name, got, c.want)
		}
	}
	cfg.allowEveryoneIfNoACL = true
	if !authorize(acls, cfg, "User:carol", "h", opRead, resTopic, "unguarded") || authorize(acls, cfg, "User:carol", "h", opRead, resTopic, "orders") {
		t.Error("allow.everyone.if.no.acl.found: only resources without any binding are open")
	}
}

// BenchmarkAuthorize: one check against 10,000 bindings (issue 12's
// "cost of an authorizer check with 10,000 ACLs"), spread over the four
// resource types and 1,000 principals: all literal, or one in ten
// prefixed (a check then searches once per byte of the name).
func BenchmarkAuthorize(b *testing.B) {
	for _, prefixedEvery := range []int{0, 10} {
		var acls []ACL
		for i := range 10_000 {
			a := ACL{ResourceType: resTopic + int8(i%4), Name: fmt.Sprintf("topic-%d", i), Pattern: patLiteral,
				Principal: fmt.Sprintf("User:u%d", i%1000), Host: "*", Operation: opRead, Permission: permAllow}
			if prefixedEvery > 0 && i%prefixedEvery == 0 {
				a.Pattern, a.Name = patPrefixed, fmt.Sprintf("topic-%d", i/100)
			}
			acls = append(acls, a)
		}
		slices.SortFunc(acls, compareACL)
		acls = slices.Compact(acls)
		cfg := authzConfig{superUsers: map[string]bool{}}
		name := "literal"
		if prefixedEvery > 0 {
			name = fmt.Sprintf("prefixed-1-in-%d", prefixedEvery)
		}
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				authorize(acls, cfg, "User:u7", "10.0.0.1", opRead, resTopic, "topic-4")
			}
		})
	}
}
