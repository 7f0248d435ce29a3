package engine

import (
	"errors"
	"maps"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// AlterUserScramCredentials, version 0 (KIP-554).
//
// Behavior:
//   - Deletions and upsertions of SCRAM credentials (mechanism 1
//     SCRAM-SHA-256, 2 SCRAM-SHA-512), answered with one result per user
//     named, sorted by user. A user's operations apply together, as one
//     metadata log entry, or not at all; the answer comes once the entry
//     has applied on this broker (every broker applies it; a SASL
//     authentication on another broker sees it once that broker has).
//   - An upsertion carries the salt, the iteration count and the salted
//     password (PBKDF2 of the password, computed by the client): the
//     broker derives StoredKey and ServerKey from it and keeps those
//     (scram.go); the salted password is neither stored nor logged.
//   - Errors, per user, as Kafka: an empty user name
//     UNACCEPTABLE_CREDENTIAL; the same user and mechanism twice in the
//     request (deletion or upsertion) DUPLICATE_RESOURCE; a mechanism
//     other than 1 or 2 UNSUPPORTED_SASL_MECHANISM; iterations below 4096
//     or above 16384 UNACCEPTABLE_CREDENTIAL. An empty salt or salted
//     password is UNACCEPTABLE_CREDENTIAL too (Kafka would store it). A
//     deletion of a credential the user does not have RESOURCE_NOT_FOUND,
//     decided when the entry applies (the authoritative state).
//   - The metadata group unreachable: NOT_CONTROLLER or REQUEST_TIMED_OUT
//     after 30 s, for each user; the change may still apply.

func init() {
	regKey(kmsg.AlterUserSCRAMCredentials, 0, 0, (*Broker).handleAlterUserSCRAMCredentials)
}

// scramChange is one user's part of a request, and its outcome.
type scramChange struct {
	cmd   scramCmd
	mechs map[string]bool // named so far, for DUPLICATE_RESOURCE
	err   error
}

func (b *Broker) handleAlterUserSCRAMCredentials(token uint64, r *kmsg.AlterUserSCRAMCredentialsRequest) {
	resp := r.ResponseKind().(*kmsg.AlterUserSCRAMCredentialsResponse)
	users := map[string]*scramChange{}
	denied := !b.authorizedCluster(opAlter)
	// name checks what every operation on a user must pass and returns
	// the mechanism's name, or "" if the user's change is refused.
	name := func(user string, code int8) (*scramChange, string) {
		c := users[user]
		if c == nil {
			c = &scramChange{cmd: scramCmd{User: user}, mechs: map[string]bool{}}
			users[user] = c
		}
		if c.err != nil {
			return c, ""
		}
		if denied {
			c.err = kerrMsg(kerr.ClusterAuthorizationFailed, "Authorization failed.")
			return c, ""
		}
		mech, ok := scramMechanism(code)
		switch {
		case user == "":
			c.err = kerrMsg(kerr.UnacceptableCredential, "Username must not be empty")
		case !ok:
			c.err = kerrMsg(kerr.UnsupportedSaslMechanism, "Unknown SCRAM mechanism")
		case c.mechs[mech]:
			c.err = kerrMsg(kerr.DuplicateResource, "A user credential cannot be altered twice in the same request")
		default:
			c.mechs[mech] = true
			return c, mech
		}
		return c, ""
	}
	for _, d := range r.Deletions {
		if c, mech := name(d.Name, d.Mechanism); mech != "" {
			c.cmd.Delete = append(c.cmd.Delete, mech)
		}
	}
	for _, u := range r.Upsertions {
		c, mech := name(u.Name, u.Mechanism)
		if mech == "" {
			continue
		}
		switch {
		case u.Iterations < scramIterationsMin:
			c.err = kerrMsg(kerr.UnacceptableCredential, "Too few iterations")
		case u.Iterations > scramIterationsMax:
			c.err = kerrMsg(kerr.UnacceptableCredential, "Too many iterations")
		case len(u.Salt) == 0 || len(u.SaltedPassword) == 0:
			c.err = kerrMsg(kerr.UnacceptableCredential, "Salt and salted password must not be empty")
		default:
			stored, server := scramKeys(mech, u.SaltedPassword)
			c.cmd.Upsert = append(c.cmd.Upsert, scramUpsertion{Mechanism: mech, Cred: SCRAMCredential{
				Salt: slices.Clone(u.Salt), Iterations: u.Iterations, StoredKey: stored, ServerKey: server,
			}})
		}
	}
	names := slices.Sorted(maps.Keys(users))
	left := 1
	release := func() {
		if left--; left > 0 {
			return
		}
		for _, user := range names {
			res := kmsg.NewAlterUserSCRAMCredentialsResponseResult()
			res.User = user
			if err := users[user].err; err != nil {
				var ke *kerr.Error
				if !errors.As(err, &ke) {
					ke = kerr.UnknownServerError
				}
				res.ErrorCode = ke.Code
				if ce := (*codeError)(nil); errors.As(err, &ce) {
					res.ErrorMessage = kmsg.StringPtr(ce.msg)
				}
			}
			resp.Results = append(resp.Results, res)
		}
		b.respond(token, resp)
	}
	for _, user := range names {
		c := users[user]
		if c.err != nil {
			continue
		}
		left++
		b.proposeMeta(metaCmd{SCRAM: &c.cmd}, 30_000, func(res metaResult) {
			c.err = res.err
			release()
		})
	}
	release()
}
