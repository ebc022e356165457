package auth_test

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/auth"
	"github.com/latchkey/latchkey/gen/latchkey/v1/latchkeyv1connect"
)

// grantTable is a GrantReader from two fixed answers, recording what it
// was asked.
type grantTable struct {
	access map[string]bool // workspace id → granted to the caller's profile
	beyond bool            // the target holds a workspace the caller lacks
	err    error
	asked  []string
}

func (g *grantTable) WorkspaceAccess(_ context.Context, accountID, profileID, workspaceID string) (bool, error) {
	g.asked = append(g.asked, "access "+accountID+" "+profileID+" "+workspaceID)
	return g.access[workspaceID], g.err
}

func (g *grantTable) WorkspacesBeyond(_ context.Context, accountID, profileID, reachProfileID string) (bool, error) {
	g.asked = append(g.asked, "beyond "+accountID+" "+profileID+" "+reachProfileID)
	return g.beyond, g.err
}

func caller(operator bool, perms ...string) *auth.Principal {
	return &auth.Principal{
		AccountID: "acc_caller", ProfileID: "prf_caller", Name: "caller",
		Permissions: perms, Operator: operator,
		Method: auth.MethodAPIKey, KeyID: "key_caller",
	}
}

func wantCode(t *testing.T, what string, err error, want latchkey.Code) {
	t.Helper()
	if got := latchkey.ErrorCode(err); got != want {
		t.Errorf("%s: error %v (code %q), want code %q", what, err, got, want)
	}
}

func TestCallNeedsThePolicyPermission(t *testing.T) {
	a := auth.NewAuthorizer(&grantTable{})
	issue := latchkeyv1connect.ApiKeyServiceIssueProcedure
	whoami := latchkeyv1connect.AuthServiceWhoAmIProcedure
	list := latchkeyv1connect.AccountServiceListAccountsProcedure

	wantCode(t, "Issue with api_keys:manage", a.Call(caller(false, auth.APIKeysManage), issue), "")
	wantCode(t, "Issue with api_keys:*", a.Call(caller(false, "api_keys:*"), issue), "")
	wantCode(t, "Issue with api_keys:read", a.Call(caller(false, auth.APIKeysRead), issue), latchkey.CodePermissionDenied)
	wantCode(t, "Issue with nothing", a.Call(caller(false), issue), latchkey.CodePermissionDenied)
	wantCode(t, "WhoAmI with nothing", a.Call(caller(false), whoami), "")
	wantCode(t, "ListAccounts by the operator", a.Call(caller(true, auth.AccountsManage), list), "")
	wantCode(t, "ListAccounts by a tenant holding *", a.Call(caller(false, "*"), list), latchkey.CodePermissionDenied)
	// A procedure without a policy is refused even to a caller holding *.
	err := a.Call(caller(true, "*"), "/latchkey.v1.ApiKeyService/Unlisted")
	wantCode(t, "a procedure without policy", err, latchkey.CodePermissionDenied)
	if err := a.Call(caller(false, auth.APIKeysRead), issue); err == nil || !strings.Contains(err.Error(), auth.APIKeysManage) {
		t.Errorf("the refusal names the permission needed: %v", err)
	}
}

func TestPermissionTable(t *testing.T) {
	for proc, want := range map[string]string{
		latchkeyv1connect.ApiKeyServiceGetProcedure:                auth.APIKeysRead,
		latchkeyv1connect.ApiKeyServiceRevokeProcedure:             auth.APIKeysManage,
		latchkeyv1connect.AuthServiceVerifyProcedure:               auth.APIKeysVerify,
		latchkeyv1connect.AuthServiceWhoAmIProcedure:               auth.AnyCaller,
		latchkeyv1connect.AccountServiceGetAccountProcedure:        auth.AnyCaller,
		latchkeyv1connect.AuditServiceListAuditEventsProcedure:     auth.AuditRead,
		latchkeyv1connect.WorkspaceServiceCreateWorkspaceProcedure: auth.WorkspacesManage,
	} {
		got, ok := auth.Permission(proc)
		if !ok || got != want {
			t.Errorf("Permission(%s) = %q, %v; want %q", proc, got, ok, want)
		}
	}
	if _, ok := auth.Permission("/nope.v1.Nope/Nope"); ok {
		t.Error("an unknown procedure has a policy")
	}
}

