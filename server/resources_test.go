package server_test

import (
	"slices"
	"testing"

	"connectrpc.com/connect/v2"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	latchkeyv1 "github.com/latchkey/latchkey/gen/latchkey/v1"
)

func TestWorkspaces(t *testing.T) {
	e := newEnv(t)
	tn, other := e.newTenant("acme"), e.newTenant("other")
	ws := tn.workspace(t, "alpha")
	id := ws.GetMetadata().GetId()

	t.Run("get, and not found in another account", func(t *testing.T) {
		res, err := tn.c.workspaces.GetWorkspace(t.Context(), &latchkeyv1.GetWorkspaceRequest{Id: id})
		if err != nil || res.GetWorkspace().GetStatus() != latchkeyv1.WorkspaceStatus_WORKSPACE_STATUS_ACTIVE {
			t.Fatalf("GetWorkspace = %v, %v", res, err)
		}
		_, err = other.c.workspaces.GetWorkspace(t.Context(), &latchkeyv1.GetWorkspaceRequest{Id: id})
		wantCode(t, err, connect.CodeNotFound)
	})

	t.Run("update with etag", func(t *testing.T) {
		req := &latchkeyv1.UpdateWorkspaceRequest{
			Id:         id,
			Spec:       &latchkeyv1.WorkspaceSpec{Description: "first"},
			UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"spec.description"}},
			Etag:       ws.GetMetadata().GetEtag(),
		}
		res, err := tn.c.workspaces.UpdateWorkspace(t.Context(), req)
		if err != nil || res.GetWorkspace().GetSpec().GetDescription() != "first" {
			t.Fatalf("UpdateWorkspace = %v, %v", res, err)
		}
		_, err = tn.c.workspaces.UpdateWorkspace(t.Context(), req)
		wantCode(t, err, connect.CodeAborted)
	})

	t.Run("archive is idempotent and hides it from the default list", func(t *testing.T) {
		before := tn.auditCount(t)
		for range 2 {
			res, err := tn.c.workspaces.ArchiveWorkspace(t.Context(), &latchkeyv1.ArchiveWorkspaceRequest{Id: id})
			if err != nil || res.GetWorkspace().GetStatus() != latchkeyv1.WorkspaceStatus_WORKSPACE_STATUS_ARCHIVED {
				t.Fatalf("ArchiveWorkspace = %v, %v", res, err)
			}
		}
		if after := tn.auditCount(t); after != before+1 {
			t.Errorf("audit events %d → %d, want one archive event", before, after)
		}
		list, err := tn.c.workspaces.ListWorkspaces(t.Context(), &latchkeyv1.ListWorkspacesRequest{})
		if err != nil || len(list.GetWorkspaces()) != 0 {
			t.Errorf("active list = %v, %v", list.GetWorkspaces(), err)
		}
		list, err = tn.c.workspaces.ListWorkspaces(t.Context(), &latchkeyv1.ListWorkspacesRequest{Status: latchkeyv1.WorkspaceStatus_WORKSPACE_STATUS_ARCHIVED})
		if err != nil || len(list.GetWorkspaces()) != 1 {
			t.Errorf("archived list = %v, %v", list.GetWorkspaces(), err)
		}
	})

	t.Run("needs workspaces:manage to create", func(t *testing.T) {
		_, tok := tn.issue(t, &latchkeyv1.IssueRequest{Spec: &latchkeyv1.ApiKeySpec{Permissions: []string{"workspaces:read"}}})
		_, err := e.as(tok).workspaces.CreateWorkspace(t.Context(), &latchkeyv1.CreateWorkspaceRequest{Metadata: &latchkeyv1.AccountResourceMetadata{Name: "x"}})
		wantCode(t, err, connect.CodePermissionDenied)
	})
}

