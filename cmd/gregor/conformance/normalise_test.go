package conformance

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Normalisation: what may legitimately differ between two brokers that
// answer the same request correctly. Every rule names the field it
// applies to (by its kmsg name, wherever it appears); a step adds its own
// with ignore=(Path.To.Field, ...), a path of kmsg field names from the
// response's top (array indices left out). Rules never drop a whole
// response, and most keep the field's shape: a value replaced by a
// placeholder still shows whether it was null, zero or set.
var fieldRules = map[string]func(any) any{
	// The request's version, already in the step's directive line.
	"Version": drop,
	// Tagged fields neither side understands.
	"UnknownTags": drop,
	// Quotas: not compared.
	"ThrottleMillis": placeholder("<throttle>"),
	// Ids each cluster draws at random.
	"ClusterID":    ifNotNull("<cluster-id>"),
	"TopicID":      uuid,
	"Host":         placeholder("<host>"),
	"Port":         placeholder("<port>"),
	"ClientHost":   placeholder("<host>"),
	"ProducerID":   ifNonNegative("<producer-id>"),
	"ErrorMessage": ifNotNull("<message>"),
	// DescribeConfigs v3+: prose, each broker its own words; whether it
	// is there (null or not) is compared.
	"Documentation": ifNotNull("<documentation>"),
	// Leader epochs: Kafka's count leader changes from 0, Gregor's are
	// raft terms. -1 (unknown) is kept.
	"LeaderEpoch":          ifNonNegative("<epoch>"),
	"PartitionLeaderEpoch": ifNonNegative("<epoch>"),
	// DescribeProducers: the coordinator epoch of a producer's last
	// marker is the leader epoch of the coordinator's __transaction_state
	// partition (Kafka's from 0, Gregor's a raft term). -1 (no marker yet)
	// is kept.
	"CoordinatorEpoch": ifNonNegative("<epoch>"),
	// Times the broker assigns (-1 when it assigned none).
	"LogAppendTime": ifNonNegative("<broker-time>"),
	// DescribeTransactions: when the coordinator began the transaction.
	"StartTimestamp": ifNonNegative("<broker-time>"),
	// KIP-584: the epoch of the finalized features is the metadata
	// log's offset.
	"FinalizedFeaturesEpoch": ifNonNegative("<features-epoch>"),
}

// Member ids each broker draws (JoinGroup, SyncGroup, DescribeGroups,
// LeaveGroup ...): each distinct id a target answers becomes <member-N>,
// N counting from 1 in the order that target first answered them, so a
// step still shows which member is the leader and which one it is.
// Empty stays empty. (LeaderID is also CurrentLeader's node id, a
// number: not a member id.)
var memberIDFields = map[string]bool{"MemberID": true, "LeaderID": true}

// norm is one normalisation: the step's ignored paths and the target's
// member-id aliases (nil: member ids become <member-id>).
type norm struct {
	ignore  map[string]bool
	members map[string]string
	// cluster: the answer is from a cluster of several brokers, where
	// each picks its own leaders, replica orders and controller
	// (clusterRules).
	cluster bool
	// api is the response's API key.
	api int16
}

// clusterRules apply to the answers of clusters of several brokers: which
// broker leads a partition or is the controller, and the order of a
// partition's replicas (its preferred leader first), are each cluster's
// own choice; which brokers hold the replicas and are in sync still
// compare.
var clusterRules = map[string]func(any) any{
	"Leader":          ifNonNegative("<node>"),
	"LeaderID":        ifNonNegative("<node>"), // Produce's and Fetch's CurrentLeader
	"ControllerID":    ifNonNegative("<node>"),
	"Replicas":        sortNumbers,
	"ISR":             sortNumbers,
	"OfflineReplicas": sortNumbers,
}

func sortNumbers(v any) any {
	a, ok := v.([]any)
	if !ok {
		return v
	}
	sort.SliceStable(a, func(i, j int) bool {
		x, _ := a[i].(float64)
		y, _ := a[j].(float64)
		return x < y
	})
	return a
}

func (n *norm) member(v any) any {
	s, ok := v.(string)
	if !ok || s == "" {
		return v
	}
	if n.members == nil {
		return "<member-id>"
	}
	a, ok := n.members[s]
	if !ok {
		a = fmt.Sprintf("<member-%d>", len(n.members)+1)
		n.members[s] = a
	}
	return a
}

// Arrays whose order the protocol leaves open are sorted by the first of
// these fields their elements have (ACL bindings by the whole binding:
// sortArray).
var sortKeys = []string{"ApiKey", "NodeID", "Topic", "Name", "Partition"}

// Fetch and Produce carry record batches as bytes: they are decoded so
// that the comparison is per field (a batch's PartitionLeaderEpoch is the
// leader's epoch, which the rules above normalise).
const batchesField = "RecordBatches"

