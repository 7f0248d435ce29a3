package engine

// The transaction coordinator's unsafe knobs (Unsafe.NoFencing,
// Unsafe.MarkerBeforePrepare), kept here so that the coordinator's files
// carry only the calls.

// unsafeFencedOK reports whether Unsafe.NoFencing lets producer (pid,
// epoch) through the coordinator's epoch check (txnProducerCheck, and the
// answer to a verification): an older epoch of the id's current producer
// id. The three checks a zombie can meet, each off alone in the
// simulator's seeds 1..50 with the transactional workload of 167cb4e:
// the coordinator's request check was caught by 3 seeds, its
// verification answer by 1, the partition's epoch check by none (the
// verification shadows it: a zombie's batch meets it only where its
// successor already wrote); all three by 6. The knob is the coordinator's
// two, which fencing is in Kafka's design (the coordinator bumps the
// epoch and refuses the old one); with the workload that also crashes
// coordinators after EndTxn, 4 of seeds 1..50 catch it, the request check
// alone 1.
func (b *Broker) unsafeFencedOK(cur *txnLogValue, pid int64, epoch int16) bool {
	return b.cfg.Unsafe.NoFencing && cur != nil && cur.producerID == pid && epoch < cur.producerEpoch
}

// unsafeMarkersFirst is EndTxn under Unsafe.MarkerBeforePrepare: every
// partition of next's transaction writes its marker first (each retried
// until written while this coordinator stays loaded), and only then is
// next, the PrepareCommit or PrepareAbort record, written and the request
// answered, as the rest of handleEndTxn does. A coordinator that fails
// over in between leaves a successor that knows the transaction as
// Ongoing, with some markers written: if it then aborts it (a timeout, a
// new producer's InitProducerId), the transaction is half committed.
// answer gets the request's outcome.
func (c *txnCoordinator) unsafeMarkersFirst(id string, next *txnLogValue, answer func(code int16)) {
	m := c.marker(next)
	loadSeq := c.loadSeq
	c.busy[id] = true
	prepare := func() {
		if c.loadSeq != loadSeq || !c.loaded {
			return // unloaded: the request goes unanswered, and times out
		}
		delete(c.busy, id)
		c.change(id, next, func(code int16) {
			answer(code)
			if code == 0 {
				c.later(func() { c.completeTxn(id) })
			}
		})
	}
	left := 0
	for _, t := range next.partitions {
		left += len(t.partitions)
	}
	if left == 0 {
		prepare()
		return
	}
	for _, t := range next.partitions {
		for _, part := range t.partitions {
			c.sendMarker(t.topic, part, m, loadSeq, func() {
				if left--; left == 0 {
					c.later(prepare)
				}
			})
		}
	}
}
