package main

import (
	"context"
	"fmt"
	"io"

	"github.com/twmb/franz-go/pkg/kgo"
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
	c, args, code := newSubcommand("records", recordsUsage, args, stdout, stderr)
	if c == nil {
		return code
	}
	var partition, before int64
	switch c.sub {
	case "delete":
		c.fs.Int64Var(&partition, "partition", -1, "the partition")
		c.fs.Int64Var(&before, "before", -2, "delete the records below this offset (-1: the high watermark)")
	default:
		return c.unknown()
	}
	if ok, code := c.parse(args); !ok {
		return code
	}
	switch {
	case c.fs.NArg() != 1:
		return c.fail(exitUsage, "want exactly one topic name, got %d", c.fs.NArg())
	case partition < 0 || partition > 1<<31-1:
		return c.fail(exitUsage, "--partition is required (a partition number >= 0)")
	case before < -1:
		return c.fail(exitUsage, "--before is required (an offset >= 0, or -1 for the high watermark)")
	}
	topic := c.fs.Arg(0)
	return c.run(func(ctx context.Context, cl *kgo.Client) error {
		return recordsDelete(ctx, cl, topic, int32(partition), before, stdout)
	})
}

// recordsDelete moves a partition's log start offset to before (-1: the
// high watermark) and prints where it ended up.
func recordsDelete(ctx context.Context, cl *kgo.Client, topic string, partition int32, before int64, stdout io.Writer) error {
	req := kmsg.NewPtrDeleteRecordsRequest()
	req.TimeoutMillis = int32(min(deadlineMillis(ctx), 1<<31-1))
	rt := kmsg.NewDeleteRecordsRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewDeleteRecordsRequestTopicPartition()
	rp.Partition, rp.Offset = partition, before
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	// kgo sends it to the partition's leader (a sharded request).
	var low int64 = -1
	for _, sh := range cl.RequestSharded(ctx, req) {
		if sh.Err != nil {
			return fmt.Errorf("%s-%d: %w", topic, partition, sh.Err)
		}
		for _, t := range sh.Resp.(*kmsg.DeleteRecordsResponse).Topics {
			for _, p := range t.Partitions {
				if err := codeErr(p.ErrorCode, nil); err != nil {
					return fmt.Errorf("%s-%d: %w", topic, partition, err)
				}
				low = p.LowWatermark
			}
		}
	}
	fmt.Fprintf(stdout, "%s-%d: records below offset %d deleted (log start offset %d)\n", topic, partition, low, low)
	return nil
}
