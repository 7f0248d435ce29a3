// Command gregor is the Gregor broker and its tools: serve, dev, sim, bench,
// and the topic, group, produce and consume subcommands.
//
// Each subcommand lives in its own file and has the signature of command:
// it parses its own flags and returns the process exit code.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
)

const usage = `usage: gregor <command> [flags]

commands:
  serve     run one broker
  dev       run a 3-broker cluster in this process
  sim       run seeded deterministic simulations
  bench     measure a Kafka-compatible cluster
  topic     create, list, describe or delete topics
  group     list, describe or delete consumer groups, reset or delete their offsets
  producers describe the producers of partitions and their open transactions
  txn       list or describe transactional ids, abort a hanging transaction
  records   delete a partition's records below an offset
  user      create, delete or list SCRAM users
  acl       create, list or delete ACLs (kafka-acls.sh style)
  produce   send lines of standard input as records
  consume   print records (partition, offset, key, value)

Run "gregor <command> -h" for a command's flags.
`

// Exit codes.
const (
	exitOK    = 0
	exitError = 1 // the command ran and failed
	exitUsage = 2 // bad flags or arguments, or not implemented
)

// newFlagSet makes a command's flag set: a parse error goes to stderr,
// and -h prints the command's usage and then its flags' defaults there.
func newFlagSet(name, usage string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usage)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlagsOnly parses the flags of a command that takes no positional
// arguments, and rejects any.
func parseFlagsOnly(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	return nil
}

// flagsFailed is the exit code of a command whose flags did not parse:
// for -h (newFlagSet has printed the usage) success; for any other error,
// printed after the command's name, a usage error.
func flagsFailed(name string, err error, stderr io.Writer) int {
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	fmt.Fprintf(stderr, "%s: %v\n", name, err)
	return exitUsage
}

// command runs one subcommand with its arguments (after the command name).
type command func(args []string, stdout, stderr io.Writer) int

var commands = map[string]command{
	"serve":     serveCmd,
	"dev":       devCmd,
	"sim":       simCmd,
	"bench":     benchCmd,
	"topic":     topicCmd,
	"group":     groupCmd,
	"producers": producersCmd,
	"txn":       txnCmd,
	"records":   recordsCmd,
	"user":      userCmd,
	"acl":       aclCmd,
	"produce":   produceCmd,
	"consume":   consumeCmd,
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) < 1 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	switch args[0] {
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
		return exitOK
	}
	cmd, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "gregor: unknown command %q\n\n%s", args[0], usage)
		return exitUsage
	}
	return cmd(args[1:], stdout, stderr)
}
