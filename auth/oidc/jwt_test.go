package oidc_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/auth/oidc"
	"github.com/latchkey/latchkey/token"
)

func TestLooksLikeJWT(t *testing.T) {
	key := ecKey(t, "k")
	signed := key.sign(t, map[string]any{"sub": "s"}, nil)
	parts := strings.Split(signed, ".")
	b64 := base64.RawURLEncoding.EncodeToString
	apiKey, err := token.New("lk", latchkey.EnvironmentLive, latchkey.NewID(latchkey.PrefixAPIKey))
	if err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		raw  string
		want bool
	}{
		"a signed JWT":                   {signed, true},
		"an unsigned JWT":                {parts[0] + "." + parts[1] + ".", true},
		"a Latchkey token":               {apiKey.Reveal(), false},
		"a Latchkey test token":          {"lk_test_01K3ABCDEFGHJKMNPQRSTVWXYZ_09AZaz0123456789ABCDEFGHIJKLmnop2gkivq", false},
		"empty":                          {"", false},
		"two segments":                   {parts[0] + "." + parts[1], false},
		"four segments":                  {signed + ".x", false},
		"an empty payload":               {parts[0] + ".." + parts[2], false},
		"padding":                        {parts[0] + "=." + parts[1] + "." + parts[2], false},
		"standard base64":                {parts[0] + "." + parts[1] + "+/." + parts[2], false},
		"a header that is not JSON":      {b64([]byte("hello")) + "." + parts[1] + "." + parts[2], false},
		"a header that is a JSON string": {b64([]byte(`"alg"`)) + "." + parts[1] + "." + parts[2], false},
		"a header without alg":           {b64([]byte(`{"typ":"JWT"}`)) + "." + parts[1] + "." + parts[2], false},
		"a header whose alg is a number": {b64([]byte(`{"alg":1}`)) + "." + parts[1] + "." + parts[2], false},
		"a header with an empty alg":     {b64([]byte(`{"alg":""}`)) + "." + parts[1] + "." + parts[2], false},
		"the JSON serialization":         {`{"protected":"` + parts[0] + `","payload":"` + parts[1] + `","signature":"` + parts[2] + `"}`, false},
	} {
		t.Run(name, func(t *testing.T) {
			if got := oidc.LooksLikeJWT(tc.raw); got != tc.want {
				t.Fatalf("LooksLikeJWT = %v, want %v", got, tc.want)
			}
		})
	}
}

// FuzzLooksLikeJWT checks that no input makes LooksLikeJWT panic, and
// that nothing with an underscore-separated Latchkey shape (no dot) is
// taken for a JWT.
func FuzzLooksLikeJWT(f *testing.F) {
	for _, s := range []string{
		"eyJhbGciOiJFUzI1NiJ9.e30.", "a.b.c", "..", "lk_live_x", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.",
		"eyJhbGciOnsibmVzdGVkIjp0cnVlfX0.e30.sig",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		looks := oidc.LooksLikeJWT(raw)
		if looks && strings.Count(raw, ".") != 2 {
			t.Fatalf("%q has %d dots but looks like a JWT", raw, strings.Count(raw, "."))
		}
	})
}

// FuzzVerify checks that no input makes Verify panic or succeed (the
// fuzzer cannot sign), that every refusal is a *latchkey.Error of code
// unauthenticated or unavailable, never internal, and that no refusal
// repeats its input.
func FuzzVerify(f *testing.F) {
	key := ecKey(f, "key-1")
	p := newFakeProvider(f, key)
	valid := key.sign(f, map[string]any{"iss": p.issuer, "sub": "s", "aud": audience, "exp": 1 << 40}, nil)
	parts := strings.Split(valid, ".")
	for _, s := range []string{
		valid, parts[0] + "." + parts[1] + ".", parts[0] + ".e30." + parts[2], "e30.e30.e30",
		"eyJhbGciOiJFUzI1NiIsImtpZCI6Im5vcGUifQ.e30.AAAA", "", "lk_live_x", ".", "..", "...",
		"eyJhbGciOiJFUzI1NiJ9." + strings.Repeat("A", 100) + ".",
	} {
		f.Add(s)
	}
	v, err := oidc.New(f.Context(), oidc.Config{Issuer: p.issuer, Audience: audience, HTTPClient: p.srv.Client(), Logger: quiet})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		if raw == valid {
			return
		}
		_, err := v.Verify(t.Context(), raw)
		var le *latchkey.Error
		if !errors.As(err, &le) {
			t.Fatalf("Verify(%q) = %v, want a refusal", raw, err)
		}
		if le.Code != latchkey.CodeUnauthenticated && le.Code != latchkey.CodeUnavailable {
			t.Fatalf("Verify(%q): code %s", raw, le.Code)
		}
		if len(raw) >= 8 && strings.Contains(le.Error(), raw) {
			t.Fatalf("the error repeats the input: %q", le.Error())
		}
	})
}

// FuzzVerifySigned signs whatever payload the fuzzer makes with the
// provider's key, so that the claims are read past the signature: Verify
// must not panic, and whatever it accepts must name the issuer, the
// audience, a subject, and an expiry it has not passed.
func FuzzVerifySigned(f *testing.F) {
	for _, s := range []string{
		`{"iss":"ISS","aud":"latchkey-console","sub":"s","exp":99999999999}`,
		`{"iss":"ISS","aud":["x","latchkey-console"],"sub":"s","exp":99999999999.5,"nbf":1,"iat":1,"email_verified":"true"}`,
		`{"iss":"ISS","aud":"latchkey-console","sub":"s","exp":1e300}`,
		`{"iss":"ISS","aud":"latchkey-console","sub":"","exp":99999999999,"cnf":null,"events":null}`,
		`{"iss":"ISS","aud":"latchkey-console","sub":"s","exp":99999999999,"_claim_names":{"email":"src"}}`,
		`[]`, `null`, `"x"`, ``,
	} {
		f.Add([]byte(s), "JWT")
	}
	key := ecKey(f, "key-1")
	p := newFakeProvider(f, key)
	v, err := oidc.New(f.Context(), oidc.Config{Issuer: p.issuer, Audience: audience, HTTPClient: p.srv.Client(), Logger: quiet})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, payload []byte, typ string) {
		payload = bytes.ReplaceAll(payload, []byte("ISS"), []byte(p.issuer))
		signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: key.priv, KeyID: key.kid}},
			(&jose.SignerOptions{}).WithType(jose.ContentType(typ)))
		if err != nil {
			t.Skip()
		}
		jws, err := signer.Sign(payload)
		if err != nil {
			t.Skip()
		}
		raw, err := jws.CompactSerialize()
		if err != nil {
			t.Skip()
		}
		id, err := v.Verify(t.Context(), raw)
		if err != nil {
			if c := latchkey.ErrorCode(err); c != latchkey.CodeUnauthenticated && c != latchkey.CodeUnavailable {
				t.Fatalf("code %s: %v", c, err)
			}
			return
		}
		var c struct {
			Iss string          `json:"iss"`
			Aud json.RawMessage `json:"aud"`
		}
		if json.Unmarshal(payload, &c) != nil || c.Iss != p.issuer || !strings.Contains(string(c.Aud), audience) {
			t.Fatalf("accepted %s", payload)
		}
		if id.Subject == "" || id.Issuer != p.issuer || !time.Now().Before(id.Expiry.Add(oidc.DefaultLeeway)) {
			t.Fatalf("accepted %s as %+v", payload, id)
		}
	})
}
