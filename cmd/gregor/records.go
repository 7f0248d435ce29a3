package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/twmb/franz-go/pkg/kmsg"
)

const recordsUsage = `usage: gregor records delete TOPIC --partition P --before N [flags]

  delete   delete the records of a partition below offset N (DeleteRecords:
           the partition's log start offset moves to N; -1 means the high
           watermark, everything so far). Readers below it get
           OFFSET_OUT_OF_RANGE; a topic that only compacts refuses.

Common flags: --brokers host:port,... (default 127.0.0.1:9092), --timeout.
`

func recordsCmd(args []string, stdout, stderr io.Writer) int {
	if len(args) < 1 {
		fmt.Fprint(stderr, recordsUsage)
		return exitUsage
	}
	sub, args := args[0], args[1:]
	var client clientOptions
	var partition, before int64
	fs := flag.NewFlagSet("gregor records "+sub, flag.ContinueOnError)
	client.register(fs)
	switch sub {
	case "delete":
		fs.Int64Var(&partition, "partition", -1, "the partition")
		fs.Int64Var(&before, "before", -2, "delete the records below this offset (-1: the high watermark)")
	case "-h", "--help", "help":
		fmt.Fprint(stdout, recordsUsage)
		return exitOK
	default:
		fmt.Fprintf(stderr, "gregor records: unknown subcommand %q\n\n%s", sub, recordsUsage)
		return exitUsage
	}
	if ok, code := parseClientFlags(fs, args, recordsUsage, stderr); !ok {
		return code
	}
	fail := func(code int, f string, a ...any) int {
		fmt.Fprintf(stderr, "gregor records %s: "+f+"\n", append([]any{sub}, a...)...)
		return code
	}
	switch {
	case fs.NArg() != 1:
		return fail(exitUsage, "want exactly one topic name, got %d", fs.NArg())
	case partition < 0 || partition > 1<<31-1:
		return fail(exitUsage, "--partition is required (a partition number >= 0)")
	case before < -1:
		return fail(exitUsage, "--before is required (an offset >= 0, or -1 for the high watermark)")
	}
	topic := fs.Arg(0)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	cl, err := client.newClient(ctx)
	if err != nil {
		return fail(exitError, "%v", err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, client.timeout)
	defer cancel()
	req := kmsg.NewPtrDeleteRecordsRequest()
	req.TimeoutMillis = int32(min(deadlineMillis(ctx), 1<<31-1))
	rt := kmsg.NewDeleteRecordsRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewDeleteRecordsRequestTopicPartition()
	rp.Partition, rp.Offset = int32(partition), before
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	// kgo sends it to the partition's leader (a sharded request).
	var low int64 = -1
	for _, sh := range cl.RequestSharded(ctx, req) {
		if sh.Err != nil {
			return fail(exitError, "%s-%d: %v", topic, partition, sh.Err)
		}
		for _, t := range sh.Resp.(*kmsg.DeleteRecordsResponse).Topics {
			for _, p := range t.Partitions {
				if err := codeErr(p.ErrorCode, nil); err != nil {
					return fail(exitError, "%s-%d: %v", topic, partition, err)
				}
				low = p.LowWatermark
			}
		}
	}
	fmt.Fprintf(stdout, "%s-%d: records below offset %d deleted (log start offset %d)\n", topic, partition, low, low)
	return exitOK
}
