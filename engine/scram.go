package engine

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"fmt"
	"hash"
	"maps"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
)

// SCRAM credentials in the metadata group (issue 12 part 2): per user and
// mechanism the salt, the iteration count, StoredKey and ServerKey of RFC
// 5802, never a password nor the salted password. AlterUserScramCredentials
// (51_alter_user_scram_credentials.go) proposes changes, every broker
// applies them, DescribeUserScramCredentials (50_...) reads the applied
// table, and the runtime hands a copy of it to netwire's SASL
// authenticator whenever it changes (SCRAMGeneration, SCRAMCredentials).

// SCRAM mechanism names, and Kafka's codes for them on the wire.
const (
	scramSHA256 = "SCRAM-SHA-256"
	scramSHA512 = "SCRAM-SHA-512"

	// Kafka's bounds on the PBKDF2 iteration count (ScramMechanism's
	// minIterations and maxIterations).
	scramIterationsMin = 4096
	scramIterationsMax = 16384
)

// scramMechanism maps Kafka's mechanism code (1 SCRAM-SHA-256, 2
// SCRAM-SHA-512) to its name; ok is false for any other.
func scramMechanism(code int8) (string, bool) {
	switch code {
	case 1:
		return scramSHA256, true
	case 2:
		return scramSHA512, true
	}
	return "", false
}

// scramMechanismCode is the inverse of scramMechanism.
func scramMechanismCode(name string) int8 {
	switch name {
	case scramSHA256:
		return 1
	case scramSHA512:
		return 2
	}
	return 0
}

// SCRAMCredential is one user's credential for one mechanism.
type SCRAMCredential struct {
	Salt       []byte
	Iterations int32
	StoredKey  []byte
	ServerKey  []byte
}

// scramCmd changes one user's credentials, all or nothing: Delete names
// mechanisms to remove (each must exist when the entry applies), Upsert
// sets credentials. The proposer validated them and derived the keys
// from the salted password, which the entry never carries.
type scramCmd struct {
	User   string
	Delete []string         `json:",omitempty"`
	Upsert []scramUpsertion `json:",omitempty"`
}

type scramUpsertion struct {
	Mechanism string
	Cred      SCRAMCredential
}

// scramKeys derives StoredKey and ServerKey from a salted password (RFC
// 5802: ClientKey = HMAC(SaltedPassword, "Client Key"), StoredKey =
// H(ClientKey), ServerKey = HMAC(SaltedPassword, "Server Key")).
func scramKeys(mechanism string, salted []byte) (stored, server []byte) {
	h := sha256.New
	if mechanism == scramSHA512 {
		h = sha512.New
	}
	mac := func(msg string) []byte {
		m := hmac.New(h, salted)
		m.Write([]byte(msg))
		return m.Sum(nil)
	}
	var d hash.Hash = h()
	d.Write(mac("Client Key"))
	return d.Sum(nil), mac("Server Key")
}

// applySCRAM applies one user's change to the table; a deletion of a
// credential that does not exist fails the whole change.
func (m *metaSM) applySCRAM(c *scramCmd) metaResult {
	st := &m.st
	have := st.SCRAM[c.User]
	for _, mech := range c.Delete {
		if _, ok := have[mech]; !ok {
			return metaResult{err: kerrMsg(kerr.ResourceNotFound, "Attempt to delete a user credential that does not exist")}
		}
	}
	next := maps.Clone(have)
	if next == nil {
		next = map[string]SCRAMCredential{}
	}
	for _, mech := range c.Delete {
		delete(next, mech)
	}
	for _, u := range c.Upsert {
		next[u.Mechanism] = u.Cred
	}
	if st.SCRAM == nil {
		st.SCRAM = map[string]map[string]SCRAMCredential{}
	}
	if len(next) == 0 {
		delete(st.SCRAM, c.User)
	} else {
		st.SCRAM[c.User] = next
	}
	if len(st.SCRAM) == 0 {
		st.SCRAM = nil
	}
	m.scramGen++
	return metaResult{}
}

// SCRAMGeneration changes whenever the applied SCRAM credentials may have
// changed (an AlterUserScramCredentials entry applied, or an image
// installed). The runtime compares it after each Process and, when it
// moved, takes a copy with SCRAMCredentials.
func (b *Broker) SCRAMGeneration() uint64 { return b.meta.scramGen }

// SCRAMCredentials returns a copy of the applied SCRAM credentials, by
// user then mechanism (SCRAM-SHA-256, SCRAM-SHA-512). The copy shares
// nothing with the broker's state: it may be read from other goroutines
// while the broker goes on.
func (b *Broker) SCRAMCredentials() map[string]map[string]SCRAMCredential {
	out := make(map[string]map[string]SCRAMCredential, len(b.meta.st.SCRAM))
	for user, mechs := range b.meta.st.SCRAM {
		cp := make(map[string]SCRAMCredential, len(mechs))
		for mech, c := range mechs {
			cp[mech] = SCRAMCredential{
				Salt: bytes.Clone(c.Salt), Iterations: c.Iterations,
				StoredKey: bytes.Clone(c.StoredKey), ServerKey: bytes.Clone(c.ServerKey),
			}
		}
		out[user] = cp
	}
	return out
}

// scramUsers are the users with credentials, sorted.
func (m *metaSM) scramUsers() []string {
	return slices.Sorted(maps.Keys(m.st.SCRAM))
}

// codeError is a Kafka error code with a message of its own, as the
// result of an applied metadata command.
type codeError struct {
	code *kerr.Error
	msg  string
}

func (e *codeError) Error() string { return e.msg }
func (e *codeError) Unwrap() error { return e.code }

// kerrMsg is code with msg as its message.
func kerrMsg(code *kerr.Error, msg string, a ...any) error {
	return &codeError{code: code, msg: fmt.Sprintf(msg, a...)}
}
