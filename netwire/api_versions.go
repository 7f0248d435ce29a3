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
// NB: no SupportedFeatures or FinalizedFeatures (KIP-584) are advertised;
// the engine does not have a features table yet.
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
	return resp
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
