package main

import (
	"bufio"
	"context"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"golang.org/x/term"
)

const userUsage = `usage: gregor user create NAME [--mechanism M] [--iterations N] [--new-password P] [flags]
       gregor user delete NAME... [--mechanism M] [flags]
       gregor user list [NAME...] [flags]

  create   give user NAME a SCRAM credential (AlterUserScramCredentials),
           replacing the one it has for that mechanism: --mechanism
           SCRAM-SHA-512 (default) or SCRAM-SHA-256, --iterations 4096 to
           16384 (default 4096). The password comes from --new-password,
           else a prompt on a terminal, else the first line of standard
           input. The salted password is computed here, with a random
           salt, as Kafka's tools do: the password never leaves this
           process. PLAIN logins check the password against either
           credential.
  delete   remove the user's credential for --mechanism, or all of them
  list     users and their mechanisms and iterations
           (DescribeUserScramCredentials), all users without NAMEs

Credentials live in the cluster's metadata and apply on every broker; a
user the cluster knows is no longer looked up in a broker's --sasl-users
file. The flags --user and --password are who this command authenticates
as, not the user it creates. Common flags: --brokers host:port,... (default
127.0.0.1:9092), --timeout, --tls-ca, --sasl-mechanism, --user,
--password, --command-config.
`

// Kafka's defaults and bounds for SCRAM credentials.
const (
	userIterationsDefault = 4096
	userIterationsMin     = 4096
	userIterationsMax     = 16384
	userSaltBytes         = 24
)

// userStdin is where create reads a password it was not given (tests
// replace it).
var userStdin = os.Stdin

func userCmd(args []string, stdout, stderr io.Writer) int {
	c, args, code := newSubcommand("user", userUsage, args, stdout, stderr)
	if c == nil {
		return code
	}
	var mechanism, password string
	var iterations int
	switch c.sub {
	case "create":
		c.fs.StringVar(&mechanism, "mechanism", "SCRAM-SHA-512", "SCRAM-SHA-512 or SCRAM-SHA-256")
		c.fs.IntVar(&iterations, "iterations", userIterationsDefault, "PBKDF2 iterations, 4096 to 16384")
		c.fs.StringVar(&password, "new-password", "", "the new user's password (default: prompt, or the first line of standard input)")
	case "delete":
		c.fs.StringVar(&mechanism, "mechanism", "", "the mechanism to remove (default: every one the user has)")
	case "list":
	default:
		return c.unknown()
	}
	if ok, code := c.parse(args); !ok {
		return code
	}
	names := c.fs.Args()
	var mech int8
	if mechanism != "" {
		if mech = scramMechanismCode(mechanism); mech == 0 {
			return c.fail(exitUsage, "--mechanism %q: want SCRAM-SHA-256 or SCRAM-SHA-512", mechanism)
		}
	}
	switch c.sub {
	case "create":
		if len(names) != 1 || names[0] == "" {
			return c.fail(exitUsage, "want one user NAME")
		}
		if iterations < userIterationsMin || iterations > userIterationsMax {
			return c.fail(exitUsage, "--iterations %d: want %d to %d", iterations, userIterationsMin, userIterationsMax)
		}
		if password == "" {
			p, err := readNewPassword(userStdin, names[0], stderr)
			if err != nil {
				return c.fail(exitUsage, "%v", err)
			}
			password = p
		}
		return c.run(func(ctx context.Context, cl *kgo.Client) error {
			return userCreate(ctx, cl, names[0], mech, int32(iterations), password, stdout)
		})
	case "delete":
		if len(names) == 0 {
			return c.fail(exitUsage, "want at least one user NAME")
		}
		return c.run(func(ctx context.Context, cl *kgo.Client) error {
			return userDelete(ctx, cl, names, mech, stdout)
		})
	}
	return c.run(func(ctx context.Context, cl *kgo.Client) error {
		return userList(ctx, cl, names, stdout)
	})
}

func scramMechanismCode(name string) int8 {
	switch strings.ToUpper(name) {
	case "SCRAM-SHA-256":
		return 1
	case "SCRAM-SHA-512":
		return 2
	}
	return 0
}

func scramMechanismName(code int8) string {
	switch code {
	case 1:
		return "SCRAM-SHA-256"
	case 2:
		return "SCRAM-SHA-512"
	}
	return fmt.Sprintf("UNKNOWN(%d)", code)
}

// readNewPassword prompts twice, without echo, on a terminal; otherwise
// it reads the first line of f.
func readNewPassword(f *os.File, user string, stderr io.Writer) (string, error) {
	if fd := int(f.Fd()); term.IsTerminal(fd) {
		fmt.Fprintf(stderr, "Password for %s: ", user)
		p1, err := term.ReadPassword(fd)
		fmt.Fprintln(stderr)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(stderr, "Again: ")
		p2, err := term.ReadPassword(fd)
		fmt.Fprintln(stderr)
		if err != nil {
			return "", err
		}
		if string(p1) != string(p2) {
			return "", errors.New("the passwords differ")
		}
		if len(p1) == 0 {
			return "", errors.New("empty password")
		}
		return string(p1), nil
	}
	return readPasswordLine(f)
}

