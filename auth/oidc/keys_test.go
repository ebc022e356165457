package oidc_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/auth/oidc"
)

func TestUnknownKeyID(t *testing.T) {
	e := newEnv(t)
	fetches := e.p.jwksFetches.Load
	if got := fetches(); got != 1 {
		t.Fatalf("New fetched the keys %d times, want once", got)
	}
	next := ecKey(t, "key-2")
	raw := next.sign(t, e.claims(nil), nil)

	t.Run("a key id the provider does not publish is refused after a fetch", func(t *testing.T) {
		e.clock.Add(interval)
		_, err := e.verify(raw)
		refused(t, err, raw, latchkey.CodeUnauthenticated, "does not publish")
		if got := fetches(); got != 2 {
			t.Fatalf("fetches = %d, want 2", got)
		}
	})
	t.Run("a key the provider adds is accepted at the next fetch the interval allows", func(t *testing.T) {
		e.p.publish(e.key, next)
		_, err := e.verify(raw)
		refused(t, err, raw, latchkey.CodeUnauthenticated, "does not publish")
		if got := fetches(); got != 2 {
			t.Fatalf("a second unknown key id within the interval fetched: fetches = %d, want 2", got)
		}
		e.clock.Add(interval)
		if id := e.mustVerify(raw); id.Subject == "" {
			t.Fatal("no subject")
		}
		if got := fetches(); got != 3 {
			t.Fatalf("fetches = %d, want 3", got)
		}
	})
	t.Run("a flood of made-up key ids fetches at most once per interval", func(t *testing.T) {
		forger := ecKey(t, "")
		flood := func() {
			var wg sync.WaitGroup
			for i := range 50 {
				wg.Go(func() {
					k := *forger
					k.kid = fmt.Sprintf("made-up-%d", i)
					raw := k.sign(t, e.claims(nil), nil)
					_, err := e.verify(raw)
					refused(t, err, raw, latchkey.CodeUnauthenticated, "does not publish")
				})
			}
			wg.Wait()
		}
		flood()
		if got := fetches(); got != 3 {
			t.Fatalf("fetches = %d, want still 3", got)
		}
		e.clock.Add(interval)
		flood()
		if got := fetches(); got != 4 {
			t.Fatalf("fetches = %d, want 4: one for the whole flood", got)
		}
	})
	t.Run("tokens of the known keys keep working meanwhile", func(t *testing.T) {
		e.mustVerify(e.token(nil))
		e.mustVerify(next.sign(t, e.claims(map[string]any{"sub": "other"}), nil))
	})
}

func TestConcurrentCallersShareOneFetch(t *testing.T) {
	e := newEnv(t)
	gate := make(chan struct{})
	e.p.jwksGate.Store(&gate)
	e.clock.Add(interval)
	next := ecKey(t, "key-2")
	e.p.publish(e.key, next)
	before := e.p.jwksFetches.Load()

	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			raw := next.sign(t, e.claims(map[string]any{"sub": fmt.Sprint(i)}), nil)
			if _, err := e.verify(raw); err != nil {
				t.Errorf("Verify: %v", err)
			}
		})
	}
	waitFor(t, "the fetch to start", func() bool { return e.p.jwksFetches.Load() == before+1 })
	time.Sleep(20 * time.Millisecond) // let the other callers join it
	close(gate)
	wg.Wait()
	if got := e.p.jwksFetches.Load() - before; got != 1 {
		t.Fatalf("20 callers with one new key id fetched %d times, want once", got)
	}
}

func TestCallerThatGivesUpIsToldToRetry(t *testing.T) {
	e := newEnv(t)
	gate := make(chan struct{})
	e.p.jwksGate.Store(&gate)
	e.clock.Add(interval)
	raw := ecKey(t, "key-2").sign(t, e.claims(nil), nil)
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	_, err := e.v.Verify(ctx, raw)
	refused(t, err, raw, latchkey.CodeUnavailable, "retry later")
	close(gate)
	waitFor(t, "the abandoned fetch to finish", func() bool {
		return e.meter.count("latchkey.oidc.jwks.refreshes", "result", "ok") == 2
	})
}

