package engine

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/gregor-streaming/gregor/engine/batch"
)

// The transaction coordinator's replicated state will live in the internal
// topic __transaction_state, in Kafka's own record format, as the group
// coordinator's lives in __consumer_offsets (group_store.go): each
// partition of the topic is a raft group, every replica folds the records
// it applies into the coordinator's state, and tools that read the topic
// (kafka-console-consumer with Kafka's TransactionLogMessageFormatter,
// kcat) read what Kafka would have written. This file is the records'
// codec, hand-encoded after Kafka's schemas
// (transaction-coordinator/src/main/resources/common/message/, before 4.0
// core/src/main/resources/common/message/):
//
//   - TransactionLogKey: an int16 key version (0; in Kafka 4 the coordinator
//     record type, TRANSACTION_LOG = 0, the same bytes) and the
//     TransactionalId as a plain string. Never flexible.
//   - TransactionLogValue: an int16 value version, 0 or 1, then ProducerId
//     int64, ProducerEpoch int16, TransactionTimeoutMs int32,
//     TransactionStatus int8, TransactionPartitions (a nullable array of
//     Topic string and PartitionIds []int32),
//     TransactionLastUpdateTimestampMs int64, TransactionStartTimestampMs
//     int64. Version 1 is flexible (compact strings and arrays, a tagged
//     field section after each struct) and carries the tagged fields
//     PreviousProducerId (tag 0, int64, default -1), NextProducerId (tag 1,
//     int64, default -1), ClientTransactionVersion (tag 2, int16, default
//     0; KIP-890) and NextProducerEpoch (tag 3, int16, default -1; KIP-939,
//     Kafka 4.1). A tagged field is written only when it is not its
//     default, in tag order; unknown tags are skipped on reading.
//
// A null value is a tombstone: the transactional id is gone. Kafka writes
// a null TransactionPartitions for an Empty transaction.

// txnStateTopic is Kafka's name for the transaction coordinator's topic.
const txnStateTopic = "__transaction_state"

// Versions of __transaction_state records.
const (
	txnKeyVersion   int16 = 0
	txnValueV0      int16 = 0
	txnValueV1      int16 = 1 // the first flexible version
	txnMaxStringLen       = 0x7fff

	txnTagPreviousProducerID       = 0
	txnTagNextProducerID           = 1
	txnTagClientTransactionVersion = 2
	txnTagNextProducerEpoch        = 3
)

// txnState is Kafka's TransactionState, stored as its id byte.
type txnState int8

// Kafka's TransactionState ids (TransactionState.java).
const (
	txnEmpty             txnState = 0
	txnOngoing           txnState = 1
	txnPrepareCommit     txnState = 2
	txnPrepareAbort      txnState = 3
	txnCompleteCommit    txnState = 4
	txnCompleteAbort     txnState = 5
	txnDead              txnState = 6
	txnPrepareEpochFence txnState = 7
)

var txnStateNames = [...]string{"Empty", "Ongoing", "PrepareCommit", "PrepareAbort", "CompleteCommit",
	"CompleteAbort", "Dead", "PrepareEpochFence"}

// valid reports whether s is one of Kafka's states.
func (s txnState) valid() bool { return s >= txnEmpty && s <= txnPrepareEpochFence }

// String is Kafka's name of the state (what DescribeTransactions and
// ListTransactions report).
func (s txnState) String() string {
	if !s.valid() {
		return fmt.Sprintf("txnState(%d)", int8(s))
	}
	return txnStateNames[s]
}

// txnLogKey is a __transaction_state record key.
type txnLogKey struct {
	transactionalID string
}

// txnLogPartitions is one topic of a transaction (PartitionsSchema).
type txnLogPartitions struct {
	topic      string
	partitions []int32
}

