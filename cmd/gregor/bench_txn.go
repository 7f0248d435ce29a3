package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

const benchTxnUsage = `usage: gregor bench txn --brokers host:port[,...] [flags]

Transactions. Each of --producers clients (one kgo.Client each, with the
transactional ID gregor-bench-TOPIC-P, franz-go's defaults otherwise)
loops: BeginTransaction, produce --records-per-txn (N) records, Flush,
EndTransaction(TryCommit). Record i of a producer's transaction k goes to
partition (k*N + i + P) mod partitions (kgo's ManualPartitioner), so a
transaction of N records spreads over min(N, partitions) partitions and
consecutive transactions of one record go round the partitions. Each value
starts with the producer's index P (4 bytes, big-endian) and the
transaction's sequence number k (8 bytes). At the same time one
read_committed consumer (kgo.FetchIsolationLevel(kgo.ReadCommitted()),
franz-go's fetch defaults) reads every partition from the end offsets seen
before the producers begin.

Measured, for the committed transactions whose EndTransaction call began
after --warmup (a producer's first transaction never counts: it includes
InitProducerID and the coordinator lookup, and franz-go uses transactions
v2 only from its second one):
  transactions/s, records/s    those transactions (and their records), per
                               second from the end of the warm-up to the
                               last EndTransaction return
  produce                      from BeginTransaction to Flush's return (all
                               N records acknowledged)
  commit                       how long the EndTransaction call took
  visible from EndTxn start    from the instant before EndTransaction is
                               called to the instant PollFetches hands the
                               consumer the transaction's first record
  visible from EndTxn return   from EndTransaction's return to that same
                               instant; a record handed over before the
                               return counts as 0 and is counted apart
                               (visible before return)
  all visible from EndTxn start  the same, to the transaction's last record
Both instants are read from this process's monotonic clock: run the bench
here, not against a clock elsewhere. The run ends when every measured
transaction is fully visible (or after 15 s, an error).

`

// benchTxnHeaderBytes: producer index (4 bytes) and transaction sequence
// number (8 bytes) at the start of every value.
const benchTxnHeaderBytes = 12

// benchTxnWarmupDefault: the first transactions of a fresh transactional
// ID find the coordinator and may create __transaction_state.
const benchTxnWarmupDefault = time.Second

// benchTxnOptions are the flags of `gregor bench txn`.
type benchTxnOptions struct {
	brokers       []string
	topic         string
	recordsPerTxn int
	recordSize    int
	partitions    int
	rf            int
	producers     int
	duration      time.Duration
	warmup        time.Duration
	json          bool
	noCreate      bool
}

func parseBenchTxn(args []string, stderr io.Writer) (benchTxnOptions, error) {
	var o benchTxnOptions
	fs := newFlagSet("gregor bench txn", benchTxnUsage, stderr)
	brokers := benchBrokersFlag(fs)
	fs.StringVar(&o.topic, "topic", benchTopicDefault+"-txn", "topic to use (created if missing)")
	fs.IntVar(&o.recordsPerTxn, "records-per-txn", 10, "records in each transaction")
	fs.IntVar(&o.recordSize, "record-size", benchRecordSizeDefault, fmt.Sprintf("value bytes per record (at least %d)", benchTxnHeaderBytes))
	fs.IntVar(&o.partitions, "partitions", benchPartitionsDefault, "partitions when creating the topic")
	fs.IntVar(&o.rf, "replication-factor", benchReplicationDefault, "replication factor when creating the topic")
	fs.IntVar(&o.producers, "producers", 1, "number of transactional producer clients")
	fs.DurationVar(&o.duration, "duration", benchDurationDefault, "how long to measure")
	fs.DurationVar(&o.warmup, "warmup", benchTxnWarmupDefault, "run transactions for this long before measuring")
	fs.BoolVar(&o.json, "json", false, "print the result as one JSON object")
	fs.BoolVar(&o.noCreate, "no-create", false, "do not create the topic")
	if err := parseFlagsOnly(fs, args); err != nil {
		return o, err
	}
	o.brokers = brokers()
	return o, o.validate()
}

