package auth

import (
	"context"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/metric"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/pepper"
	"github.com/latchkey/latchkey/token"
)

// Outcome is what verifying a token found, numbered in the order the
// checks run.
type Outcome int

// Verification outcomes, numbered as the proto's VerifyCode.
const (
	OutcomeUnspecified Outcome = iota
	OutcomeValid
	OutcomeMalformed
	OutcomeNotFound
	OutcomeRevoked
	OutcomeExpired
	OutcomeIPNotAllowed
	OutcomeWorkspaceDenied
	OutcomePermissionDenied
	OutcomeAccountSuspended
)

// Requirements are what a token must admit beyond being valid.
type Requirements struct {
	// AccountID, when set, limits the lookup to one account: a key of
	// another account is OutcomeNotFound, as if it did not exist.
	AccountID string
	// ClientIP is checked against the key's allowed CIDRs. An invalid
	// (zero) address fails any key that has an allow-list.
	ClientIP netip.Addr
	// WorkspaceID, when set, must be granted to the key and active.
	WorkspaceID string
	// Permissions must all be held by the key.
	Permissions []string
}

// Verdict is the result of Verifier.Verify. Credential is set whenever the
// key was found and the secret matched, valid or not.
type Verdict struct {
	Outcome    Outcome
	Credential *latchkey.Credential
}

// Valid reports whether the token admitted everything asked.
func (v Verdict) Valid() bool { return v.Outcome == OutcomeValid }

// Verifier checks tokens against the store. It is the single code path for
// authenticating callers and for AuthService.Verify. It keeps recently seen
// keys in a bounded cache that the store's change log invalidates (it is a
// latchkey.ChangeSink), and it records when keys were last used, at most
// once a minute per key.
type Verifier struct {
	store  KeyStore
	hasher *pepper.Hasher
	prefix string
	now    func() time.Time
	logger *slog.Logger
	// unheldWarned holds, by key id, when a key hashed with a pepper this
	// server lacks was last logged. Only stranded keys enter it.
	unheldWarned sync.Map
	cache        *cache
	usage        *usage
	fresh        func(now time.Time) bool
	m            verifierMetrics
}

// VerifierOptions tunes a Verifier; zero values take the defaults.
type VerifierOptions struct {
	Now func() time.Time
	// CacheKeys and CacheMissing bound the cached keys and unknown ids.
	CacheKeys, CacheMissing int
	// CacheTTL bounds how long a cached key is trusted without a reload.
	CacheTTL time.Duration
	// FlushInterval is how often last-used times are written.
	FlushInterval time.Duration
	// Fresh, when set, reports whether the cache has seen every change
	// made elsewhere (by another replica) up to a bound before now. While
	// it is false, cached verdicts are not used: every verification reads
	// the store, and fails if the store cannot answer.
	Fresh  func(now time.Time) bool
	Logger *slog.Logger
	// Meter, when set, gets the verifier's instruments: outcomes, cache
	// lookups, invalidations and size.
	Meter metric.Meter
}

