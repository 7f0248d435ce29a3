package linearizability

import (
	"fmt"
)

// genConfig shapes a generated history.
type genConfig struct {
	mode       Mode
	ops        int
	partitions int
	clients    int
	windowMax  int // how far a call and a return may sit from the op's linearization point
	final      bool
	// unknownMax caps produces with unknown outcomes (0: no cap). Without
	// a final read each one stays a candidate for the rest of porcupine's
	// search, which is exponential in them.
	unknownMax int
}

// genHistory builds a history that a correct broker could have produced:
// it runs a sequential log per partition, gives every call a linearization
// point in strictly increasing time, and widens each into a random
// [call, return] window around that point. Each client's calls are
// sequential. draw(lo, hi) returns a number in [lo, hi].
func genHistory(draw func(lo, hi int) int, cfg genConfig) History {
	type pending struct {
		tp      TP
		values  []string
		applied bool
		base    int64
	}
	logs := make([][]string, cfg.partitions)
	positions := make([]map[int32]int64, cfg.clients) // consumer offsets
	lastReturn := make([]int64, cfg.clients)
	retries := make([]*pending, cfg.clients)
	for c := range positions {
		positions[c] = map[int32]int64{}
		lastReturn[c] = -1
	}
	h := History{Mode: cfg.mode}
	var t int64
	seq, unknowns := 0, 0
	for len(h.Ops) < cfg.ops {
		t += int64(draw(1, 10))
		c := draw(0, cfg.clients-1)
		if lastReturn[c] >= t {
			continue
		}
		call := max(lastReturn[c]+1, t-int64(draw(0, cfg.windowMax)))
		ret := t + int64(draw(0, cfg.windowMax))
		lastReturn[c] = ret
		op := Op{Client: c, Call: call, Return: ret, Consumer: -1}

		if r := retries[c]; r != nil {
			// Retry the same values after an unknown outcome.
			retries[c] = nil
			p := r.tp.Partition
			op.Kind, op.TP, op.Values = Produce, r.tp, r.values
			if r.applied && cfg.mode == ExactlyOnce {
				op.BaseOffset = r.base // deduplicated
			} else {
				op.BaseOffset = int64(len(logs[p]))
				logs[p] = append(logs[p], r.values...)
			}
			h.Ops = append(h.Ops, op)
			continue
		}

		p := int32(draw(0, cfg.partitions-1))
		op.TP = TP{Topic: "t", Partition: p}
		hw := int64(len(logs[p]))
		switch kind := draw(0, 9); {
		case kind < 4:
			op.Kind = Produce
			for range draw(1, 3) {
				op.Values = append(op.Values, fmt.Sprintf("v%d", seq))
				seq++
			}
			outcome := draw(0, 9)
			if (outcome == 1 || outcome == 2) && cfg.unknownMax > 0 && unknowns >= cfg.unknownMax {
				outcome = 3
			}
			switch outcome {
			case 0:
				op.Err = "NOT_LEADER_OR_FOLLOWER"
			case 1, 2:
				op.Return, op.BaseOffset = ReturnUnknown, -1
				unknowns++
				applied := outcome == 1
				if applied {
					logs[p] = append(logs[p], op.Values...)
				}
				if cfg.mode != AtMostOnce && draw(0, 1) == 1 {
					retries[c] = &pending{tp: op.TP, values: op.Values, applied: applied, base: hw}
				}
			default:
				op.BaseOffset = hw
				logs[p] = append(logs[p], op.Values...)
			}
		case kind < 9:
			op.Kind = Fetch
			var off int64
			if kind < 8 {
				op.Consumer = c
				off = positions[c][p]
			} else {
				off = int64(draw(0, int(hw)))
			}
			op.Offset = off
			switch draw(0, 19) {
			case 0:
				op.Err = "NOT_LEADER_OR_FOLLOWER"
			case 1:
				op.Return = ReturnUnknown
			default:
				op.HighWatermark = hw
				if avail := hw - off; avail > 0 {
					k := int64(draw(1, int(min(avail, 5))))
					op.Records = recs(off, logs[p][off:off+k]...)
					if op.Consumer >= 0 {
						positions[c][p] = off + k
					}
				}
			}
		default:
			op.Kind = ListOffsets
			op.Start, op.End = 0, hw
		}
		h.Ops = append(h.Ops, op)
	}
	if cfg.final {
		h.Final = make(map[TP][]Record, cfg.partitions)
		for p, log := range logs {
			h.Final[TP{Topic: "t", Partition: int32(p)}] = recs(0, log...)
		}
	}
	return h
}
