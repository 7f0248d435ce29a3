package main

import (
	"context"
	"crypto/tls"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// TestACLsSASLSSL: on a SASL_SSL cluster with --authorizer and the super
// user admin, a user without ACLs is refused on produce, fetch, group
// join, transactional init and an admin call, each with Kafka's error
// code; gregor acl create (as admin) grants them and each succeeds;
// gregor acl list and delete show and remove the bindings.
func TestACLsSASLSSL(t *testing.T) {
	pki := newTestPKI(t, "gregor ACLs CA")
	nodes := startSecureCluster(t, pki, "--authorizer", "--super-users", "User:admin")
	var secure []string
	for _, n := range nodes {
		secure = append(secure, n.ListenerAddr("SECURE"))
	}
	brokers := strings.Join(secure, ",")
	adminConf := filepath.Join(t.TempDir(), "client.properties")
	os.WriteFile(adminConf, []byte("security.protocol=SASL_SSL\nssl.truststore.type=PEM\nssl.truststore.location="+pki.caFile+
		"\nsasl.mechanism=SCRAM-SHA-512\nsasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username=\"admin\" password=\"admin-secret\";\n"), 0o600)
	gregor := func(args ...string) (int, string, string) {
		var stdout, stderr strings.Builder
		code := run(append(args, "--brokers", brokers, "--timeout", "30s"), &stdout, &stderr)
		return code, stdout.String(), stderr.String()
	}
	mustGregor := func(args ...string) string {
		t.Helper()
		code, out, errOut := gregor(args...)
		if code != exitOK {
			t.Fatalf("gregor %q: exit %d: %s", args, code, errOut)
		}
		return out
	}
	mustGregor("user", "create", "alice", "--new-password", "alice-secret", "--command-config", adminConf)
	mustGregor("topic", "create", "secure", "--partitions", "1", "--replication-factor", "3", "--command-config", adminConf)

	clientTLS := &tls.Config{RootCAs: pki.pool}
	alice := scram.Auth{User: "alice", Pass: "alice-secret"}.AsSha512Mechanism()
	newAlice := func(opts ...kgo.Opt) *kgo.Client {
		cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(secure...), kgo.DialTLSConfig(clientTLS), kgo.SASL(alice),
			kgo.RequestRetries(2), kgo.RetryTimeout(2 * time.Second)}, opts...)...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(cl.Close)
		return cl
	}
	// The five operations of the test, each returning alice's error.
	ops := []struct {
		name string
		want *kerr.Error
		do   func(ctx context.Context) error
	}{
		{"produce", kerr.TopicAuthorizationFailed, func(ctx context.Context) error {
			cl := newAlice(kgo.DefaultProduceTopic("secure"), kgo.RecordDeliveryTimeout(5*time.Second))
			defer cl.Close()
			return cl.ProduceSync(ctx, &kgo.Record{Value: []byte("from alice")}).FirstErr()
		}},
		{"fetch", kerr.TopicAuthorizationFailed, func(ctx context.Context) error {
			cl := newAlice(kgo.ConsumeTopics("secure"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
			defer cl.Close()
			ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			for {
				fs := cl.PollFetches(ctx)
				if err := fs.Err0(); err != nil && !errors.Is(err, context.DeadlineExceeded) {
					return err
				}
				if fs.NumRecords() > 0 {
					return nil
				}
				if ctx.Err() != nil {
					return ctx.Err()
				}
			}
		}},
		{"group join", kerr.GroupAuthorizationFailed, func(ctx context.Context) error {
			req := kmsg.NewPtrJoinGroupRequest()
			req.Group, req.ProtocolType, req.SessionTimeoutMillis, req.RebalanceTimeoutMillis = "g", "consumer", 10_000, 10_000
			req.Protocols = []kmsg.JoinGroupRequestProtocol{{Name: "range"}}
			resp, err := req.RequestWith(ctx, newAlice())
			if err != nil {
				return err
			}
			if err := kerr.ErrorForCode(resp.ErrorCode); err != nil && err != kerr.MemberIDRequired {
				return err
			}
			return nil
		}},
		{"transactional init", kerr.TransactionalIDAuthorizationFailed, func(ctx context.Context) error {
			req := kmsg.NewPtrInitProducerIDRequest()
			req.TransactionalID, req.TransactionTimeoutMillis = kmsg.StringPtr("tx-alice"), 60_000
			resp, err := req.RequestWith(ctx, newAlice())
			if err != nil {
				return err
			}
			return kerr.ErrorForCode(resp.ErrorCode)
		}},
		{"admin: describe ACLs", kerr.ClusterAuthorizationFailed, func(ctx context.Context) error {
			req := kmsg.NewPtrDescribeACLsRequest()
			req.ResourceType, req.ResourcePatternType, req.Operation, req.PermissionType = kmsg.ACLResourceTypeAny, kmsg.ACLResourcePatternTypeAny, kmsg.ACLOperationAny, kmsg.ACLPermissionTypeAny
			resp, err := req.RequestWith(ctx, newAlice())
			if err != nil {
				return err
			}
			return kerr.ErrorForCode(resp.ErrorCode)
		}},
	}
	// eventually retries op until its outcome is want (nil: success);
	// every broker applies the ACLs on its own schedule.
	eventually := func(name string, want *kerr.Error, do func(context.Context) error) {
		t.Helper()
		deadline := time.Now().Add(testWaitMax)
		for {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			err := do(ctx)
			cancel()
			if want == nil && err == nil || want != nil && errors.Is(err, want) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s as alice: %v, want %v", name, err, want)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	for _, op := range ops {
		eventually(op.name+" without ACLs", op.want, op.do)
	}

	// gregor acl create as admin, in kafka-acls.sh's terms.
	out := mustGregor("acl", "create", "--allow-principal", "User:alice", "--operation", "Read", "--operation", "Write", "--topic", "secure", "--command-config", adminConf)
	if !strings.Contains(out, "created: ALLOW User:alice READ from * on TOPIC secure (LITERAL)") {
		t.Errorf("acl create: %q", out)
	}
	mustGregor("acl", "create", "--allow-principal", "User:alice", "--operation", "Read", "--group", "g", "--command-config", adminConf)
	mustGregor("acl", "create", "--allow-principal", "User:alice", "--operation", "Write", "--transactional-id", "tx-", "--resource-pattern-type", "prefixed", "--command-config", adminConf)
	mustGregor("acl", "create", "--allow-principal", "User:alice", "--operation", "Describe", "--cluster", "--command-config", adminConf)
	for _, op := range ops {
		eventually(op.name+" with ACLs", nil, op.do)
	}

	// A broker answers DescribeAcls from what it has applied: wait for
	// the one asked to have every binding.
	listed := func(args ...string) string {
		t.Helper()
		deadline := time.Now().Add(testWaitMax)
		for {
			out := mustGregor(append([]string{"acl", "list", "--command-config", adminConf}, args...)...)
			if strings.Contains(out, "DESCRIBE") || len(args) > 0 && strings.Count(out, "\n") == 3 || time.Now().After(deadline) {
				return out
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	out = listed()
	for _, want := range []string{
		"TOPIC             secure         LITERAL   User:alice  *     READ       ALLOW",
		"TRANSACTIONAL_ID  tx-            PREFIXED  User:alice  *     WRITE      ALLOW",
		"CLUSTER           kafka-cluster  LITERAL   User:alice  *     DESCRIBE   ALLOW",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("acl list: no %q in\n%s", want, out)
		}
	}
	out = listed("--topic", "secure")
	if strings.Contains(out, "GROUP") || !strings.Contains(out, "WRITE") {
		t.Errorf("acl list --topic secure:\n%s", out)
	}
	// Deleting the topic's bindings refuses alice again.
	out = mustGregor("acl", "delete", "--topic", "secure", "--command-config", adminConf)
	if !strings.Contains(out, "2 bindings deleted") {
		t.Errorf("acl delete: %q", out)
	}
	eventually("produce once the ACLs are deleted", kerr.TopicAuthorizationFailed, ops[0].do)

	// alice may describe the cluster's ACLs now, not change them.
	code, _, errOut := gregor("acl", "create", "--allow-principal", "User:alice", "--topic", "x", "--tls-ca", pki.caFile, "--user", "alice", "--password", "alice-secret")
	if code != exitError || !strings.Contains(errOut, "CLUSTER_AUTHORIZATION_FAILED") {
		t.Errorf("acl create as alice: exit %d, %q", code, errOut)
	}
	code, _, errOut = gregor("acl", "create", "--topic", "x", "--command-config", adminConf)
	if code != exitUsage || !strings.Contains(errOut, "name a principal") {
		t.Errorf("acl create without a principal: exit %d, %q", code, errOut)
	}
}
