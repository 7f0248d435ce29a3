package main

// gregor group: consumer groups, in the style of kafka-consumer-groups.sh
// and rpk group. Every request goes through kgo, which finds each group's
// coordinator (and retries NOT_COORDINATOR) by itself.

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

const groupUsage = `usage: gregor group <list|describe|delete|reset-offsets|delete-offsets> [flags] [group...]

  list            every group with its state and protocol type [--state S[,S...]]
  describe        GROUP...: state, protocol, coordinator, and per partition the
                  committed offset, log end offset, lag and the member that owns it
  delete          GROUP...: a group with no members, and its committed offsets
  reset-offsets   GROUP (--topic T[:P,...]... | --all-topics)
                  (--to-earliest | --to-latest | --to-offset N | --to-timestamp MS)
                  [--dry-run]; the group must have no members, as in Kafka
  delete-offsets  GROUP --topic T[:P,...]...: forget the group's committed offsets

A --topic without partitions means all of them (for delete-offsets: all
the group has committed). Common flags: --brokers host:port,... (default
127.0.0.1:9092), --timeout.
`

// groupStates are the states a group can be listed in: the classic
// protocol's, then KIP-848's.
var groupStates = []string{"Empty", "Stable", "PreparingRebalance", "CompletingRebalance", "Dead", "Assigning", "Reconciling"}

type groupOptions struct {
	states      string
	topics      stringList
	allTopics   bool
	toEarliest  bool
	toLatest    bool
	toOffset    int64
	toTimestamp int64
	dryRun      bool
}

func groupCmd(args []string, stdout, stderr io.Writer) int {
	c, args, code := newSubcommand("group", groupUsage, args, stdout, stderr)
	if c == nil {
		return code
	}
	sub, fs := c.sub, c.fs
	var o groupOptions
	switch sub {
	case "list":
		fs.StringVar(&o.states, "state", "", "only groups in these states, comma-separated ("+strings.Join(groupStates, ", ")+")")
	case "describe", "delete":
	case "reset-offsets":
		fs.Var(&o.topics, "topic", "TOPIC or TOPIC:PARTITION,... to reset (repeatable)")
		fs.BoolVar(&o.allTopics, "all-topics", false, "reset every topic the group has committed offsets in")
		fs.BoolVar(&o.toEarliest, "to-earliest", false, "reset to each partition's first offset")
		fs.BoolVar(&o.toLatest, "to-latest", false, "reset to each partition's log end offset")
		fs.Int64Var(&o.toOffset, "to-offset", -1, "reset to this offset (kept within each partition's first and log end offsets)")
		fs.Int64Var(&o.toTimestamp, "to-timestamp", -1, "reset to the first record at or after this time, milliseconds since the epoch")
		fs.BoolVar(&o.dryRun, "dry-run", false, "print the new offsets without committing them")
	case "delete-offsets":
		fs.Var(&o.topics, "topic", "TOPIC or TOPIC:PARTITION,... whose offsets to delete (repeatable)")
	default:
		return c.unknown()
	}
	if ok, code := c.parse(args); !ok {
		return code
	}
	names := fs.Args()
	switch sub {
	case "list":
		if len(names) > 0 {
			return c.fail(exitUsage, "unexpected argument %q", names[0])
		}
	case "describe", "delete":
		if len(names) == 0 {
			return c.fail(exitUsage, "name at least one group")
		}
	case "reset-offsets", "delete-offsets":
		if len(names) != 1 {
			return c.fail(exitUsage, "want exactly one group name, got %d", len(names))
		}
	}
	states, err := parseGroupStates(o.states)
	if err != nil {
		return c.fail(exitUsage, "%v", err)
	}
	specs, err := parseTopicSpecs(o.topics)
	if err != nil {
		return c.fail(exitUsage, "%v", err)
	}
	switch {
	case sub == "delete-offsets" && len(specs) == 0:
		return c.fail(exitUsage, "--topic is required")
	case sub == "reset-offsets" && len(specs) == 0 && !o.allTopics:
		return c.fail(exitUsage, "name the partitions to reset: --topic TOPIC[:PARTITION,...] or --all-topics")
	case sub == "reset-offsets" && len(specs) > 0 && o.allTopics:
		return c.fail(exitUsage, "give --topic or --all-topics, not both")
	}
	if sub == "reset-offsets" {
		n := 0
		for _, set := range []bool{o.toEarliest, o.toLatest, o.toOffset >= 0, o.toTimestamp >= 0} {
			if set {
				n++
			}
		}
		if n != 1 {
			return c.fail(exitUsage, "give exactly one of --to-earliest, --to-latest, --to-offset N and --to-timestamp MS")
		}
	}

	return c.run(func(ctx context.Context, cl *kgo.Client) (err error) {
		switch sub {
		case "list":
			err = groupList(ctx, cl, states, stdout)
		case "describe":
			err = groupDescribe(ctx, cl, names, stdout)
		case "delete":
			err = groupDelete(ctx, cl, names, stdout)
		case "reset-offsets":
			err = groupResetOffsets(ctx, cl, names[0], &o, specs, stdout, stderr)
		case "delete-offsets":
			err = groupDeleteOffsets(ctx, cl, names[0], specs, stdout)
		}
		return err
	})
}

