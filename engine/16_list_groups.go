package engine

import (
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ListGroups, versions 0-5.
//
// Behavior: the groups this broker coordinates (clients ask every
// broker), from every loaded coordinator; groups being deleted are left
// out. StatesFilter (v4+) keeps the groups in the named states (Kafka's
// names, any case, KIP-848 groups' states included; an unknown name
// matches nothing); TypesFilter (v5+) the named types, "classic" or
// "consumer".
// A coordinator of this broker still loading: COORDINATOR_LOAD_IN_PROGRESS
// with the groups of the others.

func init() { regKey(kmsg.ListGroups, 0, 5, (*Broker).handleListGroups) }

func (b *Broker) handleListGroups(token uint64, r *kmsg.ListGroupsRequest) {
	resp := r.ResponseKind().(*kmsg.ListGroupsResponse)
	// As Kafka: Describe on the cluster lists every group; else the
	// groups the principal may Describe.
	mayDescribe := b.authorizer(opDescribe, resGroup)
	if b.authorizedCluster(opDescribe) {
		mayDescribe = func(string) bool { return true }
	}
	for _, id := range b.partIDs() {
		p := b.parts[id]
		if p.coord == nil || !p.leader || p.lost {
			continue
		}
		if !p.coord.loaded {
			resp.ErrorCode = kerr.CoordinatorLoadInProgress.Code
			continue
		}
		for _, gid := range sortedGroupIDs(p.coord.groups) {
			g := p.coord.groups[gid]
			if g.state == gsDead || !mayDescribe(gid) {
				continue
			}
			state, typ, ptype := g.state.String(), "classic", g.protocolType
			if g.cons != nil {
				state, typ, ptype = g.cons.stateName(), "consumer", "consumer"
			}
			if len(r.StatesFilter) > 0 && !slices.ContainsFunc(r.StatesFilter, func(s string) bool { return strings.EqualFold(s, state) }) {
				continue
			}
			if len(r.TypesFilter) > 0 && !slices.ContainsFunc(r.TypesFilter, func(t string) bool { return strings.EqualFold(t, typ) }) {
				continue
			}
			lg := kmsg.NewListGroupsResponseGroup()
			lg.Group, lg.ProtocolType, lg.GroupState, lg.GroupType = gid, ptype, state, typ
			resp.Groups = append(resp.Groups, lg)
		}
	}
	b.respond(token, resp)
}
