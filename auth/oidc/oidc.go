// Package oidc verifies bearer JWTs issued by one OpenID Provider and turns
// them into an Identity: who the provider says the caller is. It reads no
// store and knows nothing of profiles; binding an identity to a profile is
// the caller's.
//
// Verification is github.com/coreos/go-oidc/v3's (discovery, the
// algorithm allow-list at parse, issuer, audience), with this package's
// key set in place of go-oidc's RemoteKeySet, and its own checks of time
// (exp, nbf and iat with a leeway) and of what a sign-in token must be.
//
// # When the provider is down
//
// API keys must keep working while the provider is unreachable, so New
// fails only on what retrying cannot fix: a bad Config, or a discovery
// document that names another issuer or an unusable jwks_uri. If the
// provider cannot be reached when New runs, New still returns a Verifier;
// every JWT is refused as unavailable (a caller may retry) and discovery is
// tried again on use, at most once per RefreshInterval. Once discovered,
// the provider is never discovered again: a jwks_uri that moves needs a
// restart.
//
// # Keys
//
// The provider's keys are fetched once discovered, and again when a token
// names a key id they do not hold (a rotation), or in the background when
// they are older than MaxKeyAge (so a withdrawn key stops being trusted).
// Fetches start at least RefreshInterval apart whatever causes them, and a
// token naming a key id already held never causes one, so a flood of
// made-up key ids or forged signatures costs the provider at most one
// request per interval. A failed fetch keeps the keys fetched before:
// tokens signed by them keep working. A token whose key id is unknown is
// refused as unauthenticated if the last fetch succeeded (the provider
// does not publish that key), and as unavailable if it failed (the key set
// may be out of date, so the caller should retry rather than sign the
// person out).
//
// # Remembered verifications
//
// A verified token is remembered, keyed by its SHA-256, in a bounded LRU
// until its expiry plus the leeway (as long as a fresh check would accept
// it), so a person's calls do not pay a signature check each time. When a
// fetch finds that the provider withdrew a key, every remembered
// verification is forgotten. A suspension of the person is the caller's
// business (it binds the identity to a profile after Verify), so nothing
// here needs to be forgotten for it.
//
// # Metrics
//
// latchkey.oidc.verifications (by result: valid, malformed,
// algorithm_not_allowed, wrong_type, unknown_key, bad_signature,
// wrong_issuer, wrong_audience, expired, not_yet_valid, unavailable),
// latchkey.oidc.cache.lookups (hit, miss), latchkey.oidc.jwks.refreshes
// and latchkey.oidc.discoveries (ok, failed), and the gauge
// latchkey.oidc.cache.tokens.
package oidc

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
)

// Identity is who a verified token says its bearer is.
type Identity struct {
	// Issuer is the configured issuer, which the token's "iss" matched;
	// with Subject it identifies the person for as long as the provider
	// exists.
	Issuer string
	// Subject is the token's "sub": the provider's id for the person,
	// which never changes.
	Subject string
	// Email is the token's "email", if any. It may change, and the
	// provider may not have checked it: see EmailVerified.
	Email string
	// EmailVerified is the token's "email_verified" (false when absent);
	// what to trust an unverified email with is the caller's policy.
	EmailVerified bool
	// Name is the token's "name", if any.
	Name string
	// Expiry is the token's "exp".
	Expiry time.Time
}

// Verifier verifies bearer JWTs from the provider of its Config. It is
// safe for concurrent use; make one and share it.
type Verifier struct {
	cfg     Config
	algs    []jose.SignatureAlgorithm
	allowed string // the accepted algorithms, for error messages
	m       *metrics
	cache   *cache

	// p is the discovered provider; nil until discovery succeeds.
	p atomic.Pointer[provider]

	// mu guards discovery: one attempt in flight, attempts at least
	// RefreshInterval apart.
	mu          sync.Mutex
	discovering chan struct{}
	lastTry     time.Time
	lastErr     error
}

// provider is what discovery yields.
type provider struct {
	verifier *oidc.IDTokenVerifier
	keys     *keySet
}

// configError is a discovery failure that retrying will not mend.
type configError struct{ err error }

func (e *configError) Error() string { return e.err.Error() }
func (e *configError) Unwrap() error { return e.err }

// New returns a Verifier for cfg. It discovers the provider and fetches
// its keys, waiting at most until ctx ends (and 10 s for each). It fails on
// a bad cfg, or when the provider's discovery document names another
// issuer or no usable jwks_uri; if the provider cannot be reached, it
// returns a Verifier that refuses JWTs as unavailable and tries discovery
// again on use (see the package documentation).
func New(ctx context.Context, cfg Config) (*Verifier, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	v := &Verifier{
		cfg:     cfg,
		allowed: strings.Join(cfg.Algorithms, ", "),
		m:       newMetrics(cfg.Meter),
		cache:   newCache(cfg.CacheSize),
	}
	for _, a := range cfg.Algorithms {
		v.algs = append(v.algs, jose.SignatureAlgorithm(a))
	}
	observeCache(cfg.Meter, v.cache.len)
	p, err := v.provider(ctx)
	var ce *configError
	if errors.As(err, &ce) {
		return nil, fmt.Errorf("oidc: discovering %s: %w", cfg.Issuer, err)
	}
	if p != nil {
		if f := p.keys.start(ctx, false); f != nil {
			select {
			case <-f.done:
			case <-ctx.Done():
			}
		}
	}
	return v, nil
}

