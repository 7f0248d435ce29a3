package engine

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/gregor-streaming/gregor/engine/rsm"
	"github.com/gregor-streaming/gregor/raftlog"
	"github.com/twmb/franz-go/pkg/kerr"
	"go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"
)

// The cluster-metadata state machine, in the spirit of KRaft: one raft
// group, voted by every initial broker, whose log is the history of topics,
// partition placements, partition leaders, brokers and producer-id blocks.
// Every broker applies it and starts or stops its own partition replicas
// from what it applies.
//
// The metadata log is compacted like any other (image.go): Sync writes an
// image of the applied state, and a lagging broker gets the image in a raft
// snapshot.

const producerIDBlock = 1000

type partMeta struct {
	Group    raftlog.GroupID
	Replicas []int32
	Leader   int32 // -1 until a leader reports itself
	Epoch    int32 // raft term of Leader
	ISR      []int32
}

type topicMeta struct {
	Name       string
	ID         [16]byte
	Partitions []partMeta
	Configs    map[string]string
	// policy caches what is enforced of Configs (topicPolicy); nil after
	// they change.
	policy *topicPolicy
}

type metaState struct {
	Brokers        map[int32]BrokerInfo
	Topics         map[string]*topicMeta
	NextGroup      raftlog.GroupID
	NextProducerID int64
	// BrokerConfigs are the cluster-wide dynamic broker defaults, by
	// broker config name (topic_configs.go).
	BrokerConfigs map[string]string `json:",omitempty"`
	// Recent remembers each proposer's latest applied proposals, so that
	// a forwarded proposal the network delivered twice applies once.
	Recent map[int32]*recentProposals `json:",omitempty"`
	// SCRAM are the users' SCRAM credentials, by user then mechanism
	// (scram.go). Images from before them have none.
	SCRAM map[string]map[string]SCRAMCredential `json:",omitempty"`
	// ACLs are the ACL bindings, sorted by compareACL, no two equal
	// (acl.go). Images from before them have none.
	ACLs []ACL `json:",omitempty"`
}

// recentProposalsMax bounds the proposals remembered per broker: a
// duplicate arrives within a network delay of the original.
const recentProposalsMax = 64

// recentProposals is one proposer's latest applied proposals in one run
// (Boot); a new run starts a new list.
type recentProposals struct {
	Boot uint64
	Seqs []uint64 // ascending
}

// duplicate reports whether h was applied already, and remembers it if
// not. Only exact repeats are skipped: proposals of one broker may commit
// out of order (forwarded over different paths), and each distinct one
// must apply.
func (st *metaState) duplicate(h rsm.Header) bool {
	if st.Recent == nil {
		st.Recent = map[int32]*recentProposals{}
	}
	r := st.Recent[h.Proposer]
	if r == nil || r.Boot != h.Boot {
		r = &recentProposals{Boot: h.Boot}
		st.Recent[h.Proposer] = r
	}
	i, found := slices.BinarySearch(r.Seqs, h.Seq)
	if found {
		return true
	}
	r.Seqs = slices.Insert(r.Seqs, i, h.Seq)
	if len(r.Seqs) > recentProposalsMax {
		r.Seqs = slices.Delete(r.Seqs, 0, len(r.Seqs)-recentProposalsMax)
	}
	return false
}

// metaCmd is the JSON body of one metadata log entry, after its
// rsm.Header. Exactly one field is set.
type metaCmd struct {
	CreateTopic      *createTopicCmd      `json:"ct,omitempty"`
	DeleteTopic      *string              `json:"dt,omitempty"`
	CreatePartitions *createPartitionsCmd `json:"cp,omitempty"`
	Leader           *leaderCmd           `json:"l,omitempty"`
	Register         *BrokerInfo          `json:"r,omitempty"`
	AllocateIDs      bool                 `json:"a,omitempty"`
	AlterConfigs     *alterConfigsCmd     `json:"ac,omitempty"`
	SCRAM            *scramCmd            `json:"sc,omitempty"`
	ACL              *aclCmd              `json:"acl,omitempty"`
}

// alterConfigsCmd changes a topic's configs: with Replace, the configs
// become exactly Ops' sets (AlterConfigs); otherwise Ops apply in order to
// what the topic has when the entry applies (IncrementalAlterConfigs), so
// two racing changes both take effect. The proposer validated them.
type alterConfigsCmd struct {
	Topic   string
	Replace bool
	Ops     []configOp
	// Broker changes the cluster-wide broker defaults instead (Topic is
	// empty).
	Broker bool `json:",omitempty"`
}

