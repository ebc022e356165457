package oidc

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
)

// Bounds on what is parsed before any signature is checked, so that a huge
// credential costs little.
const (
	// MaxTokenLength is the longest token Verify reads; real ID and access
	// tokens are one or two kilobytes.
	MaxTokenLength = 16 << 10
	// maxHeaderLength bounds the encoded header LooksLikeJWT decodes.
	maxHeaderLength = 4 << 10
)

// LooksLikeJWT reports whether raw has the shape of a JWT in compact
// serialization: three base64url segments separated by dots (the last may
// be empty, as in an unsigned token, so that one is refused as a JWT rather
// than as a malformed API key), whose first decodes to a JSON object with a
// string "alg". It checks no signature and no claim: it only routes a
// bearer credential to JWT or API-key verification. A Latchkey token
// (lk_live_...) never looks like a JWT: it has no dot.
func LooksLikeJWT(raw string) bool {
	_, err := parseHeader(raw)
	return err == nil
}

// header is what Verify reads of a token's JOSE header before the
// signature is checked: enough to refuse an algorithm or a token type.
type header struct {
	Alg string
	Typ string
}

// errShape is the error of a string that is not a compact JWS.
var errShape = errors.New("not three base64url segments")

// parseHeader checks the shape of raw and decodes its header.
func parseHeader(raw string) (header, error) {
	h, rest, ok := strings.Cut(raw, ".")
	if !ok {
		return header{}, errShape
	}
	payload, sig, ok := strings.Cut(rest, ".")
	if !ok || h == "" || payload == "" || len(h) > maxHeaderLength ||
		!base64URL(h) || !base64URL(payload) || !base64URL(sig) {
		return header{}, errShape
	}
	b, err := base64.RawURLEncoding.DecodeString(h)
	if err != nil {
		return header{}, errShape
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(b, &fields); err != nil || fields == nil {
		return header{}, errors.New("the header is not a JSON object")
	}
	var out header
	if err := json.Unmarshal(fields["alg"], &out.Alg); err != nil || out.Alg == "" {
		return header{}, errors.New(`the header has no "alg"`)
	}
	if t, ok := fields["typ"]; ok {
		if err := json.Unmarshal(t, &out.Typ); err != nil {
			return header{}, errors.New(`the header's "typ" is not a string`)
		}
	}
	return out, nil
}

// base64URL reports whether s holds only the unpadded base64url alphabet.
// go-jose would also strip whitespace and accept the JSON serialization;
// both are refused here, so one token has one spelling.
func base64URL(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// notForSignIn reports whether a token of type typ is meant for something
// other than authenticating a caller: a logout token or another security
// event token is signed by the same keys for the same audience, and must
// not be accepted as a sign-in.
func notForSignIn(typ string) bool {
	t := strings.TrimPrefix(strings.ToLower(typ), "application/")
	return t == "logout+jwt" || t == "secevent+jwt" || t == "dpop+jwt"
}

// claims are the claims Verify reads.
type claims struct {
	Issuer        string       `json:"iss"`
	Subject       string       `json:"sub"`
	Audience      audience     `json:"aud"`
	Expiry        *numericDate `json:"exp"`
	NotBefore     *numericDate `json:"nbf"`
	IssuedAt      *numericDate `json:"iat"`
	Email         string       `json:"email"`
	EmailVerified flexibleBool `json:"email_verified"`
	Name          string       `json:"name"`
	// Events marks a security event token (a logout token among them).
	Events json.RawMessage `json:"events"`
	// Confirmation binds the token to a key its bearer must prove (DPoP,
	// mutual TLS); Latchkey checks no such proof.
	Confirmation json.RawMessage `json:"cnf"`
}

// audience is "aud": one string or an array of them.
type audience []string

func (a *audience) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*a = audience{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return fmt.Errorf(`"aud" is neither a string nor an array of strings`)
	}
	*a = many
	return nil
}

// numericDate is a JWT NumericDate: seconds since the epoch, perhaps with
// a fraction.
type numericDate struct{ time.Time }

// maxNumericDate is the end of the year 9999, beyond which a date is
// taken for garbage rather than risk overflowing time arithmetic.
const maxNumericDate = 253402300799

func (d *numericDate) UnmarshalJSON(b []byte) error {
	var f float64
	if err := json.Unmarshal(b, &f); err != nil {
		return fmt.Errorf("a date is not a number")
	}
	if f < 0 || f > maxNumericDate || math.IsNaN(f) {
		return fmt.Errorf("a date is out of range")
	}
	sec, frac := math.Modf(f)
	d.Time = time.Unix(int64(sec), int64(frac*1e9))
	return nil
}

// flexibleBool is a boolean that some providers (Amazon Cognito) send as
// the string "true" or "false".
type flexibleBool bool

func (v *flexibleBool) UnmarshalJSON(b []byte) error {
	switch string(bytes.TrimSpace(b)) {
	case "true", `"true"`:
		*v = true
	case "false", `"false"`, "null":
		*v = false
	default:
		return fmt.Errorf(`"email_verified" is not a boolean`)
	}
	return nil
}
