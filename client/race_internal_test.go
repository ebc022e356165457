package client

import (
	"context"
	"testing"
	"time"

	latchkeyv1 "github.com/latchkey/latchkey/gen/latchkey/v1"
	"github.com/latchkey/latchkey/gen/latchkey/v1/latchkeyv1connect"
)

// slowAuth answers Verify with valid once released.
type slowAuth struct {
	latchkeyv1connect.AuthServiceClient
	started, release chan struct{}
	calls            int
}

func (a *slowAuth) Verify(ctx context.Context, req *latchkeyv1.VerifyRequest) (*latchkeyv1.VerifyResponse, error) {
	a.calls++
	if a.calls == 1 {
		close(a.started)
		<-a.release
	}
	return &latchkeyv1.VerifyResponse{Valid: true, Code: latchkeyv1.VerifyCode_VERIFY_CODE_VALID,
		ApiKey: &latchkeyv1.ApiKey{Metadata: &latchkeyv1.AccountResourceMetadata{Id: "key_1"}}}, nil
}

// A call to Latchkey that began before a key was dropped must not be
// cached by a caller that joined it after the drop: that caller's view of
// the cache generation is newer than the answer.
func TestJoinedCallAfterADropIsNotCached(t *testing.T) {
	auth := &slowAuth{started: make(chan struct{}), release: make(chan struct{})}
	c := &Client{opts: Options{TTL: time.Hour, Timeout: time.Second, Settle: time.Nanosecond}, auth: auth, cache: newCache(10, 10)}
	c.heard.Store(time.Now().UnixNano())
	c.opts.StaleAfter = time.Hour
	tok := "lk_live_01JD0000000000000000000000_" + "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"

	first := make(chan struct{})
	go func() { defer close(first); c.Verify(context.Background(), tok, Requirements{}) }() // A: the call
	<-auth.started
	c.cache.drop("key_1", time.Now().Add(-time.Second)) // the revocation arrives meanwhile
	joined := make(chan struct{})
	go func() { defer close(joined); c.Verify(context.Background(), tok, Requirements{}) }() // B joins A's call
	time.Sleep(50 * time.Millisecond)
	close(auth.release)
	<-first
	<-joined
	if _, ok := c.cache.get(cacheKey(tok, Requirements{}), time.Now()); ok {
		t.Fatal("an answer read before the drop was cached")
	}
}

// A key that just changed may still be answered the old way by a replica
// that has not caught up: for Settle after the drop, no answer about it is
// cached, so such an answer cannot outlive the replica's lag.
func TestAnswersAreNotCachedWhileAChangeSettles(t *testing.T) {
	auth := &slowAuth{started: make(chan struct{}), release: make(chan struct{})}
	close(auth.release)
	c := &Client{opts: Options{TTL: time.Hour, Timeout: time.Second, Settle: 200 * time.Millisecond, StaleAfter: time.Hour}, auth: auth, cache: newCache(10, 10)}
	c.heard.Store(time.Now().UnixNano())
	tok := "lk_live_01JD0000000000000000000000_" + "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	k := cacheKey(tok, Requirements{})
	c.cache.drop("key_1", time.Now())
	c.Verify(context.Background(), tok, Requirements{})
	if _, ok := c.cache.get(k, time.Now()); ok {
		t.Fatal("an answer about a key dropped just now was cached")
	}
	time.Sleep(250 * time.Millisecond)
	c.heard.Store(time.Now().UnixNano())
	c.Verify(context.Background(), tok, Requirements{})
	if _, ok := c.cache.get(k, time.Now()); !ok {
		t.Fatal("once settled, the answer is not cached")
	}
}