// txnLogValue is a __transaction_state record value. Start from
// newTxnLogValue: the zero value is not the schema's defaults.
type txnLogValue struct {
	producerID         int64
	previousProducerID int64 // tagged, v1+; default -1
	nextProducerID     int64 // tagged, v1+; default -1
	producerEpoch      int16
	nextProducerEpoch  int16 // tagged, v1+; default -1
	timeoutMs          int32
	state              txnState
	// partitions is nil for a null array (as Kafka writes for Empty);
	// an empty non-nil slice is an empty array.
	partitions       []txnLogPartitions
	lastUpdateMs     int64
	startMs          int64
	clientTxnVersion int16 // tagged, v1+; default 0
}

// newTxnLogValue is a value with the schema's defaults.
func newTxnLogValue() txnLogValue {
	return txnLogValue{previousProducerID: -1, nextProducerID: -1, nextProducerEpoch: -1}
}

var (
	errTxnRecordShort    = errors.New("engine: " + txnStateTopic + " record cut short")
	errTxnUnknownVersion = errors.New("engine: " + txnStateTopic + " record of an unknown version")
)

// --- the shared writer and reader of consumer_records.go, with int64 ---

func (w *recWriter) i64(v int64) { w.b = binary.BigEndian.AppendUint64(w.b, uint64(v)) }

func (r *recReader) i64() int64 {
	v := r.take(8)
	if v == nil {
		return 0
	}
	return int64(binary.BigEndian.Uint64(v))
}

// txnReader is recReader remembering its first error, which take
// overwrites with errRecordShort once there is one.
type txnReader struct {
	recReader
	first error
}

// fail records err as r's first error and stops the reading.
func (r *txnReader) fail(err error) {
	if r.err == nil {
		r.first, r.err = err, err
	}
}

// finish is r's first error, or trailing bytes, as errors of this topic.
func (r *txnReader) finish(what string) error {
	err := r.first
	if err == nil {
		err = r.err
	}
	switch {
	case errors.Is(err, errRecordShort):
		return fmt.Errorf("%w (%s)", errTxnRecordShort, what)
	case err != nil:
		return err
	case len(r.b) > 0:
		return fmt.Errorf("engine: %s %s has %d trailing bytes", txnStateTopic, what, len(r.b))
	}
	return nil
}

// txnString reads a non-nullable string: int16 length, or (flexible) a
// compact one. Null, a negative length or one over Kafka's limit is an
// error.
func txnString(r *txnReader, flexible bool, field string) string {
	var n int
	if flexible {
		u := r.uv()
		if r.err != nil {
			return ""
		}
		if u == 0 {
			r.fail(fmt.Errorf("engine: %s: string %s is null", txnStateTopic, field))
			return ""
		}
		if u-1 > txnMaxStringLen {
			r.fail(fmt.Errorf("engine: %s: string %s has length %d", txnStateTopic, field, u-1))
			return ""
		}
		n = int(u - 1)
	} else {
		n = int(r.i16())
		if r.err != nil {
			return ""
		}
		if n < 0 {
			r.fail(fmt.Errorf("engine: %s: string %s has length %d", txnStateTopic, field, n))
			return ""
		}
	}
	return string(r.take(n))
}

// txnArrayLen reads an array length: int32, or (flexible) a compact one.
// -1 is null (only if nullable); any other negative length, or one longer
// than what is left (each element takes a byte at least), is an error.
func txnArrayLen(r *txnReader, flexible, nullable bool, field string) (n int, null bool) {
	var v int64
	if flexible {
		u := r.uv()
		if r.err != nil {
			return 0, false
		}
		if u > uint64(len(r.b))+1 {
			r.fail(errRecordShort)
			return 0, false
		}
		v = int64(u) - 1
	} else {
		v = int64(r.i32())
		if r.err != nil {
			return 0, false
		}
	}
	switch {
	case v == -1 && nullable:
		return 0, true
	case v < 0:
		r.fail(fmt.Errorf("engine: %s: array %s has length %d", txnStateTopic, field, v))
		return 0, false
	case v > int64(len(r.b)):
		r.fail(errRecordShort)
		return 0, false
	}
	return int(v), false
}

// --- keys ---

