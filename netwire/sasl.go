package netwire

import (
	"bytes"
	"crypto/hmac"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/xdg-go/scram"
)

// SaslHandshake (key 17), versions 0-1, and SaslAuthenticate (key 36),
// versions 0-2, are answered here, on listeners whose protocol is
// SASL_PLAINTEXT or SASL_SSL; the Handler never sees them.
//
// Behavior:
//   - Before authentication only ApiVersions, SaslHandshake and
//     SaslAuthenticate are answered; any other request closes the
//     connection (Kafka's IllegalSaslStateException), with a log line.
//     Frames before authentication are bounded by saslFrameBytesMax
//     (Kafka's sasl.server.max.receive.size).
//   - SaslHandshake names a mechanism; the answer lists the enabled ones.
//     An unknown or disabled mechanism: UNSUPPORTED_SASL_MECHANISM, and
//     the connection is closed after the answer.
//   - After SaslHandshake v1 the exchange rides SaslAuthenticate
//     requests. After v0 (clients before KIP-152) the next frames are raw
//     SASL tokens, each a 4-byte size and the bytes, answered the same
//     way; a failure there just closes the connection, as Kafka does.
//   - PLAIN (RFC 4616): one message; the password is checked against the
//     user's SCRAM credentials (plain.go). An authorization id other than
//     the user name is refused, as Kafka does.
//   - SCRAM-SHA-256 and SCRAM-SHA-512 (RFC 5802, 7677) by
//     github.com/xdg-go/scram's server conversation, against the stored
//     credentials: two round trips. A client-final nonce that ends with
//     the server's but carries a prefix (librdkafka 2.0) is accepted, as
//     Kafka accepts it, and checked here (finalWithPrefix).
//   - A failed exchange: SASL_AUTHENTICATION_FAILED with a message that
//     names the mechanism and never a password, then the connection is
//     closed; the log line names the client address, the user and the
//     reason. Another SaslHandshake or SaslAuthenticate out of turn
//     (before the handshake, or a second handshake mid-exchange):
//     ILLEGAL_SASL_STATE and the connection is closed.
//   - After success both are answered ILLEGAL_SASL_STATE and the
//     connection stays (no KIP-368 re-authentication:
//     SessionLifetimeMillis is 0). The principal is "User:" and the
//     user name.

const (
	saslHandshakeKey    int16 = 17
	saslAuthenticateKey int16 = 36

	// saslFrameBytesMax bounds a frame read before authentication
	// (Kafka's sasl.server.max.receive.size default).
	saslFrameBytesMax int32 = 512 << 10

	MechanismPlain       = "PLAIN"
	MechanismSCRAMSHA256 = "SCRAM-SHA-256"
	MechanismSCRAMSHA512 = "SCRAM-SHA-512"
)

// saslVersions are added to the versions table when Config.SASL is set.
var saslVersions = []Version{{Key: saslHandshakeKey, Min: 0, Max: 1}, {Key: saslAuthenticateKey, Min: 0, Max: 2}}

// SASLConfig configures SASL authentication.
type SASLConfig struct {
	// Mechanisms are the enabled mechanisms (PLAIN, SCRAM-SHA-256,
	// SCRAM-SHA-512), in the order SaslHandshake lists them.
	Mechanisms []string
	// Credentials returns user's SCRAM credentials for mechanism
	// (SCRAM-SHA-256 or SCRAM-SHA-512), false if it has none. It is
	// called from connection goroutines and must be safe for concurrent
	// use.
	Credentials func(mechanism, user string) (scram.StoredCredentials, bool)
}

// saslState is where a connection's SASL exchange stands; it is owned by
// the connection's reader goroutine.
type saslState int

const (
	saslNeedHandshake    saslState = iota // nothing but ApiVersions and SaslHandshake
	saslNeedAuthenticate                  // after SaslHandshake v1
	saslRawTokens                         // after SaslHandshake v0: raw token frames
	saslDone                              // authenticated, or not a SASL listener
)