// parseGroupStates parses --state: comma-separated, any case, each one of
// groupStates. An empty flag is nil (every state).
func parseGroupStates(s string) ([]string, error) {
	var out []string
	for _, st := range strings.Split(s, ",") {
		st = strings.TrimSpace(st)
		if st == "" {
			continue
		}
		i := slices.IndexFunc(groupStates, func(k string) bool { return strings.EqualFold(k, st) })
		if i < 0 {
			return nil, fmt.Errorf("--state %q: want one of %s", st, strings.Join(groupStates, ", "))
		}
		out = append(out, groupStates[i])
	}
	return out, nil
}

// topicSpec is one --topic: a topic, and its partitions (nil: all).
type topicSpec struct {
	topic      string
	partitions []int32
}

// parseTopicSpecs parses --topic values, TOPIC or TOPIC:P[,P...] as
// kafka-consumer-groups.sh takes them. A topic given twice has the union
// of its partitions, or all of them if either names none.
func parseTopicSpecs(vals []string) ([]topicSpec, error) {
	var out []topicSpec
	for _, v := range vals {
		name, parts, hasParts := strings.Cut(v, ":")
		if name == "" || (hasParts && parts == "") {
			return nil, fmt.Errorf("--topic %q: want TOPIC or TOPIC:PARTITION[,PARTITION...]", v)
		}
		var ps []int32
		if hasParts {
			for _, p := range strings.Split(parts, ",") {
				n, err := strconv.ParseInt(strings.TrimSpace(p), 10, 32)
				if err != nil || n < 0 {
					return nil, fmt.Errorf("--topic %q: partition %q is not a number 0 or more", v, p)
				}
				ps = append(ps, int32(n))
			}
		}
		i := slices.IndexFunc(out, func(s topicSpec) bool { return s.topic == name })
		switch {
		case i < 0:
			out = append(out, topicSpec{name, ps})
		case out[i].partitions == nil || ps == nil:
			out[i].partitions = nil
		default:
			out[i].partitions = append(out[i].partitions, ps...)
		}
	}
	for i := range out {
		slices.Sort(out[i].partitions)
		out[i].partitions = slices.Compact(out[i].partitions)
	}
	return out, nil
}

// tp is one topic partition.
type tp struct {
	topic     string
	partition int32
}

func compareTP(a, b tp) int {
	return cmp.Or(strings.Compare(a.topic, b.topic), cmp.Compare(a.partition, b.partition))
}

// byTopic groups partitions by topic for a request, each topic's sorted.
func byTopic(tps []tp) map[string][]int32 {
	m := map[string][]int32{}
	for _, p := range tps {
		m[p.topic] = append(m[p.topic], p.partition)
	}
	for _, ps := range m {
		slices.Sort(ps)
	}
	return m
}

