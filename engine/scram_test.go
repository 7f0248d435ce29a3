package engine

import (
	"crypto/pbkdf2"
	"crypto/sha256"
	"crypto/sha512"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/cockroachdb/datadriven"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/xdg-go/scram"
)

// runSCRAM runs the SCRAM credential commands of the transcripts
// (testdata/scram.txt):
//
//	alter-scram [via=1] [upsert=user:mech:iters[:password];...] [delete=user:mech;...]
//	describe-scram [via=1] [users=a,b]
//	scram-table broker=N
//
// mech is Kafka's code (1 SCRAM-SHA-256, 2 SCRAM-SHA-512, others
// unknown); an upsertion's salt is "salt-" and the user, its salted
// password PBKDF2 of the password (default "pw-" and the user; an empty
// one gives an empty salted password).
func (c *testCluster) runSCRAM(t *testing.T, d *datadriven.TestData) (string, bool) {
	switch d.Cmd {
	case "alter-scram":
		req := kmsg.NewPtrAlterUserSCRAMCredentialsRequest()
		for _, e := range splitArg(t, d, "delete") {
			f := strings.Split(e, ":")
			del := kmsg.NewAlterUserSCRAMCredentialsRequestDeletion()
			del.Name, del.Mechanism = f[0], int8(atoi(t, f[1]))
			req.Deletions = append(req.Deletions, del)
		}
		for _, e := range splitArg(t, d, "upsert") {
			f := strings.Split(e, ":")
			up := kmsg.NewAlterUserSCRAMCredentialsRequestUpsertion()
			up.Name, up.Mechanism, up.Iterations = f[0], int8(atoi(t, f[1])), int32(atoi(t, f[2]))
			pass := "pw-" + up.Name
			if len(f) > 3 {
				pass = f[3]
			}
			up.Salt = []byte("salt-" + up.Name)
			if pass != "" { // an empty password: no salted password
				up.SaltedPassword = testSaltedPassword(t, up.Mechanism, pass, up.Salt, int(up.Iterations))
			}
			req.Upsertions = append(req.Upsertions, up)
		}
		resp, ok := c.call(int32(argInt(t, d, "via", 1)), req, 60)
		if !ok {
			return "no answer\n", true
		}
		var sb strings.Builder
		for _, r := range resp.(*kmsg.AlterUserSCRAMCredentialsResponse).Results {
			fmt.Fprintf(&sb, "%s: %s", r.User, codeName(r.ErrorCode))
			if r.ErrorMessage != nil {
				fmt.Fprintf(&sb, ": %s", *r.ErrorMessage)
			}
			sb.WriteString("\n")
		}
		return sb.String(), true
	case "describe-scram":
		req := kmsg.NewPtrDescribeUserSCRAMCredentialsRequest()
		if d.HasArg("users") {
			for _, u := range strings.Split(argStr(t, d, "users", ""), ",") {
				req.Users = append(req.Users, kmsg.DescribeUserSCRAMCredentialsRequestUser{Name: u})
			}
		}
		resp, ok := c.call(int32(argInt(t, d, "via", 1)), req, 60)
		if !ok {
			return "no answer\n", true
		}
		r := resp.(*kmsg.DescribeUserSCRAMCredentialsResponse)
		var sb strings.Builder
		if r.ErrorCode != 0 {
			fmt.Fprintf(&sb, "%s\n", codeName(r.ErrorCode))
		}
		for _, res := range r.Results {
			fmt.Fprintf(&sb, "%s:", res.User)
			if res.ErrorCode != 0 {
				fmt.Fprintf(&sb, " %s: %s", codeName(res.ErrorCode), *res.ErrorMessage)
			}
			for _, ci := range res.CredentialInfos {
				fmt.Fprintf(&sb, " mechanism %d iterations %d", ci.Mechanism, ci.Iterations)
			}
			sb.WriteString("\n")
		}
		if len(r.Results) == 0 {
			sb.WriteString("no users\n")
		}
		return sb.String(), true
	case "scram-table":
		tb := c.broker(int32(argInt(t, d, "broker", 1)))
		return scramTable(t, tb.b), true
	}
	return "", false
}

// scramTable prints a broker's SCRAM credentials as the runtime would
// publish them, and checks each one authenticates the transcript's
// password for its user through xdg-go/scram's server, as netwire's does.
func scramTable(t *testing.T, b *Broker) string {
	creds := b.SCRAMCredentials()
	var sb strings.Builder
	fmt.Fprintf(&sb, "generation %d\n", b.SCRAMGeneration())
	for _, user := range slices.Sorted(maps.Keys(creds)) {
		for _, mech := range slices.Sorted(maps.Keys(creds[user])) {
			cr := creds[user][mech]
			fmt.Fprintf(&sb, "%s %s salt=%s iterations=%d\n", user, mech, cr.Salt, cr.Iterations)
			hash := scram.SHA256
			if mech == scramSHA512 {
				hash = scram.SHA512
			}
			cl, err := hash.NewClient(user, "pw-"+user, "")
			if err != nil {
				t.Fatal(err)
			}
			want := cl.GetStoredCredentials(scram.KeyFactors{Salt: string(cr.Salt), Iters: int(cr.Iterations)})
			if string(want.StoredKey) != string(cr.StoredKey) || string(want.ServerKey) != string(cr.ServerKey) {
				fmt.Fprintf(&sb, "  keys do not match the password pw-%s\n", user)
			}
		}
	}
	return sb.String()
}

func testSaltedPassword(t *testing.T, mech int8, pass string, salt []byte, iters int) []byte {
	if mech == 2 {
		k, err := pbkdf2.Key(sha512.New, pass, salt, iters, sha512.Size)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	k, err := pbkdf2.Key(sha256.New, pass, salt, iters, sha256.Size)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func splitArg(t *testing.T, d *datadriven.TestData, key string) []string {
	if !d.HasArg(key) {
		return nil
	}
	return strings.Split(argStr(t, d, key, ""), ";")
}

func atoi(t *testing.T, s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatalf("%q is not a number", s)
	}
	return n
}
