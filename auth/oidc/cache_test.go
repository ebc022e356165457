package oidc_test

import (
	"testing"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/auth/oidc"
)

func TestRemembered(t *testing.T) {
	e := newEnv(t)
	raw := e.token(nil)
	first := e.mustVerify(raw)
	checks, fetches := oidc.SignatureChecks(e.v), e.p.jwksFetches.Load()

	t.Run("a verified token is answered again without a signature check", func(t *testing.T) {
		for range 10 {
			if id := e.mustVerify(raw); id != first {
				t.Fatalf("identity = %+v, want %+v", id, first)
			}
		}
		if got := oidc.SignatureChecks(e.v); got != checks {
			t.Fatalf("%d signature checks for remembered tokens", got-checks)
		}
		if got := e.p.jwksFetches.Load(); got != fetches {
			t.Fatalf("%d key fetches for remembered tokens", got-fetches)
		}
		if got := e.meter.count("latchkey.oidc.cache.lookups", "result", "hit"); got != 10 {
			t.Fatalf("cache hits = %d, want 10", got)
		}
	})
	t.Run("until the token's expiry plus the leeway, and no longer", func(t *testing.T) {
		e.clock.Add(time.Hour + oidc.DefaultLeeway - time.Second)
		e.mustVerify(raw)
		if got := oidc.SignatureChecks(e.v); got != checks {
			t.Fatal("a remembered token was checked again before its expiry")
		}
		e.clock.Add(time.Second)
		_, err := e.verify(raw)
		refused(t, err, raw, latchkey.CodeUnauthenticated, "expired")
		if got := oidc.SignatureChecks(e.v); got == checks {
			t.Fatal("an expired token was answered from the cache")
		}
	})
	t.Run("the cache is bounded", func(t *testing.T) {
		e := newEnv(t, func(c *oidc.Config) { c.CacheSize = 1 })
		a, b := e.token(map[string]any{"sub": "a"}), e.token(map[string]any{"sub": "b"})
		e.mustVerify(a)
		e.mustVerify(b) // evicts a
		before := oidc.SignatureChecks(e.v)
		e.mustVerify(b)
		if oidc.SignatureChecks(e.v) != before {
			t.Fatal("the most recent token was not remembered")
		}
		e.mustVerify(a)
		if oidc.SignatureChecks(e.v) == before {
			t.Fatal("a cache of one remembered two tokens")
		}
	})
	t.Run("a negative size remembers nothing", func(t *testing.T) {
		e := newEnv(t, func(c *oidc.Config) { c.CacheSize = -1 })
		raw := e.token(nil)
		e.mustVerify(raw)
		before := oidc.SignatureChecks(e.v)
		e.mustVerify(raw)
		if oidc.SignatureChecks(e.v) == before {
			t.Fatal("a token was remembered with the cache off")
		}
	})
	t.Run("a refused token is not remembered as valid", func(t *testing.T) {
		bad := e.token(map[string]any{"aud": "another-app"})
		for range 2 {
			if _, err := e.verify(bad); err == nil {
				t.Fatal("accepted")
			}
		}
	})
}

func TestMetrics(t *testing.T) {
	e := newEnv(t)
	e.mustVerify(e.token(nil))
	e.verify(e.token(map[string]any{"exp": e.clock.Now().Add(-time.Hour).Unix()}))
	e.verify(e.token(map[string]any{"aud": "x"}))
	e.verify("not a token")
	e.clock.Add(interval)
	e.verify(ecKey(t, "key-2").sign(t, e.claims(nil), nil))
	want := map[string]int64{"valid": 1, "expired": 1, "wrong_audience": 1, "malformed": 1, "unknown_key": 1}
	got := e.meter.results()
	if len(got) != len(want) {
		t.Fatalf("verifications = %v, want %v", got, want)
	}
	for k, n := range want {
		if got[k] != n {
			t.Fatalf("verifications = %v, want %v", got, want)
		}
	}
	if ok := e.meter.count("latchkey.oidc.jwks.refreshes", "result", "ok"); ok != 2 {
		t.Fatalf("refreshes ok = %d, want 2", ok)
	}
	if ok := e.meter.count("latchkey.oidc.discoveries", "result", "ok"); ok != 1 {
		t.Fatalf("discoveries ok = %d, want 1", ok)
	}
	if n := e.meter.gauge("latchkey.oidc.cache.tokens"); n != 1 {
		t.Fatalf("remembered tokens = %d, want 1", n)
	}
}
