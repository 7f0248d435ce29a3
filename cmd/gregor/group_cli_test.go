package main

// gregor group and gregor consume --group, run as a person would, against
// any cluster with consumer groups: testGroupCLI takes only bootstrap
// addresses.

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestGroupCLIKfake runs the group commands against franz-go's kfake,
// three brokers on loopback ephemeral ports: a check that the assertions
// are Kafka's behaviour, not only gregor's.
func TestGroupCLIKfake(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(3))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	testGroupCLI(t, c.ListenAddrs())
}

// TestGroupCLILive runs them against a 3-broker gregor dev cluster.
func TestGroupCLILive(t *testing.T) {
	c := startLiveCluster(t)
	testGroupCLI(t, c.seeds())
}

// syncBuffer is a strings.Builder a command can write while the test
// reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// describedRow is one partition row of gregor group describe.
type describedRow struct {
	committed, end, lag, member, client, host string
}

// groupDescription is gregor group describe's output for one group.
type groupDescription struct {
	header map[string]string // GROUP, COORDINATOR, STATE, ...
	rows   map[string]describedRow
}

// parseGroupDescribe parses the output of describing one group.
func parseGroupDescribe(t *testing.T, out string) groupDescription {
	t.Helper()
	d := groupDescription{header: map[string]string{}, rows: map[string]describedRow{}}
	head, table, ok := strings.Cut(out, "\n\n")
	if !ok {
		t.Fatalf("describe printed no blank line between header and table:\n%s", out)
	}
	for _, l := range lines(head) {
		f := strings.Fields(l)
		if len(f) != 2 {
			t.Fatalf("describe header line %q: want NAME VALUE", l)
		}
		d.header[f[0]] = f[1]
	}
	ls := lines(table)
	if len(ls) == 0 || !slices.Equal(strings.Fields(ls[0]), []string{"TOPIC", "PARTITION", "CURRENT-OFFSET", "LOG-END-OFFSET", "LAG", "MEMBER-ID", "CLIENT-ID", "HOST"}) {
		t.Fatalf("describe table header is not as documented:\n%s", out)
	}
	for _, l := range ls[1:] {
		f := strings.Fields(l)
		if len(f) != 8 {
			t.Fatalf("describe row %q: want 8 columns", l)
		}
		d.rows[f[0]+"/"+f[1]] = describedRow{f[2], f[3], f[4], f[5], f[6], f[7]}
	}
	return d
}

// offsets is a describe's rows as "partition committed/end/lag", sorted,
// to compare with what a test expects.
func (d groupDescription) offsets() []string {
	var out []string
	for _, k := range slices.Sorted(maps.Keys(d.rows)) {
		r := d.rows[k]
		out = append(out, fmt.Sprintf("%s %s/%s/%s", k, r.committed, r.end, r.lag))
	}
	return out
}

// parseTable parses a table whose first line is its header into rows of
// fields, checking the header.
func parseTable(t *testing.T, out string, header ...string) [][]string {
	t.Helper()
	ls := lines(out)
	if len(ls) == 0 || !slices.Equal(strings.Fields(ls[0]), header) {
		t.Fatalf("want a table with header %v, got:\n%s", header, out)
	}
	var rows [][]string
	for _, l := range ls[1:] {
		rows = append(rows, strings.Fields(l))
	}
	return rows
}

