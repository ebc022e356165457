package client

import (
	"crypto/sha256"
	"encoding/binary"
	"sync"
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"

	latchkeyv1 "github.com/latchkey/latchkey/gen/latchkey/v1"
)

// key names a verdict: a hash of the token and the requirements, so that
// the cache holds no token.
type key [sha256.Size]byte

// cacheKey hashes token and req without allocating. Each field goes in
// with its length, so that no two different pairs of token and
// requirements are the same bytes.
func cacheKey(token string, req Requirements) key {
	var buf [1024]byte
	field := func(b []byte, s string) []byte {
		b = binary.AppendUvarint(b, uint64(len(s)))
		return append(b, s...)
	}
	b := field(buf[:0], token)
	b = field(b, req.Workspace)
	b = binary.AppendUvarint(b, uint64(len(req.Permissions)))
	for _, p := range req.Permissions {
		b = field(b, p)
	}
	if req.ClientIP.IsValid() {
		b = req.ClientIP.AppendTo(b)
	}
	return sha256.Sum256(b)
}

// entry is a cached verdict and when it stops holding.
type entry struct {
	verdict
	expires time.Time
}

// cache keeps verdicts of known keys, indexed by key id so that a change
// drops every verdict of its key, and verdicts of tokens that name no key
// in a smaller cache of their own.
type cache struct {
	mu      sync.Mutex
	known   *lru.Cache[key, entry]
	unknown *lru.Cache[key, entry]
	byKey   map[string]map[key]struct{} // key id → its verdicts
	// dropped, droppedAccount and droppedAll are when a key's verdicts,
	// an account's or all of them were last dropped: for Options.Settle
	// after, no verdict of the key (of the account, of any key) is stored.
	dropped        map[string]time.Time
	droppedAccount map[string]time.Time
	droppedAll     time.Time
	// gen orders fills against drops: a verdict read before a drop
	// finished is not stored after it.
	gen atomic.Uint64
}

func newCache(known, unknown int) *cache {
	c := &cache{byKey: map[string]map[key]struct{}{}, dropped: map[string]time.Time{}, droppedAccount: map[string]time.Time{}}
	c.known, _ = lru.NewWithEvict(known, func(k key, e entry) { c.unindex(k, e.KeyID) })
	c.unknown, _ = lru.New[key, entry](unknown)
	return c
}

func (c *cache) generation() uint64 { return c.gen.Load() }

// get returns a live verdict for k.
func (c *cache) get(k key, now time.Time) (Result, bool) {
	if e, ok := c.known.Get(k); ok && now.Before(e.expires) {
		return e.Result, true
	}
	if e, ok := c.unknown.Get(k); ok && now.Before(e.expires) {
		return e.Result, true
	}
	return Result{}, false
}

// put stores v, read at generation gen, unless a drop ran since or the
// key (or everything) was dropped less than settle ago.
func (c *cache) put(k key, v verdict, gen uint64, now time.Time, ttl, settle time.Duration) {
	e := entry{verdict: v, expires: now.Add(ttl)}
	if !v.until.IsZero() && v.until.Before(e.expires) {
		e.expires = v.until
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen.Load() != gen || now.Sub(c.droppedAll) < settle {
		return
	}
	if at, ok := c.dropped[v.KeyID]; ok {
		if now.Sub(at) < settle {
			return
		}
		delete(c.dropped, v.KeyID)
	}
	if at, ok := c.droppedAccount[v.AccountID]; ok {
		if now.Sub(at) < settle {
			return
		}
		delete(c.droppedAccount, v.AccountID)
	}
	if v.KeyID == "" {
		if v.Code == latchkeyv1.VerifyCode_VERIFY_CODE_NOT_FOUND || v.Code == latchkeyv1.VerifyCode_VERIFY_CODE_MALFORMED {
			c.unknown.Add(k, e)
		}
		return
	}
	c.known.Add(k, e)
	set := c.byKey[v.KeyID]
	if set == nil {
		set = map[key]struct{}{}
		c.byKey[v.KeyID] = set
	}
	set[k] = struct{}{}
}

// drop removes every verdict of the key keyID, at now.
func (c *cache) drop(keyID string, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen.Add(1)
	c.dropped[keyID] = now
	forgetSettled(c.dropped, now)
	for k := range c.byKey[keyID] {
		c.known.Remove(k) // its eviction callback unindexes it
	}
	delete(c.byKey, keyID)
}

// dropAccount removes every verdict of a key of the account accountID,
// at now, for a suspension or a restore. It walks the whole cache, which
// is rare enough (an operator's act) to cost less than the misses that
// dropping everything would make. Verdicts of tokens that name no key
// (the unknown cache) are no key's, and stay.
func (c *cache) dropAccount(accountID string, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen.Add(1)
	c.droppedAccount[accountID] = now
	forgetSettled(c.droppedAccount, now)
	for _, k := range c.known.Keys() {
		// A verdict of a key always names the key's account (Verify sets
		// both); one that did not might be of this account, and goes too.
		if e, ok := c.known.Peek(k); ok && (e.AccountID == accountID || e.AccountID == "") {
			c.known.Remove(k) // its eviction callback unindexes it
		}
	}
}

// forgetSettled forgets, once there are many, the drops long settled.
func forgetSettled(dropped map[string]time.Time, now time.Time) {
	if len(dropped) > 4096 {
		for id, at := range dropped {
			if now.Sub(at) > time.Minute {
				delete(dropped, id)
			}
		}
	}
}

// dropAll removes every verdict, at now; with settle, no verdict is stored
// for Options.Settle after.
func (c *cache) dropAll(now time.Time, settle bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen.Add(1)
	if settle {
		c.droppedAll = now
	}
	c.known.Purge()
	c.unknown.Purge()
	c.byKey = map[string]map[key]struct{}{}
}

// unindex forgets k under keyID; the lru calls it on every removal, with
// c.mu held by the caller of the removal or, for an eviction by Add, by
// put.
func (c *cache) unindex(k key, keyID string) {
	if set := c.byKey[keyID]; set != nil {
		delete(set, k)
		if len(set) == 0 {
			delete(c.byKey, keyID)
		}
	}
}

// wellFormed is a cheap local check of a token's shape,
// <prefix>_<live|test>_<26-character ULID>_<38 base62 characters>, so
// that garbage never costs a call. Latchkey checks the checksum.
func wellFormed(s string) bool {
	const tail = 1 + 4 + 1 + 26 + 1 + 38 // _env_ulid_secret+checksum
	n := len(s) - tail
	if n < 2 || n > 8 {
		return false
	}
	for i := 0; i < n; i++ {
		if !(s[i] >= 'a' && s[i] <= 'z' || i > 0 && s[i] >= '0' && s[i] <= '9') {
			return false
		}
	}
	rest := s[n:]
	if rest[0] != '_' || (rest[1:6] != "live_" && rest[1:6] != "test_") || rest[32] != '_' {
		return false
	}
	for i := 6; i < len(rest); i++ {
		if i == 32 {
			continue
		}
		ch := rest[i]
		if !(ch >= '0' && ch <= '9' || ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z') {
			return false
		}
	}
	return true
}
