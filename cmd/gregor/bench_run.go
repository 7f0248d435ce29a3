package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// benchResult is what one produce, consume or e2e run measured; --json
// prints it as is.
type benchResult struct {
	Mode          string       `json:"mode"`
	Topic         string       `json:"topic"`
	Partitions    int          `json:"partitions"`
	RecordSize    int          `json:"record_size"`
	Producers     int          `json:"producers,omitempty"`
	Acks          string       `json:"acks,omitempty"`
	Rate          float64      `json:"rate_limit,omitempty"`
	Records       int64        `json:"records"`
	Bytes         int64        `json:"bytes"`
	Seconds       float64      `json:"seconds"`
	RecordsPerSec float64      `json:"records_per_sec"`
	MBPerSec      float64      `json:"mb_per_sec"`
	LatencyKind   string       `json:"latency_kind,omitempty"`
	Latency       benchLatency `json:"latency"`
	Errors        uint64       `json:"errors"`
	FirstError    string       `json:"first_error,omitempty"`
	Acked         int64        `json:"-"` // produce: every record acknowledged, warm-up included (the suite's CPU per record)
}

// benchProgress is one line of live progress.
type benchProgress struct {
	Elapsed       time.Duration
	RecordsPerSec float64 // over the last interval
	MBPerSec      float64
	P99ms         float64 // since the measurement began
}

// benchCodecs turns --compression into kgo's codec preference.
func benchCodecs(s string) ([]kgo.CompressionCodec, error) {
	switch s {
	case "":
		return nil, nil
	case "none":
		return []kgo.CompressionCodec{kgo.NoCompression()}, nil
	case "gzip":
		return []kgo.CompressionCodec{kgo.GzipCompression()}, nil
	case "snappy":
		return []kgo.CompressionCodec{kgo.SnappyCompression()}, nil
	case "lz4":
		return []kgo.CompressionCodec{kgo.Lz4Compression()}, nil
	case "zstd":
		return []kgo.CompressionCodec{kgo.ZstdCompression()}, nil
	}
	return nil, fmt.Errorf("--compression %q: want none, gzip, snappy, lz4 or zstd", s)
}

// benchProducerOpts are the kgo options every producer client gets:
// franz-go's defaults except what a flag sets.
func benchProducerOpts(o benchOptions) []kgo.Opt {
	opts := []kgo.Opt{kgo.SeedBrokers(o.brokers...)}
	switch o.acks {
	case "leader":
		opts = append(opts, kgo.RequiredAcks(kgo.LeaderAck()))
	case "none":
		opts = append(opts, kgo.RequiredAcks(kgo.NoAck()))
	default:
		opts = append(opts, kgo.RequiredAcks(kgo.AllISRAcks()))
	}
	if !o.idempotent {
		opts = append(opts, kgo.DisableIdempotentWrite())
	}
	if o.linger >= 0 {
		opts = append(opts, kgo.ProducerLinger(o.linger))
	}
	if codecs, _ := benchCodecs(o.compression); codecs != nil {
		opts = append(opts, kgo.ProducerBatchCompression(codecs...))
	}
	return opts
}

// benchRun runs one measurement. progress, if not nil, is called about
// once a second. A run that measured something returns its result even
// when it also returns an error (some records failed).
func benchRun(ctx context.Context, o benchOptions, progress func(benchProgress)) (benchResult, error) {
	admin, err := kgo.NewClient(kgo.SeedBrokers(o.brokers...))
	if err != nil {
		return benchResult{}, fmt.Errorf("bench: client: %w", err)
	}
	defer admin.Close()
	parts, err := benchEnsureTopic(ctx, admin, o)
	if err != nil {
		return benchResult{}, err
	}
	res := benchResult{Mode: o.mode, Topic: o.topic, Partitions: parts, RecordSize: o.recordSize}
	switch o.mode {
	case "produce":
		err = benchProduce(ctx, o, &res, progress, nil)
	case "consume":
		err = benchConsume(ctx, o, admin, parts, &res, progress)
	case "e2e":
		err = benchE2E(ctx, o, admin, parts, &res, progress)
	default:
		err = fmt.Errorf("bench: unknown mode %q", o.mode)
	}
	return res, err
}

