package token_test

import (
	"hash/crc32"
	"strings"
	"testing"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/token"
)

// The token format as the README states it, computed here without the
// package: <prefix>_<env>_<key ulid>_<secret><checksum>, the checksum six
// base62 digits (0-9, A-Z, a-z), most significant first, of the CRC32
// (IEEE) of everything before it. Tokens already issued must keep parsing,
// so these are fixed answers, not round trips.

const alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

func crcBase62(body string) string {
	v := crc32.ChecksumIEEE([]byte(body))
	out := make([]byte, 6)
	for i := 5; i >= 0; i-- {
		out[i] = alphabet[v%62]
		v /= 62
	}
	return string(out)
}

// sealed returns body with its checksum: a token whose only possible fault
// is in the body.
func sealed(body string) string { return body + crcBase62(body) }

const (
	goldenULID   = "01K3ABCDEFGHJKMNPQRSTVWXYZ"
	goldenSecret = "09AZaz0123456789ABCDEFGHIJKLmnop" // every edge of the alphabet
)

func TestGoldenToken(t *testing.T) {
	if len(goldenSecret) != token.SecretLength {
		t.Fatal("the golden secret has the wrong length")
	}
	// A fixed known answer (computed apart, with Python's zlib.crc32), so
	// that a change of the checksum's encoding cannot pass by changing both
	// sides of a round trip.
	const known = "lk_live_01K3ABCDEFGHJKMNPQRSTVWXYZ_09AZaz0123456789ABCDEFGHIJKLmnop2gkivq"
	if got := sealed("lk_live_" + goldenULID + "_" + goldenSecret); got != known {
		t.Fatalf("the test's own checksum: %q, want %q", got, known)
	}
	if got, err := token.Parse(known); err != nil || got.Reveal() != known {
		t.Fatalf("Parse(%q) = %v, %v", known, got, err)
	}
	for _, tc := range []struct {
		prefix string
		env    latchkey.Environment
	}{
		{"lk", latchkey.EnvironmentLive},
		{"zz", latchkey.EnvironmentTest},
		{"a1b2c3d4", latchkey.EnvironmentLive}, // the longest prefix
		{"z9", latchkey.EnvironmentLive},
		{"a0", latchkey.EnvironmentTest},
	} {
		raw := sealed(tc.prefix + "_" + tc.env.String() + "_" + goldenULID + "_" + goldenSecret)
		got, err := token.Parse(raw)
		if err != nil {
			t.Errorf("Parse(%q): %v", raw, err)
			continue
		}
		if got.Prefix != tc.prefix || got.Environment != tc.env || got.ULID() != goldenULID ||
			got.KeyID() != "key_"+goldenULID || got.Secret() != goldenSecret || got.Reveal() != raw {
			t.Errorf("Parse(%q) = %s with secret %q", raw, got, got.Secret())
		}
	}
}

func TestParseRefusesWhatTheChecksumCannot(t *testing.T) {
	body := func(prefix, env, ulid, secret string) string {
		return prefix + "_" + env + "_" + ulid + "_" + secret
	}
	cases := map[string]string{
		"prefix too long":        body("a1b2c3d4e", "live", goldenULID, goldenSecret),
		"prefix too short":       body("l", "live", goldenULID, goldenSecret),
		"prefix with uppercase":  body("lK", "live", goldenULID, goldenSecret),
		"unknown environment":    body("lk", "prod", goldenULID, goldenSecret),
		"ulid too short":         body("lk", "live", goldenULID[1:], goldenSecret+"0"),
		"ulid not a ulid":        body("lk", "live", "81K3ABCDEFGHJKMNPQRSTVWXYZ", goldenSecret),
		"ulid with a bad letter": body("lk", "live", "01K3ABCDEFGHJKMNPQRSTVWXYU", goldenSecret),
		"secret too long":        body("lk", "live", goldenULID, goldenSecret+"0"),
		"secret too short":       body("lk", "live", goldenULID, goldenSecret[1:]),
		"separator moved":        "lk_live_" + goldenULID + goldenSecret[:1] + "_" + goldenSecret[1:],
		"no separator":           "lklive" + goldenULID + goldenSecret + "0000",
	}
	// Every character just outside each range of the alphabet, in the secret.
	for _, c := range "/:@[`{_-~ \x00\x7f\xff" {
		secret := goldenSecret[:10] + string(c) + goldenSecret[11:]
		if len(secret) == token.SecretLength {
			cases["secret holding "+string(c)] = body("lk", "live", goldenULID, secret)
		}
	}
	for name, b := range cases {
		raw := sealed(b)
		if got, err := token.Parse(raw); err == nil {
			t.Errorf("%s: Parse(%q) accepted %s", name, raw, got)
		}
	}
	if _, err := token.Parse(sealed(body("lk", "live", goldenULID, goldenSecret))); err != nil {
		t.Fatalf("the unchanged golden token: %v", err)
	}
}

