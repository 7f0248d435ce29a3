package netwire

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"time"
)

// SecurityProtocol is a listener's Kafka security protocol.
type SecurityProtocol int

const (
	Plaintext     SecurityProtocol = iota // PLAINTEXT
	SSL                                   // SSL: TLS, optionally with client certificates
	SASLPlaintext                         // SASL_PLAINTEXT
	SASLSSL                               // SASL_SSL: SASL inside TLS
)

var protocolNames = [...]string{"PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"}

func (p SecurityProtocol) String() string {
	if p < 0 || int(p) >= len(protocolNames) {
		return fmt.Sprintf("SecurityProtocol(%d)", int(p))
	}
	return protocolNames[p]
}

// ParseSecurityProtocol reads a Kafka security protocol name (any case).
func ParseSecurityProtocol(s string) (SecurityProtocol, error) {
	for i, n := range protocolNames {
		if strings.EqualFold(s, n) {
			return SecurityProtocol(i), nil
		}
	}
	return 0, fmt.Errorf("netwire: unknown security protocol %q (want PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL)", s)
}

// TLS reports whether the protocol runs over TLS.
func (p SecurityProtocol) TLS() bool { return p == SSL || p == SASLSSL }

// SASL reports whether the protocol authenticates with SASL.
func (p SecurityProtocol) SASL() bool { return p == SASLPlaintext || p == SASLSSL }

// Listener is one listener a Server serves (ServeListener).
type Listener struct {
	// Name is the listener's name (Kafka's listener names: upper case),
	// passed to the Handler in ConnInfo.Listener.
	Name     string
	Protocol SecurityProtocol
	// TLS is the server configuration of an SSL or SASL_SSL listener;
	// netwire refuses anything below TLS 1.2 whatever it says.
	TLS *tls.Config
}

func (l *Listener) check(haveSASL bool) error {
	if l.Name == "" {
		return errors.New("netwire: listener without a name")
	}
	if l.Protocol.TLS() != (l.TLS != nil) {
		return fmt.Errorf("netwire: listener %s: protocol %s with%s a TLS configuration", l.Name, l.Protocol, map[bool]string{true: "", false: "out"}[l.TLS != nil])
	}
	if l.Protocol.SASL() && !haveSASL {
		return fmt.Errorf("netwire: listener %s: protocol %s without Config.SASL", l.Name, l.Protocol)
	}
	if l.TLS != nil {
		l.TLS = l.TLS.Clone()
		l.TLS.MinVersion = max(l.TLS.MinVersion, tls.VersionTLS12)
	}
	return nil
}

const (
	// tlsHandshakeTimeout bounds a client's TLS handshake, so a peer that
	// connects and says nothing holds a connection slot only so long.
	tlsHandshakeTimeout = 10 * time.Second

	// anonymous is Kafka's principal of an unauthenticated connection.
	anonymous = "User:ANONYMOUS"
)

// certPrincipal is the principal of a verified TLS client certificate:
// its subject in RFC 2253 form, as Kafka's default principal builder
// (X500Principal.getName()) gives it, or ANONYMOUS without one.
func certPrincipal(cs tls.ConnectionState) string {
	if len(cs.VerifiedChains) == 0 || len(cs.PeerCertificates) == 0 {
		return anonymous
	}
	return "User:" + cs.PeerCertificates[0].Subject.String()
}

// ClientAuth is Kafka's ssl.client.auth: whether an SSL listener asks
// clients for a certificate.
type ClientAuth int

const (
	ClientAuthNone      ClientAuth = iota // none: no client certificate asked
	ClientAuthRequested                   // requested: verified if given
	ClientAuthRequired                    // required: refused without one
)

// ParseClientAuth reads Kafka's ssl.client.auth values.
func ParseClientAuth(s string) (ClientAuth, error) {
	switch strings.ToLower(s) {
	case "", "none":
		return ClientAuthNone, nil
	case "requested":
		return ClientAuthRequested, nil
	case "required":
		return ClientAuthRequired, nil
	}
	return 0, fmt.Errorf("netwire: ssl client auth %q: want none, requested or required", s)
}

