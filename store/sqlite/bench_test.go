package sqlite_test

import (
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/store/sqlite"
)

// BenchmarkListKeysPage reads the second page of 50 keys from an account
// of 1,000 and of 1,000,000 keys: keyset paging must cost the same for both.
//
//	go test ./store/sqlite -run XXX -bench ListKeysPage -benchtime 2000x
func BenchmarkListKeysPage(b *testing.B) {
	for _, rows := range []int{1_000, 1_000_000} {
		b.Run(fmt.Sprintf("keys=%d", rows), func(b *testing.B) {
			path := filepath.Join(b.TempDir(), "latchkey.db")
			s, err := sqlite.Open(b.Context(), path, sqlite.Options{CursorKey: []byte("bench")})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			account, system, err := s.Bootstrap(b.Context(), latchkey.NewAccount{Name: "bench", SystemKey: latchkey.NewAPIKey{
				Key:    latchkey.APIKey{Metadata: latchkey.Metadata{ID: latchkey.NewID(latchkey.PrefixAPIKey), Name: "system"}, Environment: latchkey.EnvironmentLive},
				Secret: latchkey.SecretHash{Hash: make([]byte, 32), PepperVersion: 1},
			}})
			if err != nil {
				b.Fatal(err)
			}
			seed(b, path, account.ID, system.ProfileID, rows)
			first, err := s.ListKeys(b.Context(), latchkey.KeyQuery{AccountID: account.ID})
			if err != nil || first.NextToken == "" {
				b.Fatalf("first page: %v", err)
			}
			b.ResetTimer()
			for b.Loop() {
				page, err := s.ListKeys(b.Context(), latchkey.KeyQuery{AccountID: account.ID, Page: latchkey.PageRequest{Token: first.NextToken}})
				if err != nil || len(page.Items) != latchkey.DefaultPageSize {
					b.Fatalf("page: %d items, %v", len(page.Items), err)
				}
			}
		})
	}
}

// seed inserts rows keys straight into the database, in one statement:
// through IssueKey a million keys would take a million fsyncs.
func seed(b *testing.B, path, accountID, profileID string, rows int) {
	b.Helper()
	db, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)")
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	_, err = db.ExecContext(b.Context(), `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
		INSERT INTO api_keys (id, account_id, profile_id, name, environment, token_prefix, secret_hash,
			pepper_version, create_time, update_time, etag)
		SELECT printf('key_%026d', i), ?, ?, 'seed', 1, 'lk_live_seed', zeroblob(32), 1, i, i, 'e' FROM n`,
		rows, accountID, profileID)
	if err != nil {
		b.Fatal(err)
	}
}
