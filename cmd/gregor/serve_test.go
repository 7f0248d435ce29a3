package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/gregor-streaming/gregor/engine"
)

const testCluster = "1=10.0.0.1:9092/10.0.0.1:19092,2=10.0.0.2:9092/10.0.0.2:19092,3=10.0.0.3:9092/10.0.0.3:19092"

func TestServeErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--id", "4", "--data", "d", "--cluster", testCluster}, "gregor serve: --id 4 is not in --cluster"},
		{[]string{"--id", "1", "--data", "d"}, "gregor serve: --cluster is required"},
		{[]string{"--id", "1", "--cluster", testCluster}, "gregor serve: --data is required"},
		{[]string{"--data", "d", "--cluster", testCluster}, "gregor serve: --id is required"},
		{[]string{"--id", "1", "--data", "d", "--cluster", "1=a:1"}, `no '/'`},
		{[]string{"--id", "1", "--data", "d", "--cluster", "1=a:1/b:2,1=c:3/d:4"}, "names broker 1 twice"},
		{[]string{"--id", "1", "--data", "d", "--cluster", "x=a:1/b:2"}, `broker id "x"`},
		{[]string{"--id", "1", "--data", "d", "--cluster", testCluster, "--listen", "0.0.0.0:9092"}, "set --advertise"},
		{[]string{"--id", "1", "--data", "d", "--cluster", testCluster, "--config", "/does/not/exist"}, "--config"},
		{[]string{"--id", "1", "--data", "d", "--cluster", testCluster, "extra"}, `unexpected argument "extra"`},
		{[]string{"--id", "1", "--data", "d", "--cluster", testCluster, "--producer-id-expiration-ms", "0"}, "--producer-id-expiration-ms 0: must be positive"},
		{[]string{"--id", "1", "--data", "d", "--cluster", testCluster, "--transaction-version", "3"}, "--transaction-version 3: want 1 or 2"},
		{[]string{"--id", "1", "--data", "d", "--cluster", testCluster, "--num-partitions", "0"}, "--num-partitions 0: must be between 1 and 10000"},
		{[]string{"--id", "1", "--data", "d", "--cluster", testCluster, "--default-replication-factor", "9"}, "--default-replication-factor 9: must be between 1 and the"},
		{[]string{"--id", "1", "--data", "d", "--cluster", testCluster, "--transactional-id-expiration-ms", "-1"}, "--transactional-id-expiration-ms -1: must be positive"},
	} {
		var stdout, stderr strings.Builder
		code := run(append([]string{"serve"}, tc.args...), &stdout, &stderr)
		if code != exitUsage || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("serve %q: exit %d, stderr %q; want exit %d and %q", tc.args, code, stderr.String(), exitUsage, tc.want)
		}
	}
}

func TestServeConfig(t *testing.T) {
	cfg, err := parseServe([]string{
		"--id", "2", "--data", "/var/gregor", "--cluster", testCluster,
		"--listen", "0.0.0.0:9092", "--advertise", "broker2.example:9092",
		"--producer-id-expiration-ms", "60000", "--num-partitions", "6", "--default-replication-factor", "2",
		"--transaction-version", "1", "--transactional-id-expiration-ms", "1000",
	}, os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	wantCluster := []engine.BrokerInfo{
		{ID: 1, Host: "10.0.0.1", Port: 9092},
		{ID: 2, Host: "broker2.example", Port: 9092},
		{ID: 3, Host: "10.0.0.3", Port: 9092},
	}
	if diff := cmp.Diff(wantCluster, cfg.Broker.Cluster); diff != "" {
		t.Errorf("cluster (-want +got):\n%s", diff)
	}
	if cfg.Broker.ProducerIDExpirationMs != 60000 {
		t.Errorf("producer id expiration %d ms, want 60000", cfg.Broker.ProducerIDExpirationMs)
	}
	if b := cfg.Broker; b.DefaultPartitions != 6 || b.DefaultReplicationFactor != 2 || b.TransactionVersion != 1 || b.TransactionalIDExpirationMs != 1000 {
		t.Errorf("num.partitions %d, default.replication.factor %d, transaction.version %d, transactional.id.expiration.ms %d; want 6, 2, 1, 1000",
			b.DefaultPartitions, b.DefaultReplicationFactor, b.TransactionVersion, b.TransactionalIDExpirationMs)
	}
	// What DescribeConfigs reports as STATIC_BROKER_CONFIG, in flag order.
	wantStatic := []string{"default.replication.factor", "num.partitions", "producer.id.expiration.ms", "transactional.id.expiration.ms"}
	if diff := cmp.Diff(wantStatic, cfg.Broker.StaticConfigs); diff != "" {
		t.Errorf("static configs (-want +got):\n%s", diff)
	}
	if cfg.PeerListen != "10.0.0.2:19092" || cfg.KafkaListen != "0.0.0.0:9092" || cfg.DataDir != "/var/gregor" {
		t.Errorf("listeners %q %q, data %q", cfg.KafkaListen, cfg.PeerListen, cfg.DataDir)
	}
	if diff := cmp.Diff(map[int32]string{1: "10.0.0.1:19092", 2: "10.0.0.2:19092", 3: "10.0.0.3:19092"}, cfg.Peers); diff != "" {
		t.Errorf("peers (-want +got):\n%s", diff)
	}
}

// TestServeConfigFile checks that a --config file fills what the command
// line leaves unset, and that the command line wins.
func TestServeConfigFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gregor.conf")
	conf := "# broker 3\nid = 3\ndata=/from/file\ncluster=" + testCluster + "\n\nauto-create-topics=true\nlisten=10.0.0.3:9092\n"
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := parseServe([]string{"--config", path, "--data", "/from/flag"}, os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Broker.ID != 3 || cfg.DataDir != "/from/flag" || !cfg.Broker.AutoCreateTopics || cfg.KafkaListen != "10.0.0.3:9092" {
		t.Errorf("got id %d data %q auto-create %v listen %q", cfg.Broker.ID, cfg.DataDir, cfg.Broker.AutoCreateTopics, cfg.KafkaListen)
	}
	if diff := cmp.Diff([]string{"auto.create.topics.enable"}, cfg.Broker.StaticConfigs); diff != "" {
		t.Errorf("static configs from the file (-want +got):\n%s", diff)
	}

	if err := os.WriteFile(path, []byte("id=3\nbogus=1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = parseServe([]string{"--config", path}, os.Stderr)
	if err == nil || !strings.Contains(err.Error(), `line 2: unknown setting "bogus"`) {
		t.Errorf("unknown setting: %v", err)
	}
}

// TestCommandsDispatch checks every command is reachable from main: a bad
// flag is that command's own usage error, not "unknown command".
func TestCommandsDispatch(t *testing.T) {
	for _, name := range []string{"serve", "dev", "sim", "bench", "topic", "produce", "consume"} {
		var stdout, stderr strings.Builder
		code := run([]string{name, "--no-such-flag"}, &stdout, &stderr)
		if code != exitUsage || strings.Contains(stderr.String(), "unknown command") {
			t.Errorf("gregor %s --no-such-flag: exit %d, stderr %q", name, code, stderr.String())
		}
	}
}
