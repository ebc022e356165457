package server_test

import (
	"testing"
	"time"

	"connectrpc.com/connect/v2"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	latchkeyv1 "github.com/latchkey/latchkey/gen/latchkey/v1"
)

// TestVerifyCacheFollowsWrites warms the verification cache with a key,
// changes the key through the API, and expects the very next Verify to see
// the change: every write that can change a verdict drops the cached key
// before it answers.
func TestVerifyCacheFollowsWrites(t *testing.T) {
	e := newEnv(t)
	tn := e.newTenant("acme")
	verify := func(t *testing.T, tok, ws string, perms ...string) latchkeyv1.VerifyCode {
		t.Helper()
		res, err := tn.c.auth.Verify(t.Context(), &latchkeyv1.VerifyRequest{Token: tok, WorkspaceId: ws, Permissions: perms, ClientIp: "10.0.0.1"})
		if err != nil {
			t.Fatal(err)
		}
		return res.GetCode()
	}
	want := func(t *testing.T, got, want latchkeyv1.VerifyCode) {
		t.Helper()
		if got != want {
			t.Fatalf("verify = %v, want %v", got, want)
		}
	}
	valid := latchkeyv1.VerifyCode_VERIFY_CODE_VALID

	t.Run("revoke", func(t *testing.T) {
		key, tok := tn.issue(t, &latchkeyv1.IssueRequest{})
		want(t, verify(t, tok, ""), valid)
		if _, err := tn.c.keys.Revoke(t.Context(), &latchkeyv1.RevokeRequest{Id: key.GetMetadata().GetId()}); err != nil {
			t.Fatal(err)
		}
		want(t, verify(t, tok, ""), latchkeyv1.VerifyCode_VERIFY_CODE_REVOKED)
	})
	t.Run("rotate without grace", func(t *testing.T) {
		key, tok := tn.issue(t, &latchkeyv1.IssueRequest{})
		want(t, verify(t, tok, ""), valid)
		res, err := tn.c.keys.Rotate(t.Context(), &latchkeyv1.RotateRequest{Id: key.GetMetadata().GetId()})
		if err != nil {
			t.Fatal(err)
		}
		want(t, verify(t, tok, ""), latchkeyv1.VerifyCode_VERIFY_CODE_NOT_FOUND)
		want(t, verify(t, res.GetApiKey().GetSpec().GetToken(), ""), valid)
	})
	t.Run("update of permissions and addresses", func(t *testing.T) {
		key, tok := tn.issue(t, &latchkeyv1.IssueRequest{Spec: &latchkeyv1.ApiKeySpec{Permissions: []string{"invoices:read"}}})
		id := key.GetMetadata().GetId()
		want(t, verify(t, tok, "", "invoices:read"), valid)
		update := func(spec *latchkeyv1.ApiKeySpec, path string) {
			t.Helper()
			if _, err := tn.c.keys.Update(t.Context(), &latchkeyv1.UpdateRequest{Id: id, Spec: spec, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{path}}}); err != nil {
				t.Fatal(err)
			}
		}
		update(&latchkeyv1.ApiKeySpec{Permissions: []string{"reports:read"}}, "spec.permissions")
		want(t, verify(t, tok, "", "invoices:read"), latchkeyv1.VerifyCode_VERIFY_CODE_PERMISSION_DENIED)
		update(&latchkeyv1.ApiKeySpec{AllowedCidrs: []string{"192.0.2.0/24"}}, "spec.allowed_cidrs")
		want(t, verify(t, tok, ""), latchkeyv1.VerifyCode_VERIFY_CODE_IP_NOT_ALLOWED)
	})
	t.Run("update of expiry", func(t *testing.T) {
		key, tok := tn.issue(t, &latchkeyv1.IssueRequest{Spec: &latchkeyv1.ApiKeySpec{ExpireTime: timestamppb.New(e.clock.Now().Add(time.Hour))}})
		id := key.GetMetadata().GetId()
		want(t, verify(t, tok, ""), valid)
		want(t, verify(t, tok, ""), valid) // from the cache
		// Moving the expiry to a time already past ends the key at once,
		// though the cached key still holds the old expiry. The server's
		// clock moves 5 s, within the cache's TTL (a step past it would
		// refill the cache and hide a missing invalidation); the new
		// expiry is past on that clock, yet in the future for the
		// request's validation, which reads the real one.
		e.clock.Advance(5 * time.Second)
		past := timestamppb.New(time.Now().Add(2 * time.Second))
		if _, err := tn.c.keys.Update(t.Context(), &latchkeyv1.UpdateRequest{Id: id, Spec: &latchkeyv1.ApiKeySpec{ExpireTime: past},
			UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"spec.expire_time"}}}); err != nil {
			t.Fatal(err)
		}
		want(t, verify(t, tok, ""), latchkeyv1.VerifyCode_VERIFY_CODE_EXPIRED)
	})
	t.Run("an authenticated call sees the change too", func(t *testing.T) {
		// A key's own calls go through the same cache as Verify: once the
		// write has answered, its next call meets the new state.
		key, tok := tn.issue(t, &latchkeyv1.IssueRequest{Spec: &latchkeyv1.ApiKeySpec{Permissions: []string{"api_keys:read"}}})
		id := key.GetMetadata().GetId()
		c := e.as(tok)
		for range 2 { // the second call is admitted from the cache
			if _, err := c.keys.Get(t.Context(), &latchkeyv1.GetRequest{Id: id}); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := tn.c.keys.Update(t.Context(), &latchkeyv1.UpdateRequest{Id: id, Spec: &latchkeyv1.ApiKeySpec{Permissions: []string{"invoices:read"}},
			UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"spec.permissions"}}}); err != nil {
			t.Fatal(err)
		}
		_, err := c.keys.Get(t.Context(), &latchkeyv1.GetRequest{Id: id})
		wantCode(t, err, connect.CodePermissionDenied)
		if _, err := c.auth.WhoAmI(t.Context(), &latchkeyv1.WhoAmIRequest{}); err != nil {
			t.Fatal(err)
		}
		if _, err := tn.c.keys.Revoke(t.Context(), &latchkeyv1.RevokeRequest{Id: id}); err != nil {
			t.Fatal(err)
		}
		_, err = c.auth.WhoAmI(t.Context(), &latchkeyv1.WhoAmIRequest{})
		wantCode(t, err, connect.CodeUnauthenticated)
	})
	t.Run("workspace grant, withdrawal and archive", func(t *testing.T) {
		key, tok := tn.issue(t, &latchkeyv1.IssueRequest{})
		id := key.GetMetadata().GetId()
		ws := tn.workspace(t, "w").GetMetadata().GetId()
		want(t, verify(t, tok, ws), latchkeyv1.VerifyCode_VERIFY_CODE_WORKSPACE_DENIED)
		if _, err := tn.c.keys.GrantWorkspace(t.Context(), &latchkeyv1.GrantWorkspaceRequest{Id: id, WorkspaceId: ws}); err != nil {
			t.Fatal(err)
		}
		want(t, verify(t, tok, ws), valid)
		if _, err := tn.c.keys.RevokeWorkspace(t.Context(), &latchkeyv1.RevokeWorkspaceRequest{Id: id, WorkspaceId: ws}); err != nil {
			t.Fatal(err)
		}
		want(t, verify(t, tok, ws), latchkeyv1.VerifyCode_VERIFY_CODE_WORKSPACE_DENIED)
		// Granted through the profile API this time.
		if _, err := tn.c.profiles.GrantProfileWorkspace(t.Context(), &latchkeyv1.GrantProfileWorkspaceRequest{Id: key.GetMetadata().GetProfileId(), WorkspaceId: ws}); err != nil {
			t.Fatal(err)
		}
		want(t, verify(t, tok, ws), valid)
		// Withdrawn through the profile API.
		if _, err := tn.c.profiles.RevokeProfileWorkspace(t.Context(), &latchkeyv1.RevokeProfileWorkspaceRequest{Id: key.GetMetadata().GetProfileId(), WorkspaceId: ws}); err != nil {
			t.Fatal(err)
		}
		want(t, verify(t, tok, ws), latchkeyv1.VerifyCode_VERIFY_CODE_WORKSPACE_DENIED)
		if _, err := tn.c.profiles.GrantProfileWorkspace(t.Context(), &latchkeyv1.GrantProfileWorkspaceRequest{Id: key.GetMetadata().GetProfileId(), WorkspaceId: ws}); err != nil {
			t.Fatal(err)
		}
		want(t, verify(t, tok, ws), valid)
		if _, err := tn.c.workspaces.ArchiveWorkspace(t.Context(), &latchkeyv1.ArchiveWorkspaceRequest{Id: ws}); err != nil {
			t.Fatal(err)
		}
		want(t, verify(t, tok, ws), latchkeyv1.VerifyCode_VERIFY_CODE_WORKSPACE_DENIED)
	})
}