func TestChangeNeedsTheTargetsReach(t *testing.T) {
	ctx := context.Background()
	target := func(perms ...string) auth.Target { return auth.Target{ProfileID: "prf_target", Permissions: perms} }
	cases := []struct {
		name   string
		caller *auth.Principal
		target auth.Target
		beyond bool
		want   latchkey.Code
	}{
		{"equal permissions, workspaces within", caller(false, auth.APIKeysManage), target(auth.APIKeysManage), false, ""},
		{"weaker target", caller(false, auth.APIKeysManage), target(auth.APIKeysRead), false, ""},
		{"stronger target", caller(false, auth.APIKeysManage), target(auth.APIKeysManage, "invoices:read"), false, latchkey.CodePermissionDenied},
		{"the system key, by a manager", caller(false, auth.APIKeysManage), target("*"), false, latchkey.CodePermissionDenied},
		{"the system key, by *", caller(false, "*"), target("*"), true, ""},
		{"target with a workspace beyond", caller(false, auth.APIKeysManage), target(auth.APIKeysRead), true, latchkey.CodePermissionDenied},
		{"workspaces:manage reaches every workspace", caller(false, auth.APIKeysManage, auth.WorkspacesManage), target(auth.APIKeysRead), true, ""},
		// accounts:* is nothing in a tenant's account, so it gives the
		// target nothing to protect from a tenant caller...
		{"a tenant's accounts permission, by a tenant", caller(false, auth.APIKeysManage), target(auth.AccountsManage), false, ""},
		// ...but in the operator account it is real.
		{"the operator's accounts permission, by an operator without it", caller(true, auth.APIKeysManage), target(auth.AccountsManage), false, latchkey.CodePermissionDenied},
		{"the operator's accounts permission, by an operator with it", caller(true, auth.AccountsManage), target(auth.AccountsManage), false, ""},
	}
	for _, tc := range cases {
		g := &grantTable{beyond: tc.beyond}
		a := auth.NewAuthorizer(g)
		err := a.Change(ctx, tc.caller, tc.target)
		wantCode(t, tc.name+": Change", err, tc.want)
		if err != nil && strings.Contains(err.Error(), "invoices") {
			t.Errorf("%s: the refusal says what the target holds: %v", tc.name, err)
		}
		// The guard run inside a write's transaction decides the same on
		// the key and the transaction's grants.
		key := latchkey.APIKey{Metadata: latchkey.Metadata{ProfileID: tc.target.ProfileID}, Permissions: tc.target.Permissions}
		err = a.KeyGuard(tc.caller)(ctx, key, &grantTable{beyond: tc.beyond})
		wantCode(t, tc.name+": KeyGuard", err, tc.want)
	}

	// Workspaces are asked about the caller's and the target's profiles in
	// the caller's account, and a failing read fails the decision.
	g := &grantTable{}
	if err := auth.NewAuthorizer(g).Change(ctx, caller(false), target()); err != nil {
		t.Fatal(err)
	}
	if want := []string{"beyond acc_caller prf_target prf_caller"}; strings.Join(g.asked, ";") != strings.Join(want, ";") {
		t.Errorf("grants asked %q, want %q", g.asked, want)
	}
	boom := errors.New("database unavailable")
	if err := auth.NewAuthorizer(&grantTable{err: boom}).Change(ctx, caller(false), target()); !errors.Is(err, boom) {
		t.Errorf("a failing grant read: Change = %v, want the store's error", err)
	}
	if err := auth.NewAuthorizer(&grantTable{}).KeyGuard(caller(false))(ctx, latchkey.APIKey{}, &grantTable{err: boom}); !errors.Is(err, boom) {
		t.Errorf("a failing grant read: KeyGuard = %v, want the transaction's error", err)
	}
}

func TestKeyTarget(t *testing.T) {
	k := latchkey.APIKey{Metadata: latchkey.Metadata{ProfileID: "prf_k"}, Permissions: []string{"a:b"}}
	got := auth.KeyTarget(k)
	if got.ProfileID != "prf_k" || len(got.Permissions) != 1 || got.Permissions[0] != "a:b" {
		t.Fatalf("KeyTarget = %+v", got)
	}
}

