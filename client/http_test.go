package client_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect/v2"
	"connectrpc.com/connect/v2/connecthttp"

	"github.com/latchkey/latchkey/client"
	latchkeyv1 "github.com/latchkey/latchkey/gen/latchkey/v1"
	"github.com/latchkey/latchkey/gen/latchkey/v1/latchkeyv1connect"
)

// whoHandler answers with the key the middleware admitted.
var whoHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	res, ok := client.KeyFrom(r.Context())
	if !ok {
		http.Error(w, "no key in the context", http.StatusInternalServerError)
		return
	}
	io.WriteString(w, res.KeyID)
})

func get(t *testing.T, url string, headers map[string]string) (int, string, http.Header) {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(body), res.Header
}

func TestMiddleware(t *testing.T) {
	var link cuttable
	c := newClient(t, client.Options{HTTPClient: link.client(), Timeout: 500 * time.Millisecond})
	mux := http.NewServeMux()
	mux.Handle("/invoices/", c.Middleware(client.Route{Permissions: []string{"invoices:read"}})(whoHandler))
	mux.Handle("/admin/", c.Middleware(client.Route{Permissions: []string{"invoices:manage"}})(whoHandler))
	srv := httptest.NewServer(mux)
	defer srv.Close()
	readerID, reader := mustIssue(t, "invoices:read")
	revokedID, revoked := mustIssue(t, "invoices:read")
	revoke(t, revokedID)
	_, walled, err := issueWith(&latchkeyv1.ApiKeySpec{Permissions: []string{"invoices:read"}, AllowedCidrs: []string{"10.0.0.0/8"}})
	if err != nil {
		t.Fatal(err)
	}

	for _, tt := range []struct {
		name    string
		path    string
		headers map[string]string
		status  int
		code    string
	}{
		{"a key the route admits passes", "/invoices/1", map[string]string{"Authorization": "Bearer " + reader}, 200, ""},
		{"x-api-key works too", "/invoices/1", map[string]string{"X-Api-Key": reader}, 200, ""},
		{"no key is 401", "/invoices/1", nil, 401, "unauthenticated"},
		{"a malformed key is 401", "/invoices/1", map[string]string{"Authorization": "Bearer nope"}, 401, "unauthenticated"},
		{"an unknown key is 401", "/invoices/1", map[string]string{"Authorization": "Bearer " + madeUp()}, 401, "unauthenticated"},
		{"a revoked key is 401", "/invoices/1", map[string]string{"Authorization": "Bearer " + revoked}, 401, "unauthenticated"},
		{"a route needing more is 403", "/admin/1", map[string]string{"Authorization": "Bearer " + reader}, 403, "permission_denied"},
		{"an address outside the key's CIDRs is 403", "/invoices/1", map[string]string{"Authorization": "Bearer " + walled}, 403, "permission_denied"},
		{"X-Forwarded-For is ignored without trusted proxies", "/invoices/1", map[string]string{"Authorization": "Bearer " + walled, "X-Forwarded-For": "10.1.2.3"}, 403, "permission_denied"},
		{"the api_key query parameter is off by default", "/invoices/1?api_key=" + reader, nil, 401, "unauthenticated"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			status, body, header := get(t, srv.URL+tt.path, tt.headers)
			if status != tt.status {
				t.Fatalf("HTTP %d %s, want %d", status, body, tt.status)
			}
			if tt.status == 200 {
				if body != readerID {
					t.Fatalf("the handler saw key %q, want %q", body, readerID)
				}
				return
			}
			var wire struct{ Code, Message string }
			if err := json.Unmarshal([]byte(body), &wire); err != nil || wire.Code != tt.code {
				t.Fatalf("body %q, want code %q", body, tt.code)
			}
			if tt.status == 401 && header.Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
		})
	}
	t.Run("trusted proxies' X-Forwarded-For gives the address", func(t *testing.T) {
		trusting := newClient(t, client.Options{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}})
		s := httptest.NewServer(trusting.Middleware(client.Route{})(whoHandler))
		defer s.Close()
		if status, body, _ := get(t, s.URL, map[string]string{"Authorization": "Bearer " + walled, "X-Forwarded-For": "10.1.2.3"}); status != 200 {
			t.Fatalf("HTTP %d %s", status, body)
		}
		// The entry a client wrote before the proxy's is not believed.
		if status, _, _ := get(t, s.URL, map[string]string{"Authorization": "Bearer " + walled, "X-Forwarded-For": "10.1.2.3, 192.0.2.1"}); status != 403 {
			t.Fatalf("HTTP %d, want 403 for the address the proxy saw", status)
		}
	})
	t.Run("the query parameter works when turned on", func(t *testing.T) {
		withQuery := newClient(t, client.Options{QueryParameter: true})
		s := httptest.NewServer(withQuery.Middleware(client.Route{})(whoHandler))
		defer s.Close()
		if status, body, _ := get(t, s.URL+"/?api_key="+reader, nil); status != 200 || body != readerID {
			t.Fatalf("HTTP %d %s", status, body)
		}
	})
	t.Run("Latchkey out of reach is 503", func(t *testing.T) {
		link.setCut(true)
		defer link.setCut(false)
		_, fresh := mustIssue(t, "invoices:read")
		deadline := time.Now().Add(5 * time.Second)
		for {
			status, body, _ := get(t, srv.URL+"/invoices/1", map[string]string{"Authorization": "Bearer " + fresh})
			if status == 503 && strings.Contains(body, `"unavailable"`) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("HTTP %d %s with Latchkey cut off, want 503", status, body)
			}
			time.Sleep(5 * time.Millisecond)
		}
	})
}

