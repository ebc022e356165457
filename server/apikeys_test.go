package server_test

import (
	"database/sql"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect/v2"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	latchkeyv1 "github.com/latchkey/latchkey/gen/latchkey/v1"
)

func TestIssue(t *testing.T) {
	e := newEnv(t)
	tn := e.newTenant("acme")

	t.Run("shows the token once", func(t *testing.T) {
		key, tok := tn.issue(t, &latchkeyv1.IssueRequest{
			Metadata: &latchkeyv1.AccountResourceMetadata{Name: "ci", Labels: map[string]string{"env": "prod"}},
			Spec:     &latchkeyv1.ApiKeySpec{Permissions: []string{"billing:read"}},
		})
		if !strings.HasPrefix(tok, "lk_live_"+strings.TrimPrefix(key.GetMetadata().GetId(), "key_")+"_") {
			t.Errorf("token %q does not carry the key id %s", tok[:16], key.GetMetadata().GetId())
		}
		if got := key.GetInfo().GetTokenPrefix(); got != tok[:16] {
			t.Errorf("token_prefix = %q, want the token's first 16 characters", got)
		}
		if key.GetInfo().GetState() != latchkeyv1.ApiKeyState_API_KEY_STATE_ACTIVE {
			t.Errorf("state = %v", key.GetInfo().GetState())
		}
		if key.GetMetadata().GetProfileId() == "" || key.GetInfo().GetCreatedBy().GetMetadata().GetId() == "" {
			t.Errorf("profile_id %q, created_by %v: want both", key.GetMetadata().GetProfileId(), key.GetInfo().GetCreatedBy())
		}
		got, err := tn.c.keys.Get(t.Context(), &latchkeyv1.GetRequest{Id: key.GetMetadata().GetId()})
		if err != nil {
			t.Fatal(err)
		}
		if got.GetApiKey().GetSpec().Token != nil {
			t.Error("Get returned the token")
		}
		list, err := tn.c.keys.List(t.Context(), &latchkeyv1.ListRequest{})
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range list.GetApiKeys() {
			if k.GetSpec().Token != nil {
				t.Error("List returned a token")
			}
		}
	})

	t.Run("writes the environment into the token", func(t *testing.T) {
		_, tok := tn.issue(t, &latchkeyv1.IssueRequest{Spec: &latchkeyv1.ApiKeySpec{Environment: latchkeyv1.Environment_ENVIRONMENT_TEST}})
		if !strings.HasPrefix(tok, "lk_test_") {
			t.Errorf("test key token starts %q", tok[:8])
		}
	})

	t.Run("refuses a request without a name and writes nothing", func(t *testing.T) {
		before := tn.auditCount(t)
		_, err := tn.c.keys.Issue(t.Context(), &latchkeyv1.IssueRequest{Metadata: &latchkeyv1.AccountResourceMetadata{}})
		wantViolation(t, err, "metadata")
		if after := tn.auditCount(t); after != before {
			t.Errorf("audit events %d → %d after a refused Issue", before, after)
		}
	})

	t.Run("refuses permissions the caller does not hold", func(t *testing.T) {
		_, tok := tn.issue(t, &latchkeyv1.IssueRequest{Spec: &latchkeyv1.ApiKeySpec{Permissions: []string{"api_keys:manage"}}})
		limited := e.as(tok)
		before := tn.auditCount(t)
		_, err := limited.keys.Issue(t.Context(), &latchkeyv1.IssueRequest{
			Metadata: &latchkeyv1.AccountResourceMetadata{Name: "escalated"},
			Spec:     &latchkeyv1.ApiKeySpec{Permissions: []string{"workspaces:manage"}},
		})
		wantCode(t, err, connect.CodePermissionDenied)
		if after := tn.auditCount(t); after != before {
			t.Errorf("audit events %d → %d after a refused Issue", before, after)
		}
		// What it holds, it may give: manage implies read.
		if _, err := limited.keys.Issue(t.Context(), &latchkeyv1.IssueRequest{
			Metadata: &latchkeyv1.AccountResourceMetadata{Name: "reader"},
			Spec:     &latchkeyv1.ApiKeySpec{Permissions: []string{"api_keys:read"}},
		}); err != nil {
			t.Errorf("Issue of a held permission: %v", err)
		}
	})

	t.Run("grants only workspaces the caller is granted", func(t *testing.T) {
		ws := tn.workspace(t, "payments")
		key, tok := tn.issue(t, &latchkeyv1.IssueRequest{Spec: &latchkeyv1.ApiKeySpec{Permissions: []string{"api_keys:manage"}}})
		limited := e.as(tok)
		req := &latchkeyv1.IssueRequest{
			Metadata:            &latchkeyv1.AccountResourceMetadata{Name: "child"},
			InitialWorkspaceIds: []string{ws.GetMetadata().GetId()},
		}
		_, err := limited.keys.Issue(t.Context(), req)
		wantCode(t, err, connect.CodePermissionDenied)
		if _, err := tn.c.keys.GrantWorkspace(t.Context(), &latchkeyv1.GrantWorkspaceRequest{
			Id: key.GetMetadata().GetId(), WorkspaceId: ws.GetMetadata().GetId(),
		}); err != nil {
			t.Fatal(err)
		}
		res, err := limited.keys.Issue(t.Context(), req)
		if err != nil {
			t.Fatalf("Issue with a granted workspace: %v", err)
		}
		if res.GetApiKey().GetInfo().GetWorkspacesTotal() != 1 {
			t.Errorf("workspaces_total = %d, want 1", res.GetApiKey().GetInfo().GetWorkspacesTotal())
		}
	})

	t.Run("an unknown initial workspace leaves no key", func(t *testing.T) {
		before := tn.auditCount(t)
		_, err := tn.c.keys.Issue(t.Context(), &latchkeyv1.IssueRequest{
			Metadata:            &latchkeyv1.AccountResourceMetadata{Name: "orphan"},
			InitialWorkspaceIds: []string{"ws_01JD0000000000000000000000"},
		})
		wantCode(t, err, connect.CodeNotFound)
		if after := tn.auditCount(t); after != before {
			t.Errorf("audit events %d → %d after a failed Issue", before, after)
		}
		list, err := tn.c.keys.List(t.Context(), &latchkeyv1.ListRequest{PageSize: 500})
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range list.GetApiKeys() {
			if k.GetMetadata().GetName() == "orphan" {
				t.Error("a failed Issue left its key behind")
			}
		}
	})

	t.Run("needs api_keys:manage", func(t *testing.T) {
		_, tok := tn.issue(t, &latchkeyv1.IssueRequest{Spec: &latchkeyv1.ApiKeySpec{Permissions: []string{"api_keys:read"}}})
		_, err := e.as(tok).keys.Issue(t.Context(), &latchkeyv1.IssueRequest{Metadata: &latchkeyv1.AccountResourceMetadata{Name: "x"}})
		wantCode(t, err, connect.CodePermissionDenied)
	})
}