// resolvePartitions expands specs against the cluster's metadata: every
// partition of a topic given without any, and a check that the others
// exist.
func resolvePartitions(ctx context.Context, cl *kgo.Client, specs []topicSpec) ([]tp, error) {
	topics := make([]string, len(specs))
	for i, s := range specs {
		topics[i] = s.topic
	}
	resp, err := metadata(ctx, cl, topics)
	if err != nil {
		return nil, fmt.Errorf("metadata: %w", err)
	}
	counts := map[string]int{}
	for _, t := range resp.Topics {
		if t.Topic == nil {
			continue
		}
		if err := codeErr(t.ErrorCode, nil); err != nil {
			return nil, fmt.Errorf("topic %q: %w", *t.Topic, err)
		}
		counts[*t.Topic] = len(t.Partitions)
	}
	var out []tp
	for _, s := range specs {
		n, ok := counts[s.topic]
		if !ok {
			return nil, fmt.Errorf("topic %q: %w", s.topic, kerr.UnknownTopicOrPartition)
		}
		if s.partitions == nil {
			for p := range n {
				out = append(out, tp{s.topic, int32(p)})
			}
			continue
		}
		for _, p := range s.partitions {
			if int(p) >= n {
				return nil, fmt.Errorf("topic %q has %d partitions (0-%d); there is no partition %d", s.topic, n, n-1, p)
			}
			out = append(out, tp{s.topic, p})
		}
	}
	slices.SortFunc(out, compareTP)
	return out, nil
}

// topicIDs returns the IDs of topics, which must exist.
func topicIDs(ctx context.Context, cl *kgo.Client, topics []string) (map[string][16]byte, error) {
	resp, err := metadata(ctx, cl, topics)
	if err != nil {
		return nil, fmt.Errorf("metadata: %w", err)
	}
	ids := map[string][16]byte{}
	for _, t := range resp.Topics {
		if t.Topic == nil {
			continue
		}
		if err := codeErr(t.ErrorCode, nil); err != nil {
			return nil, fmt.Errorf("topic %q: %w", *t.Topic, err)
		}
		ids[*t.Topic] = t.TopicID
	}
	for _, t := range topics {
		if _, ok := ids[t]; !ok {
			return nil, fmt.Errorf("topic %q: %w", t, kerr.UnknownTopicOrPartition)
		}
	}
	return ids, nil
}

// describedGroup is one group of a DescribeGroups answer, with the broker
// that answered (its coordinator).
type describedGroup struct {
	coordinator int32
	g           kmsg.DescribeGroupsResponseGroup
	err         error
}

// absent reports whether the coordinator knows nothing of the group: Kafka
// answers such a group as Dead, or from version 6 with GROUP_ID_NOT_FOUND.
func (d describedGroup) absent() bool {
	return errors.Is(d.err, kerr.GroupIDNotFound) || (d.err == nil && d.g.State == "Dead")
}

// active reports whether the group has members or is in a state that
// will soon have some.
func (d describedGroup) active() bool {
	return d.err == nil && (len(d.g.Members) > 0 || (d.g.State != "Empty" && d.g.State != "Dead" && d.g.State != ""))
}

// describeGroups describes the named groups, each at its coordinator.
func describeGroups(ctx context.Context, cl *kgo.Client, names []string) map[string]describedGroup {
	req := kmsg.NewPtrDescribeGroupsRequest()
	req.Groups = names
	out := map[string]describedGroup{}
	for _, s := range cl.RequestSharded(ctx, req) {
		if s.Err != nil {
			if r, ok := s.Req.(*kmsg.DescribeGroupsRequest); ok {
				for _, g := range r.Groups {
					out[g] = describedGroup{coordinator: -1, err: s.Err}
				}
			}
			continue
		}
		for _, g := range s.Resp.(*kmsg.DescribeGroupsResponse).Groups {
			out[g.Group] = describedGroup{coordinator: s.Meta.NodeID, g: g, err: codeErr(g.ErrorCode, g.ErrorMessage)}
		}
	}
	for _, n := range names {
		if _, ok := out[n]; !ok {
			out[n] = describedGroup{coordinator: -1, err: errors.New("no broker answered for it")}
		}
	}
	return out
}

