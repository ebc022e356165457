package auth_test

import (
	"context"

	"fmt"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/auth"
	"github.com/latchkey/latchkey/internal/pepper"
	"github.com/latchkey/latchkey/store/sqlite"
	"github.com/latchkey/latchkey/token"
)

// countingStore counts credential reads and can hold one back, to stage a
// read that races with a write.
type countingStore struct {
	latchkey.Store
	reads atomic.Int64
	hold  atomic.Pointer[chan struct{}] // when set, the next read waits on it
	held  chan struct{}                 // signalled when a read is held
}

func (c *countingStore) GetCredential(ctx context.Context, id string) (latchkey.Credential, error) {
	c.reads.Add(1)
	cred, err := c.Store.GetCredential(ctx, id)
	if h := c.hold.Swap(nil); h != nil {
		c.held <- struct{}{}
		<-*h
	}
	return cred, err
}

type fixture struct {
	store    *countingStore
	verifier *auth.Verifier
	hasher   *pepper.Hasher
	actor    latchkey.Actor
	account  string
	path     string // the database file
}

func newFixture(t testing.TB) *fixture {
	return newFixtureWith(t, auth.VerifierOptions{})
}

func newFixtureWith(t testing.TB, opts auth.VerifierOptions) *fixture {
	path := filepath.Join(t.TempDir(), "latchkey.db")
	s, err := sqlite.Open(context.Background(), path, sqlite.Options{CursorKey: []byte("k")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	hasher, err := pepper.NewHasher([]byte("pepper of the auth tests, 32 bytes!"), 1)
	if err != nil {
		t.Fatal(err)
	}
	cs := &countingStore{Store: s, held: make(chan struct{}, 1)}
	v := auth.NewVerifier(cs, hasher, "lk", opts)
	t.Cleanup(func() { v.Close(context.Background()) })
	f := &fixture{store: cs, verifier: v, hasher: hasher, path: path}
	_, sys := f.newKey(t, "system")
	account, system, err := s.Bootstrap(context.Background(), latchkey.NewAccount{Name: "op", SystemKey: sys})
	if err != nil {
		t.Fatal(err)
	}
	f.account = account.ID
	f.actor = latchkey.Actor{Profile: latchkey.Bare{ID: system.ProfileID, Name: "system"}}
	return f
}

// newKey makes a token and the NewAPIKey that stores it.
func (f *fixture) newKey(t testing.TB, name string) (string, latchkey.NewAPIKey) {
	id := latchkey.NewID(latchkey.PrefixAPIKey)
	tok, err := token.New("lk", latchkey.EnvironmentLive, id)
	if err != nil {
		t.Fatal(err)
	}
	return tok.Reveal(), latchkey.NewAPIKey{
		Key: latchkey.APIKey{
			Metadata:    latchkey.Metadata{ID: id, AccountID: f.account, Name: name},
			Permissions: []string{"invoices:read"}, Environment: latchkey.EnvironmentLive, TokenPrefix: tok.DisplayPrefix(),
		},
		Secret: f.hasher.Hash(tok.Secret()), DefaultMaxActiveKeys: 100_000,
	}
}

func (f *fixture) issue(t testing.TB) (string, latchkey.APIKey) {
	raw, in := f.newKey(t, "k")
	key, err := f.store.IssueKey(context.Background(), f.actor, in)
	if err != nil {
		t.Fatal(err)
	}
	return raw, key
}

func (f *fixture) verify(t testing.TB, raw string) auth.Outcome {
	t.Helper()
	v, err := f.verifier.Verify(context.Background(), raw, auth.Requirements{Permissions: []string{"invoices:read"}})
	if err != nil {
		t.Fatal(err)
	}
	return v.Outcome
}

func TestCachedVerifyReadsTheStoreOnce(t *testing.T) {
	f := newFixture(t)
	raw, _ := f.issue(t)
	for range 100 {
		if c := f.verify(t, raw); c != auth.OutcomeValid {
			t.Fatalf("verify = %v", c)
		}
	}
	if n := f.store.reads.Load(); n != 1 {
		t.Fatalf("100 verifications read the store %d times, want 1", n)
	}
}

func TestUnknownIDsAreCachedApartFromKeys(t *testing.T) {
	// The clock stands still so that no entry ages out by its TTL while
	// the flood runs (slow under -race); only eviction is under test.
	now := time.Now()
	const missing = 100
	f := newFixtureWith(t, auth.VerifierOptions{Now: func() time.Time { return now }, CacheKeys: 10, CacheMissing: missing})
	raw, _ := f.issue(t)
	f.verify(t, raw)
	unknown, _ := f.newKey(t, "never stored")
	for range 10 {
		if c := f.verify(t, unknown); c != auth.OutcomeNotFound {
			t.Fatalf("unknown key = %v", c)
		}
	}
	if n := f.store.reads.Load(); n != 2 {
		t.Fatalf("reads = %d, want 2: one for the key, one for the unknown id", n)
	}
	// A flood of distinct unknown ids, many times what either cache holds,
	// must not evict the real key.
	for range 3 * missing {
		r, _ := f.newKey(t, "flood")
		f.verify(t, r)
	}
	before := f.store.reads.Load()
	if c := f.verify(t, raw); c != auth.OutcomeValid {
		t.Fatalf("verify after the flood = %v", c)
	}
	if f.store.reads.Load() != before {
		t.Fatal("a flood of unknown ids evicted a real key")
	}
	// The negative cache is bounded: the first unknown id has aged out of it.
	f.verify(t, unknown)
	if f.store.reads.Load() != before+1 {
		t.Fatal("the negative cache held more ids than its bound")
	}
}

func TestInvalidateBeforeAnswer(t *testing.T) {
	f := newFixture(t)
	raw, key := f.issue(t)
	f.verify(t, raw)
	if _, err := f.store.RevokeKey(context.Background(), f.actor, f.account, key.ID); err != nil {
		t.Fatal(err)
	}
	f.verifier.Invalidate(key.ID)
	if c := f.verify(t, raw); c != auth.OutcomeRevoked {
		t.Fatalf("verify after revoke = %v", c)
	}
}

// A read that started before a revocation and finishes after it must not
// put the stale, valid key back into the cache.
func TestStaleReadIsNotCached(t *testing.T) {
	f := newFixture(t)
	raw, key := f.issue(t)
	release := make(chan struct{})
	f.store.hold.Store(&release)
	done := make(chan auth.Outcome, 1)
	go func() {
		v, _ := f.verifier.Verify(context.Background(), raw, auth.Requirements{})
		done <- v.Outcome
	}()
	<-f.store.held // the read has the key as it was: active
	if _, err := f.store.RevokeKey(context.Background(), f.actor, f.account, key.ID); err != nil {
		t.Fatal(err)
	}
	f.verifier.Invalidate(key.ID)
	close(release)
	<-done // answered from its own read; what matters is the cache
	if c := f.verify(t, raw); c != auth.OutcomeRevoked {
		t.Fatalf("a stale read was cached: verify after revoke = %v", c)
	}
}

func TestLastUseIsRecordedOnceAMinuteAndOnClose(t *testing.T) {
	f := newFixture(t)
	raw, key := f.issue(t)
	for range 5 {
		f.verify(t, raw)
	}
	if err := f.verifier.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	got, err := f.store.GetKey(context.Background(), f.account, key.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.LastUsedTime.IsZero() || time.Since(got.LastUsedTime) > time.Minute {
		t.Fatalf("last used time = %v", got.LastUsedTime)
	}
}

// BenchmarkVerifyHit is the in-process cost of verifying a cached key with
// a permission check: parse, cache, HMAC, state, CIDR and permission.
//
//	go test ./auth -run XXX -bench VerifyHit -benchmem
func BenchmarkVerifyHit(b *testing.B) {
	f := newFixture(b)
	raw, _ := f.issue(b)
	req := auth.Requirements{Permissions: []string{"invoices:read"}}
	if v, err := f.verifier.Verify(context.Background(), raw, req); err != nil || v.Outcome != auth.OutcomeValid {
		b.Fatalf("warm-up: %v %v", v.Outcome, err)
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		v, err := f.verifier.Verify(ctx, raw, req)
		if err != nil || v.Outcome != auth.OutcomeValid {
			b.Fatal(v.Outcome, err)
		}
	}
}

// BenchmarkVerifyHitWithMetrics is BenchmarkVerifyHit with the
// verifier's instruments on a real meter provider: counting must not make
// a cache hit allocate.
func BenchmarkVerifyHitWithMetrics(b *testing.B) {
	f := newFixtureWith(b, auth.VerifierOptions{Meter: sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader())).Meter("bench")})
	raw, _ := f.issue(b)
	req := auth.Requirements{Permissions: []string{"invoices:read"}}
	ctx := context.Background()
	f.verifier.Verify(ctx, raw, req)
	b.ReportAllocs()
	for b.Loop() {
		v, err := f.verifier.Verify(ctx, raw, req)
		if err != nil || v.Outcome != auth.OutcomeValid {
			b.Fatal(v.Outcome, err)
		}
	}
}

// BenchmarkVerifyHitParallel verifies 1,000 cached keys from every core.
func BenchmarkVerifyHitParallel(b *testing.B) {
	f := newFixture(b)
	raws := make([]string, 1000)
	for i := range raws {
		raws[i], _ = f.issue(b)
		f.verify(b, raws[i])
	}
	req := auth.Requirements{Permissions: []string{"invoices:read"}}
	var next atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := int(next.Add(1)) * 7919
		for pb.Next() {
			i++
			v, err := f.verifier.Verify(context.Background(), raws[i%len(raws)], req)
			if err != nil || v.Outcome != auth.OutcomeValid {
				panic(fmt.Sprint(v.Outcome, err))
			}
		}
	})
}

