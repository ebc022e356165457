package auth_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/auth"
)

// signIns is an IdentityVerifier from a table of raw tokens.
type signIns map[string]latchkey.SignIn

func (s signIns) VerifySignIn(_ context.Context, raw string) (latchkey.SignIn, error) {
	in, ok := s[raw]
	if !ok {
		return in, latchkey.Errorf(latchkey.CodeUnauthenticated, "not a token of the provider")
	}
	return in, nil
}

// peopleStore answers SignIn from a table by subject, counting reads; hold,
// when set, is called inside the read, for tests of what an invalidation
// during it does.
type peopleStore struct {
	mu       sync.Mutex
	bySub    map[string][]latchkey.PersonProfile
	reads    int
	err      error
	hold     func()
	lastSeen latchkey.SignIn
}

func (s *peopleStore) SignIn(_ context.Context, in latchkey.SignIn) ([]latchkey.PersonProfile, error) {
	s.mu.Lock()
	s.reads++
	s.lastSeen = in
	out, err, hold := s.bySub[in.Subject], s.err, s.hold
	s.hold = nil
	s.mu.Unlock()
	if hold != nil {
		hold()
	}
	return out, err
}

func (s *peopleStore) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reads
}

func person(account, id string, edit func(*latchkey.PersonProfile)) latchkey.PersonProfile {
	pp := latchkey.PersonProfile{Profile: latchkey.Profile{
		Metadata: latchkey.Metadata{ID: id, AccountID: account}, Type: latchkey.ProfileTypeUser,
		Email: id + "@example.com", Permissions: []string{"api_keys:read"},
	}, AccountName: account}
	if edit != nil {
		edit(&pp)
	}
	return pp
}

