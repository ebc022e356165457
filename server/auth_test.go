package server_test

import (
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect/v2"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/latchkey/latchkey"
	latchkeyv1 "github.com/latchkey/latchkey/gen/latchkey/v1"
	"github.com/latchkey/latchkey/token"
)

// unknownToken is well formed, with a valid checksum, for a key that does
// not exist.
func unknownToken(t *testing.T) string {
	t.Helper()
	tok, err := token.New("lk", latchkey.EnvironmentLive, latchkey.NewID(latchkey.PrefixAPIKey))
	if err != nil {
		t.Fatal(err)
	}
	return tok.Reveal()
}

func TestAuthentication(t *testing.T) {
	e := newEnv(t)
	tn := e.newTenant("acme")
	revoked, revokedTok := tn.issue(t, &latchkeyv1.IssueRequest{})
	if _, err := tn.c.keys.Revoke(t.Context(), &latchkeyv1.RevokeRequest{Id: revoked.GetMetadata().GetId()}); err != nil {
		t.Fatal(err)
	}
	_, expiringTok := tn.issue(t, &latchkeyv1.IssueRequest{Spec: &latchkeyv1.ApiKeySpec{ExpireTime: timestamppb.New(time.Now().Add(time.Hour))}})
	_, readerTok := tn.issue(t, &latchkeyv1.IssueRequest{Spec: &latchkeyv1.ApiKeySpec{Permissions: []string{"workspaces:read"}}})
	_, fencedTok := tn.issue(t, &latchkeyv1.IssueRequest{Spec: &latchkeyv1.ApiKeySpec{AllowedCidrs: []string{"192.0.2.0/24"}}})
	mangled := []byte(tn.system)
	mangled[len(mangled)-10] ^= 1 // breaks the checksum

	tests := []struct {
		name string
		c    clients
		code connect.Code
	}{
		{"no credential", e.as(""), connect.CodeUnauthenticated},
		{"not a token", e.as("hello"), connect.CodeUnauthenticated},
		{"bad checksum", e.as(string(mangled)), connect.CodeUnauthenticated},
		{"unknown key", e.as(unknownToken(t)), connect.CodeUnauthenticated},
		{"revoked key", e.as(revokedTok), connect.CodeUnauthenticated},
		{"key lacking the permission", e.as(readerTok), connect.CodePermissionDenied},
		{"key outside its allowed addresses", e.as(fencedTok), connect.CodePermissionDenied},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.c.keys.List(t.Context(), &latchkeyv1.ListRequest{})
			wantCode(t, err, tt.code)
		})
	}

	t.Run("x-api-key works like a bearer token", func(t *testing.T) {
		c := e.withInterceptor(withHeader("X-Api-Key", tn.system))
		if _, err := c.keys.List(t.Context(), &latchkeyv1.ListRequest{}); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("expired key", func(t *testing.T) {
		e.clock.Advance(2 * time.Hour)
		defer e.clock.Advance(-2 * time.Hour)
		_, err := e.as(expiringTok).auth.WhoAmI(t.Context(), &latchkeyv1.WhoAmIRequest{})
		wantCode(t, err, connect.CodeUnauthenticated)
	})

	t.Run("errors and logs name no secret", func(t *testing.T) {
		for _, tok := range []string{revokedTok, string(mangled), expiringTok} {
			_, err := e.as(tok).keys.List(t.Context(), &latchkeyv1.ListRequest{})
			if err != nil && strings.Contains(err.Error(), tok[len(tok)-20:]) {
				t.Errorf("error %q shows the token", err)
			}
		}
		for _, tok := range []string{revokedTok, string(mangled), expiringTok, readerTok, tn.system, e.operator} {
			if strings.Contains(e.logs.String(), tok[len(tok)-20:]) {
				t.Errorf("logs show a token secret")
			}
		}
	})
}

func TestVerify(t *testing.T) {
	e := newEnv(t)
	tn, other := e.newTenant("acme"), e.newTenant("other")
	ws := tn.workspace(t, "ws")
	wsID := ws.GetMetadata().GetId()
	key, tok := tn.issue(t, &latchkeyv1.IssueRequest{
		Spec:                &latchkeyv1.ApiKeySpec{Permissions: []string{"billing:read", "reports:*"}, AllowedCidrs: []string{"10.0.0.0/8", "2001:db8::1"}},
		InitialWorkspaceIds: []string{wsID},
	})
	revoked, revokedTok := tn.issue(t, &latchkeyv1.IssueRequest{})
	if _, err := tn.c.keys.Revoke(t.Context(), &latchkeyv1.RevokeRequest{Id: revoked.GetMetadata().GetId()}); err != nil {
		t.Fatal(err)
	}
	_, expiringTok := tn.issue(t, &latchkeyv1.IssueRequest{Spec: &latchkeyv1.ApiKeySpec{ExpireTime: timestamppb.New(time.Now().Add(time.Hour))}})
	// A well-formed token with the key's id and another secret.
	parsed, err := token.Parse(tok)
	if err != nil {
		t.Fatal(err)
	}
	forged, err := token.New("lk", latchkey.EnvironmentLive, parsed.KeyID())
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name string
		req  *latchkeyv1.VerifyRequest
		code latchkeyv1.VerifyCode
	}{
		{"valid", &latchkeyv1.VerifyRequest{Token: tok, ClientIp: "10.1.2.3"}, latchkeyv1.VerifyCode_VERIFY_CODE_VALID},
		{"valid from a bare IPv6 address", &latchkeyv1.VerifyRequest{Token: tok, ClientIp: "2001:db8::1"}, latchkeyv1.VerifyCode_VERIFY_CODE_VALID},
		{"valid with workspace and permissions", &latchkeyv1.VerifyRequest{
			Token: tok, ClientIp: "10.1.2.3", WorkspaceId: wsID, Permissions: []string{"billing:read", "reports:write"},
		}, latchkeyv1.VerifyCode_VERIFY_CODE_VALID},
		{"malformed", &latchkeyv1.VerifyRequest{Token: "nope"}, latchkeyv1.VerifyCode_VERIFY_CODE_MALFORMED},
		{"empty", &latchkeyv1.VerifyRequest{}, latchkeyv1.VerifyCode_VERIFY_CODE_MALFORMED},
		{"another prefix", &latchkeyv1.VerifyRequest{Token: "xx" + tok[2:]}, latchkeyv1.VerifyCode_VERIFY_CODE_MALFORMED},
		{"unknown key", &latchkeyv1.VerifyRequest{Token: unknownToken(t)}, latchkeyv1.VerifyCode_VERIFY_CODE_NOT_FOUND},
		{"wrong secret", &latchkeyv1.VerifyRequest{Token: forged.Reveal(), ClientIp: "10.1.2.3"}, latchkeyv1.VerifyCode_VERIFY_CODE_NOT_FOUND},
		{"revoked", &latchkeyv1.VerifyRequest{Token: revokedTok}, latchkeyv1.VerifyCode_VERIFY_CODE_REVOKED},
		{"outside the allowed addresses", &latchkeyv1.VerifyRequest{Token: tok, ClientIp: "192.0.2.1"}, latchkeyv1.VerifyCode_VERIFY_CODE_IP_NOT_ALLOWED},
		{"no client address for a fenced key", &latchkeyv1.VerifyRequest{Token: tok}, latchkeyv1.VerifyCode_VERIFY_CODE_IP_NOT_ALLOWED},
		{"workspace not granted", &latchkeyv1.VerifyRequest{Token: expiringTok, WorkspaceId: wsID}, latchkeyv1.VerifyCode_VERIFY_CODE_WORKSPACE_DENIED},
		{"permission missing", &latchkeyv1.VerifyRequest{Token: tok, ClientIp: "10.1.2.3", Permissions: []string{"billing:write"}}, latchkeyv1.VerifyCode_VERIFY_CODE_PERMISSION_DENIED},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := tn.c.auth.Verify(t.Context(), tt.req)
			if err != nil {
				t.Fatalf("Verify is an RPC error: %v", err)
			}
			if res.GetCode() != tt.code || res.GetValid() != (tt.code == latchkeyv1.VerifyCode_VERIFY_CODE_VALID) {
				t.Errorf("code %v valid %v, want %v", res.GetCode(), res.GetValid(), tt.code)
			}
			if res.GetApiKey().GetSpec().GetToken() != "" {
				t.Error("Verify returned a token")
			}
		})
	}

	t.Run("reports the key when valid", func(t *testing.T) {
		res, err := tn.c.auth.Verify(t.Context(), &latchkeyv1.VerifyRequest{Token: tok, ClientIp: "10.0.0.1"})
		if err != nil {
			t.Fatal(err)
		}
		if res.GetApiKey().GetMetadata().GetId() != key.GetMetadata().GetId() ||
			res.GetAccountId() != tn.account.GetMetadata().GetId() ||
			res.GetProfileId() != key.GetMetadata().GetProfileId() ||
			len(res.GetPermissions()) != 2 {
			t.Errorf("Verify = %v", res)
		}
	})

	t.Run("expired", func(t *testing.T) {
		e.clock.Advance(2 * time.Hour)
		defer e.clock.Advance(-2 * time.Hour)
		res, err := tn.c.auth.Verify(t.Context(), &latchkeyv1.VerifyRequest{Token: expiringTok})
		if err != nil || res.GetCode() != latchkeyv1.VerifyCode_VERIFY_CODE_EXPIRED {
			t.Errorf("Verify = %v, %v; want EXPIRED", res.GetCode(), err)
		}
	})

	t.Run("another account's key is not found, but the operator sees it", func(t *testing.T) {
		res, err := other.c.auth.Verify(t.Context(), &latchkeyv1.VerifyRequest{Token: tok, ClientIp: "10.0.0.1"})
		if err != nil || res.GetCode() != latchkeyv1.VerifyCode_VERIFY_CODE_NOT_FOUND || res.GetApiKey() != nil {
			t.Errorf("other account: %v, %v", res, err)
		}
		res, err = e.as(e.operator).auth.Verify(t.Context(), &latchkeyv1.VerifyRequest{Token: tok, ClientIp: "10.0.0.1"})
		if err != nil || res.GetCode() != latchkeyv1.VerifyCode_VERIFY_CODE_VALID {
			t.Errorf("operator: %v, %v", res.GetCode(), err)
		}
	})

	t.Run("needs api_keys:verify", func(t *testing.T) {
		_, readerTok := tn.issue(t, &latchkeyv1.IssueRequest{Spec: &latchkeyv1.ApiKeySpec{Permissions: []string{"api_keys:read"}}})
		_, err := e.as(readerTok).auth.Verify(t.Context(), &latchkeyv1.VerifyRequest{Token: tok})
		wantCode(t, err, connect.CodePermissionDenied)
	})
}

func TestWhoAmI(t *testing.T) {
	e := newEnv(t)
	tn := e.newTenant("acme")
	key, tok := tn.issue(t, &latchkeyv1.IssueRequest{Spec: &latchkeyv1.ApiKeySpec{Permissions: []string{"billing:read"}}})
	res, err := e.as(tok).auth.WhoAmI(t.Context(), &latchkeyv1.WhoAmIRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if res.GetApiKey().GetMetadata().GetId() != key.GetMetadata().GetId() ||
		res.GetProfile().GetMetadata().GetId() != key.GetMetadata().GetProfileId() ||
		res.GetProfile().GetSpec().GetType() != latchkeyv1.ProfileType_PROFILE_TYPE_API_KEY ||
		res.GetAccount().GetMetadata().GetId() != tn.account.GetMetadata().GetId() {
		t.Errorf("WhoAmI = %v", res)
	}
}
