package server_test

import (
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect/v2"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	latchkeyv1 "github.com/latchkey/latchkey/gen/latchkey/v1"
)

// The attacks of issue 13, each as it was reproduced against the shipped
// server: a legitimate key with a limited set of permissions acting on a
// key stronger than itself.

// TestLimitedKeyCannotTakeOverTheSystemKey is the takeover: a key holding
// only api_keys:manage rotated its account's system key, with a week of
// grace so that the owner noticed nothing, and walked away with `*`.
func TestLimitedKeyCannotTakeOverTheSystemKey(t *testing.T) {
	e := newEnv(t)
	operator := tenant{system: e.operator, c: e.as(e.operator)}
	acme := e.newTenant("acme")
	for name, tn := range map[string]tenant{"in a tenant": acme, "in the operator account": operator} {
		t.Run(name, func(t *testing.T) {
			_, tok := tn.issue(t, &latchkeyv1.IssueRequest{Spec: &latchkeyv1.ApiKeySpec{Permissions: []string{"api_keys:manage"}}})
			attacker := e.as(tok)
			who, err := tn.c.auth.WhoAmI(t.Context(), &latchkeyv1.WhoAmIRequest{})
			if err != nil {
				t.Fatal(err)
			}
			system := who.GetApiKey()
			events := tn.auditCount(t)

			res, err := attacker.keys.Rotate(t.Context(), &latchkeyv1.RotateRequest{
				Id: system.GetMetadata().GetId(), GracePeriod: durationpb.New(7 * 24 * time.Hour),
			})
			wantCode(t, err, connect.CodePermissionDenied)
			if res.GetApiKey().GetSpec().GetToken() != "" {
				t.Fatal("a refused rotation answered with a token")
			}
			after, err := tn.c.keys.Get(t.Context(), &latchkeyv1.GetRequest{Id: system.GetMetadata().GetId()})
			if err != nil {
				t.Fatal(err)
			}
			if after.GetApiKey().GetMetadata().GetEtag() != system.GetMetadata().GetEtag() || tn.auditCount(t) != events {
				t.Fatal("the refused rotation changed the system key or wrote an audit event")
			}
			// The owner's token is still the only one.
			if _, err := tn.c.auth.WhoAmI(t.Context(), &latchkeyv1.WhoAmIRequest{}); err != nil {
				t.Fatalf("the system key stopped working: %v", err)
			}
			if _, err := attacker.accounts.ListAccounts(t.Context(), &latchkeyv1.ListAccountsRequest{}); connect.CodeOf(err) != connect.CodePermissionDenied {
				t.Fatalf("ListAccounts by the attacker: %v", err)
			}
		})
	}
}