// NewVerifier returns a Verifier that accepts only tokens with the given
// prefix, hashed with hasher. Close it to write the last-used times it
// holds.
func NewVerifier(store KeyStore, hasher *pepper.Hasher, prefix string, opts VerifierOptions) *Verifier {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.CacheKeys <= 0 {
		opts.CacheKeys = DefaultCacheKeys
	}
	if opts.CacheMissing <= 0 {
		opts.CacheMissing = DefaultCacheMissing
	}
	if opts.CacheTTL <= 0 {
		opts.CacheTTL = DefaultCacheTTL
	}
	if opts.FlushInterval <= 0 {
		opts.FlushInterval = DefaultFlushInterval
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	v := &Verifier{
		store: store, hasher: hasher, prefix: prefix, now: opts.Now, logger: opts.Logger,
		cache: newCache(opts.CacheKeys, opts.CacheMissing, opts.CacheTTL),
		fresh: opts.Fresh,
		m:     newVerifierMetrics(opts.Meter),
	}
	v.cache.evicted = v.m.evictedOne
	v.usage = newUsage(store, opts.Logger, opts.FlushInterval, v.m.flushed)
	observeGauges(opts.Meter, v.cache.keys.Len, v.usage.depth)
	return v
}

// Invalidate drops what the verifier caches about a key. The metrics
// count the change log's invalidations (ApplyChange), not these calls.
func (v *Verifier) Invalidate(keyID string) {
	if ulid, ok := strings.CutPrefix(keyID, latchkey.PrefixAPIKey+"_"); ok {
		v.cache.invalidate(ulid)
	}
}

// InvalidateAll drops every cached key.
func (v *Verifier) InvalidateAll() { v.cache.invalidateAll() }

// ApplyChange drops what c may have made wrong: the key it names, every
// key of the account for a suspension, a restore or an archived
// workspace, or everything for a change of a kind it does not know. A change of a profile that no key
// acts through (a user's) leaves the cache as it is, since the cache holds
// keys only. The verifier follows the store's change
// log through it (latchkey.ChangeLog.Follow), so that every write, through
// any handler or none, reaches the cache before it returns.
func (v *Verifier) ApplyChange(c latchkey.Change) {
	if v.m.lag != nil && !c.Time.IsZero() {
		v.m.lag.Record(context.Background(), max(0, v.now().Sub(c.Time).Seconds()))
	}
	if c.KeyID != "" {
		v.Invalidate(c.KeyID)
		v.m.dropped("key", c.Source)
		return
	}
	if c.Kind.IsAccountChange() {
		v.cache.invalidateAccount(c.AccountID)
		v.m.dropped("account", c.Source)
		return
	}
	if c.Kind == latchkey.ChangeWorkspaceArchived {
		// A workspace is one account's: only its keys can be granted it,
		// so no tenant can flush every account's cache by archiving.
		v.cache.invalidateAccount(c.AccountID)
		v.m.dropped("account", c.Source)
		return
	}
	if c.Kind == latchkey.ChangeGrantsChanged && c.ProfileID != "" {
		return // a person's grants: no key of the cache acts through them
	}
	if c.Kind == latchkey.ChangePersonChanged {
		return // a person's profile: no key of the cache acts through it
	}
	v.InvalidateAll()
	v.m.dropped("all", c.Source)
}

// ResetChanges drops everything: the follower may have missed changes.
func (v *Verifier) ResetChanges() {
	v.InvalidateAll()
	v.m.dropped("all", sourceReset)
}

// Close writes the last-used times not yet written.
func (v *Verifier) Close(ctx context.Context) error { return v.usage.close(ctx) }

// Verify checks raw against req. A token that fails is a Verdict, not an
// error: the error is kept for the store failing. A cached key is checked
// without allocating or touching the database.
func (v *Verifier) Verify(ctx context.Context, raw string, req Requirements) (Verdict, error) {
	verdict, err := v.verify(ctx, raw, req)
	if err != nil {
		v.m.storeErrors.add(ctx)
	} else {
		v.m.outcomes[verdict.Outcome].add(ctx)
	}
	return verdict, err
}

func (v *Verifier) verify(ctx context.Context, raw string, req Requirements) (Verdict, error) {
	// Shape and checksum first, so garbage never reaches the database.
	tok, err := token.Parse(raw)
	if err != nil || tok.Prefix != v.prefix {
		return Verdict{Outcome: OutcomeMalformed}, nil
	}
	now := v.now()
	entry, err := v.lookup(ctx, tok.ULID(), now)
	if err != nil {
		return Verdict{}, err
	}
	if entry == nil {
		return Verdict{Outcome: OutcomeNotFound}, nil
	}
	cred := &entry.cred
	// A key of another account, a wrong secret and a token whose
	// environment is not the key's all look exactly like an unknown key, so
	// that nothing about the key leaks to whoever lacks its secret.
	if req.AccountID != "" && cred.Key.AccountID != req.AccountID {
		return Verdict{Outcome: OutcomeNotFound}, nil
	}
	if tok.Environment != cred.Key.Environment {
		return Verdict{Outcome: OutcomeNotFound}, nil
	}
	matched := v.secretMatches(tok.Secret(), entry, now)
	if matched == noSecret {
		return Verdict{Outcome: OutcomeNotFound}, nil
	}
	verdict := Verdict{Credential: cred}
	switch cred.Key.State(now) {
	case latchkey.KeyStateRevoked:
		verdict.Outcome = OutcomeRevoked
	case latchkey.KeyStateExpired:
		verdict.Outcome = OutcomeExpired
	default:
		// A suspension outranks what the key admits, but not its
		// revocation or expiry, which outlast the suspension, nor its
		// address rule: a stolen secret used from outside the key's
		// addresses learns nothing of the account.
		switch {
		case !entry.allowed(req.ClientIP):
			verdict.Outcome = OutcomeIPNotAllowed
		case cred.AccountSuspended:
			verdict.Outcome = OutcomeAccountSuspended
		default:
			verdict.Outcome = OutcomeValid
			// Only a call that passes the key's address rule and its
			// account's state writes anything, a rehash included.
			v.rehash(entry, matched, tok.Secret())
		}
	}
	if verdict.Outcome != OutcomeValid {
		return verdict, nil
	}
	if req.WorkspaceID != "" {
		ok, err := v.workspaceAccess(ctx, entry, req.WorkspaceID)
		if err != nil {
			return Verdict{}, err
		}
		if !ok {
			verdict.Outcome = OutcomeWorkspaceDenied
			return verdict, nil
		}
	}
	for _, p := range req.Permissions {
		// The server's own rule: what the key could not use against
		// Latchkey itself, it does not hold for anyone else either.
		if !Holds(cred.Key.Permissions, cred.Operator, p) {
			verdict.Outcome = OutcomePermissionDenied
			return verdict, nil
		}
	}
	v.usage.touch(entry, now)
	return verdict, nil
}

// lookup returns the cached entry for ulid, reading the store on a miss;
// nil means no such key.
func (v *Verifier) lookup(ctx context.Context, ulid string, now time.Time) (*cachedKey, error) {
	if v.fresh == nil || v.fresh(now) {
		entry, missing := v.cache.get(ulid, now)
		if entry != nil || missing {
			v.m.hits.add(ctx)
			return entry, nil
		}
	}
	v.m.misses.add(ctx)
	gen := v.cache.generation.Load()
	cred, err := v.store.GetCredential(ctx, latchkey.PrefixAPIKey+"_"+ulid)
	switch latchkey.ErrorCode(err) {
	case "":
		return v.cache.fill(ulid, &cred, gen, now), nil
	case latchkey.CodeNotFound:
		v.cache.fill(ulid, nil, gen, now)
		return nil, nil
	default:
		return nil, err
	}
}

// workspaceAccess answers from the entry when it can, else from the store.
func (v *Verifier) workspaceAccess(ctx context.Context, e *cachedKey, workspaceID string) (bool, error) {
	if granted, ok := e.workspace(workspaceID); ok {
		return granted, nil
	}
	gen := v.cache.generation.Load()
	granted, err := v.store.WorkspaceAccess(ctx, e.cred.Key.AccountID, e.cred.Key.ProfileID, workspaceID)
	if err != nil {
		return false, err
	}
	v.cache.setWorkspace(e, workspaceID, granted, gen)
	return granted, nil
}

// Which secret of a key a token's secret matched.
const (
	currentSecret  = 0
	previousSecret = 1
	noSecret       = -1
)

// secretMatches compares the secret with the current hash and, during a
// rotation grace period, the previous one, and says which matched. Both
// comparisons always run so that timing does not tell which secret matched.
func (v *Verifier) secretMatches(secret string, e *cachedKey, now time.Time) int {
	cred := &e.cred
	current := v.hasher.Verify(secret, cred.Current)
	previous := false
	if cred.Previous != nil && now.Before(cred.PreviousExpire) {
		previous = v.hasher.Verify(secret, *cred.Previous)
		if !previous {
			v.warnUnheld(e, previousSecret, *cred.Previous)
		}
	}
	if !current {
		// A hash that matched was made with a pepper this server holds.
		v.warnUnheld(e, currentSecret, cred.Current)
	}
	switch {
	case current:
		return currentSecret
	case previous:
		return previousSecret
	default:
		return noSecret
	}
}

// unheldWarnEvery spaces the warnings about one stranded key.
const unheldWarnEvery = time.Hour

// warnUnheld logs, at most once an hour per key, that a key's hash was made with
// a pepper this server does not hold (a retired one): no secret can match
// it, and the operator should know why the key is refused.
func (v *Verifier) warnUnheld(e *cachedKey, which int, stored latchkey.SecretHash) {
	if v.hasher.Holds(stored.PepperVersion) || e.rehashed[which].Swap(true) {
		return
	}
	// Cache entries are rebuilt every few seconds, and anyone who knows a
	// key's id can make one: the line is logged once an hour per key.
	now := v.now()
	if last, ok := v.unheldWarned.Load(e.cred.Key.ID); ok && now.Sub(last.(time.Time)) < unheldWarnEvery {
		return
	}
	v.unheldWarned.Store(e.cred.Key.ID, now)
	secret := "current"
	if which == previousSecret {
		secret = "previous"
	}
	v.logger.Warn("a key's secret is hashed with a pepper this server does not hold, so it is refused: rotate or reissue the key",
		"key_id", e.cred.Key.ID, "secret", secret, "pepper", stored.PepperVersion)
}

// rehash queues, once per cached entry, the matched secret's hash under
// the current pepper when it was made with an older one. The hash is made
// here, so the secret itself is never kept; the write happens with the
// next flush of last-used times, off the request's path.
func (v *Verifier) rehash(e *cachedKey, which int, secret string) {
	stored := e.cred.Current
	if which == previousSecret {
		stored = *e.cred.Previous
	}
	// Only ever forward: a replica still on an older current pepper (the
	// new one staged) must not move keys back under it.
	if stored.PepperVersion >= v.hasher.Current() || e.rehashed[which].Swap(true) {
		return
	}
	v.usage.rehash(latchkey.Rehash{KeyID: e.cred.Key.ID, Old: stored, New: v.hasher.Hash(secret)})
}

// ParseCIDR parses a CIDR prefix or a bare address (as a full-length
// prefix). IPv4-mapped IPv6 forms are unmapped so they match IPv4 peers.
func ParseCIDR(s string) (netip.Prefix, error) {
	if !strings.Contains(s, "/") {
		addr, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Prefix{}, err
		}
		addr = addr.Unmap()
		return netip.PrefixFrom(addr, addr.BitLen()), nil
	}
	prefix, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	if prefix.Addr().Is4In6() {
		if prefix.Bits() >= 96 {
			return netip.PrefixFrom(prefix.Addr().Unmap(), prefix.Bits()-96), nil
		}
		// Shorter than the mapped range, it is an IPv6 network that only
		// looks like IPv4 (::ffff:0.0.0.0/0 is all of IPv6): say so.
		return prefix.Masked(), nil
	}
	return prefix, nil
}