// encodeTxnKey encodes a key. A transactional id longer than a Kafka
// string can be is an error.
func encodeTxnKey(k txnLogKey) ([]byte, error) {
	if len(k.transactionalID) > txnMaxStringLen {
		return nil, fmt.Errorf("engine: %s: transactional id of %d bytes", txnStateTopic, len(k.transactionalID))
	}
	w := recWriter{b: make([]byte, 0, 4+len(k.transactionalID))}
	w.i16(txnKeyVersion)
	w.str(k.transactionalID)
	return w.b, nil
}

// decodeTxnKey decodes a key. A key of another version is an error
// wrapping errTxnUnknownVersion (a log written by a newer Kafka may hold
// such keys; a reader can skip them, as Kafka does).
func decodeTxnKey(b []byte) (txnLogKey, error) {
	r := txnReader{recReader: recReader{b: b}}
	v := r.i16()
	if r.err == nil && v != txnKeyVersion {
		return txnLogKey{}, fmt.Errorf("%w: key version %d", errTxnUnknownVersion, v)
	}
	k := txnLogKey{transactionalID: txnString(&r, false, "TransactionalId")}
	if err := r.finish("key"); err != nil {
		return txnLogKey{}, err
	}
	return k, nil
}

// --- values ---

// encodeTxnValue encodes v at version (0 or 1). As Kafka's generated
// writer, it refuses a tagged field with a value other than its default
// at version 0, which cannot carry it; and, as Kafka's reader would not
// read them back, an unknown state or a string too long.
func encodeTxnValue(v *txnLogValue, version int16) ([]byte, error) {
	if version != txnValueV0 && version != txnValueV1 {
		return nil, fmt.Errorf("%w: value version %d", errTxnUnknownVersion, version)
	}
	if !v.state.valid() {
		return nil, fmt.Errorf("engine: %s: unknown transaction state %d", txnStateTopic, int8(v.state))
	}
	flexible := version >= txnValueV1
	if !flexible && (v.previousProducerID != -1 || v.nextProducerID != -1 || v.nextProducerEpoch != -1 || v.clientTxnVersion != 0) {
		return nil, fmt.Errorf("engine: %s: tagged fields set at value version 0", txnStateTopic)
	}
	w := recWriter{}
	w.i16(version)
	w.i64(v.producerID)
	w.i16(v.producerEpoch)
	w.i32(v.timeoutMs)
	w.i8(int8(v.state))
	switch {
	case v.partitions == nil && flexible:
		w.uv(0)
	case v.partitions == nil:
		w.i32(-1)
	case flexible:
		w.uv(uint64(len(v.partitions)) + 1)
	default:
		w.i32(int32(len(v.partitions)))
	}
	for _, p := range v.partitions {
		if len(p.topic) > txnMaxStringLen {
			return nil, fmt.Errorf("engine: %s: topic of %d bytes", txnStateTopic, len(p.topic))
		}
		if flexible {
			w.cstr(p.topic)
			w.uv(uint64(len(p.partitions)) + 1)
		} else {
			w.str(p.topic)
			w.i32(int32(len(p.partitions)))
		}
		for _, id := range p.partitions {
			w.i32(id)
		}
		if flexible {
			w.noTags()
		}
	}
	w.i64(v.lastUpdateMs)
	w.i64(v.startMs)
	if flexible {
		n := 0
		for _, set := range []bool{v.previousProducerID != -1, v.nextProducerID != -1, v.clientTxnVersion != 0, v.nextProducerEpoch != -1} {
			if set {
				n++
			}
		}
		w.uv(uint64(n))
		if v.previousProducerID != -1 {
			w.uv(txnTagPreviousProducerID)
			w.uv(8)
			w.i64(v.previousProducerID)
		}
		if v.nextProducerID != -1 {
			w.uv(txnTagNextProducerID)
			w.uv(8)
			w.i64(v.nextProducerID)
		}
		if v.clientTxnVersion != 0 {
			w.uv(txnTagClientTransactionVersion)
			w.uv(2)
			w.i16(v.clientTxnVersion)
		}
		if v.nextProducerEpoch != -1 {
			w.uv(txnTagNextProducerEpoch)
			w.uv(2)
			w.i16(v.nextProducerEpoch)
		}
	}
	return w.b, nil
}