// benchEnsureTopic creates the topic if it is missing and waits until every
// partition has a leader. It returns the topic's partition count.
func benchEnsureTopic(ctx context.Context, cl *kgo.Client, o benchOptions) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, benchTopicReadyMax)
	defer cancel()
	var last error
	created := o.noCreate
	for {
		if !created {
			req := kmsg.NewPtrCreateTopicsRequest()
			rt := kmsg.NewCreateTopicsRequestTopic()
			rt.Topic, rt.NumPartitions, rt.ReplicationFactor = o.topic, int32(o.partitions), int16(o.rf)
			req.Topics = append(req.Topics, rt)
			req.TimeoutMillis = int32(benchTopicReadyMax / time.Millisecond)
			resp, err := req.RequestWith(ctx, cl)
			switch {
			case err != nil:
				last = err
			case len(resp.Topics) != 1:
				last = fmt.Errorf("bench: CreateTopics answered %d topics", len(resp.Topics))
			default:
				err := kerr.ErrorForCode(resp.Topics[0].ErrorCode)
				if err == nil || errors.Is(err, kerr.TopicAlreadyExists) {
					created = true
				} else if !kerr.IsRetriable(err) {
					return 0, fmt.Errorf("bench: create topic %s: %w", o.topic, err)
				}
				last = err
			}
		}
		if created {
			n, err := benchTopicLeaders(ctx, cl, o.topic)
			if err == nil {
				return n, nil
			}
			last = err
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("bench: topic %s not ready: %v (last: %v)", o.topic, ctx.Err(), last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// benchTopicLeaders returns the topic's partition count once every
// partition has a leader.
func benchTopicLeaders(ctx context.Context, cl *kgo.Client, topic string) (int, error) {
	req := kmsg.NewPtrMetadataRequest()
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr(topic)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return 0, err
	}
	if len(resp.Topics) != 1 {
		return 0, fmt.Errorf("bench: metadata answered %d topics", len(resp.Topics))
	}
	t := resp.Topics[0]
	if err := kerr.ErrorForCode(t.ErrorCode); err != nil {
		return 0, fmt.Errorf("bench: metadata for %s: %w", topic, err)
	}
	if len(t.Partitions) == 0 {
		return 0, fmt.Errorf("bench: topic %s has no partitions yet", topic)
	}
	for _, p := range t.Partitions {
		if p.ErrorCode != 0 || p.Leader < 0 {
			return 0, fmt.Errorf("bench: partition %d of %s has no leader yet", p.Partition, topic)
		}
	}
	return len(t.Partitions), nil
}

// benchListOffsets returns every partition's offset at ts (-1: the end,
// -2: the log start), retrying while leaders move.
func benchListOffsets(ctx context.Context, cl *kgo.Client, topic string, parts int, ts int64) (map[int32]int64, error) {
	ctx, cancel := context.WithTimeout(ctx, benchTopicReadyMax)
	defer cancel()
	var last error
	for {
		req := kmsg.NewPtrListOffsetsRequest()
		req.ReplicaID = -1
		rt := kmsg.NewListOffsetsRequestTopic()
		rt.Topic = topic
		for p := range int32(parts) {
			rp := kmsg.NewListOffsetsRequestTopicPartition()
			rp.Partition, rp.Timestamp, rp.CurrentLeaderEpoch = p, ts, -1
			rt.Partitions = append(rt.Partitions, rp)
		}
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(ctx, cl)
		if err == nil {
			out := map[int32]int64{}
			for _, t := range resp.Topics {
				for _, p := range t.Partitions {
					if e := kerr.ErrorForCode(p.ErrorCode); e != nil {
						err = fmt.Errorf("partition %d: %w", p.Partition, e)
						break
					}
					out[p.Partition] = p.Offset
				}
			}
			if err == nil && len(out) == parts {
				return out, nil
			}
			if err == nil {
				err = fmt.Errorf("answered %d of %d partitions", len(out), parts)
			}
		}
		last = err
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("bench: list offsets of %s: %v", topic, last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// benchCounter counts measured records and keeps the time of the last one,
// as an offset from the run's start (monotonic).
type benchCounter struct {
	records atomic.Int64
	bytes   atomic.Int64
	lastNs  atomic.Int64
	errs    atomic.Uint64
	mu      sync.Mutex
	first   error
}

func (c *benchCounter) add(n, bytes int, at time.Duration) {
	c.records.Add(int64(n))
	c.bytes.Add(int64(bytes))
	for {
		l := c.lastNs.Load()
		if int64(at) <= l || c.lastNs.CompareAndSwap(l, int64(at)) {
			return
		}
	}
}

func (c *benchCounter) fail(err error) {
	c.errs.Add(1)
	c.mu.Lock()
	if c.first == nil {
		c.first = err
	}
	c.mu.Unlock()
}

func (c *benchCounter) firstErr() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.first
}

// fill writes the counters into res; measured from warmup to the last
// record.
func (c *benchCounter) fill(res *benchResult, warmup time.Duration, h *benchHist, kind string) error {
	res.Records, res.Bytes = c.records.Load(), c.bytes.Load()
	if secs := (time.Duration(c.lastNs.Load()) - warmup).Seconds(); res.Records > 0 && secs > 0 {
		res.Seconds = secs
		res.RecordsPerSec = float64(res.Records) / secs
		res.MBPerSec = float64(res.Bytes) / secs / 1e6
	}
	if h != nil {
		res.LatencyKind = kind
		res.Latency = h.Summary()
	}
	res.Errors = c.errs.Load()
	if err := c.firstErr(); err != nil {
		res.FirstError = err.Error()
		return fmt.Errorf("bench: %d records failed, first: %w", res.Errors, err)
	}
	return nil
}

// benchReport calls progress once per interval until stop is closed.
func benchReport(start time.Time, c *benchCounter, h *benchHist, progress func(benchProgress), stop <-chan struct{}) {
	if progress == nil {
		return
	}
	t := time.NewTicker(benchProgressInterval)
	defer t.Stop()
	var lastRecs, lastBytes int64
	last := time.Now()
	for {
		select {
		case <-stop:
			return
		case now := <-t.C:
			recs, bytes := c.records.Load(), c.bytes.Load()
			dt := now.Sub(last).Seconds()
			progress(benchProgress{
				Elapsed:       now.Sub(start),
				RecordsPerSec: float64(recs-lastRecs) / dt,
				MBPerSec:      float64(bytes-lastBytes) / dt / 1e6,
				P99ms:         benchMillis(h.Quantile(0.99)),
			})
			lastRecs, lastBytes, last = recs, bytes, now
		}
	}
}

// benchValue is the value every record carries: pseudo-random bytes, so
// compression gains nothing it would not in practice.
func benchValue(size int) []byte {
	v := make([]byte, size)
	r := rand.New(rand.NewPCG(uint64(size), 1))
	for i := range v {
		v[i] = byte(r.Uint32())
	}
	return v
}

// benchPaceStep is how far ahead of its schedule a rate-limited producer
// may get before it sleeps: the largest burst is one step's records.
const benchPaceStep = time.Millisecond

// benchSent carries a sampled record's send time to its promise. kgo
// truncates Record.Timestamp to milliseconds (dropping the monotonic
// clock), so the time travels in the record's Context instead, which kgo
// does not use when producing.
type benchSent struct {
	context.Context
	at time.Time
}

// benchLatencySampleEvery: the producer reads the clock for one record in
// this many (its latency is recorded; the others are only counted).
// time.Now was 30% of the whole process's CPU in a profile on this
// machine's VM when read for every record.
const benchLatencySampleEvery = 16

// benchPaceRateMin is the per-producer rate below which every record is
// timed, so sampling never makes a rate-limited producer bursty.
const benchPaceRateMin = 16000

// benchProduce sends records from o.producers clients until the duration
// or the record count is reached, then waits for every acknowledgement.
// With e2e, each value starts with its send time (so every record reads
// the clock) and acked receives the number of records acknowledged
// (warm-up included).
func benchProduce(ctx context.Context, o benchOptions, res *benchResult, progress func(benchProgress), acked *atomic.Int64) error {
	res.Producers, res.Acks, res.Rate = o.producers, o.acks, o.rate
	clients := make([]*kgo.Client, 0, o.producers)
	defer func() {
		for _, cl := range clients {
			cl.Close()
		}
	}()
	for range o.producers {
		cl, err := kgo.NewClient(benchProducerOpts(o)...)
		if err != nil {
			return fmt.Errorf("bench: producer client: %w", err)
		}
		clients = append(clients, cl)
	}
	value := benchValue(o.recordSize)
	var (
		c       benchCounter
		h       benchHist
		claimed atomic.Int64
		stopped atomic.Bool
		all     atomic.Int64 // acknowledged, warm-up included
	)
	// Records sent in the warm-up and unsampled measured records share
	// these two markers instead of a time each.
	warmupCtx := &benchSent{Context: ctx}
	measuredCtx := &benchSent{Context: ctx}
	start := time.Now()
	measureFrom := start.Add(o.warmup)
	promise := func(r *kgo.Record, err error) {
		if err != nil {
			c.fail(err)
			return
		}
		all.Add(1)
		if acked != nil {
			acked.Add(1)
		}
		switch sent := r.Context.(*benchSent); sent {
		case warmupCtx:
		case measuredCtx:
			c.add(1, len(r.Value), 0)
		default:
			now := time.Now()
			h.Record(now.Sub(sent.at))
			c.add(1, len(r.Value), now.Sub(start))
		}
	}
	var timer *time.Timer
	if o.duration > 0 {
		timer = time.AfterFunc(o.warmup+o.duration, func() { stopped.Store(true) })
		defer timer.Stop()
	}
	stopReport := make(chan struct{})
	go benchReport(measureFrom, &c, &h, progress, stopReport)
	defer close(stopReport)

	perRate := o.rate / float64(o.producers)
	every := int64(benchLatencySampleEvery)
	if o.mode == "e2e" || (perRate > 0 && perRate < benchPaceRateMin) {
		every = 1
	}
	var wg sync.WaitGroup
	for _, cl := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var (
				n         int64
				measuring = o.warmup == 0
			)
			for !stopped.Load() && ctx.Err() == nil {
				if measuring && o.records > 0 && claimed.Add(1) > o.records {
					break
				}
				r := &kgo.Record{Topic: o.topic, Value: value}
				if n%every == 0 {
					now := time.Now()
					if perRate > 0 {
						due := start.Add(time.Duration(float64(n) / perRate * float64(time.Second)))
						// Sleep only when a whole pacing step ahead: a
						// sleep costs tens of microseconds, more than
						// the gap between two records at high rates.
						if d := due.Sub(now); d > benchPaceStep {
							time.Sleep(d)
							now = time.Now()
						}
					}
					if !measuring && !now.Before(measureFrom) {
						measuring = true
					}
					if o.mode == "e2e" {
						v := make([]byte, len(value))
						copy(v, value)
						binary.BigEndian.PutUint64(v, uint64(now.UnixNano()))
						r.Value = v
					}
					if measuring {
						r.Context = &benchSent{Context: ctx, at: now}
					} else {
						r.Context = warmupCtx
					}
				} else if measuring {
					r.Context = measuredCtx
				} else {
					r.Context = warmupCtx
				}
				n++
				cl.Produce(ctx, r, promise)
			}
		}()
	}
	wg.Wait()
	stopped.Store(true)
	fctx, cancel := context.WithTimeout(ctx, benchFlushMax)
	defer cancel()
	var flushErr error
	for _, cl := range clients {
		if err := cl.Flush(fctx); err != nil && flushErr == nil {
			flushErr = fmt.Errorf("bench: flush: %w", err)
		}
	}
	// Every promise has run once Flush returns: the run ends here.
	c.add(0, 0, time.Since(start))
	res.Acked = all.Load()
	err := c.fill(res, o.warmup, &h, "send to acknowledgement")
	return errors.Join(err, flushErr)
}

// benchConsume reads the topic from its log start until the end offsets
// it saw at the beginning, --records, or --duration, whichever comes first.
func benchConsume(ctx context.Context, o benchOptions, admin *kgo.Client, parts int, res *benchResult, progress func(benchProgress)) error {
	starts, err := benchListOffsets(ctx, admin, o.topic, parts, -2)
	if err != nil {
		return err
	}
	ends, err := benchListOffsets(ctx, admin, o.topic, parts, -1)
	if err != nil {
		return err
	}
	var want int64
	offsets := map[int32]kgo.Offset{}
	for p, end := range ends {
		want += end - starts[p]
		offsets[p] = kgo.NewOffset().At(starts[p])
	}
	if o.records > 0 {
		want = min(want, o.records)
	}
	if want == 0 {
		return fmt.Errorf("bench: topic %s is empty: produce to it first", o.topic)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(o.brokers...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{o.topic: offsets}))
	if err != nil {
		return fmt.Errorf("bench: consumer client: %w", err)
	}
	defer cl.Close()
	if o.duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.duration)
		defer cancel()
	}
	var c benchCounter
	var h benchHist
	stopReport := make(chan struct{})
	// The clock starts at the first records, so client start-up and the
	// first metadata round are not counted; see docs/performance.md. The
	// records of that first poll arrived before the clock started, so the
	// rate leaves them out (they are in res.Records): a broker that
	// answers a first fetch with much of a small topic would otherwise
	// show a rate limited only by its topic's size.
	var start time.Time
	var firstN, firstBytes int
	defer close(stopReport)
	var got int64
	for got < want && ctx.Err() == nil {
		fs := cl.PollFetches(ctx)
		fs.EachError(func(t string, p int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
				c.fail(fmt.Errorf("fetch %s/%d: %w", t, p, err))
			}
		})
		n, bytes := 0, 0
		fs.EachRecord(func(r *kgo.Record) {
			n++
			bytes += len(r.Value)
		})
		if n == 0 {
			continue
		}
		now := time.Now()
		got += int64(n)
		if start.IsZero() {
			start = now
			firstN, firstBytes = n, bytes
			go benchReport(start, &c, &h, progress, stopReport)
			continue
		}
		c.add(n, bytes, now.Sub(start))
	}
	err = c.fill(res, 0, nil, "")
	res.Records += int64(firstN)
	res.Bytes += int64(firstBytes)
	return err
}