func TestProfiles(t *testing.T) {
	e := newEnv(t)
	tn := e.newTenant("acme")
	create := func(email string) (*latchkeyv1.CreateProfileResponse, error) {
		return tn.c.profiles.CreateProfile(t.Context(), &latchkeyv1.CreateProfileRequest{
			Metadata: &latchkeyv1.AccountResourceMetadata{Name: "ann"},
			Spec:     &latchkeyv1.ProfileSpec{Email: email, Name: "Ann Example"},
		})
	}
	res, err := create("ann@example.com")
	if err != nil || res.GetProfile().GetSpec().GetType() != latchkeyv1.ProfileType_PROFILE_TYPE_USER {
		t.Fatalf("CreateProfile = %v, %v", res, err)
	}
	id := res.GetProfile().GetMetadata().GetId()

	t.Run("email is unique in the account", func(t *testing.T) {
		_, err := create("ann@example.com")
		wantCode(t, err, connect.CodeAlreadyExists)
	})

	t.Run("email is required", func(t *testing.T) {
		_, err := create("")
		wantViolation(t, err, "spec")
	})

	t.Run("grants and lists workspaces", func(t *testing.T) {
		ws := tn.workspace(t, "w")
		if _, err := tn.c.profiles.GrantProfileWorkspace(t.Context(), &latchkeyv1.GrantProfileWorkspaceRequest{Id: id, WorkspaceId: ws.GetMetadata().GetId()}); err != nil {
			t.Fatal(err)
		}
		list, err := tn.c.profiles.ListProfileWorkspaces(t.Context(), &latchkeyv1.ListProfileWorkspacesRequest{Id: id})
		if err != nil || len(list.GetWorkspaces()) != 1 {
			t.Fatalf("ListProfileWorkspaces = %v, %v", list.GetWorkspaces(), err)
		}
		if _, err := tn.c.profiles.RevokeProfileWorkspace(t.Context(), &latchkeyv1.RevokeProfileWorkspaceRequest{Id: id, WorkspaceId: ws.GetMetadata().GetId()}); err != nil {
			t.Fatal(err)
		}
		list, err = tn.c.profiles.ListProfileWorkspaces(t.Context(), &latchkeyv1.ListProfileWorkspacesRequest{Id: id})
		if err != nil || len(list.GetWorkspaces()) != 0 {
			t.Fatalf("after revoke: %v, %v", list.GetWorkspaces(), err)
		}
	})

	t.Run("lists by type", func(t *testing.T) {
		list, err := tn.c.profiles.ListProfiles(t.Context(), &latchkeyv1.ListProfilesRequest{Type: latchkeyv1.ProfileType_PROFILE_TYPE_USER})
		if err != nil || len(list.GetProfiles()) != 1 {
			t.Errorf("users = %v, %v", list.GetProfiles(), err)
		}
		if _, err := tn.c.profiles.GetProfile(t.Context(), &latchkeyv1.GetProfileRequest{Id: id}); err != nil {
			t.Error(err)
		}
	})
}

func TestAccounts(t *testing.T) {
	e := newEnv(t)
	tn, other := e.newTenant("acme"), e.newTenant("other")
	own := tn.account.GetMetadata().GetId()

	t.Run("only the operator creates and lists accounts", func(t *testing.T) {
		// A tenant's system key holds "*", but accounts:manage counts only
		// in the operator account.
		_, err := tn.c.accounts.CreateAccount(t.Context(), &latchkeyv1.CreateAccountRequest{Name: "x"})
		wantCode(t, err, connect.CodePermissionDenied)
		_, err = tn.c.accounts.ListAccounts(t.Context(), &latchkeyv1.ListAccountsRequest{})
		wantCode(t, err, connect.CodePermissionDenied)
		list, err := e.as(e.operator).accounts.ListAccounts(t.Context(), &latchkeyv1.ListAccountsRequest{})
		if err != nil || len(list.GetAccounts()) != 3 {
			t.Errorf("ListAccounts = %d accounts, %v; want 3", len(list.GetAccounts()), err)
		}
	})

	t.Run("a key reads its own account only", func(t *testing.T) {
		res, err := tn.c.accounts.GetAccount(t.Context(), &latchkeyv1.GetAccountRequest{Id: own})
		if err != nil || res.GetAccount().GetSpec().GetOperator() {
			t.Fatalf("GetAccount = %v, %v", res, err)
		}
		_, err = other.c.accounts.GetAccount(t.Context(), &latchkeyv1.GetAccountRequest{Id: own})
		wantCode(t, err, connect.CodeNotFound)
	})

	t.Run("the system key holds every permission and cannot be revoked", func(t *testing.T) {
		who, err := tn.c.auth.WhoAmI(t.Context(), &latchkeyv1.WhoAmIRequest{})
		if err != nil {
			t.Fatal(err)
		}
		spec := who.GetApiKey().GetSpec()
		if !spec.GetSystem() || len(spec.GetPermissions()) != 1 || spec.GetPermissions()[0] != "*" {
			t.Errorf("system key spec = %v", spec)
		}
	})
}

