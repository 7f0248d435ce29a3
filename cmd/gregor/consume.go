package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/twmb/franz-go/pkg/kgo"
)

const consumeUsage = `usage: gregor consume --topic TOPIC [--group GROUP] [--from-beginning | --offset N | --timestamp MS] [flags]

Prints one line per record: partition, offset, key and value, separated by
tabs (a null key prints as empty). Without a start flag it prints only
records produced from now on. Runs until --max records are printed, or
until interrupted.

With --group it consumes as a member of that consumer group: the group
assigns it partitions, it starts where the group's committed offsets are
(the start flags only apply to a partition without one), and it commits
the offsets of the records it printed, periodically and when it stops.

`

type consumeOptions struct {
	client        clientOptions
	topic         string
	group         string
	partition     int
	fromBeginning bool
	offset        int64
	timestamp     int64
	max           int
}

func consumeCmd(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	return consume(ctx, args, stdout, stderr)
}

func consume(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var o consumeOptions
	fs := newFlagSet("gregor consume", consumeUsage, stderr)
	o.client.register(fs)
	fs.StringVar(&o.topic, "topic", "", "topic to consume (required)")
	fs.StringVar(&o.group, "group", "", "consume as a member of this consumer group, committing what is printed")
	fs.IntVar(&o.partition, "partition", -1, "only this partition (default: every partition)")
	fs.BoolVar(&o.fromBeginning, "from-beginning", false, "start at each partition's first record")
	fs.Int64Var(&o.offset, "offset", -1, "start at this offset (in --partition, or in every partition)")
	fs.Int64Var(&o.timestamp, "timestamp", -1, "start at the first record at or after this time, milliseconds since the epoch")
	fs.IntVar(&o.max, "max", 0, "stop after printing this many records (0: run until interrupted)")
	if ok, code := parseClientFlags(fs, args); !ok {
		return code
	}
	fail := func(code int, f string, a ...any) int {
		fmt.Fprintf(stderr, "gregor consume: "+f+"\n", a...)
		return code
	}
	if fs.NArg() > 0 {
		return fail(exitUsage, "unexpected argument %q", fs.Arg(0))
	}
	if o.topic == "" {
		return fail(exitUsage, "--topic is required")
	}
	starts := 0
	start := kgo.NewOffset().AtEnd()
	if o.fromBeginning {
		starts++
		start = kgo.NewOffset().AtStart()
	}
	if o.offset >= 0 {
		starts++
		start = kgo.NewOffset().At(o.offset)
	}
	if o.timestamp >= 0 {
		starts++
		start = kgo.NewOffset().AfterMilli(o.timestamp)
	}
	if starts > 1 {
		return fail(exitUsage, "give at most one of --from-beginning, --offset and --timestamp")
	}
	if o.max < 0 {
		return fail(exitUsage, "--max %d: want 0 or more", o.max)
	}
	if o.group != "" && o.partition >= 0 {
		return fail(exitUsage, "give --group or --partition, not both: a group assigns its members their partitions")
	}

	// Check the topic and partition first: a consumer of a missing topic
	// would otherwise wait silently.
	admin, err := o.client.newClient(ctx)
	if err != nil {
		return fail(exitError, "%v", err)
	}
	mctx, cancel := context.WithTimeout(ctx, o.client.timeout)
	resp, err := metadata(mctx, admin, []string{o.topic})
	cancel()
	admin.Close()
	if err != nil {
		return fail(exitError, "metadata for %q: %v", o.topic, err)
	}
	if len(resp.Topics) != 1 {
		return fail(exitError, "metadata for %q: broker answered for %d topics", o.topic, len(resp.Topics))
	}
	if err := codeErr(resp.Topics[0].ErrorCode, nil); err != nil {
		return fail(exitError, "topic %q: %v", o.topic, err)
	}
	if n := len(resp.Topics[0].Partitions); o.partition >= n {
		return fail(exitError, "topic %q has %d partitions (0-%d); there is no partition %d", o.topic, n, n-1, o.partition)
	}

	opts := []kgo.Opt{kgo.ConsumeResetOffset(start)}
	switch {
	case o.partition >= 0:
		opts = append(opts, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{o.topic: {int32(o.partition): start}}))
	case o.group != "":
		// Only printed records are marked, so only they are committed:
		// periodically, on a rebalance, and before leaving the group.
		opts = append(opts, kgo.ConsumeTopics(o.topic), kgo.ConsumerGroup(o.group), kgo.AutoCommitMarks())
	default:
		opts = append(opts, kgo.ConsumeTopics(o.topic))
	}
	cl, err := o.client.newClient(ctx, opts...)
	if err != nil {
		return fail(exitError, "%v", err)
	}
	defer cl.Close()
	w := bufio.NewWriter(stdout)
	defer w.Flush()
	printed := 0
	var consumeErr error
	for o.max == 0 || printed < o.max {
		want := -1
		if o.max > 0 {
			want = o.max - printed
		}
		fetches := cl.PollRecords(ctx, want)
		if ctx.Err() != nil || fetches.IsClientClosed() {
			break
		}
		var errs []error
		fetches.EachError(func(t string, p int32, err error) {
			if !errors.Is(err, context.Canceled) {
				errs = append(errs, fmt.Errorf("partition %d: %w", p, err))
			}
		})
		if len(errs) > 0 {
			consumeErr = fmt.Errorf("topic %q: %v", o.topic, errors.Join(errs...))
			break
		}
		fetches.EachRecord(func(r *kgo.Record) {
			fmt.Fprintf(w, "%d\t%d\t%s\t%s\n", r.Partition, r.Offset, r.Key, r.Value)
			printed++
			if o.group != "" {
				cl.MarkCommitRecords(r)
			}
		})
		w.Flush()
	}
	if o.group != "" {
		// Commit what was printed before leaving the group, even when
		// interrupted: ctx may be done, so the commit has its own.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), o.client.timeout)
		err := cl.CommitMarkedOffsets(cctx)
		cancel()
		if err != nil {
			consumeErr = errors.Join(consumeErr, fmt.Errorf("group %q: committing the offsets of the printed records: %v", o.group, err))
		}
	}
	if consumeErr != nil {
		return fail(exitError, "%v", consumeErr)
	}
	return exitOK
}
