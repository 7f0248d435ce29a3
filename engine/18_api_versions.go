package engine

import "github.com/twmb/franz-go/pkg/kmsg"

// ApiVersions, versions 0-3. netwire answers ApiVersions itself from
// APIVersions() (including the KIP-511 fallback for a version it does not
// know); this handler exists so an in-process caller gets the same answer.

func init() { regKey(kmsg.ApiVersions, 0, 3, (*Broker).handleApiVersions) }

func (b *Broker) handleApiVersions(token uint64, r *kmsg.ApiVersionsRequest) {
	resp := r.ResponseKind().(*kmsg.ApiVersionsResponse)
	for _, v := range APIVersions() {
		k := kmsg.NewApiVersionsResponseApiKey()
		k.ApiKey, k.MinVersion, k.MaxVersion = v.Key, v.Min, v.Max
		resp.ApiKeys = append(resp.ApiKeys, k)
	}
	b.respond(token, resp)
}

func (b *Broker) respond(token uint64, msg kmsg.Response) {
	b.responses = append(b.responses, Response{Token: token, Msg: msg})
}
