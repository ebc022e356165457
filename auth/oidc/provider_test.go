package oidc_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
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
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/auth/oidc"
)

const audience = "latchkey-console"

// fakeProvider is an OpenID Provider reduced to what verification reads:
// a discovery document and a key set, both of which a test can change,
// take down and count.
type fakeProvider struct {
	srv    *httptest.Server
	issuer string

	mu   sync.Mutex
	keys []*signingKey // whose public halves the key set serves
	// issuerInDocument, when set, is the issuer the discovery document
	// names instead of the real one.
	issuerInDocument string
	jwksURI          string
	// rawKeys, when set, is served as the key set instead of keys.
	rawKeys string
	// movedTo is where /moved redirects.
	movedTo string

	discoveryDown, jwksDown atomic.Bool
	// jwksGate, when set, holds each key set request until it is closed.
	jwksGate    atomic.Pointer[chan struct{}]
	discoveries atomic.Int64
	jwksFetches atomic.Int64
}

func newFakeProvider(t testing.TB, keys ...*signingKey) *fakeProvider {
	p := startFakeProvider(keys...)
	t.Cleanup(p.srv.Close)
	return p
}

// startFakeProvider starts a provider that the caller must close.
func startFakeProvider(keys ...*signingKey) *fakeProvider {
	p := &fakeProvider{keys: keys}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", p.serveDiscovery)
	mux.HandleFunc("GET /keys", p.serveKeys)
	mux.HandleFunc("GET /moved", func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		to := p.movedTo
		p.mu.Unlock()
		http.Redirect(w, r, to, http.StatusFound)
	})
	p.srv = httptest.NewServer(mux)
	p.issuer = p.srv.URL
	return p
}

func (p *fakeProvider) serveDiscovery(w http.ResponseWriter, _ *http.Request) {
	p.discoveries.Add(1)
	if p.discoveryDown.Load() {
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	}
	p.mu.Lock()
	issuer, jwks := p.issuer, p.issuer+"/keys"
	if p.issuerInDocument != "" {
		issuer = p.issuerInDocument
	}
	if p.jwksURI != "" {
		jwks = p.jwksURI
	}
	p.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{
		"issuer":                                issuer,
		"authorization_endpoint":                p.issuer + "/authorize",
		"token_endpoint":                        p.issuer + "/token",
		"jwks_uri":                              jwks,
		"id_token_signing_alg_values_supported": []string{"RS256", "ES256"},
	})
}

func (p *fakeProvider) serveKeys(w http.ResponseWriter, r *http.Request) {
	p.jwksFetches.Add(1)
	if gate := p.jwksGate.Load(); gate != nil {
		select {
		case <-*gate:
		case <-r.Context().Done():
			return
		}
	}
	if p.jwksDown.Load() {
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	}
	p.mu.Lock()
	if p.rawKeys != "" {
		body := p.rawKeys
		p.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(body))
		return
	}
	var set jose.JSONWebKeySet
	for _, k := range p.keys {
		set.Keys = append(set.Keys, k.public())
	}
	p.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(set)
}

// publish makes the key set serve exactly keys.
func (p *fakeProvider) publish(keys ...*signingKey) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.keys = keys
}

// signingKey is a provider's private key with its key id.
type signingKey struct {
	kid  string
	alg  jose.SignatureAlgorithm
	priv crypto.Signer
}

func (k *signingKey) public() jose.JSONWebKey {
	return jose.JSONWebKey{Key: k.priv.Public(), KeyID: k.kid, Algorithm: string(k.alg), Use: "sig"}
}

// rsaKeys are made once per test binary: an RSA key takes a while.
var rsaKeys = sync.OnceValue(func() []*rsa.PrivateKey {
	var out []*rsa.PrivateKey
	for range 2 {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		out = append(out, k)
	}
	return out
})

// rsaKey is one of the two RSA keys of the binary, under the id kid.
func rsaKey(kid string, i int) *signingKey {
	return &signingKey{kid: kid, alg: jose.RS256, priv: rsaKeys()[i]}
}

