package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

const aclUsage = `usage: gregor acl create (--allow-principal P | --deny-principal P)... [--operation OP]... RESOURCE [flags]
       gregor acl list [RESOURCE] [--principal P] [flags]
       gregor acl delete [RESOURCE] [--principal P] [--operation OP]... [flags]

In the style of kafka-acls.sh. A RESOURCE is --topic NAME, --group NAME,
--transactional-id NAME (each repeatable) or --cluster, with
--resource-pattern-type literal (the default for create and delete),
prefixed, and for list and delete also match (every binding that applies
to the named resource: its literal, the literal "*" and the prefixes of
its name) or any (the default for list).

  create   add bindings (CreateAcls): each principal, for each host
           (--allow-host/--deny-host, default "*"), each operation (default
           All) and each resource. Principals are Type:name, as User:alice;
           User:* is every principal, and a literal resource named "*"
           every resource of its type.
  list     the bindings (DescribeAcls) on the resources named, all without
           one; --principal keeps one principal's.
  delete   remove the bindings that match (DeleteAcls); without a resource,
           on every resource. --principal, --host, --operation and
           --permission (allow or deny) narrow it; without them, every
           binding on the resources matches.

Operations: All, Read, Write, Create, Delete, Alter, Describe,
ClusterAction, DescribeConfigs, AlterConfigs, IdempotentWrite. The
brokers check ACLs only when run with --authorizer (gregor serve).
Managing ACLs needs Alter (list: Describe) on the cluster. Common flags:
--brokers host:port,... (default 127.0.0.1:9092), --timeout, --tls-ca,
--sasl-mechanism, --user, --password, --command-config.
`

// aclResource is one resource named on the command line.
type aclResource struct {
	typ  kmsg.ACLResourceType
	name string
}

