package sim

import (
	"github.com/gregor-streaming/gregor/engine/batch"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// topicCreator is a workload's admin client at setup: it creates the
// workload's topics, then watches the metadata until every partition has
// a leader (done). The transactional and lifecycle workloads each have
// one; what differs is passed in.
type topicCreator struct {
	c    *client
	done bool
	// metadata asks for the workload's topics; onMetadata takes the
	// answer into c.leaders.
	metadata   func(c *client)
	onMetadata func(c *client, r *kmsg.MetadataResponse)
	// partitions is how many partitions have to have a leader; topics
	// the CreateTopics entries; ready the trace line once they do.
	partitions int
	topics     func() []kmsg.CreateTopicsRequestTopic
	ready      string
	// created, if set, sees each CreateTopics answer.
	created func(r *kmsg.CreateTopicsResponse)
}

func (a *topicCreator) next() {
	c := a.c
	if c.w.stopped || a.done {
		return
	}
	if !c.haveMeta {
		a.metadata(c)
		return
	}
	if len(c.leaders) == a.partitions {
		a.done = true
		c.w.tracef("%s", a.ready)
		return
	}
	req := kmsg.NewPtrCreateTopicsRequest()
	req.SetVersion(7)
	req.TimeoutMillis = 5_000
	req.Topics = a.topics()
	c.request(c.randomBroker(), req, waitCreate)
}

func (a *topicCreator) onResponse(tok uint64, resp kmsg.Response) {
	if !txnAccept(a.c, tok) {
		return
	}
	a.c.wait = waitNothing
	switch r := resp.(type) {
	case *kmsg.MetadataResponse:
		a.onMetadata(a.c, r)
		a.next()
	case *kmsg.CreateTopicsResponse:
		if a.created != nil {
			a.created(r)
		}
		// Whatever the answer, look at the metadata again after a pause.
		a.c.haveMeta = false
		a.c.backoff(backoffMillis * 3)
	}
}

func (a *topicCreator) onTimer(gen uint64) {
	if ok, _ := txnTimer(a.c, gen); ok {
		a.next()
	}
}

// addProduce adds one partition's records, built with opts, to req.
func addProduce(req *kmsg.ProduceRequest, tp tpKey, opts batch.BuildOptions, recs []batch.Record) {
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = tp.topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Partition = tp.part
	rp.Records = batch.Build(opts, recs)
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
}

// valueRecords are records with values and nothing else.
func valueRecords(values []string) []batch.Record {
	recs := make([]batch.Record, len(values))
	for i, v := range values {
		recs[i] = batch.Record{Value: []byte(v)}
	}
	return recs
}
