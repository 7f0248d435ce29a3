package sim

// Ping-pong processors: consume-transform-produce processors (eos.go)
// whose transactions read what the others' transactions write, so that
// wr dependencies (elle.go) run both ways between transactions and a
// cycle with a wr edge, G1c, can form in the graph of a faulty run.
//
// TxnPingPong processors (two, when there are any) are the members of
// the classic group p0, subscribed to tx and pp (pingPongPartitions
// partitions), which the leader assigns round robin over the partitions
// sorted (pp/0, pp/1, tx/0, tx/1, tx/2): with two members one has pp/0,
// tx/0 and tx/2, the other pp/1 and tx/1. The output of a record read
// from partition k of either topic goes to pp/(k+1)%2, the other member's
// partition, one hop further: a writer's record on tx is a ball at hop 0,
// and its output on pp is the ball at hop 1, which the other processor
// reads and sends back at hop 2, up to pingPongHops, whose records have
// no output. An output's value is its input's with the transaction that
// wrote it appended, as e0's are: "w25.1.2@p31.4@p33.2" is the writer's
// record "w25.1.2" at hop 2, written by client 33's transaction 2 from
// client 31's transaction 4's output. So every value is the whole lineage
// of its record and unique (two transactions that processed one input,
// one of them aborted, wrote two values), and the eos checks hold each
// input to its outputs whoever reads them.
//
// A transaction reads and writes in 1 to pingPongPollsMax polls, as a
// Kafka Streams task processes many polls in one transaction (until its
// commit interval): the records read so far (up to eosBatchMax) go out,
// and once they are acknowledged the processor fetches again within the
// transaction, and so on, whether the last poll read anything or not
// (a fetch long-polls up to fetchMaxWaitMillis). Then the positions are
// committed with TxnOffsetCommit and the transaction with EndTxn, as for
// e0. Outside a transaction a processor whose fetch read nothing pauses
// up to pingPongPollMillisMax (e0's up to eosPollMillisMax), so that it
// reads what the other wrote soon.
//
// In a correct run read_committed hides a transaction's records until
// its commit marker, so two transactions cannot each read the other's:
// T1 -wr-> T2 -wr-> T1 needs each one's commit before the other's read,
// which precedes its commit. Under lso-is-hw (read_committed served up to
// the high watermark) T2 reads the record T1 wrote in its first poll and
// sends its output back, and T1 reads that in a later poll: G1c, once
// both commit.

import (
	"strconv"
	"strings"
)

const (
	pingPongGroup      = "p0"
	pingPongTopic      = "pp"
	pingPongPartitions = 2
	// pingPongHops: a ball's last hop, whose record has no output.
	pingPongHops = 4
	// pingPongPollsMax: a transaction's polls, at most.
	pingPongPollsMax = 4
	// pingPongPollMillisMax: a processor's pause after a fetch that read
	// nothing, outside a transaction.
	pingPongPollMillisMax = 100
)

// pingPongHop is a value's hop: the transactions in its lineage.
func pingPongHop(v string) int { return strings.Count(v, eosOutputSeparator) }

// addPingPong adds the ping-pong flow of n processors.
func (ew *eosWorld) addPingPong(n int) {
	f := ew.newFlow("p", pingPongGroup, eosProtocolRoundRobin, pingPongTopic, n, txnTopic, pingPongTopic)
	f.polls, f.pollPause = pingPongPollsMax, pingPongPollMillisMax
	f.output = func(e *eosProcessor, in eosIn) (tpKey, string, bool) {
		if pingPongHop(in.v) >= pingPongHops {
			return tpKey{}, "", false
		}
		v := in.v + eosOutputSeparator + "p" + strconv.Itoa(e.c.idx) + "." + strconv.Itoa(e.n)
		return tpKey{pingPongTopic, (in.tp.part + 1) % pingPongPartitions}, v, true
	}
	f.processes = func(v string, ref txnValue) bool {
		return ref.tp.topic == txnTopic || ref.tp.topic == pingPongTopic && pingPongHop(v) < pingPongHops
	}
}
