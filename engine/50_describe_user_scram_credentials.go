package engine

import (
	"maps"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DescribeUserScramCredentials, version 0 (KIP-554).
//
// Behavior:
//   - Answered from this broker's applied metadata, as Kafka's brokers
//     answer from their metadata image: a change acknowledged by another
//     broker shows here once this broker has applied it.
//   - Users null or empty: every user with credentials, sorted. Otherwise
//     one result per distinct user named, in the order first named.
//   - Each result lists the user's mechanisms (1 SCRAM-SHA-256, 2
//     SCRAM-SHA-512) with their iteration counts; never the salt nor the
//     keys.
//   - A user without credentials: RESOURCE_NOT_FOUND; a user named twice:
//     DUPLICATE_RESOURCE (once), with Kafka's messages.
//   - Success has ErrorMessage "", not null, in the answer and in each
//     result: Kafka's default for the fields.

func init() {
	regKey(kmsg.DescribeUserSCRAMCredentials, 0, 0, (*Broker).handleDescribeUserSCRAMCredentials)
}

func (b *Broker) handleDescribeUserSCRAMCredentials(token uint64, r *kmsg.DescribeUserSCRAMCredentialsRequest) {
	resp := r.ResponseKind().(*kmsg.DescribeUserSCRAMCredentialsResponse)
	if !b.authorizedCluster(opDescribe) {
		resp.ErrorCode = kerr.ClusterAuthorizationFailed.Code
		resp.ErrorMessage = kmsg.StringPtr("Authorization failed.")
		b.respond(token, resp)
		return
	}
	resp.ErrorMessage = kmsg.StringPtr("")
	var names []string
	dup := map[string]bool{}
	if len(r.Users) == 0 {
		names = b.meta.scramUsers()
	}
	for _, u := range r.Users {
		if _, seen := dup[u.Name]; seen {
			dup[u.Name] = true
			continue
		}
		dup[u.Name] = false
		names = append(names, u.Name)
	}
	for _, user := range names {
		res := kmsg.NewDescribeUserSCRAMCredentialsResponseResult()
		res.User, res.ErrorMessage = user, kmsg.StringPtr("")
		mechs := b.meta.st.SCRAM[user]
		switch {
		case dup[user]:
			res.ErrorCode = kerr.DuplicateResource.Code
			res.ErrorMessage = kmsg.StringPtr("Cannot describe SCRAM credentials for the same user twice in a single request: " + user)
		case len(mechs) == 0:
			res.ErrorCode = kerr.ResourceNotFound.Code
			res.ErrorMessage = kmsg.StringPtr("Attempt to describe a user credential that does not exist: " + user)
		default:
			for _, mech := range slices.Sorted(maps.Keys(mechs)) {
				info := kmsg.NewDescribeUserSCRAMCredentialsResponseResultCredentialInfo()
				info.Mechanism, info.Iterations = scramMechanismCode(mech), mechs[mech].Iterations
				res.CredentialInfos = append(res.CredentialInfos, info)
			}
		}
		resp.Results = append(resp.Results, res)
	}
	b.respond(token, resp)
}
