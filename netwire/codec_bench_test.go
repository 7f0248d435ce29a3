package netwire

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// produceFrame is a v9 (flexible) Produce request for 6 partitions, each
// with 10 KiB of record bytes, framed as a client sends it.
func produceFrame(b *testing.B) []byte {
	req := kmsg.NewPtrProduceRequest()
	req.SetVersion(9)
	req.Acks = -1
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = "bench"
	for p := range 6 {
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Partition, rp.Records = int32(p), make([]byte, 10<<10)
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	body := []byte{0, 0, 0, 0}
	body = binary.BigEndian.AppendUint16(body, uint16(req.Key()))
	body = binary.BigEndian.AppendUint16(body, uint16(req.GetVersion()))
	body = binary.BigEndian.AppendUint32(body, 7)      // correlation id
	body = binary.BigEndian.AppendUint16(body, 0xffff) // null client id
	body = append(body, 0)                             // header tagged fields
	body = req.AppendTo(body)
	binary.BigEndian.PutUint32(body, uint32(len(body)-4))
	return body
}

// BenchmarkDecodeProduceRequest: read and decode one Produce frame the
// way the server does (readRequest: size, header, kmsg body).
func BenchmarkDecodeProduceRequest(b *testing.B) {
	frame := produceFrame(b)
	t, err := newVersionTable([]Version{{Key: 0, Min: 3, Max: 9}, {Key: 18, Min: 0, Max: 3}})
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := readRequest(bytes.NewReader(frame), 1<<30, &t); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEncodeFetchResponse: encode a v12 Fetch response carrying 6
// partitions of 64 KiB of record batches, with the response header.
func BenchmarkEncodeFetchResponse(b *testing.B) {
	resp := kmsg.NewPtrFetchResponse()
	resp.SetVersion(12)
	rt := kmsg.NewFetchResponseTopic()
	rt.Topic = "bench"
	for p := range 6 {
		rp := kmsg.NewFetchResponseTopicPartition()
		rp.Partition, rp.RecordBatches = int32(p), make([]byte, 64<<10)
		rt.Partitions = append(rt.Partitions, rp)
	}
	resp.Topics = append(resp.Topics, rt)
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		buf = appendResponse(buf[:0], 7, resp)
	}
	b.SetBytes(int64(len(buf)))
}
