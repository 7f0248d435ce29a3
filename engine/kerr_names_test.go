package engine

import "github.com/twmb/franz-go/pkg/kerr"

func kerrByCode(code int16) string {
	if err := kerr.ErrorForCode(code); err != nil {
		if ke, ok := err.(*kerr.Error); ok {
			return ke.Message
		}
	}
	return ""
}