func aclCmd(args []string, stdout, stderr io.Writer) int {
	c, args, code := newSubcommand("acl", aclUsage, args, stdout, stderr)
	if c == nil {
		return code
	}
	var topics, groups, txnIDs, allowP, denyP, allowH, denyH, ops stringList
	var cluster bool
	var pattern, principal, host, permission string
	c.fs.Var(&topics, "topic", "a topic (repeatable)")
	c.fs.Var(&groups, "group", "a consumer group (repeatable)")
	c.fs.Var(&txnIDs, "transactional-id", "a transactional id (repeatable)")
	c.fs.BoolVar(&cluster, "cluster", false, "the cluster")
	switch c.sub {
	case "create":
		c.fs.Var(&allowP, "allow-principal", "principal to allow, Type:name (repeatable)")
		c.fs.Var(&denyP, "deny-principal", "principal to deny, Type:name (repeatable)")
		c.fs.Var(&allowH, "allow-host", `host the allowed principals connect from (repeatable; default "*")`)
		c.fs.Var(&denyH, "deny-host", `host the denied principals connect from (repeatable; default "*")`)
		c.fs.Var(&ops, "operation", "operation (repeatable; default All)")
		c.fs.StringVar(&pattern, "resource-pattern-type", "literal", "literal or prefixed")
	case "list":
		c.fs.StringVar(&principal, "principal", "", "only this principal's bindings")
		c.fs.StringVar(&pattern, "resource-pattern-type", "any", "literal, prefixed, match or any")
	case "delete":
		c.fs.StringVar(&principal, "principal", "", "only this principal's bindings")
		c.fs.StringVar(&host, "host", "", "only bindings for this host")
		c.fs.Var(&ops, "operation", "only bindings for this operation (repeatable)")
		c.fs.StringVar(&permission, "permission", "", "only allow or deny bindings")
		c.fs.StringVar(&pattern, "resource-pattern-type", "literal", "literal, prefixed, match or any")
	default:
		return c.unknown()
	}
	if ok, code := c.parse(args); !ok {
		return code
	}
	if len(c.fs.Args()) > 0 {
		return c.fail(exitUsage, "unexpected argument %q (resources are --topic, --group, --transactional-id, --cluster)", c.fs.Args()[0])
	}
	var resources []aclResource
	for _, n := range topics {
		resources = append(resources, aclResource{kmsg.ACLResourceTypeTopic, n})
	}
	for _, n := range groups {
		resources = append(resources, aclResource{kmsg.ACLResourceTypeGroup, n})
	}
	for _, n := range txnIDs {
		resources = append(resources, aclResource{kmsg.ACLResourceTypeTransactionalId, n})
	}
	if cluster {
		resources = append(resources, aclResource{kmsg.ACLResourceTypeCluster, "kafka-cluster"})
	}
	pat, err := kmsg.ParseACLResourcePatternType(pattern)
	if err != nil || pat == kmsg.ACLResourcePatternTypeUnknown {
		return c.fail(exitUsage, "--resource-pattern-type %q: want literal, prefixed, match or any", pattern)
	}
	var opCodes []kmsg.ACLOperation
	for _, o := range ops {
		op, err := kmsg.ParseACLOperation(o)
		if err != nil || op <= kmsg.ACLOperationAny {
			return c.fail(exitUsage, "--operation %q: unknown (want Read, Write, Describe, All, ...)", o)
		}
		opCodes = append(opCodes, op)
	}
	switch c.sub {
	case "create":
		if len(resources) == 0 {
			return c.fail(exitUsage, "name a resource: --topic, --group, --transactional-id or --cluster")
		}
		if len(allowP)+len(denyP) == 0 {
			return c.fail(exitUsage, "name a principal: --allow-principal or --deny-principal")
		}
		if pat != kmsg.ACLResourcePatternTypeLiteral && pat != kmsg.ACLResourcePatternTypePrefixed {
			return c.fail(exitUsage, "--resource-pattern-type %q: create takes literal or prefixed", pattern)
		}
		if len(opCodes) == 0 {
			opCodes = []kmsg.ACLOperation{kmsg.ACLOperationAll}
		}
		req := kmsg.NewPtrCreateACLsRequest()
		add := func(principals, hosts stringList, perm kmsg.ACLPermissionType) {
			if len(hosts) == 0 {
				hosts = stringList{"*"}
			}
			for _, res := range resources {
				for _, p := range principals {
					for _, h := range hosts {
						for _, op := range opCodes {
							cr := kmsg.NewCreateACLsRequestCreation()
							cr.ResourceType, cr.ResourceName, cr.ResourcePatternType = res.typ, res.name, pat
							cr.Principal, cr.Host, cr.Operation, cr.PermissionType = p, h, op, perm
							req.Creations = append(req.Creations, cr)
						}
					}
				}
			}
		}
		add(allowP, allowH, kmsg.ACLPermissionTypeAllow)
		add(denyP, denyH, kmsg.ACLPermissionTypeDeny)
		return c.run(func(ctx context.Context, cl *kgo.Client) error { return aclCreate(ctx, cl, req, stdout) })
	case "list":
		if len(resources) > 1 {
			return c.fail(exitUsage, "list takes at most one resource")
		}
		req := kmsg.NewPtrDescribeACLsRequest()
		req.ResourceType, req.ResourcePatternType = kmsg.ACLResourceTypeAny, pat
		req.Operation, req.PermissionType = kmsg.ACLOperationAny, kmsg.ACLPermissionTypeAny
		if len(resources) == 1 {
			req.ResourceType, req.ResourceName = resources[0].typ, kmsg.StringPtr(resources[0].name)
		}
		if principal != "" {
			req.Principal = kmsg.StringPtr(principal)
		}
		return c.run(func(ctx context.Context, cl *kgo.Client) error { return aclList(ctx, cl, req, stdout) })
	}
	// delete
	perm := kmsg.ACLPermissionTypeAny
	if permission != "" {
		if perm, err = kmsg.ParseACLPermissionType(permission); err != nil || perm <= kmsg.ACLPermissionTypeAny {
			return c.fail(exitUsage, "--permission %q: want allow or deny", permission)
		}
	}
	if len(opCodes) == 0 {
		opCodes = []kmsg.ACLOperation{kmsg.ACLOperationAny}
	}
	if len(resources) == 0 {
		resources = []aclResource{{kmsg.ACLResourceTypeAny, ""}}
		pat = kmsg.ACLResourcePatternTypeAny
	}
	req := kmsg.NewPtrDeleteACLsRequest()
	for _, res := range resources {
		for _, op := range opCodes {
			f := kmsg.NewDeleteACLsRequestFilter()
			f.ResourceType, f.ResourcePatternType, f.Operation, f.PermissionType = res.typ, pat, op, perm
			if res.typ != kmsg.ACLResourceTypeAny {
				f.ResourceName = kmsg.StringPtr(res.name)
			}
			if principal != "" {
				f.Principal = kmsg.StringPtr(principal)
			}
			if host != "" {
				f.Host = kmsg.StringPtr(host)
			}
			req.Filters = append(req.Filters, f)
		}
	}
	return c.run(func(ctx context.Context, cl *kgo.Client) error { return aclDelete(ctx, cl, req, stdout) })
}

