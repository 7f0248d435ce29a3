package main

import (
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"

	"github.com/gregor-streaming/gregor/engine"
)

// clusterMember is one entry of --cluster: a broker id, the Kafka address
// clients use, and the raft transport address brokers use.
type clusterMember struct {
	ID        int32
	KafkaAddr string // host:port
	PeerAddr  string // host:port
}

// parseCluster parses "1=host:kafkaport/peerhost:peerport,2=...", the
// initial brokers of a cluster, and returns them sorted by id.
func parseCluster(s string) ([]clusterMember, error) {
	if strings.TrimSpace(s) == "" {
		return nil, fmt.Errorf("--cluster is empty; want id=host:kafkaport/peerhost:peerport,...")
	}
	var out []clusterMember
	for _, entry := range strings.Split(s, ",") {
		entry = strings.TrimSpace(entry)
		idStr, addrs, ok := strings.Cut(entry, "=")
		if !ok {
			return nil, fmt.Errorf("--cluster entry %q: want id=host:kafkaport/peerhost:peerport", entry)
		}
		id, err := strconv.ParseInt(idStr, 10, 32)
		if err != nil || id <= 0 {
			return nil, fmt.Errorf("--cluster entry %q: broker id %q is not a positive integer", entry, idStr)
		}
		kafka, peer, ok := strings.Cut(addrs, "/")
		if !ok {
			return nil, fmt.Errorf("--cluster entry %q: want id=host:kafkaport/peerhost:peerport (no '/')", entry)
		}
		for _, a := range []string{kafka, peer} {
			if _, _, err := splitHostPort(a); err != nil {
				return nil, fmt.Errorf("--cluster entry %q: %v", entry, err)
			}
		}
		if slices.ContainsFunc(out, func(m clusterMember) bool { return m.ID == int32(id) }) {
			return nil, fmt.Errorf("--cluster names broker %d twice", id)
		}
		out = append(out, clusterMember{ID: int32(id), KafkaAddr: kafka, PeerAddr: peer})
	}
	slices.SortFunc(out, func(a, b clusterMember) int { return int(a.ID) - int(b.ID) })
	return out, nil
}

// formatCluster is the inverse of parseCluster.
func formatCluster(ms []clusterMember) string {
	parts := make([]string, len(ms))
	for i, m := range ms {
		parts[i] = fmt.Sprintf("%d=%s/%s", m.ID, m.KafkaAddr, m.PeerAddr)
	}
	return strings.Join(parts, ",")
}

// splitHostPort splits a host:port with a numeric port in 0..65535.
func splitHostPort(addr string) (string, int32, error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("address %q: %v", addr, err)
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil {
		return "", 0, fmt.Errorf("address %q: port %q is not a number in 0-65535", addr, portStr)
	}
	return host, int32(port), nil
}

// brokerInfos turns the members into the engine's cluster list.
func brokerInfos(ms []clusterMember) []engine.BrokerInfo {
	out := make([]engine.BrokerInfo, 0, len(ms))
	for _, m := range ms {
		host, port, _ := splitHostPort(m.KafkaAddr) // validated by parseCluster
		out = append(out, engine.BrokerInfo{ID: m.ID, Host: host, Port: port})
	}
	return out
}

// peerAddrs maps every member's id to its raft transport address.
func peerAddrs(ms []clusterMember) map[int32]string {
	out := make(map[int32]string, len(ms))
	for _, m := range ms {
		out[m.ID] = m.PeerAddr
	}
	return out
}
