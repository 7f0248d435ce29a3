package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Client-command defaults: the dev cluster's first broker, and how long a
// command waits for the cluster before giving up with an error.
const (
	brokersDefault       = "127.0.0.1:9092"
	clientTimeoutDefault = 30 * time.Second
)

// clientOptions are the flags every client command (topic, produce,
// consume, user, ...) shares: where the cluster is, and how to reach it
// securely (client_security.go).
type clientOptions struct {
	brokers       string
	timeout       time.Duration
	tls           bool
	tlsCA         string
	saslMechanism string
	user          string
	password      string
	commandConfig string
	props         map[string]string // commandConfig's, once read
}

func (o *clientOptions) register(fs *flag.FlagSet) {
	fs.StringVar(&o.brokers, "brokers", "", "comma-separated bootstrap brokers, host:port (default bootstrap.servers of --command-config, or "+brokersDefault+")")
	fs.DurationVar(&o.timeout, "timeout", clientTimeoutDefault, "how long to wait for the cluster before failing")
	fs.BoolVar(&o.tls, "tls", false, "connect with TLS, trusting the system's CAs (implied by --tls-ca)")
	fs.StringVar(&o.tlsCA, "tls-ca", "", "PEM file of the CA certificates to trust for the brokers' certificates; turns TLS on")
	fs.StringVar(&o.saslMechanism, "sasl-mechanism", "", "SASL mechanism: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (default SCRAM-SHA-512 when --user is given)")
	fs.StringVar(&o.user, "user", "", "SASL user name; turns SASL on")
	fs.StringVar(&o.password, "password", "", "SASL password (visible to other local users in the process list: prefer --command-config)")
	fs.StringVar(&o.commandConfig, "command-config", "",
		"Kafka client.properties: bootstrap.servers, security.protocol, ssl.truststore.location (PEM), sasl.mechanism, sasl.jaas.config's username and password "+
			"(or librdkafka's ssl.ca.location, sasl.mechanisms, sasl.username, sasl.password); flags given win")
}

// seeds returns the bootstrap addresses, rejecting an empty list or a
// malformed address before any connection is tried.
func (o *clientOptions) seeds() ([]string, error) {
	brokers := o.brokers
	if brokers == "" {
		props, err := o.commandProps()
		if err != nil {
			return nil, err
		}
		brokers = brokersDefault
		if b := props["bootstrap.servers"]; b != "" {
			brokers = b
		}
	}
	var out []string
	for _, s := range strings.Split(brokers, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if _, _, err := splitHostPort(s); err != nil {
			return nil, fmt.Errorf("--brokers: %v", err)
		}
		out = append(out, s)
	}
	if len(out) == 0 {
		return nil, errors.New("--brokers is empty; want host:port[,host:port...]")
	}
	return out, nil
}

// newClient builds a franz-go client for the bootstrap brokers and checks
// one of them answers within the timeout, so a wrong address fails fast
// with a message naming it rather than as a retry loop.
func (o *clientOptions) newClient(ctx context.Context, opts ...kgo.Opt) (*kgo.Client, error) {
	seeds, err := o.seeds()
	if err != nil {
		return nil, err
	}
	sec, err := o.resolveSecurity()
	if err != nil {
		return nil, err
	}
	secOpts, err := sec.opts()
	if err != nil {
		return nil, err
	}
	opts = append(append([]kgo.Opt{
		kgo.SeedBrokers(seeds...),
		kgo.ClientID("gregor-cli"),
		kgo.DialTimeout(min(o.timeout, 10*time.Second)),
		kgo.RetryTimeout(o.timeout),
	}, secOpts...), opts...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, err
	}
	pctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	if err := cl.Ping(pctx); err != nil {
		cl.Close()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		var tlsErr *tls.CertificateVerificationError
		switch {
		case errors.Is(err, kerr.SaslAuthenticationFailed), errors.Is(err, kerr.UnsupportedSaslMechanism), errors.Is(err, kerr.IllegalSaslState):
			return nil, fmt.Errorf("%s refused the authentication of user %q with %s: %v", strings.Join(seeds, ","), sec.user, sec.mechanism, err)
		case errors.As(err, &tlsErr):
			return nil, fmt.Errorf("TLS with %s: %v (is --tls-ca the cluster's CA?)", strings.Join(seeds, ","), err)
		}
		return nil, fmt.Errorf("no broker of %s answered within %s (is the cluster running? `gregor dev` starts one): %v",
			strings.Join(seeds, ","), o.timeout, err)
	}
	return cl, nil
}

