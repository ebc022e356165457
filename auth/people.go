package auth

import (
	"context"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/latchkey/latchkey"
)

// IdentityVerifier turns a bearer JWT into a verified sign-in: the
// identity and the email its provider vouches for. auth/oidc implements
// it over an OpenID Provider. Errors: CodeUnauthenticated for a token it
// does not accept, with a message that never quotes the token;
// CodeUnavailable when the provider's keys cannot be had.
type IdentityVerifier interface {
	VerifySignIn(ctx context.Context, raw string) (latchkey.SignIn, error)
}

// PeopleStore is what authenticating people reads: the profiles bound to
// an identity (latchkey.Store.SignIn).
type PeopleStore interface {
	SignIn(ctx context.Context, in latchkey.SignIn) ([]latchkey.PersonProfile, error)
}

// AccountHeader is the request header with which a person who has
// profiles in several accounts names the account of a call.
const AccountHeader = "Latchkey-Account"

// peopleTTL bounds how long the profiles of an identity are trusted
// without reading them again, so that a profile made for a person's email
// after they signed in is bound within it. Changes to a bound profile
// (its permissions, a suspension) drop the entry at once instead.
const peopleTTL = time.Minute

// peopleCacheSize bounds the identities kept.
const peopleCacheSize = 10_000

// People authenticates people: a JWT that an IdentityVerifier accepts,
// bound to user profiles by the store. It remembers each identity's
// profiles, and follows the change log (it is a latchkey.ChangeSink) so
// that a suspension or a change of a person's permissions takes effect
// before the call that made it answers, and on other replicas within the
// store's bound.
type People struct {
	ids   IdentityVerifier
	store PeopleStore
	now   func() time.Time
	fresh func(time.Time) bool

	// mu orders fills against invalidations, as the key cache's does.
	mu         sync.Mutex
	generation atomic.Uint64
	cache      *lru.Cache[string, peopleEntry]
}

type peopleEntry struct {
	profiles []latchkey.PersonProfile
	expires  time.Time
}

// NewPeople returns People over ids and store. fresh, when set, says
// whether the store's change feed is fresh (latchkey.ChangeFeed.Fresh);
// while it is not, nothing cached is trusted.
func NewPeople(ids IdentityVerifier, store PeopleStore, now func() time.Time, fresh func(time.Time) bool) *People {
	c, _ := lru.New[string, peopleEntry](peopleCacheSize)
	if now == nil {
		now = time.Now
	}
	return &People{ids: ids, store: store, now: now, fresh: fresh, cache: c}
}

var accountIDPattern = regexp.MustCompile(`^acct_[0-9A-HJKMNP-TV-Z]{26}$`)

// CheckAccountHeader refuses a latchkey-account header (AccountHeader)
// that is neither empty nor an account id, with CodeInvalid on the field
// latchkey-account.
func CheckAccountHeader(account string) error {
	if account != "" && !accountIDPattern.MatchString(account) {
		return latchkey.InvalidField("latchkey-account", "the header must be an account id, acct_<ULID>")
	}
	return nil
}

// Authenticate turns a person's JWT into the Principal of the profile in
// account (the AccountHeader's value), or of their only profile when
// account is empty. Errors: CodeUnauthenticated for a token the provider
// does not vouch for; CodeInvalidArgument (field latchkey-account) for a
// header that is not an account id; CodePermissionDenied when no profile
// of the person is in the account (or anywhere), or the profile or its
// account is suspended; CodeFailedPrecondition when the person has
// profiles in several accounts and named none.
func (p *People) Authenticate(ctx context.Context, raw, account string) (*Principal, error) {
	if err := CheckAccountHeader(account); err != nil {
		return nil, err
	}
	in, profiles, err := p.profiles(ctx, raw, account)
	if err != nil {
		return nil, err
	}
	var chosen *latchkey.PersonProfile
	switch {
	case account != "":
		for i := range profiles {
			if profiles[i].AccountID == account {
				chosen = &profiles[i]
			}
		}
		if chosen == nil {
			return nil, latchkey.Errorf(latchkey.CodePermissionDenied, "you have no profile in account %s", account)
		}
	case len(profiles) == 1:
		chosen = &profiles[0]
	case len(profiles) == 0:
		return nil, noProfile(in)
	default:
		return nil, latchkey.Errorf(latchkey.CodeFailedPrecondition,
			"you have profiles in %d accounts: name the account of the call with the %s header (AuthService.ListMyProfiles lists them)",
			len(profiles), strings.ToLower(AccountHeader))
	}
	principal, err := PersonPrincipal(chosen)
	if err != nil {
		return nil, err
	}
	principal.Expires = in.Expiry
	return principal, nil
}