// fetchCommitted returns the group's committed offsets in tps (nil: in
// every topic), leaving out partitions without one; a group the
// coordinator does not know has none. A partition the coordinator answers
// with an error is in perr, not err.
func fetchCommitted(ctx context.Context, cl *kgo.Client, group string, tps []tp) (offsets map[tp]int64, perr []error, err error) {
	req := kmsg.NewPtrOffsetFetchRequest()
	req.Group = group
	if tps != nil {
		req.Topics = []kmsg.OffsetFetchRequestTopic{}
		m := byTopic(tps)
		for _, t := range slices.Sorted(maps.Keys(m)) {
			rt := kmsg.NewOffsetFetchRequestTopic()
			rt.Topic, rt.Partitions = t, m[t]
			req.Topics = append(req.Topics, rt)
		}
	}
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return nil, nil, fmt.Errorf("fetching the committed offsets of group %q: %w", group, err)
	}
	offsets = map[tp]int64{}
	if err := codeErr(resp.ErrorCode, nil); errors.Is(err, kerr.GroupIDNotFound) {
		return offsets, nil, nil
	} else if err != nil {
		return nil, nil, fmt.Errorf("fetching the committed offsets of group %q: %w", group, err)
	}
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if err := codeErr(p.ErrorCode, nil); err != nil {
				perr = append(perr, fmt.Errorf("committed offset of %s partition %d: %w", t.Topic, p.Partition, err))
				continue
			}
			if p.Offset >= 0 {
				offsets[tp{t.Topic, p.Partition}] = p.Offset
			}
		}
	}
	return offsets, perr, nil
}

// Timestamps ListOffsets understands besides times.
const (
	offsetLatest   = -1
	offsetEarliest = -2
)

// listOffsets asks each partition's leader for the offset at ts (or
// offsetLatest, offsetEarliest). A partition that could not be answered
// has an error in errs instead.
func listOffsets(ctx context.Context, cl *kgo.Client, tps []tp, ts int64) (offsets map[tp]int64, errs map[tp]error) {
	offsets, errs = map[tp]int64{}, map[tp]error{}
	if len(tps) == 0 {
		return offsets, errs
	}
	req := kmsg.NewPtrListOffsetsRequest()
	m := byTopic(tps)
	for _, t := range slices.Sorted(maps.Keys(m)) {
		rt := kmsg.NewListOffsetsRequestTopic()
		rt.Topic = t
		for _, p := range m[t] {
			rp := kmsg.NewListOffsetsRequestTopicPartition()
			rp.Partition, rp.Timestamp = p, ts
			rt.Partitions = append(rt.Partitions, rp)
		}
		req.Topics = append(req.Topics, rt)
	}
	resp, reqErr := req.RequestWith(ctx, cl)
	if resp != nil {
		for _, t := range resp.Topics {
			for _, p := range t.Partitions {
				k := tp{t.Topic, p.Partition}
				if err := codeErr(p.ErrorCode, nil); err != nil {
					errs[k] = err
					continue
				}
				offsets[k] = p.Offset
			}
		}
	}
	if reqErr == nil {
		reqErr = errors.New("the broker did not answer for it")
	}
	for _, k := range tps {
		if _, ok := offsets[k]; !ok && errs[k] == nil {
			errs[k] = reqErr
		}
	}
	return offsets, errs
}

// firstErr returns the error of the first partition in tps order that has
// one, naming the partition, or nil.
func firstErr(tps []tp, errs map[tp]error, what string) error {
	for _, k := range tps {
		if err := errs[k]; err != nil {
			return fmt.Errorf("%s of %s partition %d: %w", what, k.topic, k.partition, err)
		}
	}
	return nil
}

