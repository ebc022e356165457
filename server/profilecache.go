package server

import (
	"context"

	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/latchkey/latchkey"
)

// profileCacheSize bounds the profiles kept for rendering created_by.
const profileCacheSize = 10_000

// profileCache keeps the profiles that keys name as their creator, so that
// rendering a key (every Issue response) does not read its creator again.
// Profiles change (an API key's permissions are its profile's), so the
// cache follows the store's change log like the verifier's: a change that
// names a profile drops it, a reset drops everything.
type profileCache struct {
	store latchkey.Store
	cache *lru.Cache[string, latchkey.Profile]
}

func newProfileCache(store latchkey.Store) *profileCache {
	c, _ := lru.New[string, latchkey.Profile](profileCacheSize)
	return &profileCache{store: store, cache: c}
}

// get returns the profile id of the account, as GetProfile does.
func (c *profileCache) get(ctx context.Context, accountID, id string) (latchkey.Profile, error) {
	if p, ok := c.cache.Get(id); ok {
		if p.AccountID != accountID {
			return latchkey.Profile{}, latchkey.NotFound("profile", id)
		}
		return p, nil
	}
	p, err := c.store.GetProfile(ctx, accountID, id)
	if err != nil {
		return p, err
	}
	c.cache.Add(id, p)
	return p, nil
}

// ApplyChange drops the profile c names, if any.
func (c *profileCache) ApplyChange(ch latchkey.Change) {
	if ch.ProfileID != "" {
		c.cache.Remove(ch.ProfileID)
	}
}

// ResetChanges drops every profile.
func (c *profileCache) ResetChanges() { c.cache.Purge() }

// changeSinks feeds one follower of the change log to several caches.
type changeSinks []latchkey.ChangeSink

func (s changeSinks) ApplyChange(c latchkey.Change) {
	for _, sink := range s {
		sink.ApplyChange(c)
	}
}

func (s changeSinks) ResetChanges() {
	for _, sink := range s {
		sink.ResetChanges()
	}
}