func TestRotation(t *testing.T) {
	e := newEnv(t)
	old := e.token(nil)
	e.mustVerify(old) // and remembered
	next := ecKey(t, "key-2")

	t.Run("a token of the provider's new key is accepted without a restart", func(t *testing.T) {
		e.p.publish(next) // key-1 withdrawn
		e.clock.Add(interval)
		e.mustVerify(next.sign(t, e.claims(nil), nil))
	})
	t.Run("a token of the withdrawn key is refused, remembered or not", func(t *testing.T) {
		_, err := e.verify(old)
		refused(t, err, old, latchkey.CodeUnauthenticated, "does not publish")
	})
}

func TestWithdrawnKeyWithoutNewKeyID(t *testing.T) {
	e := newEnv(t, func(c *oidc.Config) { c.MaxKeyAge = 10 * time.Minute })
	old := e.token(nil)
	e.mustVerify(old)
	e.p.publish(ecKey(t, "key-2")) // key-1 withdrawn; no token names key-2 yet

	e.clock.Add(10 * time.Minute)
	// This call is answered from the cache; the next one that reads the
	// keys finds them too old and fetches in the background.
	e.mustVerify(old)
	e.verify(e.token(nil))
	waitFor(t, "the background fetch", func() bool {
		return e.meter.count("latchkey.oidc.jwks.refreshes", "result", "ok") == 2
	})
	_, err := e.verify(old)
	refused(t, err, old, latchkey.CodeUnauthenticated, "does not publish")
}

func TestKeySetEndpointDown(t *testing.T) {
	e := newEnv(t)
	e.p.jwksDown.Store(true)
	next := ecKey(t, "key-2")
	unknown := next.sign(t, e.claims(nil), nil)

	t.Run("an unknown key id is unavailable: the keys may be out of date", func(t *testing.T) {
		e.clock.Add(interval)
		_, err := e.verify(unknown)
		refused(t, err, unknown, latchkey.CodeUnavailable, "retry later")
		if got := e.meter.count("latchkey.oidc.jwks.refreshes", "result", "failed"); got != 1 {
			t.Fatalf("failed refreshes = %d, want 1", got)
		}
		if log := e.log.String(); !strings.Contains(log, "fetching the provider's keys failed") || strings.Contains(log, unknown) {
			t.Fatalf("the log does not tell of the failed fetch, or repeats the token:\n%s", log)
		}
	})
	t.Run("and stays so within the interval without fetching", func(t *testing.T) {
		before := e.p.jwksFetches.Load()
		_, err := e.verify(unknown)
		refused(t, err, unknown, latchkey.CodeUnavailable, "retry later")
		if got := e.p.jwksFetches.Load(); got != before {
			t.Fatalf("fetched %d times within the interval", got-before)
		}
	})
	t.Run("the keys at hand keep working", func(t *testing.T) {
		checks := oidc.SignatureChecks(e.v)
		e.mustVerify(e.token(nil))
		if oidc.SignatureChecks(e.v) == checks {
			t.Fatal("the token was not checked against the cached key")
		}
	})
	t.Run("even when they are older than MaxKeyAge", func(t *testing.T) {
		e.clock.Add(oidc.DefaultMaxKeyAge)
		e.mustVerify(e.token(nil))
		waitFor(t, "the background fetch to fail", func() bool {
			return e.meter.count("latchkey.oidc.jwks.refreshes", "result", "failed") == 2
		})
		e.mustVerify(e.token(nil))
	})
	t.Run("when the endpoint is back, the new key is accepted", func(t *testing.T) {
		e.p.jwksDown.Store(false)
		e.p.publish(e.key, next)
		e.clock.Add(interval)
		e.mustVerify(next.sign(t, e.claims(nil), nil))
	})
}