// TestCacheIsBypassedWhileNotFresh: while the Fresh hook says changes made
// elsewhere may be unseen, every verification reads the store, and a store
// that cannot answer makes verification fail rather than fall back on the
// cache.
func TestCacheIsBypassedWhileNotFresh(t *testing.T) {
	var fresh atomic.Bool
	f := newFixtureWith(t, auth.VerifierOptions{Fresh: func(time.Time) bool { return fresh.Load() }})
	raw, _ := f.issue(t)
	fresh.Store(true)
	for range 3 {
		f.verify(t, raw)
	}
	if n := f.store.reads.Load(); n != 1 {
		t.Fatalf("fresh: 3 verifications read the store %d times, want 1", n)
	}
	fresh.Store(false)
	for range 3 {
		if c := f.verify(t, raw); c != auth.OutcomeValid {
			t.Fatalf("verify = %v", c)
		}
	}
	if n := f.store.reads.Load(); n != 4 {
		t.Fatalf("not fresh: 3 more verifications read the store %d times in all, want 4", n)
	}
	// The store goes away: a cached verdict is there, but not trusted.
	f.store.Store.Close()
	if v, err := f.verifier.Verify(context.Background(), raw, auth.Requirements{}); err == nil {
		t.Fatalf("with the store closed and the cache not fresh, Verify = %v, want an error", v.Outcome)
	}
}