// configOp is one IncrementalAlterConfigs operation (Kafka's codes: 0 SET,
// 1 DELETE, 2 APPEND, 3 SUBTRACT; the last two on list configs).
type configOp struct {
	Name  string
	Op    int8
	Value string
}

// applyConfigOps returns cur with ops applied (cur is not changed).
func applyConfigOps(cur map[string]string, replace bool, ops []configOp) map[string]string {
	next := map[string]string{}
	if !replace {
		maps.Copy(next, cur)
	}
	for _, o := range ops {
		switch o.Op {
		case configSet:
			next[o.Name] = o.Value
		case configDelete:
			delete(next, o.Name)
		case configAppend, configSubtract:
			// An unset list starts from its default, as in Kafka (list
			// defaults are constants: no broker's configuration enters).
			v, ok := next[o.Name]
			tc := topicConfigByName[o.Name]
			if tc == nil {
				tc = brokerConfigByName[o.Name]
			}
			if !ok && tc != nil {
				v = tc.def(nil)
			}
			have := splitList(v)
			for _, e := range splitList(o.Value) {
				i := slices.Index(have, e)
				if o.Op == configAppend && i < 0 {
					have = append(have, e)
				}
				if o.Op == configSubtract && i >= 0 {
					have = slices.Delete(have, i, i+1)
				}
			}
			next[o.Name] = strings.Join(have, ",")
		}
	}
	if len(next) == 0 {
		return nil
	}
	return next
}

// IncrementalAlterConfigs operation codes.
const (
	configSet      int8 = 0
	configDelete   int8 = 1
	configAppend   int8 = 2
	configSubtract int8 = 3
)

// splitList splits a list config's value at commas, trimmed, empty
// elements dropped.
func splitList(v string) []string {
	var out []string
	for _, e := range strings.Split(v, ",") {
		if e = strings.TrimSpace(e); e != "" {
			out = append(out, e)
		}
	}
	return out
}

type createTopicCmd struct {
	Name        string
	Partitions  int32
	Replication int16
	// Assignment gives each partition's replicas: from the request, or
	// placed by the proposer (metaSM.place). Apply never places.
	Assignment [][]int32
	Configs    map[string]string
}

type createPartitionsCmd struct {
	Name  string
	Count int32
	// Assignment has Count entries: the replicas of each partition index
	// the proposer added (nil for the ones it saw existing).
	Assignment [][]int32
}

type leaderCmd struct {
	Group  raftlog.GroupID
	Leader int32
	Epoch  int32
	ISR    []int32
}

// metaResult is what applying a command produced, for its proposer.
type metaResult struct {
	err         error
	producerIDs int64 // AllocateIDs: first id of the block
	// deletedACLs: ACL, the bindings each filter of Delete removed.
	deletedACLs [][]ACL
}

// opMeta is the one operation of the metadata log (rsm.Header.Op); the
// JSON body says what it does.
const opMeta byte = 1

type metaSM struct {
	b       *Broker
	applied uint64
	st      metaState
	lead    uint64
	term    uint64
	// pending are this broker's metadata proposals waiting to apply.
	pending rsm.Proposals[metaResult]
	// imaged is the applied index of the last image written (image.go).
	imaged uint64
	// scramGen moves whenever st.SCRAM may have changed (scram.go).
	scramGen uint64
}

func newMetaSM(b *Broker) *metaSM {
	return &metaSM{b: b, st: metaState{
		Brokers:        map[int32]BrokerInfo{},
		Topics:         map[string]*topicMeta{},
		NextGroup:      metadataGroup + 1,
		NextProducerID: 1,
	}}
}

func (m *metaSM) AppliedIndex() uint64 { return m.applied }

// SyncsCommit: the metadata is read without a ReadIndex round (topics,
// ACLs, credentials, configs), so a restarted broker must never come back
// with older metadata than it served: its commit index is synced before
// it applies (raftlog.CommitSyncer).
func (m *metaSM) SyncsCommit() bool                  { return true }
func (m *metaSM) ReadIndexReady(rs []raft.ReadState) {}