// ecKey is a fresh P-256 key under the id kid.
func ecKey(t testing.TB, kid string) *signingKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return &signingKey{kid: kid, alg: jose.ES256, priv: k}
}

// sign makes a compact JWS of claims with k, with header fields extra.
func (k *signingKey) sign(t testing.TB, claims map[string]any, extra map[jose.HeaderKey]any) string {
	t.Helper()
	raw, err := k.mint(claims, extra)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func (k *signingKey) mint(claims map[string]any, extra map[jose.HeaderKey]any) (string, error) {
	opts := (&jose.SignerOptions{}).WithType("JWT")
	for h, v := range extra {
		opts = opts.WithHeader(h, v)
	}
	jwk := jose.JSONWebKey{Key: k.priv, KeyID: k.kid}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: k.alg, Key: jwk}, opts)
	if err != nil {
		return "", err
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		return "", err
	}
	return jws.CompactSerialize()
}

// clock is a settable clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Unix(1_800_000_000, 0)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// env is a provider, a clock, a meter and a Verifier for them.
type env struct {
	t     *testing.T
	p     *fakeProvider
	clock *clock
	meter *meterReader
	key   *signingKey // the key the provider serves at first
	v     *oidc.Verifier
	cfg   oidc.Config
	log   *logBuffer // what the Verifier logged
}

// interval is the tests' RefreshInterval, other than the default so that
// a test can tell them apart.
const interval = 2 * time.Minute

