package auth_test

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/auth"
	"github.com/latchkey/latchkey/internal/pepper"
	"github.com/latchkey/latchkey/token"
)

// rotatedHashers returns a hasher of pepper 1 alone (the one memStore's
// keys are made with) and one of peppers 1 and 2, where 2 is current.
func rotatedHashers(t *testing.T) (onlyOne, both, onlyTwo *pepper.Hasher) {
	t.Helper()
	one, two := testPeppers(t)
	var err error
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

// testPeppers returns pepper 1, the one memStore's keys are made with,
// and a pepper 2.
func testPeppers(t *testing.T) (one, two pepper.Pepper) {
	t.Helper()
	one, err := pepper.New(1, []byte("pepper of the memory store tests!"))
	if err != nil {
		t.Fatal(err)
	}
	two, err = pepper.New(2, []byte("the second pepper, after rotation"))
	if err != nil {
		t.Fatal(err)
	}
	return one, two
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
	// The key's id with another secret: well formed, wrong secret.
	wrong, err := token.New("lk", latchkey.EnvironmentLive, unused.KeyID())
	if err != nil {
		t.Fatal(err)
	}
	if verdict, _ := v.Verify(ctx, wrong.Reveal(), auth.Requirements{}); verdict.Outcome != auth.OutcomeNotFound {
		t.Fatalf("a wrong secret: %v, want not found", verdict.Outcome)
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
	if !both.Verify(used.Secret(), r.New) || both.Verify(unused.Secret(), r.New) {
		t.Fatal("the rehash is not the hash of the verified secret under pepper 2")
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
	if strings.Count(line, unused.KeyID()) != 1 || !strings.Contains(line, "pepper=1") || !strings.Contains(line, "secret=current") {
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

// A replica still on the older pepper, with the new one staged, checks
// keys already moved to the new pepper but never moves them back.
func TestVerifierNeverRehashesToAnOlderPepper(t *testing.T) {
	ctx := t.Context()
	one, two := testPeppers(t)
	two.Staged = true
	staged, err := pepper.NewHasherOf([]pepper.Pepper{one, two})
	if err != nil || staged.Current() != 1 {
		t.Fatalf("staged hasher: current %d, %v", staged.Current(), err)
	}
	_, promoted, _ := rotatedHashers(t)
	m := newMemStore()
	tok := m.put(t, nil, nil)
	replicaA := auth.NewVerifier(m, promoted, "lk", auth.VerifierOptions{FlushInterval: time.Hour})
	if verdict, _ := replicaA.Verify(ctx, tok.Reveal(), auth.Requirements{}); !verdict.Valid() {
		t.Fatal(verdict.Outcome)
	}
	if err := replicaA.Close(ctx); err != nil {
		t.Fatal(err)
	}
	replicaB := auth.NewVerifier(m, staged, "lk", auth.VerifierOptions{FlushInterval: time.Hour})
	if verdict, _ := replicaB.Verify(ctx, tok.Reveal(), auth.Requirements{}); !verdict.Valid() {
		t.Fatalf("the replica with pepper 2 staged: %v", verdict.Outcome)
	}
	if err := replicaB.Close(ctx); err != nil {
		t.Fatal(err)
	}
	// A key already under the current pepper is left as it is.
	replicaC := auth.NewVerifier(m, promoted, "lk", auth.VerifierOptions{FlushInterval: time.Hour})
	if verdict, _ := replicaC.Verify(ctx, tok.Reveal(), auth.Requirements{}); !verdict.Valid() {
		t.Fatal(verdict.Outcome)
	}
	if err := replicaC.Close(ctx); err != nil {
		t.Fatal(err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.rehashes) != 1 || m.creds[tok.KeyID()].Current.PepperVersion != 2 {
		t.Fatalf("%d rehashes, key under pepper %d; want 1 rehash and pepper 2", len(m.rehashes), m.creds[tok.KeyID()].Current.PepperVersion)
	}
}

// The warning about a key hashed with a pepper the server lacks comes at
// most once an hour per key, however often its cache entry is rebuilt,
// and names which of its secrets it is.
func TestUnheldPepperWarningIsHourly(t *testing.T) {
	ctx := t.Context()
	_, _, onlyTwo := rotatedHashers(t)
	c := &clock{now: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	m := newMemStore()
	stranded := m.put(t, nil, nil)
	var logs syncBuffer
	v := auth.NewVerifier(m, onlyTwo, "lk", auth.VerifierOptions{Now: c.Now, FlushInterval: time.Hour,
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	t.Cleanup(func() { v.Close(context.Background()) })
	lines := func() int { return strings.Count(logs.String(), stranded.KeyID()) }
	verify := func() {
		t.Helper()
		if verdict, _ := v.Verify(ctx, stranded.Reveal(), auth.Requirements{}); verdict.Outcome != auth.OutcomeNotFound {
			t.Fatalf("a key of a pepper the server lacks: %v", verdict.Outcome)
		}
	}
	verify()
	if n := lines(); n != 1 || !strings.Contains(logs.String(), "secret=current") {
		t.Fatalf("first verification: %d lines naming the key, want 1 about its current secret: %s", n, logs.String())
	}
	c.add(30 * time.Minute) // the cache entry is long gone
	verify()
	if n := lines(); n != 1 {
		t.Fatalf("half an hour later: %d lines, want still 1", n)
	}
	c.add(30 * time.Minute) // an hour after the first line
	verify()
	if n := lines(); n != 2 {
		t.Fatalf("an hour later: %d lines, want 2", n)
	}
}

// The warning says which secret's hash it is about.
func TestUnheldPepperWarningNamesThePreviousSecret(t *testing.T) {
	ctx := t.Context()
	_, both, onlyTwo := rotatedHashers(t)
	c := &clock{now: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	m := newMemStore()
	// Rotated under pepper 2 with its old secret, under pepper 1, in grace.
	tok := m.put(t, nil, func(cr *latchkey.Credential) {
		prev := cr.Current
		cr.Previous, cr.PreviousExpire = &prev, c.now.Add(time.Hour)
	})
	m.mu.Lock()
	cred := m.creds[tok.KeyID()]
	cred.Current = both.Hash("the new secret")
	m.creds[tok.KeyID()] = cred
	m.mu.Unlock()
	var logs syncBuffer
	v := auth.NewVerifier(m, onlyTwo, "lk", auth.VerifierOptions{Now: c.Now, FlushInterval: time.Hour,
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	t.Cleanup(func() { v.Close(context.Background()) })
	if verdict, _ := v.Verify(ctx, tok.Reveal(), auth.Requirements{}); verdict.Outcome != auth.OutcomeNotFound {
		t.Fatalf("the old secret, under a pepper the server lacks: %v", verdict.Outcome)
	}
	if !strings.Contains(logs.String(), "secret=previous") || strings.Contains(logs.String(), "secret=current") {
		t.Fatalf("want a line about the previous secret only: %s", logs.String())
	}
}

// A call refused for its address or its account writes nothing: not even
// a rehash of a secret that matched.
func TestRefusedCallsDoNotRehash(t *testing.T) {
	ctx := t.Context()
	_, both, _ := rotatedHashers(t)
	m := newMemStore()
	walled := m.put(t, nil, func(c *latchkey.Credential) { c.Key.AllowedCIDRs = []string{"10.0.0.0/8"} })
	suspended := m.put(t, nil, func(c *latchkey.Credential) { c.AccountSuspended = true })
	v := auth.NewVerifier(m, both, "lk", auth.VerifierOptions{FlushInterval: time.Hour})
	if verdict, _ := v.Verify(ctx, walled.Reveal(), auth.Requirements{}); verdict.Outcome != auth.OutcomeIPNotAllowed {
		t.Fatal(verdict.Outcome)
	}
	if verdict, _ := v.Verify(ctx, suspended.Reveal(), auth.Requirements{}); verdict.Outcome != auth.OutcomeAccountSuspended {
		t.Fatal(verdict.Outcome)
	}
	if err := v.Close(ctx); err != nil {
		t.Fatal(err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.rehashes) != 0 {
		t.Fatalf("refused calls rehashed %d keys", len(m.rehashes))
	}
}

// Rehashes are written in transactions of a bounded size.
func TestRehashesAreWrittenInSmallBatches(t *testing.T) {
	ctx := t.Context()
	_, both, _ := rotatedHashers(t)
	m := newMemStore()
	var toks []token.Token
	for range 250 {
		toks = append(toks, m.put(t, nil, nil))
	}
	calls := &batchCountingStore{memStore: m}
	v := auth.NewVerifier(calls, both, "lk", auth.VerifierOptions{FlushInterval: time.Hour})
	for _, tok := range toks {
		if verdict, _ := v.Verify(ctx, tok.Reveal(), auth.Requirements{}); !verdict.Valid() {
			t.Fatal(verdict.Outcome)
		}
	}
	if err := v.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if calls.largest > 100 || calls.total != 250 {
		t.Fatalf("largest batch %d, total %d; want at most 100 per write and 250 in all", calls.largest, calls.total)
	}
}

type batchCountingStore struct {
	*memStore
	largest, total int
}

func (c *batchCountingStore) RehashKeys(ctx context.Context, rehashes []latchkey.Rehash) error {
	c.largest = max(c.largest, len(rehashes))
	c.total += len(rehashes)
	return c.memStore.RehashKeys(ctx, rehashes)
}