// saslExchange is one mechanism's server side of an authentication.
type saslExchange interface {
	// step takes the client's next message and returns the server's
	// answer and whether the exchange succeeded with it. An error ends
	// the exchange: its text is for the log, never for the client.
	step(msg []byte) (resp []byte, done bool, err error)
	// user is the user name once the client has given it, else "".
	user() string
}

// errAuthFailed is the cause of every failed exchange as the client
// learns it; the real reason goes to the log only.
var errAuthFailed = errors.New("invalid credentials")

func (cfg *SASLConfig) enabled(mech string) bool { return slices.Contains(cfg.Mechanisms, mech) }

// newExchange starts mech's exchange.
func (cfg *SASLConfig) newExchange(mech string) saslExchange {
	switch mech {
	case MechanismPlain:
		return &plainExchange{cfg: cfg}
	case MechanismSCRAMSHA256, MechanismSCRAMSHA512:
		hash := scram.SHA256
		if mech == MechanismSCRAMSHA512 {
			hash = scram.SHA512
		}
		x := &scramExchange{hash: hash}
		srv, err := hash.NewServer(func(user string) (scram.StoredCredentials, error) {
			x.name = user
			if c, ok := cfg.Credentials(mech, user); ok {
				x.cred = c
				return c, nil
			}
			return scram.StoredCredentials{}, fmt.Errorf("no %s credentials for user %q", mech, user)
		})
		if err != nil { // only for a nil lookup function
			panic(err)
		}
		x.conv = srv.NewConversation()
		return x
	}
	panic("netwire: no exchange for mechanism " + mech)
}

// scramExchange wraps xdg-go/scram's server conversation.
type scramExchange struct {
	conv *scram.ServerConversation
	name string
	hash scram.HashGeneratorFcn
	cred scram.StoredCredentials
	// c1, s1: the first messages, for the final step of a client whose
	// nonce carries a prefix (finalWithPrefix).
	c1, s1 string
	steps  int
}

func (x *scramExchange) step(msg []byte) ([]byte, bool, error) {
	x.steps++
	if x.steps == 2 {
		if resp, ok, err := x.finalWithPrefix(string(msg)); ok {
			return resp, err == nil, err
		}
	}
	resp, err := x.conv.Step(string(msg))
	if err != nil {
		return nil, false, err
	}
	if x.steps == 1 {
		x.c1, x.s1 = string(msg), resp
	}
	if x.conv.Done() {
		if !x.conv.Valid() {
			return nil, false, errors.New("proof invalid")
		}
		if a := x.conv.AuthzID(); a != "" && a != x.conv.Username() {
			return nil, false, fmt.Errorf("authorization id %q differs from the user name", a)
		}
		return []byte(resp), true, nil
	}
	return []byte(resp), false, nil
}

func (x *scramExchange) user() string { return x.name }

