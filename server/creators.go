package server

import (
	"context"

	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/latchkey/latchkey"
)

// creatorCacheSize bounds the profiles kept for rendering created_by.
const creatorCacheSize = 10_000

// creators caches the profiles that keys name as their creator, so that
// rendering a key (every Issue response) does not read its creator again.
// A profile never changes once created — no RPC updates or deletes one —
// so an entry cannot go stale and no write has to drop it.
type creators struct {
	store latchkey.Store
	cache *lru.Cache[string, latchkey.Profile]
}

func newCreators(store latchkey.Store) *creators {
	c, _ := lru.New[string, latchkey.Profile](creatorCacheSize)
	return &creators{store: store, cache: c}
}

// get returns the profile id of the account, as GetProfile does.
func (c *creators) get(ctx context.Context, accountID, id string) (latchkey.Profile, error) {
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