func TestInterceptor(t *testing.T) {
	c := newClient(t, client.Options{})
	// A service protected by the interceptor: here, Latchkey's own WhoAmI
	// served by the test, answering with the admitted key's profile.
	rpc := connect.NewServer(c.Interceptor(client.Routes{
		latchkeyv1connect.AuthServiceWhoAmIProcedure: {Permissions: []string{"invoices:read"}},
	}))
	latchkeyv1connect.RegisterAuthServiceHandler(rpc, whoAmI{})
	mux := http.NewServeMux()
	connecthttp.Mount(mux, rpc)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	_, reader := mustIssue(t, "invoices:read")
	_, other := mustIssue(t, "billing:read")
	call := func(key string) (*latchkeyv1.WhoAmIResponse, error) {
		cl := latchkeyv1connect.NewAuthServiceClient(connect.NewClient(connecthttp.NewTransport(http.DefaultClient, srv.URL), withBearer(key)))
		return cl.WhoAmI(t.Context(), &latchkeyv1.WhoAmIRequest{})
	}
	if res, err := call(reader); err != nil || !strings.HasPrefix(res.GetProfile().GetMetadata().GetId(), "prof_") {
		t.Fatalf("WhoAmI with a key the route admits: %v, %v", res, err)
	}
	if _, err := call(other); connect.CodeOf(err) != connect.CodePermissionDenied {
		t.Fatalf("a key without the permission: %v", err)
	}
	if _, err := call(""); connect.CodeOf(err) != connect.CodeUnauthenticated {
		t.Fatalf("no key: %v", err)
	}
	// Verify is not in the routes and there is no default: refused.
	cl := latchkeyv1connect.NewAuthServiceClient(connect.NewClient(connecthttp.NewTransport(http.DefaultClient, srv.URL), withBearer(reader)))
	if _, err := cl.Verify(t.Context(), &latchkeyv1.VerifyRequest{Token: reader}); connect.CodeOf(err) != connect.CodePermissionDenied {
		t.Fatalf("a procedure with no route: %v", err)
	}
}

type whoAmI struct {
	latchkeyv1connect.UnimplementedAuthServiceHandler
}

func (whoAmI) WhoAmI(ctx context.Context, _ *latchkeyv1.WhoAmIRequest) (*latchkeyv1.WhoAmIResponse, error) {
	res, _ := client.KeyFrom(ctx)
	return &latchkeyv1.WhoAmIResponse{Profile: &latchkeyv1.Profile{Metadata: &latchkeyv1.AccountResourceMetadata{Id: res.ProfileID}}}, nil
}

func withBearer(key string) connect.ClientInterceptor {
	return func(next connect.ClientFunc) connect.ClientFunc {
		return func(ctx context.Context, spec connect.Spec) (connect.ClientStream, error) {
			if info, ok := connect.CallInfoForClientContext(ctx); ok && key != "" {
				info.RequestHeader().Set("Authorization", "Bearer "+key)
			}
			return next(ctx, spec)
		}
	}
}
