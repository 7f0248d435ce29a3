package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

const topicUsage = `usage: gregor topic <create|list|describe|alter-config|delete> [flags] [topic...]

  create       --partitions N --replication-factor N [--config name=value]... TOPIC
  list         every topic with its partition count and replication factor
  describe     TOPIC... [--sizes]: partitions (leader, epoch, replicas, in-sync
               replicas) and configs, each with its source (topic: set on
               the topic; cluster: the cluster-wide default set by
               AlterConfigs; default: the broker's); --sizes adds each
               replica's bytes on disk (DescribeLogDirs)
  alter-config TOPIC [--set name=value]... [--delete name]...
               [--append name=value]... [--subtract name=value]...:
               change configs (IncrementalAlterConfigs; --delete returns a
               config to its default, --append and --subtract change lists
               such as cleanup.policy); --dry-run only validates
  delete       TOPIC...

Common flags: --brokers host:port,... (default 127.0.0.1:9092), --timeout.
`

func topicCmd(args []string, stdout, stderr io.Writer) int {
	c, args, code := newSubcommand("topic", topicUsage, args, stdout, stderr)
	if c == nil {
		return code
	}
	fs := c.fs
	var (
		partitions  int
		replication int
		configs     stringList
		alter       [4]stringList // set, delete, append, subtract
		dryRun      bool
		sizes       bool
	)
	switch c.sub {
	case "create":
		fs.IntVar(&partitions, "partitions", -1, "number of partitions (-1: the broker's default)")
		fs.IntVar(&replication, "replication-factor", -1, "replicas per partition, at most the number of brokers (-1: the broker's default)")
		fs.Var(&configs, "config", "topic config name=value (repeatable)")
	case "alter-config":
		fs.Var(&alter[0], "set", "set a config: name=value (repeatable)")
		fs.Var(&alter[1], "delete", "return a config to its default: name (repeatable)")
		fs.Var(&alter[2], "append", "add elements to a list config: name=value[,value] (repeatable)")
		fs.Var(&alter[3], "subtract", "remove elements from a list config: name=value[,value] (repeatable)")
		fs.BoolVar(&dryRun, "dry-run", false, "validate only")
	case "describe":
		fs.BoolVar(&sizes, "sizes", false, "add each replica's bytes on disk")
	case "list", "delete":
	default:
		return c.unknown()
	}
	if ok, code := c.parse(args); !ok {
		return code
	}
	sub, names := c.sub, fs.Args()
	switch {
	case (sub == "create" || sub == "alter-config") && len(names) != 1:
		return c.fail(exitUsage, "want exactly one topic name, got %d", len(names))
	case sub == "alter-config" && len(alter[0])+len(alter[1])+len(alter[2])+len(alter[3]) == 0:
		return c.fail(exitUsage, "name a change (--set, --delete, --append or --subtract)")
	case (sub == "describe" || sub == "delete") && len(names) == 0:
		return c.fail(exitUsage, "name at least one topic")
	case sub == "list" && len(names) > 0:
		return c.fail(exitUsage, "unexpected argument %q", names[0])
	}
	return c.run(func(ctx context.Context, cl *kgo.Client) (err error) {
		switch sub {
		case "create":
			err = topicCreate(ctx, cl, names[0], int32(partitions), int16(replication), configs, stdout)
		case "list":
			err = topicList(ctx, cl, stdout)
		case "describe":
			err = topicDescribe(ctx, cl, names, sizes, stdout)
		case "alter-config":
			err = topicAlterConfig(ctx, cl, names[0], alter, dryRun, stdout)
		case "delete":
			err = topicDelete(ctx, cl, names, stdout)
		}
		return err
	})
}

// stringList is a repeatable string flag.
type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, ",") }
func (l *stringList) Set(s string) error { *l = append(*l, s); return nil }

func topicCreate(ctx context.Context, cl *kgo.Client, name string, partitions int32, rf int16, configs []string, stdout io.Writer) error {
	req := kmsg.NewPtrCreateTopicsRequest()
	req.TimeoutMillis = int32(min(deadlineMillis(ctx), 1<<31-1))
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = name, partitions, rf
	for _, c := range configs {
		k, v, ok := strings.Cut(c, "=")
		if !ok || k == "" {
			return fmt.Errorf("--config %q: want name=value", c)
		}
		rc := kmsg.NewCreateTopicsRequestTopicConfig()
		rc.Name, rc.Value = k, kmsg.StringPtr(v)
		rt.Configs = append(rt.Configs, rc)
	}
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return err
	}
	if len(resp.Topics) != 1 {
		return fmt.Errorf("broker answered for %d topics, asked for 1", len(resp.Topics))
	}
	t := resp.Topics[0]
	if err := codeErr(t.ErrorCode, t.ErrorMessage); err != nil {
		return fmt.Errorf("topic %q: %w", name, err)
	}
	fmt.Fprintf(stdout, "created topic %s: %d partitions, replication factor %d\n", name, t.NumPartitions, t.ReplicationFactor)
	return nil
}