func testGroupCLI(t *testing.T, seeds []string) {
	cli := newGregorCLI(t, seeds)
	brokers, runOK, runErr := cli.brokers, cli.runOK, cli.runErr
	produce := func(partition int, values ...string) {
		t.Helper()
		var stdout, stderr strings.Builder
		in := strings.Join(values, "\n") + "\n"
		if code := produceFrom([]string{brokers, "--topic", "orders", "--partition", strconv.Itoa(partition)}, strings.NewReader(in), &stdout, &stderr); code != exitOK {
			t.Fatalf("produce to partition %d: exit %d: %s", partition, code, stderr.String())
		}
	}
	consumeGroup := func(args ...string) []string {
		t.Helper()
		return cli.consumeOK(append([]string{brokers, "--topic", "orders", "--group", "g1"}, args...)...)
	}
	describe := func(group string) groupDescription {
		t.Helper()
		return parseGroupDescribe(t, runOK("group", "describe", brokers, group))
	}
	wantOffsets := func(what string, want ...string) groupDescription {
		t.Helper()
		d := describe("g1")
		if got := d.offsets(); !slices.Equal(got, want) {
			t.Errorf("%s: describe g1 shows (partition committed/end/lag) %v, want %v", what, got, want)
		}
		return d
	}
	listed := func(args ...string) map[string][]string {
		t.Helper()
		out := runOK(append([]string{"group", "list", brokers}, args...)...)
		m := map[string][]string{}
		for _, r := range parseTable(t, out, "GROUP", "STATE", "PROTOCOL-TYPE") {
			m[r[0]] = r[1:]
		}
		return m
	}

	runOK("topic", "create", brokers, "--partitions", "3", "--replication-factor", "3", "orders")
	admin, err := kgo.NewClient(kgo.SeedBrokers(seeds...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(admin.Close)
	waitFor(t, "a leader for each partition of orders", func() (bool, string) {
		// Not leaders(): kfake numbers its brokers from 0.
		resp, err := metadata(context.Background(), admin, []string{"orders"})
		if err != nil {
			return false, err.Error()
		}
		led := 0
		for _, tp := range resp.Topics {
			for _, p := range tp.Partitions {
				if p.ErrorCode == 0 && p.Leader >= 0 {
					led++
				}
			}
		}
		return led == 3, fmt.Sprintf("%d of 3 partitions have a leader", led)
	})
	produce(0, "a0", "a1", "a2", "a3", "a4")
	produce(1, "b0", "b1", "b2")

	// A group member reads everything, commits what it printed, and
	// leaves the group empty.
	if got := consumeGroup("--from-beginning", "--max", "8"); len(got) != 8 {
		t.Fatalf("consume --group g1 --from-beginning --max 8 printed %d records, want 8: %v", len(got), got)
	}
	produce(0, "a5", "a6")
	// Without --group, consume is as it was, and commits nothing.
	plain := func(args ...string) []string {
		t.Helper()
		return cli.consumeOK(append([]string{brokers, "--topic", "orders"}, args...)...)
	}
	if got, want := plain("--partition", "0", "--offset", "5", "--max", "2"), []string{"0\t5\t\ta5", "0\t6\t\ta6"}; !slices.Equal(got, want) {
		t.Errorf("consume --partition 0 --offset 5 --max 2 printed %q, want %q", got, want)
	}
	if got := plain("--from-beginning", "--max", "10"); len(got) != 10 {
		t.Errorf("consume --from-beginning --max 10 printed %d records, want 10: %q", len(got), got)
	}
	d := wantOffsets("after reading 8 of 8 records and producing 2 more", "orders/0 5/7/2", "orders/1 3/3/0")
	if d.header["GROUP"] != "g1" || d.header["STATE"] != "Empty" || d.header["PROTOCOL-TYPE"] != "consumer" ||
		d.header["MEMBERS"] != "0" || d.header["TOTAL-LAG"] != "2" {
		t.Errorf("describe g1 header: %v, want group g1, state Empty, protocol type consumer, 0 members, total lag 2", d.header)
	}
	if id, err := strconv.Atoi(d.header["COORDINATOR"]); err != nil || id < 0 {
		t.Errorf("describe g1: coordinator %q, want a broker id", d.header["COORDINATOR"])
	}
	for k, r := range d.rows {
		if r.member != "-" {
			t.Errorf("describe of the empty group shows member %q owning %s", r.member, k)
		}
	}
	if g := listed(); !slices.Equal(g["g1"], []string{"Empty", "consumer"}) || len(g) != 1 {
		t.Errorf("group list: %v, want only g1, Empty, consumer", g)
	}
	if g := listed("--state", "empty,Dead"); g["g1"] == nil {
		t.Errorf("group list --state empty,Dead lacks g1: %v", g)
	}
	if g := listed("--state", "Stable"); g["g1"] != nil {
		t.Errorf("group list --state Stable lists the empty g1: %v", g)
	}
	runErr(exitUsage, `--state "stabel": want one of`, "group", "list", brokers, "--state", "stabel")

	// A member that stays: it reads the two new records, and while it is
	// in the group, describe shows it owning every partition, and
	// neither delete nor reset-offsets touches the group.
	ctx, cancel := context.WithCancel(context.Background())
	var memberOut, memberErr syncBuffer
	memberDone := make(chan int, 1)
	go func() {
		memberDone <- consume(ctx, []string{brokers, "--topic", "orders", "--group", "g1"}, &memberOut, &memberErr)
	}()
	stopMember := func() {
		t.Helper()
		cancel()
		if code := <-memberDone; code != exitOK {
			t.Fatalf("consume --group g1, interrupted: exit %d: %s", code, memberErr.String())
		}
	}
	defer cancel()
	waitFor(t, "the member to read the 2 new records", func() (bool, string) {
		return len(lines(memberOut.String())) >= 2, memberOut.String() + memberErr.String()
	})
	waitFor(t, "describe to show the member owning every partition", func() (bool, string) {
		var stdout, stderr strings.Builder
		if code := run([]string{"group", "describe", brokers, "g1"}, &stdout, &stderr); code != exitOK {
			return false, stderr.String()
		}
		d := parseGroupDescribe(t, stdout.String())
		owned := 0
		for _, r := range d.rows {
			if r.member != "-" && r.client == "gregor-cli" && strings.Contains(r.host, "127.0.0.1") {
				owned++
			}
		}
		return d.header["STATE"] == "Stable" && d.header["MEMBERS"] == "1" && owned == 3, stdout.String()
	})
	runErr(exitError, `group "g1" is not empty: it is Stable with 1 member(s)`, "group", "reset-offsets", brokers, "g1", "--topic", "orders", "--to-earliest")
	runErr(exitError, `group "g1" is not empty`, "group", "reset-offsets", brokers, "g1", "--topic", "orders", "--to-earliest", "--dry-run")
	runErr(exitError, "NON_EMPTY_GROUP", "group", "delete", brokers, "g1")
	runErr(exitError, "GROUP_SUBSCRIBED_TO_TOPIC", "group", "delete-offsets", brokers, "g1", "--topic", "orders:0")
	stopMember()
	if got, want := lines(memberOut.String()), []string{"0\t5\t\ta5", "0\t6\t\ta6"}; !slices.Equal(got, want) {
		t.Errorf("the member printed %q, want %q", got, want)
	}
	wantOffsets("after the member committed on interrupt", "orders/0 7/7/0", "orders/1 3/3/0")

	// reset-offsets: a dry run changes nothing, then each way moves the
	// named partitions only.
	var stdout, stderr strings.Builder
	if code := run([]string{"group", "reset-offsets", brokers, "g1", "--topic", "orders", "--to-earliest", "--dry-run"}, &stdout, &stderr); code != exitOK {
		t.Fatalf("reset-offsets --dry-run: exit %d: %s", code, stderr.String())
	}
	if got, want := parseTable(t, stdout.String(), "TOPIC", "PARTITION", "PRIOR-OFFSET", "NEW-OFFSET"),
		[][]string{{"orders", "0", "7", "0"}, {"orders", "1", "3", "0"}, {"orders", "2", "-", "0"}}; !slices.EqualFunc(got, want, slices.Equal) {
		t.Errorf("reset-offsets --to-earliest --dry-run planned %v, want %v", got, want)
	}
	if !strings.Contains(stderr.String(), "dry run") {
		t.Errorf("reset-offsets --dry-run does not say it is one: %q", stderr.String())
	}
	wantOffsets("after a dry run", "orders/0 7/7/0", "orders/1 3/3/0")

	reset := func(want [][]string, args ...string) {
		t.Helper()
		out := runOK(append([]string{"group", "reset-offsets", brokers, "g1"}, args...)...)
		if got := parseTable(t, out, "TOPIC", "PARTITION", "PRIOR-OFFSET", "NEW-OFFSET"); !slices.EqualFunc(got, want, slices.Equal) {
			t.Errorf("reset-offsets %v printed %v, want %v", args, got, want)
		}
	}
	reset([][]string{{"orders", "0", "7", "4"}}, "--topic", "orders:0", "--to-offset", "4")
	reset([][]string{{"orders", "1", "3", "0"}}, "--topic", "orders:1", "--to-timestamp", "0")
	reset([][]string{{"orders", "2", "-", "0"}}, "--topic", "orders:2", "--to-latest")
	wantOffsets("after resetting each partition", "orders/0 4/7/3", "orders/1 0/3/3", "orders/2 0/0/0")
	reset([][]string{{"orders", "1", "0", "3"}}, "--topic", "orders:1", "--to-offset", "100")
	reset([][]string{{"orders", "1", "3", "0"}}, "--topic", "orders:1", "--to-earliest")
	reset([][]string{{"orders", "1", "0", "3"}}, "--topic", "orders:1", "--to-timestamp", "4102444800000")
	d = wantOffsets("after resetting partition 1 to beyond its end, its start, and a time after its last record",
		"orders/0 4/7/3", "orders/1 3/3/0", "orders/2 0/0/0")
	if d.header["TOTAL-LAG"] != "3" {
		t.Errorf("describe g1: total lag %s, want 3", d.header["TOTAL-LAG"])
	}
	// The group resumes where it was reset to.
	if got, want := consumeGroup("--max", "3"), []string{"0\t4\t\ta4", "0\t5\t\ta5", "0\t6\t\ta6"}; !slices.Equal(got, want) {
		t.Errorf("consume --group g1 after the reset printed %q, want %q", got, want)
	}
	wantOffsets("after reading from the reset offsets", "orders/0 7/7/0", "orders/1 3/3/0", "orders/2 0/0/0")

	// delete-offsets forgets one partition's offset.
	out := runOK("group", "delete-offsets", brokers, "g1", "--topic", "orders:2")
	if got, want := parseTable(t, out, "TOPIC", "PARTITION", "STATUS"), [][]string{{"orders", "2", "deleted"}}; !slices.EqualFunc(got, want, slices.Equal) {
		t.Errorf("delete-offsets printed %v, want %v", got, want)
	}
	wantOffsets("after deleting partition 2's offset", "orders/0 7/7/0", "orders/1 3/3/0")

	// Mistakes name themselves.
	runErr(exitUsage, "unknown subcommand \"frob\"", "group", "frob")
	runErr(exitUsage, "name at least one group", "group", "describe", brokers)
	runErr(exitUsage, "want exactly one group name, got 2", "group", "reset-offsets", brokers, "g1", "g2", "--topic", "orders", "--to-latest")
	runErr(exitUsage, "--topic TOPIC[:PARTITION,...] or --all-topics", "group", "reset-offsets", brokers, "g1", "--to-latest")
	runErr(exitUsage, "give exactly one of --to-earliest", "group", "reset-offsets", brokers, "g1", "--topic", "orders")
	runErr(exitUsage, "give exactly one of --to-earliest", "group", "reset-offsets", brokers, "g1", "--topic", "orders", "--to-earliest", "--to-offset", "3")
	runErr(exitUsage, `--topic "orders:x": partition "x"`, "group", "reset-offsets", brokers, "g1", "--topic", "orders:x", "--to-latest")
	runErr(exitUsage, "--topic is required", "group", "delete-offsets", brokers, "g1")
	runErr(exitError, "there is no partition 9", "group", "reset-offsets", brokers, "g1", "--topic", "orders:9", "--to-latest")
	runErr(exitError, "UNKNOWN_TOPIC_OR_PARTITION", "group", "reset-offsets", brokers, "g1", "--topic", "nope", "--to-latest")
	runErr(exitError, `group "nope" does not exist`, "group", "describe", brokers, "nope")
	runErr(exitError, "GROUP_ID_NOT_FOUND", "group", "delete", brokers, "nope")
	runErr(exitUsage, "give --group or --partition, not both", "consume", brokers, "--topic", "orders", "--group", "g1", "--partition", "0")
	runErr(exitError, "no broker of 127.0.0.1:1 answered", "group", "list", "--brokers", "127.0.0.1:1", "--timeout", "1s")

	// delete removes the group and its offsets.
	if out := runOK("group", "delete", brokers, "g1"); out != "deleted group g1\n" {
		t.Errorf("group delete g1 printed %q", out)
	}
	if g := listed(); g["g1"] != nil {
		t.Errorf("group list still lists g1 after deleting it: %v", g)
	}
	runErr(exitError, `group "g1" does not exist`, "group", "describe", brokers, "g1")
	runErr(exitError, "GROUP_ID_NOT_FOUND", "group", "delete", brokers, "g1")
}
