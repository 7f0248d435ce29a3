package main

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"unicode"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// The client commands' TLS and SASL settings: flags, or Kafka's
// client.properties through --command-config (a flag given wins over
// the file).

// commandConfigBytesMax bounds a --command-config file.
const commandConfigBytesMax = 1 << 20

// clientSecurity is what the security flags and the command config
// resolve to.
type clientSecurity struct {
	tls       bool
	tlsCA     string // PEM file; empty: the system's CAs
	mechanism string // empty: no SASL
	user      string
	password  string
}

// resolveSecurity merges the flags with the command config, if any, and
// checks the result.
func (o *clientOptions) resolveSecurity() (clientSecurity, error) {
	s := clientSecurity{tls: o.tls || o.tlsCA != "", tlsCA: o.tlsCA, mechanism: strings.ToUpper(o.saslMechanism), user: o.user, password: o.password}
	saslOn := s.mechanism != "" || s.user != "" || s.password != ""
	if o.commandConfig != "" {
		props, err := o.commandProps()
		if err != nil {
			return s, err
		}
		bad := func(key, f string, a ...any) error {
			return fmt.Errorf("--command-config %s: %s: %s", o.commandConfig, key, fmt.Sprintf(f, a...))
		}
		if p, ok := props["security.protocol"]; ok {
			switch strings.ToUpper(p) {
			case "PLAINTEXT":
			case "SSL":
				s.tls = true
			case "SASL_PLAINTEXT":
				saslOn = true
			case "SASL_SSL":
				s.tls, saslOn = true, true
			default:
				return s, bad("security.protocol", "%q is not PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL", p)
			}
		}
		if t, ok := props["ssl.truststore.type"]; ok && !strings.EqualFold(t, "PEM") {
			return s, bad("ssl.truststore.type", "%q: gregor reads PEM trust stores only", t)
		}
		// The Java client's names, then librdkafka's (kcat.conf).
		for _, k := range []string{"ssl.truststore.location", "ssl.ca.location"} {
			if loc := props[k]; loc != "" && s.tlsCA == "" {
				s.tlsCA = loc
			}
		}
		for _, k := range []string{"sasl.mechanism", "sasl.mechanisms"} {
			if m := props[k]; m != "" && s.mechanism == "" {
				if strings.Contains(m, ",") {
					return s, bad(k, "%q: name one mechanism", m)
				}
				s.mechanism = strings.ToUpper(strings.TrimSpace(m))
			}
		}
		if s.user == "" {
			s.user = props["sasl.username"]
		}
		if s.password == "" {
			s.password = props["sasl.password"]
		}
		if jaas, ok := props["sasl.jaas.config"]; ok {
			opts, err := parseJAAS(jaas)
			if err != nil {
				return s, bad("sasl.jaas.config", "%v", err)
			}
			if s.user == "" {
				s.user = opts["username"]
			}
			if s.password == "" {
				s.password = opts["password"]
			}
		}
	}
	if !saslOn {
		return s, nil
	}
	if s.mechanism == "" {
		s.mechanism = "SCRAM-SHA-512"
	}
	switch s.mechanism {
	case "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512":
	default:
		return s, fmt.Errorf("--sasl-mechanism %q: want PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512", s.mechanism)
	}
	if s.user == "" || s.password == "" {
		return s, errors.New("SASL needs --user and --password (or sasl.jaas.config's username and password in --command-config)")
	}
	return s, nil
}

// commandProps reads --command-config once (nil without one).
func (o *clientOptions) commandProps() (map[string]string, error) {
	if o.commandConfig == "" || o.props != nil {
		return o.props, nil
	}
	props, err := readProperties(o.commandConfig)
	if err != nil {
		return nil, err
	}
	o.props = props
	return props, nil
}

// opts turns the settings into franz-go options.
func (s clientSecurity) opts() ([]kgo.Opt, error) {
	var out []kgo.Opt
	if s.tls {
		cfg := &tls.Config{MinVersion: tls.VersionTLS12}
		if s.tlsCA != "" {
			pem, err := os.ReadFile(s.tlsCA)
			if err != nil {
				return nil, fmt.Errorf("TLS CA file: %v", err)
			}
			cfg.RootCAs = x509.NewCertPool()
			if !cfg.RootCAs.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("TLS CA file %s: no PEM certificate in it", s.tlsCA)
			}
		}
		// franz-go sets ServerName to each broker's host.
		out = append(out, kgo.DialTLSConfig(cfg))
	}
	if s.mechanism != "" {
		var m sasl.Mechanism
		switch s.mechanism {
		case "PLAIN":
			m = plain.Auth{User: s.user, Pass: s.password}.AsMechanism()
		case "SCRAM-SHA-256":
			m = scram.Auth{User: s.user, Pass: s.password}.AsSha256Mechanism()
		case "SCRAM-SHA-512":
			m = scram.Auth{User: s.user, Pass: s.password}.AsSha512Mechanism()
		}
		out = append(out, kgo.SASL(m))
	}
	return out, nil
}

// readProperties reads a Java properties file (Kafka's client.properties).
func readProperties(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("--command-config: %v", err)
	}
	defer f.Close()
	var buf bytes.Buffer
	if n, err := buf.ReadFrom(io.LimitReader(f, commandConfigBytesMax+1)); err != nil {
		return nil, fmt.Errorf("--command-config %s: %v", path, err)
	} else if n > commandConfigBytesMax {
		return nil, fmt.Errorf("--command-config %s: larger than %d bytes", path, commandConfigBytesMax)
	}
	props, err := parseProperties(buf.String())
	if err != nil {
		return nil, fmt.Errorf("--command-config %s: %v", path, err)
	}
	return props, nil
}