func TestIssueQuota(t *testing.T) {
	e := newEnv(t)
	res, err := e.as(e.operator).accounts.CreateAccount(t.Context(), &latchkeyv1.CreateAccountRequest{Name: "small", MaxActiveKeys: 3})
	if err != nil {
		t.Fatal(err)
	}
	tn := tenant{account: res.GetAccount(), c: e.as(res.GetSystemApiKey().GetSpec().GetToken())}
	// The system key is the first of three active keys.
	first, _ := tn.issue(t, &latchkeyv1.IssueRequest{})
	tn.issue(t, &latchkeyv1.IssueRequest{})
	_, err = tn.c.keys.Issue(t.Context(), &latchkeyv1.IssueRequest{Metadata: &latchkeyv1.AccountResourceMetadata{Name: "over"}})
	wantCode(t, err, connect.CodeResourceExhausted)
	if _, err := tn.c.keys.Revoke(t.Context(), &latchkeyv1.RevokeRequest{Id: first.GetMetadata().GetId()}); err != nil {
		t.Fatal(err)
	}
	tn.issue(t, &latchkeyv1.IssueRequest{}) // a revoked key frees its place
}

// TestServerDefaultQuota: an account that sets no max_active_keys of its
// own is held to the server's (MaxActiveKeys: 20 in these tests), both
// when it issues and when it revives an expired key; the refusal is
// resource_exhausted and writes nothing. The store suite checks the store
// alone; this checks that the server hands its default down.
func TestServerDefaultQuota(t *testing.T) {
	const serverDefault = 20 // newEnv's MaxActiveKeys
	e := newEnv(t)
	tn := e.newTenant("no limit of its own")
	if got := tn.account.GetSpec().GetMaxActiveKeys(); got != 0 {
		t.Fatalf("the account's own max_active_keys = %d, want none", got)
	}
	// The system key is the first active key; one more is issued to expire.
	expiring, _ := tn.issue(t, &latchkeyv1.IssueRequest{Spec: &latchkeyv1.ApiKeySpec{ExpireTime: timestamppb.New(e.clock.Now().Add(time.Minute))}})
	for range serverDefault - 2 {
		tn.issue(t, &latchkeyv1.IssueRequest{})
	}
	db, err := sql.Open("sqlite", "file:"+e.dbPath+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()

	t.Run("an issue past the server default is refused and writes nothing", func(t *testing.T) {
		before := snapshot(t, db)
		_, err := tn.c.keys.Issue(t.Context(), &latchkeyv1.IssueRequest{Metadata: &latchkeyv1.AccountResourceMetadata{Name: "one too many"}})
		wantCode(t, err, connect.CodeResourceExhausted)
		if after := snapshot(t, db); after != before {
			t.Error("the refused Issue changed the database")
		}
	})

	t.Run("reviving an expired key past the server default is refused and writes nothing", func(t *testing.T) {
		e.clock.Advance(2 * time.Minute)
		tn.issue(t, &latchkeyv1.IssueRequest{}) // takes the expired key's place
		before := snapshot(t, db)
		_, err := tn.c.keys.Update(t.Context(), &latchkeyv1.UpdateRequest{
			Id:         expiring.GetMetadata().GetId(),
			Spec:       &latchkeyv1.ApiKeySpec{},
			UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"spec.expire_time"}},
		})
		wantCode(t, err, connect.CodeResourceExhausted)
		if after := snapshot(t, db); after != before {
			t.Error("the refused revival changed the database")
		}
		wantState(t, tn, expiring.GetMetadata().GetId(), latchkeyv1.ApiKeyState_API_KEY_STATE_EXPIRED)
	})
}

