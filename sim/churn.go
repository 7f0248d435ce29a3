package sim

import (
	"strconv"

	"github.com/gregor-streaming/gregor/engine/batch"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// The churn client runs the metadata paths under faults: it creates a
// topic of its own ("x1", "x2", ...: names are never reused, so the state
// checker's canonical log of a partition never spans two topics), waits
// for its partitions to have leaders, writes a few batches, and deletes
// it two times in three. Its topics are never the tracked ones; its
// writes are not part of the linearizability history (the state checker
// still holds every replica of them to one canonical log while they
// exist).

// Churn limits.
const (
	churnPartitionsMax = 3
	churnWritesMax     = 6
	churnLeaderPolls   = 20 // metadata polls before giving up on leaders
	churnDeleteTries   = 5
)

type churnStep uint8

const (
	churnCreate churnStep = iota
	churnLeaders
	churnWrite
	churnDelete
)

// churnState is where the churn client is in its cycle.
type churnState struct {
	step    churnStep
	n       int // topics created so far
	topic   string
	parts   int
	polls   int
	writes  int // produces left for the current topic
	deletes int // delete attempts for the current topic
	values  int
}

func (c *client) nextChurn() {
	if c.stopping {
		c.wait = waitNothing
		return
	}
	st := &c.churn
	switch st.step {
	case churnCreate:
		st.n++
		st.topic = "x" + strconv.Itoa(st.n)
		st.parts = 1 + c.w.rng.IntN(churnPartitionsMax)
		st.polls, st.deletes = 0, 0
		st.writes = 1 + c.w.rng.IntN(churnWritesMax)
		c.w.churned[st.topic] = true
		req := kmsg.NewPtrCreateTopicsRequest()
		req.SetVersion(7)
		req.TimeoutMillis = 5_000
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic = st.topic
		rt.NumPartitions = int32(st.parts)
		rt.ReplicationFactor = int16(min(replicationFactor, len(c.w.nodes)))
		req.Topics = append(req.Topics, rt)
		// Whatever comes back (or nothing), the leaders tell whether the
		// topic exists.
		st.step = churnLeaders
		c.w.churnOps++
		c.w.tracef("churn c%d create %s partitions %d", c.idx, st.topic, st.parts)
		c.request(c.randomBroker(), req, waitCreate)
	case churnLeaders:
		for p := range st.parts {
			if _, ok := c.leaders[tpKey{st.topic, int32(p)}]; !ok {
				st.polls++
				if st.polls > churnLeaderPolls {
					st.step = churnDelete
					c.think()
					return
				}
				c.haveMeta = false
				c.backoff(backoffMillis * 2)
				return
			}
		}
		st.step = churnWrite
		c.nextChurn()
	case churnWrite:
		if st.writes == 0 {
			if c.w.rng.IntN(3) == 0 {
				c.w.tracef("churn c%d keeps %s", c.idx, st.topic)
				st.step = churnCreate
				c.backoff(c.w.expDelay(c.w.opts.ChurnEveryMillis))
				return
			}
			st.step = churnDelete
			c.nextChurn()
			return
		}
		st.writes--
		tp := tpKey{st.topic, int32(c.w.rng.IntN(st.parts))}
		to := c.leaderOf(tp)
		if to == 0 {
			return
		}
		n := 1 + c.w.rng.IntN(c.w.opts.ValuesPerProduceMax)
		recs := make([]batch.Record, n)
		for i := range recs {
			st.values++
			recs[i] = batch.Record{Value: []byte(st.topic + "." + strconv.Itoa(st.values))}
		}
		req := kmsg.NewPtrProduceRequest()
		req.SetVersion(9)
		req.Acks = -1
		req.TimeoutMillis = produceTimeoutMs
		addProduce(req, tp, batch.BuildOptions{ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1,
			FirstTimestamp: c.w.now + epochMillis}, recs)
		c.w.churnOps++
		c.request(to, req, waitProduce)
	case churnDelete:
		if st.deletes >= churnDeleteTries {
			c.w.tracef("churn c%d gives up deleting %s", c.idx, st.topic)
			st.step = churnCreate
			c.backoff(c.w.expDelay(c.w.opts.ChurnEveryMillis))
			return
		}
		st.deletes++
		req := kmsg.NewPtrDeleteTopicsRequest()
		req.SetVersion(6)
		req.TimeoutMillis = 5_000
		rt := kmsg.NewDeleteTopicsRequestTopic()
		name := st.topic
		rt.Topic = &name
		req.Topics = append(req.Topics, rt)
		c.w.churnOps++
		c.w.tracef("churn c%d delete %s", c.idx, st.topic)
		c.request(c.randomBroker(), req, waitDelete)
	}
}

func (c *client) onChurnResponse(resp kmsg.Response) {
	st := &c.churn
	switch r := resp.(type) {
	case *kmsg.MetadataResponse:
		c.onMetadata(r)
	case *kmsg.CreateTopicsResponse:
		c.haveMeta = false
		c.backoff(backoffMillis * 2)
	case *kmsg.ProduceResponse:
		if code := r.Topics[0].Partitions[0].ErrorCode; code != 0 {
			c.haveMeta = false
			c.backoff(backoffMillis)
			return
		}
		c.think()
	case *kmsg.DeleteTopicsResponse:
		code := r.Topics[0].ErrorCode
		if code == 0 || code == kerr.UnknownTopicOrPartition.Code {
			c.w.tracef("churn c%d deleted %s", c.idx, st.topic)
			st.step = churnCreate
			c.backoff(c.w.expDelay(c.w.opts.ChurnEveryMillis))
			return
		}
		c.backoff(backoffMillis)
	default:
		c.think()
	}
}
