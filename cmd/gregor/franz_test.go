package main

// franz-go (kgo) against a 3-broker Gregor cluster: bulk produce and
// consume, and a partition leader killed mid-stream.

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// ackLog is what a producer was told, record by record.
type ackLog struct {
	mu      sync.Mutex
	byPart  map[int32]map[int64]string // partition -> offset -> value
	n       int
	errs    []error
	afterAt map[int32]int // acks per partition since mark()
	marked  bool
}

func newAckLog() *ackLog {
	return &ackLog{byPart: map[int32]map[int64]string{}, afterAt: map[int32]int{}}
}

func (a *ackLog) promise(t *testing.T, wg *sync.WaitGroup) func(*kgo.Record, error) {
	return func(r *kgo.Record, err error) {
		defer wg.Done()
		a.mu.Lock()
		defer a.mu.Unlock()
		if err != nil {
			a.errs = append(a.errs, fmt.Errorf("record %s: %w", r.Value, err))
			return
		}
		m := a.byPart[r.Partition]
		if m == nil {
			m = map[int64]string{}
			a.byPart[r.Partition] = m
		}
		if prev, ok := m[r.Offset]; ok {
			t.Errorf("partition %d offset %d acknowledged twice: %s and %s", r.Partition, r.Offset, prev, r.Value)
		}
		m[r.Offset] = string(r.Value)
		a.n++
		if a.marked {
			a.afterAt[r.Partition]++
		}
	}
}

func (a *ackLog) count() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.n
}

func (a *ackLog) mark() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.marked = true
}

// consumed is what a consumer saw, in the order it saw it per partition.
type consumed struct {
	mu     sync.Mutex
	byPart map[int32][]*kgo.Record
	n      int
}

// pollRoundMax bounds one poll of consumeUntil.
const pollRoundMax = 200 * time.Millisecond

// consumeUntil polls cl until done says it has enough, or ctx ends.
func (c *consumed) consumeUntil(ctx context.Context, t *testing.T, cl *kgo.Client, done func(n int) bool) {
	for {
		c.mu.Lock()
		n := c.n
		c.mu.Unlock()
		if done(n) {
			return
		}
		// Poll in short rounds: PollFetches blocks until records arrive, and
		// once the consumer has everything none will, so done must be asked
		// again even when nothing came (it depends on the producer too).
		pollCtx, cancel := context.WithTimeout(ctx, pollRoundMax)
		fs := cl.PollFetches(pollCtx)
		cancel()
		if ctx.Err() != nil {
			return
		}
		if pollCtx.Err() != nil && fs.NumRecords() == 0 {
			continue
		}
		fs.EachError(func(topic string, p int32, err error) { t.Logf("fetch %s-%d: %v", topic, p, err) })
		c.mu.Lock()
		fs.EachRecord(func(r *kgo.Record) {
			c.byPart[r.Partition] = append(c.byPart[r.Partition], r)
			c.n++
		})
		c.mu.Unlock()
	}
}

// checkDelivery checks that the consumed log holds exactly the
// acknowledged records: per partition in strictly increasing offsets, each
// acknowledged offset holding its value, no record twice, no record the
// producer was not told about, and every key on one partition.
func checkDelivery(t *testing.T, acks *ackLog, got *consumed, keyOf func(value string) string) {
	t.Helper()
	seen := map[string]int32{}
	keyPart := map[string]int32{}
	total := 0
	for p, recs := range got.byPart {
		want := acks.byPart[p]
		for i, r := range recs {
			if i > 0 && r.Offset <= recs[i-1].Offset {
				t.Fatalf("partition %d: offset %d after %d", p, r.Offset, recs[i-1].Offset)
			}
			v := string(r.Value)
			if w, ok := want[r.Offset]; !ok || w != v {
				t.Fatalf("partition %d offset %d: consumed %q, producer was told %q (acknowledged: %v)", p, r.Offset, v, w, ok)
			}
			if prev, dup := seen[v]; dup {
				t.Fatalf("record %q consumed twice (partitions %d and %d)", v, prev, p)
			}
			seen[v] = p
			if k := keyOf(v); string(r.Key) != k {
				t.Fatalf("record %q has key %q, want %q", v, r.Key, k)
			} else if kp, ok := keyPart[k]; ok && kp != p {
				t.Fatalf("key %q on partitions %d and %d", k, kp, p)
			} else {
				keyPart[k] = p
			}
		}
		total += len(recs)
	}
	for p, m := range acks.byPart {
		if len(got.byPart[p]) != len(m) {
			t.Errorf("partition %d: %d records acknowledged, %d consumed", p, len(m), len(got.byPart[p]))
		}
	}
	if total != acks.n {
		t.Errorf("%d records acknowledged, %d consumed", acks.n, total)
	}
}

func recordKey(i int) string { return "key-" + strconv.Itoa(i%1000) }
func keyOfValue(v string) string {
	i, _ := strconv.Atoi(v)
	return recordKey(i)
}