func groupList(ctx context.Context, cl *kgo.Client, states []string, stdout io.Writer) error {
	type row struct{ state, protocolType string }
	groups := map[string]row{}
	var errs []error
	for _, s := range cl.RequestSharded(ctx, kmsg.NewPtrListGroupsRequest()) {
		if s.Err != nil {
			errs = append(errs, brokerErr(s.Meta.NodeID, s.Err))
			continue
		}
		resp := s.Resp.(*kmsg.ListGroupsResponse)
		if err := codeErr(resp.ErrorCode, nil); err != nil {
			errs = append(errs, brokerErr(s.Meta.NodeID, err))
			continue
		}
		for _, g := range resp.Groups {
			groups[g.Group] = row{g.GroupState, g.ProtocolType}
		}
	}
	// ListGroups before version 4 has no state: ask DescribeGroups.
	var stateless []string
	for name, r := range groups {
		if r.state == "" {
			stateless = append(stateless, name)
		}
	}
	if len(stateless) > 0 {
		for name, d := range describeGroups(ctx, cl, stateless) {
			if d.err == nil {
				r := groups[name]
				r.state = d.g.State
				groups[name] = r
			}
		}
	}
	tw := tabwriter.NewWriter(stdout, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "GROUP\tSTATE\tPROTOCOL-TYPE")
	for _, name := range slices.Sorted(maps.Keys(groups)) {
		r := groups[name]
		if len(states) > 0 && !slices.ContainsFunc(states, func(s string) bool { return strings.EqualFold(s, r.state) }) {
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", name, dash(r.state), dash(r.protocolType))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	return errors.Join(errs...)
}

func brokerErr(id int32, err error) error {
	if id < 0 {
		return err
	}
	return fmt.Errorf("broker %d: %w", id, err)
}

// dash is s, or "-" for an empty s (a table cell must not be empty).
func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// offsetCell formats an offset for a table, "-" when there is none.
func offsetCell(v int64, ok bool) string {
	if !ok {
		return "-"
	}
	return strconv.FormatInt(v, 10)
}

func groupDescribe(ctx context.Context, cl *kgo.Client, names []string, stdout io.Writer) error {
	described := describeGroups(ctx, cl, names)
	var errs []error
	first := true
	for _, name := range names {
		d := described[name]
		if d.err != nil && !d.absent() {
			errs = append(errs, fmt.Errorf("group %q: %w", name, d.err))
			continue
		}
		committed, perr, err := fetchCommitted(ctx, cl, name, nil)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if d.absent() && len(committed) == 0 {
			errs = append(errs, fmt.Errorf("group %q does not exist", name))
			continue
		}
		errs = append(errs, perr...)

		// Who owns what: a consumer group's assignments are in Kafka's
		// consumer protocol; other protocol types' members own nothing
		// this command can show.
		owner := map[tp]kmsg.DescribeGroupsResponseGroupMember{}
		var idle []kmsg.DescribeGroupsResponseGroupMember
		for _, m := range d.g.Members {
			owns := 0
			if d.g.ProtocolType == "consumer" && len(m.MemberAssignment) > 0 {
				var a kmsg.ConsumerMemberAssignment
				if err := a.ReadFrom(m.MemberAssignment); err == nil {
					for _, t := range a.Topics {
						for _, p := range t.Partitions {
							owner[tp{t.Topic, p}] = m
							owns++
						}
					}
				}
			}
			if owns == 0 {
				idle = append(idle, m)
			}
		}
		tps := slices.Collect(maps.Keys(committed))
		for k := range owner {
			if _, ok := committed[k]; !ok {
				tps = append(tps, k)
			}
		}
		slices.SortFunc(tps, compareTP)
		end, _ := listOffsets(ctx, cl, tps, offsetLatest)

		var totalLag int64
		for k, c := range committed {
			if e, ok := end[k]; ok {
				totalLag += e - c
			}
		}
		if !first {
			fmt.Fprintln(stdout)
		}
		first = false
		state := d.g.State
		if d.absent() {
			state = "Dead" // offsets without a group, e.g. from a commit with no generation
		}
		tw := tabwriter.NewWriter(stdout, 0, 8, 2, ' ', 0)
		fmt.Fprintf(tw, "GROUP\t%s\n", name)
		fmt.Fprintf(tw, "COORDINATOR\t%d\n", d.coordinator)
		fmt.Fprintf(tw, "STATE\t%s\n", dash(state))
		fmt.Fprintf(tw, "PROTOCOL-TYPE\t%s\n", dash(d.g.ProtocolType))
		fmt.Fprintf(tw, "PROTOCOL\t%s\n", dash(d.g.Protocol))
		fmt.Fprintf(tw, "MEMBERS\t%d\n", len(d.g.Members))
		fmt.Fprintf(tw, "TOTAL-LAG\t%d\n", totalLag)
		if err := tw.Flush(); err != nil {
			return err
		}
		fmt.Fprintln(stdout)
		tw = tabwriter.NewWriter(stdout, 0, 8, 2, ' ', 0)
		fmt.Fprintln(tw, "TOPIC\tPARTITION\tCURRENT-OFFSET\tLOG-END-OFFSET\tLAG\tMEMBER-ID\tCLIENT-ID\tHOST")
		for _, k := range tps {
			c, hasC := committed[k]
			e, hasE := end[k]
			lag := "-"
			if hasC && hasE {
				lag = strconv.FormatInt(e-c, 10)
			}
			m, owned := owner[k]
			member, client, host := "-", "-", "-"
			if owned {
				member, client, host = dash(m.MemberID), dash(m.ClientID), dash(m.ClientHost)
			}
			fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\n", k.topic, k.partition,
				offsetCell(c, hasC), offsetCell(e, hasE), lag, member, client, host)
		}
		for _, m := range idle {
			fmt.Fprintf(tw, "-\t-\t-\t-\t-\t%s\t%s\t%s\n", dash(m.MemberID), dash(m.ClientID), dash(m.ClientHost))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	return errors.Join(errs...)
}

func groupDelete(ctx context.Context, cl *kgo.Client, names []string, stdout io.Writer) error {
	req := kmsg.NewPtrDeleteGroupsRequest()
	req.Groups = names
	results := map[string]error{}
	for _, s := range cl.RequestSharded(ctx, req) {
		if s.Err != nil {
			if r, ok := s.Req.(*kmsg.DeleteGroupsRequest); ok {
				for _, g := range r.Groups {
					results[g] = s.Err
				}
			}
			continue
		}
		for _, g := range s.Resp.(*kmsg.DeleteGroupsResponse).Groups {
			err := codeErr(g.ErrorCode, nil)
			if errors.Is(err, kerr.NonEmptyGroup) {
				err = fmt.Errorf("%w (stop its consumers first)", err)
			}
			results[g.Group] = err
		}
	}
	var errs []error
	for _, name := range names {
		err, ok := results[name]
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("group %q: no broker answered for it", name))
		case err != nil:
			errs = append(errs, fmt.Errorf("group %q: %w", name, err))
		default:
			fmt.Fprintf(stdout, "deleted group %s\n", name)
		}
	}
	return errors.Join(errs...)
}

func groupResetOffsets(ctx context.Context, cl *kgo.Client, group string, o *groupOptions, specs []topicSpec, stdout, stderr io.Writer) error {
	d := describeGroups(ctx, cl, []string{group})[group]
	if d.err != nil && !d.absent() {
		return fmt.Errorf("group %q: %w", group, d.err)
	}
	if d.active() {
		return fmt.Errorf("group %q is not empty: it is %s with %d member(s); as in Kafka, offsets are reset only in a group with no members, so stop its consumers first",
			group, d.g.State, len(d.g.Members))
	}
	var tps []tp
	if o.allTopics {
		committed, _, err := fetchCommitted(ctx, cl, group, nil)
		if err != nil {
			return err
		}
		tps = slices.SortedFunc(maps.Keys(committed), compareTP)
		if len(tps) == 0 {
			return fmt.Errorf("group %q has no committed offsets to reset", group)
		}
	} else {
		var err error
		if tps, err = resolvePartitions(ctx, cl, specs); err != nil {
			return err
		}
	}
	prior, perr, err := fetchCommitted(ctx, cl, group, tps)
	if err != nil {
		return err
	}
	if len(perr) > 0 {
		return errors.Join(perr...)
	}

	var target map[tp]int64
	switch {
	case o.toEarliest, o.toLatest:
		ts := int64(offsetEarliest)
		if o.toLatest {
			ts = offsetLatest
		}
		var errs map[tp]error
		target, errs = listOffsets(ctx, cl, tps, ts)
		if err := firstErr(tps, errs, "offset"); err != nil {
			return err
		}
	case o.toOffset >= 0, o.toTimestamp >= 0:
		start, serrs := listOffsets(ctx, cl, tps, offsetEarliest)
		if err := firstErr(tps, serrs, "first offset"); err != nil {
			return err
		}
		end, eerrs := listOffsets(ctx, cl, tps, offsetLatest)
		if err := firstErr(tps, eerrs, "log end offset"); err != nil {
			return err
		}
		target = map[tp]int64{}
		if o.toOffset >= 0 {
			for _, k := range tps {
				v := min(max(o.toOffset, start[k]), end[k])
				if v != o.toOffset {
					fmt.Fprintf(stderr, "gregor group reset-offsets: %s partition %d has offsets %d-%d; %d becomes %d\n",
						k.topic, k.partition, start[k], end[k], o.toOffset, v)
				}
				target[k] = v
			}
		} else {
			at, errs := listOffsets(ctx, cl, tps, o.toTimestamp)
			if err := firstErr(tps, errs, "offset at the timestamp"); err != nil {
				return err
			}
			for _, k := range tps {
				// No record at or after the time: the log end, as Kafka.
				target[k] = end[k]
				if v := at[k]; v >= 0 {
					target[k] = v
				}
			}
		}
	}

	if !o.dryRun {
		// OffsetCommit names topics by ID from version 10.
		m := byTopic(tps)
		topics := slices.Sorted(maps.Keys(m))
		ids, err := topicIDs(ctx, cl, topics)
		if err != nil {
			return err
		}
		names := map[[16]byte]string{}
		for t, id := range ids {
			names[id] = t
		}
		req := kmsg.NewPtrOffsetCommitRequest()
		req.Group, req.Generation, req.MemberID = group, -1, ""
		for _, t := range topics {
			rt := kmsg.NewOffsetCommitRequestTopic()
			rt.Topic, rt.TopicID = t, ids[t]
			for _, p := range m[t] {
				rp := kmsg.NewOffsetCommitRequestTopicPartition()
				rp.Partition, rp.Offset = p, target[tp{t, p}]
				rt.Partitions = append(rt.Partitions, rp)
			}
			req.Topics = append(req.Topics, rt)
		}
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			return fmt.Errorf("committing the new offsets of group %q: %w", group, err)
		}
		var errs []error
		for _, t := range resp.Topics {
			if t.Topic == "" {
				t.Topic = names[t.TopicID]
			}
			for _, p := range t.Partitions {
				if err := codeErr(p.ErrorCode, nil); err != nil {
					errs = append(errs, fmt.Errorf("committing %s partition %d: %w", t.Topic, p.Partition, err))
				}
			}
		}
		if len(errs) > 0 {
			return errors.Join(errs...)
		}
	}
	tw := tabwriter.NewWriter(stdout, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "TOPIC\tPARTITION\tPRIOR-OFFSET\tNEW-OFFSET")
	for _, k := range tps {
		p, ok := prior[k]
		fmt.Fprintf(tw, "%s\t%d\t%s\t%d\n", k.topic, k.partition, offsetCell(p, ok), target[k])
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if o.dryRun {
		fmt.Fprintf(stderr, "gregor group reset-offsets: dry run; group %s's offsets are unchanged\n", group)
	}
	return nil
}

func groupDeleteOffsets(ctx context.Context, cl *kgo.Client, group string, specs []topicSpec, stdout io.Writer) error {
	var tps []tp
	var committed map[tp]int64
	for _, s := range specs {
		if s.partitions != nil {
			for _, p := range s.partitions {
				tps = append(tps, tp{s.topic, p})
			}
			continue
		}
		if committed == nil {
			var err error
			if committed, _, err = fetchCommitted(ctx, cl, group, nil); err != nil {
				return err
			}
		}
		n := len(tps)
		for k := range committed {
			if k.topic == s.topic {
				tps = append(tps, k)
			}
		}
		if len(tps) == n {
			return fmt.Errorf("group %q has no committed offsets in topic %q", group, s.topic)
		}
	}
	slices.SortFunc(tps, compareTP)

	req := kmsg.NewPtrOffsetDeleteRequest()
	req.Group = group
	m := byTopic(tps)
	for _, t := range slices.Sorted(maps.Keys(m)) {
		rt := kmsg.NewOffsetDeleteRequestTopic()
		rt.Topic = t
		for _, p := range m[t] {
			rp := kmsg.NewOffsetDeleteRequestTopicPartition()
			rp.Partition = p
			rt.Partitions = append(rt.Partitions, rp)
		}
		req.Topics = append(req.Topics, rt)
	}
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return fmt.Errorf("group %q: %w", group, err)
	}
	if err := codeErr(resp.ErrorCode, nil); err != nil {
		return fmt.Errorf("group %q: %w", group, err)
	}
	status := map[tp]error{}
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			status[tp{t.Topic, p.Partition}] = codeErr(p.ErrorCode, nil)
		}
	}
	var errs []error
	tw := tabwriter.NewWriter(stdout, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "TOPIC\tPARTITION\tSTATUS")
	for _, k := range tps {
		err, ok := status[k]
		if !ok {
			err = errors.New("the broker did not answer for it")
		}
		st := "deleted"
		if err != nil {
			var ke *kerr.Error
			if errors.As(err, &ke) {
				st = ke.Message
			} else {
				st = "failed"
			}
			errs = append(errs, fmt.Errorf("%s partition %d: %w", k.topic, k.partition, err))
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\n", k.topic, k.partition, st)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	return errors.Join(errs...)
}