// LeaderChanged fails this broker's waiting proposals when the term
// changes: a proposal forwarded to a leader that died is dropped, and its
// proposer would otherwise wait out its timeout (a new partition leader's
// report, and with it every client's view of the leader, waited 5 s).
// They may still commit; every caller retries or is idempotent.
//
// A newly known leader gets this broker's registration and partition
// leader reports at once (reconcile, after the cycle), not at the next
// periodic reconcile up to five ticks later: after the controller's
// broker dies, the reports that died with it are what clients wait for
// (measured by gregor bench failover: Metadata named a partition's new
// leader 100-500 ms after the new controller was known).
func (m *metaSM) LeaderChanged(lead, term uint64) {
	if term != m.term && m.term != 0 {
		m.pending.FailAll(metaResult{err: kerr.NotController})
	}
	if lead != 0 && (lead != m.lead || term != m.term) {
		m.b.effects = append(m.b.effects, m.b.reconcile)
	}
	m.lead, m.term = lead, term
}

func (m *metaSM) Apply(ents []*pb.Entry) error {
	for _, e := range ents {
		if e.GetIndex() <= m.applied {
			continue
		}
		m.applied = e.GetIndex()
		if len(e.GetData()) == 0 {
			continue
		}
		h, body, err := rsm.Parse(e.GetData())
		if err == nil && (h.Kind != rsm.KindMetadata || h.Op != opMeta) {
			err = fmt.Errorf("entry of kind %v op %d", h.Kind, h.Op)
		}
		var cmd metaCmd
		if err == nil {
			err = json.Unmarshal(body, &cmd)
		}
		if err != nil {
			return fmt.Errorf("engine: metadata entry %d: %w", e.GetIndex(), err)
		}
		if m.st.duplicate(h) {
			continue // a forwarded proposal delivered twice
		}
		res := m.apply(&cmd, e.GetIndex())
		if m.b.prop.Mine(h) {
			m.pending.Resolve(h.Seq, res)
		}
	}
	return nil
}

func (m *metaSM) apply(cmd *metaCmd, index uint64) metaResult {
	st := &m.st
	switch {
	case cmd.Register != nil:
		st.Brokers[cmd.Register.ID] = *cmd.Register
	case cmd.AllocateIDs:
		first := st.NextProducerID
		st.NextProducerID += producerIDBlock
		return metaResult{producerIDs: first}
	case cmd.CreateTopic != nil:
		c := cmd.CreateTopic
		if _, ok := st.Topics[c.Name]; ok {
			return metaResult{err: kerr.TopicAlreadyExists}
		}
		if int32(len(c.Assignment)) != c.Partitions || !placed(c.Assignment) {
			return metaResult{err: kerr.InvalidReplicaAssignment}
		}
		t := &topicMeta{Name: c.Name, ID: topicID(c.Name, index), Configs: c.Configs}
		st.Topics[c.Name] = t
		m.addPartitions(t, c.Assignment)
	case cmd.CreatePartitions != nil:
		c := cmd.CreatePartitions
		t, ok := st.Topics[c.Name]
		if !ok {
			return metaResult{err: kerr.UnknownTopicOrPartition}
		}
		have := int32(len(t.Partitions))
		if c.Count <= have {
			return metaResult{err: kerr.InvalidPartitions}
		}
		// The assignment was made for the topic as the proposer saw it;
		// it covers indexes up to Count, and must cover the ones missing
		// now.
		if int32(len(c.Assignment)) != c.Count || !placed(c.Assignment[have:]) {
			return metaResult{err: kerr.InvalidPartitions}
		}
		m.addPartitions(t, c.Assignment[have:])
	case cmd.DeleteTopic != nil:
		t, ok := st.Topics[*cmd.DeleteTopic]
		if !ok {
			return metaResult{err: kerr.UnknownTopicOrPartition}
		}
		delete(st.Topics, t.Name)
		for _, p := range t.Partitions {
			delete(m.b.want, p.Group)
		}
		m.b.wantChanged = true
	case cmd.AlterConfigs != nil:
		c := cmd.AlterConfigs
		changed := map[string]*topicMeta{}
		if c.Broker {
			st.BrokerConfigs = applyConfigOps(st.BrokerConfigs, c.Replace, c.Ops)
			maps.Copy(changed, st.Topics)
		} else {
			t, ok := st.Topics[c.Topic]
			if !ok {
				return metaResult{err: kerr.UnknownTopicOrPartition}
			}
			t.Configs = applyConfigOps(t.Configs, c.Replace, c.Ops)
			changed[t.Name] = t
		}
		for _, t := range changed {
			t.policy = nil
			for _, pm := range t.Partitions {
				if p := m.b.parts[pm.Group]; p != nil && p.log != nil {
					p.log.SetSegmentBytesMax(m.b.topicSegmentBytes(t.Name))
					p.log.SetSegmentMs(m.b.topicPolicy(t.Name).segmentMs)
				}
			}
		}
	case cmd.SCRAM != nil:
		return m.applySCRAM(cmd.SCRAM)
	case cmd.ACL != nil:
		return m.applyACL(cmd.ACL)
	case cmd.Leader != nil:
		l := cmd.Leader
		for _, t := range st.Topics {
			for i := range t.Partitions {
				p := &t.Partitions[i]
				if p.Group == l.Group && l.Epoch >= p.Epoch {
					p.Leader, p.Epoch, p.ISR = l.Leader, l.Epoch, l.ISR
				}
			}
		}
	}
	return metaResult{}
}