// deadlineMillis is the time left before ctx's deadline, for a request's
// own timeout field.
func deadlineMillis(ctx context.Context) int64 {
	d, ok := ctx.Deadline()
	if !ok {
		return int64(clientTimeoutDefault.Milliseconds())
	}
	return max(int64(time.Until(d).Milliseconds()), 1)
}

// metadata asks the controller (the metadata group's leader) when it can:
// it applies metadata changes first, so a topic this command just created
// is already there. Other brokers learn of it a network hop later, which
// is fine for clients (they retry) but would make `topic create` then
// `topic list` flaky for a person.
func metadata(ctx context.Context, cl *kgo.Client, topics []string) (*kmsg.MetadataResponse, error) {
	req := kmsg.NewPtrMetadataRequest()
	if topics != nil {
		req.Topics = []kmsg.MetadataRequestTopic{}
	}
	for _, t := range topics {
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr(t)
		req.Topics = append(req.Topics, rt)
	}
	if dc, err := kmsg.NewPtrDescribeClusterRequest().RequestWith(ctx, cl); err == nil && dc.ErrorCode == 0 && dc.ControllerID >= 0 {
		if kresp, err := cl.Broker(int(dc.ControllerID)).Request(ctx, req); err == nil {
			return kresp.(*kmsg.MetadataResponse), nil
		}
	}
	return req.RequestWith(ctx, cl)
}

