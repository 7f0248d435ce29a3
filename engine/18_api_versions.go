package engine

import "github.com/twmb/franz-go/pkg/kmsg"

// ApiVersions, versions 0-3. netwire answers ApiVersions itself from
// APIVersions() and Features() (including the KIP-511 fallback for a
// version it does not know); this handler exists so an in-process caller
// gets the same answer.
//
// Features (v3+, KIP-584): transaction.version, supported 0-2 and
// finalized at Config.TransactionVersion; clients use transactions v2
// (KIP-890) only when it is finalized at 2.

func init() { regKey(kmsg.ApiVersions, 0, 3, (*Broker).handleApiVersions) }

func (b *Broker) handleApiVersions(token uint64, r *kmsg.ApiVersionsRequest) {
	resp := r.ResponseKind().(*kmsg.ApiVersionsResponse)
	for _, v := range APIVersions() {
		k := kmsg.NewApiVersionsResponseApiKey()
		k.ApiKey, k.MinVersion, k.MaxVersion = v.Key, v.Min, v.Max
		resp.ApiKeys = append(resp.ApiKeys, k)
	}
	if r.Version >= 3 {
		resp.FinalizedFeaturesEpoch = -1
		for _, f := range b.cfg.Features() {
			sf := kmsg.NewApiVersionsResponseSupportedFeature()
			sf.Name, sf.MinVersion, sf.MaxVersion = f.Name, f.Min, f.Max
			resp.SupportedFeatures = append(resp.SupportedFeatures, sf)
			if f.Level > 0 {
				ff := kmsg.NewApiVersionsResponseFinalizedFeature()
				ff.Name, ff.MinVersionLevel, ff.MaxVersionLevel = f.Name, f.Level, f.Level
				resp.FinalizedFeatures = append(resp.FinalizedFeatures, ff)
				resp.FinalizedFeaturesEpoch = 1
			}
		}
	}
	b.respond(token, resp)
}

// Feature is one KIP-584 feature ApiVersions advertises: supported from
// Min to Max, finalized at Level (0: not finalized).
type Feature struct {
	Name            string
	Min, Max, Level int16
}

// Features are the features this configuration advertises.
func (c Config) Features() []Feature {
	return []Feature{{Name: "transaction.version", Min: 0, Max: 2, Level: c.TransactionVersion}}
}

// txnV2 reports whether transactions v2 (KIP-890) are on.
func (b *Broker) txnV2() bool { return b.cfg.TransactionVersion >= 2 }

func (b *Broker) respond(token uint64, msg kmsg.Response) {
	b.responses = append(b.responses, Response{Token: token, Msg: msg})
}
