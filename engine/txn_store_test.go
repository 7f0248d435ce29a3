package engine

import (
	"bytes"
	"encoding/hex"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/gregor-streaming/gregor/engine/batch"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The golden vectors, by hand from TransactionLogKey.json and
// TransactionLogValue.json (big-endian fixed-width integers; version 0
// strings are an int16 length and the bytes, arrays an int32 count;
// version 1 strings and arrays are compact: an unsigned varint of length+1,
// 0 for null; each flexible struct ends with its tagged fields: a varint
// count, then per field a varint tag, a varint size and the value).
const (
	// Key of "txn-1": version 0, string of 5 bytes.
	goldenTxnKey = `0000 0005 74786e2d31`

	// Value version 0 of producer 1000, epoch 3, timeout 60000 ms,
	// Ongoing, partitions t-0 and t-2, last updated at 1700000000123,
	// started at 1700000000000 (0x18bcfe56800).
	goldenTxnValueV0 = `
		0000                  version 0
		00000000000003e8      ProducerId 1000
		0003                  ProducerEpoch 3
		0000ea60              TransactionTimeoutMs 60000
		01                    TransactionStatus Ongoing
		00000001              TransactionPartitions: 1 topic
		0001 74               Topic "t"
		00000002              PartitionIds: 2
		00000000 00000002     0, 2
		0000018bcfe5687b      TransactionLastUpdateTimestampMs
		0000018bcfe56800      TransactionStartTimestampMs`

	// The same at version 1, with PreviousProducerId 999 and
	// ClientTransactionVersion 2; NextProducerId and NextProducerEpoch are
	// at their default (-1), so not written.
	goldenTxnValueV1 = `
		0001                  version 1
		00000000000003e8      ProducerId 1000
		0003                  ProducerEpoch 3
		0000ea60              TransactionTimeoutMs 60000
		01                    TransactionStatus Ongoing
		02                    TransactionPartitions: compact, 1 topic
		02 74                 Topic: compact "t"
		03                    PartitionIds: compact, 2
		00000000 00000002     0, 2
		00                    the topic's tagged fields: none
		0000018bcfe5687b      TransactionLastUpdateTimestampMs
		0000018bcfe56800      TransactionStartTimestampMs
		02                    2 tagged fields
		00 08 00000000000003e7  tag 0 PreviousProducerId, 8 bytes: 999
		02 02 0002            tag 2 ClientTransactionVersion, 2 bytes: 2`

	// An Empty transaction at version 1: null partitions, no tags.
	goldenTxnValueV1Empty = `
		0001 0000000000000007 0000 00002710 00
		00                    TransactionPartitions: null
		0000000000000001 0000000000000002
		00`
)

// goldenBytes is a golden vector's bytes: the hex groups of each line, up
// to the first word that is not one (the line's comment).
func goldenBytes(t testing.TB, s string) []byte {
	t.Helper()
	var h []string
	for _, line := range strings.Split(s, "\n") {
		for _, f := range strings.Fields(line) {
			if _, err := hex.DecodeString(f); err != nil || len(f)%2 != 0 {
				break // the rest of the line is a comment
			}
			h = append(h, f)
		}
	}
	return unhex(t, strings.Join(h, ""))
}

func goldenValue() txnLogValue {
	v := newTxnLogValue()
	v.producerID, v.producerEpoch, v.timeoutMs, v.state = 1000, 3, 60000, txnOngoing
	v.partitions = []txnLogPartitions{{topic: "t", partitions: []int32{0, 2}}}
	v.lastUpdateMs, v.startMs = 1700000000123, 1700000000000
	return v
}

func goldenValueV1() txnLogValue {
	v := goldenValue()
	v.previousProducerID, v.clientTxnVersion = 999, 2
	return v
}

func goldenEmptyValue() txnLogValue {
	v := newTxnLogValue()
	v.producerID, v.timeoutMs, v.state, v.lastUpdateMs, v.startMs = 7, 10000, txnEmpty, 1, 2
	return v
}

func mustEncodeTxnValue(t testing.TB, v txnLogValue, version int16) []byte {
	t.Helper()
	b, err := encodeTxnValue(&v, version)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestTxnStoreGolden pins the bytes to the ones computed from Kafka's
// schemas, and checks franz-go's kmsg (an independent implementation of
// the same schemas) reads and writes the same.
func TestTxnStoreGolden(t *testing.T) {
	key, err := encodeTxnKey(txnLogKey{transactionalID: "txn-1"})
	if err != nil {
		t.Fatal(err)
	}
	if want := goldenBytes(t, goldenTxnKey); !bytes.Equal(key, want) {
		t.Fatalf("key = %x, want %x", key, want)
	}
	if k, err := decodeTxnKey(key); err != nil || k.transactionalID != "txn-1" {
		t.Fatalf("decodeTxnKey = %+v, %v", k, err)
	}
	kk := kmsg.TxnMetadataKey{Version: 0, TransactionalID: "txn-1"}
	if !bytes.Equal(kk.AppendTo(nil), key) {
		t.Fatalf("kmsg key = %x", kk.AppendTo(nil))
	}

	for _, tc := range []struct {
		name    string
		golden  string
		v       txnLogValue
		version int16
	}{
		{"v0", goldenTxnValueV0, goldenValue(), 0},
		{"v1", goldenTxnValueV1, goldenValueV1(), 1},
		{"v1 empty", goldenTxnValueV1Empty, goldenEmptyValue(), 1},
	} {
		want := goldenBytes(t, tc.golden)
		if got := mustEncodeTxnValue(t, tc.v, tc.version); !bytes.Equal(got, want) {
			t.Errorf("%s: encoded\n%x, want\n%x", tc.name, got, want)
		}
		got, version, err := decodeTxnValue(want)
		if err != nil || version != tc.version || !reflect.DeepEqual(got, tc.v) {
			t.Errorf("%s: decoded %+v v%d, %v; want %+v", tc.name, got, version, err, tc.v)
		}
		if km := toKmsgTxnValue(tc.v, tc.version); !bytes.Equal(km.AppendTo(nil), want) {
			t.Errorf("%s: kmsg encodes\n%x", tc.name, km.AppendTo(nil))
		}
	}
}

func toKmsgTxnValue(v txnLogValue, version int16) kmsg.TxnMetadataValue {
	km := kmsg.NewTxnMetadataValue()
	km.Version = version
	km.ProducerID, km.ProducerEpoch, km.TimeoutMillis = v.producerID, v.producerEpoch, v.timeoutMs
	km.State = kmsg.TransactionState(v.state)
	if v.partitions != nil {
		km.Topics = []kmsg.TxnMetadataValueTopic{}
	}
	for _, p := range v.partitions {
		km.Topics = append(km.Topics, kmsg.TxnMetadataValueTopic{Topic: p.topic, Partitions: p.partitions})
	}
	km.LastUpdateTimestamp, km.StartTimestamp = v.lastUpdateMs, v.startMs
	km.PreviousProducerID, km.NextProducerID = v.previousProducerID, v.nextProducerID
	km.ClientTransactionVersion, km.NextProducerEpoch = v.clientTxnVersion, v.nextProducerEpoch
	return km
}

// sameAsKmsg reports whether kmsg decodes b to v.
func sameAsKmsg(b []byte, v txnLogValue, version int16) bool {
	var km kmsg.TxnMetadataValue
	if err := km.ReadFrom(b); err != nil {
		return false
	}
	want := toKmsgTxnValue(v, version)
	// kmsg keeps unknown tags and reads an empty PartitionIds as nil.
	km.UnknownTags = kmsg.Tags{}
	want.UnknownTags = kmsg.Tags{}
	if len(km.Topics) != len(want.Topics) {
		return false
	}
	for i := range km.Topics {
		km.Topics[i].UnknownTags = kmsg.Tags{}
		if len(want.Topics[i].Partitions) == 0 {
			want.Topics[i].Partitions = nil
		}
		if len(km.Topics[i].Partitions) == 0 {
			km.Topics[i].Partitions = nil
		}
	}
	return reflect.DeepEqual(km, want)
}

func TestTxnStoreRoundTrip(t *testing.T) {
	full := goldenValue()
	full.previousProducerID, full.nextProducerID, full.nextProducerEpoch, full.clientTxnVersion = 5, 6, 7, 2
	full.producerID, full.producerEpoch = -1, -1
	full.state = txnPrepareEpochFence
	full.partitions = []txnLogPartitions{{topic: "a", partitions: []int32{3, 1, 3}}, {topic: "é€😀", partitions: nil},
		{topic: "", partitions: []int32{-1, 1 << 30}}}
	nullParts := goldenValue()
	nullParts.partitions = nil
	emptyParts := goldenValue()
	emptyParts.partitions = []txnLogPartitions{}
	zeroTags := goldenValue()
	zeroTags.previousProducerID, zeroTags.nextProducerID, zeroTags.nextProducerEpoch = 0, 0, 0
	long := goldenValue()
	long.partitions = []txnLogPartitions{{topic: strings.Repeat("x", txnMaxStringLen), partitions: []int32{0}}}

	for _, tc := range []struct {
		name     string
		v        txnLogValue
		versions []int16
	}{
		{"golden", goldenValue(), []int16{0, 1}},
		{"all tags", full, []int16{1}},
		{"null partitions", nullParts, []int16{0, 1}},
		{"empty partitions", emptyParts, []int16{0, 1}},
		{"tags at zero", zeroTags, []int16{1}},
		{"empty state", goldenEmptyValue(), []int16{0, 1}},
		{"longest topic", long, []int16{0, 1}},
	} {
		for _, version := range tc.versions {
			b := mustEncodeTxnValue(t, tc.v, version)
			got, gotVersion, err := decodeTxnValue(b)
			if err != nil || gotVersion != version || !reflect.DeepEqual(got, tc.v) {
				t.Errorf("%s v%d: decoded %+v v%d, %v; want %+v", tc.name, version, got, gotVersion, err, tc.v)
			}
			if !sameAsKmsg(b, tc.v, version) {
				t.Errorf("%s v%d: kmsg reads something else from %x", tc.name, version, b)
			}
			if km := toKmsgTxnValue(tc.v, version); !bytes.Equal(km.AppendTo(nil), b) {
				t.Errorf("%s v%d: kmsg encodes\n%x, we\n%x", tc.name, version, km.AppendTo(nil), b)
			}
		}
	}
	// Null and empty partitions differ on the wire.
	if bytes.Equal(mustEncodeTxnValue(t, nullParts, 0), mustEncodeTxnValue(t, emptyParts, 0)) ||
		bytes.Equal(mustEncodeTxnValue(t, nullParts, 1), mustEncodeTxnValue(t, emptyParts, 1)) {
		t.Error("null and empty partitions encode the same")
	}
}

// TestTxnStoreUnknownTags: tagged fields of a newer Kafka, on the value
// and on a topic, are skipped, whatever their order.
func TestTxnStoreUnknownTags(t *testing.T) {
	b := goldenBytes(t, `
		0001 00000000000003e8 0003 0000ea60 01
		02 02 74 03 00000000 00000002
		01 07 02 abcd         the topic: 1 tagged field, unknown tag 7
		0000018bcfe5687b 0000018bcfe56800
		04                    4 tagged fields
		09 03 616263          unknown tag 9
		02 02 0002            ClientTransactionVersion 2
		00 08 00000000000003e7  PreviousProducerId 999
		1f 00                 unknown tag 31, empty`)
	got, version, err := decodeTxnValue(b)
	if want := goldenValueV1(); err != nil || version != 1 || !reflect.DeepEqual(got, want) {
		t.Fatalf("decoded %+v v%d, %v; want %+v", got, version, err, want)
	}
	// Re-encoded, the unknown tags are gone: the golden bytes.
	if re := mustEncodeTxnValue(t, got, version); !bytes.Equal(re, goldenBytes(t, goldenTxnValueV1)) {
		t.Fatalf("re-encoded %x", re)
	}
	if !sameAsKmsg(b, got, version) {
		t.Fatal("kmsg reads something else")
	}
}

func TestTxnStoreRejects(t *testing.T) {
	v0 := goldenBytes(t, goldenTxnValueV0)
	v1 := goldenBytes(t, goldenTxnValueV1)
	with := func(b []byte, at int, repl ...byte) []byte {
		c := append([]byte(nil), b[:at]...)
		c = append(c, repl...)
		return append(c, b[at+len(repl):]...)
	}
	// Offsets in the golden values: the status byte is at 16, the
	// partitions count at 17.
	for _, tc := range []struct {
		name    string
		b       []byte
		unknown bool
		why     string
	}{
		{"empty", nil, false, "cut short"},
		{"one byte", []byte{0}, false, "cut short"},
		{"version 2", with(v1, 0, 0, 2), true, "unknown version"},
		{"version -1", with(v0, 0, 0xff, 0xff), true, "unknown version"},
		{"trailing byte v0", append(append([]byte(nil), v0...), 0), false, "trailing"},
		{"trailing byte v1", append(append([]byte(nil), v1...), 0), false, "trailing"},
		{"state 8", with(v0, 16, 8), false, "unknown transaction state 8"},
		{"state -1", with(v1, 16, 0xff), false, "unknown transaction state -1"},
		{"partitions -2 v0", with(v0, 17, 0xff, 0xff, 0xff, 0xfe), false, "TransactionPartitions has length -2"},
		{"partitions too many v0", with(v0, 17, 0x7f, 0xff, 0xff, 0xff), false, "cut short"},
		{"partitions too many v1", with(v1, 17, 0xff, 0xff, 0xff, 0xff, 0x0f), false, "cut short"},
		{"topic null v0", with(v0, 21, 0xff, 0xff), false, "Topic has length -1"},
		{"topic null v1", with(v1, 18, 0), false, "Topic is null"},
		{"partition ids null v0", with(v0, 24, 0xff, 0xff, 0xff, 0xff), false, "PartitionIds has length -1"},
		{"partition ids -2 v0", with(v0, 24, 0xff, 0xff, 0xff, 0xfe), false, "PartitionIds has length -2"},
		{"partition ids null v1", with(v1, 20, 0), false, "PartitionIds has length -1"},
		{"tag 0 of 7 bytes", goldenBytes(t, `0001 0000000000000007 0000 00002710 00 00 0000000000000001 0000000000000002
			01 00 07 00000000000001`), false, "tagged field 0 of 7"},
		{"tag 2 of 3 bytes", goldenBytes(t, `0001 0000000000000007 0000 00002710 00 00 0000000000000001 0000000000000002
			01 02 03 000001`), false, "tagged field 2 of 3"},
		{"tag size past the end", goldenBytes(t, `0001 0000000000000007 0000 00002710 00 00 0000000000000001 0000000000000002
			01 09 05 0000`), false, "cut short"},
		{"topic over 0x7fff v1", append(goldenBytes(t, `0001 0000000000000007 0000 00002710 01 02 818002`),
			make([]byte, 0x8000+30)...), false, "Topic has length 32768"},
	} {
		_, _, err := decodeTxnValue(tc.b)
		if err == nil {
			t.Errorf("%s: decoded %x", tc.name, tc.b)
			continue
		}
		if errors.Is(err, errTxnUnknownVersion) != tc.unknown || !strings.Contains(err.Error(), tc.why) {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
	// Every strict prefix of a good value is an error.
	for _, b := range [][]byte{v0, v1, goldenBytes(t, goldenTxnValueV1Empty)} {
		for n := range len(b) {
			if _, _, err := decodeTxnValue(b[:n]); err == nil {
				t.Errorf("decoded the %d-byte prefix of %x", n, b)
			}
		}
	}

	key := goldenBytes(t, goldenTxnKey)
	for _, tc := range []struct {
		name    string
		b       []byte
		unknown bool
	}{
		{"empty", nil, false},
		{"no id", key[:2], false},
		{"short id", key[:len(key)-1], false},
		{"trailing", append(append([]byte(nil), key...), 'x'), false},
		{"null id", unhex(t, "0000 ffff"), false},
		{"version 1", with(key, 0, 0, 1), true},
		{"group metadata key", unhex(t, "0002 0001 67"), true},
	} {
		_, err := decodeTxnKey(tc.b)
		if err == nil || errors.Is(err, errTxnUnknownVersion) != tc.unknown {
			t.Errorf("key %s: %v", tc.name, err)
		}
	}

	// Encoding refuses what Kafka's writer or reader would.
	tagged := goldenValueV1()
	bad := goldenValue()
	bad.state = 8
	longTopic := goldenValue()
	longTopic.partitions[0].topic = strings.Repeat("x", txnMaxStringLen+1)
	for _, tc := range []struct {
		name    string
		v       txnLogValue
		version int16
	}{
		{"tags at v0", tagged, 0},
		{"state 8", bad, 1},
		{"version 2", goldenValue(), 2},
		{"version -1", goldenValue(), -1},
		{"topic too long", longTopic, 1},
	} {
		if b, err := encodeTxnValue(&tc.v, tc.version); err == nil {
			t.Errorf("encode %s: %x", tc.name, b)
		}
	}
	if b, err := encodeTxnKey(txnLogKey{transactionalID: strings.Repeat("x", txnMaxStringLen+1)}); err == nil {
		t.Errorf("encoded a key of %d bytes", len(b))
	}
}

func TestTxnStateNames(t *testing.T) {
	want := []string{"Empty", "Ongoing", "PrepareCommit", "PrepareAbort", "CompleteCommit", "CompleteAbort",
		"Dead", "PrepareEpochFence"}
	for i, name := range want {
		if s := txnState(i); s.String() != name || !s.valid() {
			t.Errorf("txnState(%d) = %q, valid %v", i, s.String(), s.valid())
		}
	}
	for _, s := range []txnState{8, -1, 127} {
		if s.valid() || s.String() == "" {
			t.Errorf("txnState %d valid (%q)", int8(s), s.String())
		}
	}
}

// TestTxnStoreRecord: the records the coordinator appends, in a batch,
// read back; a tombstone has a null value.
func TestTxnStoreRecord(t *testing.T) {
	v := goldenValueV1()
	put, err := txnLogRecord("txn-1", &v, txnValueV1)
	if err != nil {
		t.Fatal(err)
	}
	del, err := txnLogRecord("txn-1", nil, txnValueV1)
	if err != nil {
		t.Fatal(err)
	}
	if del.Value != nil {
		t.Fatalf("tombstone value %x", del.Value)
	}
	if _, err := txnLogRecord("txn-1", &v, txnValueV0); err == nil {
		t.Fatal("a v1-only value made a v0 record")
	}
	recs, err := batch.Records(buildCoordinatorBatch(1, recordsOf(put, del)))
	if err != nil || len(recs) != 2 {
		t.Fatalf("records %d, %v", len(recs), err)
	}
	if !bytes.Equal(recs[0].Key, goldenBytes(t, goldenTxnKey)) || !bytes.Equal(recs[0].Value, goldenBytes(t, goldenTxnValueV1)) {
		t.Fatalf("record = %x / %x", recs[0].Key, recs[0].Value)
	}
	id, got, version, err := decodeTxnLogRecord(recs[0].Key, recs[0].Value)
	if err != nil || id != "txn-1" || version != 1 || got == nil || !reflect.DeepEqual(*got, v) {
		t.Fatalf("decoded %q %+v v%d, %v", id, got, version, err)
	}
	id, got, _, err = decodeTxnLogRecord(recs[1].Key, recs[1].Value)
	if err != nil || id != "txn-1" || got != nil {
		t.Fatalf("tombstone decoded %q %+v, %v", id, got, err)
	}
}

// FuzzTxnStoreRecord decodes arbitrary keys and values: nothing panics,
// whatever decodes re-encodes to bytes that decode the same (and that
// re-encode to themselves), and kmsg reads the same from it.
func FuzzTxnStoreRecord(f *testing.F) {
	f.Add(goldenBytes(f, goldenTxnKey), goldenBytes(f, goldenTxnValueV0))
	f.Add(goldenBytes(f, goldenTxnKey), goldenBytes(f, goldenTxnValueV1))
	f.Add([]byte{0, 0, 0, 0}, goldenBytes(f, goldenTxnValueV1Empty))
	f.Add([]byte{}, []byte{0, 1})
	f.Fuzz(func(t *testing.T, key, value []byte) {
		if k, err := decodeTxnKey(key); err == nil {
			re, err := encodeTxnKey(k)
			if err != nil || !bytes.Equal(re, key) {
				t.Fatalf("key %x decoded to %q re-encodes to %x, %v", key, k.transactionalID, re, err)
			}
		}
		_, _, _, _ = decodeTxnLogRecord(key, value)
		v, version, err := decodeTxnValue(value)
		if err != nil {
			return
		}
		re, err := encodeTxnValue(&v, version)
		if err != nil {
			t.Fatalf("%x decoded to %+v v%d, which does not encode: %v", value, v, version, err)
		}
		v2, version2, err := decodeTxnValue(re)
		if err != nil || version2 != version || !reflect.DeepEqual(v2, v) {
			t.Fatalf("%x decoded to %+v v%d; re-encoded %x decodes to %+v v%d, %v", value, v, version, re, v2, version2, err)
		}
		if re2 := mustEncodeTxnValue(t, v2, version2); !bytes.Equal(re2, re) {
			t.Fatalf("encoding not canonical: %x then %x", re, re2)
		}
		if !sameAsKmsg(value, v, version) {
			t.Fatalf("kmsg reads something else than %+v from %x", v, value)
		}
	})
}
