package linearizability

import (
	"cmp"
	"fmt"
)

// Mode is the delivery guarantee a workload ran under. It decides which
// anomalies are violations: duplicates are allowed only in AtLeastOnce.
type Mode int

const (
	// AtMostOnce: acks=0 or no retries. Records may be lost (their produce
	// was never acknowledged), never duplicated.
	AtMostOnce Mode = iota
	// AtLeastOnce: acks=all with retries. Nothing acknowledged is lost;
	// a retried value may appear at more than one offset.
	AtLeastOnce
	// ExactlyOnce: idempotent (and later transactional) producers. Nothing
	// acknowledged is lost and no value appears twice.
	ExactlyOnce
)

var modeNames = [...]string{
	AtMostOnce:  "at-most-once",
	AtLeastOnce: "at-least-once",
	ExactlyOnce: "exactly-once",
}

// String returns the mode's flag spelling, e.g. "at-least-once".
func (m Mode) String() string {
	if m >= 0 && int(m) < len(modeNames) {
		return modeNames[m]
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// ParseMode is the inverse of Mode.String.
func ParseMode(s string) (Mode, error) {
	for m, name := range modeNames {
		if name == s {
			return Mode(m), nil
		}
	}
	return 0, fmt.Errorf("linearizability: unknown delivery mode %q (want at-most-once, at-least-once or exactly-once)", s)
}

// TP names one topic partition; every partition is checked on its own.
type TP struct {
	Topic     string
	Partition int32
}

// String returns "topic/partition".
func (tp TP) String() string { return fmt.Sprintf("%s/%d", tp.Topic, tp.Partition) }

func compareTP(a, b TP) int {
	if c := cmp.Compare(a.Topic, b.Topic); c != 0 {
		return c
	}
	return cmp.Compare(a.Partition, b.Partition)
}

// Kind is the client operation an Op records.
type Kind int

const (
	// Produce appends Values to a partition and learns BaseOffset.
	Produce Kind = iota
	// Fetch reads Records from Offset and learns the HighWatermark.
	Fetch
	// ListOffsets learns the partition's Start and End offsets.
	ListOffsets
)

var kindNames = [...]string{Produce: "produce", Fetch: "fetch", ListOffsets: "list-offsets"}

// String returns the kind's name, e.g. "fetch".
func (k Kind) String() string {
	if k >= 0 && int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Record is one record a fetch (or the final read) returned.
type Record struct {
	Offset int64
	Value  string
}

// ReturnUnknown is Op.Return for a call whose outcome the client never
// learned (timed out, connection lost). Such a produce may or may not have
// been applied; such a fetch or list-offsets tells nothing.
const ReturnUnknown = -1

// Op is one client call, filled in by the simulator's workload clients.
// Times are simulated nanoseconds; porcupine treats [Call, Return] as a
// closed interval.
type Op struct {
	Client int // zero-based client index
	Kind   Kind
	TP     TP
	Call   int64
	Return int64 // ReturnUnknown when the outcome is unknown

	// Produce: Values in; BaseOffset and Err out. Values are unique per
	// produce attempt-value; a retry of the same value re-sends the same
	// string. The records got BaseOffset, BaseOffset+1, ...
	Values     []string
	BaseOffset int64

	// Fetch: Offset in; Records, HighWatermark and Err out.
	Offset        int64
	Records       []Record
	HighWatermark int64

	// ListOffsets: Start and End out.
	Start, End int64

	// Err is "" when the call succeeded. A non-empty Err is a definite
	// failure: the call had no effect. Calls that may have had an effect
	// must be recorded with Return = ReturnUnknown instead.
	Err string

	// Consumer identifies the consumer a fetch belongs to (-1 for a
	// one-off read). Successive fetches of one consumer on one TP, in Call
	// order, form its poll sequence.
	Consumer int
}

// unknown reports whether the call's outcome is unknown.
func (o *Op) unknown() bool { return o.Return == ReturnUnknown }

// ok reports whether the call definitely succeeded.
func (o *Op) ok() bool { return !o.unknown() && o.Err == "" }

// History is everything a simulation run's clients observed.
type History struct {
	Mode Mode
	Ops  []Op
	// Final is the complete log of each partition, read after the liveness
	// phase healed every fault. It may be nil. A partition absent from a
	// non-nil Final is not checked against it, so the simulator should
	// include every partition it wrote to, even empty ones.
	//
	// NB: Final also keeps porcupine fast. It tells where each produce
	// with an unknown outcome landed, or that it never applied; without
	// it porcupine must try every such produce at every point of the
	// history, which is exponential in how many never applied.
	Final map[TP][]Record
}
