package engine

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DescribeCluster, versions 0-1.
//
// Behavior:
//   - Any broker answers from its applied copy of the metadata log: the
//     brokers with their registered addresses (of the listener the request
//     came through, leaving out brokers without it) and racks, the controller
//     (the metadata group's raft leader, -1 while none is known) and the
//     cluster id.
//   - v1: only EndpointType 1 (brokers) is served; any other is
//     UNSUPPORTED_ENDPOINT_TYPE.
//   - Authorized operations are not computed (no ACLs).

func init() { regKey(kmsg.DescribeCluster, 0, 1, (*Broker).handleDescribeCluster) }

func (b *Broker) handleDescribeCluster(token uint64, r *kmsg.DescribeClusterRequest) {
	resp := r.ResponseKind().(*kmsg.DescribeClusterResponse)
	resp.ClusterID = b.cfg.ClusterID
	resp.ControllerID = b.controllerID()
	if r.Version >= 1 && r.EndpointType != 1 {
		resp.ErrorCode = kerr.UnsupportedEndpointType.Code
	}
	for _, bi := range b.liveBrokers() {
		host, port, ok := b.endpointFor(bi)
		if !ok {
			continue
		}
		mb := kmsg.NewDescribeClusterResponseBroker()
		mb.NodeID, mb.Host, mb.Port, mb.Rack = bi.ID, host, port, bi.rack()
		resp.Brokers = append(resp.Brokers, mb)
	}
	b.respond(token, resp)
}
