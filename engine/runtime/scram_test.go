package runtime

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/gregor-streaming/gregor/engine"
	"github.com/gregor-streaming/gregor/netwire"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
	xscram "github.com/xdg-go/scram"
)

// TestSCRAMFromMetadata: credentials written with AlterUserScramCredentials
// authenticate on the node's SASL listener as soon as the write is
// answered (the loop publishes the table before it sends the response);
// a user the metadata knows is looked up there only, any other in the
// bootstrap store; a deleted credential stops working.
func TestSCRAMFromMetadata(t *testing.T) {
	bootstrap := map[string]xscram.StoredCredentials{}
	for user, pass := range map[string]string{"alice": "file-secret", "bob": "bob-secret"} {
		cl, _ := xscram.SHA512.NewClient(user, pass, "")
		bootstrap[user] = cl.GetStoredCredentials(xscram.KeyFactors{Salt: "salt-" + user, Iters: 4096})
	}
	node, err := Listen(Config{
		Broker:  engine.Config{ID: 1, TickMillis: testTickMillis, ElectionTicks: testElectionTicks},
		DataDir: filepath.Join(t.TempDir(), "1"),
		Listeners: []Listener{
			{Name: "INTERNAL", Protocol: netwire.Plaintext, Listen: "127.0.0.1:0"},
			{Name: "EXTERNAL", Protocol: netwire.SASLPlaintext, Listen: "127.0.0.1:0"},
		},
		SASL: &netwire.SASLConfig{
			Mechanisms: []string{netwire.MechanismPlain, netwire.MechanismSCRAMSHA256, netwire.MechanismSCRAMSHA512},
			Credentials: func(mech, user string) (xscram.StoredCredentials, bool) {
				c, ok := bootstrap[user]
				return c, ok && mech == netwire.MechanismSCRAMSHA512
			},
		},
		PeerListen: "127.0.0.1:0",
		Logf:       func(f string, a ...any) { t.Logf("b1: "+f, a...) },
	})
	if err != nil {
		t.Fatal(err)
	}
	node.SetCluster([]engine.BrokerInfo{{ID: 1}})
	node.SetPeers(map[int32]string{1: node.PeerAddr()})
	if err := node.Run(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { node.Stop() })
	external := node.ListenerAddr("EXTERNAL")

	ctx, cancel := context.WithTimeout(context.Background(), testWaitMax)
	defer cancel()
	admin, err := kgo.NewClient(kgo.SeedBrokers(node.ListenerAddr("INTERNAL")))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	adm := kadm.NewClient(admin)

	login := func(m sasl.Mechanism) error {
		cl, err := kgo.NewClient(kgo.SeedBrokers(external), kgo.SASL(m), kgo.RequestRetries(0))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		_, err = kmsg.NewPtrMetadataRequest().RequestWith(ctx, cl)
		return err
	}
	check := func(what string, m sasl.Mechanism, ok bool) {
		t.Helper()
		if err := login(m); (err == nil) != ok {
			t.Errorf("%s: login error %v, want success %v", what, err, ok)
		}
	}
	check("alice from the bootstrap", scram.Auth{User: "alice", Pass: "file-secret"}.AsSha512Mechanism(), true)

	altered, err := adm.AlterUserSCRAMs(ctx, nil, []kadm.UpsertSCRAM{{User: "alice", Mechanism: kadm.ScramSha256, Password: "meta-secret"}})
	if err != nil || altered.Error() != nil {
		t.Fatalf("AlterUserSCRAMs: %v %v", err, altered.Error())
	}
	check("alice from the metadata, SCRAM-SHA-256", scram.Auth{User: "alice", Pass: "meta-secret"}.AsSha256Mechanism(), true)
	check("alice from the metadata, PLAIN", plain.Auth{User: "alice", Pass: "meta-secret"}.AsMechanism(), true)
	check("alice's bootstrap password once the metadata has her", scram.Auth{User: "alice", Pass: "file-secret"}.AsSha512Mechanism(), false)
	check("alice's SCRAM-SHA-512, which the metadata lacks", scram.Auth{User: "alice", Pass: "meta-secret"}.AsSha512Mechanism(), false)
	check("bob from the bootstrap", scram.Auth{User: "bob", Pass: "bob-secret"}.AsSha512Mechanism(), true)

	described, err := adm.DescribeUserSCRAMs(ctx)
	if err != nil || len(described) != 1 || len(described["alice"].CredInfos) != 1 || described["alice"].CredInfos[0].Iterations != 4096 {
		t.Fatalf("DescribeUserSCRAMs: %v %+v", err, described)
	}

	altered, err = adm.AlterUserSCRAMs(ctx, []kadm.DeleteSCRAM{{User: "alice", Mechanism: kadm.ScramSha256}}, nil)
	if err != nil || altered.Error() != nil {
		t.Fatalf("delete: %v %v", err, altered.Error())
	}
	check("alice's deleted credential", scram.Auth{User: "alice", Pass: "meta-secret"}.AsSha256Mechanism(), false)
	// Precedence is per user: with no credentials left in the metadata,
	// the bootstrap answers for alice again.
	check("alice from the bootstrap again", scram.Auth{User: "alice", Pass: "file-secret"}.AsSha512Mechanism(), true)
}