func (o *benchTxnOptions) validate() error {
	switch {
	case len(o.brokers) == 0:
		return errors.New("--brokers is empty")
	case o.topic == "":
		return errors.New("--topic is empty")
	case o.recordsPerTxn < 1:
		return fmt.Errorf("--records-per-txn %d: want at least 1", o.recordsPerTxn)
	case o.recordSize < benchTxnHeaderBytes || o.recordSize > benchRecordSizeMax:
		return fmt.Errorf("--record-size %d: want %d (room for producer and transaction number) to %d", o.recordSize, benchTxnHeaderBytes, benchRecordSizeMax)
	case o.partitions < 1:
		return fmt.Errorf("--partitions %d: want at least 1", o.partitions)
	case o.rf < 1 && o.rf != -1:
		return fmt.Errorf("--replication-factor %d: want at least 1 (or -1, the broker's default)", o.rf)
	case o.producers < 1 || o.producers > benchProducersMax:
		return fmt.Errorf("--producers %d: want 1 to %d", o.producers, benchProducersMax)
	case o.duration <= 0:
		return errors.New("--duration must be positive")
	case o.warmup < 0:
		return errors.New("--warmup must not be negative")
	}
	return nil
}

// benchTxnResult is what one `bench txn` run measured; --json prints it.
type benchTxnResult struct {
	Mode                string       `json:"mode"` // "txn"
	Topic               string       `json:"topic"`
	Partitions          int          `json:"partitions"`
	RecordSize          int          `json:"record_size"`
	RecordsPerTxn       int          `json:"records_per_txn"`
	Producers           int          `json:"producers"`
	Transactions        int64        `json:"transactions"`
	Records             int64        `json:"records"`
	Bytes               int64        `json:"bytes"`
	Seconds             float64      `json:"seconds"`
	TransactionsPerSec  float64      `json:"transactions_per_sec"`
	RecordsPerSec       float64      `json:"records_per_sec"`
	MBPerSec            float64      `json:"mb_per_sec"`
	Produce             benchLatency `json:"produce_latency"`                   // Begin to Flush return
	Commit              benchLatency `json:"commit_latency"`                    // EndTransaction call
	VisibleFromStart    benchLatency `json:"visible_from_end_start"`            // first record
	VisibleFromReturn   benchLatency `json:"visible_from_end_return"`           // first record, 0 if before
	VisibleBeforeReturn uint64       `json:"visible_before_return"`             // of VisibleFromReturn.Count
	AllVisibleFromStart benchLatency `json:"all_visible_from_end_start"`        // last record
	Errors              uint64       `json:"errors"`                            //
	FirstError          string       `json:"first_error,omitempty"`             //
	Unmeasured          int64        `json:"unmeasured_transactions,omitempty"` // warm-up and first ones
	Unexpected          uint64       `json:"unexpected_records,omitempty"`      // duplicates or aborted
}

// benchTxnKey names one transaction: producer index and sequence number.
type benchTxnKey struct {
	producer uint32
	seq      uint64
}

// benchTxnState is one ending transaction as both sides saw it.
type benchTxnState struct {
	start, ret time.Time // EndTransaction called, returned (zero: not yet)
	first      time.Time // the consumer's first receipt (zero: not yet)
	seen       int       // records received
	measured   bool
}

// benchTxnTracker joins the producers' EndTransaction times with the
// consumer's receipts. Either side may come first: a broker may make
// records visible before the EndTxn response reaches the producer.
type benchTxnTracker struct {
	n                           int // records per transaction
	mu                          sync.Mutex
	txns                        map[benchTxnKey]*benchTxnState
	visStart, visReturn, allVis benchHist
	beforeReturn                atomic.Uint64
	unexpected                  atomic.Uint64 // records of no ending or open transaction
}

// ending registers a transaction just before EndTransaction is called:
// none of its records can be visible to read_committed before that.
func (t *benchTxnTracker) ending(k benchTxnKey, at time.Time, measured bool) {
	t.mu.Lock()
	t.txns[k] = &benchTxnState{start: at, measured: measured}
	t.mu.Unlock()
}

