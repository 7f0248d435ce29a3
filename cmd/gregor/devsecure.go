package main

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/gregor-streaming/gregor/engine/runtime"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// The secure dev cluster (gregor dev --secure): a CA and a broker
// certificate, a bootstrap users file with the super user admin, and the
// client configuration files, all under <data>/secure. They are kept
// across restarts (the same password, the same CA a client already
// trusts) and made again with --fresh or when the certificate nears its
// end.
const (
	devSecureDir = "secure"
	devAdminUser = "admin"
	// devCertValidity is how long the generated certificates last;
	// devCertRenewBefore is how close to its end a kept one is remade.
	devCertValidity    = 365 * 24 * time.Hour
	devCertRenewBefore = 7 * 24 * time.Hour
	// devPasswordBytes is the randomness of a generated admin password.
	devPasswordBytes = 18
	// devMechanism is the mechanism the client files name.
	devMechanism = "SCRAM-SHA-512"
)

// devSecure is the files of a secure dev cluster.
type devSecure struct {
	dir         string
	caCert      string // ca.pem: what clients trust
	caKey       string
	cert        string // broker.pem: every broker's certificate, server and client (peer transport)
	key         string
	adminCert   string // admin.pem: a client certificate for the SSL listeners, principal User:CN=admin
	adminKey    string
	users       string // the --sasl-users bootstrap file: admin:password
	clientProps string // client.properties: the Java tools and gregor
	kcatConf    string // kcat.conf: librdkafka (kcat -F)
	password    string
	// newPassword reports that the password was generated now: it is
	// printed once.
	newPassword bool
}

func newDevSecure(data string) *devSecure {
	dir, _ := filepath.Abs(filepath.Join(data, devSecureDir))
	return &devSecure{
		dir:         dir,
		caCert:      filepath.Join(dir, "ca.pem"),
		caKey:       filepath.Join(dir, "ca.key"),
		cert:        filepath.Join(dir, "broker.pem"),
		key:         filepath.Join(dir, "broker.key"),
		adminCert:   filepath.Join(dir, "admin.pem"),
		adminKey:    filepath.Join(dir, "admin.key"),
		users:       filepath.Join(dir, "users"),
		clientProps: filepath.Join(dir, "client.properties"),
		kcatConf:    filepath.Join(dir, "kcat.conf"),
	}
}

// checkDevPassword refuses a password the client files cannot carry.
func checkDevPassword(p string) error {
	if p == "" {
		return errors.New("--admin-password is empty")
	}
	if strings.ContainsAny(p, "\"\\\r\n") {
		return errors.New("--admin-password: quotes, backslashes and line breaks cannot be written to client.properties; choose another")
	}
	return nil
}

// prepare makes or keeps the certificates and the users file. password
// is --admin-password ("" keeps the stored one or makes one).
func (s *devSecure) prepare(fresh bool, password string) error {
	if fresh {
		if err := os.RemoveAll(s.dir); err != nil {
			return fmt.Errorf("--fresh: %v", err)
		}
	}
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return err
	}
	if !s.certsUsable(time.Now()) {
		if err := s.makeCerts(time.Now()); err != nil {
			return fmt.Errorf("certificates: %v", err)
		}
	}
	switch {
	case password != "":
		s.password = password
	default:
		if p, err := readDevAdmin(s.users); err == nil {
			s.password = p
		} else {
			b := make([]byte, devPasswordBytes)
			rand.Read(b)
			s.password, s.newPassword = base64.RawURLEncoding.EncodeToString(b), true
		}
	}
	return writePrivate(s.users, fmt.Sprintf("# gregor dev --secure: the bootstrap super user (gregor serve --sasl-users)\n%s:%s\n", devAdminUser, s.password))
}

// readDevAdmin reads admin's password from a users file.
func readDevAdmin(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if u, p, ok := strings.Cut(strings.TrimSpace(sc.Text()), ":"); ok && u == devAdminUser && checkDevPassword(p) == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s: no %s line", path, devAdminUser)
}

