package oidc_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/auth/oidc"
)

func TestVerify(t *testing.T) {
	e := newEnv(t)
	now := e.clock.Now()

	t.Run("a valid token gives the identity it names", func(t *testing.T) {
		id := e.mustVerify(e.token(nil))
		want := oidc.Identity{
			Issuer: e.p.issuer, Subject: "248289761001", Email: "jane@example.com",
			EmailVerified: true, Name: "Jane Doe", Expiry: now.Add(time.Hour),
		}
		if id != want {
			t.Fatalf("identity = %+v, want %+v", id, want)
		}
	})
	t.Run("an unverified email is reported as such", func(t *testing.T) {
		id := e.mustVerify(e.token(map[string]any{"email_verified": false}))
		if id.EmailVerified || id.Email != "jane@example.com" {
			t.Fatalf("identity = %+v, want the email, unverified", id)
		}
		id = e.mustVerify(e.token(map[string]any{"email_verified": nil, "sub": "no-claim"}))
		if id.EmailVerified {
			t.Fatal("a token without email_verified is reported verified")
		}
	})
	t.Run("email_verified as a string is read as a boolean", func(t *testing.T) {
		for s, want := range map[string]bool{"true": true, "false": false} {
			if id := e.mustVerify(e.token(map[string]any{"email_verified": s})); id.EmailVerified != want {
				t.Fatalf("email_verified %q read as %v", s, id.EmailVerified)
			}
		}
	})
	t.Run("one of several audiences is enough", func(t *testing.T) {
		e.mustVerify(e.token(map[string]any{"aud": []string{"other-api", audience}}))
	})
	t.Run("a token with no key id is checked against the keys", func(t *testing.T) {
		k := *e.key
		k.kid = ""
		e.mustVerify(k.sign(t, e.claims(map[string]any{"sub": "no-kid"}), nil))
	})

	cases := []struct {
		name  string
		edit  map[string]any
		words string
	}{
		{"an expired token is refused", map[string]any{"exp": now.Add(-time.Minute).Unix()}, "expired"},
		{"a token not yet valid is refused", map[string]any{"nbf": now.Add(time.Minute).Unix()}, "not valid yet"},
		{"a token issued in the future is refused", map[string]any{"iat": now.Add(time.Minute).Unix()}, "issued in the future"},
		{"a token of another issuer is refused", map[string]any{"iss": "https://evil.example.com"}, "not issued by " + e.p.issuer},
		{"a token for another audience is refused", map[string]any{"aud": "another-app"}, "audience does not include " + audience},
		{"a token without a subject is refused", map[string]any{"sub": nil}, "no subject"},
		{"a token without an expiry is refused", map[string]any{"exp": nil}, "no expiry"},
		{"a date that is not a number is refused", map[string]any{"exp": "tomorrow"}, "claims are not well-formed"},
		{"a date out of range is refused", map[string]any{"exp": 1e300}, "claims are not well-formed"},
		{"a logout token is refused", map[string]any{"events": map[string]any{"http://schemas.openid.net/event/backchannel-logout": map[string]any{}}}, "security event"},
		{"a token bound to a key is refused", map[string]any{"cnf": map[string]any{"jkt": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"}}, "bound to a key"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			raw := e.token(tc.edit)
			_, err := e.verify(raw)
			refused(t, err, raw, latchkey.CodeUnauthenticated, tc.words)
		})
	}

	t.Run("a token typed for logout is refused", func(t *testing.T) {
		raw := e.key.sign(t, e.claims(nil), map[jose.HeaderKey]any{"typ": "logout+jwt"})
		_, err := e.verify(raw)
		refused(t, err, raw, latchkey.CodeUnauthenticated, "not a sign-in token")
	})
	t.Run("an altered payload fails the signature", func(t *testing.T) {
		raw := e.token(nil)
		parts := strings.Split(raw, ".")
		forged, _ := json.Marshal(e.claims(map[string]any{"sub": "admin"}))
		parts[1] = base64.RawURLEncoding.EncodeToString(forged)
		bad := strings.Join(parts, ".")
		_, err := e.verify(bad)
		refused(t, err, bad, latchkey.CodeUnauthenticated, "signature is not valid")
	})
	t.Run("a key id of one algorithm's key does not check another", func(t *testing.T) {
		// A P-384 key that claims the id of the provider's P-256 key.
		p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		other := &signingKey{kid: e.key.kid, alg: jose.ES384, priv: p384}
		before := e.p.jwksFetches.Load()
		raw := other.sign(t, e.claims(nil), nil)
		_, err = e.verify(raw)
		refused(t, err, raw, latchkey.CodeUnauthenticated, "signature is not valid")
		if got := e.p.jwksFetches.Load(); got != before {
			t.Fatalf("a known key id caused %d fetches", got-before)
		}
	})
}

func TestLeeway(t *testing.T) {
	e := newEnv(t) // the default leeway: 30 s
	now := e.clock.Now()
	t.Run("the leeway admits a little clock skew", func(t *testing.T) {
		for name, edit := range map[string]map[string]any{
			"expired 29 s ago":     {"exp": now.Add(-29 * time.Second).Unix()},
			"valid in 29 s":        {"nbf": now.Add(29 * time.Second).Unix()},
			"issued 29 s from now": {"iat": now.Add(29 * time.Second).Unix()},
		} {
			if _, err := e.verify(e.token(edit)); err != nil {
				t.Errorf("%s: %v", name, err)
			}
		}
	})
	t.Run("and no more", func(t *testing.T) {
		for name, edit := range map[string]map[string]any{
			"expired 30 s ago":     {"exp": now.Add(-30 * time.Second).Unix()},
			"valid in 31 s":        {"nbf": now.Add(31 * time.Second).Unix()},
			"issued 31 s from now": {"iat": now.Add(31 * time.Second).Unix()},
		} {
			if _, err := e.verify(e.token(edit)); latchkey.ErrorCode(err) != latchkey.CodeUnauthenticated {
				t.Errorf("%s: err = %v, want unauthenticated", name, err)
			}
		}
	})
	t.Run("fractions of a second count", func(t *testing.T) {
		exp := float64(now.Add(-oidc.DefaultLeeway).Unix()) + 0.5
		e.mustVerify(e.token(map[string]any{"exp": exp}))
	})
	t.Run("a negative leeway means none", func(t *testing.T) {
		e := newEnv(t, func(c *oidc.Config) { c.Leeway = -1 })
		raw := e.token(map[string]any{"exp": e.clock.Now().Add(-time.Second).Unix()})
		_, err := e.verify(raw)
		refused(t, err, raw, latchkey.CodeUnauthenticated, "expired")
	})
}

func TestAlgorithmConfusion(t *testing.T) {
	key := rsaKey("rsa-1", 0)
	e := newEnv(t)
	e.p.publish(e.key, key)
	e.clock.Add(interval)
	e.mustVerify(key.sign(t, e.claims(nil), nil)) // the RSA key is in use

	t.Run("alg none is refused", func(t *testing.T) {
		for _, alg := range []string{"none", "None", "NONE"} {
			raw := unsigned(t, map[string]any{"alg": alg, "typ": "JWT"}, e.claims(nil))
			if !oidc.LooksLikeJWT(raw) {
				t.Fatal("an unsigned token is not routed as a JWT")
			}
			_, err := e.verify(raw)
			refused(t, err, raw, latchkey.CodeUnauthenticated, "algorithm is not allowed")
		}
	})
	t.Run("HS256 keyed with the RSA public key is refused", func(t *testing.T) {
		der, err := x509.MarshalPKIXPublicKey(key.priv.Public())
		if err != nil {
			t.Fatal(err)
		}
		secrets := [][]byte{pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), der}
		jwk, _ := json.Marshal(key.public())
		secrets = append(secrets, jwk)
		for _, secret := range secrets {
			raw := hmacSigned(t, map[string]any{"alg": "HS256", "typ": "JWT", "kid": key.kid}, e.claims(nil), secret)
			_, err := e.verify(raw)
			refused(t, err, raw, latchkey.CodeUnauthenticated, "algorithm is not allowed")
		}
	})
	t.Run("a Config naming none or HMAC is refused", func(t *testing.T) {
		for _, algs := range [][]string{{"none"}, {"RS256", "HS256"}, {"hs512"}, {"ES256K"}, {"RSA-OAEP"}} {
			cfg := e.cfg
			cfg.Algorithms = algs
			if _, err := oidc.New(t.Context(), cfg); err == nil {
				t.Errorf("New accepted algorithms %v", algs)
			}
		}
	})
	t.Run("an algorithm left out of the Config is refused", func(t *testing.T) {
		e2 := newEnv(t, func(c *oidc.Config) { c.Algorithms = []string{"RS256"} })
		raw := e2.token(nil) // ES256
		_, err := e2.verify(raw)
		refused(t, err, raw, latchkey.CodeUnauthenticated, "allowed: RS256")
	})
}

