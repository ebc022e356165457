package oidc

import (
	"crypto/sha256"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
)

// tokenHash keys the cache: a SHA-256 of the token, so that no token is
// kept in memory past its verification, and a dump of the cache holds no
// credential.
type tokenHash [sha256.Size]byte

// verified is a remembered verification: the identity, and the instant
// from which a fresh verification would refuse the token as expired.
type verified struct {
	identity Identity
	until    time.Time
}

// cache remembers verified tokens so that a person's calls do not pay a
// signature check each time. An entry lasts until its token's expiry plus
// the leeway, exactly as long as verifying it again would succeed: the
// cache changes how fast an answer comes, never what it is. When the
// provider withdraws a key, everything is forgotten, so that a token
// signed by that key is checked again (and refused).
type cache struct {
	lru *lru.Cache[tokenHash, verified] // nil: remembering is off

	// mu orders fills against purges: a verification that checked its
	// signature with a key withdrawn meanwhile must not be stored after
	// the purge, or it would outlive its key.
	mu         sync.Mutex
	generation uint64
}

func newCache(size int) *cache {
	c := &cache{}
	if size > 0 {
		c.lru, _ = lru.New[tokenHash, verified](size)
	}
	return c
}

// get returns the identity remembered for h, if it is still valid at now.
func (c *cache) get(h tokenHash, now time.Time) (Identity, bool) {
	if c.lru == nil {
		return Identity{}, false
	}
	v, ok := c.lru.Get(h)
	if !ok {
		return Identity{}, false
	}
	if !now.Before(v.until) {
		c.lru.Remove(h)
		return Identity{}, false
	}
	return v.identity, true
}

// gen is the generation a verification starts at.
func (c *cache) gen() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.generation
}

// add remembers a verification that started at generation gen, unless a
// purge ran since.
func (c *cache) add(h tokenHash, v verified, gen uint64) {
	if c.lru == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.generation != gen {
		return
	}
	c.lru.Add(h, v)
}

// purge forgets every verification.
func (c *cache) purge() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.generation++
	if c.lru != nil {
		c.lru.Purge()
	}
}

// len is how many verifications are remembered.
func (c *cache) len() int {
	if c.lru == nil {
		return 0
	}
	return c.lru.Len()
}