// ended records EndTransaction's return; committed false drops the
// transaction.
func (t *benchTxnTracker) ended(k benchTxnKey, at time.Time, committed bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	st := t.txns[k]
	if st == nil {
		return
	}
	if !committed {
		delete(t.txns, k)
		return
	}
	st.ret = at
	if !st.first.IsZero() {
		// The consumer got here first, but it may have read its clock
		// after the return all the same.
		if st.measured {
			t.recordFromReturn(st.first.Sub(at))
		}
		if st.seen >= t.n {
			delete(t.txns, k)
		}
	}
}

// recordFromReturn records one "visible from EndTxn return" latency; a
// negative one (visible before the return) counts as 0 and is counted.
func (t *benchTxnTracker) recordFromReturn(d time.Duration) {
	if d < 0 {
		t.beforeReturn.Add(1)
		d = 0
	}
	t.visReturn.Record(d)
}

// received records the consumer's receipt of one record of k.
func (t *benchTxnTracker) received(k benchTxnKey, at time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	st := t.txns[k]
	if st == nil {
		t.unexpected.Add(1) // a duplicate, or of an aborted transaction
		return
	}
	st.seen++
	if st.first.IsZero() {
		st.first = at
		if st.measured {
			t.visStart.Record(at.Sub(st.start))
			if !st.ret.IsZero() {
				t.recordFromReturn(at.Sub(st.ret))
			}
		}
	}
	if st.seen == t.n {
		if st.measured {
			t.allVis.Record(at.Sub(st.start))
		}
		if !st.ret.IsZero() {
			delete(t.txns, k)
		}
	}
}

// pending is the number of committed transactions not yet fully visible
// (and of transactions still ending).
func (t *benchTxnTracker) pending() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.txns)
}

