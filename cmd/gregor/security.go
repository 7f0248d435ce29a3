package main

import (
	"bufio"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/gregor-streaming/gregor/engine"
	"github.com/gregor-streaming/gregor/engine/runtime"
	"github.com/gregor-streaming/gregor/netwire"
	"github.com/xdg-go/scram"
)

// securityOptions are serve's listener, TLS and SASL flags, Kafka's
// names where Kafka has one.
type securityOptions struct {
	listeners   string // Kafka's listeners: NAME://host:port,...
	advertised  string // Kafka's advertised.listeners
	protocolMap string // Kafka's listener.security.protocol.map: NAME:PROTOCOL,...
	tlsCert     string
	tlsKey      string
	tlsClientCA string
	clientAuth  string // Kafka's ssl.client.auth
	mechanisms  string // Kafka's sasl.enabled.mechanisms
	users       string // the users file
	// ACLs: Kafka's authorizer.class.name (set or not), super.users and
	// allow.everyone.if.no.acl.found.
	authorizer    bool
	superUsers    string
	allowEveryone bool

	// The raft peer transport's mutual TLS: on with peerCA; the
	// certificate and key default to tlsCert and tlsKey.
	peerCA   string
	peerCert string
	peerKey  string
}

const (
	defaultSASLMechanisms = "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512"
	// usersLinesMax bounds a --sasl-users file.
	usersLinesMax = 100_000
	// scramIterations is the PBKDF2 iteration count of credentials derived
	// from the users file: Kafka's minimum and kafka-configs' default.
	scramIterations = 4096
	// scramSaltBytes is the length of their random salts.
	scramSaltBytes = 24
)

func (o *securityOptions) register(fs *flag.FlagSet) {
	fs.StringVar(&o.listeners, "listeners", "",
		"Kafka listeners NAME://host:port,... (Kafka's listeners; replaces --listen); an empty host binds every interface")
	fs.StringVar(&o.advertised, "advertised-listeners", "",
		"addresses clients of each listener are told, NAME://host:port,... (Kafka's advertised.listeners; default the --listeners address)")
	fs.StringVar(&o.protocolMap, "listener-security-protocol-map", "",
		"NAME:PROTOCOL,... with PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL (Kafka's listener.security.protocol.map); a listener named after a protocol speaks it")
	fs.StringVar(&o.tlsCert, "tls-cert", "", "PEM certificate (chain) of SSL and SASL_SSL listeners; re-read on SIGHUP")
	fs.StringVar(&o.tlsKey, "tls-key", "", "PEM private key of --tls-cert; re-read on SIGHUP")
	fs.StringVar(&o.tlsClientCA, "tls-client-ca", "", "PEM CA certificates that client certificates must chain to")
	fs.StringVar(&o.clientAuth, "ssl-client-auth", "none",
		"client certificates on SSL listeners (not SASL_SSL ones): none, requested or required (Kafka's ssl.client.auth); the principal is the certificate's subject")
	fs.StringVar(&o.peerCA, "peer-tls-ca", "",
		"PEM CA certificates of the cluster: makes the raft peer transport mutual TLS, every broker's peer certificate must chain to them (without it the peer port is plain TCP and unauthenticated)")
	fs.StringVar(&o.peerCert, "peer-tls-cert", "",
		"PEM certificate (chain) this broker presents to its peers, as server and as client; it must name the host of its peer address in --cluster (default --tls-cert); re-read on SIGHUP")
	fs.StringVar(&o.peerKey, "peer-tls-key", "", "PEM private key of --peer-tls-cert (default --tls-key); re-read on SIGHUP")
	fs.StringVar(&o.mechanisms, "sasl-enabled-mechanisms", defaultSASLMechanisms,
		"SASL mechanisms of SASL_PLAINTEXT and SASL_SSL listeners (Kafka's sasl.enabled.mechanisms)")
	fs.StringVar(&o.users, "sasl-users", "",
		"bootstrap users: a file of user:password lines, readable by its owner only, turned into salted SCRAM credentials at start and on SIGHUP (the passwords are not kept); "+
			"a user with credentials in the cluster (gregor user create) is looked up there only")
	fs.BoolVar(&o.authorizer, "authorizer", false,
		"check every client request against the cluster's ACLs (Kafka: authorizer.class.name set); off, every client may do everything")
	fs.StringVar(&o.superUsers, "super-users", "",
		"principals the authorizer allows everything, User:name;User:other (Kafka's super.users)")
	fs.BoolVar(&o.allowEveryone, "allow-everyone-if-no-acl-found", false,
		"with --authorizer, allow what no ACL covers (Kafka's allow.everyone.if.no.acl.found)")
}

