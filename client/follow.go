package client

import (
	"context"
	"errors"
	"time"

	latchkeyv1 "github.com/latchkey/latchkey/gen/latchkey/v1"
)

// follow keeps the change stream open until ctx ends, dropping the
// verdicts of every key that changes: the key a change names, every key of
// an account suspended or restored, and every key for a change that names
// neither (an archived workspace, or a kind this client does not know). A
// stream that ends is opened again at once, then with a growing pause;
// every cached verdict is dropped on reconnecting, since changes made while
// it was away reached nobody, and the cache is bypassed until the new
// stream has spoken.
func (c *Client) follow(ctx context.Context) {
	defer close(c.done)
	backoff := 10 * time.Millisecond
	for ctx.Err() == nil {
		heard, err := c.followOnce(ctx)
		c.heard.Store(0)
		if ctx.Err() != nil {
			return
		}
		c.opts.Logger.Warn("latchkey client: the change stream ended; verifying without the cache until it is back", "err", err)
		if heard {
			backoff = 10 * time.Millisecond
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// followOnce reads one stream until it fails, and reports whether it got
// as far as a message.
func (c *Client) followOnce(ctx context.Context) (heard bool, err error) {
	stream, err := c.auth.WatchKeyChanges(ctx, &latchkeyv1.WatchKeyChangesRequest{})
	if err != nil {
		return false, err
	}
	defer stream.Close()
	for {
		res, err := stream.Receive()
		if err != nil {
			return heard, err
		}
		if !heard {
			// Whatever changed while no stream was open is unknown; after a
			// first stream, what replicas answer needs time to settle too.
			c.cache.dropAll(time.Now(), c.reconnecting)
			c.reconnecting = true
			heard = true
		}
		if ch := res.GetChange(); accountChange(ch.GetKind()) && ch.GetAccountId() != "" {
			// A suspension, a restore or an archived workspace names its
			// account and no key: keys of that account, and only those,
			// may have changed verdict.
			c.cache.dropAccount(ch.GetAccountId(), time.Now())
			c.heard.Store(time.Now().UnixNano())
			continue
		}
		switch {
		case res.GetChange() != nil:
			if id := res.GetChange().GetApiKeyId(); id != "" {
				c.cache.drop(id, time.Now())
			} else if res.GetChange().GetKind() != latchkeyv1.KeyChangeKind_KEY_CHANGE_KIND_GRANTS_CHANGED {
				c.cache.dropAll(time.Now(), true) // a kind this client does not know: anything may have changed
			} // a person's grants: no key acts through them
		case res.GetResetCache() != nil:
			c.cache.dropAll(time.Now(), true)
		case res.GetHeartbeat() == nil:
			return heard, errors.New("an empty message on the change stream")
		}
		c.heard.Store(time.Now().UnixNano())
	}
}

// accountChange reports whether k may have changed any key of its account
// at once, and no other account's key: a workspace belongs to one
// account, and only its keys can be granted it.
func accountChange(k latchkeyv1.KeyChangeKind) bool {
	return k == latchkeyv1.KeyChangeKind_KEY_CHANGE_KIND_ACCOUNT_SUSPENDED ||
		k == latchkeyv1.KeyChangeKind_KEY_CHANGE_KIND_ACCOUNT_RESTORED ||
		k == latchkeyv1.KeyChangeKind_KEY_CHANGE_KIND_WORKSPACE_ARCHIVED
}

// fresh reports whether the stream has spoken within StaleAfter, so that
// cached verdicts may be trusted.
func (c *Client) fresh() bool {
	h := c.heard.Load()
	return h != 0 && time.Now().UnixNano()-h <= int64(c.opts.StaleAfter)
}