// benchTxnRun runs one `bench txn` measurement. progress, if not nil, is
// called about once a second with transactions/s over the last interval.
func benchTxnRun(ctx context.Context, o benchTxnOptions, progress func(elapsed time.Duration, txnPerSec, commitP99ms float64)) (benchTxnResult, error) {
	bo := benchOptions{mode: "txn", brokers: o.brokers, topic: o.topic, partitions: o.partitions, rf: o.rf, noCreate: o.noCreate}
	admin, err := kgo.NewClient(kgo.SeedBrokers(o.brokers...))
	if err != nil {
		return benchTxnResult{}, fmt.Errorf("bench: client: %w", err)
	}
	defer admin.Close()
	parts, err := benchEnsureTopic(ctx, admin, bo)
	if err != nil {
		return benchTxnResult{}, err
	}
	res := benchTxnResult{Mode: "txn", Topic: o.topic, Partitions: parts, RecordSize: o.recordSize,
		RecordsPerTxn: o.recordsPerTxn, Producers: o.producers}
	ends, err := benchListOffsets(ctx, admin, o.topic, parts, -1)
	if err != nil {
		return res, err
	}
	offsets := map[int32]kgo.Offset{}
	for p, end := range ends {
		offsets[p] = kgo.NewOffset().At(end)
	}
	consumer, err := kgo.NewClient(kgo.SeedBrokers(o.brokers...),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{o.topic: offsets}))
	if err != nil {
		return res, fmt.Errorf("bench: consumer client: %w", err)
	}
	defer consumer.Close()
	producers := make([]*kgo.Client, 0, o.producers)
	defer func() {
		for _, cl := range producers {
			cl.Close()
		}
	}()
	for p := range o.producers {
		cl, err := kgo.NewClient(kgo.SeedBrokers(o.brokers...),
			kgo.TransactionalID(fmt.Sprintf("gregor-bench-%s-%d", o.topic, p)),
			kgo.DefaultProduceTopic(o.topic),
			kgo.RecordPartitioner(kgo.ManualPartitioner()))
		if err != nil {
			return res, fmt.Errorf("bench: producer client: %w", err)
		}
		producers = append(producers, cl)
	}

	var (
		c       benchCounter // committed measured records
		commit  benchHist
		produce benchHist
		txns    atomic.Int64 // committed measured transactions
		skipped atomic.Int64
		stopped atomic.Bool
		tr      = &benchTxnTracker{n: o.recordsPerTxn, txns: map[benchTxnKey]*benchTxnState{}}
		cdone   = make(chan struct{})
	)
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		defer close(cdone)
		for cctx.Err() == nil {
			fs := consumer.PollFetches(cctx)
			now := time.Now()
			fs.EachError(func(t string, p int32, err error) {
				if !errors.Is(err, context.Canceled) {
					c.fail(fmt.Errorf("fetch %s/%d: %w", t, p, err))
				}
			})
			fs.EachRecord(func(r *kgo.Record) {
				if len(r.Value) < benchTxnHeaderBytes {
					return
				}
				tr.received(benchTxnKey{binary.BigEndian.Uint32(r.Value), binary.BigEndian.Uint64(r.Value[4:])}, now)
			})
		}
	}()

	start := time.Now()
	measureFrom := start.Add(o.warmup)
	timer := time.AfterFunc(o.warmup+o.duration, func() { stopped.Store(true) })
	defer timer.Stop()
	stopReport := make(chan struct{})
	if progress != nil {
		go func() {
			t := time.NewTicker(benchProgressInterval)
			defer t.Stop()
			var last int64
			lastAt := time.Now()
			for {
				select {
				case <-stopReport:
					return
				case now := <-t.C:
					n := txns.Load()
					progress(now.Sub(measureFrom), float64(n-last)/now.Sub(lastAt).Seconds(), benchMillis(commit.Quantile(0.99)))
					last, lastAt = n, now
				}
			}
		}()
	}
	base := benchValue(o.recordSize)
	var wg sync.WaitGroup
	for pi, cl := range producers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for seq := uint64(0); !stopped.Load() && ctx.Err() == nil; seq++ {
				if err := benchTxnOne(ctx, cl, o, uint32(pi), seq, base, parts, start, measureFrom, tr, &c, &produce, &commit, &txns, &skipped); err != nil {
					c.fail(fmt.Errorf("producer %d, transaction %d: %w", pi, seq, err))
					return
				}
			}
		}()
	}
	wg.Wait()
	close(stopReport)
	end := c.lastNs.Load()
	drain := time.Now().Add(benchDrainMax)
	for tr.pending() > 0 && time.Now().Before(drain) && ctx.Err() == nil {
		time.Sleep(10 * time.Millisecond)
	}
	if n := tr.pending(); n > 0 {
		c.fail(fmt.Errorf("bench: %d committed transactions not fully visible to read_committed within %v", n, benchDrainMax))
	}
	cancel()
	<-cdone
	c.lastNs.Store(end) // the consumer's drain is not part of the rate
	var br benchResult
	err = c.fill(&br, o.warmup, &commit, "")
	res.Records, res.Bytes, res.Seconds, res.RecordsPerSec, res.MBPerSec = br.Records, br.Bytes, br.Seconds, br.RecordsPerSec, br.MBPerSec
	res.Transactions = txns.Load()
	if res.Seconds > 0 {
		res.TransactionsPerSec = float64(res.Transactions) / res.Seconds
	}
	res.Commit = br.Latency
	res.Produce = produce.Summary()
	res.VisibleFromStart = tr.visStart.Summary()
	res.VisibleFromReturn = tr.visReturn.Summary()
	res.VisibleBeforeReturn = tr.beforeReturn.Load()
	res.AllVisibleFromStart = tr.allVis.Summary()
	res.Errors, res.FirstError = br.Errors, br.FirstError
	res.Unmeasured = skipped.Load()
	res.Unexpected = tr.unexpected.Load()
	return res, err
}

