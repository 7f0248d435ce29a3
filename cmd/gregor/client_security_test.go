package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseProperties(t *testing.T) {
	props, err := parseProperties(`# Kafka client.properties
! another comment
security.protocol=SASL_SSL
  ssl.truststore.location : /etc/ca\
    .pem
sasl.mechanism SCRAM-SHA-256
sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required \
  username="alice" \
  password="p\"w\\d";
key\=with\:seps=v\u00e9
empty=
`)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"security.protocol":       "SASL_SSL",
		"ssl.truststore.location": "/etc/ca.pem",
		"sasl.mechanism":          "SCRAM-SHA-256",
		"sasl.jaas.config":        `org.apache.kafka.common.security.scram.ScramLoginModule required username="alice" password="p"w\d";`,
		"key=with:seps":           "vé",
		"empty":                   "",
	}
	for k, v := range want {
		if props[k] != v {
			t.Errorf("%s = %q, want %q", k, props[k], v)
		}
	}
	if len(props) != len(want) {
		t.Errorf("got %d properties, want %d: %q", len(props), len(want), props)
	}
	if _, err := parseProperties(`k=\u12`); err == nil {
		t.Error(`a short \u escape was accepted`)
	}
}

func TestParseJAAS(t *testing.T) {
	opts, err := parseJAAS(`org.apache.kafka.common.security.plain.PlainLoginModule required username="bob" password='s;e=c\'r"et' extra=x;`)
	if err != nil {
		t.Fatal(err)
	}
	if opts["username"] != "bob" || opts["password"] != `s;e=c'r"et` || opts["extra"] != "x" {
		t.Fatalf("options %q", opts)
	}
	for _, bad := range []string{
		``, `Module`, `Module required username="x"`, `Module maybe username="x";`,
		`Module required username=;`, `Module required username="x;`, `Module required username="x"; Other required;`,
	} {
		if _, err := parseJAAS(bad); err == nil {
			t.Errorf("parseJAAS(%q) accepted", bad)
		}
	}
}

func TestClientSecurityResolve(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "client.properties")
	os.WriteFile(conf, []byte("security.protocol=SASL_SSL\nssl.truststore.location=/ca.pem\nsasl.mechanism=PLAIN\n"+
		`sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username="alice" password="secret";`+"\n"), 0o600)
	o := clientOptions{commandConfig: conf}
	s, err := o.resolveSecurity()
	if err != nil || !s.tls || s.tlsCA != "/ca.pem" || s.mechanism != "PLAIN" || s.user != "alice" || s.password != "secret" {
		t.Fatalf("from the file: %+v %v", s, err)
	}
	// Flags given win over the file.
	o = clientOptions{commandConfig: conf, user: "bob", password: "pw", saslMechanism: "scram-sha-256", tlsCA: "/other.pem"}
	s, err = o.resolveSecurity()
	if err != nil || s.tlsCA != "/other.pem" || s.mechanism != "SCRAM-SHA-256" || s.user != "bob" || s.password != "pw" {
		t.Fatalf("flags over the file: %+v %v", s, err)
	}
	// --user alone: SCRAM-SHA-512, and a password is needed.
	if s, err := (&clientOptions{user: "u", password: "p"}).resolveSecurity(); err != nil || s.mechanism != "SCRAM-SHA-512" || s.tls {
		t.Fatalf("--user: %+v %v", s, err)
	}
	for _, tc := range []struct {
		o    clientOptions
		file string
		want string
	}{
		{o: clientOptions{user: "u"}, want: "SASL needs --user and --password"},
		{o: clientOptions{saslMechanism: "GSSAPI", user: "u", password: "p"}, want: "want PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512"},
		{file: "security.protocol=SASL_SSL\n", want: "SASL needs --user and --password"},
		{file: "security.protocol=TLS\n", want: "is not PLAINTEXT, SSL"},
		{file: "ssl.truststore.type=JKS\n", want: "PEM trust stores only"},
		{file: "sasl.jaas.config=Module required username=\"x\"\n", want: "missing the closing ';'"},
		{o: clientOptions{commandConfig: filepath.Join(dir, "missing")}, want: "no such file"},
	} {
		if tc.file != "" {
			tc.o.commandConfig = filepath.Join(dir, "c")
			os.WriteFile(tc.o.commandConfig, []byte(tc.file), 0o600)
		}
		if _, err := tc.o.resolveSecurity(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v %q: %v, want %q", tc.o, tc.file, err, tc.want)
		}
	}
	if _, err := (clientSecurity{tls: true, tlsCA: conf}).opts(); err == nil || !strings.Contains(err.Error(), "no PEM certificate") {
		t.Errorf("a CA file without certificates: %v", err)
	}
}

// FuzzParseProperties: any text parses or fails without panicking, and
// what parses keeps its keys once written back escaped.
func FuzzParseProperties(f *testing.F) {
	f.Add("a=b\nc : d\\\n  e\n# x\n")
	f.Add(`k\u0041=\t\\`)
	f.Add("k=v\\")
	f.Fuzz(func(t *testing.T, text string) {
		props, err := parseProperties(text)
		if err != nil {
			return
		}
		var sb strings.Builder
		for k, v := range props {
			sb.WriteString(escapePropertyForTest(k) + "=" + escapePropertyForTest(v) + "\n")
		}
		again, err := parseProperties(sb.String())
		if err != nil {
			t.Fatalf("re-parse of %q: %v", sb.String(), err)
		}
		for k, v := range props {
			if again[k] != v {
				t.Fatalf("%q: %q became %q", k, v, again[k])
			}
		}
	})
}

func escapePropertyForTest(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ { // bytes: the text need not be UTF-8
		switch r := s[i]; r {
		case '\\', '=', ':', ' ', '#', '!':
			b.WriteByte('\\')
			b.WriteByte(r)
		case '\t':
			b.WriteString(`\t`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\f':
			b.WriteString(`\f`)
		default:
			b.WriteByte(r)
		}
	}
	return b.String()
}

// FuzzParseJAAS: no input panics, and a parsed password survives quoting.
func FuzzParseJAAS(f *testing.F) {
	f.Add(`M required username="a" password="b\"c";`)
	f.Add(`M optional;`)
	f.Add(`'`)
	f.Fuzz(func(t *testing.T, s string) {
		opts, err := parseJAAS(s)
		if err != nil {
			return
		}
		pw := opts["password"]
		q := strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(pw)
		again, err := parseJAAS(`M required password="` + q + `";`)
		if err != nil || again["password"] != pw {
			t.Fatalf("password %q quoted as %q: %q %v", pw, q, again["password"], err)
		}
	})
}