func TestGivePermissions(t *testing.T) {
	a := auth.NewAuthorizer(&grantTable{})
	p := caller(false, "invoices:*", auth.APIKeysManage)
	wantCode(t, "what it holds", a.GivePermissions(p, []string{"invoices:read", "invoices:*", auth.APIKeysRead}), "")
	wantCode(t, "nothing", a.GivePermissions(p, nil), "")
	err := a.GivePermissions(p, []string{"invoices:read", "billing:read"})
	wantCode(t, "one it lacks", err, latchkey.CodePermissionDenied)
	if err == nil || !strings.Contains(err.Error(), "billing:read") {
		t.Errorf("the refusal names the permission: %v", err)
	}
	wantCode(t, "accounts, by a tenant holding *", a.GivePermissions(caller(false, "*"), []string{auth.AccountsManage}), latchkey.CodePermissionDenied)
	wantCode(t, "accounts, by the operator", a.GivePermissions(caller(true, "*"), []string{auth.AccountsManage}), "")
}

func TestGrantWorkspace(t *testing.T) {
	ctx := context.Background()
	g := &grantTable{access: map[string]bool{"wks_mine": true}}
	a := auth.NewAuthorizer(g)
	wantCode(t, "a workspace it is granted", a.GrantWorkspace(ctx, caller(false), "wks_mine"), "")
	wantCode(t, "a workspace it is not granted", a.GrantWorkspace(ctx, caller(false), "wks_other"), latchkey.CodePermissionDenied)
	if want := "access acc_caller prf_caller wks_mine"; len(g.asked) == 0 || g.asked[0] != want {
		t.Errorf("asked %q, want first %q", g.asked, want)
	}
	g.asked = nil
	wantCode(t, "any workspace with workspaces:manage", a.GrantWorkspace(ctx, caller(false, auth.WorkspacesManage), "wks_other"), "")
	if len(g.asked) != 0 {
		t.Errorf("workspaces:manage still read grants: %q", g.asked)
	}
	boom := errors.New("database unavailable")
	if err := auth.NewAuthorizer(&grantTable{err: boom}).GrantWorkspace(ctx, caller(false), "wks_mine"); !errors.Is(err, boom) {
		t.Errorf("a failing grant read: GrantWorkspace = %v", err)
	}
}

func TestReadAccountAndVerifyScope(t *testing.T) {
	a := auth.NewAuthorizer(&grantTable{})
	wantCode(t, "its own account", a.ReadAccount(caller(false), "acc_caller"), "")
	wantCode(t, "another account", a.ReadAccount(caller(false, "*"), "acc_other"), latchkey.CodeNotFound)
	wantCode(t, "another account, by the operator", a.ReadAccount(caller(true, auth.AccountsManage), "acc_other"), "")
	wantCode(t, "another account, by an operator key without accounts:manage", a.ReadAccount(caller(true, auth.APIKeysManage), "acc_other"), latchkey.CodeNotFound)
	if got := a.VerifyScope(caller(true)); got != "" {
		t.Errorf("operator VerifyScope = %q, want every account", got)
	}
	if got := a.VerifyScope(caller(false, "*")); got != "acc_caller" {
		t.Errorf("tenant VerifyScope = %q, want its own account", got)
	}
}

func TestHolds(t *testing.T) {
	for _, tc := range []struct {
		held     []string
		operator bool
		wanted   string
		want     bool
	}{
		{[]string{"*"}, false, auth.AccountsManage, false},
		{[]string{"accounts:*"}, false, auth.AccountsManage, false},
		{[]string{"*"}, true, auth.AccountsManage, true},
		{[]string{"*"}, false, auth.APIKeysManage, true},
		{[]string{auth.APIKeysRead}, true, auth.APIKeysManage, false},
		// Only the resource "accounts" is the operator's.
		{[]string{"*"}, false, "accountsx:read", true},
		{[]string{"*"}, false, "accounts", true},
	} {
		if got := auth.Holds(tc.held, tc.operator, tc.wanted); got != tc.want {
			t.Errorf("Holds(%v, operator %v, %q) = %v, want %v", tc.held, tc.operator, tc.wanted, got, tc.want)
		}
	}
}

