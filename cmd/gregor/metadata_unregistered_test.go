package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"os"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestRegression_UnregisteredLeaderNotAvailable: kafkajs (TestKafkaJSSecure)
// found that right after a fresh secure cluster elects its controller, a
// partition led by a broker whose listeners are not registered yet was
// answered LISTENER_NOT_FOUND, which kafkajs's createTopics does not retry.
// Kafka answers LEADER_NOT_AVAILABLE: its leaders are registered brokers.
func TestRegression_UnregisteredLeaderNotAvailable(t *testing.T) {
	data := t.TempDir()
	sec := newDevSecure(data)
	if err := sec.prepare(false, ""); err != nil {
		t.Fatal(err)
	}
	nodes, err := startDev(devOptions{brokers: 3, data: data, secure: true}, sec, func(int32) func(string, ...any) { return func(string, ...any) {} })
	if err != nil {
		t.Fatal(err)
	}
	defer stopDev(nodes)
	waitController(nodes, devReadyMax)
	caPEM, _ := os.ReadFile(sec.caCert)
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(caPEM)
	pair, _ := tls.LoadX509KeyPair(sec.adminCert, sec.adminKey)
	cl, _ := kgo.NewClient(kgo.SeedBrokers(nodes[0].ListenerAddr("SSL")), kgo.DialTLSConfig(&tls.Config{RootCAs: roots, Certificates: []tls.Certificate{pair}}))
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	b := cl.SeedBrokers()[0]
	cr := kmsg.NewPtrCreateTopicsRequest()
	ct := kmsg.NewCreateTopicsRequestTopic()
	ct.Topic, ct.NumPartitions, ct.ReplicationFactor = "t", 3, 3
	cr.Topics = append(cr.Topics, ct)
	if _, err := cr.RequestWith(ctx, b); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 50; i++ {
		mr := kmsg.NewPtrMetadataRequest()
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr("t")
		mr.Topics = append(mr.Topics, rt)
		resp, err := mr.RequestWith(ctx, b)
		if err != nil {
			t.Fatal(err)
		}
		var ids []int32
		for _, br := range resp.Brokers {
			ids = append(ids, br.NodeID)
		}
		for _, p := range resp.Topics[0].Partitions {
			if p.ErrorCode == kerr.ListenerNotFound.Code {
				t.Errorf("Metadata v%d from broker 1 lists brokers %v; partition %d: leader %d, replicas %v, error %v (Kafka: LEADER_NOT_AVAILABLE for a leader not registered)",
					mr.Version, ids, p.Partition, p.Leader, p.Replicas, kerr.ErrorForCode(p.ErrorCode))
				return
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
}
