// Command gregor is the Gregor broker and its tools: serve, dev, sim, bench,
// and the topic, produce and consume subcommands.
package main

import (
	"fmt"
	"os"
)

const usage = `usage: gregor <command> [flags]

commands:
  serve     run one broker
  dev       run a 3-broker cluster in this process
  sim       run seeded deterministic simulations
  bench     measure a Kafka-compatible cluster
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	switch os.Args[1] {
	case "-h", "--help", "help":
		fmt.Print(usage)
	default:
		fmt.Fprintf(os.Stderr, "gregor: unknown command %q\n\n%s", os.Args[1], usage)
		os.Exit(2)
	}
}