// readPasswordLine reads the first line of r, without its line ending.
func readPasswordLine(r io.Reader) (string, error) {
	line, err := bufio.NewReader(io.LimitReader(r, 64<<10)).ReadString('\n')
	if err != nil && err != io.EOF {
		return "", fmt.Errorf("reading the password from standard input: %v", err)
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", errors.New("no password: give --new-password, or a line on standard input")
	}
	return line, nil
}

// saltedPassword is PBKDF2 of the password with the mechanism's hash, as
// Kafka's ScramFormatter and franz-go's kadm compute it.
func saltedPassword(mech int8, password string, salt []byte, iterations int) ([]byte, error) {
	if mech == 1 {
		return pbkdf2.Key(sha256.New, password, salt, iterations, sha256.Size)
	}
	return pbkdf2.Key(sha512.New, password, salt, iterations, sha512.Size)
}

func userCreate(ctx context.Context, cl *kgo.Client, name string, mech int8, iterations int32, password string, stdout io.Writer) error {
	salt := make([]byte, userSaltBytes)
	rand.Read(salt)
	salted, err := saltedPassword(mech, password, salt, int(iterations))
	if err != nil {
		return err
	}
	req := kmsg.NewPtrAlterUserSCRAMCredentialsRequest()
	up := kmsg.NewAlterUserSCRAMCredentialsRequestUpsertion()
	up.Name, up.Mechanism, up.Iterations, up.Salt, up.SaltedPassword = name, mech, iterations, salt, salted
	req.Upsertions = append(req.Upsertions, up)
	if err := alterUsers(ctx, cl, req); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "user %s: %s credential set (%d iterations)\n", name, scramMechanismName(mech), iterations)
	return nil
}

func userDelete(ctx context.Context, cl *kgo.Client, names []string, mech int8, stdout io.Writer) error {
	req := kmsg.NewPtrAlterUserSCRAMCredentialsRequest()
	var done []string
	for _, name := range names {
		mechs := []int8{mech}
		if mech == 0 {
			described, err := describeUsers(ctx, cl, []string{name})
			if err != nil {
				return err
			}
			r := described[0]
			if err := codeErr(r.ErrorCode, r.ErrorMessage); err != nil {
				return fmt.Errorf("user %s: %w", name, err)
			}
			mechs = mechs[:0]
			for _, ci := range r.CredentialInfos {
				mechs = append(mechs, ci.Mechanism)
			}
		}
		for _, m := range mechs {
			del := kmsg.NewAlterUserSCRAMCredentialsRequestDeletion()
			del.Name, del.Mechanism = name, m
			req.Deletions = append(req.Deletions, del)
			done = append(done, fmt.Sprintf("user %s: %s credential deleted", name, scramMechanismName(m)))
		}
	}
	if err := alterUsers(ctx, cl, req); err != nil {
		return err
	}
	for _, line := range done {
		fmt.Fprintln(stdout, line)
	}
	return nil
}

// alterUsers sends req and fails with the first user's error, if any.
func alterUsers(ctx context.Context, cl *kgo.Client, req *kmsg.AlterUserSCRAMCredentialsRequest) error {
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return err
	}
	var errs []error
	for _, r := range resp.Results {
		if err := codeErr(r.ErrorCode, r.ErrorMessage); err != nil {
			errs = append(errs, fmt.Errorf("user %s: %w", r.User, err))
		}
	}
	return errors.Join(errs...)
}

func describeUsers(ctx context.Context, cl *kgo.Client, names []string) ([]kmsg.DescribeUserSCRAMCredentialsResponseResult, error) {
	req := kmsg.NewPtrDescribeUserSCRAMCredentialsRequest()
	for _, n := range names {
		req.Users = append(req.Users, kmsg.DescribeUserSCRAMCredentialsRequestUser{Name: n})
	}
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return nil, err
	}
	if err := codeErr(resp.ErrorCode, resp.ErrorMessage); err != nil {
		return nil, err
	}
	if len(names) > 0 && len(resp.Results) != len(names) {
		return nil, fmt.Errorf("asked about %d users, answered about %d", len(names), len(resp.Results))
	}
	return resp.Results, nil
}

// userList prints one row per user and mechanism; a user named but not
// found is an error row, and fails the command.
func userList(ctx context.Context, cl *kgo.Client, names []string, stdout io.Writer) error {
	results, err := describeUsers(ctx, cl, names)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "USER\tMECHANISM\tITERATIONS")
	var failed []error
	for _, r := range results {
		if err := codeErr(r.ErrorCode, r.ErrorMessage); err != nil {
			if errors.Is(err, kerr.ResourceNotFound) {
				fmt.Fprintf(tw, "%s\t-\tnot found\n", r.User)
			} else {
				fmt.Fprintf(tw, "%s\t-\t%v\n", r.User, err)
			}
			failed = append(failed, fmt.Errorf("user %s: %w", r.User, err))
			continue
		}
		for _, ci := range r.CredentialInfos {
			fmt.Fprintf(tw, "%s\t%s\t%d\n", r.User, scramMechanismName(ci.Mechanism), ci.Iterations)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	return errors.Join(failed...)
}
