package sim

import (
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestEOSChecks: a reader that read tx and txo to the end must find every
// input record it delivered in the output of exactly one transaction it
// delivered, and no output of an input it did not deliver.
func TestEOSChecks(t *testing.T) {
	o := NewOptions(1)
	o.Txn, o.TxnProcessors = true, 1
	w, err := newWorld(o, nil)
	if err != nil {
		t.Fatal(err)
	}
	c := newClient(w, 0, roleConsumer, 0, w.txn.readTPs)
	w.clients = append(w.clients, c)
	r := newTxnReader(c, w.txn)
	tp, out := w.txn.tps[0], w.txn.outTPs[0]
	addTxn(w, 1, 1, tp, txnCommitted, "a0", "b0", "c0")
	addTxn(w, 2, 1, tp, txnAborted, "z0")
	ew := w.txn.eos
	output := func(state txnState, n int, ins ...string) {
		var outs []string
		for _, in := range ins {
			o := in + eosOutputSeparator + "e9." + string(rune('0'+n))
			ew.flows[0].input[o] = in
			outs = append(outs, o)
		}
		addTxn(w, 3, n, out, state, outs...)
	}
	output(txnCommitted, 1, "a0", "c0")
	output(txnCommitting, 2, "a0") // indeterminate, and visible: a0 twice
	output(txnAborted, 3, "b0")    // not visible: b0 lost
	output(txnCommitted, 4, "z0")  // the output of an aborted input
	for _, v := range []string{"a0", "b0", "c0", "a0@e9.1", "c0@e9.1", "a0@e9.2", "z0@e9.4"} {
		r.seen[v] = 1
	}
	fs := ew.check(r)
	var kinds []string
	for _, f := range fs {
		kinds = append(kinds, f.Kind)
		t.Log(f)
	}
	if got := strings.Join(kinds, " "); got != "eos-uncommitted-input eos-duplicate eos-lost" {
		t.Fatalf("got %s", got)
	}
	if !strings.Contains(fs[1].Detail, `"a0"`) || !strings.Contains(fs[2].Detail, `"b0"`) || !strings.Contains(fs[0].Detail, `"z0"`) {
		t.Fatalf("details: %v", fs)
	}
}

// TestPingPongFlow: the ping-pong flow's mapping (each output one hop
// further, on the other member's partition, its value the input's with
// the writing transaction appended; none past the last hop), its round
// robin assignment, and its eos checks over records that are the output
// of one transaction and the input of another.
func TestPingPongFlow(t *testing.T) {
	o := NewOptions(1)
	o.Txn, o.TxnProcessors, o.TxnPingPong = true, 0, 2
	w, err := newWorld(o, nil)
	if err != nil {
		t.Fatal(err)
	}
	ew := w.txn.eos
	f := ew.flows[0]
	if f.group != pingPongGroup || len(ew.flows) != 1 {
		t.Fatalf("flows %v", ew.flows)
	}
	c := newClient(w, 9, roleProducer, 0, nil)
	e := &eosProcessor{ew: ew, f: f, txnProducer: &txnProducer{c: c}, n: 4}
	tx0, tx1 := w.txn.tps[0], w.txn.tps[1]
	pp0, pp1 := tpKey{pingPongTopic, 0}, tpKey{pingPongTopic, 1}
	for _, tc := range []struct {
		in     eosIn
		tp     tpKey
		v      string
		output bool
	}{
		{eosIn{tp: tx0, v: "w3.1.0"}, pp1, "w3.1.0@p9.4", true},
		{eosIn{tp: tx1, v: "w3.1.1"}, pp0, "w3.1.1@p9.4", true},
		{eosIn{tp: pp1, v: "w3.1.0@p8.2@p7.5"}, pp0, "w3.1.0@p8.2@p7.5@p9.4", true},
		{eosIn{tp: pp0, v: "w3.1.0@p8.2@p7.5@p8.3@p7.6"}, tpKey{}, "", false},
	} {
		tp, v, ok := f.output(e, tc.in)
		if tp != tc.tp || v != tc.v || ok != tc.output {
			t.Errorf("output of %q on %s: %s %q %t, want %s %q %t", tc.in.v, tc.in.tp, tp, v, ok, tc.tp, tc.v, tc.output)
		}
	}

	// Round robin over pp/0, pp/1, tx/0, tx/1, tx/2: every output goes
	// to the other member's partition.
	e.members = []kmsg.JoinGroupResponseMember{{MemberID: "m1"}, {MemberID: "m0"}}
	got := map[string]string{}
	for _, a := range e.assign() {
		var ma kmsg.ConsumerMemberAssignment
		if err := ma.ReadFrom(a.MemberAssignment); err != nil {
			t.Fatal(err)
		}
		for _, at := range ma.Topics {
			got[a.MemberID] += fmt.Sprintf("%s%v ", at.Topic, at.Partitions)
		}
	}
	if got["m0"] != "pp[0] tx[0 2] " || got["m1"] != "pp[1] tx[1] " {
		t.Fatalf("assignment %v", got)
	}

	c0 := newClient(w, 0, roleConsumer, 0, w.txn.readTPs)
	r := newTxnReader(c0, w.txn)
	output := func(n int, tp tpKey, state txnState, ins ...string) {
		var outs []string
		for _, in := range ins {
			o := in + eosOutputSeparator + "p9." + strconv.Itoa(n)
			f.input[o] = in
			outs = append(outs, o)
		}
		addTxn(w, 3, n, tp, state, outs...)
	}
	addTxn(w, 1, 1, tx0, txnCommitted, "a0", "b0")
	output(1, pp1, txnCommitted, "a0", "b0")           // hop 1
	output(2, pp0, txnCommitted, "a0@p9.1")            // hop 2 of a0; b0's hop 1 has no output: lost
	output(3, pp1, txnCommitted, "a0@p9.1@p9.2")       // hop 3
	output(4, pp0, txnCommitted, "a0@p9.1@p9.2@p9.3")  // hop 4, the last: no output needed
	output(5, pp0, txnCommitting, "a0@p9.1@p9.2@p9.3") // hop 4 again: a duplicate
	output(6, pp0, txnCommitted, "z0@p9.7@p9.8@p9.9")  // the output of a record never read
	w.txn.values["z0@p9.7@p9.8@p9.9"] = txnValue{txn: 0, tp: pp1}
	for _, v := range []string{"a0", "b0", "a0@p9.1", "b0@p9.1", "a0@p9.1@p9.2", "a0@p9.1@p9.2@p9.3",
		"a0@p9.1@p9.2@p9.3@p9.4", "a0@p9.1@p9.2@p9.3@p9.5", "z0@p9.7@p9.8@p9.9@p9.6"} {
		r.seen[v] = 1
	}
	var kinds []string
	fs := ew.check(r)
	for _, f := range fs {
		kinds = append(kinds, f.Kind)
		t.Log(f)
	}
	if got := strings.Join(kinds, " "); got != "eos-uncommitted-input eos-duplicate eos-lost" {
		t.Fatalf("got %s", got)
	}
	if !strings.Contains(fs[0].Detail, `"z0@p9.7@p9.8@p9.9"`) || !strings.Contains(fs[1].Detail, `"a0@p9.1@p9.2@p9.3"`) || !strings.Contains(fs[2].Detail, `"b0@p9.1"`) {
		t.Fatalf("details: %v", fs)
	}
}