func TestPeople(t *testing.T) {
	ctx := context.Background()
	acme, globex := latchkey.NewID(latchkey.PrefixAccount), latchkey.NewID(latchkey.PrefixAccount)
	tokens := signIns{
		"one":        {Issuer: "iss", Subject: "one", Email: "one@example.com", EmailVerified: true},
		"two":        {Issuer: "iss", Subject: "two", Email: "two@example.com", EmailVerified: true},
		"none":       {Issuer: "iss", Subject: "none", Email: "none@example.com", EmailVerified: true},
		"unverified": {Issuer: "iss", Subject: "none", Email: "none@example.com"},
		"suspended":  {Issuer: "iss", Subject: "suspended"},
		"stopped":    {Issuer: "iss", Subject: "stopped"},
	}
	store := &peopleStore{bySub: map[string][]latchkey.PersonProfile{
		"one": {person(acme, "prof_one", func(pp *latchkey.PersonProfile) { pp.DisplayName = "One"; pp.AccountOperator = true })},
		"two": {person(acme, "prof_two_a", nil), person(globex, "prof_two_g", func(pp *latchkey.PersonProfile) {
			pp.Permissions = []string{"*"}
		})},
		"suspended": {person(acme, "prof_s", func(pp *latchkey.PersonProfile) { pp.SuspendTime = time.Unix(1, 0) })},
		"stopped":   {person(acme, "prof_x", func(pp *latchkey.PersonProfile) { pp.AccountSuspended = true })},
	}}
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	fresh := true
	people := auth.NewPeople(tokens, store, clock, func(time.Time) bool { return fresh })

	t.Run("one profile is implied", func(t *testing.T) {
		p, err := people.Authenticate(ctx, "one", "")
		if err != nil {
			t.Fatal(err)
		}
		if p.AccountID != acme || p.ProfileID != "prof_one" || p.Name != "One" || !p.Operator || p.Method != auth.MethodOIDC || p.KeyID != "" || !p.Can("api_keys:read") {
			t.Fatalf("principal %+v", p)
		}
		if p.Method.String() != "oidc" {
			t.Errorf("Method.String() = %q", p.Method)
		}
	})
	t.Run("the name is the email without a display name", func(t *testing.T) {
		p, err := people.Authenticate(ctx, "two", acme)
		if err != nil || p.Name != "prof_two_a@example.com" {
			t.Fatalf("principal %+v, %v", p, err)
		}
	})
	t.Run("several profiles need the account named", func(t *testing.T) {
		_, err := people.Authenticate(ctx, "two", "")
		wantCode(t, "no account named", err, latchkey.CodeFailedPrecondition)
		if err == nil || !strings.Contains(err.Error(), "latchkey-account") {
			t.Errorf("the refusal names the header: %v", err)
		}
		p, err := people.Authenticate(ctx, "two", globex)
		if err != nil || p.ProfileID != "prof_two_g" || !p.Can("invoices:write") {
			t.Fatalf("in globex: %+v, %v", p, err)
		}
		_, err = people.Authenticate(ctx, "one", globex)
		wantCode(t, "an account without a profile of the person", err, latchkey.CodePermissionDenied)
		_, err = people.Authenticate(ctx, "one", "globex")
		wantCode(t, "a header that is no account id", err, latchkey.CodeInvalid)
	})
	t.Run("no profile says what to do", func(t *testing.T) {
		_, err := people.Authenticate(ctx, "none", "")
		wantCode(t, "no profile", err, latchkey.CodePermissionDenied)
		if err == nil || !strings.Contains(err.Error(), "ask an administrator") {
			t.Errorf("the refusal: %v", err)
		}
		_, err = people.Authenticate(ctx, "unverified", "")
		if err == nil || !strings.Contains(err.Error(), "does not vouch for your email") {
			t.Errorf("the refusal of an unverified email: %v", err)
		}
	})
	t.Run("suspended profiles and accounts are refused", func(t *testing.T) {
		_, err := people.Authenticate(ctx, "suspended", "")
		wantCode(t, "a suspended profile", err, latchkey.CodePermissionDenied)
		if err == nil || !strings.Contains(err.Error(), "profile in this account is suspended") {
			t.Errorf("the refusal: %v", err)
		}
		_, err = people.Authenticate(ctx, "stopped", "")
		if err == nil || !strings.Contains(err.Error(), "account is suspended") {
			t.Errorf("the refusal: %v", err)
		}
	})
	t.Run("a token the provider refuses is unauthenticated", func(t *testing.T) {
		before := store.count()
		_, err := people.Authenticate(ctx, "forged", "")
		wantCode(t, "forged", err, latchkey.CodeUnauthenticated)
		_, err = people.Profiles(ctx, "forged")
		wantCode(t, "forged, listed", err, latchkey.CodeUnauthenticated)
		if store.count() != before {
			t.Error("a refused token reached the store")
		}
	})
	t.Run("profiles are remembered", func(t *testing.T) {
		people.ResetChanges()
		before := store.count()
		for range 3 {
			if _, err := people.Authenticate(ctx, "one", ""); err != nil {
				t.Fatal(err)
			}
		}
		if n := store.count() - before; n != 1 {
			t.Fatalf("three calls read the store %d times, want 1", n)
		}
		now = now.Add(2 * time.Minute)
		if _, err := people.Authenticate(ctx, "one", ""); err != nil {
			t.Fatal(err)
		}
		if n := store.count() - before; n != 2 {
			t.Fatalf("after the entry's lifetime: %d reads, want 2", n)
		}
	})
	t.Run("an account the cache does not hold is read again", func(t *testing.T) {
		before := store.count()
		people.Authenticate(ctx, "one", globex)
		if store.count() != before+1 {
			t.Fatal("an account missing from the cached profiles was not read again")
		}
	})
	t.Run("no profile is not remembered", func(t *testing.T) {
		before := store.count()
		people.Authenticate(ctx, "none", "")
		people.Authenticate(ctx, "none", "")
		if n := store.count() - before; n != 2 {
			t.Fatalf("%d reads for two calls with no profile, want 2", n)
		}
	})
	t.Run("another email of the same identity is read again", func(t *testing.T) {
		tokens["one-moved"] = latchkey.SignIn{Issuer: "iss", Subject: "one", Email: "elsewhere@example.com", EmailVerified: true}
		people.Authenticate(ctx, "one", "")
		before := store.count()
		if _, err := people.Authenticate(ctx, "one-moved", ""); err != nil {
			t.Fatal(err)
		}
		if store.count() != before+1 || store.lastSeen.Email != "elsewhere@example.com" {
			t.Fatal("a sign-in with another email was answered from the cache, and could bind nothing")
		}
	})
	t.Run("the changes of people and accounts drop what is remembered", func(t *testing.T) {
		for _, c := range []latchkey.Change{
			{Kind: latchkey.ChangePersonChanged, ProfileID: "prof_one"},
			{Kind: latchkey.ChangeAccountSuspended, AccountID: acme},
			{Kind: latchkey.ChangeAccountRestored, AccountID: acme},
		} {
			people.Authenticate(ctx, "one", "")
			before := store.count()
			people.ApplyChange(c)
			people.Authenticate(ctx, "one", "")
			if store.count() != before+1 {
				t.Errorf("%s: the next call was answered from the cache", c.Kind)
			}
		}
		people.Authenticate(ctx, "one", "")
		for _, c := range []latchkey.Change{
			{Kind: latchkey.ChangeKeyRevoked, KeyID: "key_x", ProfileID: "prof_one"},
			{Kind: latchkey.ChangePersonChanged, ProfileID: "prof_someone_else"},
			{Kind: latchkey.ChangeAccountSuspended, AccountID: globex},
		} {
			before := store.count()
			people.ApplyChange(c)
			people.Authenticate(ctx, "one", "")
			if store.count() != before {
				t.Errorf("%s of another profile or account dropped the cached identity", c.Kind)
			}
		}
	})
	t.Run("nothing is trusted while the feed is not fresh", func(t *testing.T) {
		people.Authenticate(ctx, "one", "")
		fresh = false
		defer func() { fresh = true }()
		before := store.count()
		people.Authenticate(ctx, "one", "")
		if store.count() != before+1 {
			t.Fatal("a cached answer was used while the feed was not fresh")
		}
	})
	t.Run("a read overtaken by a change is not remembered", func(t *testing.T) {
		people.ResetChanges()
		store.mu.Lock()
		store.hold = func() { people.ApplyChange(latchkey.Change{Kind: latchkey.ChangePersonChanged, ProfileID: "prof_one"}) }
		store.mu.Unlock()
		people.Authenticate(ctx, "one", "")
		before := store.count()
		people.Authenticate(ctx, "one", "")
		if store.count() != before+1 {
			t.Fatal("a profile read before a suspension was cached after it")
		}
	})
	t.Run("Profiles reads afresh, and allows none", func(t *testing.T) {
		people.Authenticate(ctx, "two", globex)
		before := store.count()
		got, err := people.Profiles(ctx, "two")
		if err != nil || len(got) != 2 || store.count() != before+1 {
			t.Fatalf("Profiles = %d profiles, %v, %d reads", len(got), err, store.count()-before)
		}
		if got, err := people.Profiles(ctx, "none"); err != nil || len(got) != 0 {
			t.Fatalf("Profiles of nobody = %v, %v", got, err)
		}
	})
	t.Run("a store failure is the store's", func(t *testing.T) {
		people.ResetChanges()
		boom := latchkey.Errorf(latchkey.CodeUnavailable, "database down")
		store.mu.Lock()
		store.err = boom
		store.mu.Unlock()
		defer func() { store.mu.Lock(); store.err = nil; store.mu.Unlock() }()
		if _, err := people.Authenticate(ctx, "one", ""); !errors.Is(err, boom) {
			t.Fatalf("Authenticate = %v", err)
		}
		if _, err := people.Profiles(ctx, "one"); !errors.Is(err, boom) {
			t.Fatalf("Profiles = %v", err)
		}
	})
}

func TestProfileGuard(t *testing.T) {
	ctx := context.Background()
	g := &grantTable{}
	a := auth.NewAuthorizer(g)
	guard := a.ProfileGuard(caller(false, auth.ProfilesManage, "invoices:read"))
	wantCode(t, "a weaker person", guard(ctx, latchkey.Profile{Metadata: latchkey.Metadata{ID: "prf_p"}, Permissions: []string{"invoices:read"}}, g), "")
	wantCode(t, "a stronger person", guard(ctx, latchkey.Profile{Metadata: latchkey.Metadata{ID: "prf_p"}, Permissions: []string{"*"}}, g), latchkey.CodePermissionDenied)
	g.beyond = true
	wantCode(t, "a person with a workspace beyond", guard(ctx, latchkey.Profile{Metadata: latchkey.Metadata{ID: "prf_p"}}, g), latchkey.CodePermissionDenied)
}