func drop(any) any { return dropped{} }

type dropped struct{}

func placeholder(s string) func(any) any { return func(any) any { return s } }

func ifNotNull(s string) func(any) any {
	return func(v any) any {
		if v == nil {
			return nil
		}
		return s
	}
}

func ifNonNegative(s string) func(any) any {
	return func(v any) any {
		if f, ok := v.(float64); ok && f >= 0 {
			return s
		}
		return v
	}
}

// uuid: a 16-byte id, all zero (no id) or set.
func uuid(v any) any {
	a, ok := v.([]any)
	if !ok {
		return v
	}
	for _, x := range a {
		if x != 0.0 {
			return "<id>"
		}
	}
	return "<zero-id>"
}

// normalise turns a response into the text a step compares: JSON after
// the rules, ignore being the step's own paths.
func normalise(resp kmsg.Response, n *norm) (string, error) {
	raw, err := json.Marshal(resp)
	if err != nil {
		return "", err
	}
	var v any
	d := json.NewDecoder(bytes.NewReader(raw))
	if err := d.Decode(&v); err != nil {
		return "", err
	}
	v = n.walk(v, "", "")
	var b strings.Builder
	pretty(&b, v, "")
	return b.String(), nil
}

func (n *norm) walk(v any, name, path string) any {
	if n.ignore[path] {
		return "<ignored>"
	}
	if name == batchesField {
		if s, ok := v.(string); ok {
			return decodeBatches(s)
		}
	}
	if _, ok := v.(string); ok && memberIDFields[name] {
		return n.member(v)
	}
	if r := clusterRules[name]; r != nil && n.cluster {
		return r(v)
	}
	if n.cluster && n.api == 0 && path == "Brokers.NodeID" {
		// Produce's leader hints (KIP-951) name each cluster's own
		// leaders.
		return ifNonNegative("<node>")(v)
	}
	if r := fieldRules[name]; r != nil && !(name == "Version" && path != "Version") {
		return r(v)
	}
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			p := k
			if path != "" {
				p = path + "." + k
			}
			w := n.walk(e, k, p)
			if _, ok := w.(dropped); ok {
				delete(x, k)
			} else {
				x[k] = w
			}
		}
		return x
	case []any:
		for i, e := range x {
			x[i] = n.walk(e, "", path)
		}
		sortArray(x)
		return x
	}
	return v
}

func sortArray(a []any) {
	if len(a) < 2 {
		return
	}
	m, ok := a[0].(map[string]any)
	if !ok {
		return
	}
	if _, acl := m["Principal"]; acl || m["ResourcePatternType"] != nil {
		// ACL bindings and resource patterns (DescribeAcls,
		// DeleteAcls): Kafka answers them from a hash set. No one
		// field orders them: the whole element does.
		key := func(i int) string { b, _ := json.Marshal(a[i]); return string(b) }
		sort.SliceStable(a, func(i, j int) bool { return key(i) < key(j) })
		return
	}
	for _, k := range sortKeys {
		if _, ok := m[k]; !ok {
			continue
		}
		key := func(i int) string {
			e, _ := a[i].(map[string]any)
			switch x := e[k].(type) {
			case float64:
				return fmt.Sprintf("%020.0f", x+1e15)
			default:
				return fmt.Sprint(x)
			}
		}
		sort.SliceStable(a, func(i, j int) bool { return key(i) < key(j) })
		return
	}
}

// pretty prints v as JSON with sorted keys, each object or array on one
// line if it fits in 120 columns, else one member per line.
func pretty(b *strings.Builder, v any, indent string) {
	compact := func(v any) string {
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		enc.Encode(v)
		return strings.TrimSuffix(buf.String(), "\n")
	}
	c := compact(v)
	if len(indent)+len(c) <= 120 {
		b.WriteString(c)
		return
	}
	switch x := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		b.WriteString("{\n")
		for i, k := range keys {
			b.WriteString(indent + "  " + compact(k) + ": ")
			pretty(b, x[k], indent+"  ")
			if i < len(keys)-1 {
				b.WriteString(",")
			}
			b.WriteString("\n")
		}
		b.WriteString(indent + "}")
	case []any:
		b.WriteString("[\n")
		for i, e := range x {
			b.WriteString(indent + "  ")
			pretty(b, e, indent+"  ")
			if i < len(x)-1 {
				b.WriteString(",")
			}
			b.WriteString("\n")
		}
		b.WriteString(indent + "]")
	default:
		b.WriteString(c)
	}
}