// addPartitions appends partitions with the given replicas (one slice per
// new partition), each a new raft group, and starts the ones this broker
// hosts. The replicas come from the entry, never from local configuration,
// so every broker applies the same placement.
func (m *metaSM) addPartitions(t *topicMeta, assignment [][]int32) {
	for _, replicas := range assignment {
		g := m.st.NextGroup
		m.st.NextGroup++
		replicas := slices.Clone(replicas)
		index := int32(len(t.Partitions))
		t.Partitions = append(t.Partitions, partMeta{Group: g, Replicas: replicas, Leader: -1, Epoch: -1})
		if slices.Contains(replicas, m.b.cfg.ID) {
			m.b.want[g] = wantReplica{topic: t.Name, index: index, replicas: replicas}
			m.b.wantChanged = true
		}
	}
}

// placed reports whether every partition of an assignment names at least
// one replica and no replica twice.
func placed(assignment [][]int32) bool {
	for _, rs := range assignment {
		if len(rs) == 0 || len(rs) > 7 {
			return false
		}
		for i, r := range rs {
			if slices.Contains(rs[:i], r) {
				return false
			}
		}
	}
	return true
}

// place chooses, on the proposing broker, the replicas of the partitions
// with indexes from..to-1 of a topic: round-robin over the brokers sorted
// by id, starting at a broker that moves with every partition so leaders
// spread. Indexes below from stay nil. The proposer decides; the entry
// carries the decision (see addPartitions).
func (m *metaSM) place(from, to int32, rf int16) [][]int32 {
	brokers := m.brokerIDs()
	out := make([][]int32, to)
	for i := from; i < to; i++ {
		g := uint64(m.st.NextGroup) + uint64(i-from)
		start := int(g % uint64(len(brokers)))
		for j := range int(rf) {
			out[i] = append(out[i], brokers[(start+j)%len(brokers)])
		}
	}
	return out
}

// brokerIDs are the initial cluster's brokers, sorted.
func (m *metaSM) brokerIDs() []int32 {
	var ids []int32
	for _, bi := range m.b.cfg.Cluster {
		ids = append(ids, bi.ID)
	}
	slices.Sort(ids)
	return ids
}

// leaderOf is partition pm's leader and epoch as clients are told them:
// the metadata log's, or this broker's own replica's raft view when that
// is newer (a higher term; raft elects at most one leader per term). The
// replicas know a new leader as soon as raft elects it; the metadata log
// names it only once the controller commits its report, which, after the
// broker that led the partition and the metadata group dies, waits for a
// new controller too (gregor bench failover: the quiet metadata group took
// 2.2-2.5 s to elect one, and clients waited that long for a new leader
// elected in about 1.1 s).
func (b *Broker) leaderOf(pm partMeta) (leader, epoch int32) {
	if p := b.parts[pm.Group]; p != nil && p.lead != 0 && int64(p.term) > int64(pm.Epoch) && !p.lost {
		return int32(p.lead), int32(p.term)
	}
	return pm.Leader, pm.Epoch
}

// brokerAliveTicks: a peer not heard from for this long is left out of
// the brokers clients are told of (Kafka fences a broker that stops
// heartbeating the same way, after broker.session.timeout.ms), so that
// clients stop routing to it and look for new leaders and coordinators.
func (b *Broker) brokerAliveTicks() uint64 { return uint64(2 * b.cfg.ElectionTicks) }

// brokerAlive reports whether this broker has heard from broker id lately.
func (b *Broker) brokerAlive(id int32) bool {
	return id == b.cfg.ID || b.host.PeerHeardWithin(uint64(id), b.brokerAliveTicks())
}

// liveBrokers are the brokers clients are told of: those alive as this
// broker sees them.
func (b *Broker) liveBrokers() []BrokerInfo {
	var out []BrokerInfo
	for _, bi := range b.meta.brokers() {
		if b.brokerAlive(bi.ID) {
			out = append(out, bi)
		}
	}
	return out
}