// aclHeader and aclRow print bindings as a table.
const aclHeader = "RESOURCE-TYPE\tNAME\tPATTERN\tPRINCIPAL\tHOST\tOPERATION\tPERMISSION"

func aclRow(w io.Writer, typ kmsg.ACLResourceType, name string, pat kmsg.ACLResourcePatternType, principal, host string, op kmsg.ACLOperation, perm kmsg.ACLPermissionType) {
	fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", typ, name, pat, principal, host, op, perm)
}

func aclCreate(ctx context.Context, cl *kgo.Client, req *kmsg.CreateACLsRequest, stdout io.Writer) error {
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return err
	}
	var failed []error
	for i, r := range resp.Results {
		if i >= len(req.Creations) {
			break
		}
		cr := req.Creations[i]
		what := fmt.Sprintf("%s %s %s from %s on %s %s", cr.PermissionType, cr.Principal, cr.Operation, cr.Host, cr.ResourceType, cr.ResourceName)
		if err := codeErr(r.ErrorCode, r.ErrorMessage); err != nil {
			failed = append(failed, fmt.Errorf("%s: %w", what, err))
			continue
		}
		fmt.Fprintf(stdout, "created: %s (%s)\n", what, cr.ResourcePatternType)
	}
	return errors.Join(failed...)
}

func aclList(ctx context.Context, cl *kgo.Client, req *kmsg.DescribeACLsRequest, stdout io.Writer) error {
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return err
	}
	if err := codeErr(resp.ErrorCode, resp.ErrorMessage); err != nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, aclHeader)
	for _, res := range resp.Resources {
		for _, a := range res.ACLs {
			aclRow(tw, res.ResourceType, res.ResourceName, res.ResourcePatternType, a.Principal, a.Host, a.Operation, a.PermissionType)
		}
	}
	return tw.Flush()
}

func aclDelete(ctx context.Context, cl *kgo.Client, req *kmsg.DeleteACLsRequest, stdout io.Writer) error {
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, aclHeader)
	var failed []error
	n := 0
	for _, r := range resp.Results {
		if err := codeErr(r.ErrorCode, r.ErrorMessage); err != nil {
			failed = append(failed, err)
			continue
		}
		for _, m := range r.MatchingACLs {
			if err := codeErr(m.ErrorCode, m.ErrorMessage); err != nil {
				failed = append(failed, err)
				continue
			}
			aclRow(tw, m.ResourceType, m.ResourceName, m.ResourcePatternType, m.Principal, m.Host, m.Operation, m.PermissionType)
			n++
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%d bindings deleted\n", n)
	return errors.Join(failed...)
}