func TestPrincipal(t *testing.T) {
	p := caller(false, auth.APIKeysRead)
	if p.AccountID != "acc_caller" || p.ProfileID != "prf_caller" {
		t.Errorf("AccountID, ProfileID = %q, %q", p.AccountID, p.ProfileID)
	}
	if !p.Can(auth.APIKeysRead) || p.Can(auth.APIKeysManage) {
		t.Error("Can does not follow the key's permissions")
	}
	a := p.Actor("req_1")
	if a.Profile.ID != "prf_caller" || a.Profile.Name != "caller" || a.RequestID != "req_1" {
		t.Errorf("Actor = %+v", a)
	}
	ctx := context.Background()
	if _, ok := auth.PrincipalFrom(ctx); ok {
		t.Error("a bare context carries a principal")
	}
	got, ok := auth.PrincipalFrom(auth.WithPrincipal(ctx, p))
	if !ok || got != p {
		t.Errorf("PrincipalFrom(WithPrincipal(p)) = %v, %v", got, ok)
	}
}

func TestCredentialFromHeaders(t *testing.T) {
	for _, tc := range []struct {
		authorization, apiKey string
		want                  string
		ok                    bool
	}{
		{"Bearer lk_tok", "", "lk_tok", true},
		{"bearer lk_tok", "", "lk_tok", true},
		{"BEARER  lk_tok ", "", "lk_tok", true},
		{"Bearer lk_tok", "lk_other", "lk_tok", true},
		{"", "lk_tok", "lk_tok", true},
		{"", " lk_tok ", "lk_tok", true},
		{"Basic dXNlcjpwdw==", "lk_tok", "lk_tok", true},
		{"Basic dXNlcjpwdw==", "", "", false},
		{"Bearer ", "lk_tok", "", false},
		{"Bearer    ", "", "", false},
		{"", "", "", false},
		{"", "   ", "", false},
	} {
		got, ok := auth.TokenFromHeaders(tc.authorization, tc.apiKey)
		if got != tc.want || ok != tc.ok {
			t.Errorf("TokenFromHeaders(%q, %q) = %q, %v; want %q, %v", tc.authorization, tc.apiKey, got, ok, tc.want, tc.ok)
		}
	}
}

// TestUpdateAccount: an account's own keys change its default key
// permissions with api_keys:manage and within their reach; everything
// else, and any other account, is the operator's (accounts:manage).
func TestUpdateAccount(t *testing.T) {
	a := auth.NewAuthorizer(&grantTable{})
	defaults := []string{"spec.default_key_permissions"}
	manager := caller(false, auth.APIKeysManage, "invoices:read")
	guard, err := a.UpdateAccount(manager, "acc_caller", defaults, []string{"invoices:read"})
	wantCode(t, "its own defaults, to what it holds", err, "")
	if guard == nil {
		t.Fatal("no guard for a change of the account's own defaults")
	}
	ctx := context.Background()
	wantCode(t, "the guard, on defaults it holds", guard(ctx, latchkey.Account{DefaultKeyPermissions: []string{"invoices:read", auth.APIKeysRead}}), "")
	wantCode(t, "the guard, on none", guard(ctx, latchkey.Account{}), "")
	err = guard(ctx, latchkey.Account{DefaultKeyPermissions: []string{"invoices:read", "*"}})
	wantCode(t, "the guard, on defaults beyond it", err, latchkey.CodePermissionDenied)
	if err == nil || !strings.Contains(err.Error(), "default key permissions hold more than the caller") {
		t.Errorf("the guard's refusal says why: %v", err)
	}

	_, err = a.UpdateAccount(manager, "acc_caller", defaults, []string{"invoices:write"})
	wantCode(t, "its own defaults, to one it lacks", err, latchkey.CodePermissionDenied)
	_, err = a.UpdateAccount(caller(false, "invoices:*"), "acc_caller", defaults, nil)
	wantCode(t, "its own defaults, without api_keys:manage", err, latchkey.CodePermissionDenied)
	for _, path := range []string{"spec.max_active_keys", "metadata.name"} {
		_, err = a.UpdateAccount(caller(false, "*"), "acc_caller", []string{path}, nil)
		wantCode(t, "a tenant holding * on its own "+path, err, latchkey.CodePermissionDenied)
		if err == nil || !strings.Contains(err.Error(), auth.AccountsManage) {
			t.Errorf("the refusal names accounts:manage: %v", err)
		}
	}
	_, err = a.UpdateAccount(caller(false, "*"), "acc_other", defaults, nil)
	wantCode(t, "another account, by a tenant", err, latchkey.CodeNotFound)

	op := caller(true, auth.AccountsManage)
	guard, err = a.UpdateAccount(op, "acc_other", []string{"metadata.name", "spec.max_active_keys", "spec.default_key_permissions"}, []string{"*"})
	wantCode(t, "another account, by the operator", err, "")
	if guard != nil {
		t.Error("the operator's change of another account has a reach guard")
	}
	guard, err = a.UpdateAccount(op, "acc_caller", []string{"spec.max_active_keys"}, nil)
	wantCode(t, "the operator's own quota", err, "")
	if guard != nil {
		t.Error("a change of no defaults has a reach guard")
	}
	_, err = a.UpdateAccount(op, "acc_caller", defaults, nil)
	wantCode(t, "the operator's own defaults, without api_keys:manage", err, latchkey.CodePermissionDenied)
}

