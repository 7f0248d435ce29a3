package main

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// streamsWords is the word count's vocabulary; streamsLineWordsMax bounds
// a line's words. streamsLinesMax bounds the input, whatever the phases
// take; streamsLinesPerTick lines are produced every streamsTick.
var streamsWords = strings.Fields(`alpha bravo charlie delta echo foxtrot golf hotel india juliett
	kilo lima mike november oscar papa quebec romeo sierra tango uniform victor whiskey xray yankee zulu`)

const (
	streamsLineWordsMax = 8
	streamsLinesMax     = 20_000
	streamsLinesPerTick = 20
	streamsTick         = 50 * time.Millisecond
	streamsPhaseRecords = 500
)

// streamsLines returns the deterministic line generator of a seed.
func streamsLines(seed uint64) func() string {
	rng := rand.New(rand.NewPCG(seed, 0x5712ea45))
	return func() string {
		n := 1 + rng.IntN(streamsLineWordsMax)
		ws := make([]string, n)
		for i := range ws {
			ws[i] = streamsWords[rng.IntN(len(streamsWords))]
		}
		return strings.Join(ws, " ")
	}
}

// TestKafkaStreamsExactlyOnce runs Kafka Streams (StreamsWordCount: lines
// → words → a repartition topic → count() with a changelog → the output
// topic) with processing.guarantee=exactly_once_v2 against a live
// 3-broker cluster while lines are produced, and kills it with SIGKILL
// twice mid-stream: once restarting on the same state directory (the same
// transactional id, so the new producer fences the old one's open
// transaction), once on a fresh one (a new transactional id: the killed
// producer's transaction must time out and abort, and the counts are
// restored from the changelog). A read_committed reader of the output must
// then see each word's counts go 1, 2, 3, ... and end at the number of
// times the word was produced: a record processed twice would count twice.
//
// GREGOR_STREAMS_SEED repeats a run's lines; GREGOR_STREAMS_GUARANTEE=
// at_least_once runs the app without transactions, and the test then
// fails (counted twice), as it should.
func TestKafkaStreamsExactlyOnce(t *testing.T) {
	java := javaCommand(t)
	c := startLiveCluster(t)
	const in, out, app = "wc-lines", "wc-counts", "wc"
	cl := c.client()
	createTopic(t, cl, in, 3, 3)
	createTopic(t, cl, out, 3, 3)

	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("GREGOR_STREAMS_SEED"); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatalf("GREGOR_STREAMS_SEED: %v", err)
		}
	}
	t.Logf("input seed %d (GREGOR_STREAMS_SEED=%d repeats the lines)", seed, seed)
	guarantee := cmp.Or(os.Getenv("GREGOR_STREAMS_GUARANTEE"), "exactly_once_v2")

	start := time.Now()
	lines := newStreamsInput(t, c, in, seed)
	counts := newCountReader(t, c, out)
	stateA, stateB := t.TempDir(), t.TempDir()
	// phase starts the app and waits until it has written
	// streamsPhaseRecords counts, so that it is busy when it is killed.
	phase := func(name, stateDir string) *javaProc {
		t.Helper()
		before := counts.records()
		a := startStreamsApp(t, java, c, app, in, out, stateDir, guarantee)
		waitFor(t, name+": output from the new instance", func() (bool, string) {
			n := counts.records()
			return a.exited() != nil || n >= before+streamsPhaseRecords,
				fmt.Sprintf("%d output records, %d before it started; %d lines produced; app: %s", n, before, lines.produced(), a.stdout.String())
		})
		if err := a.exited(); err != nil {
			t.Fatalf("%s: the Streams app exited: %v\n%s", name, err, a.stderr.String())
		}
		t.Logf("%s: at %v, output advanced from %d to %d records; %d lines produced", name,
			time.Since(start).Round(time.Millisecond), before, counts.records(), lines.produced())
		return a
	}

	// The reader sees output as soon as a transaction commits, so killing
	// the app at once would find no transaction open: wait a little more,
	// a time drawn from the seed.
	pause := rand.New(rand.NewPCG(seed, 1))
	kill := func(a *javaProc) {
		t.Helper()
		d := time.Duration(200+pause.IntN(500)) * time.Millisecond
		time.Sleep(d)
		t.Logf("killing the Streams app %v after its output advanced, at %s; its stdout:\n%s", d, time.Now().Format("15:04:05.000"), a.stdout.String())
		a.kill()
	}
	a := phase("run 1 (state dir A)", stateA)
	kill(a)
	a = phase("run 2 (state dir A again, after SIGKILL)", stateA)
	kill(a)
	a = phase("run 3 (state dir B, empty, after SIGKILL)", stateB)
	truth, err := lines.stop()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("input: %d lines, %d words", lines.produced(), sumCounts(truth))

	waitFor(t, "the output's last counts to equal the input's", func() (bool, string) {
		if err := a.exited(); err != nil {
			t.Fatalf("the Streams app exited: %v\n%s", err, a.stderr.String())
		}
		if p := counts.problems(); len(p) > 0 {
			t.Fatalf("read_committed output: %s", strings.Join(p, "; "))
		}
		diff := countDiff(counts.last(), truth)
		for _, d := range diff {
			if d.got > d.want {
				t.Fatalf("counted more than produced (double counting): %v", diff)
			}
		}
		return len(diff) == 0, fmt.Sprint(diff)
	})
	t.Logf("at %v, the output's last counts equal the input's", time.Since(start).Round(time.Millisecond))
	a.stop()

	// Once more from the start, with new readers: the whole committed
	// output, not only what the running reader saw; and, for the log, what
	// the killed instances wrote and did not commit, which shows that the
	// kills interrupted transactions.
	repartition := app + "-words-repartition"
	reads := readAll(t, c, []topicRead{{out, kgo.ReadCommitted()}, {out, kgo.ReadUncommitted()},
		{repartition, kgo.ReadCommitted()}, {repartition, kgo.ReadUncommitted()}})
	final := reads[0]
	if p := final.problems(); len(p) > 0 {
		t.Errorf("read_committed output, read again: %s", strings.Join(p, "; "))
	}
	if diff := countDiff(final.last(), truth); len(diff) > 0 {
		t.Errorf("read_committed output, read again: last counts differ from the input: %v", diff)
	}
	t.Logf("%s: %d committed records, %d aborted", out, final.records(), reads[1].records()-final.records())
	t.Logf("%s: %d committed records, %d aborted", repartition, reads[2].records(), reads[3].records()-reads[2].records())
}