func TestKeysAreIsolatedByAccount(t *testing.T) {
	e := newEnv(t)
	a, b := e.newTenant("a"), e.newTenant("b")
	key, _ := a.issue(t, &latchkeyv1.IssueRequest{})
	id := key.GetMetadata().GetId()
	ws := b.workspace(t, "b's")

	_, err := b.c.keys.Get(t.Context(), &latchkeyv1.GetRequest{Id: id})
	wantCode(t, err, connect.CodeNotFound)
	_, err = b.c.keys.Revoke(t.Context(), &latchkeyv1.RevokeRequest{Id: id})
	wantCode(t, err, connect.CodeNotFound)
	_, err = b.c.keys.Rotate(t.Context(), &latchkeyv1.RotateRequest{Id: id})
	wantCode(t, err, connect.CodeNotFound)
	_, err = b.c.keys.GrantWorkspace(t.Context(), &latchkeyv1.GrantWorkspaceRequest{Id: id, WorkspaceId: ws.GetMetadata().GetId()})
	wantCode(t, err, connect.CodeNotFound)
	// A's own key cannot be granted B's workspace either.
	_, err = a.c.keys.GrantWorkspace(t.Context(), &latchkeyv1.GrantWorkspaceRequest{Id: id, WorkspaceId: ws.GetMetadata().GetId()})
	wantCode(t, err, connect.CodeNotFound)
	list, err := b.c.keys.List(t.Context(), &latchkeyv1.ListRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range list.GetApiKeys() {
		if k.GetMetadata().GetId() == id {
			t.Error("B lists A's key")
		}
	}
}

func TestList(t *testing.T) {
	e := newEnv(t)
	tn := e.newTenant("acme")
	ws := tn.workspace(t, "ws")
	var ids []string
	for i := range 7 {
		labels := map[string]string{"team": "ai"}
		if i%2 == 0 {
			labels["env"] = "prod"
		}
		req := &latchkeyv1.IssueRequest{Metadata: &latchkeyv1.AccountResourceMetadata{Name: "k", Labels: labels}}
		if i < 2 {
			req.InitialWorkspaceIds = []string{ws.GetMetadata().GetId()}
		}
		key, _ := tn.issue(t, req)
		ids = append(ids, key.GetMetadata().GetId())
	}

	t.Run("pages through every key once, newest first", func(t *testing.T) {
		var seen []string
		tok := ""
		for pages := 0; ; pages++ {
			res, err := tn.c.keys.List(t.Context(), &latchkeyv1.ListRequest{PageSize: 3, PageToken: tok, LabelSelector: "team=ai"})
			if err != nil {
				t.Fatal(err)
			}
			for _, k := range res.GetApiKeys() {
				seen = append(seen, k.GetMetadata().GetId())
			}
			if tok = res.GetNextPageToken(); tok == "" {
				break
			}
			if pages > 5 {
				t.Fatal("paging does not end")
			}
		}
		if len(seen) != len(ids) {
			t.Fatalf("saw %d keys, want %d", len(seen), len(ids))
		}
		for i := range ids {
			if seen[i] != ids[len(ids)-1-i] {
				t.Fatalf("order %v, want newest first %v", seen, ids)
			}
		}
	})

	t.Run("filters by labels, workspace and state", func(t *testing.T) {
		res, err := tn.c.keys.List(t.Context(), &latchkeyv1.ListRequest{LabelSelector: "env=prod,team=ai"})
		if err != nil || len(res.GetApiKeys()) != 4 {
			t.Errorf("label filter: %d keys, %v; want 4", len(res.GetApiKeys()), err)
		}
		res, err = tn.c.keys.List(t.Context(), &latchkeyv1.ListRequest{WorkspaceId: ws.GetMetadata().GetId()})
		if err != nil || len(res.GetApiKeys()) != 2 {
			t.Errorf("workspace filter: %d keys, %v; want 2", len(res.GetApiKeys()), err)
		}
		if _, err := tn.c.keys.Revoke(t.Context(), &latchkeyv1.RevokeRequest{Id: ids[0]}); err != nil {
			t.Fatal(err)
		}
		res, err = tn.c.keys.List(t.Context(), &latchkeyv1.ListRequest{State: latchkeyv1.ApiKeyState_API_KEY_STATE_REVOKED})
		if err != nil || len(res.GetApiKeys()) != 1 || res.GetApiKeys()[0].GetMetadata().GetId() != ids[0] {
			t.Errorf("state filter: %v, %v; want the one revoked key", res.GetApiKeys(), err)
		}
	})

	t.Run("refuses a forged page token", func(t *testing.T) {
		res, err := tn.c.keys.List(t.Context(), &latchkeyv1.ListRequest{PageSize: 1})
		if err != nil {
			t.Fatal(err)
		}
		forged := []byte(res.GetNextPageToken())
		forged[len(forged)/2] ^= 1
		_, err = tn.c.keys.List(t.Context(), &latchkeyv1.ListRequest{PageSize: 1, PageToken: string(forged)})
		wantViolation(t, err, "page_token")
		// A token of one query is refused by another.
		_, err = tn.c.keys.List(t.Context(), &latchkeyv1.ListRequest{PageSize: 1, PageToken: res.GetNextPageToken(), LabelSelector: "env=prod"})
		wantViolation(t, err, "page_token")
	})
}

func TestUpdate(t *testing.T) {
	e := newEnv(t)
	tn := e.newTenant("acme")
	key, _ := tn.issue(t, &latchkeyv1.IssueRequest{})
	id := key.GetMetadata().GetId()

	t.Run("changes only the masked fields", func(t *testing.T) {
		res, err := tn.c.keys.Update(t.Context(), &latchkeyv1.UpdateRequest{
			Id:         id,
			Metadata:   &latchkeyv1.AccountResourceMetadata{Name: "renamed", ExternalId: "ignored"},
			Spec:       &latchkeyv1.ApiKeySpec{Description: "new", AllowedCidrs: []string{"10.0.0.0/8"}},
			UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"metadata.name", "spec.description"}},
			Etag:       key.GetMetadata().GetEtag(),
		})
		if err != nil {
			t.Fatal(err)
		}
		got := res.GetApiKey()
		if got.GetMetadata().GetName() != "renamed" || got.GetSpec().GetDescription() != "new" {
			t.Errorf("name %q, description %q", got.GetMetadata().GetName(), got.GetSpec().GetDescription())
		}
		if got.GetMetadata().GetExternalId() != "" || len(got.GetSpec().GetAllowedCidrs()) != 0 {
			t.Error("Update changed fields outside the mask")
		}
		if got.GetMetadata().GetEtag() == key.GetMetadata().GetEtag() {
			t.Error("etag did not change")
		}
	})

	t.Run("refuses a stale etag", func(t *testing.T) {
		_, err := tn.c.keys.Update(t.Context(), &latchkeyv1.UpdateRequest{
			Id:         id,
			Metadata:   &latchkeyv1.AccountResourceMetadata{Name: "stale"},
			UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"metadata.name"}},
			Etag:       key.GetMetadata().GetEtag(),
		})
		wantCode(t, err, connect.CodeAborted)
	})

	t.Run("refuses an immutable path", func(t *testing.T) {
		_, err := tn.c.keys.Update(t.Context(), &latchkeyv1.UpdateRequest{
			Id:         id,
			UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"spec.environment"}},
		})
		wantViolation(t, err, "update_mask")
	})

	t.Run("refuses to clear the name", func(t *testing.T) {
		_, err := tn.c.keys.Update(t.Context(), &latchkeyv1.UpdateRequest{
			Id:         id,
			UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"metadata.name"}},
		})
		wantViolation(t, err, "metadata.name")
	})

	t.Run("refuses permissions the caller does not hold", func(t *testing.T) {
		_, tok := tn.issue(t, &latchkeyv1.IssueRequest{Spec: &latchkeyv1.ApiKeySpec{Permissions: []string{"api_keys:manage"}}})
		_, err := e.as(tok).keys.Update(t.Context(), &latchkeyv1.UpdateRequest{
			Id:         id,
			Spec:       &latchkeyv1.ApiKeySpec{Permissions: []string{"*"}},
			UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"spec.permissions"}},
		})
		wantCode(t, err, connect.CodePermissionDenied)
	})

	t.Run("refuses a revoked key", func(t *testing.T) {
		if _, err := tn.c.keys.Revoke(t.Context(), &latchkeyv1.RevokeRequest{Id: id}); err != nil {
			t.Fatal(err)
		}
		_, err := tn.c.keys.Update(t.Context(), &latchkeyv1.UpdateRequest{
			Id:         id,
			Spec:       &latchkeyv1.ApiKeySpec{Description: "late"},
			UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"spec.description"}},
		})
		wantCode(t, err, connect.CodeFailedPrecondition)
	})
}

