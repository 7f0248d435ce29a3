package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"

	"github.com/twmb/franz-go/pkg/kgo"
)

const produceUsage = `usage: gregor produce --topic TOPIC [flags] < lines

Sends each line of standard input as one record (the value). With --keys,
a line "key=value" is split at the first --key-separator into the record's
key and value; a line without one is a value with no key. Prints one
"partition offset" line per record with --print-offsets, and a summary on
standard error.

`

// produceLineBytesMax bounds one input line (Kafka's default max message
// size, with room for a key).
const produceLineBytesMax = 2 << 20

type produceOptions struct {
	client       clientOptions
	topic        string
	partition    int
	acks         string
	keys         bool
	keySep       string
	printOffsets bool
}

func produceCmd(args []string, stdout, stderr io.Writer) int {
	return produceFrom(args, os.Stdin, stdout, stderr)
}

func produceFrom(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	var o produceOptions
	fs := newFlagSet("gregor produce", produceUsage, stderr)
	o.client.register(fs)
	fs.StringVar(&o.topic, "topic", "", "topic to produce to (required)")
	fs.IntVar(&o.partition, "partition", -1, "partition to produce to (default: by key hash, or spread when unkeyed)")
	fs.StringVar(&o.acks, "acks", "all", "acknowledgements: all (-1, idempotent), 1 or 0")
	fs.BoolVar(&o.keys, "keys", false, "parse each line as key<sep>value")
	fs.StringVar(&o.keySep, "key-separator", "=", "separator between key and value with --keys")
	fs.BoolVar(&o.printOffsets, "print-offsets", false, "print \"partition offset\" for each acknowledged record")
	if ok, code := parseClientFlags(fs, args); !ok {
		return code
	}
	fail := func(code int, f string, a ...any) int {
		fmt.Fprintf(stderr, "gregor produce: "+f+"\n", a...)
		return code
	}
	if fs.NArg() > 0 {
		return fail(exitUsage, "unexpected argument %q (records come from standard input)", fs.Arg(0))
	}
	if o.topic == "" {
		return fail(exitUsage, "--topic is required")
	}
	if o.keys && o.keySep == "" {
		return fail(exitUsage, "--key-separator is empty")
	}
	// As Kafka's console producer: a topic the cluster may auto-create
	// (auto.create.topics.enable) is created by producing to it.
	opts := []kgo.Opt{kgo.DefaultProduceTopic(o.topic), kgo.RecordDeliveryTimeout(o.client.timeout), kgo.AllowAutoTopicCreation()}
	switch o.acks {
	case "all", "-1":
		opts = append(opts, kgo.RequiredAcks(kgo.AllISRAcks()))
	case "1":
		opts = append(opts, kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite())
	case "0":
		opts = append(opts, kgo.RequiredAcks(kgo.NoAck()), kgo.DisableIdempotentWrite())
	default:
		return fail(exitUsage, "--acks %q: want all, -1, 1 or 0", o.acks)
	}
	if o.partition >= 0 {
		opts = append(opts, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	cl, err := o.client.newClient(ctx, opts...)
	if err != nil {
		return fail(exitError, "%v", err)
	}
	defer cl.Close()

	var (
		mu       sync.Mutex
		wg       sync.WaitGroup
		acked    int
		firstErr error
	)
	sc := bufio.NewScanner(stdin)
	sc.Buffer(make([]byte, 0, 64<<10), produceLineBytesMax)
	sent := 0
	for sc.Scan() {
		line := sc.Text()
		r := &kgo.Record{Value: []byte(line)}
		if o.keys {
			if k, v, ok := strings.Cut(line, o.keySep); ok {
				r.Key, r.Value = []byte(k), []byte(v)
			}
		}
		if o.partition >= 0 {
			r.Partition = int32(o.partition)
		}
		wg.Add(1)
		sent++
		cl.Produce(ctx, r, func(r *kgo.Record, err error) {
			defer wg.Done()
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if firstErr == nil {
					firstErr = err
				}
				return
			}
			acked++
			if o.printOffsets {
				fmt.Fprintf(stdout, "%d %d\n", r.Partition, r.Offset)
			}
		})
	}
	wg.Wait()
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			err = fmt.Errorf("a line is longer than %d bytes", produceLineBytesMax)
		}
		return fail(exitError, "reading standard input after %d records: %v", sent, err)
	}
	if firstErr != nil {
		return fail(exitError, "topic %q: %d of %d records acknowledged; first failure: %v", o.topic, acked, sent, firstErr)
	}
	fmt.Fprintf(stderr, "gregor produce: sent %d record(s) to %s (acks=%s)\n", acked, o.topic, o.acks)
	return exitOK
}
