package netwire

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// fuzzMaxFrameBytes keeps fuzz inputs' frames small.
const fuzzMaxFrameBytes = 1 << 16

// allKmsgVersions lists every key kmsg knows at every version it knows, so
// the fuzzer reaches every request decoder, not only the tests' table.
func allKmsgVersions() []Version {
	var vs []Version
	for key := int16(0); key < 1000; key++ {
		if req := kmsg.RequestForKey(key); req != nil {
			max := req.MaxVersion()
			if key == apiVersionsKey {
				max-- // leave one known version above the table for the fallback path
			}
			vs = append(vs, Version{Key: key, Min: 0, Max: max})
		}
	}
	return vs
}

// fuzzSeeds are real encoded request frames (with size prefix).
func fuzzSeeds() [][]byte {
	f := kmsg.NewRequestFormatter(kmsg.FormatterClientID("seed"))
	av0 := kmsg.NewPtrApiVersionsRequest()
	av3 := kmsg.NewPtrApiVersionsRequest()
	av3.Version, av3.ClientSoftwareName, av3.ClientSoftwareVersion = 3, "franz-go", "1.22.3"
	av5 := kmsg.NewPtrApiVersionsRequest()
	av5.Version = 5
	fetch := kmsg.NewPtrFetchRequest()
	fetch.Version = 12
	ft := kmsg.NewFetchRequestTopic()
	ft.Topic = "t"
	ft.Partitions = append(ft.Partitions, kmsg.NewFetchRequestTopicPartition())
	fetch.Topics = append(fetch.Topics, ft)
	reqs := []kmsg.Request{
		av0, av3, av5,
		metadataReq(12, "t"), metadataReq(4, "a", "b"), metadataReq(0),
		produceReq(9, -1, "t"), produceReq(3, 0, "t"),
		fetch,
	}
	var seeds [][]byte
	var all []byte
	for i, r := range reqs {
		frame := f.AppendRequest(nil, r, int32(i+1))
		seeds = append(seeds, frame)
		all = append(all, frame...)
	}
	return append(seeds, all, []byte{0, 0, 0, 0}, []byte{0xff, 0xff, 0xff, 0xff})
}

// FuzzReadRequest feeds arbitrary bytes to readRequest, the server's one
// frame + header + body parse path, frame after frame as a connection
// would. It must never panic, must never return a request outside the
// table, and the response kind of whatever it decodes must encode.
func FuzzReadRequest(f *testing.F) {
	for _, seed := range fuzzSeeds() {
		f.Add(seed)
	}
	tables := make([]versionTable, 0, 2)
	for _, vs := range [][]Version{testVersions, allKmsgVersions()} {
		t, err := newVersionTable(vs)
		if err != nil {
			f.Fatal(err)
		}
		tables = append(tables, t)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for i := range tables {
			vt := &tables[i]
			r := bytes.NewReader(data)
			for {
				rq, err := readRequest(r, fuzzMaxFrameBytes, vt)
				if err != nil {
					if errors.Is(err, io.EOF) && r.Len() != 0 {
						t.Fatalf("io.EOF with %d bytes unread", r.Len())
					}
					break
				}
				v, ok := vt.byKey[rq.key]
				if !ok {
					t.Fatalf("decoded key %d not in table", rq.key)
				}
				if rq.apiVersionsTooNew {
					if rq.key != apiVersionsKey || rq.version <= v.Max {
						t.Fatalf("fallback for key %d v%d", rq.key, rq.version)
					}
				} else if rq.key != apiVersionsKey && (rq.version < v.Min || rq.version > v.Max) {
					t.Fatalf("decoded %s v%d outside table", kmsg.NameForKey(rq.key), rq.version)
				}
				var resp kmsg.Response
				if rq.key == apiVersionsKey {
					resp = vt.answerApiVersions(rq)
				} else {
					resp = rq.kreq.ResponseKind()
				}
				if frame := appendResponse(nil, rq.corr, resp); len(frame) < 8 {
					t.Fatalf("response frame of %d bytes", len(frame))
				}
			}
		}
	})
}