// TestStrongerKeysCannotBeChanged covers the other ways the same probe
// reached a stronger key: revoking it, locking the unrevocable system key
// out, reviving an expired stronger key, and changing its workspaces.
func TestStrongerKeysCannotBeChanged(t *testing.T) {
	e := newEnv(t)
	tn := e.newTenantWithLimit("acme", 100)
	ws := tn.workspace(t, "billing")
	_, tok := tn.issue(t, &latchkeyv1.IssueRequest{Spec: &latchkeyv1.ApiKeySpec{Permissions: []string{"api_keys:manage"}}})
	attacker := e.as(tok)
	who, err := tn.c.auth.WhoAmI(t.Context(), &latchkeyv1.WhoAmIRequest{})
	if err != nil {
		t.Fatal(err)
	}
	system := who.GetApiKey().GetMetadata().GetId()

	t.Run("revoking a key with a permission the caller lacks", func(t *testing.T) {
		strong, _ := tn.issue(t, &latchkeyv1.IssueRequest{Spec: &latchkeyv1.ApiKeySpec{Permissions: []string{"profiles:manage"}}})
		_, err := attacker.keys.Revoke(t.Context(), &latchkeyv1.RevokeRequest{Id: strong.GetMetadata().GetId()})
		wantCode(t, err, connect.CodePermissionDenied)
		wantState(t, tn, strong.GetMetadata().GetId(), latchkeyv1.ApiKeyState_API_KEY_STATE_ACTIVE)
	})
	t.Run("locking the system key out with allowed_cidrs", func(t *testing.T) {
		_, err := attacker.keys.Update(t.Context(), &latchkeyv1.UpdateRequest{
			Id:         system,
			Spec:       &latchkeyv1.ApiKeySpec{AllowedCidrs: []string{"192.0.2.1"}},
			UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"spec.allowed_cidrs"}},
		})
		wantCode(t, err, connect.CodePermissionDenied)
		if _, err := tn.c.auth.WhoAmI(t.Context(), &latchkeyv1.WhoAmIRequest{}); err != nil {
			t.Fatalf("the system key was locked out: %v", err)
		}
	})
	t.Run("reviving an expired stronger key to rotate it", func(t *testing.T) {
		strong, _ := tn.issue(t, &latchkeyv1.IssueRequest{Spec: &latchkeyv1.ApiKeySpec{
			Permissions: []string{"*"},
			ExpireTime:  timestamppb.New(e.clock.Now().Add(time.Minute)),
		}})
		e.clock.Advance(2 * time.Minute)
		_, err := attacker.keys.Update(t.Context(), &latchkeyv1.UpdateRequest{
			Id:         strong.GetMetadata().GetId(),
			UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"spec.expire_time"}},
		})
		wantCode(t, err, connect.CodePermissionDenied)
		wantState(t, tn, strong.GetMetadata().GetId(), latchkeyv1.ApiKeyState_API_KEY_STATE_EXPIRED)
	})
	t.Run("granting and withdrawing workspaces of a stronger key", func(t *testing.T) {
		strong, _ := tn.issue(t, &latchkeyv1.IssueRequest{
			Spec:                &latchkeyv1.ApiKeySpec{Permissions: []string{"invoices:write"}},
			InitialWorkspaceIds: []string{ws.GetMetadata().GetId()},
		})
		id := strong.GetMetadata().GetId()
		// The attacker is granted the workspace, so only reach stands in
		// its way.
		grantee, _ := tn.issue(t, &latchkeyv1.IssueRequest{})
		_, err := tn.c.keys.GrantWorkspace(t.Context(), &latchkeyv1.GrantWorkspaceRequest{Id: grantee.GetMetadata().GetId(), WorkspaceId: ws.GetMetadata().GetId()})
		if err != nil {
			t.Fatal(err)
		}
		_, err = attacker.keys.RevokeWorkspace(t.Context(), &latchkeyv1.RevokeWorkspaceRequest{Id: id, WorkspaceId: ws.GetMetadata().GetId()})
		wantCode(t, err, connect.CodePermissionDenied)
		_, err = attacker.keys.GrantWorkspace(t.Context(), &latchkeyv1.GrantWorkspaceRequest{Id: id, WorkspaceId: ws.GetMetadata().GetId()})
		wantCode(t, err, connect.CodePermissionDenied)
		got, err := tn.c.keys.Get(t.Context(), &latchkeyv1.GetRequest{Id: id})
		if err != nil {
			t.Fatal(err)
		}
		if got.GetApiKey().GetInfo().GetWorkspacesTotal() != 1 {
			t.Fatalf("workspaces of the stronger key: %d", got.GetApiKey().GetInfo().GetWorkspacesTotal())
		}
	})
	t.Run("the refusal does not say which permission", func(t *testing.T) {
		strong, _ := tn.issue(t, &latchkeyv1.IssueRequest{Spec: &latchkeyv1.ApiKeySpec{Permissions: []string{"secret_project:read"}}})
		_, err := attacker.keys.Rotate(t.Context(), &latchkeyv1.RotateRequest{Id: strong.GetMetadata().GetId()})
		wantCode(t, err, connect.CodePermissionDenied)
		if msg := err.Error(); strings.Contains(msg, "secret_project") {
			t.Fatalf("the refusal names the target's permission: %s", msg)
		}
	})
}

// TestRevivingAnExpiredKeyPassesTheQuota: keys that expired stop counting
// against max_active_keys, so bringing one back must take a place as an
// Issue would; without the check an account on a quota of 3 held 5.
func TestRevivingAnExpiredKeyPassesTheQuota(t *testing.T) {
	e := newEnv(t)
	tn := e.newTenantWithLimit("small", 3) // the system key and two more
	var expired []string
	for range 2 {
		k, _ := tn.issue(t, &latchkeyv1.IssueRequest{Spec: &latchkeyv1.ApiKeySpec{ExpireTime: timestamppb.New(e.clock.Now().Add(time.Minute))}})
		expired = append(expired, k.GetMetadata().GetId())
	}
	e.clock.Advance(2 * time.Minute)
	fresh, _ := tn.issue(t, &latchkeyv1.IssueRequest{})
	tn.issue(t, &latchkeyv1.IssueRequest{})
	_, err := tn.c.keys.Issue(t.Context(), &latchkeyv1.IssueRequest{Metadata: &latchkeyv1.AccountResourceMetadata{Name: "one too many"}})
	wantCode(t, err, connect.CodeResourceExhausted)

	revive := func(id string, expire *timestamppb.Timestamp) error {
		_, err := tn.c.keys.Update(t.Context(), &latchkeyv1.UpdateRequest{
			Id:         id,
			Spec:       &latchkeyv1.ApiKeySpec{ExpireTime: expire},
			UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"spec.expire_time"}},
		})
		return err
	}
	for _, id := range expired {
		wantCode(t, revive(id, nil), connect.CodeResourceExhausted)
		wantCode(t, revive(id, timestamppb.New(e.clock.Now().Add(time.Hour))), connect.CodeResourceExhausted)
		wantState(t, tn, id, latchkeyv1.ApiKeyState_API_KEY_STATE_EXPIRED)
	}
	if _, err := tn.c.keys.Revoke(t.Context(), &latchkeyv1.RevokeRequest{Id: fresh.GetMetadata().GetId()}); err != nil {
		t.Fatal(err)
	}
	if err := revive(expired[0], nil); err != nil {
		t.Fatalf("reviving with a free place: %v", err)
	}
	wantState(t, tn, expired[0], latchkeyv1.ApiKeyState_API_KEY_STATE_ACTIVE)
	wantCode(t, revive(expired[1], nil), connect.CodeResourceExhausted)
}