// applyAuthorizer sets the authorizer's part of the broker's
// configuration.
func (o *securityOptions) applyAuthorizer(c *engine.Config) error {
	var supers []string
	for _, p := range strings.Split(o.superUsers, ";") {
		if p = strings.TrimSpace(p); p == "" {
			continue
		}
		if typ, name, ok := strings.Cut(p, ":"); !ok || typ == "" || name == "" {
			return fmt.Errorf("--super-users entry %q: want Type:name, as User:admin", p)
		}
		supers = append(supers, p)
	}
	if !o.authorizer && (len(supers) > 0 || o.allowEveryone) {
		return errors.New("--super-users and --allow-everyone-if-no-acl-found need --authorizer")
	}
	c.Authorizer, c.SuperUsers, c.AllowEveryoneIfNoACLFound = o.authorizer, supers, o.allowEveryone
	return nil
}

// parseListenerURLs parses NAME://host:port,... into names and addresses
// in order; names are upper-cased and must be unique.
func parseListenerURLs(flagName, s string) ([]string, map[string]string, error) {
	var names []string
	addrs := map[string]string{}
	for _, entry := range strings.Split(s, ",") {
		entry = strings.TrimSpace(entry)
		name, addr, ok := strings.Cut(entry, "://")
		if !ok || name == "" {
			return nil, nil, fmt.Errorf("--%s entry %q: want NAME://host:port", flagName, entry)
		}
		name = strings.ToUpper(name)
		if _, _, err := splitHostPort(addr); err != nil {
			return nil, nil, fmt.Errorf("--%s entry %q: %v", flagName, entry, err)
		}
		if _, dup := addrs[name]; dup {
			return nil, nil, fmt.Errorf("--%s names listener %s twice", flagName, name)
		}
		names = append(names, name)
		addrs[name] = addr
	}
	return names, addrs, nil
}

// serveSecurity is what the security flags give serve: the listeners,
// the SASL configuration, the peer transport's TLS and what SIGHUP
// re-reads.
type serveSecurity struct {
	listeners []runtime.Listener
	sasl      *netwire.SASLConfig
	// peer is the raft transport's mutual TLS; nil: plain TCP.
	peer *runtime.PeerTLS
	// reload re-reads the certificate files and the users file.
	reload func() error
}

// peerTLS makes the raft transport's mutual TLS from --peer-tls-ca and
// the peer certificate and key (--peer-tls-cert and --peer-tls-key,
// else --tls-cert and --tls-key). Without --peer-tls-ca it is nil, and
// a peer certificate given without it is an error rather than silently
// unused.
func (o *securityOptions) peerTLS() (*runtime.PeerTLS, *netwire.CertFiles, error) {
	if o.peerCA == "" {
		if o.peerCert != "" || o.peerKey != "" {
			return nil, nil, errors.New("--peer-tls-cert and --peer-tls-key need --peer-tls-ca, the CA that every broker's peer certificate chains to")
		}
		return nil, nil, nil
	}
	if (o.peerCert == "") != (o.peerKey == "") {
		return nil, nil, errors.New("--peer-tls-cert and --peer-tls-key go together")
	}
	certFile, keyFile, flagName := o.peerCert, o.peerKey, "--peer-tls-cert"
	if certFile == "" {
		certFile, keyFile, flagName = o.tlsCert, o.tlsKey, "--tls-cert (the peer certificate by default)"
	}
	if certFile == "" || keyFile == "" {
		return nil, nil, errors.New("--peer-tls-ca needs this broker's peer certificate and key: --peer-tls-cert and --peer-tls-key, or --tls-cert and --tls-key")
	}
	certs, err := netwire.LoadCertFiles(certFile, keyFile)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %v", flagName, err)
	}
	server, client, err := netwire.PeerTLS(certs, o.peerCA)
	if err != nil {
		return nil, nil, fmt.Errorf("--peer-tls-ca: %v", err)
	}
	return &runtime.PeerTLS{Server: server, Client: client}, certs, nil
}