// benchTxnOne runs transaction seq of producer p: begin, produce, flush,
// commit; on failure it tries to abort and returns the error.
func benchTxnOne(ctx context.Context, cl *kgo.Client, o benchTxnOptions, p uint32, seq uint64, base []byte, parts int,
	start, measureFrom time.Time, tr *benchTxnTracker, c *benchCounter, produce, commit *benchHist, txns, skipped *atomic.Int64) error {
	begun := time.Now()
	if err := cl.BeginTransaction(); err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	var (
		mu       sync.Mutex
		firstErr error
	)
	promise := func(_ *kgo.Record, err error) {
		if err != nil {
			mu.Lock()
			if firstErr == nil {
				firstErr = err
			}
			mu.Unlock()
		}
	}
	n := o.recordsPerTxn
	for i := range n {
		v := make([]byte, len(base))
		copy(v, base)
		binary.BigEndian.PutUint32(v, p)
		binary.BigEndian.PutUint64(v[4:], seq)
		part := int32((seq*uint64(n) + uint64(i) + uint64(p)) % uint64(parts))
		cl.Produce(ctx, &kgo.Record{Value: v, Partition: part}, promise)
	}
	err := cl.Flush(ctx)
	mu.Lock()
	if err == nil {
		err = firstErr
	}
	mu.Unlock()
	if err != nil {
		_ = cl.EndTransaction(ctx, kgo.TryAbort)
		return fmt.Errorf("produce: %w", err)
	}
	k := benchTxnKey{p, seq}
	t0 := time.Now()
	measured := seq > 0 && !t0.Before(measureFrom)
	tr.ending(k, t0, measured)
	err = cl.EndTransaction(ctx, kgo.TryCommit)
	t1 := time.Now()
	tr.ended(k, t1, err == nil)
	if err != nil {
		_ = cl.EndTransaction(ctx, kgo.TryAbort)
		return fmt.Errorf("commit: %w", err)
	}
	if !measured {
		skipped.Add(1)
		return nil
	}
	produce.Record(t0.Sub(begun))
	commit.Record(t1.Sub(t0))
	txns.Add(1)
	c.add(n, n*len(base), t1.Sub(start))
	return nil
}

func benchTxnCmd(args []string, stdout, stderr io.Writer) int {
	o, err := parseBenchTxn(args, stderr)
	if err != nil {
		return flagsFailed("gregor bench txn", err, stderr)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	var progress func(time.Duration, float64, float64)
	if !o.json && benchIsTerminal(stdout) {
		progress = func(elapsed time.Duration, tps, p99 float64) {
			fmt.Fprintf(stdout, "\rtxn      %6.1fs %10.0f txn/s  commit p99 %8.3f ms   ", elapsed.Seconds(), tps, p99)
		}
	}
	res, err := benchTxnRun(ctx, o, progress)
	if progress != nil {
		fmt.Fprintln(stdout)
	}
	return benchPrintResult(stdout, stderr, "gregor bench txn", o.json, res, res.Transactions > 0, err, benchPrintTxnSummary)
}

// benchPrintTxnSummary prints a txn result as plain text, one fact a line.
func benchPrintTxnSummary(w io.Writer, r benchTxnResult) {
	fmt.Fprintf(w, "mode                        txn\n")
	fmt.Fprintf(w, "topic                       %s (%d partitions)\n", r.Topic, r.Partitions)
	fmt.Fprintf(w, "records per transaction     %d (%d bytes each)\n", r.RecordsPerTxn, r.RecordSize)
	fmt.Fprintf(w, "producers                   %d\n", r.Producers)
	fmt.Fprintf(w, "transactions                %d committed\n", r.Transactions)
	fmt.Fprintf(w, "seconds                     %.3f\n", r.Seconds)
	fmt.Fprintf(w, "transactions/s              %.1f\n", r.TransactionsPerSec)
	fmt.Fprintf(w, "records/s                   %.0f\n", r.RecordsPerSec)
	fmt.Fprintf(w, "MB/s                        %.3f\n", r.MBPerSec)
	lat := func(name string, l benchLatency) {
		fmt.Fprintf(w, "%-27s p50 %.3f ms, p99 %.3f ms, max %.3f ms (%d)\n", name, l.P50ms, l.P99ms, l.MaxMs, l.Count)
	}
	lat("produce (Begin to Flush)", r.Produce)
	lat("commit (EndTransaction)", r.Commit)
	lat("visible from EndTxn start", r.VisibleFromStart)
	lat("visible from EndTxn return", r.VisibleFromReturn)
	fmt.Fprintf(w, "visible before return       %d\n", r.VisibleBeforeReturn)
	lat("all visible from start", r.AllVisibleFromStart)
	if r.Unexpected > 0 {
		fmt.Fprintf(w, "unexpected records          %d (duplicates, or of aborted transactions)\n", r.Unexpected)
	}
	if r.Errors > 0 {
		fmt.Fprintf(w, "errors                      %d (first: %s)\n", r.Errors, r.FirstError)
	}
}