func TestOperatorOnly(t *testing.T) {
	for perm, want := range map[string]bool{"accounts:manage": true, "accounts:*": true, "accounts:read": true, "*": false, "api_keys:manage": false, "accountsx:read": false, "accounts": false} {
		if got := auth.OperatorOnly(perm); got != want {
			t.Errorf("OperatorOnly(%q) = %v, want %v", perm, got, want)
		}
	}
}

// TestStillAllowed: a stream's caller is asked again on the credential as
// the store holds it now.
func TestStillAllowed(t *testing.T) {
	a := auth.NewAuthorizer(&grantTable{})
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	watch := latchkeyv1connect.AuthServiceWatchKeyChangesProcedure
	cred := func(edit func(*latchkey.Credential)) *latchkey.Credential {
		c := &latchkey.Credential{Key: latchkey.APIKey{Metadata: latchkey.Metadata{ID: "key_w", AccountID: "acc_w"}, Permissions: []string{auth.APIKeysVerify}}}
		if edit != nil {
			edit(c)
		}
		return c
	}
	peer := netip.MustParseAddr("10.0.0.1")
	for _, tc := range []struct {
		name    string
		cred    *latchkey.Credential
		want    latchkey.Code
		message string
	}{
		{"as it was", cred(nil), "", ""},
		{"revoked", cred(func(c *latchkey.Credential) { c.Key.RevokeTime = now }), latchkey.CodeUnauthenticated, "revoked"},
		{"expired", cred(func(c *latchkey.Credential) { c.Key.ExpireTime = now }), latchkey.CodeUnauthenticated, "expired"},
		{"its account suspended", cred(func(c *latchkey.Credential) { c.AccountSuspended = true }), latchkey.CodePermissionDenied, "account is suspended"},
		{"revoked in a suspended account", cred(func(c *latchkey.Credential) { c.AccountSuspended, c.Key.RevokeTime = true, now }), latchkey.CodeUnauthenticated, "revoked"},
		{"walled off", cred(func(c *latchkey.Credential) { c.Key.AllowedCIDRs = []string{"192.0.2.0/24"} }), latchkey.CodePermissionDenied, "address"},
		{"walled off, in a suspended account", cred(func(c *latchkey.Credential) {
			c.Key.AllowedCIDRs, c.AccountSuspended = []string{"192.0.2.0/24"}, true
		}), latchkey.CodePermissionDenied, "address"},
		{"inside its wall", cred(func(c *latchkey.Credential) { c.Key.AllowedCIDRs = []string{"10.0.0.0/8"} }), "", ""},
		{"no longer holding the permission", cred(func(c *latchkey.Credential) { c.Key.Permissions = []string{auth.APIKeysRead} }), latchkey.CodePermissionDenied, auth.APIKeysVerify},
	} {
		err := a.StillAllowed(tc.cred, watch, peer, now)
		wantCode(t, tc.name, err, tc.want)
		if err != nil && !strings.Contains(err.Error(), tc.message) {
			t.Errorf("%s: %v does not say %q", tc.name, err, tc.message)
		}
	}
}
