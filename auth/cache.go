package auth

import (
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/latchkey/latchkey"
)

// Cache sizes and lifetimes. An entry is dropped by the write that changes
// its verdict on this server, before that write is acknowledged; the TTL
// only bounds how long a write made elsewhere (another process on the same
// database) can go unseen.
const (
	DefaultCacheKeys      = 100_000
	DefaultCacheMissing   = 10_000
	DefaultCacheTTL       = 10 * time.Second
	maxWorkspacesPerEntry = 64
)

// cache keeps what verification needs about recently seen keys, keyed by
// the ULID of the key id. Unknown ids live in a separate, smaller cache,
// so that a flood of random ids neither evicts real keys nor reaches the
// database again for an id it has already asked about.
type cache struct {
	ttl     time.Duration
	keys    *lru.Cache[string, *cachedKey]
	missing *lru.Cache[string, time.Time] // ULID → until when "not found" holds

	// mu orders fills against invalidations: a fill that read the
	// database before an invalidation finished must not be stored after
	// it, or a revoked key could come back from a stale read.
	mu         sync.Mutex
	generation atomic.Uint64

	// evicted, when set, is told of each entry dropped to make room, and
	// whether it was an unknown id's.
	evicted func(missing bool)
}

// cachedKey is one key's credential, with its CIDRs parsed once.
type cachedKey struct {
	cred    latchkey.Credential
	cidrs   []netip.Prefix
	expires time.Time
	// lastUse is when a use of the key was last queued for recording, in
	// Unix nanoseconds; it keeps last-used writes to one a minute.
	lastUse atomic.Int64
	// rehashed holds, for the current (0) and previous (1) secret, whether
	// a rehash under the current pepper was queued or a warning about a
	// pepper the server lacks was logged: once per entry, not per call.
	rehashed [2]atomic.Bool

	mu         sync.Mutex
	workspaces map[string]bool // workspace id → granted and active
}

func newCache(keys, missing int, ttl time.Duration) *cache {
	k, _ := lru.New[string, *cachedKey](keys)
	m, _ := lru.New[string, time.Time](missing)
	return &cache{ttl: ttl, keys: k, missing: m}
}

// get returns the live entry for ulid, and whether the id is known to be
// missing.
func (c *cache) get(ulid string, now time.Time) (entry *cachedKey, missing bool) {
	if e, ok := c.keys.Get(ulid); ok && now.Before(e.expires) {
		return e, false
	}
	if until, ok := c.missing.Get(ulid); ok && now.Before(until) {
		return nil, true
	}
	return nil, false
}

// fill stores what was read from the database at generation gen, unless
// an invalidation ran since.
func (c *cache) fill(ulid string, cred *latchkey.Credential, gen uint64, now time.Time) *cachedKey {
	var e *cachedKey
	if cred != nil {
		e = &cachedKey{cred: *cred, expires: now.Add(c.ttl), cidrs: parseCIDRs(cred.Key.AllowedCIDRs)}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.generation.Load() != gen {
		return e
	}
	// The key is cloned: ulid points into the caller's token, whose secret
	// must not stay in memory as a map key.
	ulid = strings.Clone(ulid)
	var evicted bool
	if e == nil {
		evicted = c.missing.Add(ulid, now.Add(c.ttl))
	} else {
		evicted = c.keys.Add(ulid, e)
	}
	if evicted && c.evicted != nil {
		c.evicted(e == nil)
	}
	return e
}

// invalidate drops what is cached about one key.
func (c *cache) invalidate(ulid string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.generation.Add(1)
	c.keys.Remove(ulid)
	c.missing.Remove(ulid)
}

// invalidateAccount drops every cached key of the account, for a
// suspension or a restore. It walks the whole cache, which is rare enough
// (an operator's act) to cost less than the misses a full flush would make
// on every replica.
func (c *cache) invalidateAccount(accountID string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.generation.Add(1)
	for _, ulid := range c.keys.Keys() {
		if e, ok := c.keys.Peek(ulid); ok && e.cred.Key.AccountID == accountID {
			c.keys.Remove(ulid)
		}
	}
}

// invalidateAll drops every cached key, for writes that may change the
// verdict of many keys at once, such as archiving a workspace.
func (c *cache) invalidateAll() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.generation.Add(1)
	c.keys.Purge()
	c.missing.Purge()
}

// workspace returns a cached answer for workspaceID.
func (e *cachedKey) workspace(workspaceID string) (granted, ok bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	granted, ok = e.workspaces[workspaceID]
	return granted, ok
}

// setWorkspace caches an answer read at generation gen.
func (c *cache) setWorkspace(e *cachedKey, workspaceID string, granted bool, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.generation.Load() != gen {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.workspaces == nil || len(e.workspaces) >= maxWorkspacesPerEntry {
		e.workspaces = make(map[string]bool)
	}
	e.workspaces[strings.Clone(workspaceID)] = granted
}

// allowed reports whether addr is inside the entry's parsed CIDRs.
func (e *cachedKey) allowed(addr netip.Addr) bool {
	return addressAllowed(e.cred.Key.AllowedCIDRs, e.cidrs, addr)
}

// parseCIDRs parses a key's allowed CIDRs; the store holds only valid ones.
func parseCIDRs(cidrs []string) []netip.Prefix {
	var out []netip.Prefix
	for _, s := range cidrs {
		if p, err := ParseCIDR(s); err == nil {
			out = append(out, p)
		}
	}
	return out
}

// addressAllowed is the one address rule: a key whose allowed CIDRs
// (cidrs, parsed as prefixes) are empty admits every address, even none;
// otherwise addr must be inside one of them.
func addressAllowed(cidrs []string, prefixes []netip.Prefix, addr netip.Addr) bool {
	if len(cidrs) == 0 {
		return true
	}
	if !addr.IsValid() {
		return false
	}
	addr = addr.Unmap()
	for _, p := range prefixes {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}
