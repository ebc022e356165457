package client

import (
	"testing"
	"time"

	latchkeyv1 "github.com/latchkey/latchkey/gen/latchkey/v1"
)

// TestDropAccount: a suspension or a restore drops the verdicts of the
// account's keys and no others, and for Settle after, no verdict of the
// account is stored (a replica behind may have answered it), while other
// accounts' verdicts are.
func TestDropAccount(t *testing.T) {
	const ttl, settle = time.Hour, time.Second
	c := newCache(10, 10)
	now := time.Now()
	valid := func(keyID, accountID string) verdict {
		return verdict{Result: Result{Valid: true, Code: latchkeyv1.VerifyCode_VERIFY_CODE_VALID, KeyID: keyID, AccountID: accountID}}
	}
	put := func(k key, v verdict, at time.Time) { c.put(k, v, c.generation(), at, ttl, settle) }
	a1, a2, b, unknown := cacheKey("a1", Requirements{}), cacheKey("a2", Requirements{Workspace: "ws"}), cacheKey("b", Requirements{}), cacheKey("x", Requirements{})
	put(a1, valid("key_a1", "acct_a"), now)
	put(a2, valid("key_a2", "acct_a"), now)
	put(b, valid("key_b", "acct_b"), now)
	put(unknown, verdict{Result: Result{Code: latchkeyv1.VerifyCode_VERIFY_CODE_NOT_FOUND}}, now)
	has := func(k key) bool { _, ok := c.get(k, now); return ok }

	c.dropAccount("acct_a", now)
	if has(a1) || has(a2) {
		t.Fatal("a verdict of the dropped account's keys is still cached")
	}
	if !has(b) || !has(unknown) {
		t.Fatal("dropping an account dropped another account's verdict or an unknown token's")
	}
	if _, ok := c.byKey["key_a1"]; ok {
		t.Fatal("a dropped verdict is still indexed under its key")
	}
	put(a1, valid("key_a1", "acct_a"), now.Add(settle/2))
	c.known.Remove(b)
	put(b, valid("key_b", "acct_b"), now.Add(settle/2))
	if has(a1) {
		t.Fatal("a verdict of the account was stored within Settle of its drop")
	}
	if !has(b) {
		t.Fatal("another account's verdict was refused within Settle of the drop")
	}
	put(a1, valid("key_a1", "acct_a"), now.Add(settle))
	if !has(a1) {
		t.Fatal("a verdict of the account was refused once Settle had passed")
	}
	// A fill that read before the drop is not stored after it.
	gen := c.generation()
	c.dropAccount("acct_b", now.Add(-time.Hour)) // settled long ago: only the generation holds it back
	c.put(b, valid("key_b", "acct_b"), gen, now, ttl, settle)
	if has(b) {
		t.Fatal("a verdict read before the account was dropped was stored after")
	}
}
