package sim

import (
	"strings"
	"testing"
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