// Tokens made by New follow the same format: the checksum is the one
// above, and the secret is base62.
func TestNewTokensFollowTheFormat(t *testing.T) {
	for _, prefix := range []string{"lk", "abcdefgh"} {
		for range 200 {
			tok, err := token.New(prefix, latchkey.EnvironmentLive, latchkey.NewID(latchkey.PrefixAPIKey))
			if err != nil {
				t.Fatal(err)
			}
			raw := tok.Reveal()
			body := prefix + "_live_" + tok.ULID() + "_" + tok.Secret()
			if raw != sealed(body) {
				t.Fatalf("token %q, want %q", raw, sealed(body))
			}
			if len(tok.Secret()) != token.SecretLength || strings.Trim(tok.Secret(), alphabet) != "" {
				t.Fatalf("secret %q is not %d base62 characters", tok.Secret(), token.SecretLength)
			}
			if tok.DisplayPrefix() != raw[:16] {
				t.Fatalf("DisplayPrefix = %q", tok.DisplayPrefix())
			}
			if got, err := token.Parse(raw); err != nil || got.Reveal() != raw {
				t.Fatalf("Parse(%q) = %v, %v", raw, got, err)
			}
		}
	}
}

// The secret's characters are drawn uniformly: over many secrets every
// character of the alphabet appears, and none far more often than the
// others.
func TestSecretsUseTheWholeAlphabet(t *testing.T) {
	counts := map[rune]int{}
	const tokens = 10_000
	for range tokens {
		tok, err := token.New("lk", latchkey.EnvironmentLive, latchkey.NewID(latchkey.PrefixAPIKey))
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range tok.Secret() {
			counts[c]++
		}
	}
	mean := float64(tokens*token.SecretLength) / 62
	for _, c := range alphabet {
		// 320,000 draws, about 5,161 per character, standard deviation
		// about 71: ±10 % is over seven deviations. Reducing bytes modulo
		// 62 without rejecting 248 and above would favour the first
		// characters by a quarter or more.
		if n := float64(counts[c]); n < 0.9*mean || n > 1.1*mean {
			t.Errorf("character %q drawn %v times, expected about %.0f", c, n, mean)
		}
	}
	if len(counts) != 62 {
		t.Errorf("%d distinct characters in secrets, want 62", len(counts))
	}
}

func TestValidPrefixEdges(t *testing.T) {
	for _, p := range []string{"aa", "zz", "a0", "a9", "az", "za", "abcdefgh", "z0000000"} {
		if err := token.ValidPrefix(p); err != nil {
			t.Errorf("ValidPrefix(%q) = %v", p, err)
		}
	}
	for _, p := range []string{"`a", "{a", "0a", "a/", "a:", "a`", "a{", "aA", "aZ", "abcdefghi", "a"} {
		if err := token.ValidPrefix(p); err == nil {
			t.Errorf("ValidPrefix(%q) accepted", p)
		}
	}
}