// TestOperatorPermissionsOutsideTheOperatorAccount: permissions on accounts
// are the operator's. A tenant's key holds none of them, whatever it
// stores, and Verify says so exactly as the server acts.
func TestOperatorPermissionsOutsideTheOperatorAccount(t *testing.T) {
	e := newEnv(t)
	tn := e.newTenant("acme")
	_, verifier := tn.issue(t, &latchkeyv1.IssueRequest{Spec: &latchkeyv1.ApiKeySpec{Permissions: []string{"api_keys:verify"}}})
	verify := func(c clients, token string, perms ...string) latchkeyv1.VerifyCode {
		t.Helper()
		res, err := c.auth.Verify(t.Context(), &latchkeyv1.VerifyRequest{Token: token, Permissions: perms})
		if err != nil {
			t.Fatal(err)
		}
		return res.GetCode()
	}
	for _, perm := range []string{"accounts:manage", "accounts:*", "accounts:read"} {
		t.Run("a tenant's system key does not hold "+perm, func(t *testing.T) {
			if got := verify(e.as(verifier), tn.system, perm); got != latchkeyv1.VerifyCode_VERIFY_CODE_PERMISSION_DENIED {
				t.Fatalf("Verify by the tenant = %v", got)
			}
			if got := verify(e.as(e.operator), tn.system, perm); got != latchkeyv1.VerifyCode_VERIFY_CODE_PERMISSION_DENIED {
				t.Fatalf("Verify by the operator = %v", got)
			}
			_, err := tn.c.keys.Issue(t.Context(), &latchkeyv1.IssueRequest{
				Metadata: &latchkeyv1.AccountResourceMetadata{Name: "escalate"},
				Spec:     &latchkeyv1.ApiKeySpec{Permissions: []string{perm}},
			})
			wantCode(t, err, connect.CodePermissionDenied)
		})
	}
	t.Run("the operator's system key holds accounts:manage", func(t *testing.T) {
		if got := verify(e.as(e.operator), e.operator, "accounts:manage"); got != latchkeyv1.VerifyCode_VERIFY_CODE_VALID {
			t.Fatalf("Verify = %v", got)
		}
	})
	t.Run("a tenant's system key still holds everything else", func(t *testing.T) {
		if got := verify(e.as(verifier), tn.system, "*", "invoices:write", "api_keys:manage"); got != latchkeyv1.VerifyCode_VERIFY_CODE_VALID {
			t.Fatalf("Verify = %v", got)
		}
	})
}

// TestArchivedWorkspaceCannotBeUpdated: the contract says
// FAILED_PRECONDITION, and the shipped server changed it.
func TestArchivedWorkspaceCannotBeUpdated(t *testing.T) {
	e := newEnv(t)
	tn := e.newTenant("acme")
	ws := tn.workspace(t, "old")
	archived, err := tn.c.workspaces.ArchiveWorkspace(t.Context(), &latchkeyv1.ArchiveWorkspaceRequest{Id: ws.GetMetadata().GetId()})
	if err != nil {
		t.Fatal(err)
	}
	_, err = tn.c.workspaces.UpdateWorkspace(t.Context(), &latchkeyv1.UpdateWorkspaceRequest{
		Id:         ws.GetMetadata().GetId(),
		Metadata:   &latchkeyv1.AccountResourceMetadata{Name: "renamed"},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"metadata.name"}},
	})
	wantCode(t, err, connect.CodeFailedPrecondition)
	got, err := tn.c.workspaces.GetWorkspace(t.Context(), &latchkeyv1.GetWorkspaceRequest{Id: ws.GetMetadata().GetId()})
	if err != nil {
		t.Fatal(err)
	}
	if got.GetWorkspace().GetMetadata().GetEtag() != archived.GetWorkspace().GetMetadata().GetEtag() {
		t.Fatal("the refused update changed the workspace")
	}
}