// Profiles returns every profile bound to the person, read afresh (an
// account switcher must show a profile made a moment ago).
func (p *People) Profiles(ctx context.Context, raw string) ([]latchkey.PersonProfile, error) {
	in, err := p.ids.VerifySignIn(ctx, raw)
	if err != nil {
		return nil, err
	}
	return p.read(ctx, in)
}

// PersonPrincipal returns the principal of a person's profile, or the
// refusal of a suspended profile or account.
func PersonPrincipal(pp *latchkey.PersonProfile) (*Principal, error) {
	if pp.AccountSuspended {
		return nil, errAccountSuspended()
	}
	if pp.Suspended() {
		return nil, latchkey.Errorf(latchkey.CodePermissionDenied,
			"your profile in this account is suspended: ask its administrators to restore it")
	}
	name := pp.DisplayName
	if name == "" {
		name = pp.Email
	}
	return &Principal{
		AccountID: pp.AccountID, ProfileID: pp.ID, Name: name,
		Permissions: pp.Permissions, Operator: pp.AccountOperator,
		Method: MethodOIDC,
	}, nil
}

func noProfile(in latchkey.SignIn) error {
	if !in.EmailVerified {
		return latchkey.Errorf(latchkey.CodePermissionDenied,
			"no profile is bound to you, and your identity provider does not vouch for your email, so none can be: verify it there, or ask an administrator")
	}
	return latchkey.Errorf(latchkey.CodePermissionDenied,
		"no profile is bound to you: ask an administrator of the account to create a user profile for your email")
}

// profiles returns the verified sign-in and the identity's profiles, from
// the cache when it holds them, holds the account asked for, and may be
// trusted.
func (p *People) profiles(ctx context.Context, raw, account string) (latchkey.SignIn, []latchkey.PersonProfile, error) {
	in, err := p.ids.VerifySignIn(ctx, raw)
	if err != nil {
		return in, nil, err
	}
	key := cacheKey(in)
	now := p.now()
	if p.fresh == nil || p.fresh(now) {
		if e, ok := p.cache.Get(key); ok && now.Before(e.expires) && (account == "" || holds(e.profiles, account)) {
			return in, e.profiles, nil
		}
	}
	profiles, err := p.read(ctx, in)
	return in, profiles, err
}

// read asks the store, and caches the answer unless an invalidation ran
// meanwhile.
func (p *People) read(ctx context.Context, in latchkey.SignIn) ([]latchkey.PersonProfile, error) {
	gen := p.generation.Load()
	profiles, err := p.store.SignIn(ctx, in)
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case p.generation.Load() != gen:
		// A change ran meanwhile, maybe this very read's binding of a new
		// profile, which no entry held: what is cached for the sign-in is
		// older still.
		p.cache.Remove(cacheKey(in))
	case len(profiles) == 0:
		// No profile is not remembered: the person is likely to try again
		// as soon as an administrator has made one.
	default:
		p.cache.Add(cacheKey(in), peopleEntry{profiles: profiles, expires: p.now().Add(peopleTTL)})
	}
	return profiles, nil
}

// cacheKey keys a sign-in by everything that decides its profiles: the
// identity, and the email that may bind more of them.
func cacheKey(in latchkey.SignIn) string {
	verified := "0"
	if in.EmailVerified {
		verified = "1"
	}
	return in.Issuer + "\x00" + in.Subject + "\x00" + strings.ToLower(in.Email) + "\x00" + verified
}

func holds(profiles []latchkey.PersonProfile, account string) bool {
	for _, pp := range profiles {
		if pp.AccountID == account {
			return true
		}
	}
	return false
}

// ApplyChange drops the cached identities that hold the profile a
// person's change names, or a profile of the account a suspension or a
// restore names; no other, so that no tenant can flush everyone's entries
// by changing its own people.
func (p *People) ApplyChange(c latchkey.Change) {
	var hit func(latchkey.PersonProfile) bool
	switch {
	case c.Kind == latchkey.ChangePersonChanged:
		hit = func(pp latchkey.PersonProfile) bool { return pp.ID == c.ProfileID }
	case c.Kind.IsAccountChange():
		hit = func(pp latchkey.PersonProfile) bool { return pp.AccountID == c.AccountID }
	default:
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.generation.Add(1) // a read in flight may hold what changed
	for _, key := range p.cache.Keys() {
		if e, ok := p.cache.Peek(key); ok && slices.ContainsFunc(e.profiles, hit) {
			p.cache.Remove(key)
		}
	}
}

// ResetChanges drops every cached identity.
func (p *People) ResetChanges() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.generation.Add(1)
	p.cache.Purge()
}