// decodeBatches turns a fetched record set into its batches, each with its
// header fields and its records (uncompressed batches only; a compressed
// one keeps its records as bytes).
func decodeBatches(s string) any {
	data, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return s
	}
	out := []any{}
	for len(data) >= 12 {
		length := int(int32(binary.BigEndian.Uint32(data[8:])))
		if length < 0 || 12+length > len(data) {
			out = append(out, map[string]any{"Truncated": len(data)})
			break
		}
		raw := data[:12+length]
		data = data[12+length:]
		var rb kmsg.RecordBatch
		if err := rb.ReadFrom(raw); err != nil {
			out = append(out, map[string]any{"Undecodable": err.Error()})
			continue
		}
		var m map[string]any
		j, _ := json.Marshal(rb)
		json.Unmarshal(j, &m)
		m["CRCValid"] = int32(crc32.Checksum(raw[21:], crc32.MakeTable(crc32.Castagnoli))) == rb.CRC
		delete(m, "CRC")
		if rb.Attributes&7 == 0 {
			recs, err := decodeRecords(rb.Records, int(rb.NumRecords))
			if err != nil {
				m["Records"] = "undecodable: " + err.Error()
			} else {
				m["Records"] = recs
			}
		}
		out = append(out, (&norm{}).walk(m, "", ""))
	}
	return out
}

func decodeRecords(b []byte, n int) ([]any, error) {
	varint := func() (int64, error) {
		v, l := binary.Varint(b)
		if l <= 0 {
			return 0, fmt.Errorf("bad varint")
		}
		b = b[l:]
		return v, nil
	}
	bytesField := func() (any, error) {
		l, err := varint()
		if err != nil {
			return nil, err
		}
		if l < 0 {
			return nil, nil
		}
		if int(l) > len(b) {
			return nil, fmt.Errorf("short record")
		}
		v := b[:l]
		b = b[l:]
		if utf8.Valid(v) {
			return string(v), nil
		}
		return base64.StdEncoding.EncodeToString(v), nil
	}
	var out []any
	for range n {
		if _, err := varint(); err != nil { // length
			return nil, err
		}
		if len(b) < 1 {
			return nil, fmt.Errorf("short record")
		}
		attrs := b[0]
		b = b[1:]
		tsDelta, err := varint()
		if err != nil {
			return nil, err
		}
		offDelta, err := varint()
		if err != nil {
			return nil, err
		}
		key, err := bytesField()
		if err != nil {
			return nil, err
		}
		value, err := bytesField()
		if err != nil {
			return nil, err
		}
		if s, ok := value.(string); ok && len(s) > 64 {
			value = fmt.Sprintf("<%d bytes>", len(s))
		}
		nh, err := varint()
		if err != nil {
			return nil, err
		}
		var hs []any
		for range nh {
			hk, err := bytesField()
			if err != nil {
				return nil, err
			}
			hv, err := bytesField()
			if err != nil {
				return nil, err
			}
			hs = append(hs, map[string]any{"Key": hk, "Value": hv})
		}
		out = append(out, map[string]any{"Attributes": attrs, "TimestampDelta": tsDelta,
			"OffsetDelta": offDelta, "Key": key, "Value": value, "Headers": hs})
	}
	if len(b) != 0 {
		return nil, fmt.Errorf("%d bytes after the records", len(b))
	}
	return out, nil
}

// buildBatch is the uncompressed record batch a Produce step sends: one
// record per timestamp, values v0, v1, ... (or valueBytes bytes each).
func buildBatch(timestamps []int64, valueBytes int, producer []int64, transactional bool) []byte {
	var recs []byte
	first, maxTS := timestamps[0], timestamps[0]
	for _, ts := range timestamps {
		first, maxTS = min(first, ts), max(maxTS, ts)
	}
	for i, ts := range timestamps {
		value := []byte(fmt.Sprintf("v%d", i))
		if valueBytes > 0 {
			value = bytes.Repeat([]byte{'x'}, valueBytes)
		}
		r := kmsg.Record{TimestampDelta64: ts - first, OffsetDelta: int32(i), Value: value}
		r.Key = nil
		body := r.AppendTo(nil)[1:] // Length 0 takes one byte
		r.Length = int32(len(body))
		recs = r.AppendTo(recs)
	}
	rb := kmsg.RecordBatch{
		PartitionLeaderEpoch: -1,
		Magic:                2,
		LastOffsetDelta:      int32(len(timestamps) - 1),
		FirstTimestamp:       first,
		MaxTimestamp:         maxTS,
		ProducerID:           -1,
		ProducerEpoch:        -1,
		FirstSequence:        -1,
		NumRecords:           int32(len(timestamps)),
		Records:              recs,
	}
	if producer != nil {
		rb.ProducerID, rb.ProducerEpoch, rb.FirstSequence = producer[0], int16(producer[1]), int32(producer[2])
	}
	if transactional {
		rb.Attributes |= 0x10
	}
	b := rb.AppendTo(nil)
	binary.BigEndian.PutUint32(b[8:], uint32(len(b)-12))
	binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[21:], crc32.MakeTable(crc32.Castagnoli)))
	return b
}