// newEnv starts a provider serving one EC key and a Verifier for it;
// edit changes the Config first.
func newEnv(t *testing.T, edit ...func(*oidc.Config)) *env {
	t.Helper()
	e := &env{t: t, clock: newClock(), meter: newMeterReader(t), key: ecKey(t, "key-1"), log: &logBuffer{}}
	e.p = newFakeProvider(t, e.key)
	e.cfg = oidc.Config{
		Issuer:          e.p.issuer,
		Audience:        audience,
		Now:             e.clock.Now,
		Meter:           e.meter.meter.Meter("test"),
		RefreshInterval: interval,
		HTTPClient:      e.p.srv.Client(),
		Logger:          slog.New(slog.NewTextHandler(e.log, nil)),
	}
	for _, f := range edit {
		f(&e.cfg)
	}
	v, err := oidc.New(t.Context(), e.cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.v = v
	return e
}

// claims are the claims of a valid token at the clock's time, changed
// by edit (a nil value deletes a claim).
func (e *env) claims(edit map[string]any) map[string]any {
	now := e.clock.Now()
	c := map[string]any{
		"iss":            e.p.issuer,
		"sub":            "248289761001",
		"aud":            audience,
		"exp":            now.Add(time.Hour).Unix(),
		"iat":            now.Unix(),
		"email":          "jane@example.com",
		"email_verified": true,
		"name":           "Jane Doe",
	}
	for k, v := range edit {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	return c
}

// token is a token signed by the provider's first key.
func (e *env) token(edit map[string]any) string {
	return e.key.sign(e.t, e.claims(edit), nil)
}

func (e *env) verify(raw string) (oidc.Identity, error) {
	return e.v.Verify(e.t.Context(), raw)
}

// mustVerify verifies raw and fails the test if it is refused.
func (e *env) mustVerify(raw string) oidc.Identity {
	e.t.Helper()
	id, err := e.verify(raw)
	if err != nil {
		e.t.Fatalf("Verify refused a valid token: %v", err)
	}
	return id
}

// refused checks that err is a *latchkey.Error with code whose message
// says want, and that neither it nor its cause repeats the token raw or a
// part of it.
func refused(t *testing.T, err error, raw string, code latchkey.Code, want string) {
	t.Helper()
	var le *latchkey.Error
	if !errors.As(err, &le) {
		t.Fatalf("err = %v (%T), want a *latchkey.Error", err, err)
	}
	if le.Code != code || !strings.Contains(le.Message, want) {
		t.Fatalf("err = %q, want code %s with a message saying %q", le.Error(), code, want)
	}
	texts := []string{le.Error()}
	if le.Cause != nil {
		texts = append(texts, le.Cause.Error())
	}
	for _, text := range texts {
		for _, part := range append(strings.Split(raw, "."), raw) {
			if len(part) >= 8 && strings.Contains(text, part) {
				t.Fatalf("the error repeats the token: %q", text)
			}
		}
	}
}

// quiet is a logger for tests that do not read the log.
var quiet = slog.New(slog.DiscardHandler)

// logBuffer holds what a logger wrote.
type logBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// waitFor waits until cond holds, for what a background fetch changes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// meterReader is a meter whose counts a test reads back.
type meterReader struct {
	t      *testing.T
	reader *sdkmetric.ManualReader
	meter  *sdkmetric.MeterProvider
}

func newMeterReader(t *testing.T) *meterReader {
	r := sdkmetric.NewManualReader()
	return &meterReader{t: t, reader: r, meter: sdkmetric.NewMeterProvider(sdkmetric.WithReader(r))}
}

// count is the value of the counter name at the point whose attributes
// include every key, value pair of kv; 0 when it never moved.
func (m *meterReader) count(name string, kv ...string) int64 {
	m.t.Helper()
	var rm metricdata.ResourceMetrics
	if err := m.reader.Collect(context.Background(), &rm); err != nil {
		m.t.Fatal(err)
	}
	for _, sm := range rm.ScopeMetrics {
		for _, mt := range sm.Metrics {
			if mt.Name != name {
				continue
			}
			sum, ok := mt.Data.(metricdata.Sum[int64])
			if !ok {
				m.t.Fatalf("%s is a %T, not an int64 counter", name, mt.Data)
			}
		points:
			for _, p := range sum.DataPoints {
				for i := 0; i+1 < len(kv); i += 2 {
					if v, ok := p.Attributes.Value(attribute.Key(kv[i])); !ok || v.AsString() != kv[i+1] {
						continue points
					}
				}
				return p.Value
			}
		}
	}
	return 0
}

// gauge is the value of the int64 gauge name, 0 when absent.
func (m *meterReader) gauge(name string) int64 {
	m.t.Helper()
	var rm metricdata.ResourceMetrics
	if err := m.reader.Collect(context.Background(), &rm); err != nil {
		m.t.Fatal(err)
	}
	for _, sm := range rm.ScopeMetrics {
		for _, mt := range sm.Metrics {
			if g, ok := mt.Data.(metricdata.Gauge[int64]); ok && mt.Name == name && len(g.DataPoints) > 0 {
				return g.DataPoints[0].Value
			}
		}
	}
	return 0
}

// results are the verification counts by result, those that moved.
func (m *meterReader) results() map[string]int64 {
	m.t.Helper()
	var rm metricdata.ResourceMetrics
	if err := m.reader.Collect(context.Background(), &rm); err != nil {
		m.t.Fatal(err)
	}
	out := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, mt := range sm.Metrics {
			if mt.Name != "latchkey.oidc.verifications" {
				continue
			}
			for _, p := range mt.Data.(metricdata.Sum[int64]).DataPoints {
				v, _ := p.Attributes.Value("result")
				if p.Value != 0 {
					out[v.AsString()] = p.Value
				}
			}
		}
	}
	return out
}

func (m *meterReader) String() string { return fmt.Sprint(m.results()) }

// exampleProvider starts a provider for Example, which has no
// *testing.T, and returns its issuer and a function that mints a token
// expiring in d from now. The server lives as long as the test binary.
func exampleProvider() (issuer string, mint func(d time.Duration) string) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	key := &signingKey{kid: "key-1", alg: jose.ES256, priv: priv}
	p := startFakeProvider(key)
	return p.issuer, func(d time.Duration) string {
		raw, err := key.mint(map[string]any{
			"iss": p.issuer, "sub": "248289761001", "aud": audience,
			"exp": time.Now().Add(d).Unix(), "email": "jane@example.com", "email_verified": true,
		}, nil)
		if err != nil {
			panic(err)
		}
		return raw
	}
}