// parseProperties parses the text of a Java properties file: "#" and "!"
// comments, key and value separated by "=", ":" or white space, lines
// continued by a trailing backslash, and the escapes \t \n \r \f \uXXXX
// (any other escaped character stands for itself). A later key wins.
func parseProperties(text string) (map[string]string, error) {
	props := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(nil, commandConfigBytesMax+1)
	var logical strings.Builder
	lineNo, start := 0, 0
	for sc.Scan() {
		lineNo++
		line := sc.Text()
		if logical.Len() == 0 {
			line = strings.TrimLeftFunc(line, unicode.IsSpace)
			if line == "" || line[0] == '#' || line[0] == '!' {
				continue
			}
			start = lineNo
		} else {
			line = strings.TrimLeftFunc(line, unicode.IsSpace)
		}
		// An odd number of trailing backslashes continues the line.
		n := len(line) - len(strings.TrimRight(line, `\`))
		if n%2 == 1 {
			logical.WriteString(line[:len(line)-1])
			continue
		}
		logical.WriteString(line)
		k, v, err := splitProperty(logical.String())
		if err != nil {
			return nil, fmt.Errorf("line %d: %v", start, err)
		}
		props[k] = v
		logical.Reset()
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if logical.Len() > 0 {
		k, v, err := splitProperty(logical.String())
		if err != nil {
			return nil, fmt.Errorf("line %d: %v", start, err)
		}
		props[k] = v
	}
	return props, nil
}

// splitProperty splits one logical line into its unescaped key and value.
func splitProperty(line string) (string, string, error) {
	end := len(line)
	for i := 0; i < len(line); i++ {
		c := line[i]
		if c == '\\' {
			i++
			continue
		}
		if c == '=' || c == ':' || c == ' ' || c == '\t' || c == '\f' {
			end = i
			break
		}
	}
	key, rest := line[:end], line[end:]
	rest = strings.TrimLeft(rest, " \t\f")
	if rest != "" && (rest[0] == '=' || rest[0] == ':') {
		rest = strings.TrimLeft(rest[1:], " \t\f")
	}
	k, err := unescapeProperty(key)
	if err != nil {
		return "", "", err
	}
	v, err := unescapeProperty(rest)
	if err != nil {
		return "", "", err
	}
	return k, v, nil
}

func unescapeProperty(s string) (string, error) {
	if !strings.Contains(s, `\`) {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' {
			b.WriteByte(c)
			continue
		}
		i++
		if i == len(s) {
			break
		}
		switch s[i] {
		case 't':
			b.WriteByte('\t')
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		case 'f':
			b.WriteByte('\f')
		case 'u':
			if len(s)-i-1 < 4 {
				return "", errors.New(`malformed \uXXXX escape`)
			}
			r, err := strconv.ParseUint(s[i+1:i+5], 16, 16)
			if err != nil {
				return "", errors.New(`malformed \uXXXX escape`)
			}
			b.WriteRune(rune(r))
			i += 4
		default:
			b.WriteByte(s[i])
		}
	}
	return b.String(), nil
}

// parseJAAS reads the options of a JAAS configuration entry, as in
// sasl.jaas.config: `LoginModuleClass FLAG key="value" key2=value2;`.
// Quoted values take backslash escapes.
func parseJAAS(s string) (map[string]string, error) {
	toks, err := jaasTokens(s)
	if err != nil {
		return nil, err
	}
	if len(toks) < 2 || toks[0].quoted || toks[1].quoted {
		return nil, errors.New("want a login module class and a control flag (required), then key=value options")
	}
	switch strings.ToLower(toks[1].text) {
	case "required", "requisite", "sufficient", "optional":
	default:
		return nil, fmt.Errorf("control flag %q is not required, requisite, sufficient or optional", toks[1].text)
	}
	opts := map[string]string{}
	rest := toks[2:]
	for len(rest) > 0 {
		if rest[0].text == ";" && !rest[0].quoted {
			if len(rest) > 1 {
				return nil, errors.New("one login module only")
			}
			return opts, nil
		}
		if len(rest) < 3 || rest[0].quoted || rest[1].text != "=" || rest[1].quoted {
			return nil, fmt.Errorf("option near %q: want key=value", rest[0].text)
		}
		opts[rest[0].text] = rest[2].text
		rest = rest[3:]
	}
	return nil, errors.New("missing the closing ';'")
}

type jaasToken struct {
	text   string
	quoted bool
}

func jaasTokens(s string) ([]jaasToken, error) {
	var out []jaasToken
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f':
			i++
		case c == '=' || c == ';':
			out = append(out, jaasToken{text: string(c)})
			i++
		case c == '"' || c == '\'':
			var b strings.Builder
			j := i + 1
			for ; j < len(s) && s[j] != c; j++ {
				if s[j] == '\\' && j+1 < len(s) {
					j++
				}
				b.WriteByte(s[j])
			}
			if j == len(s) {
				return nil, errors.New("unterminated quoted value")
			}
			out = append(out, jaasToken{text: b.String(), quoted: true})
			i = j + 1
		default:
			j := i
			for j < len(s) && !strings.ContainsRune(" \t\n\r\f=;\"'", rune(s[j])) {
				j++
			}
			out = append(out, jaasToken{text: s[i:j]})
			i = j
		}
	}
	return out, nil
}