// startStreamsApp runs StreamsWordCount in a child JVM (connect_test.go's
// javaProc).
func startStreamsApp(t *testing.T, java string, c *liveCluster, app, in, out, stateDir, guarantee string) *javaProc {
	t.Helper()
	return startJavaProc(t, java, "the Streams app", "streams-wordcount", strings.Join(c.seeds(), ","), app, in, out, stateDir, guarantee)
}

// streamsInput produces the seed's lines to a topic, streamsLinesPerTick
// every streamsTick, until stopped, and counts their words.
type streamsInput struct {
	mu    sync.Mutex
	n     int
	truth map[string]int64
	err   error
	quit  chan struct{}
	done  chan struct{}
}

func newStreamsInput(t *testing.T, c *liveCluster, topic string, seed uint64) *streamsInput {
	s := &streamsInput{truth: map[string]int64{}, quit: make(chan struct{}), done: make(chan struct{})}
	cl := c.client(kgo.DefaultProduceTopic(topic))
	next := streamsLines(seed)
	go func() {
		defer close(s.done)
		tick := time.NewTicker(streamsTick)
		defer tick.Stop()
		for s.produced() < streamsLinesMax {
			select {
			case <-s.quit:
				return
			case <-tick.C:
			}
			var rs []*kgo.Record
			var batch []string
			for range streamsLinesPerTick {
				l := next()
				batch = append(batch, l)
				rs = append(rs, kgo.StringRecord(l))
			}
			ctx, cancel := context.WithTimeout(context.Background(), testWaitMax)
			err := cl.ProduceSync(ctx, rs...).FirstErr()
			cancel()
			s.mu.Lock()
			if err != nil {
				s.err = err
				s.mu.Unlock()
				return
			}
			s.n += len(batch)
			for _, l := range batch {
				for _, w := range strings.Fields(l) {
					s.truth[w]++
				}
			}
			s.mu.Unlock()
		}
	}()
	t.Cleanup(func() { s.stopOnce() })
	return s
}

