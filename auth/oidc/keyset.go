package oidc

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// Bounds on a key set.
const (
	// maxKeySetBytes bounds a JWKS response, so that a broken or hostile
	// endpoint cannot make Latchkey read without end.
	maxKeySetBytes = 1 << 20
	// minRSABits refuses RSA keys too short to trust.
	minRSABits = 2048
)

// keySet is the provider's JSON Web Key Set, fetched from its jwks_uri and
// kept in memory; it implements go-oidc's KeySet. It replaces go-oidc's
// RemoteKeySet, which fetches again for every token whose key id it does
// not hold (and for every bad signature), so that a flood of made-up key
// ids would make Latchkey hammer the provider. Here:
//
//   - a fetch for a token naming a key id the set lacks starts at least
//     RefreshInterval after the last such fetch, and any other fetch (the
//     first, or one for keys past MaxKeyAge) at least RefreshInterval
//     after the last fetch of any cause; concurrent callers share one
//     fetch. So a flood of made-up key ids costs one fetch per interval,
//     and a provider that rotates its key a moment after Latchkey fetched
//     the set is followed at once, not an interval later;
//   - a token naming a key id the set holds never causes a fetch: a bad
//     signature under a known key is a forgery, not a rotation;
//   - a failed fetch keeps the keys fetched before, so the provider's
//     endpoint going down does not stop people who already signed in;
//   - keys older than MaxKeyAge are fetched again in the background, so a
//     key the provider withdrew stops being trusted.
type keySet struct {
	url      string
	client   *http.Client
	algs     []jose.SignatureAlgorithm
	now      func() time.Time
	interval time.Duration
	maxAge   time.Duration
	log      *slog.Logger
	m        *metrics
	// removed is told when a fetch drops a key the set held, so that what
	// was verified with that key is forgotten.
	removed func()

	mu        sync.Mutex
	keys      []jose.JSONWebKey
	fetchedOK time.Time // when keys were fetched; zero until the first success
	lastStart time.Time // when the last fetch started, ok or not
	// lastUnknown is when the last fetch for an unknown key id started.
	lastUnknown time.Time
	lastErr     error // why the last fetch failed; nil after a success
	inflight    *fetch

	// checks counts signature checks, for tests of the cache.
	checks atomic.Int64
}

// fetch is one fetch of the keys, which any number of callers may wait on.
type fetch struct {
	done chan struct{}
}

// attemptKey is the context key of the *attempt that Verify hands through
// go-oidc to the key set.
type attemptKey struct{}

// attempt is how the key set tells Verify why a signature was refused, or
// what it verified: go-oidc keeps only the text of the key set's error, and
// a caller must be told "unknown key" from "provider unreachable" by code.
type attempt struct {
	refusal  *refusal
	payload  []byte // the verified payload
	verified bool
}

// VerifySignature implements oidc.KeySet: it returns the payload of jwt if
// a key of the set verifies its signature.
func (s *keySet) VerifySignature(ctx context.Context, jwt string) ([]byte, error) {
	a, _ := ctx.Value(attemptKey{}).(*attempt)
	if a == nil {
		a = &attempt{}
	}
	payload, r := s.verify(ctx, jwt)
	if r != nil {
		a.refusal = r
		return nil, r.error()
	}
	a.payload, a.verified = payload, true
	return payload, nil
}

