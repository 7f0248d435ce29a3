package main

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

const producersUsage = `usage: gregor producers describe --topic T[:P,...]... [flags]

  describe   the producers with state in each partition (DescribeProducers,
             as kafka-transactions.sh describe-producers): producer id and
             epoch, last sequence and timestamp, the coordinator epoch of
             its last transaction marker, and the first offset of its open
             transaction (the one that holds the last stable offset back),
             "-" when none

A --topic without partitions means all of them. Common flags: --brokers
host:port,... (default 127.0.0.1:9092), --timeout.
`

func producersCmd(args []string, stdout, stderr io.Writer) int {
	c, args, code := newSubcommand("producers", producersUsage, args, stdout, stderr)
	if c == nil {
		return code
	}
	var topics stringList
	switch c.sub {
	case "describe":
		c.fs.Var(&topics, "topic", "TOPIC or TOPIC:PARTITION,... to describe (repeatable)")
	default:
		return c.unknown()
	}
	if ok, code := c.parse(args); !ok {
		return code
	}
	if c.fs.NArg() > 0 {
		return c.fail(exitUsage, "unexpected argument %q", c.fs.Arg(0))
	}
	specs, err := parseTopicSpecs(topics)
	if err != nil {
		return c.fail(exitUsage, "%v", err)
	}
	if len(specs) == 0 {
		return c.fail(exitUsage, "--topic is required")
	}
	return c.run(func(ctx context.Context, cl *kgo.Client) error {
		return producersDescribe(ctx, cl, specs, stdout)
	})
}

// producersDescribe prints one row per producer of every partition named,
// and an error row for a partition that could not be described.
func producersDescribe(ctx context.Context, cl *kgo.Client, specs []topicSpec, stdout io.Writer) error {
	tps, err := resolvePartitions(ctx, cl, specs)
	if err != nil {
		return err
	}
	set := kadm.TopicsSet{}
	for _, t := range tps {
		if set[t.topic] == nil {
			set[t.topic] = map[int32]struct{}{}
		}
		set[t.topic][t.partition] = struct{}{}
	}
	described, err := kadm.NewClient(cl).DescribeProducers(ctx, set)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "TOPIC\tPARTITION\tPRODUCER-ID\tEPOCH\tLAST-SEQUENCE\tLAST-TIMESTAMP\tCOORDINATOR-EPOCH\tTXN-START-OFFSET")
	var failed error
	for _, p := range described.SortedPartitions() {
		if p.Err != nil {
			fmt.Fprintf(tw, "%s\t%d\t-\t-\t-\t-\t-\t%v\n", p.Topic, p.Partition, p.Err)
			if failed == nil {
				failed = fmt.Errorf("%s-%d: %w", p.Topic, p.Partition, p.Err)
			}
			continue
		}
		for _, d := range p.ActiveProducers.Sorted() {
			fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t%s\n", d.Topic, d.Partition, d.ProducerID, d.ProducerEpoch,
				d.LastSequence, d.LastTimestamp, d.CoordinatorEpoch, offsetCell(d.CurrentTxnStartOffset, d.CurrentTxnStartOffset >= 0))
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	return failed
}
