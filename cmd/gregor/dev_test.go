package main

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestDevClusterMetadata starts the dev cluster on ephemeral ports and
// checks a franz-go client sees its three brokers.
func TestDevClusterMetadata(t *testing.T) {
	o := devOptions{brokers: 3, data: t.TempDir(), autoCreate: true}
	nodes, err := startDev(o, nil, func(id int32) func(string, ...any) {
		return func(f string, a ...any) { t.Logf("broker %d: "+f, append([]any{id}, a...)...) }
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := stopDev(nodes); err != nil {
			t.Error(err)
		}
	}()
	var seeds []string
	for _, n := range nodes {
		seeds = append(seeds, n.KafkaAddr())
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := kmsg.NewPtrMetadataRequest().RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	got := map[int32]string{}
	for _, b := range resp.Brokers {
		got[b.NodeID] = b.Host
	}
	if len(got) != 3 {
		t.Fatalf("metadata lists brokers %v, want 1, 2 and 3", resp.Brokers)
	}
	for i, n := range nodes {
		id := int32(i + 1)
		var port int32
		for _, b := range resp.Brokers {
			if b.NodeID == id {
				port = b.Port
			}
		}
		if want := n.KafkaAddr(); !strings.HasSuffix(want, ":"+strconv.Itoa(int(port))) {
			t.Errorf("broker %d advertised port %d, listens on %s", id, port, want)
		}
	}
}

func TestDevPrintCommands(t *testing.T) {
	var stdout, stderr strings.Builder
	code := run([]string{"dev", "--print-commands", "--data", "/srv/gregor"}, &stdout, &stderr)
	if code != exitOK {
		t.Fatalf("exit %d, stderr %q", code, stderr.String())
	}
	const cluster = "1=127.0.0.1:9092/127.0.0.1:19092,2=127.0.0.1:9093/127.0.0.1:19093,3=127.0.0.1:9094/127.0.0.1:19094"
	want := "" +
		"gregor serve --id 1 --data /srv/gregor/1 --listen 127.0.0.1:9092 --peer-listen 127.0.0.1:19092 --admin-listen 127.0.0.1:9122 --cluster " + cluster + " --auto-create-topics --group-initial-rebalance-delay-ms 0\n" +
		"gregor serve --id 2 --data /srv/gregor/2 --listen 127.0.0.1:9093 --peer-listen 127.0.0.1:19093 --admin-listen 127.0.0.1:9123 --cluster " + cluster + " --auto-create-topics --group-initial-rebalance-delay-ms 0\n" +
		"gregor serve --id 3 --data /srv/gregor/3 --listen 127.0.0.1:9094 --peer-listen 127.0.0.1:19094 --admin-listen 127.0.0.1:9124 --cluster " + cluster + " --auto-create-topics --group-initial-rebalance-delay-ms 0\n"
	if stdout.String() != want {
		t.Fatalf("got:\n%s\nwant:\n%s", stdout.String(), want)
	}

	// Each printed line must parse as a serve command describing the same
	// broker the dev cluster would run.
	for i, line := range strings.Split(strings.TrimSpace(stdout.String()), "\n") {
		args := strings.Fields(line)[2:]
		cfg, err := parseServe(args, &stderr)
		if err != nil {
			t.Fatalf("line %d: %v", i+1, err)
		}
		if cfg.Broker.ID != int32(i+1) || len(cfg.Broker.Cluster) != 3 || len(cfg.Peers) != 3 || !cfg.Broker.AutoCreateTopics {
			t.Errorf("line %d parses to %+v", i+1, cfg)
		}
	}
}

func TestDevPrintCommandsQuotesData(t *testing.T) {
	var stdout, stderr strings.Builder
	run([]string{"dev", "--print-commands", "--data", "my data", "--base-port", "7000", "--brokers", "1"}, &stdout, &stderr)
	want := "gregor serve --id 1 --data 'my data/1' --listen 127.0.0.1:7000 --peer-listen 127.0.0.1:17000 --admin-listen 127.0.0.1:7030 --cluster 1=127.0.0.1:7000/127.0.0.1:17000 --auto-create-topics --group-initial-rebalance-delay-ms 0\n"
	if stdout.String() != want {
		t.Fatalf("got %q, want %q (stderr %q)", stdout.String(), want, stderr.String())
	}
}
