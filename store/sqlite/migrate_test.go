package sqlite_test

import (
	"database/sql"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/pressly/goose/v3"
	_ "modernc.org/sqlite"

	"github.com/latchkey/latchkey"
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
	// The migrations since version one gave the account no default key
	// permissions and no suspension.
	acct, err := s.GetAccount(t.Context(), "acct_1")
	if err != nil {
		t.Fatal(err)
	}
	if acct.Suspended() || acct.SuspendReason != "" || len(acct.DefaultKeyPermissions) != 0 {
		t.Errorf("acct_1 after the migrations: %+v", acct)
	}
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

// A database of version three, made before accounts had default key
// permissions or a suspension, opens with every account active and with no
// defaults, every key's credential not suspended and every audit event
// without a reason; its accounts can then be suspended and restored.
func TestVersionThreeDatabaseAccountsAreActive(t *testing.T) {
	path := filepath.Join(t.TempDir(), "latchkey.db")
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	provider, err := goose.NewProvider(goose.DialectSQLite3, db, os.DirFS("migrations"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := provider.UpTo(t.Context(), 3); err != nil {
		t.Fatal(err)
	}
	for _, stmt := range []string{
		`INSERT INTO accounts (id, name, operator, max_active_keys, create_time, update_time, etag) VALUES
			('acct_op', 'op', 1, 0, 1, 1, 'e'),
			('acct_c', 'acme', 0, 7, 2, 2, 'e')`,
		// Profile types: 2 API key, 3 system.
		`INSERT INTO profiles (id, account_id, type, name, permissions, create_time, update_time, etag) VALUES
			('prof_op', 'acct_op', 3, 'system', '["*"]', 1, 1, 'e'),
			('prof_sys', 'acct_c', 3, 'system', '["*"]', 2, 2, 'e'),
			('prof_key', 'acct_c', 2, 'ci', '["invoices:read"]', 2, 2, 'e')`,
		`INSERT INTO api_keys (id, account_id, profile_id, name, system, environment, token_prefix,
			secret_hash, pepper_version, create_time, update_time, etag) VALUES
			('key_op', 'acct_op', 'prof_op', 'system', 1, 1, 'lk_live_0123', x'00', 1, 1, 1, 'e'),
			('key_sys', 'acct_c', 'prof_sys', 'system', 1, 1, 'lk_live_0123', x'00', 1, 2, 2, 'e'),
			('key_ci', 'acct_c', 'prof_key', 'ci', 0, 1, 'lk_live_0123', x'00', 1, 2, 2, 'e')`,
		`INSERT INTO audit_events (id, account_id, time, actor_id, actor_name, action, target_id, target_name, request_id) VALUES
			('audit_1', 'acct_c', 2, 'prof_op', 'system', 'account.create', 'acct_c', 'acme', 'req-1')`,
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
	ctx := t.Context()
	page, err := s.ListAccounts(ctx, latchkey.PageRequest{Order: latchkey.OrderCreateTimeAsc})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Items) != 2 {
		t.Fatalf("ListAccounts: %+v", page.Items)
	}
	for _, a := range page.Items {
		got, err := s.GetAccount(ctx, a.ID)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range []latchkey.Account{a, got} {
			if a.Suspended() || !a.SuspendTime.IsZero() || a.SuspendReason != "" || len(a.DefaultKeyPermissions) != 0 {
				t.Errorf("%s after the migration: suspended %v at %v for %q, defaults %v",
					a.ID, a.Suspended(), a.SuspendTime, a.SuspendReason, a.DefaultKeyPermissions)
			}
		}
		if a.ID == "acct_c" && (a.Name != "acme" || a.MaxActiveKeys != 7 || a.ETag != "e") {
			t.Errorf("acct_c after the migration: %+v", a)
		}
	}
	credentials := func(want bool) {
		t.Helper()
		for _, id := range []string{"key_sys", "key_ci"} {
			cred, err := s.GetCredential(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if cred.AccountSuspended != want {
				t.Errorf("%s: AccountSuspended %v, want %v", id, cred.AccountSuspended, want)
			}
		}
	}
	credentials(false)
	events, err := s.ListAuditEvents(ctx, latchkey.AuditQuery{AccountID: "acct_c"})
	if err != nil {
		t.Fatal(err)
	}
	if len(events.Items) != 1 || events.Items[0].Reason != "" || events.Items[0].Action != latchkey.ActionAccountCreate {
		t.Fatalf("audit events after the migration: %+v", events.Items)
	}

	actor := latchkey.Actor{Profile: latchkey.Bare{ID: "prof_op", Name: "system"}, RequestID: "req-2"}
	suspended, err := s.SuspendAccount(ctx, actor, "acct_c", "unpaid")
	if err != nil {
		t.Fatal(err)
	}
	if !suspended.Suspended() || suspended.SuspendReason != "unpaid" {
		t.Fatalf("SuspendAccount = %+v", suspended)
	}
	credentials(true)
	if _, err := s.RestoreAccount(ctx, actor, "acct_c", "paid"); err != nil {
		t.Fatal(err)
	}
	credentials(false)
	events, err = s.ListAuditEvents(ctx, latchkey.AuditQuery{AccountID: "acct_c", Page: latchkey.PageRequest{Order: latchkey.OrderCreateTimeAsc}})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range events.Items {
		got = append(got, e.Action+" "+e.Reason)
	}
	if want := []string{"account.create ", "account.suspend unpaid", "account.restore paid"}; !slices.Equal(got, want) {
		t.Errorf("audit events %q, want %q", got, want)
	}
}
