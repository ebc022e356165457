package auth_test

import (
	"bytes"
	"context"
	"errors"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/auth"
	"github.com/latchkey/latchkey/internal/pepper"
	"github.com/latchkey/latchkey/token"
)

// memStore is an auth.KeyStore in memory, with every call counted; a
// failure can be staged.
type memStore struct {
	mu          sync.Mutex
	creds       map[string]latchkey.Credential // key id →
	grants      map[string]bool                // workspace id → granted to every key
	credReads   int
	grantReads  int
	credErr     error
	grantErr    error
	useErrs     []error // returned by the next RecordKeyUse calls, in order
	uses        []map[string]time.Time
	usesWritten chan struct{}
	rehashes    []latchkey.Rehash // every RehashKeys call's, in order
	rehashErr   error
}

// RehashKeys applies the rehashes whose old hash the key still holds, as
// the SQL stores do.
func (m *memStore) RehashKeys(_ context.Context, rehashes []latchkey.Rehash) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.rehashErr != nil {
		return m.rehashErr
	}
	for _, r := range rehashes {
		m.rehashes = append(m.rehashes, r)
		c, ok := m.creds[r.KeyID]
		if !ok {
			continue
		}
		same := func(a, b latchkey.SecretHash) bool {
			return a.PepperVersion == b.PepperVersion && bytes.Equal(a.Hash, b.Hash)
		}
		switch {
		case same(c.Current, r.Old):
			c.Current = r.New
		case c.Previous != nil && same(*c.Previous, r.Old):
			prev := r.New
			c.Previous = &prev
		}
		m.creds[r.KeyID] = c
	}
	return nil
}

func newMemStore() *memStore {
	return &memStore{creds: map[string]latchkey.Credential{}, grants: map[string]bool{}, usesWritten: make(chan struct{}, 100)}
}

func (m *memStore) GetCredential(_ context.Context, id string) (latchkey.Credential, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.credReads++
	if m.credErr != nil {
		return latchkey.Credential{}, m.credErr
	}
	c, ok := m.creds[id]
	if !ok {
		return latchkey.Credential{}, latchkey.NotFound("API key", id)
	}
	return c, nil
}

func (m *memStore) WorkspaceAccess(_ context.Context, _, _, workspaceID string) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.grantReads++
	return m.grants[workspaceID], m.grantErr
}

func (m *memStore) RecordKeyUse(_ context.Context, uses map[string]time.Time) error {
	m.mu.Lock()
	defer func() { m.mu.Unlock(); m.usesWritten <- struct{}{} }()
	copied := map[string]time.Time{}
	for k, v := range uses {
		copied[k] = v
	}
	m.uses = append(m.uses, copied)
	if len(m.useErrs) > 0 {
		err := m.useErrs[0]
		m.useErrs = m.useErrs[1:]
		return err
	}
	return nil
}

func (m *memStore) reads() (creds, grants int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.credReads, m.grantReads
}

// clock is a settable time source.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }

func (c *clock) add(d time.Duration) { c.mu.Lock(); c.now = c.now.Add(d); c.mu.Unlock() }

var memHasher = func() *pepper.Hasher {
	h, err := pepper.NewHasher([]byte("pepper of the memory store tests!"), 1)
	if err != nil {
		panic(err)
	}
	return h
}()

// put stores a live key of account acc_t with the given permissions and
// returns its token.
func (m *memStore) put(t *testing.T, perms []string, edit func(*latchkey.Credential)) token.Token {
	t.Helper()
	tok, err := token.New("lk", latchkey.EnvironmentLive, latchkey.NewID(latchkey.PrefixAPIKey))
	if err != nil {
		t.Fatal(err)
	}
	cred := latchkey.Credential{
		Key: latchkey.APIKey{
			Metadata:    latchkey.Metadata{ID: tok.KeyID(), AccountID: "acc_t", Name: "k", ProfileID: "prf_k"},
			Permissions: perms, Environment: latchkey.EnvironmentLive,
		},
		Current: memHasher.Hash(tok.Secret()),
	}
	if edit != nil {
		edit(&cred)
	}
	m.mu.Lock()
	m.creds[tok.KeyID()] = cred
	m.mu.Unlock()
	return tok
}

