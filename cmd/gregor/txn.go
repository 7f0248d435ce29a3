package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

const txnUsage = `usage: gregor txn list [--state S]... [--producer-id N]... [--pattern RE] [--min-duration D] [flags]
       gregor txn describe ID... [flags]
       gregor txn abort --topic T --partition P --start-offset O [flags]

  list       the transactional ids every broker coordinates
             (ListTransactions): producer id and state; --state keeps
             those in a state (Empty, Ongoing, PrepareCommit,
             PrepareAbort, CompleteCommit, CompleteAbort), --pattern
             those whose id matches a regular expression, --min-duration
             those with a transaction open at least that long (1m, 30s)
  describe   each id's state (DescribeTransactions): producer id and
             epoch, timeout, when its open transaction started, and the
             partitions it holds
  abort      end a hanging transaction: one its coordinator no longer
             knows, which holds a partition's last stable offset back
             (find it with "gregor producers describe"); the producer
             whose open transaction starts at --start-offset in the
             partition gets an abort marker there (WriteTxnMarkers, as
             kafka-transactions.sh abort does)

Common flags: --brokers host:port,... (default 127.0.0.1:9092), --timeout.
`

func txnCmd(args []string, stdout, stderr io.Writer) int {
	c, args, code := newSubcommand("txn", txnUsage, args, stdout, stderr)
	if c == nil {
		return code
	}
	fs := c.fs
	var states, pids stringList
	var pattern, topic string
	var minDuration time.Duration
	var partition, startOffset int64
	switch c.sub {
	case "list":
		fs.Var(&states, "state", "keep ids in this state (repeatable)")
		fs.Var(&pids, "producer-id", "keep ids of this producer id (repeatable)")
		fs.StringVar(&pattern, "pattern", "", "keep ids matching this regular expression")
		fs.DurationVar(&minDuration, "min-duration", -1, "keep ids with a transaction open at least this long")
	case "describe":
	case "abort":
		fs.StringVar(&topic, "topic", "", "the partition's topic")
		fs.Int64Var(&partition, "partition", -1, "the partition")
		fs.Int64Var(&startOffset, "start-offset", -1, "the first offset of the hanging transaction")
	default:
		return c.unknown()
	}
	if ok, code := c.parse(args); !ok {
		return code
	}
	var producerIDs []int64
	switch c.sub {
	case "list":
		if fs.NArg() > 0 {
			return c.fail(exitUsage, "unexpected argument %q", fs.Arg(0))
		}
		for _, s := range pids {
			var id int64
			if _, err := fmt.Sscan(s, &id); err != nil || id < 0 {
				return c.fail(exitUsage, "--producer-id %q: want a producer id (a number >= 0)", s)
			}
			producerIDs = append(producerIDs, id)
		}
	case "describe":
		if fs.NArg() == 0 {
			return c.fail(exitUsage, "name at least one transactional id")
		}
	case "abort":
		switch {
		case fs.NArg() > 0:
			return c.fail(exitUsage, "unexpected argument %q", fs.Arg(0))
		case topic == "":
			return c.fail(exitUsage, "--topic is required")
		case partition < 0 || partition > 1<<31-1:
			return c.fail(exitUsage, "--partition is required (a partition number >= 0)")
		case startOffset < 0:
			return c.fail(exitUsage, "--start-offset is required (the transaction's first offset, >= 0)")
		}
	}
	return c.run(func(ctx context.Context, cl *kgo.Client) (err error) {
		switch c.sub {
		case "list":
			err = txnList(ctx, cl, producerIDs, states, pattern, minDuration, stdout)
		case "describe":
			err = txnDescribe(ctx, cl, fs.Args(), stdout)
		case "abort":
			err = txnAbort(ctx, cl, topic, int32(partition), startOffset, stdout)
		}
		return err
	})
}

