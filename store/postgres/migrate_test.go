package postgres_test

import (
	"database/sql"
	"os"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"

	"github.com/latchkey/latchkey"
)

// A database of version three, made before accounts had default key
// permissions or a suspension, opens with every account active and with no
// defaults, every key's credential not suspended and every audit event
// without a reason; its accounts can then be suspended.
func TestVersionThreeDatabaseAccountsAreActive(t *testing.T) {
	dsn := newSchema(t)
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	provider, err := goose.NewProvider(goose.DialectPostgres, db, os.DirFS("migrations"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := provider.UpTo(t.Context(), 3); err != nil {
		t.Fatal(err)
	}
	for _, stmt := range []string{
		`INSERT INTO accounts (id, name, operator, max_active_keys, create_time, update_time, etag) VALUES
			('acct_op', 'op', true, 0, 1, 1, 'e'),
			('acct_c', 'acme', false, 7, 2, 2, 'e')`,
		// Profile types: 2 API key, 3 system.
		`INSERT INTO profiles (id, account_id, type, name, permissions, create_time, update_time, etag) VALUES
			('prof_op', 'acct_op', 3, 'system', '["*"]', 1, 1, 'e'),
			('prof_sys', 'acct_c', 3, 'system', '["*"]', 2, 2, 'e'),
			('prof_key', 'acct_c', 2, 'ci', '["invoices:read"]', 2, 2, 'e')`,
		`INSERT INTO api_keys (id, account_id, profile_id, name, system, environment, token_prefix,
			secret_hash, pepper_version, create_time, update_time, etag) VALUES
			('key_op', 'acct_op', 'prof_op', 'system', true, 1, 'lk_live_0123', '\x00', 1, 1, 1, 'e'),
			('key_sys', 'acct_c', 'prof_sys', 'system', true, 1, 'lk_live_0123', '\x00', 1, 2, 2, 'e'),
			('key_ci', 'acct_c', 'prof_key', 'ci', false, 1, 'lk_live_0123', '\x00', 1, 2, 2, 'e')`,
		`INSERT INTO audit_events (id, account_id, time, actor_id, actor_name, action, target_id, target_name, request_id) VALUES
			('audit_1', 'acct_c', 2, 'prof_op', 'system', 'account.create', 'acct_c', 'acme', 'req-1')`,
	} {
		if _, err := db.ExecContext(t.Context(), stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	db.Close()

	s := open(t, dsn)
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
	if len(events.Items) != 1 || events.Items[0].Reason != "" {
		t.Fatalf("audit events after the migration: %+v", events.Items)
	}
	actor := latchkey.Actor{Profile: latchkey.Bare{ID: "prof_op", Name: "system"}, RequestID: "req-2"}
	if _, err := s.SuspendAccount(ctx, actor, "acct_c", "unpaid"); err != nil {
		t.Fatal(err)
	}
	credentials(true)
	if _, err := s.RestoreAccount(ctx, actor, "acct_c", "paid"); err != nil {
		t.Fatal(err)
	}
	credentials(false)
}