func (s *streamsInput) produced() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n
}

func (s *streamsInput) stopOnce() {
	select {
	case <-s.quit:
	default:
		close(s.quit)
	}
	<-s.done
}

// stop ends the input and returns each word's count in it.
func (s *streamsInput) stop() (map[string]int64, error) {
	s.stopOnce()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return nil, fmt.Errorf("producing the input: %v", s.err)
	}
	return s.truth, nil
}

// countReader reads the word counts of the output topic at read_committed,
// keeping each word's last count and every anomaly: a word whose count is
// not the one before plus one (the app has no record cache, so it writes
// every update: a repeat is a word counted twice, a gap a committed update
// lost), or a word not in the vocabulary.
type countReader struct {
	mu    sync.Mutex
	n     int
	lasts map[string]int64
	bad   []string
}

func (r *countReader) add(rec *kgo.Record) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.n++
	w := string(rec.Key)
	if len(rec.Value) != 8 {
		r.problem("%s at %s-%d@%d: value of %d bytes, want a long", w, rec.Topic, rec.Partition, rec.Offset, len(rec.Value))
		return
	}
	v := int64(binary.BigEndian.Uint64(rec.Value))
	if !slices.Contains(streamsWords, w) {
		r.problem("unknown word %q at %s-%d@%d", w, rec.Topic, rec.Partition, rec.Offset)
	}
	if last := r.lasts[w]; v != last+1 {
		r.problem("%s: count %d at %s-%d@%d after %d", w, v, rec.Topic, rec.Partition, rec.Offset, last)
	}
	r.lasts[w] = v
}

func (r *countReader) problem(f string, a ...any) {
	if len(r.bad) < 20 {
		r.bad = append(r.bad, fmt.Sprintf(f, a...))
	}
}

func (r *countReader) records() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.n
}

func (r *countReader) last() map[string]int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return maps.Clone(r.lasts)
}

func (r *countReader) problems() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.bad)
}

// readClient consumes topic from the start at an isolation level.
func readClient(c *liveCluster, topic string, level kgo.IsolationLevel) *kgo.Client {
	return c.client(kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(level), kgo.FetchMaxWait(200*time.Millisecond))
}

// newCountReader follows topic at read_committed in the background until
// the test ends.
func newCountReader(t *testing.T, c *liveCluster, topic string) *countReader {
	r := &countReader{lasts: map[string]int64{}}
	cl := readClient(c, topic, kgo.ReadCommitted())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			fs := cl.PollFetches(ctx)
			fs.EachError(func(topic string, p int32, err error) {
				if ctx.Err() == nil {
					t.Logf("reading %s-%d: %v", topic, p, err)
				}
			})
			fs.EachRecord(r.add)
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	return r
}

// topicRead is a topic to read from the start at an isolation level.
type topicRead struct {
	topic string
	level kgo.IsolationLevel
}