// codeErr turns a response's error code and optional message into an
// error naming the Kafka error, or nil for code 0.
func codeErr(code int16, msg *string) error {
	err := kerr.ErrorForCode(code)
	if err == nil {
		return nil
	}
	if msg != nil && *msg != "" {
		return fmt.Errorf("%w (broker says: %s)", err, *msg)
	}
	return err
}

// parseClientFlags parses a client command's flags (fs from newFlagSet);
// it reports whether the command should go on, and the exit code if not.
func parseClientFlags(fs *flag.FlagSet, args []string) (bool, int) {
	if err := fs.Parse(interspersed(fs, args)); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return false, exitOK
		}
		return false, exitUsage
	}
	return true, 0
}

// subcommand is the frame the client commands with subcommands (topic,
// group, producers, txn, records) share: the subcommand's flag set with
// the client flags, its error lines ("gregor CMD SUB: ..."), and the
// connected client its work runs on. Each command registers its own flags
// on fs and checks its own arguments between newSubcommand and run.
type subcommand struct {
	cmd, sub string // "txn", "list"
	usage    string
	fs       *flag.FlagSet
	client   clientOptions
	stderr   io.Writer
}

// newSubcommand splits the subcommand off args and makes its flag set with
// the client flags registered. Without a subcommand it prints the usage
// and fails; for -h, --help or help it prints the usage and succeeds. In
// both cases c is nil and the command exits with code.
func newSubcommand(cmd, usage string, args []string, stdout, stderr io.Writer) (c *subcommand, rest []string, code int) {
	if len(args) < 1 {
		fmt.Fprint(stderr, usage)
		return nil, nil, exitUsage
	}
	switch args[0] {
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
		return nil, nil, exitOK
	}
	c = &subcommand{cmd: cmd, sub: args[0], usage: usage, stderr: stderr}
	c.fs = newFlagSet("gregor "+cmd+" "+c.sub, usage, stderr)
	c.client.register(c.fs)
	return c, args[1:], exitOK
}

// unknown rejects a subcommand the command does not have.
func (c *subcommand) unknown() int {
	fmt.Fprintf(c.stderr, "gregor %s: unknown subcommand %q\n\n%s", c.cmd, c.sub, c.usage)
	return exitUsage
}

// parse parses the subcommand's flags, as parseClientFlags does.
func (c *subcommand) parse(args []string) (bool, int) {
	return parseClientFlags(c.fs, args)
}

// fail prints one error line naming the subcommand and returns code.
func (c *subcommand) fail(code int, f string, a ...any) int {
	fmt.Fprintf(c.stderr, "gregor %s %s: "+f+"\n", append([]any{c.cmd, c.sub}, a...)...)
	return code
}

// run connects to the cluster and calls do with a context that ends after
// --timeout, or at SIGTERM or an interrupt. A failure to connect, or an
// error from do, fails the command.
func (c *subcommand) run(do func(ctx context.Context, cl *kgo.Client) error) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	cl, err := c.client.newClient(ctx)
	if err != nil {
		return c.fail(exitError, "%v", err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, c.client.timeout)
	defer cancel()
	if err := do(ctx, cl); err != nil {
		return c.fail(exitError, "%v", err)
	}
	return exitOK
}

// interspersed moves flags that follow positional arguments in front of
// them, so `gregor topic create demo --partitions 6` works as Kafka's own
// tools do; the flag package alone stops at the first positional argument.
func interspersed(fs *flag.FlagSet, args []string) []string {
	var flags, pos []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			pos = append(pos, args[i+1:]...)
			break
		}
		if len(a) < 2 || a[0] != '-' {
			pos = append(pos, a)
			continue
		}
		flags = append(flags, a)
		name := strings.TrimLeft(a, "-")
		if strings.Contains(name, "=") {
			continue
		}
		f := fs.Lookup(name)
		if f == nil {
			continue // flag.Parse reports it
		}
		if bf, ok := f.Value.(interface{ IsBoolFlag() bool }); ok && bf.IsBoolFlag() {
			continue
		}
		if i+1 < len(args) {
			flags = append(flags, args[i+1])
			i++
		}
	}
	return append(append(flags, "--"), pos...)
}