func TestAuditEvents(t *testing.T) {
	e := newEnv(t)
	tn := e.newTenant("acme")
	ctx, info := connect.NewClientContext(t.Context())
	info.RequestHeader().Set("X-Request-Id", "req-audit-1")
	res, err := tn.c.keys.Issue(ctx, &latchkeyv1.IssueRequest{Metadata: &latchkeyv1.AccountResourceMetadata{Name: "audited"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := info.ResponseHeader().Get("X-Request-Id"); got != "req-audit-1" {
		t.Errorf("x-request-id echoed as %q", got)
	}
	id := res.GetApiKey().GetMetadata().GetId()
	if _, err := tn.c.keys.Rotate(t.Context(), &latchkeyv1.RotateRequest{Id: id}); err != nil {
		t.Fatal(err)
	}
	if _, err := tn.c.keys.Revoke(t.Context(), &latchkeyv1.RevokeRequest{Id: id}); err != nil {
		t.Fatal(err)
	}
	list, err := tn.c.audit.ListAuditEvents(t.Context(), &latchkeyv1.ListAuditEventsRequest{TargetId: id, Order: latchkeyv1.Order_ORDER_CREATE_TIME_ASC})
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, ev := range list.GetAuditEvents() {
		actions = append(actions, ev.GetAction())
		if ev.GetTarget().GetId() != id || ev.GetActor().GetId() == "" || ev.GetRequestId() == "" {
			t.Errorf("event %v", ev)
		}
	}
	want := []string{"api_key.issue", "api_key.rotate", "api_key.revoke"}
	if len(actions) != len(want) || actions[0] != want[0] || actions[1] != want[1] || actions[2] != want[2] {
		t.Fatalf("actions %v, want %v", actions, want)
	}
	if list.GetAuditEvents()[0].GetRequestId() != "req-audit-1" {
		t.Errorf("issue event request_id = %q", list.GetAuditEvents()[0].GetRequestId())
	}
	// The filters reach the store: by action, by actor (the tenant's
	// system key, which made all three), and by time around the rotation.
	rotated := list.GetAuditEvents()[1].GetTime()
	for _, tc := range []struct {
		name string
		req  *latchkeyv1.ListAuditEventsRequest
		want []string
	}{
		{"action", &latchkeyv1.ListAuditEventsRequest{TargetId: id, Action: "api_key.rotate"}, []string{"api_key.rotate"}},
		{"actor", &latchkeyv1.ListAuditEventsRequest{TargetId: id, ActorId: list.GetAuditEvents()[0].GetActor().GetId(), Order: latchkeyv1.Order_ORDER_CREATE_TIME_ASC}, want},
		{"another actor", &latchkeyv1.ListAuditEventsRequest{TargetId: id, ActorId: "prof_01J00000000000000000000000"}, nil},
		{"from the rotation", &latchkeyv1.ListAuditEventsRequest{TargetId: id, StartTime: rotated, Order: latchkeyv1.Order_ORDER_CREATE_TIME_ASC}, want[1:]},
		{"until the rotation", &latchkeyv1.ListAuditEventsRequest{TargetId: id, EndTime: rotated}, want[:1]},
	} {
		res, err := tn.c.audit.ListAuditEvents(t.Context(), tc.req)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		var got []string
		for _, ev := range res.GetAuditEvents() {
			got = append(got, ev.GetAction())
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s: actions %v, want %v", tc.name, got, tc.want)
		}
	}
	// Another account sees none of it.
	other := e.newTenant("other")
	olist, err := other.c.audit.ListAuditEvents(t.Context(), &latchkeyv1.ListAuditEventsRequest{TargetId: id})
	if err != nil || len(olist.GetAuditEvents()) != 0 {
		t.Errorf("other account sees %v, %v", olist.GetAuditEvents(), err)
	}
}