// readAll reads each topic from the start, all at once, until two polls
// in a row, of a second each, find nothing more (the writers have
// stopped, so everything is there to read).
func readAll(t *testing.T, c *liveCluster, reads []topicRead) []*countReader {
	t.Helper()
	out := make([]*countReader, len(reads))
	errs := make([]error, len(reads))
	var wg sync.WaitGroup
	for i, rd := range reads {
		out[i] = &countReader{lasts: map[string]int64{}}
		cl := readClient(c, rd.topic, rd.level)
		wg.Go(func() {
			defer cl.Close()
			deadline := time.Now().Add(testWaitMax)
			for idle := 0; idle < 2 && errs[i] == nil; {
				if time.Now().After(deadline) {
					errs[i] = fmt.Errorf("reading %s: still reading after %v", rd.topic, testWaitMax)
				}
				ctx, cancel := context.WithTimeout(context.Background(), time.Second)
				fs := cl.PollFetches(ctx)
				cancel()
				fs.EachError(func(topic string, p int32, err error) {
					if !errors.Is(err, context.DeadlineExceeded) {
						errs[i] = fmt.Errorf("reading %s-%d: %v", topic, p, err)
					}
				})
				if fs.NumRecords() == 0 {
					idle++
				} else {
					idle = 0
				}
				fs.EachRecord(out[i].add)
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	return out
}

// countMismatch is one word whose last output count is not its count in
// the input.
type countMismatch struct {
	word      string
	got, want int64
}

func (m countMismatch) String() string { return fmt.Sprintf("%s: %d, want %d", m.word, m.got, m.want) }

func countDiff(got, want map[string]int64) []countMismatch {
	var out []countMismatch
	for _, w := range streamsWords {
		if got[w] != want[w] {
			out = append(out, countMismatch{w, got[w], want[w]})
		}
	}
	return out
}

func sumCounts(m map[string]int64) int64 {
	var n int64
	for _, v := range m {
		n += v
	}
	return n
}

// TestKafkaStreamsThroughput measures StreamsWordCount (exactly_once_v2)
// on a live cluster: GREGOR_STREAMS_BENCH_LINES lines are produced first,
// then the app starts, and the test logs how long the app took from
// reaching RUNNING until the output held every word's count. It asserts
// nothing on time and runs only when GREGOR_STREAMS_BENCH_LINES is set:
//
//	GREGOR_STREAMS_BENCH_LINES=20000 go test -count=1 -run TestKafkaStreamsThroughput -v ./cmd/gregor/
func TestKafkaStreamsThroughput(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("GREGOR_STREAMS_BENCH_LINES"))
	if n <= 0 {
		t.Skip("set GREGOR_STREAMS_BENCH_LINES to run")
	}
	java := javaCommand(t)
	c := startLiveCluster(t)
	const in, out, app = "wc-lines", "wc-counts", "wc"
	cl := c.client(kgo.DefaultProduceTopic(in))
	createTopic(t, cl, in, 3, 3)
	createTopic(t, cl, out, 3, 3)
	next := streamsLines(1)
	var words int
	ctx, cancel := context.WithTimeout(context.Background(), testWaitMax)
	defer cancel()
	for i := 0; i < n; i += 1000 {
		var rs []*kgo.Record
		for range min(1000, n-i) {
			l := next()
			words += len(strings.Fields(l))
			rs = append(rs, kgo.StringRecord(l))
		}
		if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
			t.Fatalf("produce: %v", err)
		}
	}
	counts := newCountReader(t, c, out)
	a := startStreamsApp(t, java, c, app, in, out, t.TempDir(), "exactly_once_v2")
	waitFor(t, "the app to run", func() (bool, string) {
		return a.exited() != nil || strings.Contains(a.stdout.String(), "->RUNNING"), a.stdout.String()
	})
	running := time.Now()
	deadline := running.Add(10 * testWaitMax)
	for counts.records() < words && a.exited() == nil {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d counts after %v", counts.records(), words, time.Since(running))
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := a.exited(); err != nil {
		t.Fatalf("the Streams app exited: %v\n%s", err, a.stderr.String())
	}
	d := time.Since(running)
	a.stop()
	t.Logf("%d lines (%d words) in %v from RUNNING: %.0f lines/s, %.0f words/s",
		n, words, d.Round(time.Millisecond), float64(n)/d.Seconds(), float64(words)/d.Seconds())
}