func (s *keySet) verify(ctx context.Context, jwt string) ([]byte, *refusal) {
	jws, err := jose.ParseSignedCompact(jwt, s.algs)
	if err != nil {
		return nil, refuse(resultMalformed, "the bearer token is not a well-formed JWT", err)
	}
	if len(jws.Signatures) != 1 {
		return nil, refuse(resultMalformed, "the JWT must carry exactly one signature", nil)
	}
	h := jws.Signatures[0].Protected
	kid, alg := h.KeyID, h.Algorithm

	keys, stale := s.snapshot()
	if stale {
		s.start(ctx, false) // in the background: this token is checked with the keys at hand
	}
	payload, tried, known := s.verifyWith(jws, keys, kid, alg)
	if payload != nil {
		return payload, nil
	}
	// A key id the set holds is not a rotation: refuse without fetching.
	// A token with no key id could be signed by a key the set has not seen
	// yet, so it may fetch like an unknown id.
	if !known {
		if f := s.start(ctx, true); f != nil {
			select {
			case <-f.done:
			case <-ctx.Done():
				return nil, refuse(resultUnavailable, "the sign-in provider's keys could not be fetched in time; retry later", ctx.Err())
			}
		}
		keys, _ = s.snapshot()
		payload, t, k := s.verifyWith(jws, keys, kid, alg)
		if payload != nil {
			return payload, nil
		}
		tried, known = tried || t, k
	}
	if tried || known {
		return nil, refuse(resultBadSignature, "the JWT's signature is not valid", nil)
	}
	if err := s.failure(); err != nil {
		// The set may be out of date: the token may be signed by a key the
		// provider published since, so the caller should retry rather than
		// sign the person out.
		return nil, refuse(resultUnavailable, "the sign-in provider's keys cannot be fetched; retry later", err)
	}
	return nil, refuse(resultUnknownKey, "the JWT is signed with a key the sign-in provider does not publish", nil)
}

// verifyWith tries the keys that fit kid and alg. It returns the payload
// if one verified, whether any was tried, and whether a key has the id kid
// at all (a non-empty kid only).
func (s *keySet) verifyWith(jws *jose.JSONWebSignature, keys []jose.JSONWebKey, kid, alg string) (payload []byte, tried, known bool) {
	for i := range keys {
		k := &keys[i]
		if kid != "" && k.KeyID != kid {
			continue
		}
		known = kid != ""
		if !fits(k, alg) {
			continue
		}
		tried = true
		s.checks.Add(1)
		if p, err := jws.Verify(k); err == nil {
			return p, true, known
		}
	}
	return nil, tried, known
}

// fits reports whether key k may check a signature made with alg: its
// type and curve must be alg's, and so must its own "alg" when it names
// one. go-jose would refuse a wrong type too; checking here keeps a key
// published for one algorithm from being used with another.
func fits(k *jose.JSONWebKey, alg string) bool {
	if k.Algorithm != "" && k.Algorithm != alg {
		return false
	}
	switch pub := k.Key.(type) {
	case *rsa.PublicKey:
		return strings.HasPrefix(alg, "RS") || strings.HasPrefix(alg, "PS")
	case *ecdsa.PublicKey:
		switch alg {
		case "ES256":
			return pub.Curve == elliptic.P256()
		case "ES384":
			return pub.Curve == elliptic.P384()
		case "ES512":
			return pub.Curve == elliptic.P521()
		}
		return false
	case ed25519.PublicKey:
		return alg == "EdDSA"
	}
	return false
}

// snapshot returns the keys and whether they are older than maxAge.
func (s *keySet) snapshot() ([]jose.JSONWebKey, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	stale := !s.fetchedOK.IsZero() && s.now().Sub(s.fetchedOK) >= s.maxAge
	return s.keys, stale
}

// failure is why the last fetch failed, or nil if it succeeded; before
// any fetch succeeded it is never nil.
func (s *keySet) failure() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lastErr == nil && s.fetchedOK.IsZero() {
		return errors.New("the keys were never fetched")
	}
	return s.lastErr
}

// start returns the fetch in flight, or starts one if the rate limit
// allows it (see keySet); nil means it allows none now. unknown says the
// fetch is for a token naming a key id the set lacks. The fetch runs
// detached from ctx's cancellation (other callers may wait on it) but
// keeps its values, and ends within fetchTimeout.
func (s *keySet) start(ctx context.Context, unknown bool) *fetch {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.inflight != nil {
		return s.inflight
	}
	now := s.now()
	last := s.lastStart
	if unknown {
		last = s.lastUnknown
	}
	if !last.IsZero() && now.Sub(last) < s.interval {
		return nil
	}
	s.lastStart = now
	if unknown {
		s.lastUnknown = now
	}
	f := &fetch{done: make(chan struct{})}
	s.inflight = f
	go s.run(context.WithoutCancel(ctx), f)
	return f
}