// brokers lists every broker with its address: registered ones from the
// log, the rest from the configuration.
func (m *metaSM) brokers() []BrokerInfo {
	var out []BrokerInfo
	for _, bi := range m.b.cfg.Cluster {
		if r, ok := m.st.Brokers[bi.ID]; ok {
			bi = r
		}
		out = append(out, bi)
	}
	slices.SortFunc(out, func(a, b BrokerInfo) int { return int(a.ID) - int(b.ID) })
	return out
}

func (m *metaSM) topicNames() []string {
	names := make([]string, 0, len(m.st.Topics))
	for n := range m.st.Topics {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

func topicID(name string, index uint64) [16]byte {
	h := sha256.New()
	h.Write([]byte(name))
	binary.Write(h, binary.BigEndian, index)
	var id [16]byte
	copy(id[:], h.Sum(nil))
	return id
}

// proposeMeta proposes cmd to the metadata group; fn gets the result, or
// kerr.RequestTimedOut if it is not applied within timeoutMs.
func (b *Broker) proposeMeta(cmd metaCmd, timeoutMs int64, fn func(metaResult)) {
	// Decisions are made here, on the proposer, and carried in the entry.
	if c := cmd.CreateTopic; c != nil && len(c.Assignment) == 0 {
		c.Assignment = b.meta.place(0, c.Partitions, c.Replication)
	}
	if c := cmd.CreatePartitions; c != nil && len(c.Assignment) == 0 {
		if t, ok := b.meta.st.Topics[c.Name]; ok && c.Count > int32(len(t.Partitions)) && len(t.Partitions) > 0 {
			c.Assignment = b.meta.place(int32(len(t.Partitions)), c.Count, int16(len(t.Partitions[0].Replicas)))
		}
	}
	body, err := json.Marshal(cmd)
	if err != nil {
		fn(metaResult{err: err})
		return
	}
	h := b.prop.Next(rsm.KindMetadata, opMeta)
	if err := b.host.Propose(metadataGroup, h.Encode(body)); err != nil {
		fn(metaResult{err: kerr.NotController})
		return
	}
	t := b.after(timeoutMs, func() {
		if b.meta.pending.Cancel(h.Seq) {
			fn(metaResult{err: kerr.RequestTimedOut})
		}
	})
	b.meta.pending.Add(h.Seq, func(r metaResult) {
		t.stop()
		fn(r)
	})
}

// reconcile runs every few ticks: the broker registers itself, and each
// partition this broker leads makes sure the metadata log names it leader
// with its current epoch and in-sync replicas.
func (b *Broker) reconcile() {
	if b.meta.lead == 0 {
		return
	}
	if !b.registered {
		b.registered = true
		self := b.self()
		b.proposeMeta(metaCmd{Register: &self}, 10_000, func(r metaResult) {
			if r.err != nil {
				b.registered = false
			}
		})
	}
	for _, id := range b.partIDs() {
		b.reportLeader(b.parts[id])
	}
}

// reportLeader makes sure the metadata log names p's replica here as
// leader with its current epoch and ISR, if it leads. It runs on the
// periodic reconcile and right after this replica wins an election, so
// clients see a new leader within a round trip rather than a reconcile
// period.
func (b *Broker) reportLeader(p *partition) {
	if !p.leader || b.meta.lead == 0 || p.reportPending || b.parts[p.group] != p {
		return
	}
	pm, ok := b.meta.partition(p.topic, p.index)
	if !ok {
		return
	}
	isr := p.isr()
	if pm.Leader == b.cfg.ID && pm.Epoch == int32(p.term) && slices.Equal(pm.ISR, isr) {
		return
	}
	p.reportPending = true
	b.proposeMeta(metaCmd{Leader: &leaderCmd{Group: p.group, Leader: b.cfg.ID, Epoch: int32(p.term), ISR: isr}}, 5_000, func(metaResult) {
		p.reportPending = false
	})
}

func (b *Broker) self() BrokerInfo {
	for _, bi := range b.cfg.Cluster {
		if bi.ID == b.cfg.ID {
			return bi
		}
	}
	return BrokerInfo{ID: b.cfg.ID}
}

func (m *metaSM) partition(topic string, index int32) (partMeta, bool) {
	t, ok := m.st.Topics[topic]
	if !ok || index < 0 || int(index) >= len(t.Partitions) {
		return partMeta{}, false
	}
	return t.Partitions[index], true
}
