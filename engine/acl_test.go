package engine

import (
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/cockroachdb/datadriven"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// runACL runs the ACL commands of the transcripts (testdata/acl*.txt):
//
//	create-acls [via=N] [principal=P]
//	  <type> <name> <pattern> <principal> <host> <operation> <permission>
//	  ...
//	describe-acls [via=N] [principal=P]
//	  <type> <name> <pattern> <principal> <host> <operation> <permission>
//	delete-acls [via=N] [principal=P]
//	  <filter>
//	  ...
//
// One binding or filter per input line; codes by Kafka's names (topic,
// prefixed, read, allow, any, match; case and underscores ignored) or by
// number; in a filter "-" is null (any name, principal or host); a
// creation's name "" is empty.
func (c *testCluster) runACL(t *testing.T, d *datadriven.TestData) (string, bool) {
	via := int32(argInt(t, d, "via", 1))
	switch d.Cmd {
	case "create-acls":
		req := kmsg.NewPtrCreateACLsRequest()
		for _, f := range aclLines(t, d) {
			cr := kmsg.NewCreateACLsRequestCreation()
			if f[1] == `""` {
				f[1] = ""
			}
			cr.ResourceType, cr.ResourceName, cr.ResourcePatternType = kmsg.ACLResourceType(aclCode(t, f[0], kmsg.ParseACLResourceType)), f[1], kmsg.ACLResourcePatternType(aclCode(t, f[2], kmsg.ParseACLResourcePatternType))
			cr.Principal, cr.Host = f[3], f[4]
			cr.Operation, cr.PermissionType = kmsg.ACLOperation(aclCode(t, f[5], kmsg.ParseACLOperation)), kmsg.ACLPermissionType(aclCode(t, f[6], kmsg.ParseACLPermissionType))
			req.Creations = append(req.Creations, cr)
		}
		resp, ok := c.call(via, req, 400)
		if !ok {
			return "no answer\n", true
		}
		var b strings.Builder
		for i, r := range resp.(*kmsg.CreateACLsResponse).Results {
			fmt.Fprintf(&b, "%d: %s%s\n", i, codeName(r.ErrorCode), aclMsg(r.ErrorMessage))
		}
		return b.String(), true
	case "describe-acls":
		req := kmsg.NewPtrDescribeACLsRequest()
		lines := aclLines(t, d)
		if len(lines) != 1 {
			t.Fatalf("describe-acls takes one filter")
		}
		f := lines[0]
		req.ResourceType, req.ResourceName, req.ResourcePatternType = kmsg.ACLResourceType(aclCode(t, f[0], kmsg.ParseACLResourceType)), aclNullable(f[1]), kmsg.ACLResourcePatternType(aclCode(t, f[2], kmsg.ParseACLResourcePatternType))
		req.Principal, req.Host = aclNullable(f[3]), aclNullable(f[4])
		req.Operation, req.PermissionType = kmsg.ACLOperation(aclCode(t, f[5], kmsg.ParseACLOperation)), kmsg.ACLPermissionType(aclCode(t, f[6], kmsg.ParseACLPermissionType))
		resp, ok := c.call(via, req, 60)
		if !ok {
			return "no answer\n", true
		}
		r := resp.(*kmsg.DescribeACLsResponse)
		if r.ErrorCode != 0 {
			return codeName(r.ErrorCode) + aclMsg(r.ErrorMessage) + "\n", true
		}
		var b strings.Builder
		for _, res := range r.Resources {
			fmt.Fprintf(&b, "%s %s %s\n", res.ResourceType, res.ResourcePatternType, res.ResourceName)
			for _, a := range res.ACLs {
				fmt.Fprintf(&b, "  %s@%s %s %s\n", a.Principal, a.Host, a.Operation, a.PermissionType)
			}
		}
		if b.Len() == 0 {
			return "none\n", true
		}
		return b.String(), true
	case "delete-acls":
		req := kmsg.NewPtrDeleteACLsRequest()
		for _, f := range aclLines(t, d) {
			df := kmsg.NewDeleteACLsRequestFilter()
			df.ResourceType, df.ResourceName, df.ResourcePatternType = kmsg.ACLResourceType(aclCode(t, f[0], kmsg.ParseACLResourceType)), aclNullable(f[1]), kmsg.ACLResourcePatternType(aclCode(t, f[2], kmsg.ParseACLResourcePatternType))
			df.Principal, df.Host = aclNullable(f[3]), aclNullable(f[4])
			df.Operation, df.PermissionType = kmsg.ACLOperation(aclCode(t, f[5], kmsg.ParseACLOperation)), kmsg.ACLPermissionType(aclCode(t, f[6], kmsg.ParseACLPermissionType))
			req.Filters = append(req.Filters, df)
		}
		resp, ok := c.call(via, req, 400)
		if !ok {
			return "no answer\n", true
		}
		var b strings.Builder
		for i, r := range resp.(*kmsg.DeleteACLsResponse).Results {
			fmt.Fprintf(&b, "%d: %s%s\n", i, codeName(r.ErrorCode), aclMsg(r.ErrorMessage))
			for _, m := range r.MatchingACLs {
				fmt.Fprintf(&b, "  %s %s %s %s@%s %s %s\n", m.ResourceType, m.ResourcePatternType, m.ResourceName, m.Principal, m.Host, m.Operation, m.PermissionType)
			}
		}
		return b.String(), true
	}
	return "", false
}

func aclLines(t *testing.T, d *datadriven.TestData) [][]string {
	var out [][]string
	for _, l := range strings.Split(strings.TrimSpace(d.Input), "\n") {
		f := strings.Fields(l)
		if len(f) == 0 {
			continue
		}
		if len(f) != 7 {
			t.Fatalf("%s: want 7 fields: %q", d.Pos, l)
		}
		out = append(out, f)
	}
	return out
}

func aclCode[T ~int8](t *testing.T, s string, parse func(string) (T, error)) int8 {
	if n, err := strconv.Atoi(s); err == nil {
		return int8(n)
	}
	v, err := parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return int8(v)
}

func aclNullable(s string) *string {
	if s == "-" {
		return nil
	}
	return &s
}

func aclMsg(m *string) string {
	if m == nil || *m == "" { // "": Kafka's default on success
		return ""
	}
	return ": " + *m
}
