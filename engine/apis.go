package engine

import (
	"fmt"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// APIVersion is one row of the supported-versions table that ApiVersions
// answers from.
type APIVersion struct {
	Key      int16
	Min, Max int16
}

// apiVersions is the single table of what Gregor speaks. Each handler file
// says at its top what its versions mean.
var apiVersions = []APIVersion{
	{int16(kmsg.Produce), 3, 9},
	{int16(kmsg.Fetch), 4, 12},
	{int16(kmsg.ListOffsets), 1, 7},
	{int16(kmsg.Metadata), 0, 12},
	{int16(kmsg.ApiVersions), 0, 3},
	{int16(kmsg.CreateTopics), 2, 7},
	{int16(kmsg.DeleteTopics), 1, 6},
	{int16(kmsg.InitProducerID), 0, 4},
	{int16(kmsg.OffsetForLeaderEpoch), 2, 4},
	{int16(kmsg.DescribeConfigs), 0, 4},
	{int16(kmsg.CreatePartitions), 0, 3},
	{int16(kmsg.DescribeCluster), 0, 1},
}

// APIVersions returns the supported API versions, sorted by key.
func APIVersions() []APIVersion {
	v := slices.Clone(apiVersions)
	slices.SortFunc(v, func(a, b APIVersion) int { return int(a.Key) - int(b.Key) })
	return v
}

// Handle accepts one decoded Kafka request. Its response appears in
// Responses, tagged with token, possibly after later calls to Process or
// Tick (produce waits for commit, fetch may long-poll).
func (b *Broker) Handle(token uint64, req kmsg.Request) {
	switch r := req.(type) {
	case *kmsg.ProduceRequest:
		b.handleProduce(token, r)
	case *kmsg.FetchRequest:
		b.handleFetch(token, r)
	case *kmsg.ListOffsetsRequest:
		b.handleListOffsets(token, r)
	case *kmsg.MetadataRequest:
		b.handleMetadata(token, r)
	case *kmsg.ApiVersionsRequest:
		b.handleApiVersions(token, r)
	case *kmsg.CreateTopicsRequest:
		b.handleCreateTopics(token, r)
	case *kmsg.DeleteTopicsRequest:
		b.handleDeleteTopics(token, r)
	case *kmsg.InitProducerIDRequest:
		b.handleInitProducerID(token, r)
	case *kmsg.OffsetForLeaderEpochRequest:
		b.handleOffsetForLeaderEpoch(token, r)
	case *kmsg.DescribeConfigsRequest:
		b.handleDescribeConfigs(token, r)
	case *kmsg.CreatePartitionsRequest:
		b.handleCreatePartitions(token, r)
	case *kmsg.DescribeClusterRequest:
		b.handleDescribeCluster(token, r)
	default:
		// netwire only passes keys from the table; anything else is a bug.
		panic(fmt.Sprintf("engine: no handler for request key %d", req.Key()))
	}
}

// lookup finds the partition a client addresses, with the Kafka error a
// client should see when this broker cannot serve it as leader.
func (b *Broker) lookup(topic string, index int32) (*partition, *kerr.Error) {
	pm, ok := b.meta.partition(topic, index)
	if !ok {
		return nil, kerr.UnknownTopicOrPartition
	}
	p, ok := b.parts[pm.Group]
	if !ok || !p.leader {
		return nil, kerr.NotLeaderForPartition
	}
	return p, nil
}

// lookupLeader is lookup plus the KIP-320 check of the client's
// CurrentLeaderEpoch, for the APIs that carry one.
func (b *Broker) lookupLeader(topic string, index, currentEpoch int32) (*partition, *kerr.Error) {
	if b.cfg.Unsafe.StaleRead {
		// The knob serves reads from this replica's local state, leader or
		// not: no confirmation of leadership at all.
		if pm, ok := b.meta.partition(topic, index); ok {
			if p := b.parts[pm.Group]; p != nil {
				return p, nil
			}
		}
	}
	p, err := b.lookup(topic, index)
	if err != nil {
		return nil, err
	}
	if err := p.checkLeaderEpoch(currentEpoch); err != nil {
		return nil, err
	}
	return p, nil
}

// checkLeaderEpoch applies KIP-320: a client's epoch older than ours is
// fenced, a newer one means this broker has not caught up yet.
func (p *partition) checkLeaderEpoch(epoch int32) *kerr.Error {
	switch {
	case epoch < 0:
		return nil
	case epoch < int32(p.term):
		return kerr.FencedLeaderEpoch
	case epoch > int32(p.term):
		return kerr.UnknownLeaderEpoch
	}
	return nil
}