// certsUsable reports whether the kept CA and certificates load, chain
// and last a while yet.
func (s *devSecure) certsUsable(now time.Time) bool {
	caPEM, err := os.ReadFile(s.caCert)
	if err != nil {
		return false
	}
	if _, err := os.Stat(s.caKey); err != nil {
		return false
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(caPEM) {
		return false
	}
	for _, c := range []struct {
		cert, key, host string
		usage           []x509.ExtKeyUsage
	}{
		{s.cert, s.key, "127.0.0.1", []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}},
		{s.adminCert, s.adminKey, "", []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}},
	} {
		pair, err := tls.LoadX509KeyPair(c.cert, c.key)
		if err != nil {
			return false
		}
		leaf, err := x509.ParseCertificate(pair.Certificate[0])
		if err != nil {
			return false
		}
		if _, err = leaf.Verify(x509.VerifyOptions{Roots: roots, CurrentTime: now.Add(devCertRenewBefore), DNSName: c.host, KeyUsages: c.usage}); err != nil {
			return false
		}
	}
	return true
}

// makeCerts writes a new CA and a broker certificate for 127.0.0.1, ::1
// and localhost, good for serving and for dialling peers.
func (s *devSecure) makeCerts(now time.Time) error {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	ca := &x509.Certificate{
		SerialNumber:          devSerial(),
		Subject:               pkix.Name{CommonName: "Gregor dev CA", Organization: []string{"gregor dev"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(devCertValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		return err
	}
	if ca, err = x509.ParseCertificate(caDER); err != nil {
		return err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	leaf := &x509.Certificate{
		SerialNumber: devSerial(),
		Subject:      pkix.Name{CommonName: "gregor-dev-broker", Organization: []string{"gregor dev"}},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(devCertValidity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leaf, ca, &key.PublicKey, caKey)
	if err != nil {
		return err
	}
	adminKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	admin := &x509.Certificate{
		SerialNumber: devSerial(),
		Subject:      pkix.Name{CommonName: devAdminUser},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(devCertValidity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	adminDER, err := x509.CreateCertificate(rand.Reader, admin, ca, &adminKey.PublicKey, caKey)
	if err != nil {
		return err
	}
	var keyDER [3][]byte
	for i, k := range []*ecdsa.PrivateKey{caKey, key, adminKey} {
		if keyDER[i], err = x509.MarshalPKCS8PrivateKey(k); err != nil {
			return err
		}
	}
	pemOf := func(typ string, der []byte) string {
		return string(pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}))
	}
	for _, f := range []struct{ path, text string }{
		{s.caKey, pemOf("PRIVATE KEY", keyDER[0])},
		{s.key, pemOf("PRIVATE KEY", keyDER[1])},
		{s.adminKey, pemOf("PRIVATE KEY", keyDER[2])},
		{s.caCert, pemOf("CERTIFICATE", caDER)},
		{s.cert, pemOf("CERTIFICATE", leafDER) + pemOf("CERTIFICATE", caDER)},
		{s.adminCert, pemOf("CERTIFICATE", adminDER)},
	} {
		if err := writePrivate(f.path, f.text); err != nil {
			return err
		}
	}
	return nil
}

func devSerial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	return n
}

// writePrivate writes text to path readable by its owner only, through a
// temporary file so a reader never sees half of it.
func writePrivate(path, text string) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(text), 0o600); err != nil {
		return err
	}
	if err := os.Chmod(tmp, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// writeClientFiles writes client.properties and kcat.conf for the
// cluster's bound addresses.
func (s *devSecure) writeClientFiles(bootstrap []string) error {
	servers := strings.Join(bootstrap, ",")
	java := fmt.Sprintf(`# gregor dev --secure: SASL_SSL with %[1]s as the super user %[2]s.
# Java tools: --command-config (or --consumer.config, --producer.config) this file.
# gregor: --command-config this file (it reads bootstrap.servers too).
# kcat and librdkafka: use kcat.conf beside it (kcat -F).
bootstrap.servers=%[3]s
security.protocol=SASL_SSL
sasl.mechanism=%[1]s
sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="%[2]s" password="%[4]s";
ssl.truststore.type=PEM
ssl.truststore.location=%[5]s
`, devMechanism, devAdminUser, servers, s.password, s.caCert)
	kcat := fmt.Sprintf(`# gregor dev --secure, for librdkafka clients: kcat -F this file.
bootstrap.servers=%[3]s
security.protocol=SASL_SSL
sasl.mechanisms=%[1]s
sasl.username=%[2]s
sasl.password=%[4]s
ssl.ca.location=%[5]s
`, devMechanism, devAdminUser, servers, s.password, s.caCert)
	if err := writePrivate(s.clientProps, java); err != nil {
		return err
	}
	return writePrivate(s.kcatConf, kcat)
}

// devListeners are one broker's listener addresses in a secure dev
// cluster: SASL_SSL (the one the client files name), SSL with client
// certificates required, and SASL_PLAINTEXT only if asked for.
type devListeners struct{ saslSSL, ssl, saslPlain string }

func (l devListeners) flag() string {
	out := "SASL_SSL://" + l.saslSSL + ",SSL://" + l.ssl
	if l.saslPlain != "" {
		out += ",SASL_PLAINTEXT://" + l.saslPlain
	}
	return out
}

// devSuperUsers are admin by SASL and by its client certificate.
const devSuperUsers = "User:" + devAdminUser + ";User:CN=" + devAdminUser

// options are the serve security flags every broker of the cluster runs
// with.
func (s *devSecure) options(l devListeners) securityOptions {
	return securityOptions{
		listeners:   l.flag(),
		tlsCert:     s.cert,
		tlsKey:      s.key,
		tlsClientCA: s.caCert,
		clientAuth:  "required",
		mechanisms:  defaultSASLMechanisms,
		users:       s.users,
		authorizer:  true,
		superUsers:  devSuperUsers,
		peerCA:      s.caCert, // the broker certificate serves the peer transport too
	}
}

// serveFlags is options as gregor serve flags (--print-commands).
func (s *devSecure) serveFlags(l devListeners) string {
	return fmt.Sprintf(" --listeners %s --tls-cert %s --tls-key %s --tls-client-ca %s --ssl-client-auth required --sasl-users %s --authorizer --super-users '%s' --peer-tls-ca %s",
		l.flag(), shellQuote(s.cert), shellQuote(s.key), shellQuote(s.caCert), shellQuote(s.users), devSuperUsers, shellQuote(s.caCert))
}

// waitListed waits until every broker's Metadata answer lists all the
// brokers, asked on its SSL listener with admin's certificate. With named
// listeners a broker tells clients of another only once that one's
// registration (its listeners) is in the metadata log, a few ticks after
// the controller is elected: until then each broker lists itself alone,
// and a partition another leads is answered LISTENER_NOT_FOUND, which
// kafkajs's createTopics does not retry. Ready waits for it.
func (s *devSecure) waitListed(nodes []*runtime.Node, max time.Duration) error {
	caPEM, err := os.ReadFile(s.caCert)
	if err != nil {
		return err
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(caPEM)
	pair, err := tls.LoadX509KeyPair(s.adminCert, s.adminKey)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), max)
	defer cancel()
	for _, n := range nodes {
		cl, err := kgo.NewClient(kgo.SeedBrokers(n.ListenerAddr("SSL")),
			kgo.DialTLSConfig(&tls.Config{RootCAs: roots, Certificates: []tls.Certificate{pair}}))
		if err != nil {
			return err
		}
		listed := 0
		for listed < len(nodes) && ctx.Err() == nil {
			req := kmsg.NewPtrMetadataRequest()
			req.Topics = []kmsg.MetadataRequestTopic{}
			if resp, err := req.RequestWith(ctx, cl.SeedBrokers()[0]); err == nil {
				listed = len(resp.Brokers)
			}
			if listed < len(nodes) {
				time.Sleep(10 * time.Millisecond)
			}
		}
		cl.Close()
		if listed < len(nodes) {
			return fmt.Errorf("broker %d lists %d of the %d brokers after %v", n.Config().Broker.ID, listed, len(nodes), max)
		}
	}
	return nil
}
