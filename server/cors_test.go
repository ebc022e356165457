package server_test

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/latchkey/latchkey/gen/latchkey/v1/latchkeyv1connect"
	"github.com/latchkey/latchkey/server"
)

const allowedOrigin = "http://app.example.test"

func newCORSServer(t *testing.T) *httptest.Server {
	srv, _ := newServer(t, server.Config{})
	ts := httptest.NewServer(server.CORS([]string{allowedOrigin})(srv.Handler()))
	t.Cleanup(ts.Close)
	return ts
}

// headerList splits a comma-separated header into lowercase names.
func headerList(h http.Header, name string) []string {
	var out []string
	for _, v := range h.Values(name) {
		for _, s := range strings.Split(v, ",") {
			out = append(out, strings.ToLower(strings.TrimSpace(s)))
		}
	}
	return out
}

func TestCORS(t *testing.T) {
	ts := newCORSServer(t)
	whoAmI := ts.URL + latchkeyv1connect.AuthServiceWhoAmIProcedure
	preflight := func(t *testing.T, origin, headers string) *http.Response {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodOptions, whoAmI, nil)
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", http.MethodPost)
		// As browsers send it: lowercase and sorted.
		req.Header.Set("Access-Control-Request-Headers", headers)
		res, err := ts.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res
	}
	call := func(t *testing.T, origin string) *http.Response {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, whoAmI, strings.NewReader("{}"))
		req.Header.Set("Origin", origin)
		req.Header.Set("Content-Type", "application/json")
		res, err := ts.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res
	}

	for name, headers := range map[string]string{
		"connect":  "authorization,connect-protocol-version,connect-timeout-ms,content-type,x-api-key",
		"grpc-web": "authorization,content-type,x-api-key,x-grpc-web,x-user-agent",
	} {
		t.Run("a listed origin may send the "+name+" headers", func(t *testing.T) {
			res := preflight(t, allowedOrigin, headers)
			if got := res.Header.Get("Access-Control-Allow-Origin"); got != allowedOrigin {
				t.Fatalf("Allow-Origin = %q (status %d)", got, res.StatusCode)
			}
			allowed := headerList(res.Header, "Access-Control-Allow-Headers")
			for _, h := range strings.Split(headers, ",") {
				if !slices.Contains(allowed, h) {
					t.Errorf("preflight does not allow %q: %v", h, allowed)
				}
			}
		})
	}
	t.Run("a listed origin reads the gRPC status headers", func(t *testing.T) {
		res := call(t, allowedOrigin)
		if res.StatusCode != http.StatusUnauthorized {
			t.Fatalf("status %d, want 401 (no credential)", res.StatusCode)
		}
		if got := res.Header.Get("Access-Control-Allow-Origin"); got != allowedOrigin {
			t.Fatalf("Allow-Origin = %q", got)
		}
		exposed := headerList(res.Header, "Access-Control-Expose-Headers")
		for _, h := range []string{"grpc-status", "grpc-message", "grpc-status-details-bin"} {
			if !slices.Contains(exposed, h) {
				t.Errorf("%q not exposed: %v", h, exposed)
			}
		}
	})
	t.Run("an origin not listed is granted nothing", func(t *testing.T) {
		for _, res := range []*http.Response{
			preflight(t, "http://evil.example.test", "authorization,content-type"),
			call(t, "http://evil.example.test"),
		} {
			for name := range res.Header {
				if strings.HasPrefix(strings.ToLower(name), "access-control-allow") {
					t.Errorf("%s: %s: %q", res.Request.Method, name, res.Header.Get(name))
				}
			}
		}
	})
}