// TestFranzGoBulk produces 50,000 keyed records (acks=all, idempotent)
// into a 6-partition topic replicated on all three brokers and consumes
// them back.
func TestFranzGoBulk(t *testing.T) {
	const (
		topic      = "bulk"
		partitions = 6
		records    = 50_000
	)
	c := startLiveCluster(t)
	admin := c.client()
	start := time.Now()
	createTopic(t, admin, topic, partitions, 3)
	t.Logf("topic created and led after %v", time.Since(start))

	prod := c.client(kgo.DefaultProduceTopic(topic), kgo.RequiredAcks(kgo.AllISRAcks()))
	acks := newAckLog()
	var wg sync.WaitGroup
	ctx, cancel := context.WithTimeout(context.Background(), 2*testWaitMax)
	defer cancel()
	start = time.Now()
	for i := range records {
		wg.Add(1)
		prod.Produce(ctx, &kgo.Record{Key: []byte(recordKey(i)), Value: []byte(strconv.Itoa(i))}, acks.promise(t, &wg))
	}
	wg.Wait()
	produceTime := time.Since(start)
	if len(acks.errs) > 0 {
		t.Fatalf("%d produce errors, first: %v", len(acks.errs), acks.errs[0])
	}
	t.Logf("produced %d records in %v (%.0f records/s)", records, produceTime, records/produceTime.Seconds())

	start = time.Now()
	cons := c.client(kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	got := &consumed{byPart: map[int32][]*kgo.Record{}}
	got.consumeUntil(ctx, t, cons, func(n int) bool { return n >= records })
	t.Logf("consumed %d records in %v", got.n, time.Since(start))
	checkDelivery(t, acks, got, keyOfValue)
	var counts []int
	for p := range int32(partitions) {
		counts = append(counts, len(got.byPart[p]))
	}
	t.Logf("records per partition: %v", counts)
}

// TestFranzGoLeaderKilledMidStream stops the broker leading partition 0
// while a producer streams into the topic and a consumer reads it: every
// acknowledged record must be read back, and both clients carry on with
// the new leader.
func TestFranzGoLeaderKilledMidStream(t *testing.T) {
	const (
		topic      = "failover"
		partitions = 3
		records    = 6000
		killAt     = records / 3 // acknowledged records before the kill
		inFlight   = 500         // records produced ahead of the acks
	)
	c := startLiveCluster(t)
	admin := c.client()
	createTopic(t, admin, topic, partitions, 3)
	before := leaders(t, admin, topic, partitions)
	victim := before[0].leader

	ctx, cancel := context.WithTimeout(context.Background(), 2*testWaitMax)
	defer cancel()

	// The consumer starts first and runs through the failover.
	cons := c.client(kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	got := &consumed{byPart: map[int32][]*kgo.Record{}}
	producing := make(chan struct{})
	consDone := make(chan struct{})
	acks := newAckLog()
	go func() {
		defer close(consDone)
		got.consumeUntil(ctx, t, cons, func(n int) bool {
			select {
			case <-producing:
				return n >= acks.count()
			default:
				return false
			}
		})
	}()

	prod := c.client(kgo.DefaultProduceTopic(topic), kgo.RequiredAcks(kgo.AllISRAcks()))
	var wg sync.WaitGroup
	killed := false
	for i := range records {
		for i-acks.count() > inFlight && ctx.Err() == nil {
			time.Sleep(time.Millisecond)
		}
		if !killed && acks.count() >= killAt {
			t.Logf("stopping broker %d, leader of partition 0 (epoch %d), after %d acknowledgements",
				victim, before[0].epoch, acks.count())
			acks.mark()
			c.stop(victim)
			killed = true
		}
		wg.Add(1)
		prod.Produce(ctx, &kgo.Record{Key: []byte(recordKey(i)), Value: []byte(strconv.Itoa(i))}, acks.promise(t, &wg))
	}
	wg.Wait()
	close(producing)
	if len(acks.errs) > 0 {
		t.Fatalf("%d produce errors, first: %v", len(acks.errs), acks.errs[0])
	}
	<-consDone
	if ctx.Err() != nil {
		t.Fatalf("consumer read %d of %d acknowledged records before giving up", got.n, acks.n)
	}
	after := leaders(t, admin, topic, partitions)
	t.Logf("partition 0: leader %d epoch %d -> leader %d epoch %d; acks per partition after the kill: %v",
		before[0].leader, before[0].epoch, after[0].leader, after[0].epoch, acks.afterAt)
	if after[0].leader == victim || after[0].epoch <= before[0].epoch {
		t.Errorf("partition 0 still led by broker %d at epoch %d", after[0].leader, after[0].epoch)
	}
	if acks.afterAt[0] == 0 {
		t.Errorf("no record acknowledged on partition 0 after its leader stopped")
	}
	checkDelivery(t, acks, got, keyOfValue)
	// The records of partition 0 after the kill were read from the new leader.
	offs := make([]int64, 0, len(got.byPart[0]))
	for _, r := range got.byPart[0] {
		offs = append(offs, r.Offset)
	}
	if !slices.IsSorted(offs) {
		t.Errorf("partition 0 offsets out of order")
	}
}
