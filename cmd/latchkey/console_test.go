package main

import (
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
)

func fetch(t *testing.T, method, url string, header ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return res, string(body)
}

// TestConsoleMounted: by default `latchkey serve` serves the console at /
// and at its client-side routes, with its security headers, while the
// API's routes (Connect, /healthz, /forward-auth) keep answering as the
// API; with --console=false, / is 404 and the API is unchanged.
func TestConsoleMounted(t *testing.T) {
	dir := t.TempDir()
	on := startServe(t, "--db", filepath.Join(dir, "on.db"))
	defer on.stop()
	base := "http://" + on.addr

	for _, p := range []string{"/", "/keys", "/keys/key_01JABCDEFGHJKMNPQRSTVWXYZ0"} {
		res, body := fetch(t, http.MethodGet, base+p)
		if res.StatusCode != http.StatusOK || !strings.Contains(body, `<div id="root">`) {
			t.Fatalf("GET %s = %d, not the console:\n%.200s", p, res.StatusCode, body)
		}
		csp := res.Header.Get("Content-Security-Policy")
		if !strings.Contains(csp, "script-src 'self'") || !strings.Contains(csp, "frame-ancestors 'none'") || strings.Contains(csp, "unsafe-inline") {
			t.Errorf("GET %s: Content-Security-Policy = %q", p, csp)
		}
		if res.Header.Get("Referrer-Policy") != "no-referrer" || res.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("GET %s: Referrer-Policy %q, X-Content-Type-Options %q", p, res.Header.Get("Referrer-Policy"), res.Header.Get("X-Content-Type-Options"))
		}
		if res.Header.Get("Cache-Control") != "no-cache" {
			t.Errorf("GET %s: Cache-Control = %q", p, res.Header.Get("Cache-Control"))
		}
	}
	checkAPIWins(t, base)

	off := startServe(t, "--db", filepath.Join(dir, "off.db"), "--console=false")
	defer off.stop()
	res, body := fetch(t, http.MethodGet, "http://"+off.addr+"/")
	if res.StatusCode != http.StatusNotFound || strings.Contains(body, `<div id="root">`) {
		t.Errorf("--console=false: GET / = %d, want 404:\n%.200s", res.StatusCode, body)
	}
	if res.Header.Get("Content-Security-Policy") != "" {
		t.Errorf("--console=false: GET / still has the console's policy")
	}
	checkAPIWins(t, "http://"+off.addr)
}

// checkAPIWins fails if the console's catch-all took a route of the API.
func checkAPIWins(t *testing.T, base string) {
	t.Helper()
	res, body := fetch(t, http.MethodPost, base+"/latchkey.v1.AuthService/WhoAmI", "Content-Type", "application/json")
	if res.StatusCode != http.StatusUnauthorized || !strings.Contains(body, `"unauthenticated"`) {
		t.Errorf("WhoAmI without a key = %d %s, want the API's unauthenticated", res.StatusCode, body)
	}
	res, body = fetch(t, http.MethodGet, base+"/healthz")
	if res.StatusCode != http.StatusOK || strings.Contains(body, "<html") || res.Header.Get("Content-Security-Policy") != "" {
		t.Errorf("/healthz = %d %.100s, want the API's health", res.StatusCode, body)
	}
	res, body = fetch(t, http.MethodGet, base+"/forward-auth")
	// With no gateway key, forward auth says the gateway is misconfigured.
	if !strings.Contains(body, "forward-auth") || strings.Contains(body, "<html") {
		t.Errorf("/forward-auth without keys = %d %.100s, want forward auth's own answer", res.StatusCode, body)
	}
}
