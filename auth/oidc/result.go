package oidc

import (
	"github.com/latchkey/latchkey"
)

// result is what verifying a token found. Each has a fixed name in the
// metrics and, but for resultValid, a fixed public message: nothing of the
// token is ever put in an error, so that an error logged or sent back
// cannot leak a credential.
type result int

const (
	resultValid result = iota
	resultMalformed
	resultAlgorithm
	resultWrongType
	resultUnknownKey
	resultBadSignature
	resultWrongIssuer
	resultWrongAudience
	resultExpired
	resultNotYetValid
	resultUnavailable
	numResults
)

// resultNames name the results in the metrics.
var resultNames = [numResults]string{
	resultValid:         "valid",
	resultMalformed:     "malformed",
	resultAlgorithm:     "algorithm_not_allowed",
	resultWrongType:     "wrong_type",
	resultUnknownKey:    "unknown_key",
	resultBadSignature:  "bad_signature",
	resultWrongIssuer:   "wrong_issuer",
	resultWrongAudience: "wrong_audience",
	resultExpired:       "expired",
	resultNotYetValid:   "not_yet_valid",
	resultUnavailable:   "unavailable",
}

// refusal is a failed verification: its result, the detail for the public
// message (fixed text, never from the token), and the cause for logs.
type refusal struct {
	result result
	detail string
	cause  error
}

func refuse(r result, detail string, cause error) *refusal {
	return &refusal{result: r, detail: detail, cause: cause}
}

// error turns the refusal into the domain's error: unavailable when the
// provider could not be reached (the caller may retry), with its cause for
// the log; unauthenticated otherwise, without one: a bad token is the
// caller's, not the server's trouble, and a cause (go-oidc's words, which
// quote the token's claims) would be logged as an error on every request
// anyone sends.
func (r *refusal) error() *latchkey.Error {
	if r.result == resultUnavailable {
		return &latchkey.Error{Code: latchkey.CodeUnavailable, Message: r.detail, Cause: r.cause}
	}
	return &latchkey.Error{Code: latchkey.CodeUnauthenticated, Message: r.detail}
}
