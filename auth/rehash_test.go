package auth_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/auth"
	"github.com/latchkey/latchkey/internal/pepper"
)

// rotatedHashers returns a hasher of pepper 1 alone (the one memStore's
// keys are made with) and one of peppers 1 and 2, where 2 is current.
func rotatedHashers(t *testing.T) (onlyOne, both, onlyTwo *pepper.Hasher) {
	t.Helper()
	one, err := pepper.New(1, []byte("pepper of the memory store tests!"))
	if err != nil {
		t.Fatal(err)
	}
	two, err := pepper.New(2, []byte("the second pepper, after rotation"))
	if err != nil {
		t.Fatal(err)
	}
	if onlyOne, err = pepper.NewHasherOf([]pepper.Pepper{one}); err != nil {
		t.Fatal(err)
	}
	if both, err = pepper.NewHasherOf([]pepper.Pepper{one, two}); err != nil {
		t.Fatal(err)
	}
	if onlyTwo, err = pepper.NewHasherOf([]pepper.Pepper{two}); err != nil {
		t.Fatal(err)
	}
	return onlyOne, both, onlyTwo
}

// syncBuffer is a log destination that tests read while the verifier writes.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestVerifierRehashesSecretsOfAnOlderPepper(t *testing.T) {
	ctx := t.Context()
	_, both, onlyTwo := rotatedHashers(t)
	c := &clock{now: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	m := newMemStore()
	used := m.put(t, nil, nil)
	unused := m.put(t, nil, nil)
	revoked := m.put(t, nil, func(cr *latchkey.Credential) { cr.Key.RevokeTime = c.now.Add(-time.Hour) })
	v := auth.NewVerifier(m, both, "lk", auth.VerifierOptions{Now: c.Now, FlushInterval: time.Hour})

	for range 3 {
		if verdict, err := v.Verify(ctx, used.Reveal(), auth.Requirements{}); err != nil || !verdict.Valid() {
			t.Fatalf("a key of pepper 1 under peppers 1 and 2: %v, %v", verdict.Outcome, err)
		}
	}
	if verdict, _ := v.Verify(ctx, revoked.Reveal(), auth.Requirements{}); verdict.Outcome != auth.OutcomeRevoked {
		t.Fatalf("revoked key: %v", verdict.Outcome)
	}
	wrong := strings.Replace(unused.Reveal(), unused.Secret(), strings.Repeat("a", len(unused.Secret())), 1)
	if verdict, _ := v.Verify(ctx, wrong, auth.Requirements{}); verdict.Valid() {
		t.Fatal("a wrong secret verified")
	}
	m.mu.Lock()
	queuedBeforeFlush := len(m.rehashes)
	m.mu.Unlock()
	if queuedBeforeFlush != 0 {
		t.Fatal("a rehash was written on the request's path")
	}
	if err := v.Close(ctx); err != nil {
		t.Fatal(err)
	}

	m.mu.Lock()
	rehashes := append([]latchkey.Rehash(nil), m.rehashes...)
	m.mu.Unlock()
	if len(rehashes) != 1 {
		t.Fatalf("%d rehashes written, want 1 (the verified key, once): %+v", len(rehashes), rehashes)
	}
	r := rehashes[0]
	if r.KeyID != used.KeyID() || r.Old.PepperVersion != 1 || r.New.PepperVersion != 2 {
		t.Fatalf("rehash %s %d→%d, want %s 1→2", r.KeyID, r.Old.PepperVersion, r.New.PepperVersion, used.KeyID())
	}
	if bytes.Contains(r.New.Hash, []byte(used.Secret())) {
		t.Fatal("the rehash carries the secret")
	}

	// With pepper 1 gone, the rehashed key still verifies and the one
	// never verified since is refused, with a log line naming it.
	var logs syncBuffer
	after := auth.NewVerifier(m, onlyTwo, "lk", auth.VerifierOptions{Now: c.Now, FlushInterval: time.Hour,
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	t.Cleanup(func() { after.Close(context.Background()) })
	if verdict, err := after.Verify(ctx, used.Reveal(), auth.Requirements{}); err != nil || !verdict.Valid() {
		t.Fatalf("the rehashed key under pepper 2 alone: %v, %v", verdict.Outcome, err)
	}
	for range 2 {
		if verdict, _ := after.Verify(ctx, unused.Reveal(), auth.Requirements{}); verdict.Outcome != auth.OutcomeNotFound {
			t.Fatalf("a key of a pepper the server lacks: %v, want not found", verdict.Outcome)
		}
	}
	line := logs.String()
	if strings.Count(line, unused.KeyID()) != 1 || !strings.Contains(line, "pepper=1") {
		t.Fatalf("want one log line naming the key and its pepper, got %q", line)
	}
	if strings.Contains(line, unused.Secret()) {
		t.Fatal("the log line carries the secret")
	}
}

func TestVerifierRehashesThePreviousSecretInItsGrace(t *testing.T) {
	ctx := t.Context()
	_, both, _ := rotatedHashers(t)
	c := &clock{now: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	m := newMemStore()
	old := m.put(t, nil, nil)
	// Rotated under pepper 1: the old secret is the previous one.
	rotated := m.put(t, nil, nil)
	m.mu.Lock()
	cred := m.creds[old.KeyID()]
	prev := cred.Current
	cred.Previous, cred.PreviousExpire = &prev, c.now.Add(time.Hour)
	cred.Current = m.creds[rotated.KeyID()].Current
	m.creds[old.KeyID()] = cred
	m.mu.Unlock()

	v := auth.NewVerifier(m, both, "lk", auth.VerifierOptions{Now: c.Now, FlushInterval: time.Hour})
	if verdict, err := v.Verify(ctx, old.Reveal(), auth.Requirements{}); err != nil || !verdict.Valid() {
		t.Fatalf("previous secret in its grace: %v, %v", verdict.Outcome, err)
	}
	if err := v.Close(ctx); err != nil {
		t.Fatal(err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	got := m.creds[old.KeyID()]
	if got.Previous == nil || got.Previous.PepperVersion != 2 || got.Current.PepperVersion != 1 {
		t.Fatalf("after the flush: current under %d, previous %+v; want the previous under 2", got.Current.PepperVersion, got.Previous)
	}
}

func TestRehashSurvivesAFailedWrite(t *testing.T) {
	ctx := t.Context()
	_, both, _ := rotatedHashers(t)
	m := newMemStore()
	tok := m.put(t, nil, nil)
	m.rehashErr = latchkey.Errorf(latchkey.CodeUnavailable, "database down")
	v := auth.NewVerifier(m, both, "lk", auth.VerifierOptions{FlushInterval: time.Hour})
	if verdict, _ := v.Verify(ctx, tok.Reveal(), auth.Requirements{}); !verdict.Valid() {
		t.Fatal(verdict.Outcome)
	}
	if err := v.Close(ctx); latchkey.ErrorCode(err) != latchkey.CodeUnavailable {
		t.Fatalf("Close = %v, want the store's unavailable", err)
	}
	m.mu.Lock()
	m.rehashErr = nil
	m.mu.Unlock()
	// Close already stopped the loop; a second Close flushes again.
	if err := v.Close(ctx); err != nil {
		t.Fatal(err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if n := len(m.rehashes); n != 1 || m.creds[tok.KeyID()].Current.PepperVersion != 2 {
		t.Fatalf("%d rehashes written after the outage; current under pepper %d", n, m.creds[tok.KeyID()].Current.PepperVersion)
	}
}
