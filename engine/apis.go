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

// api is one registered Kafka API: its versions and its handler.
type api struct {
	versions APIVersion
	handle   func(b *Broker, token uint64, req kmsg.Request)
}

// apis is what Gregor speaks, by key. Each NN_name.go file registers its
// API with regKey in an init function, next to the comment that says what
// its versions mean, as franz-go's kfake does.
var apis = map[int16]api{}

// regKey registers the handler of one Kafka API and the versions it
// supports. R is the handler's request type, which must be the one kmsg
// decodes for key; a bad or second registration panics at init.
func regKey[R kmsg.Request](key kmsg.Key, min, max int16, handle func(b *Broker, token uint64, r R)) {
	k := int16(key)
	req := kmsg.RequestForKey(k)
	if req == nil || min < 0 || max < min || max > req.MaxVersion() {
		panic(fmt.Sprintf("engine: bad registration of key %d, versions %d-%d", k, min, max))
	}
	if _, ok := req.(R); !ok {
		panic(fmt.Sprintf("engine: key %d registered with a handler of %T, kmsg decodes %T", k, *new(R), req))
	}
	if _, ok := apis[k]; ok {
		panic(fmt.Sprintf("engine: key %d registered twice", k))
	}
	apis[k] = api{
		versions: APIVersion{Key: k, Min: min, Max: max},
		handle: func(b *Broker, token uint64, req kmsg.Request) {
			handle(b, token, req.(R))
		},
	}
}

// APIVersions returns the supported API versions, sorted by key.
func APIVersions() []APIVersion {
	v := make([]APIVersion, 0, len(apis))
	for _, a := range apis {
		v = append(v, a.versions)
	}
	slices.SortFunc(v, func(a, b APIVersion) int { return int(a.Key) - int(b.Key) })
	return v
}

// Client is who sent a request, as the edge (netwire, through the
// runtime) knows it.
type Client struct {
	// ID is the client id of the request's header.
	ID string
	// Host is the client's address, without its port.
	Host string
	// Listener is the name of the listener the connection came through
	// (upper case); Metadata, FindCoordinator and DescribeCluster answer
	// with the brokers' addresses on that listener.
	Listener string
	// Principal is who the connection authenticated as, in Kafka's form
	// ("User:alice"; "User:ANONYMOUS" without authentication; empty is
	// taken as "User:ANONYMOUS"). The authorizer checks it.
	Principal string
}

// clientInfo is who sent the request being handled (Kafka's client id
// and "/address", as group members are described; the listener and
// principal as the edge gave them).
type clientInfo struct{ id, host, listener, principal string }

// HandleClient is Handle for a request whose sender is known.
func (b *Broker) HandleClient(token uint64, req kmsg.Request, c Client) {
	if c.Principal == "" {
		c.Principal = "User:ANONYMOUS"
	}
	b.reqClient = clientInfo{c.ID, "/" + c.Host, c.Listener, c.Principal}
	b.Handle(token, req)
	b.reqClient = clientInfo{}
}

// Handle accepts one decoded Kafka request. Its response appears in
// Responses, tagged with token, possibly after later calls to Process or
// Tick (produce waits for commit, fetch may long-poll).
func (b *Broker) Handle(token uint64, req kmsg.Request) {
	a, ok := apis[req.Key()]
	if !ok {
		// netwire only passes keys from APIVersions; anything else is a bug.
		panic(fmt.Sprintf("engine: no handler for request key %d", req.Key()))
	}
	a.handle(b, token, req)
}

// lookup finds the partition a client addresses, with the Kafka error a
// client should see when this broker cannot serve it as leader.
func (b *Broker) lookup(topic string, index int32) (*partition, *kerr.Error) {
	pm, ok := b.meta.partition(topic, index)
	if !ok {
		return nil, kerr.UnknownTopicOrPartition
	}
	p, ok := b.parts[pm.Group]
	if ok && (p.storageErr != nil || b.host.Stalled() != nil) {
		return nil, kerr.KafkaStorageError
	}
	if !ok || !p.leader || p.lost {
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