// finalWithPrefix checks a client-final-message whose nonce is not the
// server's but ends with it, which Kafka accepts (ScramSaslServer checks
// nonce().endsWith(the server's)) and librdkafka 2.0 sends (its client
// nonce, then the whole server nonce). xdg-go/scram wants the nonce equal,
// so this one case is checked here, the same way: channel binding "n",
// proof against the stored key over the AuthMessage as the client built
// it. ok is false for any other message (the library takes it).
func (x *scramExchange) finalWithPrefix(c2 string) (resp []byte, ok bool, err error) {
	snonce, found := strings.CutPrefix(strings.SplitN(x.s1, ",", 2)[0], "r=")
	if x.s1 == "" || !found || snonce == "" {
		return nil, false, nil
	}
	fields := strings.Split(c2, ",")
	if len(fields) < 3 {
		return nil, false, nil
	}
	nonce, found := strings.CutPrefix(fields[1], "r=")
	if !found || nonce == snonce || !strings.HasSuffix(nonce, snonce) {
		return nil, false, nil
	}
	// The gs2 header and the bare first message, as the library split
	// them: "n,," (or "n,a=...,") and the rest.
	gs2, bare, err := splitGS2(x.c1)
	if err != nil || !strings.HasPrefix(gs2, "n,") {
		return nil, true, errors.New("channel binding is not supported")
	}
	cbind, found := strings.CutPrefix(fields[0], "c=")
	if want := base64.StdEncoding.EncodeToString([]byte(gs2)); !found || cbind != want {
		return nil, true, errors.New("channel binding mismatch")
	}
	last := fields[len(fields)-1]
	proofB64, found := strings.CutPrefix(last, "p=")
	if !found {
		return nil, true, errors.New("client-final-message without a proof")
	}
	proof, err := base64.StdEncoding.DecodeString(proofB64)
	if err != nil {
		return nil, true, errors.New("proof is not base64")
	}
	auth := []byte(bare + "," + x.s1 + "," + strings.TrimSuffix(c2, ","+last))
	mac := hmac.New(x.hash, []byte(x.cred.StoredKey))
	mac.Write(auth)
	sig := mac.Sum(nil)
	if len(proof) != len(sig) {
		return nil, true, errors.New("proof invalid")
	}
	key := make([]byte, len(sig))
	for i := range sig {
		key[i] = proof[i] ^ sig[i]
	}
	h := x.hash()
	h.Write(key)
	if !hmac.Equal(h.Sum(nil), []byte(x.cred.StoredKey)) {
		return nil, true, errors.New("proof invalid")
	}
	if a := x.conv.AuthzID(); a != "" && a != x.conv.Username() {
		return nil, true, fmt.Errorf("authorization id %q differs from the user name", a)
	}
	mac = hmac.New(x.hash, []byte(x.cred.ServerKey))
	mac.Write(auth)
	return []byte("v=" + base64.StdEncoding.EncodeToString(mac.Sum(nil))), true, nil
}

// splitGS2 splits a client-first-message into its gs2 header (the first
// two fields and their commas) and the bare message.
func splitGS2(c1 string) (gs2, bare string, err error) {
	i := strings.IndexByte(c1, ',')
	if i < 0 {
		return "", "", errors.New("no gs2 header")
	}
	j := strings.IndexByte(c1[i+1:], ',')
	if j < 0 {
		return "", "", errors.New("no gs2 header")
	}
	return c1[:i+j+2], c1[i+j+2:], nil
}

// plainExchange checks a PLAIN message: authzid NUL authcid NUL passwd.
type plainExchange struct {
	cfg  *SASLConfig
	name string
}

func (x *plainExchange) step(msg []byte) ([]byte, bool, error) {
	parts := bytes.Split(msg, []byte{0})
	if len(parts) != 3 {
		return nil, false, errors.New("malformed PLAIN message")
	}
	authz, user, pass := string(parts[0]), string(parts[1]), string(parts[2])
	x.name = user
	if user == "" || pass == "" {
		return nil, false, errors.New("empty user name or password")
	}
	if authz != "" && authz != user {
		return nil, false, fmt.Errorf("authorization id %q differs from the user name", authz)
	}
	if err := checkPlain(x.cfg, user, pass); err != nil {
		return nil, false, err
	}
	return []byte{}, true, nil
}

func (x *plainExchange) user() string { return x.name }