func TestConfig(t *testing.T) {
	p := newFakeProvider(t, ecKey(t, "k"))
	ok := oidc.Config{Issuer: p.issuer, Audience: audience, HTTPClient: p.srv.Client(), Logger: quiet}
	for name, edit := range map[string]func(*oidc.Config){
		"no issuer":                     func(c *oidc.Config) { c.Issuer = "" },
		"no audience":                   func(c *oidc.Config) { c.Audience = "" },
		"an issuer over http elsewhere": func(c *oidc.Config) { c.Issuer = "http://idp.example.com" },
		"an issuer that is no URL":      func(c *oidc.Config) { c.Issuer = "idp.example.com" },
		"an issuer with a query":        func(c *oidc.Config) { c.Issuer = "https://idp.example.com/?tenant=1" },
		"a leeway of an hour":           func(c *oidc.Config) { c.Leeway = time.Hour },
	} {
		t.Run("New refuses "+name, func(t *testing.T) {
			cfg := ok
			edit(&cfg)
			if _, err := oidc.New(t.Context(), cfg); err == nil {
				t.Fatal("New accepted it")
			}
		})
	}
	t.Run("New refuses a discovery document naming another issuer", func(t *testing.T) {
		p.mu.Lock()
		p.issuerInDocument = p.issuer + "/"
		p.mu.Unlock()
		defer func() { p.mu.Lock(); p.issuerInDocument = ""; p.mu.Unlock() }()
		_, err := oidc.New(t.Context(), ok)
		if err == nil || !strings.Contains(err.Error(), "exactly as the provider spells it") {
			t.Fatalf("err = %v, want the issuer mismatch explained", err)
		}
	})
	t.Run("New refuses keys served over plain HTTP from elsewhere", func(t *testing.T) {
		p.mu.Lock()
		p.jwksURI = "http://keys.example.com/jwks"
		p.mu.Unlock()
		defer func() { p.mu.Lock(); p.jwksURI = ""; p.mu.Unlock() }()
		if _, err := oidc.New(t.Context(), ok); err == nil || !strings.Contains(err.Error(), "jwks_uri") {
			t.Fatalf("err = %v, want the jwks_uri refused", err)
		}
	})
}