func TestRotate(t *testing.T) {
	e := newEnv(t)
	tn := e.newTenant("acme")
	verifier := tn.c.auth

	verify := func(t *testing.T, tok string) latchkeyv1.VerifyCode {
		t.Helper()
		res, err := verifier.Verify(t.Context(), &latchkeyv1.VerifyRequest{Token: tok})
		if err != nil {
			t.Fatal(err)
		}
		return res.GetCode()
	}

	t.Run("with a grace period both secrets work until it ends", func(t *testing.T) {
		key, old := tn.issue(t, &latchkeyv1.IssueRequest{})
		res, err := tn.c.keys.Rotate(t.Context(), &latchkeyv1.RotateRequest{Id: key.GetMetadata().GetId(), GracePeriod: durationpb.New(time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		fresh := res.GetApiKey().GetSpec().GetToken()
		if fresh == "" || fresh == old {
			t.Fatal("Rotate returned no new token")
		}
		if res.GetApiKey().GetInfo().GetPreviousTokenExpireTime() == nil || res.GetApiKey().GetInfo().GetRotateTime() == nil {
			t.Error("rotate_time or previous_token_expire_time unset")
		}
		if c := verify(t, old); c != latchkeyv1.VerifyCode_VERIFY_CODE_VALID {
			t.Errorf("old token in grace: %v", c)
		}
		if c := verify(t, fresh); c != latchkeyv1.VerifyCode_VERIFY_CODE_VALID {
			t.Errorf("new token: %v", c)
		}
		e.clock.Advance(61 * time.Minute)
		defer e.clock.Advance(-61 * time.Minute)
		if c := verify(t, old); c != latchkeyv1.VerifyCode_VERIFY_CODE_NOT_FOUND {
			t.Errorf("old token after grace: %v", c)
		}
		if c := verify(t, fresh); c != latchkeyv1.VerifyCode_VERIFY_CODE_VALID {
			t.Errorf("new token after grace: %v", c)
		}
	})

	t.Run("without a grace period the old secret stops at once", func(t *testing.T) {
		key, old := tn.issue(t, &latchkeyv1.IssueRequest{})
		res, err := tn.c.keys.Rotate(t.Context(), &latchkeyv1.RotateRequest{Id: key.GetMetadata().GetId()})
		if err != nil {
			t.Fatal(err)
		}
		if c := verify(t, old); c != latchkeyv1.VerifyCode_VERIFY_CODE_NOT_FOUND {
			t.Errorf("old token: %v", c)
		}
		if c := verify(t, res.GetApiKey().GetSpec().GetToken()); c != latchkeyv1.VerifyCode_VERIFY_CODE_VALID {
			t.Errorf("new token: %v", c)
		}
	})

	t.Run("the system key can be rotated", func(t *testing.T) {
		who, err := tn.c.auth.WhoAmI(t.Context(), &latchkeyv1.WhoAmIRequest{})
		if err != nil {
			t.Fatal(err)
		}
		res, err := tn.c.keys.Rotate(t.Context(), &latchkeyv1.RotateRequest{Id: who.GetApiKey().GetMetadata().GetId(), GracePeriod: durationpb.New(time.Minute)})
		if err != nil {
			t.Fatal(err)
		}
		tn.c = e.as(res.GetApiKey().GetSpec().GetToken())
		verifier = tn.c.auth
	})

	t.Run("refuses revoked and expired keys", func(t *testing.T) {
		key, _ := tn.issue(t, &latchkeyv1.IssueRequest{})
		if _, err := tn.c.keys.Revoke(t.Context(), &latchkeyv1.RevokeRequest{Id: key.GetMetadata().GetId()}); err != nil {
			t.Fatal(err)
		}
		_, err := tn.c.keys.Rotate(t.Context(), &latchkeyv1.RotateRequest{Id: key.GetMetadata().GetId()})
		wantCode(t, err, connect.CodeFailedPrecondition)

		expiring, _ := tn.issue(t, &latchkeyv1.IssueRequest{Spec: &latchkeyv1.ApiKeySpec{ExpireTime: timestamppb.New(e.clock.Now().Add(time.Hour))}})
		e.clock.Advance(2 * time.Hour)
		defer e.clock.Advance(-2 * time.Hour)
		_, err = tn.c.keys.Rotate(t.Context(), &latchkeyv1.RotateRequest{Id: expiring.GetMetadata().GetId()})
		wantCode(t, err, connect.CodeFailedPrecondition)
	})

	t.Run("refuses a grace period over seven days", func(t *testing.T) {
		key, _ := tn.issue(t, &latchkeyv1.IssueRequest{})
		_, err := tn.c.keys.Rotate(t.Context(), &latchkeyv1.RotateRequest{Id: key.GetMetadata().GetId(), GracePeriod: durationpb.New(8 * 24 * time.Hour)})
		wantViolation(t, err, "grace_period")
	})
}

func TestRevoke(t *testing.T) {
	e := newEnv(t)
	tn := e.newTenant("acme")
	key, tok := tn.issue(t, &latchkeyv1.IssueRequest{Spec: &latchkeyv1.ApiKeySpec{Permissions: []string{"api_keys:read"}}})
	id := key.GetMetadata().GetId()

	res, err := tn.c.keys.Revoke(t.Context(), &latchkeyv1.RevokeRequest{Id: id})
	if err != nil {
		t.Fatal(err)
	}
	if res.GetApiKey().GetInfo().GetState() != latchkeyv1.ApiKeyState_API_KEY_STATE_REVOKED || res.GetApiKey().GetInfo().GetRevokeTime() == nil {
		t.Errorf("state %v, revoke_time %v", res.GetApiKey().GetInfo().GetState(), res.GetApiKey().GetInfo().GetRevokeTime())
	}
	// In effect before the response: the very next call is refused.
	_, err = e.as(tok).keys.Get(t.Context(), &latchkeyv1.GetRequest{Id: id})
	wantCode(t, err, connect.CodeUnauthenticated)

	t.Run("is idempotent and writes no second event", func(t *testing.T) {
		before := tn.auditCount(t)
		if _, err := tn.c.keys.Revoke(t.Context(), &latchkeyv1.RevokeRequest{Id: id}); err != nil {
			t.Fatal(err)
		}
		if after := tn.auditCount(t); after != before {
			t.Errorf("audit events %d → %d on a repeated revoke", before, after)
		}
	})

	t.Run("refuses the system key", func(t *testing.T) {
		who, err := tn.c.auth.WhoAmI(t.Context(), &latchkeyv1.WhoAmIRequest{})
		if err != nil {
			t.Fatal(err)
		}
		_, err = tn.c.keys.Revoke(t.Context(), &latchkeyv1.RevokeRequest{Id: who.GetApiKey().GetMetadata().GetId()})
		wantCode(t, err, connect.CodeFailedPrecondition)
	})

	t.Run("unknown key", func(t *testing.T) {
		_, err := tn.c.keys.Revoke(t.Context(), &latchkeyv1.RevokeRequest{Id: "key_01JD0000000000000000000000"})
		wantCode(t, err, connect.CodeNotFound)
	})
}

func TestWorkspaceGrants(t *testing.T) {
	e := newEnv(t)
	tn := e.newTenant("acme")
	ws := tn.workspace(t, "alpha")
	wsID := ws.GetMetadata().GetId()
	key, tok := tn.issue(t, &latchkeyv1.IssueRequest{})
	id := key.GetMetadata().GetId()
	verify := func(t *testing.T) latchkeyv1.VerifyCode {
		t.Helper()
		res, err := tn.c.auth.Verify(t.Context(), &latchkeyv1.VerifyRequest{Token: tok, WorkspaceId: wsID})
		if err != nil {
			t.Fatal(err)
		}
		return res.GetCode()
	}

	if c := verify(t); c != latchkeyv1.VerifyCode_VERIFY_CODE_WORKSPACE_DENIED {
		t.Errorf("a key with no workspace reaches one: %v", c)
	}
	for range 2 { // idempotent
		res, err := tn.c.keys.GrantWorkspace(t.Context(), &latchkeyv1.GrantWorkspaceRequest{Id: id, WorkspaceId: wsID})
		if err != nil {
			t.Fatal(err)
		}
		info := res.GetApiKey().GetInfo()
		if info.GetWorkspacesTotal() != 1 || len(info.GetWorkspacesPreview()) != 1 || info.GetWorkspacesPreview()[0].GetName() != "alpha" {
			t.Errorf("after grant: total %d, preview %v", info.GetWorkspacesTotal(), info.GetWorkspacesPreview())
		}
	}
	if c := verify(t); c != latchkeyv1.VerifyCode_VERIFY_CODE_VALID {
		t.Errorf("granted workspace: %v", c)
	}
	list, err := tn.c.keys.ListGrantedWorkspaces(t.Context(), &latchkeyv1.ListGrantedWorkspacesRequest{Id: id})
	if err != nil || len(list.GetWorkspaces()) != 1 || list.GetWorkspaces()[0].GetMetadata().GetId() != wsID {
		t.Errorf("ListGrantedWorkspaces = %v, %v", list.GetWorkspaces(), err)
	}
	res, err := tn.c.keys.RevokeWorkspace(t.Context(), &latchkeyv1.RevokeWorkspaceRequest{Id: id, WorkspaceId: wsID})
	if err != nil || res.GetApiKey().GetInfo().GetWorkspacesTotal() != 0 {
		t.Fatalf("RevokeWorkspace: total %d, %v", res.GetApiKey().GetInfo().GetWorkspacesTotal(), err)
	}
	if c := verify(t); c != latchkeyv1.VerifyCode_VERIFY_CODE_WORKSPACE_DENIED {
		t.Errorf("withdrawn workspace: %v", c)
	}

	t.Run("an archived workspace admits nothing and takes no grant", func(t *testing.T) {
		if _, err := tn.c.keys.GrantWorkspace(t.Context(), &latchkeyv1.GrantWorkspaceRequest{Id: id, WorkspaceId: wsID}); err != nil {
			t.Fatal(err)
		}
		if _, err := tn.c.workspaces.ArchiveWorkspace(t.Context(), &latchkeyv1.ArchiveWorkspaceRequest{Id: wsID}); err != nil {
			t.Fatal(err)
		}
		if c := verify(t); c != latchkeyv1.VerifyCode_VERIFY_CODE_WORKSPACE_DENIED {
			t.Errorf("archived workspace: %v", c)
		}
		other, _ := tn.issue(t, &latchkeyv1.IssueRequest{})
		_, err := tn.c.keys.GrantWorkspace(t.Context(), &latchkeyv1.GrantWorkspaceRequest{Id: other.GetMetadata().GetId(), WorkspaceId: wsID})
		wantCode(t, err, connect.CodeFailedPrecondition)
	})
}