// build turns the flags into listeners and the peer transport's TLS.
// listen and advertise are the legacy single-listener flags (listenSet:
// --listen was given); with --listeners unset they make the one
// PLAINTEXT listener.
func (o *securityOptions) build(listen, advertise string, listenSet bool) (*serveSecurity, error) {
	peer, peerCerts, err := o.peerTLS()
	if err != nil {
		return nil, err
	}
	reloadPeer := func() error {
		if peerCerts == nil {
			return nil
		}
		return peerCerts.Reload()
	}
	sec := &serveSecurity{peer: peer, reload: reloadPeer}
	if o.listeners == "" {
		if o.advertised != "" || o.protocolMap != "" {
			return nil, errors.New("--advertised-listeners and --listener-security-protocol-map need --listeners")
		}
		sec.listeners = []runtime.Listener{{Name: "PLAINTEXT", Protocol: netwire.Plaintext, Listen: listen, Advertise: advertise}}
		return sec, nil
	}
	if listenSet || advertise != "" {
		return nil, errors.New("--listen and --advertise are the single-listener form of --listeners: give one or the other")
	}
	names, binds, err := parseListenerURLs("listeners", o.listeners)
	if err != nil {
		return nil, err
	}
	adverts := map[string]string{}
	if o.advertised != "" {
		var anames []string
		anames, adverts, err = parseListenerURLs("advertised-listeners", o.advertised)
		if err != nil {
			return nil, err
		}
		for _, n := range anames {
			if _, ok := binds[n]; !ok {
				return nil, fmt.Errorf("--advertised-listeners names %s, which --listeners does not", n)
			}
		}
	}
	protocols := map[string]netwire.SecurityProtocol{}
	if o.protocolMap != "" {
		for _, entry := range strings.Split(o.protocolMap, ",") {
			name, proto, ok := strings.Cut(strings.TrimSpace(entry), ":")
			if !ok {
				return nil, fmt.Errorf("--listener-security-protocol-map entry %q: want NAME:PROTOCOL", entry)
			}
			p, err := netwire.ParseSecurityProtocol(proto)
			if err != nil {
				return nil, fmt.Errorf("--listener-security-protocol-map entry %q: %v", entry, err)
			}
			protocols[strings.ToUpper(name)] = p
		}
	}
	var certs *netwire.CertFiles
	var serverTLS = func() (*netwire.CertFiles, error) {
		if certs != nil {
			return certs, nil
		}
		if o.tlsCert == "" || o.tlsKey == "" {
			return nil, errors.New("SSL and SASL_SSL listeners need --tls-cert and --tls-key")
		}
		c, err := netwire.LoadCertFiles(o.tlsCert, o.tlsKey)
		if err != nil {
			return nil, fmt.Errorf("--tls-cert: %v", err)
		}
		certs = c
		return c, nil
	}
	auth, err := netwire.ParseClientAuth(o.clientAuth)
	if err != nil {
		return nil, fmt.Errorf("--ssl-client-auth: %v", err)
	}
	needSASL := false
	for _, name := range names {
		p, ok := protocols[name]
		if !ok {
			if p, err = netwire.ParseSecurityProtocol(name); err != nil {
				return nil, fmt.Errorf("listener %s: not in --listener-security-protocol-map and not a protocol name", name)
			}
		}
		l := runtime.Listener{Name: name, Protocol: p, Listen: binds[name], Advertise: adverts[name]}
		if l.Advertise == "" {
			l.Advertise = l.Listen
		}
		if host, _, _ := splitHostPort(l.Advertise); host == "" || host == "0.0.0.0" || host == "::" {
			return nil, fmt.Errorf("listener %s: clients need a concrete host; set it in --advertised-listeners", name)
		}
		if p.TLS() {
			c, err := serverTLS()
			if err != nil {
				return nil, err
			}
			// As Kafka: ssl.client.auth applies to SSL listeners; SASL_SSL
			// clients authenticate with SASL and are not asked for one.
			la := auth
			if p == netwire.SASLSSL {
				la = netwire.ClientAuthNone
			}
			if l.TLS, err = netwire.ServerTLS(c, la, o.tlsClientCA); err != nil {
				return nil, fmt.Errorf("--tls-client-ca: %v", err)
			}
		}
		needSASL = needSASL || p.SASL()
		sec.listeners = append(sec.listeners, l)
	}
	var users *usersFile
	if needSASL {
		var mechs []string
		for _, m := range strings.Split(o.mechanisms, ",") {
			m = strings.ToUpper(strings.TrimSpace(m))
			if !slices.Contains([]string{netwire.MechanismPlain, netwire.MechanismSCRAMSHA256, netwire.MechanismSCRAMSHA512}, m) {
				return nil, fmt.Errorf("--sasl-enabled-mechanisms: %q is not PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512", m)
			}
			mechs = append(mechs, m)
		}
		sec.sasl = &netwire.SASLConfig{Mechanisms: mechs}
		// Without a users file every user comes from the metadata group
		// (gregor user create through another listener, or a cluster
		// whose users exist already).
		if o.users != "" {
			users = &usersFile{path: o.users}
			if err := users.load(); err != nil {
				return nil, err
			}
			sec.sasl.Credentials = users.credentials
		}
	}
	sec.reload = func() error {
		errs := []error{reloadPeer()}
		if certs != nil {
			errs = append(errs, certs.Reload())
		}
		if users != nil {
			errs = append(errs, users.load())
		}
		return errors.Join(errs...)
	}
	return sec, nil
}