// benchE2E produces and consumes at once: the consumer starts at the end
// offsets seen before the producers begin, and each latency is the time
// from the send written into the record to its receipt.
func benchE2E(ctx context.Context, o benchOptions, admin *kgo.Client, parts int, res *benchResult, progress func(benchProgress)) error {
	ends, err := benchListOffsets(ctx, admin, o.topic, parts, -1)
	if err != nil {
		return err
	}
	offsets := map[int32]kgo.Offset{}
	for p, end := range ends {
		offsets[p] = kgo.NewOffset().At(end)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(o.brokers...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{o.topic: offsets}))
	if err != nil {
		return fmt.Errorf("bench: consumer client: %w", err)
	}
	defer cl.Close()

	var (
		c        benchCounter
		h        benchHist
		received atomic.Int64 // warm-up included
		acked    atomic.Int64
		done     = make(chan struct{})
	)
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	start := time.Now()
	measureFrom := start.Add(o.warmup).UnixNano()
	stopReport := make(chan struct{})
	defer close(stopReport)
	go benchReport(start.Add(o.warmup), &c, &h, progress, stopReport)
	go func() {
		defer close(done)
		for cctx.Err() == nil {
			fs := cl.PollFetches(cctx)
			fs.EachError(func(t string, p int32, err error) {
				if !errors.Is(err, context.Canceled) {
					c.fail(fmt.Errorf("fetch %s/%d: %w", t, p, err))
				}
			})
			now := time.Now()
			n, bytes := 0, 0
			fs.EachRecord(func(r *kgo.Record) {
				received.Add(1)
				if len(r.Value) < benchE2EHeaderBytes {
					return
				}
				sent := int64(binary.BigEndian.Uint64(r.Value))
				if sent < measureFrom {
					return
				}
				h.Record(time.Duration(now.UnixNano() - sent))
				n++
				bytes += len(r.Value)
			})
			if n > 0 {
				c.add(n, bytes, now.Sub(start))
			}
		}
	}()
	var pres benchResult
	perr := benchProduce(ctx, o, &pres, nil, &acked)
	res.Producers, res.Acks, res.Rate = pres.Producers, pres.Acks, pres.Rate
	drain := time.Now().Add(benchDrainMax)
	for received.Load() < acked.Load() && time.Now().Before(drain) && ctx.Err() == nil {
		time.Sleep(10 * time.Millisecond)
	}
	if n := acked.Load() - received.Load(); n > 0 {
		c.fail(fmt.Errorf("bench: %d acknowledged records not consumed within %v", n, benchDrainMax))
	}
	cancel()
	<-done
	return errors.Join(c.fill(res, o.warmup, &h, "send to receipt"), perr)
}