func wantState(t *testing.T, tn tenant, id string, want latchkeyv1.ApiKeyState) {
	t.Helper()
	got, err := tn.c.keys.Get(t.Context(), &latchkeyv1.GetRequest{Id: id})
	if err != nil {
		t.Fatal(err)
	}
	if s := got.GetApiKey().GetInfo().GetState(); s != want {
		t.Fatalf("state of %s = %v, want %v", id, s, want)
	}
}

// TestWorkspacesReadGrantsAndReachesNothing: workspaces:read is not
// workspaces:manage. A key holding api_keys:manage and workspaces:read,
// granted no workspace, can neither give a workspace to a key it issues
// nor change a key granted one.
func TestWorkspacesReadGrantsAndReachesNothing(t *testing.T) {
	e := newEnv(t)
	tn := e.newTenant("acme")
	ws := tn.workspace(t, "billing")
	_, tok := tn.issue(t, &latchkeyv1.IssueRequest{Spec: &latchkeyv1.ApiKeySpec{Permissions: []string{"api_keys:manage", "workspaces:read"}}})
	reader := e.as(tok)
	t.Run("issuing a key granted a workspace", func(t *testing.T) {
		_, err := reader.keys.Issue(t.Context(), &latchkeyv1.IssueRequest{
			Metadata:            &latchkeyv1.AccountResourceMetadata{Name: "escalate"},
			InitialWorkspaceIds: []string{ws.GetMetadata().GetId()},
		})
		wantCode(t, err, connect.CodePermissionDenied)
	})
	t.Run("rotating a key granted a workspace", func(t *testing.T) {
		target, _ := tn.issue(t, &latchkeyv1.IssueRequest{InitialWorkspaceIds: []string{ws.GetMetadata().GetId()}})
		res, err := reader.keys.Rotate(t.Context(), &latchkeyv1.RotateRequest{Id: target.GetMetadata().GetId()})
		wantCode(t, err, connect.CodePermissionDenied)
		if res.GetApiKey().GetSpec().GetToken() != "" {
			t.Fatal("the caller was handed the token of a key granted a workspace it is not")
		}
	})
}

// TestOperatorKeysWithAccountsManageAreOutOfReach: in the operator account
// accounts:manage is effective, so it counts in reach there. An operator
// key holding only api_keys:manage cannot rotate a key that holds
// accounts:manage and take its token.
func TestOperatorKeysWithAccountsManageAreOutOfReach(t *testing.T) {
	e := newEnv(t)
	operator := tenant{system: e.operator, c: e.as(e.operator)}
	admin, _ := operator.issue(t, &latchkeyv1.IssueRequest{Spec: &latchkeyv1.ApiKeySpec{Permissions: []string{"accounts:manage"}}})
	_, tok := operator.issue(t, &latchkeyv1.IssueRequest{Spec: &latchkeyv1.ApiKeySpec{Permissions: []string{"api_keys:manage"}}})
	res, err := e.as(tok).keys.Rotate(t.Context(), &latchkeyv1.RotateRequest{Id: admin.GetMetadata().GetId()})
	wantCode(t, err, connect.CodePermissionDenied)
	if res.GetApiKey().GetSpec().GetToken() != "" {
		t.Fatal("the caller was handed the token of an accounts:manage key")
	}
}

// TestSystemKeyKeepsItsShape: an account's system key holds `*`, never
// expires and cannot be revoked; even its own holder cannot give it an
// expiry or other permissions, and a refused update changes nothing.
func TestSystemKeyKeepsItsShape(t *testing.T) {
	e := newEnv(t)
	tn := e.newTenant("acme")
	who, err := tn.c.auth.WhoAmI(t.Context(), &latchkeyv1.WhoAmIRequest{})
	if err != nil {
		t.Fatal(err)
	}
	system := who.GetApiKey()
	for path, spec := range map[string]*latchkeyv1.ApiKeySpec{
		"spec.expire_time": {ExpireTime: timestamppb.New(e.clock.Now().Add(time.Hour))},
		"spec.permissions": {Permissions: []string{"invoices:read"}},
	} {
		t.Run("an update of "+path+" is refused", func(t *testing.T) {
			_, err := tn.c.keys.Update(t.Context(), &latchkeyv1.UpdateRequest{
				Id: system.GetMetadata().GetId(), Spec: spec, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{path}},
			})
			wantViolation(t, err, "update_mask")
			got, err := tn.c.keys.Get(t.Context(), &latchkeyv1.GetRequest{Id: system.GetMetadata().GetId()})
			if err != nil {
				t.Fatal(err)
			}
			if got.GetApiKey().GetMetadata().GetEtag() != system.GetMetadata().GetEtag() {
				t.Fatalf("the refused update changed the system key: %v", got.GetApiKey().GetSpec())
			}
		})
	}
}
