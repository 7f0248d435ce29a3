package netwire

import (
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ApiVersions (key 18) is answered here, from Config.Versions; the Handler
// never sees it.
//
// Behavior:
//   - Within the table's range: ErrorCode 0 and every key of the table,
//     sorted by key.
//   - Above the table's maximum (KIP-511): the body is not decoded, the
//     answer is a v0 body with UNSUPPORTED_VERSION (35) still listing every
//     key, so the client can retry with a version we speak. Kafka does this.
//   - Below the table's minimum: UNSUPPORTED_VERSION at the client's version.
//   - v3+: ClientSoftwareName and ClientSoftwareVersion must match
//     [a-zA-Z0-9](?:[a-zA-Z0-9\-.]*[a-zA-Z0-9])?, else INVALID_REQUEST (42)
//     with no keys, as Kafka does.
//
//   - v3+: SupportedFeatures and FinalizedFeatures (KIP-584) from
//     Config.Features; a feature finalized at level 0 is left out of
//     FinalizedFeatures, as Kafka does. FinalizedFeaturesEpoch is 1 when
//     any is finalized (the features never change while a broker runs),
//     else -1.
//
// The response header of ApiVersions is always v0 (no tagged fields) even
// for flexible versions, so that a client that does not yet know what we
// speak can read it; appendResponse applies that rule.

// answerApiVersions builds the response to an ApiVersions request.
func (t *versionTable) answerApiVersions(rq request) *kmsg.ApiVersionsResponse {
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.Version = rq.version
	v := t.byKey[apiVersionsKey]
	switch {
	case rq.apiVersionsTooNew:
		resp.Version = 0
		resp.ErrorCode = kerr.UnsupportedVersion.Code
	case rq.version < v.Min:
		resp.ErrorCode = kerr.UnsupportedVersion.Code
	case rq.version >= 3:
		req := rq.kreq.(*kmsg.ApiVersionsRequest)
		if !validSoftwareNameVersion(req.ClientSoftwareName) || !validSoftwareNameVersion(req.ClientSoftwareVersion) {
			resp.ErrorCode = kerr.InvalidRequest.Code
			return resp
		}
	}
	resp.ApiKeys = slices.Clone(t.apiKeys)
	if resp.Version >= 3 {
		resp.FinalizedFeaturesEpoch = -1
		for _, f := range t.features {
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
	return resp
}

// Feature is one KIP-584 feature: supported from Min to Max, finalized at
// Level.
type Feature struct {
	Name            string
	Min, Max, Level int16
}

// validSoftwareNameVersion reports whether s matches Kafka's pattern for
// client software names and versions.
func validSoftwareNameVersion(s string) bool {
	alnum := func(c byte) bool {
		return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
	}
	if s == "" || !alnum(s[0]) || !alnum(s[len(s)-1]) {
		return false
	}
	for i := 1; i < len(s)-1; i++ {
		if c := s[i]; !alnum(c) && c != '-' && c != '.' {
			return false
		}
	}
	return true
}