// txnList asks every broker for the ids it coordinates (kadm fans the
// request out) and prints them by id.
func txnList(ctx context.Context, cl *kgo.Client, pids []int64, states []string, pattern string, minDuration time.Duration, stdout io.Writer) error {
	req := kmsg.NewPtrListTransactionsRequest()
	req.ProducerIDFilters, req.StateFilters = pids, states
	req.DurationFilterMillis = -1
	if minDuration >= 0 {
		req.DurationFilterMillis = minDuration.Milliseconds()
	}
	if pattern != "" {
		req.TransactionalIDPattern = &pattern
	}
	type row struct {
		id, state   string
		pid         int64
		coordinator int32
	}
	var rows []row
	var failed error
	for _, sh := range cl.RequestSharded(ctx, req) {
		if sh.Err != nil {
			failed = errors.Join(failed, fmt.Errorf("broker %d: %w", sh.Meta.NodeID, sh.Err))
			continue
		}
		resp := sh.Resp.(*kmsg.ListTransactionsResponse)
		if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
			failed = errors.Join(failed, fmt.Errorf("broker %d: %w", sh.Meta.NodeID, err))
		}
		if len(resp.UnknownStateFilters) > 0 {
			return fmt.Errorf("unknown state %s (want Empty, Ongoing, PrepareCommit, PrepareAbort, CompleteCommit, CompleteAbort, PrepareEpochFence or Dead)",
				strings.Join(resp.UnknownStateFilters, ", "))
		}
		for _, t := range resp.TransactionStates {
			rows = append(rows, row{t.TransactionalID, t.TransactionState, t.ProducerID, sh.Meta.NodeID})
		}
	}
	slices.SortFunc(rows, func(a, b row) int { return strings.Compare(a.id, b.id) })
	tw := tabwriter.NewWriter(stdout, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "TRANSACTIONAL-ID\tCOORDINATOR\tPRODUCER-ID\tSTATE")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\n", r.id, r.coordinator, r.pid, r.state)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	return failed
}

// txnDescribe prints each id's state, one row per id.
func txnDescribe(ctx context.Context, cl *kgo.Client, ids []string, stdout io.Writer) error {
	described, err := kadm.NewClient(cl).DescribeTransactions(ctx, ids...)
	if err != nil && len(described) == 0 {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "TRANSACTIONAL-ID\tCOORDINATOR\tSTATE\tPRODUCER-ID\tEPOCH\tTIMEOUT-MS\tSTART-TIMESTAMP\tPARTITIONS")
	var failed error
	for _, id := range ids {
		d, ok := described[id]
		if !ok {
			continue
		}
		if d.Err != nil {
			fmt.Fprintf(tw, "%s\t%d\t-\t-\t-\t-\t-\t%v\n", id, d.Coordinator, d.Err)
			failed = errors.Join(failed, fmt.Errorf("%s: %w", id, d.Err))
			continue
		}
		var parts []string
		for _, t := range d.Topics.Sorted() {
			for _, p := range t.Partitions {
				parts = append(parts, fmt.Sprintf("%s-%d", t.Topic, p))
			}
		}
		cell := strings.Join(parts, ",")
		if cell == "" {
			cell = "-"
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%d\t%d\t%d\t%s\t%s\n", id, d.Coordinator, d.State, d.ProducerID, d.ProducerEpoch,
			d.TimeoutMillis, offsetCell(d.StartTimestamp, d.StartTimestamp >= 0), cell)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	return failed
}

// txnAbort writes an abort marker for the producer whose open transaction
// starts at startOffset in the partition, with the producer's epoch and
// coordinator epoch as the partition knows them (Kafka's tool does the
// same).
func txnAbort(ctx context.Context, cl *kgo.Client, topic string, partition int32, startOffset int64, stdout io.Writer) error {
	adm := kadm.NewClient(cl)
	described, err := adm.DescribeProducers(ctx, kadm.TopicsSet{topic: {partition: {}}})
	if err != nil {
		return err
	}
	var found *kadm.DescribedProducer
	for _, p := range described.SortedPartitions() {
		if p.Err != nil {
			return fmt.Errorf("%s-%d: %w", topic, partition, p.Err)
		}
		for _, d := range p.ActiveProducers.Sorted() {
			if d.CurrentTxnStartOffset == startOffset {
				found = &d
			}
		}
	}
	if found == nil {
		return fmt.Errorf("%s-%d: no open transaction starts at offset %d (see gregor producers describe --topic %s:%d)",
			topic, partition, startOffset, topic, partition)
	}
	resps, err := adm.WriteTxnMarkers(ctx, kadm.TxnMarkers{
		ProducerID: found.ProducerID, ProducerEpoch: found.ProducerEpoch,
		CoordinatorEpoch: max(found.CoordinatorEpoch, 0),
		Topics:           kadm.TopicsSet{topic: {partition: {}}},
	})
	if err != nil {
		return err
	}
	for _, r := range resps {
		for _, t := range r.Topics {
			for _, pr := range t.Partitions {
				if pr.Err != nil {
					return fmt.Errorf("%s-%d: %w", pr.Topic, pr.Partition, pr.Err)
				}
			}
		}
	}
	fmt.Fprintf(stdout, "aborted the transaction of producer %d (epoch %d) at %s-%d, offset %d\n",
		found.ProducerID, found.ProducerEpoch, topic, partition, startOffset)
	return nil
}
