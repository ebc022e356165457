package server_test

import (
	"slices"
	"strings"
	"testing"

	"connectrpc.com/connect/v2"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	latchkeyv1 "github.com/latchkey/latchkey/gen/latchkey/v1"
)

// TestDefaultKeyPermissions covers an account's default key permissions:
// what an Issue with no permissions gets, the no-escalation rule applied
// to them as to a list given by hand, and who may change them.
func TestDefaultKeyPermissions(t *testing.T) {
	e := newEnv(t)
	operator := e.as(e.operator)
	created, err := operator.accounts.CreateAccount(t.Context(), &latchkeyv1.CreateAccountRequest{
		Name: "acme", DefaultKeyPermissions: []string{"api_keys:read", "invoices:read"},
	})
	if err != nil {
		t.Fatal(err)
	}
	acme := tenant{account: created.GetAccount(), system: created.GetSystemApiKey().GetSpec().GetToken()}
	acme.c = e.as(acme.system)
	acmeID := acme.account.GetMetadata().GetId()
	if got := acme.account.GetSpec().GetDefaultKeyPermissions(); !slices.Equal(got, []string{"api_keys:read", "invoices:read"}) {
		t.Fatalf("CreateAccount answered defaults %v", got)
	}
	setDefaults := func(c clients, perms ...string) error {
		_, err := c.accounts.UpdateAccount(t.Context(), &latchkeyv1.UpdateAccountRequest{
			Id:         acmeID,
			Spec:       &latchkeyv1.AccountSpec{DefaultKeyPermissions: perms},
			UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"spec.default_key_permissions"}},
		})
		return err
	}
	permsOf := func(t *testing.T, c clients, req *latchkeyv1.IssueRequest) ([]string, error) {
		t.Helper()
		req.Metadata = &latchkeyv1.AccountResourceMetadata{Name: "defaults"}
		res, err := c.keys.Issue(t.Context(), req)
		return res.GetApiKey().GetSpec().GetPermissions(), err
	}
	activeKeys := func(t *testing.T) int {
		t.Helper()
		res, err := acme.c.keys.List(t.Context(), &latchkeyv1.ListRequest{PageSize: 500})
		if err != nil {
			t.Fatal(err)
		}
		return len(res.GetApiKeys())
	}

	t.Run("an Issue with no permissions gets the defaults", func(t *testing.T) {
		got, err := permsOf(t, acme.c, &latchkeyv1.IssueRequest{})
		if err != nil || !slices.Equal(got, []string{"api_keys:read", "invoices:read"}) {
			t.Fatalf("permissions %v, error %v", got, err)
		}
	})
	t.Run("permissions given by hand replace the defaults", func(t *testing.T) {
		got, err := permsOf(t, acme.c, &latchkeyv1.IssueRequest{Spec: &latchkeyv1.ApiKeySpec{Permissions: []string{"reports:read"}}})
		if err != nil || !slices.Equal(got, []string{"reports:read"}) {
			t.Fatalf("permissions %v, error %v", got, err)
		}
	})
	t.Run("no_default_permissions issues a key with none", func(t *testing.T) {
		got, err := permsOf(t, acme.c, &latchkeyv1.IssueRequest{NoDefaultPermissions: true})
		if err != nil || len(got) != 0 {
			t.Fatalf("permissions %v, error %v", got, err)
		}
	})

	_, manager := acme.issue(t, &latchkeyv1.IssueRequest{Spec: &latchkeyv1.ApiKeySpec{Permissions: []string{"api_keys:manage", "invoices:read"}}})
	_, reader := acme.issue(t, &latchkeyv1.IssueRequest{Spec: &latchkeyv1.ApiKeySpec{Permissions: []string{"api_keys:read", "invoices:*"}}})
	_, narrow := acme.issue(t, &latchkeyv1.IssueRequest{Spec: &latchkeyv1.ApiKeySpec{Permissions: []string{"api_keys:manage"}}})

	t.Run("a caller who could not give the defaults is refused, not handed fewer", func(t *testing.T) {
		before := activeKeys(t)
		_, err := permsOf(t, e.as(narrow), &latchkeyv1.IssueRequest{})
		wantCode(t, err, connect.CodePermissionDenied)
		if !strings.Contains(err.Error(), "default_key_permissions") {
			t.Errorf("the refusal %q does not say the permission came from the defaults", err)
		}
		if after := activeKeys(t); after != before {
			t.Fatalf("%d keys after a refused Issue, %d before", after, before)
		}
		// The caller can still issue what it may give.
		if got, err := permsOf(t, e.as(narrow), &latchkeyv1.IssueRequest{NoDefaultPermissions: true}); err != nil || len(got) != 0 {
			t.Fatalf("permissions %v, error %v", got, err)
		}
	})
	t.Run("the account's keys set defaults only from what they hold", func(t *testing.T) {
		if err := setDefaults(e.as(manager), "invoices:read"); err != nil {
			t.Fatal(err)
		}
		wantCode(t, setDefaults(e.as(manager), "invoices:write"), connect.CodePermissionDenied)
		wantCode(t, setDefaults(e.as(manager), "*"), connect.CodePermissionDenied)
		// Holding invoices:* but not api_keys:manage: not a key manager.
		wantCode(t, setDefaults(e.as(reader), "invoices:read"), connect.CodePermissionDenied)
	})
	t.Run("defaults beyond the caller's reach are not changed by it", func(t *testing.T) {
		if err := setDefaults(acme.c, "*"); err != nil {
			t.Fatal(err)
		}
		// Narrowing them would take from what the system key chose.
		wantCode(t, setDefaults(e.as(manager)), connect.CodePermissionDenied)
		wantCode(t, setDefaults(e.as(manager), "invoices:read"), connect.CodePermissionDenied)
		got, err := acme.c.accounts.GetAccount(t.Context(), &latchkeyv1.GetAccountRequest{Id: acmeID})
		if err != nil {
			t.Fatal(err)
		}
		if d := got.GetAccount().GetSpec().GetDefaultKeyPermissions(); !slices.Equal(d, []string{"*"}) {
			t.Fatalf("defaults %v after refused changes", d)
		}
		// And `*` is given only by a caller holding it.
		_, err = permsOf(t, e.as(manager), &latchkeyv1.IssueRequest{})
		wantCode(t, err, connect.CodePermissionDenied)
		if got, err := permsOf(t, acme.c, &latchkeyv1.IssueRequest{}); err != nil || !slices.Equal(got, []string{"*"}) {
			t.Fatalf("the system key's Issue got %v, error %v", got, err)
		}
	})
	t.Run("a tenant cannot change its own name or quota", func(t *testing.T) {
		for _, path := range []string{"spec.max_active_keys", "metadata.name"} {
			_, err := acme.c.accounts.UpdateAccount(t.Context(), &latchkeyv1.UpdateAccountRequest{
				Id:         acmeID,
				Metadata:   &latchkeyv1.AccountResourceMetadata{Name: "renamed"},
				Spec:       &latchkeyv1.AccountSpec{MaxActiveKeys: 1_000_000},
				UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{path}},
			})
			wantCode(t, err, connect.CodePermissionDenied)
		}
	})
	t.Run("another account's keys do not see it", func(t *testing.T) {
		globex := e.newTenant("globex")
		wantCode(t, setDefaults(globex.c, "invoices:read"), connect.CodeNotFound)
	})
	t.Run("the operator changes any account", func(t *testing.T) {
		res, err := operator.accounts.UpdateAccount(t.Context(), &latchkeyv1.UpdateAccountRequest{
			Id:         acmeID,
			Metadata:   &latchkeyv1.AccountResourceMetadata{Name: "Acme Corp"},
			Spec:       &latchkeyv1.AccountSpec{MaxActiveKeys: 50, DefaultKeyPermissions: []string{"invoices:read"}},
			UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"metadata.name", "spec.max_active_keys", "spec.default_key_permissions"}},
		})
		if err != nil {
			t.Fatal(err)
		}
		a := res.GetAccount()
		if a.GetMetadata().GetName() != "Acme Corp" || a.GetSpec().GetMaxActiveKeys() != 50 || !slices.Equal(a.GetSpec().GetDefaultKeyPermissions(), []string{"invoices:read"}) {
			t.Fatalf("UpdateAccount answered %v", a)
		}
		events, err := acme.c.audit.ListAuditEvents(t.Context(), &latchkeyv1.ListAuditEventsRequest{TargetId: acmeID, PageSize: 1})
		if err != nil {
			t.Fatal(err)
		}
		if ev := events.GetAuditEvents(); len(ev) != 1 || ev[0].GetAction() != "account.update" || ev[0].GetTarget().GetName() != "Acme Corp" {
			t.Fatalf("newest audit event %v", ev)
		}
	})
	t.Run("a stale etag is aborted", func(t *testing.T) {
		_, err := acme.c.accounts.UpdateAccount(t.Context(), &latchkeyv1.UpdateAccountRequest{
			Id:         acmeID,
			Spec:       &latchkeyv1.AccountSpec{},
			UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"spec.default_key_permissions"}},
			Etag:       acme.account.GetMetadata().GetEtag(),
		})
		wantCode(t, err, connect.CodeAborted)
	})
}