// usersFile is the --sasl-users store: SCRAM-SHA-256 and SCRAM-SHA-512
// credentials per user, derived from the file's passwords with random
// salts when it is read; the passwords themselves are not kept.
//
// It is a bootstrap: the node asks it only about users the metadata
// group has no credentials for (runtime.Node.credentials), so the first
// administrator can log in before any user exists in the cluster. The
// file is per broker.
type usersFile struct {
	path  string
	creds atomic.Pointer[map[string]scram.StoredCredentials] // "MECH user"
}

func (u *usersFile) credentials(mech, user string) (scram.StoredCredentials, bool) {
	c, ok := (*u.creds.Load())[mech+" "+user]
	return c, ok
}

// load reads the file again; on error the previous credentials stay.
func (u *usersFile) load() error {
	f, err := os.Open(u.path)
	if err != nil {
		return fmt.Errorf("--sasl-users: %v", err)
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Mode().Perm()&0o077 != 0 {
		return fmt.Errorf("--sasl-users %s: mode %v lets others read the passwords; chmod 600 it", u.path, st.Mode().Perm())
	}
	creds := map[string]scram.StoredCredentials{}
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		if line > usersLinesMax {
			return fmt.Errorf("--sasl-users %s: more than %d lines", u.path, usersLinesMax)
		}
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		user, pass, ok := strings.Cut(text, ":")
		if !ok || user == "" || pass == "" {
			return fmt.Errorf("--sasl-users %s line %d: want user:password", u.path, line)
		}
		for _, m := range []struct {
			mech string
			hash scram.HashGeneratorFcn
		}{{netwire.MechanismSCRAMSHA256, scram.SHA256}, {netwire.MechanismSCRAMSHA512, scram.SHA512}} {
			c, err := deriveSCRAM(m.hash, user, pass)
			if err != nil {
				return fmt.Errorf("--sasl-users %s line %d: %v", u.path, line, err)
			}
			creds[m.mech+" "+user] = c
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("--sasl-users %s: %v", u.path, err)
	}
	u.creds.Store(&creds)
	return nil
}

// deriveSCRAM makes SCRAM credentials for user and pass with a random
// salt and scramIterations.
func deriveSCRAM(hash scram.HashGeneratorFcn, user, pass string) (scram.StoredCredentials, error) {
	cl, err := hash.NewClient(user, pass, "")
	if err != nil {
		return scram.StoredCredentials{}, err
	}
	salt := make([]byte, scramSaltBytes)
	rand.Read(salt)
	return cl.GetStoredCredentialsWithError(scram.KeyFactors{Salt: string(salt), Iters: scramIterations})
}