// decodeTxnValue decodes a value and tells its version. It never panics;
// truncated or trailing bytes, an unknown version (wrapping
// errTxnUnknownVersion), a negative length other than a null
// TransactionPartitions, a known tagged field of the wrong size and an
// unknown state are errors. Unknown tagged fields are skipped.
func decodeTxnValue(b []byte) (txnLogValue, int16, error) {
	r := txnReader{recReader: recReader{b: b}}
	version := r.i16()
	if r.err == nil && version != txnValueV0 && version != txnValueV1 {
		return txnLogValue{}, 0, fmt.Errorf("%w: value version %d", errTxnUnknownVersion, version)
	}
	flexible := version >= txnValueV1
	v := newTxnLogValue()
	v.producerID = r.i64()
	v.producerEpoch = r.i16()
	v.timeoutMs = r.i32()
	v.state = txnState(r.i8())
	if r.err == nil && !v.state.valid() {
		return txnLogValue{}, 0, fmt.Errorf("engine: %s: unknown transaction state %d", txnStateTopic, int8(v.state))
	}
	n, null := txnArrayLen(&r, flexible, true, "TransactionPartitions")
	if !null && r.err == nil {
		v.partitions = make([]txnLogPartitions, 0, n)
	}
	for i := 0; i < n && r.err == nil; i++ {
		p := txnLogPartitions{topic: txnString(&r, flexible, "Topic")}
		m, _ := txnArrayLen(&r, flexible, false, "PartitionIds")
		for j := 0; j < m && r.err == nil; j++ {
			p.partitions = append(p.partitions, r.i32())
		}
		if flexible {
			r.tags(nil)
		}
		v.partitions = append(v.partitions, p)
	}
	v.lastUpdateMs = r.i64()
	v.startMs = r.i64()
	if flexible {
		r.tags(func(tag uint64, val []byte) {
			want := 0
			switch tag {
			case txnTagPreviousProducerID, txnTagNextProducerID:
				want = 8
			case txnTagClientTransactionVersion, txnTagNextProducerEpoch:
				want = 2
			default:
				return // a tag of a newer Kafka: skipped
			}
			if len(val) != want {
				r.fail(fmt.Errorf("engine: %s: tagged field %d of %d bytes", txnStateTopic, tag, len(val)))
				return
			}
			switch tag {
			case txnTagPreviousProducerID:
				v.previousProducerID = int64(binary.BigEndian.Uint64(val))
			case txnTagNextProducerID:
				v.nextProducerID = int64(binary.BigEndian.Uint64(val))
			case txnTagClientTransactionVersion:
				v.clientTxnVersion = int16(binary.BigEndian.Uint16(val))
			case txnTagNextProducerEpoch:
				v.nextProducerEpoch = int16(binary.BigEndian.Uint16(val))
			}
		})
	}
	if err := r.finish("value"); err != nil {
		return txnLogValue{}, 0, err
	}
	return v, version, nil
}

// --- records ---

// txnLogRecord encodes one record for the coordinator to append: the
// transactional id's key and its value at version (a nil value: a
// tombstone, which deletes the id).
func txnLogRecord(transactionalID string, v *txnLogValue, version int16) (batch.Record, error) {
	key, err := encodeTxnKey(txnLogKey{transactionalID: transactionalID})
	if err != nil {
		return batch.Record{}, err
	}
	r := batch.Record{Key: key}
	if v != nil {
		if r.Value, err = encodeTxnValue(v, version); err != nil {
			return batch.Record{}, err
		}
	}
	return r, nil
}

// decodeTxnLogRecord decodes one record of the topic: a nil value (with
// version 0) for a tombstone.
func decodeTxnLogRecord(key, value []byte) (id string, v *txnLogValue, version int16, err error) {
	k, err := decodeTxnKey(key)
	if err != nil {
		return "", nil, 0, err
	}
	if value == nil {
		return k.transactionalID, nil, 0, nil
	}
	val, version, err := decodeTxnValue(value)
	if err != nil {
		return "", nil, 0, err
	}
	return k.transactionalID, &val, version, nil
}