func topicList(ctx context.Context, cl *kgo.Client, stdout io.Writer) error {
	resp, err := metadata(ctx, cl, nil)
	if err != nil {
		return err
	}
	topics := resp.Topics
	slices.SortFunc(topics, func(a, b kmsg.MetadataResponseTopic) int { return strings.Compare(*a.Topic, *b.Topic) })
	tw := tabwriter.NewWriter(stdout, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "TOPIC\tPARTITIONS\tREPLICATION")
	for _, t := range topics {
		rf := 0
		if len(t.Partitions) > 0 {
			rf = len(t.Partitions[0].Replicas)
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\n", *t.Topic, len(t.Partitions), rf)
	}
	return tw.Flush()
}

func topicDescribe(ctx context.Context, cl *kgo.Client, names []string, sizes bool, stdout io.Writer) error {
	resp, err := metadata(ctx, cl, names)
	if err != nil {
		return err
	}
	var dirs kadm.DescribedAllLogDirs
	if sizes {
		set := kadm.TopicsSet{}
		for _, t := range resp.Topics {
			if t.Topic != nil && t.ErrorCode == 0 {
				for _, p := range t.Partitions {
					set.Add(*t.Topic, p.Partition)
				}
			}
		}
		if dirs, err = kadm.NewClient(cl).DescribeAllLogDirs(ctx, set); err != nil {
			return fmt.Errorf("log dirs: %w", err)
		}
	}
	var errs []error
	for _, t := range resp.Topics {
		name := ""
		if t.Topic != nil {
			name = *t.Topic
		}
		if err := codeErr(t.ErrorCode, nil); err != nil {
			errs = append(errs, fmt.Errorf("topic %q: %w", name, err))
			continue
		}
		slices.SortFunc(t.Partitions, func(a, b kmsg.MetadataResponseTopicPartition) int { return int(a.Partition - b.Partition) })
		fmt.Fprintf(stdout, "topic %s  id %x  partitions %d\n", name, t.TopicID, len(t.Partitions))
		tw := tabwriter.NewWriter(stdout, 0, 8, 2, ' ', 0)
		head := "  PARTITION\tLEADER\tEPOCH\tREPLICAS\tISR\tERROR"
		if sizes {
			head += "\tBYTES (BROKER:SIZE)"
		}
		fmt.Fprintln(tw, head)
		for _, p := range t.Partitions {
			perr := "-"
			if err := codeErr(p.ErrorCode, nil); err != nil {
				perr = err.Error()
			}
			fmt.Fprintf(tw, "  %d\t%d\t%d\t%s\t%s\t%s", p.Partition, p.Leader, p.LeaderEpoch, ids(p.Replicas), ids(p.ISR), perr)
			if sizes {
				var cells []string
				for _, r := range p.Replicas {
					cell := fmt.Sprintf("%d:?", r)
					for _, d := range dirs[r] {
						if dp, ok := d.Topics.Lookup(name, p.Partition); ok {
							cell = fmt.Sprintf("%d:%d", r, dp.Size)
						}
					}
					cells = append(cells, cell)
				}
				fmt.Fprintf(tw, "\t%s", strings.Join(cells, ","))
			}
			fmt.Fprintln(tw)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		cfgs, err := topicConfigs(ctx, cl, name)
		if err != nil {
			errs = append(errs, fmt.Errorf("topic %q configs: %w", name, err))
			continue
		}
		fmt.Fprintln(stdout, "  configs:")
		for _, c := range cfgs {
			fmt.Fprintf(stdout, "    %s\n", c)
		}
	}
	return errors.Join(errs...)
}

func ids(v []int32) string {
	s := make([]string, len(v))
	for i, id := range v {
		s[i] = strconv.Itoa(int(id))
	}
	return strings.Join(s, ",")
}

// topicConfigs returns name=value lines for a topic's configs, sorted.
func topicConfigs(ctx context.Context, cl *kgo.Client, name string) ([]string, error) {
	req := kmsg.NewPtrDescribeConfigsRequest()
	rr := kmsg.NewDescribeConfigsRequestResource()
	rr.ResourceType, rr.ResourceName = kmsg.ConfigResourceTypeTopic, name
	req.Resources = append(req.Resources, rr)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, r := range resp.Resources {
		if err := codeErr(r.ErrorCode, r.ErrorMessage); err != nil {
			return nil, err
		}
		for _, c := range r.Configs {
			v := "(null)"
			if c.Value != nil {
				v = *c.Value
			}
			source := "default"
			switch c.Source {
			case kmsg.ConfigSourceDynamicTopicConfig:
				source = "topic"
			case kmsg.ConfigSourceDynamicDefaultBrokerConfig:
				source = "cluster"
			}
			out = append(out, c.Name+"="+v+"  ("+source+")")
		}
	}
	slices.Sort(out)
	return out, nil
}

// topicAlterConfig sends one IncrementalAlterConfigs for topic: the
// operations in the order set, delete, append, subtract.
func topicAlterConfig(ctx context.Context, cl *kgo.Client, topic string, ops [4]stringList, dryRun bool, stdout io.Writer) error {
	req := kmsg.NewPtrIncrementalAlterConfigsRequest()
	req.ValidateOnly = dryRun
	rr := kmsg.NewIncrementalAlterConfigsRequestResource()
	rr.ResourceType, rr.ResourceName = kmsg.ConfigResourceTypeTopic, topic
	for op, list := range ops {
		flagName := [...]string{"--set", "--delete", "--append", "--subtract"}[op]
		for _, c := range list {
			cfg := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
			cfg.Op = kmsg.IncrementalAlterConfigOp(op)
			if op == 1 {
				cfg.Name = c
			} else {
				k, v, ok := strings.Cut(c, "=")
				if !ok || k == "" {
					return fmt.Errorf("%s %q: want name=value", flagName, c)
				}
				cfg.Name, cfg.Value = k, kmsg.StringPtr(v)
			}
			rr.Configs = append(rr.Configs, cfg)
		}
	}
	req.Resources = append(req.Resources, rr)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return err
	}
	for _, r := range resp.Resources {
		if err := codeErr(r.ErrorCode, r.ErrorMessage); err != nil {
			return fmt.Errorf("topic %q: %w", topic, err)
		}
	}
	if dryRun {
		fmt.Fprintf(stdout, "the changes to topic %s are valid (not applied: --dry-run)\n", topic)
		return nil
	}
	fmt.Fprintf(stdout, "altered the configs of topic %s\n", topic)
	return nil
}

func topicDelete(ctx context.Context, cl *kgo.Client, names []string, stdout io.Writer) error {
	req := kmsg.NewPtrDeleteTopicsRequest()
	req.TimeoutMillis = int32(min(deadlineMillis(ctx), 1<<31-1))
	req.TopicNames = names
	for _, n := range names {
		rt := kmsg.NewDeleteTopicsRequestTopic()
		rt.Topic = kmsg.StringPtr(n)
		req.Topics = append(req.Topics, rt)
	}
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return err
	}
	var errs []error
	for _, t := range resp.Topics {
		name := fmt.Sprintf("%x", t.TopicID)
		if t.Topic != nil {
			name = *t.Topic
		}
		if err := codeErr(t.ErrorCode, t.ErrorMessage); err != nil {
			errs = append(errs, fmt.Errorf("topic %q: %w", name, err))
			continue
		}
		fmt.Fprintf(stdout, "deleted topic %s\n", name)
	}
	return errors.Join(errs...)
}