// CertFiles holds a certificate and key loaded from PEM files, reloaded
// by Reload (the runtime calls it on SIGHUP); connections handshaking
// after a Reload get the new certificate, open ones keep theirs.
type CertFiles struct {
	certFile, keyFile string

	mu   sync.RWMutex
	cert *tls.Certificate
}

// LoadCertFiles reads certFile and keyFile (PEM).
func LoadCertFiles(certFile, keyFile string) (*CertFiles, error) {
	c := &CertFiles{certFile: certFile, keyFile: keyFile}
	if err := c.Reload(); err != nil {
		return nil, err
	}
	return c, nil
}

// Reload reads the files again; on error the previous certificate stays.
func (c *CertFiles) Reload() error {
	cert, err := tls.LoadX509KeyPair(c.certFile, c.keyFile)
	if err != nil {
		return fmt.Errorf("netwire: certificate %s, key %s: %w", c.certFile, c.keyFile, err)
	}
	c.mu.Lock()
	c.cert = &cert
	c.mu.Unlock()
	return nil
}

// GetCertificate is tls.Config.GetCertificate.
func (c *CertFiles) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.cert, nil
}

// GetClientCertificate is tls.Config.GetClientCertificate: the
// certificate a TLS client presents, whatever the server asks for.
func (c *CertFiles) GetClientCertificate(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.cert, nil
}

// loadCAPool reads the PEM certificates of file into a pool; what is
// the CA for (client, peer) prefixes the errors.
func loadCAPool(what, file string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("netwire: %s CA: %w", what, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("netwire: %s CA %s: no PEM certificate in it", what, file)
	}
	return pool, nil
}

// PeerTLS is the mutual TLS of the inter-broker raft transport: both
// sides present certs (re-read by Reload for new connections) and
// require the other side's certificate to chain to a CA in caFile. The
// server requires a client certificate (its extended key usage must
// allow client authentication); the client verifies the server's
// certificate against the host it dials, which the caller sets as
// ServerName per connection (an IP address matches an IP SAN). Both
// refuse anything below TLS 1.2.
func PeerTLS(certs *CertFiles, caFile string) (server, client *tls.Config, err error) {
	if certs == nil {
		return nil, nil, errors.New("netwire: peer TLS needs a certificate and key")
	}
	if caFile == "" {
		return nil, nil, errors.New("netwire: peer TLS needs a CA file to verify peers' certificates")
	}
	pool, err := loadCAPool("peer", caFile)
	if err != nil {
		return nil, nil, err
	}
	server = &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: certs.GetCertificate,
		ClientCAs:      pool,
		ClientAuth:     tls.RequireAndVerifyClientCert,
		// A peer is a broker: its certificate serves as well. A client
		// certificate the same CA signed (gregor dev --secure's admin.pem)
		// is not one.
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("netwire: peer sent no certificate")
			}
			leaf := cs.PeerCertificates[0]
			if len(leaf.ExtKeyUsage) == 0 || slices.Contains(leaf.ExtKeyUsage, x509.ExtKeyUsageServerAuth) || slices.Contains(leaf.ExtKeyUsage, x509.ExtKeyUsageAny) {
				return nil
			}
			return fmt.Errorf("netwire: peer certificate %q is not a broker's: it is not valid for serving (extended key usage serverAuth)", leaf.Subject)
		},
	}
	client = &tls.Config{
		MinVersion:           tls.VersionTLS12,
		GetClientCertificate: certs.GetClientCertificate,
		RootCAs:              pool,
	}
	return server, client, nil
}

// ServerTLS is the TLS configuration of a listener serving certs, asking
// for client certificates as auth says and verifying them against the
// PEM certificates in clientCAFile (required unless auth is none).
func ServerTLS(certs *CertFiles, auth ClientAuth, clientCAFile string) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: certs.GetCertificate}
	if auth == ClientAuthNone {
		return cfg, nil
	}
	if clientCAFile == "" {
		return nil, errors.New("netwire: client certificate authentication needs a CA file to verify them")
	}
	pool, err := loadCAPool("client", clientCAFile)
	if err != nil {
		return nil, err
	}
	cfg.ClientCAs = pool
	cfg.ClientAuth = tls.VerifyClientCertIfGiven
	if auth == ClientAuthRequired {
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return cfg, nil
}