func TestProviderDownAtStart(t *testing.T) {
	key := ecKey(t, "key-1")
	p := newFakeProvider(t, key)
	p.discoveryDown.Store(true)
	clk := newClock()
	log := &logBuffer{}
	v, err := oidc.New(t.Context(), oidc.Config{
		Issuer: p.issuer, Audience: audience, Now: clk.Now, RefreshInterval: interval, HTTPClient: p.srv.Client(),
		Logger: slog.New(slog.NewTextHandler(log, nil)),
	})
	if err != nil {
		t.Fatalf("New failed while the provider is down: %v", err)
	}
	if !strings.Contains(log.String(), "discovering the sign-in provider failed") {
		t.Fatalf("the log does not tell of the failed discovery:\n%s", log)
	}
	raw := key.sign(t, map[string]any{"iss": p.issuer, "aud": audience, "sub": "s", "exp": clk.Now().Add(time.Hour).Unix()}, nil)

	t.Run("a JWT is unavailable until the provider is discovered", func(t *testing.T) {
		_, err := v.Verify(t.Context(), raw)
		refused(t, err, raw, latchkey.CodeUnavailable, "cannot be reached")
	})
	t.Run("discovery is tried again at most once per interval", func(t *testing.T) {
		p.discoveryDown.Store(false)
		_, err := v.Verify(t.Context(), raw)
		refused(t, err, raw, latchkey.CodeUnavailable, "cannot be reached")
		if got := p.discoveries.Load(); got != 1 {
			t.Fatalf("discoveries = %d, want 1", got)
		}
	})
	t.Run("once the provider answers, JWTs are verified", func(t *testing.T) {
		clk.Add(interval)
		if _, err := v.Verify(t.Context(), raw); err != nil {
			t.Fatal(err)
		}
		if d, f := p.discoveries.Load(), p.jwksFetches.Load(); d != 2 || f != 1 {
			t.Fatalf("discoveries, fetches = %d, %d; want 2, 1", d, f)
		}
	})
	t.Run("a provider that refuses connections does not stop New", func(t *testing.T) {
		gone := httptest.NewServer(nil)
		gone.Close()
		v, err := oidc.New(t.Context(), oidc.Config{Issuer: gone.URL, Audience: audience, Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		_, err = v.Verify(t.Context(), raw)
		refused(t, err, raw, latchkey.CodeUnavailable, "cannot be reached")
	})
}

func TestKeySetContents(t *testing.T) {
	e := newEnv(t)
	weakRSA, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	weak := &signingKey{kid: "weak", alg: jose.RS256, priv: weakRSA}
	enc := ecKey(t, "enc")
	set := func(keys ...any) string {
		b, err := json.Marshal(map[string]any{"keys": keys})
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	encJWK := enc.public()
	encJWK.Use = "enc"
	oct := map[string]any{"kty": "oct", "kid": "shared", "k": "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA"}

	t.Run("keys that must not be trusted are skipped", func(t *testing.T) {
		e.p.mu.Lock()
		e.p.rawKeys = set(e.key.public(), weak.public(), encJWK, oct, map[string]any{"kty": "EC", "kid": "broken"})
		e.p.mu.Unlock()
		e.clock.Add(interval)
		for _, k := range []*signingKey{weak, enc} {
			raw := k.sign(t, e.claims(nil), nil)
			_, err := e.verify(raw)
			refused(t, err, raw, latchkey.CodeUnauthenticated, "does not publish")
		}
		e.mustVerify(e.token(nil))
		if log := e.log.String(); !strings.Contains(log, "refused=3") {
			t.Fatalf("the log does not count the 3 keys refused (weak, oct, broken; the encryption key is not for us):\n%s", log)
		}
	})
	t.Run("a key set with no usable key keeps the keys at hand", func(t *testing.T) {
		e.p.mu.Lock()
		e.p.rawKeys = set(oct)
		e.p.mu.Unlock()
		e.clock.Add(interval)
		raw := ecKey(t, "key-3").sign(t, e.claims(nil), nil)
		_, err := e.verify(raw)
		refused(t, err, raw, latchkey.CodeUnavailable, "retry later")
		e.mustVerify(e.token(nil))
	})
}

func TestKeysNamedByTheTokenAreNotTrusted(t *testing.T) {
	e := newEnv(t)
	t.Run("a key embedded in the header (jwk) is not used", func(t *testing.T) {
		forger := ecKey(t, e.key.kid) // the provider's key id, the forger's key
		jwk := jose.JSONWebKey{Key: forger.priv, KeyID: forger.kid}
		signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jwk},
			&jose.SignerOptions{EmbedJWK: true})
		if err != nil {
			t.Fatal(err)
		}
		payload, _ := json.Marshal(e.claims(nil))
		jws, err := signer.Sign(payload)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := jws.CompactSerialize()
		_, err = e.verify(raw)
		refused(t, err, raw, latchkey.CodeUnauthenticated, "signature is not valid")
	})
	t.Run("a key set named by the header (jku) is not fetched", func(t *testing.T) {
		evil := newFakeProvider(t, ecKey(t, "evil"))
		forger := evil.keys[0]
		e.clock.Add(interval)
		raw := forger.sign(t, e.claims(nil), map[jose.HeaderKey]any{"jku": evil.issuer + "/keys", "x5u": evil.issuer + "/keys"})
		_, err := e.verify(raw)
		refused(t, err, raw, latchkey.CodeUnauthenticated, "does not publish")
		if n := evil.jwksFetches.Load(); n != 0 {
			t.Fatalf("the key set the token named was fetched %d times", n)
		}
	})
}

func TestRedirectToPlainHTTPIsNotFollowed(t *testing.T) {
	key := ecKey(t, "key-1")
	p := newFakeProvider(t, key)
	p.mu.Lock()
	p.jwksURI = p.issuer + "/moved"
	p.movedTo = "http://keys.example.com/jwks"
	p.mu.Unlock()
	// A transport that would answer for keys.example.com with the real
	// keys, so that only the refusal to follow makes the fetch fail.
	reroute := &rerouteTransport{to: p.srv.Listener.Addr().String()}
	meter := newMeterReader(t)
	v, err := oidc.New(t.Context(), oidc.Config{
		Issuer: p.issuer, Audience: audience, Meter: meter.meter.Meter("test"),
		HTTPClient: &http.Client{Transport: reroute}, Logger: quiet,
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := meter.count("latchkey.oidc.jwks.refreshes", "result", "failed"); got != 1 {
		t.Fatalf("failed refreshes = %d, want 1", got)
	}
	if n := reroute.hits.Load(); n != 0 {
		t.Fatalf("the redirect to plain HTTP was followed %d times", n)
	}
	raw := key.sign(t, map[string]any{"iss": p.issuer, "aud": audience, "sub": "s", "exp": time.Now().Add(time.Hour).Unix()}, nil)
	_, err = v.Verify(t.Context(), raw)
	refused(t, err, raw, latchkey.CodeUnavailable, "retry later")
}

// rerouteTransport sends requests for keys.example.com to the provider's
// key set at to, counting them.
type rerouteTransport struct {
	to   string
	hits atomic.Int64
}

func (rt *rerouteTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Host == "keys.example.com" {
		rt.hits.Add(1)
		r = r.Clone(r.Context())
		r.URL.Host, r.URL.Path, r.Host = rt.to, "/keys", ""
	}
	return http.DefaultTransport.RoundTrip(r)
}

func TestDefaults(t *testing.T) {
	t.Run("a zero RefreshInterval means DefaultRefreshInterval", func(t *testing.T) {
		e := newEnv(t, func(c *oidc.Config) { c.RefreshInterval = 0 })
		raw := ecKey(t, "key-2").sign(t, e.claims(nil), nil)
		// The first unknown key id fetches at once, even just after the
		// first fetch: a provider may rotate at any moment.
		e.verify(raw)
		if got := e.p.jwksFetches.Load(); got != 2 {
			t.Fatalf("%d fetches after the first unknown key id, want 2", got)
		}
		e.clock.Add(oidc.DefaultRefreshInterval - time.Second)
		e.verify(raw)
		if got := e.p.jwksFetches.Load(); got != 2 {
			t.Fatalf("fetched again %v after the last fetch for an unknown key id", oidc.DefaultRefreshInterval-time.Second)
		}
		e.clock.Add(time.Second)
		e.verify(raw)
		if got := e.p.jwksFetches.Load(); got != 3 {
			t.Fatalf("did not fetch again %v after the last fetch for an unknown key id", oidc.DefaultRefreshInterval)
		}
	})
	t.Run("a zero MaxKeyAge means DefaultMaxKeyAge", func(t *testing.T) {
		e := newEnv(t)
		e.clock.Add(oidc.DefaultMaxKeyAge - time.Second)
		e.mustVerify(e.token(nil))
		time.Sleep(20 * time.Millisecond) // a background fetch would have started
		if got := e.p.jwksFetches.Load(); got != 1 {
			t.Fatalf("keys younger than DefaultMaxKeyAge were fetched again")
		}
		e.clock.Add(time.Second)
		e.mustVerify(e.token(nil))
		waitFor(t, "the background fetch", func() bool { return e.p.jwksFetches.Load() == 2 })
	})
	t.Run("MaxLeeway is accepted", func(t *testing.T) {
		e := newEnv(t, func(c *oidc.Config) { c.Leeway = oidc.MaxLeeway })
		e.mustVerify(e.token(map[string]any{"exp": e.clock.Now().Add(-oidc.MaxLeeway + time.Second).Unix()}))
	})
}

func TestEveryDefaultAlgorithm(t *testing.T) {
	e := newEnv(t)
	keys := map[string]*signingKey{}
	for _, alg := range oidc.DefaultAlgorithms() {
		var priv crypto.Signer
		var err error
		switch alg[:2] {
		case "RS", "PS":
			priv = rsaKeys()[0]
		case "ES":
			curve := map[string]elliptic.Curve{"ES256": elliptic.P256(), "ES384": elliptic.P384(), "ES512": elliptic.P521()}[alg]
			priv, err = ecdsa.GenerateKey(curve, rand.Reader)
		default:
			_, priv, err = ed25519.GenerateKey(rand.Reader)
		}
		if err != nil {
			t.Fatal(err)
		}
		keys[alg] = &signingKey{kid: "k-" + alg, alg: jose.SignatureAlgorithm(alg), priv: priv}
	}
	var all []*signingKey
	for _, k := range keys {
		all = append(all, k)
	}
	e.p.publish(all...)
	e.clock.Add(interval)
	for alg, k := range keys {
		t.Run(alg+" is accepted", func(t *testing.T) {
			e.mustVerify(k.sign(t, e.claims(nil), nil))
		})
	}
	t.Run("a key published for one algorithm is not used for another", func(t *testing.T) {
		// The RSA key is published for RS256 only: a PS256 signature by
		// the same key under the RS256 key's id is refused.
		k := *keys["PS256"]
		k.kid = "k-RS256"
		raw := k.sign(t, e.claims(nil), nil)
		_, err := e.verify(raw)
		refused(t, err, raw, latchkey.CodeUnauthenticated, "signature is not valid")
	})
}

func TestKeysWithoutAlgorithm(t *testing.T) {
	e := newEnv(t)
	k := ecKey(t, "bare")
	bare := k.public()
	bare.Algorithm, bare.Use = "", ""
	b, _ := json.Marshal(map[string]any{"keys": []any{bare}})
	e.p.mu.Lock()
	e.p.rawKeys = string(b)
	e.p.mu.Unlock()
	e.clock.Add(interval)
	e.mustVerify(k.sign(t, e.claims(nil), nil))
}

func TestOversizedKeySet(t *testing.T) {
	e := newEnv(t)
	b, _ := json.Marshal(map[string]any{"keys": []any{e.key.public()}, "padding": strings.Repeat("x", 1<<20)})
	e.p.mu.Lock()
	e.p.rawKeys = string(b)
	e.p.mu.Unlock()
	e.clock.Add(interval)
	raw := ecKey(t, "key-2").sign(t, e.claims(nil), nil)
	_, err := e.verify(raw)
	refused(t, err, raw, latchkey.CodeUnavailable, "retry later")
	if !strings.Contains(e.log.String(), "larger than") {
		t.Fatalf("the log does not say the key set is too large:\n%s", e.log)
	}
	e.mustVerify(e.token(nil))
}