func TestLongestToken(t *testing.T) {
	e := newEnv(t)
	parts := strings.Split(e.token(nil), ".")
	raw := parts[0] + "." + strings.Repeat("A", oidc.MaxTokenLength-len(parts[0])-len(parts[2])-2) + "." + parts[2]
	if len(raw) != oidc.MaxTokenLength {
		t.Fatalf("len = %d", len(raw))
	}
	_, err := e.verify(raw)
	if latchkey.ErrorCode(err) != latchkey.CodeUnauthenticated || strings.Contains(err.Error(), "longer than") {
		t.Fatalf("a token of MaxTokenLength: err = %v, want it refused for something else than its length", err)
	}
}

func TestMalformed(t *testing.T) {
	e := newEnv(t)
	valid := e.token(nil)
	parts := strings.Split(valid, ".")
	for name, raw := range map[string]string{
		"empty":                      "",
		"an API key":                 "lk_live_01K3ABCDEFGHJKMNPQRSTVWXYZ_09AZaz0123456789ABCDEFGHIJKLmnop2gkivq",
		"two segments":               parts[0] + "." + parts[1],
		"four segments":              valid + "." + parts[2],
		"padded base64":              parts[0] + "==." + parts[1] + "." + parts[2],
		"whitespace inside":          parts[0] + ".\n" + parts[1] + "." + parts[2],
		"a header that is not JSON":  "bm90IGpzb24." + parts[1] + "." + parts[2],
		"the JSON serialization":     `{"payload":"` + parts[1] + `","protected":"` + parts[0] + `","signature":"` + parts[2] + `"}`,
		"too long":                   parts[0] + "." + strings.Repeat("A", oidc.MaxTokenLength-len(parts[0])-len(parts[2])-1) + "." + parts[2],
		"a payload that is not JSON": parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte("nope")) + "." + parts[2],
	} {
		t.Run(name+" is refused as malformed", func(t *testing.T) {
			_, err := e.verify(raw)
			want := "well-formed"
			if name == "too long" {
				want = "longer than"
			}
			if name == "a payload that is not JSON" {
				want = "signature" // the signature is checked before the payload is read
			}
			refused(t, err, raw, latchkey.CodeUnauthenticated, want)
		})
	}
}

// unsigned is a token with header h, claims c and no signature.
func unsigned(t *testing.T, h, c map[string]any) string {
	t.Helper()
	return segment(t, h) + "." + segment(t, c) + "."
}

// hmacSigned is a token with header h and claims c, MACed with secret.
func hmacSigned(t *testing.T, h, c map[string]any, secret []byte) string {
	t.Helper()
	input := segment(t, h) + "." + segment(t, c)
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(input))
	return input + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

func segment(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}
