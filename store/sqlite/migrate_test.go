package sqlite_test

import (
	"database/sql"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/pressly/goose/v3"
	_ "modernc.org/sqlite"

	"github.com/latchkey/latchkey/store/sqlite"
)

// A database of version one, whose keys held their own permissions, opens
// with every key's permissions moved onto its profile: the key reads the
// same, the system key keeps `*`, and a user profile holds none.
func TestVersionOneDatabaseKeepsItsPermissions(t *testing.T) {
	path := filepath.Join(t.TempDir(), "latchkey.db")
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	provider, err := goose.NewProvider(goose.DialectSQLite3, db, os.DirFS("migrations"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := provider.UpTo(t.Context(), 1); err != nil {
		t.Fatal(err)
	}
	for _, stmt := range []string{
		`INSERT INTO accounts (id, name, operator, create_time, update_time, etag) VALUES ('acct_1', 'op', 1, 1, 1, 'e')`,
		// Profile types: 1 user, 2 API key, 3 system.
		`INSERT INTO profiles (id, account_id, type, name, create_time, update_time, etag) VALUES
			('prof_sys', 'acct_1', 3, 'system', 1, 1, 'e'),
			('prof_key', 'acct_1', 2, 'ci', 1, 1, 'e'),
			('prof_usr', 'acct_1', 1, 'ada', 1, 1, 'e')`,
		`INSERT INTO api_keys (id, account_id, profile_id, name, permissions, system, environment, token_prefix,
			secret_hash, pepper_version, create_time, update_time, etag) VALUES
			('key_sys', 'acct_1', 'prof_sys', 'system', '["*"]', 1, 1, 'lk_live_0123', x'00', 1, 1, 1, 'e'),
			('key_ci', 'acct_1', 'prof_key', 'ci', '["invoices:read","api_keys:manage"]', 0, 1, 'lk_live_0123', x'00', 1, 1, 1, 'e')`,
	} {
		if _, err := db.ExecContext(t.Context(), stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	db.Close()

	s, err := sqlite.Open(t.Context(), path, sqlite.Options{CursorKey: cursorKey})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, tt := range []struct {
		key, profile string
		want         []string
	}{
		{"key_sys", "prof_sys", []string{"*"}},
		{"key_ci", "prof_key", []string{"invoices:read", "api_keys:manage"}},
		{"", "prof_usr", nil},
	} {
		if tt.key != "" {
			k, err := s.GetKey(t.Context(), "acct_1", tt.key)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(k.Permissions, tt.want) {
				t.Errorf("%s: permissions %v, want %v", tt.key, k.Permissions, tt.want)
			}
			cred, err := s.GetCredential(t.Context(), tt.key)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(cred.Key.Permissions, tt.want) {
				t.Errorf("%s: the credential's permissions %v, want %v", tt.key, cred.Key.Permissions, tt.want)
			}
		}
		perms, err := s.ProfilePermissions(t.Context(), "acct_1", tt.profile)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(perms, tt.want) {
			t.Errorf("%s: profile permissions %v, want %v", tt.profile, perms, tt.want)
		}
		p, err := s.GetProfile(t.Context(), "acct_1", tt.profile)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(p.Permissions, tt.want) {
			t.Errorf("%s: GetProfile permissions %v, want %v", tt.profile, p.Permissions, tt.want)
		}
	}
}