// Verify checks raw, a bearer JWT, and returns the identity it proves.
// A refusal is a *latchkey.Error: CodeUnauthenticated with a message that
// says what is wrong (and nothing of the token), or CodeUnavailable when
// the provider or its keys cannot be reached and no key at hand fits, so
// that the caller may retry.
func (v *Verifier) Verify(ctx context.Context, raw string) (Identity, error) {
	id, r := v.verify(ctx, raw)
	if r != nil {
		v.m.results[r.result].add(ctx)
		return Identity{}, r.error()
	}
	v.m.results[resultValid].add(ctx)
	return id, nil
}

func (v *Verifier) verify(ctx context.Context, raw string) (Identity, *refusal) {
	if len(raw) > MaxTokenLength {
		return Identity{}, refuse(resultMalformed, "the bearer token is longer than any JWT Latchkey accepts", nil)
	}
	now := v.cfg.Now()
	h := tokenHash(sha256.Sum256([]byte(raw)))
	if id, ok := v.cache.get(h, now); ok {
		v.m.hit.add(ctx)
		return id, nil
	}
	v.m.miss.add(ctx)

	// The header first: what it names decides whether anything else is
	// worth doing, and whether the provider need be asked at all.
	hdr, err := parseHeader(raw)
	if err != nil {
		return Identity{}, refuse(resultMalformed, "the bearer token is not a well-formed JWT", err)
	}
	if !slices.Contains(v.cfg.Algorithms, hdr.Alg) {
		return Identity{}, refuse(resultAlgorithm, "the JWT's signature algorithm is not allowed (allowed: "+v.allowed+")", nil)
	}
	if notForSignIn(hdr.Typ) {
		return Identity{}, refuse(resultWrongType, "the JWT is not a sign-in token: its type is for logout, security events or proofs of possession", nil)
	}
	p, err := v.provider(ctx)
	if p == nil {
		return Identity{}, refuse(resultUnavailable, "the sign-in provider cannot be reached; retry later", err)
	}

	gen := v.cache.gen()
	a := &attempt{}
	tok, err := p.verifier.Verify(context.WithValue(ctx, attemptKey{}, a), raw)
	if err != nil {
		return Identity{}, v.classify(err, a)
	}
	var c claims
	if err := tok.Claims(&c); err != nil {
		return Identity{}, refuse(resultMalformed, "the JWT's claims are not well-formed", err)
	}
	if r := v.check(&c, now); r != nil {
		return Identity{}, r
	}
	id := Identity{
		Issuer:        v.cfg.Issuer,
		Subject:       c.Subject,
		Email:         c.Email,
		EmailVerified: bool(c.EmailVerified),
		Name:          c.Name,
		Expiry:        c.Expiry.Time,
	}
	v.cache.add(h, verified{identity: id, until: c.Expiry.Add(v.cfg.Leeway)}, gen)
	return id, nil
}

// classify says why go-oidc refused a token: the key set's own refusal if
// it made one; malformed if go-oidc refused before the signature (it
// parses with the same allow-list the header passed); else a claim go-oidc
// checks after the signature, read again from the verified payload.
func (v *Verifier) classify(err error, a *attempt) *refusal {
	if a.refusal != nil {
		return a.refusal
	}
	if !a.verified {
		return refuse(resultMalformed, "the bearer token is not a well-formed JWT", err)
	}
	var c claims
	if json.Unmarshal(a.payload, &c) != nil {
		return refuse(resultMalformed, "the JWT's claims are not well-formed", err)
	}
	if c.Issuer != v.cfg.Issuer {
		return refuse(resultWrongIssuer, "the JWT is not issued by "+v.cfg.Issuer, err)
	}
	if !slices.Contains(c.Audience, v.cfg.Audience) {
		return refuse(resultWrongAudience, "the JWT's audience does not include "+v.cfg.Audience, err)
	}
	return refuse(resultMalformed, "the JWT's claims are not well-formed", err)
}