// checkPlain checks a PLAIN password against the user's SCRAM
// credentials: it derives the stored key with the stored salt and
// iteration count and compares in constant time. SCRAM-SHA-512 is tried
// first, then SCRAM-SHA-256, whichever the user has.
func checkPlain(cfg *SASLConfig, user, pass string) error {
	for _, m := range []struct {
		mech string
		hash scram.HashGeneratorFcn
	}{{MechanismSCRAMSHA512, scram.SHA512}, {MechanismSCRAMSHA256, scram.SHA256}} {
		stored, ok := cfg.Credentials(m.mech, user)
		if !ok {
			continue
		}
		cl, err := m.hash.NewClient(user, pass, "")
		if err != nil {
			return fmt.Errorf("password not valid for SASLprep: %v", err)
		}
		got, err := cl.GetStoredCredentialsWithError(stored.KeyFactors)
		if err != nil {
			return err
		}
		if !hmac.Equal(got.StoredKey, stored.StoredKey) {
			return errors.New("wrong password")
		}
		return nil
	}
	return fmt.Errorf("no credentials for user %q", user)
}

// saslAnswer is what the reader does with one SASL request: the
// response for its slot, whether to stop reading and close once it is
// written, and a reason for the log.
type saslAnswer struct {
	resp  kmsg.Response
	close bool
}

// saslRequest answers SaslHandshake and SaslAuthenticate and moves the
// connection's state. It runs on the reader goroutine.
func (c *conn) saslRequest(rq request) saslAnswer {
	switch req := rq.kreq.(type) {
	case *kmsg.SASLHandshakeRequest:
		resp := req.ResponseKind().(*kmsg.SASLHandshakeResponse)
		resp.SupportedMechanisms = slices.Clone(c.s.cfg.SASL.Mechanisms)
		switch {
		case c.sasl != saslNeedHandshake:
			resp.ErrorCode = kerr.IllegalSaslState.Code
			if c.sasl == saslDone {
				return saslAnswer{resp: resp} // Kafka answers and carries on
			}
			c.logf("SaslHandshake during an exchange; closing")
			return saslAnswer{resp: resp, close: true}
		case !c.s.cfg.SASL.enabled(req.Mechanism):
			c.logf("SASL mechanism %q is not enabled; closing", req.Mechanism)
			resp.ErrorCode = kerr.UnsupportedSaslMechanism.Code
			return saslAnswer{resp: resp, close: true}
		}
		c.mech = req.Mechanism
		c.exchange = c.s.cfg.SASL.newExchange(req.Mechanism)
		c.sasl = saslNeedAuthenticate
		if req.Version == 0 {
			c.sasl = saslRawTokens
		}
		return saslAnswer{resp: resp}
	case *kmsg.SASLAuthenticateRequest:
		resp := req.ResponseKind().(*kmsg.SASLAuthenticateResponse)
		if c.sasl != saslNeedAuthenticate {
			resp.ErrorCode = kerr.IllegalSaslState.Code
			msg := "SaslAuthenticate before SaslHandshake"
			if c.sasl == saslDone {
				msg = "SaslAuthenticate after successful authentication"
			}
			resp.ErrorMessage = &msg
			if c.sasl == saslDone {
				return saslAnswer{resp: resp}
			}
			c.logf("%s; closing", msg)
			return saslAnswer{resp: resp, close: true}
		}
		out, err := c.saslStep(req.SASLAuthBytes)
		if err != nil {
			resp.ErrorCode = kerr.SaslAuthenticationFailed.Code
			msg := fmt.Sprintf("Authentication failed during authentication due to %v with SASL mechanism %s", errAuthFailed, c.mech)
			resp.ErrorMessage = &msg
			return saslAnswer{resp: resp, close: true}
		}
		resp.SASLAuthBytes = out
		return saslAnswer{resp: resp}
	}
	panic(fmt.Sprintf("netwire: saslRequest given %T", rq.kreq))
}

// saslStep feeds msg to the exchange, logging a failure and recording
// a success as the connection's principal.
func (c *conn) saslStep(msg []byte) ([]byte, error) {
	out, done, err := c.exchange.step(msg)
	if err != nil {
		c.logf("SASL %s authentication of user %q failed: %v; closing", c.mech, c.exchange.user(), err)
		return nil, err
	}
	if done {
		c.sasl = saslDone
		c.principal = "User:" + c.exchange.user()
		c.exchange = nil
	}
	return out, nil
}
