package server_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	latchkeyv1 "github.com/latchkey/latchkey/gen/latchkey/v1"
	"github.com/latchkey/latchkey/server"
)

// forwardAuth calls /forward-auth as a gateway would: its own key, the
// caller's headers as forwarded, and the requirements of its
// configuration.
func forwardAuth(t *testing.T, e *env, method string, headers map[string]string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, e.url+"/forward-auth", nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	res, err := e.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return res, string(body)
}

func TestForwardAuth(t *testing.T) {
	e := newEnv(t)
	acme := e.newTenant("acme")
	globex := e.newTenant("globex")
	_, gateway := acme.issue(t, &latchkeyv1.IssueRequest{Spec: &latchkeyv1.ApiKeySpec{Permissions: []string{"api_keys:verify"}}})
	_, notGateway := acme.issue(t, &latchkeyv1.IssueRequest{Spec: &latchkeyv1.ApiKeySpec{Permissions: []string{"api_keys:read"}}})
	ws := acme.workspace(t, "billing")
	wsID := ws.GetMetadata().GetId()
	caller, callerTok := acme.issue(t, &latchkeyv1.IssueRequest{
		Spec:                &latchkeyv1.ApiKeySpec{Permissions: []string{"invoices:read"}},
		InitialWorkspaceIds: []string{wsID},
	})
	_, walledTok := acme.issue(t, &latchkeyv1.IssueRequest{Spec: &latchkeyv1.ApiKeySpec{AllowedCidrs: []string{"10.0.0.0/8"}}})
	revoked, revokedTok := acme.issue(t, &latchkeyv1.IssueRequest{})
	if _, err := acme.c.keys.Revoke(t.Context(), &latchkeyv1.RevokeRequest{Id: revoked.GetMetadata().GetId()}); err != nil {
		t.Fatal(err)
	}
	_, expiringTok := acme.issue(t, &latchkeyv1.IssueRequest{Spec: &latchkeyv1.ApiKeySpec{ExpireTime: timestamppb.New(e.clock.Now().Add(time.Minute))}})
	_, foreignTok := globex.issue(t, &latchkeyv1.IssueRequest{})

	gw := func(extra map[string]string) map[string]string {
		h := map[string]string{server.GatewayKeyHeader: gateway}
		for k, v := range extra {
			h[k] = v
		}
		return h
	}
	bearer := func(tok string) string { return "Bearer " + tok }
	tests := []struct {
		name    string
		method  string
		headers map[string]string
		status  int
		body    string // a part of the body, when it matters
	}{
		{"a valid key passes, with any method", http.MethodGet, gw(map[string]string{"Authorization": bearer(callerTok)}), 200, ""},
		{"x-api-key works too", http.MethodPost, gw(map[string]string{"X-Api-Key": callerTok}), 200, ""},
		{"the workspace and permissions the gateway asks for", http.MethodGet, gw(map[string]string{"Authorization": bearer(callerTok),
			server.WorkspaceHeader: wsID, server.PermissionsHeader: "invoices:read"}), 200, ""},
		{"no key is 401", http.MethodGet, gw(nil), 401, "missing credential"},
		{"a malformed key is 401", http.MethodGet, gw(map[string]string{"Authorization": bearer("lk_live_nope")}), 401, "malformed"},
		{"a very long key is the caller's 401, not the gateway's 400", http.MethodGet, gw(map[string]string{"Authorization": bearer(strings.Repeat("x", 2000))}), 401, "malformed"},
		{"a revoked key is 401", http.MethodGet, gw(map[string]string{"Authorization": bearer(revokedTok)}), 401, "revoked"},
		{"another account's key is 401 to a tenant's gateway", http.MethodGet, gw(map[string]string{"Authorization": bearer(foreignTok)}), 401, "not_found"},
		{"a missing permission is 403", http.MethodGet, gw(map[string]string{"Authorization": bearer(callerTok), server.PermissionsHeader: "invoices:read,invoices:write"}), 403, "permission_denied"},
		{"a workspace not granted is 403", http.MethodGet, gw(map[string]string{"Authorization": bearer(walledTok), server.WorkspaceHeader: wsID,
			"X-Forwarded-For": "10.1.2.3"}), 403, "workspace_denied"},
		{"an address outside the key's CIDRs is 403", http.MethodGet, gw(map[string]string{"Authorization": bearer(walledTok), "X-Forwarded-For": "192.0.2.1"}), 403, "ip_not_allowed"},
		{"the address is the gateway's last entry, not the client's first", http.MethodGet, gw(map[string]string{"Authorization": bearer(walledTok),
			"X-Forwarded-For": "10.1.2.3, 192.0.2.1"}), 403, "ip_not_allowed"},
		{"an address inside the CIDRs passes", http.MethodGet, gw(map[string]string{"Authorization": bearer(walledTok), "X-Forwarded-For": "192.0.2.1, 10.1.2.3"}), 200, ""},
		{"no address fails a key with CIDRs", http.MethodGet, gw(map[string]string{"Authorization": bearer(walledTok)}), 403, "ip_not_allowed"},
		{"a bad workspace header is the gateway's 400", http.MethodGet, gw(map[string]string{"Authorization": bearer(callerTok), server.WorkspaceHeader: "billing"}), 400, server.WorkspaceHeader},
		{"a bad permissions header is the gateway's 400", http.MethodGet, gw(map[string]string{"Authorization": bearer(callerTok), server.PermissionsHeader: "Admin"}), 400, server.PermissionsHeader},
		{"no gateway key is 500", http.MethodGet, map[string]string{"Authorization": bearer(callerTok)}, 500, server.GatewayKeyHeader},
		{"a gateway key without api_keys:verify is 500", http.MethodGet, map[string]string{server.GatewayKeyHeader: notGateway, "Authorization": bearer(callerTok)}, 500, "api_keys:verify"},
		{"a caller's key is no gateway key", http.MethodGet, map[string]string{server.GatewayKeyHeader: callerTok, "Authorization": bearer(callerTok)}, 500, "refused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, body := forwardAuth(t, e, tt.method, tt.headers)
			if res.StatusCode != tt.status || !strings.Contains(body, tt.body) {
				t.Fatalf("HTTP %d %q, want %d with %q", res.StatusCode, body, tt.status, tt.body)
			}
			if tt.status == 200 {
				if res.Header.Get(server.AccountIDHeader) != acme.account.GetMetadata().GetId() || !strings.HasPrefix(res.Header.Get(server.KeyIDHeader), "key_") ||
					!strings.HasPrefix(res.Header.Get(server.ProfileIDHeader), "prof_") {
					t.Errorf("identity headers %v", res.Header)
				}
			} else if res.Header.Get(server.KeyIDHeader) != "" {
				t.Errorf("a refusal carries identity headers: %v", res.Header)
			}
			if tt.status == 401 && res.Header.Get("WWW-Authenticate") == "" {
				t.Error("a 401 without WWW-Authenticate")
			}
			for _, secret := range []string{callerTok, gateway, walledTok} {
				if strings.Contains(body, secret) || strings.Contains(strings.Join(flatten(res.Header), " "), secret) {
					t.Errorf("the answer carries a token")
				}
			}
		})
	}
	t.Run("the key id is the caller's", func(t *testing.T) {
		res, _ := forwardAuth(t, e, http.MethodGet, gw(map[string]string{"Authorization": bearer(callerTok)}))
		if got := res.Header.Get(server.KeyIDHeader); got != caller.GetMetadata().GetId() {
			t.Fatalf("%s = %q, want %q", server.KeyIDHeader, got, caller.GetMetadata().GetId())
		}
	})
	t.Run("an expired key is 401", func(t *testing.T) {
		e.clock.Advance(2 * time.Minute)
		res, body := forwardAuth(t, e, http.MethodGet, gw(map[string]string{"Authorization": bearer(expiringTok)}))
		if res.StatusCode != 401 || !strings.Contains(body, "expired") {
			t.Fatalf("HTTP %d %q", res.StatusCode, body)
		}
	})
	t.Run("the operator's gateway sees every account", func(t *testing.T) {
		res, body := forwardAuth(t, e, http.MethodGet, map[string]string{server.GatewayKeyHeader: e.operator, "Authorization": bearer(foreignTok)})
		if res.StatusCode != 200 {
			t.Fatalf("HTTP %d %q", res.StatusCode, body)
		}
	})
}

func flatten(h http.Header) []string {
	var out []string
	for k, vs := range h {
		out = append(out, k+": "+strings.Join(vs, ","))
	}
	return out
}
