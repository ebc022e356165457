// Package token makes, parses and hashes Latchkey API tokens.
//
// A token reads <prefix>_<env>_<key ulid>_<secret><checksum>: the prefix
// from --token-prefix, "live" or "test", the ULID of the key id, 32 base62
// characters of secret (about 190 random bits) and a 6-character base62
// CRC32 of everything before the checksum. The checksum lets a typo or a
// truncated paste be refused before any storage is read; the key id lets the
// store find the key by primary key instead of by hash.
package token

import (
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/latchkey/latchkey"
)

// Lengths of the parts of a token.
const (
	ulidLength     = 26
	SecretLength   = 32 // base62 characters: 32 × log2(62) ≈ 190 bits
	checksumLength = 6  // 62^6 > 2^32, so every CRC32 fits
	displayLength  = 16
)

// ErrMalformed is returned by Parse for a string that is not a well-formed
// token or whose checksum does not match. It says nothing about the input.
var ErrMalformed = errors.New("malformed token")

// Token is a parsed or freshly made API token. Its secret is shown only by
// Reveal: printing a Token with fmt or slog shows a redacted form.
type Token struct {
	Prefix      string
	Environment latchkey.Environment
	ulid        string // the ULID of the key id
	secret      string
}

// New makes a token for the key keyID with a fresh random secret.
func New(prefix string, env latchkey.Environment, keyID string) (Token, error) {
	if err := ValidPrefix(prefix); err != nil {
		return Token{}, err
	}
	if env != latchkey.EnvironmentLive && env != latchkey.EnvironmentTest {
		return Token{}, fmt.Errorf("token environment %d is neither live nor test", env)
	}
	if !latchkey.ValidID(latchkey.PrefixAPIKey, keyID) {
		return Token{}, fmt.Errorf("token key id %q is not an API key id", keyID)
	}
	secret, err := randomBase62(SecretLength)
	if err != nil {
		return Token{}, err
	}
	return Token{Prefix: prefix, Environment: env, ulid: keyID[len(latchkey.PrefixAPIKey)+1:], secret: secret}, nil
}

// Parse checks the shape and checksum of s and splits it into its parts.
// It reads no storage and allocates nothing: it is the cheap first gate of
// every verification, and its result points into s.
func Parse(s string) (Token, error) {
	n := len(s)
	minLength := 2 + 1 + 4 + 1 + ulidLength + 1 + SecretLength + checksumLength
	if n < minLength || n > minLength+6 {
		return Token{}, ErrMalformed
	}
	// The body is everything before the checksum; the checksum covers it.
	body, sum := s[:n-checksumLength], s[n-checksumLength:]
	want := checksum(body)
	if sum != string(want[:]) {
		return Token{}, ErrMalformed
	}
	prefix, rest, ok := strings.Cut(body, "_")
	if !ok || ValidPrefix(prefix) != nil {
		return Token{}, ErrMalformed
	}
	var env latchkey.Environment
	switch {
	case strings.HasPrefix(rest, "live_"):
		env = latchkey.EnvironmentLive
	case strings.HasPrefix(rest, "test_"):
		env = latchkey.EnvironmentTest
	default:
		return Token{}, ErrMalformed
	}
	rest = rest[len("live_"):]
	if len(rest) != ulidLength+1+SecretLength || rest[ulidLength] != '_' {
		return Token{}, ErrMalformed
	}
	ulid, secret := rest[:ulidLength], rest[ulidLength+1:]
	if !latchkey.ValidULID(ulid) || !isBase62(secret) {
		return Token{}, ErrMalformed
	}
	return Token{Prefix: prefix, Environment: env, ulid: ulid, secret: secret}, nil
}

// KeyID returns the id of the key the token belongs to, e.g. "key_01J...".
func (t Token) KeyID() string { return latchkey.PrefixAPIKey + "_" + t.ulid }

// ULID returns the ULID part of the key id. Unlike KeyID it allocates
// nothing, so caches on the hot path are keyed by it.
func (t Token) ULID() string { return t.ulid }

// Secret returns the random part of the token, the input of Hasher.Hash.
func (t Token) Secret() string { return t.secret }

// Reveal returns the whole token. Call it only to put the token in the
// response of Issue, Rotate or CreateAccount, or on the bootstrap line.
func (t Token) Reveal() string {
	body := t.body()
	sum := checksum(body)
	return body + string(sum[:])
}

// DisplayPrefix returns the first 16 characters of the token: enough for a
// person to tell keys apart, far too little to guess the secret from.
func (t Token) DisplayPrefix() string {
	return t.Reveal()[:displayLength]
}

// String returns the token with its secret replaced, so that a Token that
// reaches a log or an error by mistake shows no secret.
func (t Token) String() string {
	return t.Prefix + "_" + t.Environment.String() + "_" + t.ulid + "_[redacted]"
}

// Format makes every fmt verb, %#v and %+v included, print the redacted form.
func (t Token) Format(f fmt.State, _ rune) { fmt.Fprint(f, t.String()) }

// LogValue makes slog print the redacted form.
func (t Token) LogValue() slog.Value { return slog.StringValue(t.String()) }

func (t Token) body() string {
	return t.Prefix + "_" + t.Environment.String() + "_" + t.ulid + "_" + t.secret
}

// ValidPrefix checks a token prefix: 2 to 8 lowercase letters or digits,
// starting with a letter, so that it can never contain the separator.
func ValidPrefix(p string) error {
	if len(p) < 2 || len(p) > 8 || p[0] < 'a' || p[0] > 'z' {
		return fmt.Errorf("token prefix %q must be 2 to 8 lowercase letters or digits, starting with a letter", p)
	}
	for i := 1; i < len(p); i++ {
		if !(p[i] >= 'a' && p[i] <= 'z' || p[i] >= '0' && p[i] <= '9') {
			return fmt.Errorf("token prefix %q must be 2 to 8 lowercase letters or digits, starting with a letter", p)
		}
	}
	return nil
}

// randomBase62 returns n characters drawn uniformly from the base62
// alphabet. Bytes at or above 248 (= 4 × 62) are rejected rather than
// reduced, which would favour the first characters.
func randomBase62(n int) (string, error) {
	out := make([]byte, 0, n)
	buf := make([]byte, n+n/4)
	for len(out) < n {
		if _, err := rand.Read(buf); err != nil {
			return "", fmt.Errorf("read random bytes: %w", err)
		}
		for _, b := range buf {
			if b < 248 && len(out) < n {
				out = append(out, base62Alphabet[b%62])
			}
		}
	}
	return string(out), nil
}
