package sqlite_test

import (
	"path/filepath"
	"testing"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/store/sqlite"
)

// An account that sets no max_active_keys, with no default either, has no
// quota (store.go, NewAPIKey.DefaultMaxActiveKeys): zero is not a limit of
// zero keys.
func TestNoQuotaWhenNeitherAccountNorDefaultSetsOne(t *testing.T) {
	s, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "latchkey.db"), sqlite.Options{CursorKey: cursorKey})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	key := func(accountID, name string) latchkey.NewAPIKey {
		return latchkey.NewAPIKey{
			Key: latchkey.APIKey{
				Metadata:    latchkey.Metadata{ID: latchkey.NewID(latchkey.PrefixAPIKey), AccountID: accountID, Name: name},
				Permissions: []string{"invoices:read"}, Environment: latchkey.EnvironmentLive, TokenPrefix: "lk_live_0123456",
			},
			Secret: latchkey.SecretHash{Hash: []byte(name), PepperVersion: 1},
		}
	}
	account, system, err := s.Bootstrap(t.Context(), latchkey.NewAccount{Name: "op", SystemKey: key("", "system")})
	if err != nil {
		t.Fatal(err)
	}
	if account.MaxActiveKeys != 0 {
		t.Fatalf("the account sets max_active_keys %d", account.MaxActiveKeys)
	}
	actor := latchkey.Actor{Profile: latchkey.Bare{ID: system.ProfileID, Name: "system"}}
	for _, name := range []string{"a", "b", "c"} {
		if _, err := s.IssueKey(t.Context(), actor, key(account.ID, name)); err != nil {
			t.Fatalf("issue %s with no quota anywhere: %v", name, err)
		}
	}
}