func (s *keySet) run(ctx context.Context, f *fetch) {
	ctx, cancel := context.WithTimeout(ctx, fetchTimeout)
	defer cancel()
	keys, err := s.get(ctx)
	var removed bool
	s.mu.Lock()
	if err != nil {
		s.lastErr = err
	} else {
		removed = dropsAny(s.keys, keys)
		s.keys, s.fetchedOK, s.lastErr = keys, s.now(), nil
	}
	s.inflight = nil
	s.mu.Unlock()
	if err != nil {
		s.log.Warn("oidc: fetching the provider's keys failed; the keys fetched before stay in use", "jwks_uri", s.url, "error", err)
	}
	if removed && s.removed != nil {
		s.removed()
	}
	// Counted once the keys are in place, so that a count seen means the
	// fetch took effect.
	s.m.refreshed(err == nil)
	close(f.done)
}

// get fetches and parses the key set.
func (s *keySet) get(ctx context.Context) ([]jose.JSONWebKey, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	req.Header.Set("Cache-Control", "no-cache")
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("the key set endpoint answered %s", resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxKeySetBytes+1))
	if err != nil {
		return nil, err
	}
	if len(body) > maxKeySetBytes {
		return nil, fmt.Errorf("the key set is larger than %d bytes", maxKeySetBytes)
	}
	keys, refused, err := parseKeySet(body, s.algs)
	if err != nil {
		return nil, err
	}
	if refused > 0 {
		// Worth a warning: a token signed by a refused key is refused as
		// signed by an unknown key, which says nothing of why.
		s.log.Warn("oidc: keys of the provider's set are not trusted: symmetric, malformed, or RSA shorter than 2048 bits", "jwks_uri", s.url, "refused", refused)
	}
	if len(keys) == 0 {
		// Most likely a provider mid-deployment: keep the keys at hand
		// rather than refuse everyone.
		return nil, errors.New("the key set holds no usable key")
	}
	return keys, nil
}

// parseKeySet returns the public signing keys of a JWKS that fit one of
// algs. Keys meant for something else are left out silently: encryption
// keys, keys of other algorithms, key types go-jose does not know (such as
// secp256k1). Keys that look meant for us but must not be trusted are
// left out and counted in refused: symmetric keys (whatever the set says,
// a published secret is no secret), RSA keys shorter than minRSABits, keys
// that do not parse.
func parseKeySet(body []byte, algs []jose.SignatureAlgorithm) (keys []jose.JSONWebKey, refused int, err error) {
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &set); err != nil {
		return nil, 0, fmt.Errorf("the key set is not JSON: %w", err)
	}
	for _, raw := range set.Keys {
		var k jose.JSONWebKey
		if err := k.UnmarshalJSON(raw); err != nil {
			if !errors.Is(err, jose.ErrUnsupportedKeyType) {
				refused++
			}
			continue
		}
		if k.Use != "" && k.Use != "sig" || k.Algorithm != "" && !slices.Contains(algs, jose.SignatureAlgorithm(k.Algorithm)) {
			continue
		}
		if !trustworthy(&k) {
			refused++
			continue
		}
		keys = append(keys, k.Public())
	}
	return keys, refused, nil
}

// trustworthy reports whether k is a valid asymmetric key, and not an RSA
// key too short to trust.
func trustworthy(k *jose.JSONWebKey) bool {
	if !k.Valid() {
		return false
	}
	switch pub := k.Public().Key.(type) {
	case *rsa.PublicKey:
		return pub.N.BitLen() >= minRSABits
	case *ecdsa.PublicKey, ed25519.PublicKey:
		return true
	}
	return false // symmetric
}

// dropsAny reports whether next lacks a key of prev, by id and thumbprint,
// so that a key replaced under the same id counts as dropped.
func dropsAny(prev, next []jose.JSONWebKey) bool {
	have := make(map[string]bool, len(next))
	for i := range next {
		have[identify(&next[i])] = true
	}
	for i := range prev {
		if !have[identify(&prev[i])] {
			return true
		}
	}
	return false
}

func identify(k *jose.JSONWebKey) string {
	tp, err := k.Thumbprint(crypto.SHA256)
	if err != nil {
		return k.KeyID
	}
	return k.KeyID + "\x00" + string(tp)
}
