package engine

import (
	"cmp"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DescribeLogDirs, versions 0-4.
//
// Behavior: this broker's one data directory (Config.LogDir) with the
// replicas it hosts of the topics asked (null: all), each with the bytes
// of its segments; OffsetLag 0 (a replica holds what it applied: every
// entry it applied is committed) and IsFuture false (no moves between
// directories). v4's TotalBytes and UsableBytes are -1 (unknown: the
// engine does not ask the operating system). Partitions asked that this
// broker does not host are left out, as Kafka does.

func init() { regKey(kmsg.DescribeLogDirs, 0, 4, (*Broker).handleDescribeLogDirs) }

func (b *Broker) handleDescribeLogDirs(token uint64, r *kmsg.DescribeLogDirsRequest) {
	resp := r.ResponseKind().(*kmsg.DescribeLogDirsResponse)
	if !b.authorizedCluster(opDescribe) {
		// As Kafka: v3+ says so; older versions answer no directories.
		if r.Version >= 3 {
			resp.ErrorCode = kerr.ClusterAuthorizationFailed.Code
		}
		b.respond(token, resp)
		return
	}
	dir := kmsg.NewDescribeLogDirsResponseDir()
	dir.Dir = cmp.Or(b.cfg.LogDir, "data")
	dir.TotalBytes, dir.UsableBytes = -1, -1
	want := func(topic string, part int32) bool {
		if r.Topics == nil {
			return true
		}
		for _, t := range r.Topics {
			if t.Topic == topic && slices.Contains(t.Partitions, part) {
				return true
			}
		}
		return false
	}
	byTopic := map[string]*kmsg.DescribeLogDirsResponseDirTopic{}
	for _, id := range b.partIDs() {
		p := b.parts[id]
		if p.log == nil || !want(p.topic, p.index) {
			continue
		}
		t := byTopic[p.topic]
		if t == nil {
			nt := kmsg.NewDescribeLogDirsResponseDirTopic()
			nt.Topic = p.topic
			t = &nt
			byTopic[p.topic] = t
		}
		sp := kmsg.NewDescribeLogDirsResponseDirTopicPartition()
		sp.Partition = p.index
		sp.Size = p.sizeBytes()
		t.Partitions = append(t.Partitions, sp)
	}
	names := make([]string, 0, len(byTopic))
	for n := range byTopic {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		t := byTopic[n]
		slices.SortFunc(t.Partitions, func(a, b kmsg.DescribeLogDirsResponseDirTopicPartition) int {
			return cmp.Compare(a.Partition, b.Partition)
		})
		dir.Topics = append(dir.Topics, *t)
	}
	resp.Dirs = append(resp.Dirs, dir)
	b.respond(token, resp)
}