func newMemVerifier(t *testing.T, m *memStore, c *clock) *auth.Verifier {
	opts := auth.VerifierOptions{FlushInterval: time.Hour}
	if c != nil {
		opts.Now = c.Now
	}
	v := auth.NewVerifier(m, memHasher, "lk", opts)
	t.Cleanup(func() { v.Close(context.Background()) })
	return v
}

func TestVerifyOutcomes(t *testing.T) {
	ctx := context.Background()
	c := &clock{now: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	m := newMemStore()
	valid := m.put(t, []string{"invoices:read"}, nil)
	revoked := m.put(t, nil, func(c *latchkey.Credential) { c.Key.RevokeTime = time.Date(2029, 1, 1, 0, 0, 0, 0, time.UTC) })
	expired := m.put(t, nil, func(cr *latchkey.Credential) { cr.Key.ExpireTime = c.now })
	expiresLater := m.put(t, nil, func(cr *latchkey.Credential) { cr.Key.ExpireTime = c.now.Add(time.Nanosecond) })
	revokedAndExpired := m.put(t, nil, func(cr *latchkey.Credential) {
		cr.Key.RevokeTime, cr.Key.ExpireTime = c.now.Add(-time.Hour), c.now.Add(-time.Hour)
	})
	walled := m.put(t, nil, func(c *latchkey.Credential) { c.Key.AllowedCIDRs = []string{"10.0.0.0/8", "2001:db8::1", "not a cidr"} })
	suspended := m.put(t, []string{"invoices:read"}, func(c *latchkey.Credential) {
		c.AccountSuspended = true
		c.Key.AllowedCIDRs = []string{"10.0.0.0/8"}
	})
	suspendedRevoked := m.put(t, nil, func(cr *latchkey.Credential) { cr.AccountSuspended, cr.Key.RevokeTime = true, c.now.Add(-time.Hour) })
	suspendedExpired := m.put(t, nil, func(cr *latchkey.Credential) { cr.AccountSuspended, cr.Key.ExpireTime = true, c.now })
	wrongSecretSuspended, _ := token.New("lk", latchkey.EnvironmentLive, suspended.KeyID())
	tenantStar := m.put(t, []string{"*"}, nil)
	operatorStar := m.put(t, []string{"*"}, func(c *latchkey.Credential) { c.Operator = true })
	// A token of the test environment whose secret is the live key's: the
	// environment alone must make it unknown.
	testEnv, err := token.New("lk", latchkey.EnvironmentTest, latchkey.NewID(latchkey.PrefixAPIKey))
	if err != nil {
		t.Fatal(err)
	}
	m.creds[testEnv.KeyID()] = latchkey.Credential{
		Key:     latchkey.APIKey{Metadata: latchkey.Metadata{ID: testEnv.KeyID(), AccountID: "acc_t"}, Environment: latchkey.EnvironmentLive},
		Current: memHasher.Hash(testEnv.Secret()),
	}
	unknown, _ := token.New("lk", latchkey.EnvironmentLive, latchkey.NewID(latchkey.PrefixAPIKey))
	otherPrefix, _ := token.New("zz", latchkey.EnvironmentLive, valid.KeyID())
	wrongSecret, _ := token.New("lk", latchkey.EnvironmentLive, valid.KeyID())

	v := newMemVerifier(t, m, c)
	ip := netip.MustParseAddr
	cases := []struct {
		name     string
		raw      string
		req      auth.Requirements
		want     auth.Outcome
		withCred bool
	}{
		{"valid", valid.Reveal(), auth.Requirements{Permissions: []string{"invoices:read"}}, auth.OutcomeValid, true},
		{"valid in its account", valid.Reveal(), auth.Requirements{AccountID: "acc_t"}, auth.OutcomeValid, true},
		{"garbage", "lk_live_nope", auth.Requirements{}, auth.OutcomeMalformed, false},
		{"another token prefix", otherPrefix.Reveal(), auth.Requirements{}, auth.OutcomeMalformed, false},
		{"unknown key", unknown.Reveal(), auth.Requirements{}, auth.OutcomeNotFound, false},
		{"another account's key", valid.Reveal(), auth.Requirements{AccountID: "acc_other"}, auth.OutcomeNotFound, false},
		{"wrong secret", wrongSecret.Reveal(), auth.Requirements{}, auth.OutcomeNotFound, false},
		{"wrong environment", testEnv.Reveal(), auth.Requirements{}, auth.OutcomeNotFound, false},
		{"revoked", revoked.Reveal(), auth.Requirements{}, auth.OutcomeRevoked, true},
		{"revoked wins over expired", revokedAndExpired.Reveal(), auth.Requirements{}, auth.OutcomeRevoked, true},
		{"expired at this instant", expired.Reveal(), auth.Requirements{}, auth.OutcomeExpired, true},
		{"expiring a nanosecond later", expiresLater.Reveal(), auth.Requirements{}, auth.OutcomeValid, true},
		{"revoked, even with every requirement unmet", revoked.Reveal(), auth.Requirements{WorkspaceID: "wks_none", Permissions: []string{"x:y"}}, auth.OutcomeRevoked, true},
		{"inside the allow-list", walled.Reveal(), auth.Requirements{ClientIP: ip("10.1.2.3")}, auth.OutcomeValid, true},
		{"inside, as a mapped address", walled.Reveal(), auth.Requirements{ClientIP: ip("::ffff:10.1.2.3")}, auth.OutcomeValid, true},
		{"a bare address of the allow-list", walled.Reveal(), auth.Requirements{ClientIP: ip("2001:db8::1")}, auth.OutcomeValid, true},
		{"outside the allow-list", walled.Reveal(), auth.Requirements{ClientIP: ip("11.0.0.1")}, auth.OutcomeIPNotAllowed, true},
		{"next to a bare address", walled.Reveal(), auth.Requirements{ClientIP: ip("2001:db8::2")}, auth.OutcomeIPNotAllowed, true},
		{"no address, with an allow-list", walled.Reveal(), auth.Requirements{}, auth.OutcomeIPNotAllowed, true},
		{"no address, without an allow-list", valid.Reveal(), auth.Requirements{}, auth.OutcomeValid, true},
		{"lacking a permission", valid.Reveal(), auth.Requirements{Permissions: []string{"invoices:read", "invoices:manage"}}, auth.OutcomePermissionDenied, true},
		{"a suspended account's key", suspended.Reveal(), auth.Requirements{ClientIP: ip("10.0.0.1"), Permissions: []string{"invoices:read"}}, auth.OutcomeAccountSuspended, true},
		{"suspended wins over workspaces and permissions", suspended.Reveal(), auth.Requirements{ClientIP: ip("10.0.0.1"), WorkspaceID: "wks_none", Permissions: []string{"x:y"}}, auth.OutcomeAccountSuspended, true},
		{"the address rule wins over suspended", suspended.Reveal(), auth.Requirements{ClientIP: ip("11.0.0.1")}, auth.OutcomeIPNotAllowed, true},
		{"revoked wins over suspended", suspendedRevoked.Reveal(), auth.Requirements{}, auth.OutcomeRevoked, true},
		{"expired wins over suspended", suspendedExpired.Reveal(), auth.Requirements{}, auth.OutcomeExpired, true},
		{"a wrong secret of a suspended account's key", wrongSecretSuspended.Reveal(), auth.Requirements{}, auth.OutcomeNotFound, false},
		{"a suspended account's key asked by another account", suspended.Reveal(), auth.Requirements{AccountID: "acc_other"}, auth.OutcomeNotFound, false},
		{"a tenant's * asked for accounts", tenantStar.Reveal(), auth.Requirements{Permissions: []string{auth.AccountsManage}}, auth.OutcomePermissionDenied, true},
		{"the operator's * asked for accounts", operatorStar.Reveal(), auth.Requirements{Permissions: []string{auth.AccountsManage}}, auth.OutcomeValid, true},
	}
	for _, tc := range cases {
		got, err := v.Verify(ctx, tc.raw, tc.req)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if got.Outcome != tc.want || got.Valid() != (tc.want == auth.OutcomeValid) {
			t.Errorf("%s: code %v (valid %v), want %v", tc.name, got.Outcome, got.Valid(), tc.want)
		}
		if (got.Credential != nil) != tc.withCred {
			t.Errorf("%s: credential %v, want one: %v", tc.name, got.Credential != nil, tc.withCred)
		}
	}
	if got, _ := v.Verify(ctx, operatorStar.Reveal(), auth.Requirements{}); got.Credential == nil || !got.Credential.Operator || got.Credential.Key.ID != operatorStar.KeyID() {
		t.Errorf("the verdict's credential is not the key's: %+v", got.Credential)
	}
}

func TestVerifyWorkspace(t *testing.T) {
	ctx := context.Background()
	m := newMemStore()
	m.grants["wks_yes"] = true
	tok := m.put(t, nil, nil)
	v := newMemVerifier(t, m, nil)
	verify := func(ws string) auth.Outcome {
		t.Helper()
		got, err := v.Verify(ctx, tok.Reveal(), auth.Requirements{WorkspaceID: ws})
		if err != nil {
			t.Fatal(err)
		}
		return got.Outcome
	}
	if c := verify("wks_yes"); c != auth.OutcomeValid {
		t.Errorf("granted workspace: %v", c)
	}
	if c := verify("wks_no"); c != auth.OutcomeWorkspaceDenied {
		t.Errorf("workspace not granted: %v", c)
	}
	if c := verify(""); c != auth.OutcomeValid {
		t.Errorf("no workspace asked: %v", c)
	}
	// Both answers are cached with the key.
	verify("wks_yes")
	verify("wks_no")
	if _, grants := m.reads(); grants != 2 {
		t.Errorf("workspace reads = %d, want 2 (one per workspace)", grants)
	}
	// An invalidation drops them with the key.
	v.Invalidate(tok.KeyID())
	verify("wks_yes")
	if _, grants := m.reads(); grants != 3 {
		t.Errorf("after Invalidate, workspace reads = %d, want 3", grants)
	}

	// A store that cannot answer fails the verification.
	m.mu.Lock()
	m.grantErr = errors.New("database unavailable")
	m.mu.Unlock()
	if got, err := v.Verify(ctx, tok.Reveal(), auth.Requirements{WorkspaceID: "wks_new"}); err == nil || got.Outcome == auth.OutcomeValid {
		t.Errorf("failing workspace read: %v, %v", got.Outcome, err)
	}
}

// The workspaces cached with one key are bounded: past 64 the entry's
// answers are dropped and read again.
func TestVerifyWorkspaceCacheIsBounded(t *testing.T) {
	ctx := context.Background()
	m := newMemStore()
	tok := m.put(t, nil, nil)
	v := newMemVerifier(t, m, nil)
	ws := func(i int) string { return "wks_" + string(rune('A'+i/26)) + string(rune('a'+i%26)) }
	for round := range 2 {
		for i := range 64 {
			if _, err := v.Verify(ctx, tok.Reveal(), auth.Requirements{WorkspaceID: ws(i)}); err != nil {
				t.Fatal(err)
			}
		}
		if _, grants := m.reads(); grants != 64 {
			t.Fatalf("round %d: %d workspace reads, want 64: the first 64 are all cached", round, grants)
		}
	}
	v.Verify(ctx, tok.Reveal(), auth.Requirements{WorkspaceID: ws(64)})
	v.Verify(ctx, tok.Reveal(), auth.Requirements{WorkspaceID: ws(0)})
	if _, grants := m.reads(); grants != 66 {
		t.Fatalf("%d workspace reads, want 66: the 65th workspace clears the entry's answers", grants)
	}
}

func TestVerifyDuringRotationGrace(t *testing.T) {
	ctx := context.Background()
	c := &clock{now: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	m := newMemStore()
	cur := m.put(t, nil, nil)
	// old is the same key with another secret: its previous one.
	old, _ := token.New("lk", latchkey.EnvironmentLive, cur.KeyID())
	cred := m.creds[cur.KeyID()]
	prev := memHasher.Hash(old.Secret())
	cred.Previous, cred.PreviousExpire = &prev, c.now.Add(time.Minute)
	m.creds[cur.KeyID()] = cred

	v := newMemVerifier(t, m, c)
	code := func(tok token.Token) auth.Outcome {
		t.Helper()
		got, err := v.Verify(ctx, tok.Reveal(), auth.Requirements{})
		if err != nil {
			t.Fatal(err)
		}
		return got.Outcome
	}
	if got := code(cur); got != auth.OutcomeValid {
		t.Errorf("current secret during grace: %v", got)
	}
	if got := code(old); got != auth.OutcomeValid {
		t.Errorf("previous secret during grace: %v", got)
	}
	c.add(time.Minute - time.Nanosecond)
	v.InvalidateAll()
	if got := code(old); got != auth.OutcomeValid {
		t.Errorf("previous secret a nanosecond before the grace ends: %v", got)
	}
	c.add(time.Nanosecond)
	if got := code(old); got != auth.OutcomeNotFound {
		t.Errorf("previous secret when the grace ends: %v", got)
	}
	if got := code(cur); got != auth.OutcomeValid {
		t.Errorf("current secret after grace: %v", got)
	}
}

func TestVerifyStoreFailure(t *testing.T) {
	m := newMemStore()
	tok := m.put(t, nil, nil)
	boom := errors.New("database unavailable")
	m.credErr = boom
	v := newMemVerifier(t, m, nil)
	if got, err := v.Verify(context.Background(), tok.Reveal(), auth.Requirements{}); !errors.Is(err, boom) || got.Outcome != auth.OutcomeUnspecified {
		t.Fatalf("Verify with a failing store = %v, %v", got.Outcome, err)
	}
	// The failure is not cached as an unknown key.
	m.credErr = nil
	if got, err := v.Verify(context.Background(), tok.Reveal(), auth.Requirements{}); err != nil || got.Outcome != auth.OutcomeValid {
		t.Fatalf("Verify once the store is back = %v, %v", got.Outcome, err)
	}
}

func TestVerifierCacheLifetimes(t *testing.T) {
	ctx := context.Background()
	c := &clock{now: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	m := newMemStore()
	tok := m.put(t, nil, nil)
	unknown, _ := token.New("lk", latchkey.EnvironmentLive, latchkey.NewID(latchkey.PrefixAPIKey))
	v := auth.NewVerifier(m, memHasher, "lk", auth.VerifierOptions{Now: c.Now, CacheTTL: time.Minute})
	t.Cleanup(func() { v.Close(ctx) })
	both := func() {
		t.Helper()
		if got, _ := v.Verify(ctx, tok.Reveal(), auth.Requirements{}); got.Outcome != auth.OutcomeValid {
			t.Fatalf("key: %v", got.Outcome)
		}
		if got, _ := v.Verify(ctx, unknown.Reveal(), auth.Requirements{}); got.Outcome != auth.OutcomeNotFound {
			t.Fatalf("unknown: %v", got.Outcome)
		}
	}
	wantReads := func(want int, why string) {
		t.Helper()
		if got, _ := m.reads(); got != want {
			t.Fatalf("%s: %d credential reads, want %d", why, got, want)
		}
	}
	both()
	wantReads(2, "first verifications")
	c.add(time.Minute - time.Nanosecond)
	both()
	wantReads(2, "within the TTL")
	c.add(time.Nanosecond)
	both()
	wantReads(4, "at the TTL")

	// Invalidate takes a key id; a bare ULID or another kind of id is not
	// one and drops nothing.
	v.Invalidate(tok.ULID())
	v.Invalidate("wks_" + tok.ULID())
	both()
	wantReads(4, "after invalidating with ids that are not key ids")
	v.Invalidate(tok.KeyID())
	both()
	wantReads(5, "after invalidating the key")
	v.Invalidate(unknown.KeyID())
	both()
	wantReads(6, "after invalidating the unknown id")
	v.InvalidateAll()
	both()
	wantReads(8, "after InvalidateAll")
}

// Uses are queued at most once a minute per key and written at the next
// flush; a failed write keeps them for the one after.
func TestLastUseQueue(t *testing.T) {
	ctx := context.Background()
	start := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	use := func(t *testing.T, steps ...time.Duration) map[string]time.Time {
		t.Helper()
		c := &clock{now: start}
		m := newMemStore()
		tok := m.put(t, nil, nil)
		// The minute is counted per cached entry, and an entry reloaded
		// after its TTL (10s by default) starts afresh: the TTL here
		// outlives the steps.
		v := auth.NewVerifier(m, memHasher, "lk", auth.VerifierOptions{Now: c.Now, FlushInterval: time.Hour, CacheTTL: time.Hour})
		for _, d := range steps {
			c.add(d)
			if got, _ := v.Verify(ctx, tok.Reveal(), auth.Requirements{}); got.Outcome != auth.OutcomeValid {
				t.Fatalf("verify: %v", got.Outcome)
			}
		}
		if err := v.Close(ctx); err != nil {
			t.Fatal(err)
		}
		if len(m.uses) != 1 {
			t.Fatalf("%d writes of uses at Close, want 1", len(m.uses))
		}
		return m.uses[0]
	}
	one := func(uses map[string]time.Time) time.Time {
		if len(uses) != 1 {
			t.Fatalf("uses = %v, want one key", uses)
		}
		for _, at := range uses {
			return at
		}
		return time.Time{}
	}
	if got := one(use(t, 0, 30*time.Second)); !got.Equal(start) {
		t.Errorf("a second use within the minute: recorded %v, want the first use %v", got, start)
	}
	if got := one(use(t, 0, time.Minute-time.Nanosecond)); !got.Equal(start) {
		t.Errorf("a use a nanosecond within the minute: recorded %v, want %v", got, start)
	}
	if got := one(use(t, 0, time.Minute)); !got.Equal(start.Add(time.Minute)) {
		t.Errorf("a use a minute later: recorded %v, want %v", got, start.Add(time.Minute))
	}
	// Verifications that fail are not uses.
	m := newMemStore()
	tok := m.put(t, nil, nil)
	v := auth.NewVerifier(m, memHasher, "lk", auth.VerifierOptions{FlushInterval: time.Hour})
	v.Verify(ctx, tok.Reveal(), auth.Requirements{Permissions: []string{"x:y"}})
	if err := v.Close(ctx); err != nil || len(m.uses) != 0 {
		t.Errorf("a refused verification was recorded as a use: %v, %v", m.uses, err)
	}
}

func TestLastUseSurvivesAFailedWrite(t *testing.T) {
	ctx := context.Background()
	m := newMemStore()
	boom := errors.New("database unavailable")
	m.useErrs = []error{boom}
	tok := m.put(t, nil, nil)
	v := auth.NewVerifier(m, memHasher, "lk", auth.VerifierOptions{FlushInterval: 10 * time.Millisecond})
	if got, _ := v.Verify(ctx, tok.Reveal(), auth.Requirements{}); got.Outcome != auth.OutcomeValid {
		t.Fatal(got.Outcome)
	}
	for _, what := range []string{"the first write, which fails", "the next write"} {
		select {
		case <-m.usesWritten:
		case <-time.After(5 * time.Second):
			t.Fatalf("no %s within 5s", what)
		}
	}
	if err := v.Close(ctx); err != nil {
		t.Fatal(err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.uses) != 2 || len(m.uses[1]) != 1 || !m.uses[1][tok.KeyID()].Equal(m.uses[0][tok.KeyID()]) {
		t.Fatalf("writes of uses = %v, want the failed one written again", m.uses)
	}
}

func TestCloseReportsAFailedWrite(t *testing.T) {
	ctx := context.Background()
	m := newMemStore()
	boom := errors.New("database unavailable")
	m.useErrs = []error{boom}
	tok := m.put(t, nil, nil)
	v := auth.NewVerifier(m, memHasher, "lk", auth.VerifierOptions{FlushInterval: time.Hour})
	v.Verify(ctx, tok.Reveal(), auth.Requirements{})
	if err := v.Close(ctx); !errors.Is(err, boom) {
		t.Fatalf("Close = %v, want the write's error", err)
	}
	if err := v.Close(ctx); err != nil || len(m.uses) != 2 {
		t.Fatalf("a second Close = %v after %d writes, want the kept use written", err, len(m.uses))
	}
}

func TestAuthenticate(t *testing.T) {
	ctx := context.Background()
	m := newMemStore()
	valid := m.put(t, []string{"invoices:read"}, func(c *latchkey.Credential) { c.Operator = true })
	revoked := m.put(t, nil, func(c *latchkey.Credential) { c.Key.RevokeTime = time.Now().Add(-time.Hour) })
	expired := m.put(t, nil, func(c *latchkey.Credential) { c.Key.ExpireTime = time.Now().Add(-time.Hour) })
	walled := m.put(t, nil, func(c *latchkey.Credential) { c.Key.AllowedCIDRs = []string{"10.0.0.0/8"} })
	suspended := m.put(t, []string{"*"}, func(c *latchkey.Credential) { c.AccountSuspended = true })
	unknown, _ := token.New("lk", latchkey.EnvironmentLive, latchkey.NewID(latchkey.PrefixAPIKey))
	v := newMemVerifier(t, m, nil)

	p, err := v.Authenticate(ctx, valid.Reveal(), netip.Addr{})
	if err != nil || p == nil || p.KeyID != valid.KeyID() || p.Method != auth.MethodAPIKey || !p.Operator || !p.Can("invoices:read") {
		t.Fatalf("Authenticate(valid) = %+v, %v", p, err)
	}
	for _, tc := range []struct {
		name string
		raw  string
		peer netip.Addr
		want latchkey.Code
	}{
		{"malformed", "not a token", netip.Addr{}, latchkey.CodeUnauthenticated},
		{"unknown", unknown.Reveal(), netip.Addr{}, latchkey.CodeUnauthenticated},
		{"revoked", revoked.Reveal(), netip.Addr{}, latchkey.CodeUnauthenticated},
		{"expired", expired.Reveal(), netip.Addr{}, latchkey.CodeUnauthenticated},
		{"outside the allow-list", walled.Reveal(), netip.MustParseAddr("192.0.2.1"), latchkey.CodePermissionDenied},
		{"of a suspended account", suspended.Reveal(), netip.Addr{}, latchkey.CodePermissionDenied},
	} {
		p, err := v.Authenticate(ctx, tc.raw, tc.peer)
		if p != nil || latchkey.ErrorCode(err) != tc.want {
			t.Errorf("%s: Authenticate = %v, %v; want code %q", tc.name, p, err, tc.want)
		}
	}
	if _, err := v.Authenticate(ctx, suspended.Reveal(), netip.Addr{}); err == nil || !strings.Contains(err.Error(), "account is suspended") {
		t.Errorf("a suspended account's key: %v does not say why", err)
	}
	if p, err := v.Authenticate(ctx, walled.Reveal(), netip.MustParseAddr("10.9.9.9")); err != nil || p == nil {
		t.Errorf("inside the allow-list: Authenticate = %v, %v", p, err)
	}
	m.credErr = errors.New("database unavailable")
	fresh, _ := token.New("lk", latchkey.EnvironmentLive, latchkey.NewID(latchkey.PrefixAPIKey))
	if p, err := v.Authenticate(ctx, fresh.Reveal(), netip.Addr{}); p != nil || !errors.Is(err, m.credErr) {
		t.Errorf("failing store: Authenticate = %v, %v", p, err)
	}
}

// TestParseCIDRAndAllowedAddresses checks the parser, then the address
// check as verification makes it: from the key's cached, parsed CIDRs.
func TestParseCIDRAndAllowedAddresses(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"10.0.0.0/8", "10.0.0.0/8"},
		{"192.168.1.7", "192.168.1.7/32"},
		{"2001:db8::1", "2001:db8::1/128"},
		{"::ffff:10.1.2.3", "10.1.2.3/32"},
		{"::ffff:10.0.0.0/104", "10.0.0.0/8"},
		{"::ffff:0.0.0.0/96", "0.0.0.0/0"},
		{"::ffff:10.1.2.3/128", "10.1.2.3/32"},
		{"::ffff:0.0.0.0/95", "::fffe:0:0/95"},
		{"::/0", "::/0"},
	} {
		got, err := auth.ParseCIDR(tc.in)
		if err != nil || got.String() != tc.want {
			t.Errorf("ParseCIDR(%q) = %v, %v; want %s", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "10.0.0.0/33", "10.0.0.300", "nope/8", "10.0.0.0/"} {
		if got, err := auth.ParseCIDR(bad); err == nil {
			t.Errorf("ParseCIDR(%q) = %v, want an error", bad, got)
		}
	}
	ip := netip.MustParseAddr
	list := []string{"garbage", "10.0.0.0/8", "2001:db8::/32"}
	for _, tc := range []struct {
		cidrs []string
		addr  netip.Addr
		want  bool
	}{
		{nil, netip.Addr{}, true},
		{nil, ip("1.2.3.4"), true},
		{list, netip.Addr{}, false},
		{list, ip("10.255.0.1"), true},
		{list, ip("::ffff:10.255.0.1"), true},
		{list, ip("11.0.0.1"), false},
		{list, ip("2001:db8:1::5"), true},
		{list, ip("2001:db9::5"), false},
		{[]string{"garbage"}, ip("10.0.0.1"), false},
	} {
		m := newMemStore()
		tok := m.put(t, nil, func(c *latchkey.Credential) { c.Key.AllowedCIDRs = tc.cidrs })
		v := newMemVerifier(t, m, nil)
		for _, pass := range []string{"from the store", "from the cache"} {
			verdict, err := v.Verify(t.Context(), tok.Reveal(), auth.Requirements{ClientIP: tc.addr})
			if err != nil {
				t.Fatal(err)
			}
			if got := verdict.Outcome == auth.OutcomeValid; got != tc.want {
				t.Errorf("%s: %v from %v: verdict %v, want allowed %v", pass, tc.cidrs, tc.addr, verdict.Outcome, tc.want)
			}
		}
	}
}
