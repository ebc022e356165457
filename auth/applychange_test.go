package auth_test

import (
	"context"
	"testing"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/auth"
)

// TestApplyChange: a change drops from the cache exactly what it may have
// made wrong. A key's change drops that key, and the next verification of
// it reads the store while the others are still answered from the cache; a
// suspension or a restore drops the keys of that account alone; a
// change of a person's grants (a profile no key acts through) drops
// nothing; an archived workspace drops its account's keys; a change of a
// kind it does not know and a reset drop everything.
func TestApplyChange(t *testing.T) {
	ctx := context.Background()
	m := newMemStore()
	v := newMemVerifier(t, m, nil)
	a := m.put(t, nil, nil)
	b := m.put(t, nil, func(c *latchkey.Credential) { c.Key.AccountID = "acc_other" })
	// reads verifies a and b and says how many of them read the store.
	reads := func() int {
		m.mu.Lock()
		before := m.credReads
		m.mu.Unlock()
		for _, tok := range []string{a.Reveal(), b.Reveal()} {
			if got, err := v.Verify(ctx, tok, auth.Requirements{}); err != nil || got.Outcome != auth.OutcomeValid {
				t.Fatalf("Verify = %v, %v", got.Outcome, err)
			}
		}
		m.mu.Lock()
		defer m.mu.Unlock()
		return m.credReads - before
	}
	if n := reads(); n != 2 {
		t.Fatalf("the first verifications read the store %d times, want 2", n)
	}
	for _, tc := range []struct {
		name   string
		apply  func()
		reread int
	}{
		{"a key's change drops that key only", func() {
			v.ApplyChange(latchkey.Change{Kind: latchkey.ChangeKeyUpdated, KeyID: a.KeyID(), ProfileID: "prf_k"})
		}, 1},
		{"a suspension drops the account's keys only", func() {
			v.ApplyChange(latchkey.Change{Kind: latchkey.ChangeAccountSuspended, AccountID: "acc_other"})
		}, 1},
		{"a restore drops the account's keys only", func() {
			v.ApplyChange(latchkey.Change{Kind: latchkey.ChangeAccountRestored, AccountID: "acc_t"})
		}, 1},
		{"a suspension of an account with no cached key drops nothing", func() {
			v.ApplyChange(latchkey.Change{Kind: latchkey.ChangeAccountSuspended, AccountID: "acc_none"})
		}, 0},
		{"a person's grants drop nothing", func() { v.ApplyChange(latchkey.Change{Kind: latchkey.ChangeGrantsChanged, ProfileID: "prf_person"}) }, 0},
		{"an archived workspace drops its account's keys only", func() {
			v.ApplyChange(latchkey.Change{Kind: latchkey.ChangeWorkspaceArchived, AccountID: "acc_t", WorkspaceID: "wks_a"})
		}, 1},
		{"a person's profile drops nothing", func() {
			v.ApplyChange(latchkey.Change{Kind: latchkey.ChangePersonChanged, ProfileID: "prf_person"})
		}, 0},
		{"a kind the verifier does not know drops every key", func() {
			v.ApplyChange(latchkey.Change{Kind: "key.teleported", AccountID: "acc_t"})
		}, 2},
		{"a reset drops every key", v.ResetChanges, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.apply()
			if n := reads(); n != tc.reread {
				t.Fatalf("%d of the two keys were read again, want %d", n, tc.reread)
			}
		})
	}
}