// check applies what go-oidc leaves to this package: a subject, an expiry,
// the times with the leeway, and that the token is meant for signing in.
func (v *Verifier) check(c *claims, now time.Time) *refusal {
	leeway := v.cfg.Leeway
	switch {
	case c.Subject == "":
		return refuse(resultMalformed, "the JWT has no subject", nil)
	case c.Expiry == nil:
		return refuse(resultMalformed, "the JWT has no expiry", nil)
	case present(c.Events):
		return refuse(resultWrongType, "the JWT is a security event (such as a logout), not a sign-in token", nil)
	case present(c.Confirmation):
		// A token bound to a key (DPoP, mutual TLS) is worth nothing without
		// a proof of that key, which Latchkey does not check: accepting it
		// as a plain bearer token would make a stolen one usable.
		return refuse(resultWrongType, "the JWT is bound to a key (cnf) whose possession Latchkey cannot check", nil)
	case !now.Before(c.Expiry.Add(leeway)):
		return refuse(resultExpired, "the JWT has expired", nil)
	case c.NotBefore != nil && now.Add(leeway).Before(c.NotBefore.Time):
		return refuse(resultNotYetValid, "the JWT is not valid yet (nbf)", nil)
	case c.IssuedAt != nil && now.Add(leeway).Before(c.IssuedAt.Time):
		return refuse(resultNotYetValid, "the JWT is issued in the future (iat)", nil)
	}
	return nil
}

func present(raw json.RawMessage) bool { return len(raw) > 0 && string(raw) != "null" }

// provider returns the discovered provider, discovering it first if no
// attempt ran in the last RefreshInterval; concurrent callers share one
// attempt, which runs detached from ctx's cancellation and ends within
// 10 s. Without a provider, the error says why, if known.
func (v *Verifier) provider(ctx context.Context) (*provider, error) {
	if p := v.p.Load(); p != nil {
		return p, nil
	}
	v.mu.Lock()
	if p := v.p.Load(); p != nil {
		v.mu.Unlock()
		return p, nil
	}
	ch := v.discovering
	if ch == nil {
		now := v.cfg.Now()
		if !v.lastTry.IsZero() && now.Sub(v.lastTry) < v.cfg.RefreshInterval {
			err := v.lastErr
			v.mu.Unlock()
			return nil, err
		}
		v.lastTry = now
		ch = make(chan struct{})
		v.discovering = ch
		go v.runDiscovery(context.WithoutCancel(ctx), ch)
	}
	v.mu.Unlock()
	select {
	case <-ch:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if p := v.p.Load(); p != nil {
		return p, nil
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	return nil, v.lastErr
}

func (v *Verifier) runDiscovery(ctx context.Context, done chan struct{}) {
	ctx, cancel := context.WithTimeout(ctx, fetchTimeout)
	defer cancel()
	p, err := v.discover(ctx)
	v.m.discovered(err == nil)
	v.mu.Lock()
	if err == nil {
		v.p.Store(p)
	}
	v.lastErr = err
	v.discovering = nil
	v.mu.Unlock()
	if err != nil {
		v.cfg.Logger.Warn("oidc: discovering the sign-in provider failed; bearer JWTs are refused as unavailable until it succeeds (tried again on use, at most once per refresh interval)",
			"issuer", v.cfg.Issuer, "error", err)
	}
	close(done)
}

// discover reads the provider's discovery document with go-oidc, which
// checks that it names the configured issuer exactly.
func (v *Verifier) discover(ctx context.Context) (*provider, error) {
	op, err := oidc.NewProvider(oidc.ClientContext(ctx, v.cfg.HTTPClient), v.cfg.Issuer)
	if err != nil {
		var mismatch *oidc.IssuerMismatchError
		if errors.As(err, &mismatch) {
			return nil, &configError{fmt.Errorf("the discovery document names the issuer %q: configure the issuer exactly as the provider spells it", mismatch.Discovered)}
		}
		return nil, err
	}
	var meta struct {
		JWKSURL string `json:"jwks_uri"`
	}
	if err := op.Claims(&meta); err != nil {
		return nil, err
	}
	if meta.JWKSURL == "" {
		return nil, &configError{errors.New("the discovery document has no jwks_uri")}
	}
	if err := checkURL(meta.JWKSURL, true); err != nil {
		return nil, &configError{fmt.Errorf("jwks_uri %q: %w", meta.JWKSURL, err)}
	}
	keys := &keySet{
		url:      meta.JWKSURL,
		client:   v.cfg.HTTPClient,
		algs:     v.algs,
		now:      v.cfg.Now,
		interval: v.cfg.RefreshInterval,
		maxAge:   v.cfg.MaxKeyAge,
		log:      v.cfg.Logger,
		m:        v.m,
		removed:  v.cache.purge,
	}
	verifier := oidc.NewVerifier(v.cfg.Issuer, keys, &oidc.Config{
		ClientID:             v.cfg.Audience,
		SupportedSigningAlgs: v.cfg.Algorithms,
		// Expiry and nbf are checked here, with the configured leeway
		// (go-oidc allows none on exp and five minutes on nbf).
		SkipExpiryCheck: true,
		Now:             v.cfg.Now,
	})
	return &provider{verifier: verifier, keys: keys}, nil
}
