package runtime

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/gregor-streaming/gregor/engine"
	"github.com/gregor-streaming/gregor/netwire"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/xdg-go/scram"
)

// TestListeners: a node serves two listeners, and Metadata through each
// names the broker by that listener's advertised address; the SASL one
// refuses a wrong password and passes the principal on.
func TestListeners(t *testing.T) {
	aliceSHA512, _ := scram.SHA512.NewClient("alice", "alice-secret", "")
	creds := aliceSHA512.GetStoredCredentials(scram.KeyFactors{Salt: "salt", Iters: 4096})
	sasl := &netwire.SASLConfig{
		Mechanisms: []string{netwire.MechanismPlain},
		Credentials: func(mech, user string) (scram.StoredCredentials, bool) {
			return creds, mech == netwire.MechanismSCRAMSHA512 && user == "alice"
		},
	}
	node, err := Listen(Config{
		Broker:  engine.Config{ID: 1, TickMillis: testTickMillis, ElectionTicks: testElectionTicks},
		DataDir: filepath.Join(t.TempDir(), "1"),
		Listeners: []Listener{
			{Name: "INTERNAL", Protocol: netwire.Plaintext, Listen: "127.0.0.1:0"},
			// Clients of EXTERNAL are told "localhost" and the bound port.
			{Name: "EXTERNAL", Protocol: netwire.SASLPlaintext, Listen: "127.0.0.1:0", Advertise: "localhost:0"},
		},
		SASL:       sasl,
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
	internal, external := node.ListenerAddr("INTERNAL"), node.ListenerAddr("EXTERNAL")
	_, extPort, _ := net.SplitHostPort(external)

	// brokersVia asks addr for Metadata until it names want (the broker
	// registers its listeners once the metadata group has a leader; until
	// then it answers from its configuration) or the wait ends.
	brokersVia := func(addr, want string, opts ...kgo.Opt) ([]string, error) {
		cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr), kgo.RequestRetries(0)}, opts...)...)
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		ctx, cancel := context.WithTimeout(context.Background(), testWaitMax)
		defer cancel()
		var got []string
		for {
			resp, err := kmsg.NewPtrMetadataRequest().RequestWith(ctx, cl)
			if err != nil {
				return nil, err
			}
			got = got[:0]
			for _, b := range resp.Brokers {
				got = append(got, net.JoinHostPort(b.Host, strconv.Itoa(int(b.Port))))
			}
			if fmt.Sprint(got) == fmt.Sprint([]string{want}) || ctx.Err() != nil {
				return got, nil
			}
		}
	}
	if got, err := brokersVia(internal, internal); err != nil || fmt.Sprint(got) != fmt.Sprint([]string{internal}) {
		t.Errorf("Metadata via INTERNAL: %v, %v; want [%s]", got, err, internal)
	}
	want := "localhost:" + extPort
	good := kgo.SASL(plain.Auth{User: "alice", Pass: "alice-secret"}.AsMechanism())
	if got, err := brokersVia(external, want, good); err != nil || fmt.Sprint(got) != fmt.Sprint([]string{want}) {
		t.Errorf("Metadata via EXTERNAL: %v, %v; want [%s]", got, err, want)
	}
	bad := kgo.SASL(plain.Auth{User: "alice", Pass: "wrong"}.AsMechanism())
	if got, err := brokersVia(external, want, bad); err == nil {
		t.Errorf("Metadata via EXTERNAL with a wrong password answered %v", got)
	}
	if got, err := brokersVia(external, want); err == nil {
		t.Errorf("Metadata via EXTERNAL without SASL answered %v", got)
	}
}
