package console_test

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/latchkey/latchkey/console"
)

func newHandler(t *testing.T, opts console.Options) http.Handler {
	t.Helper()
	h, err := console.Handler(opts)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func get(h http.Handler, target string, header ...string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodGet, target, nil)
	for i := 0; i+1 < len(header); i += 2 {
		r.Header.Set(header[i], header[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// checkSecurityHeaders fails unless a response carries the headers every
// console response must: a policy with no inline script and no framing,
// no referrer, no sniffing.
func checkSecurityHeaders(t *testing.T, what string, w *httptest.ResponseRecorder) {
	t.Helper()
	csp := w.Header().Get("Content-Security-Policy")
	for _, want := range []string{"script-src 'self'", "style-src 'self'", "frame-ancestors 'none'", "base-uri 'none'", "form-action 'self'", "connect-src 'self'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("%s: Content-Security-Policy %q lacks %q", what, csp, want)
		}
	}
	if strings.Contains(csp, "unsafe-") || strings.Contains(csp, "data:") || strings.Contains(csp, "*") {
		t.Errorf("%s: Content-Security-Policy %q allows inline, eval, data: or any origin", what, csp)
	}
	if got := w.Header().Get("Referrer-Policy"); got != "no-referrer" {
		t.Errorf("%s: Referrer-Policy = %q", what, got)
	}
	if got := w.Header().Get("X-Content-Type-Options"); got != "nosniff" {
		t.Errorf("%s: X-Content-Type-Options = %q", what, got)
	}
}

var scriptTag = regexp.MustCompile(`(?s)<script\b([^>]*)>(.*?)</script>`)

// assetOf returns the path of the entry script that index.html loads.
func assetOf(t *testing.T, index string) string {
	t.Helper()
	m := regexp.MustCompile(`src="(/assets/[^"]+\.js)"`).FindStringSubmatch(index)
	if m == nil {
		t.Fatalf("index.html loads no script under /assets/:\n%s", index)
	}
	return m[1]
}

func TestIndexAndFallback(t *testing.T) {
	h := newHandler(t, console.Options{})
	index := get(h, "/")
	if index.Code != http.StatusOK || !strings.HasPrefix(index.Header().Get("Content-Type"), "text/html") {
		t.Fatalf("GET / = %d %q", index.Code, index.Header().Get("Content-Type"))
	}
	checkSecurityHeaders(t, "GET /", index)
	if got := index.Header().Get("Cache-Control"); got != "no-cache" {
		t.Errorf("index Cache-Control = %q, want no-cache", got)
	}
	body := index.Body.String()
	if !strings.Contains(body, `<div id="root">`) {
		t.Fatalf("GET / is not the console's index.html:\n%s", body)
	}
	// No inline script: every <script> has a src and no body, which is what
	// lets the policy say script-src 'self' without 'unsafe-inline'.
	for _, m := range scriptTag.FindAllStringSubmatch(body, -1) {
		if !strings.Contains(m[1], "src=") || strings.TrimSpace(m[2]) != "" {
			t.Errorf("index.html has an inline script: %s", m[0])
		}
	}
	if strings.Contains(body, " style=") {
		t.Error("index.html has an inline style attribute, which style-src 'self' refuses")
	}

	// Client-side routes: paths without an extension get the same page.
	for _, route := range []string{"/keys", "/keys/key_01JABCDEFGHJKMNPQRSTVWXYZ0", "/workspaces/", "/index.html"} {
		w := get(h, route)
		if w.Code != http.StatusOK || w.Body.String() != body {
			t.Errorf("GET %s = %d, want index.html", route, w.Code)
		}
		if got := w.Header().Get("Cache-Control"); got != "no-cache" {
			t.Errorf("GET %s: Cache-Control = %q, want no-cache", route, got)
		}
		checkSecurityHeaders(t, "GET "+route, w)
	}
}

func TestAssetsImmutable(t *testing.T) {
	h := newHandler(t, console.Options{})
	asset := assetOf(t, get(h, "/").Body.String())
	if !regexp.MustCompile(`-[A-Za-z0-9_-]{8}\.js$`).MatchString(asset) {
		t.Errorf("entry script %s has no content hash in its name", asset)
	}
	w := get(h, asset)
	if w.Code != http.StatusOK {
		t.Fatalf("GET %s = %d", asset, w.Code)
	}
	if got := w.Header().Get("Cache-Control"); got != "public, max-age=31536000, immutable" {
		t.Errorf("asset Cache-Control = %q", got)
	}
	if got := w.Header().Get("Content-Type"); !strings.HasPrefix(got, "text/javascript") {
		t.Errorf("asset Content-Type = %q", got)
	}
	checkSecurityHeaders(t, "GET "+asset, w)

	// Gzip for those who take it, the same bytes once decompressed.
	z := get(h, asset, "Accept-Encoding", "gzip, br")
	if z.Header().Get("Content-Encoding") != "gzip" || !strings.Contains(z.Header().Get("Vary"), "Accept-Encoding") {
		t.Fatalf("gzip: Content-Encoding %q, Vary %q", z.Header().Get("Content-Encoding"), z.Header().Get("Vary"))
	}
	zr, err := gzip.NewReader(z.Body)
	if err != nil {
		t.Fatal(err)
	}
	plain, _ := io.ReadAll(zr)
	if !bytes.Equal(plain, w.Body.Bytes()) {
		t.Error("the gzipped asset is not the asset")
	}
	if z.Header().Get("ETag") == w.Header().Get("ETag") {
		t.Error("the gzipped and plain representations share an ETag")
	}
	if get(h, asset, "Accept-Encoding", "gzip;q=0").Header().Get("Content-Encoding") != "" {
		t.Error("gzip;q=0 still got gzip")
	}

	// A revalidation of the index answers 304.
	etag := get(h, "/").Header().Get("ETag")
	if nm := get(h, "/", "If-None-Match", etag); nm.Code != http.StatusNotModified {
		t.Errorf("If-None-Match on index = %d, want 304", nm.Code)
	}
}

func TestNotFound(t *testing.T) {
	h := newHandler(t, console.Options{})
	// Only the app's own sections fall back to index.html: a path the API
	// port does not serve stays 404.
	for _, p := range []string{"/assets/missing-12345678.js", "/favicon.ico", "/assets/", "/assets/keys",
		"/metrics", "/debug/pprof/", "/latchkey.v1.NoService/Method", "/keysmith", "/keys/logo.png"} {
		w := get(h, p)
		if w.Code != http.StatusNotFound {
			t.Errorf("GET %s = %d, want 404", p, w.Code)
		}
		checkSecurityHeaders(t, "GET "+p, w)
	}
	r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader("x"))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST / = %d, want 405", w.Code)
	}
	checkSecurityHeaders(t, "POST /", w)
}

// TestNoEscape asks for files outside the build (the Go files beside it,
// the module's go.mod) with every spelling of "..", plain and encoded, both
// straight to the handler and through a real HTTP server, which passes
// the escaped path on unchanged.
func TestNoEscape(t *testing.T) {
	h := newHandler(t, console.Options{})
	srv := httptest.NewServer(h)
	defer srv.Close()
	index := get(h, "/").Body.String()
	for _, p := range []string{
		"/../embed.go", "/../../go.mod", "/assets/../../embed.go",
		"/%2e%2e/embed.go", "/%2E%2E/%2E%2E/go.mod", "/assets/..%2f..%2fembed.go",
		"/..%5cembed.go", "/assets/%2e%2e%5c%2e%2e%5cgo.mod", "/%2e%2e%2f%2e%2e%2fconsole%2fconsole.go",
		"//../go.mod", "/./../dist/../embed.go", "/dist/index.html", "/..",
	} {
		direct := get(h, p)
		res, err := http.Get(srv.URL + p)
		if err != nil {
			t.Fatalf("GET %s: %v", p, err)
		}
		served, _ := io.ReadAll(res.Body)
		res.Body.Close()
		for via, body := range map[string]string{"handler": direct.Body.String(), "server": string(served)} {
			if strings.Contains(body, "package ") || strings.Contains(body, "module github.com") {
				t.Errorf("GET %s (%s) served a file outside dist", p, via)
			}
			if body != index && !strings.Contains(body, "not found") {
				t.Errorf("GET %s (%s) served something other than index.html or 404: %.80q", p, via, body)
			}
		}
		checkSecurityHeaders(t, "GET "+p, direct)
	}
}

func TestConfigAndPolicy(t *testing.T) {
	h := newHandler(t, console.Options{OIDCIssuer: "https://login.example.com/realms/x", OIDCClientID: "latchkey-console"})
	w := get(h, console.ConfigPath)
	var cfg struct{ OIDCIssuer, OIDCClientID string }
	if err := json.Unmarshal(w.Body.Bytes(), &cfg); err != nil || w.Code != http.StatusOK {
		t.Fatalf("config: %d %v %s", w.Code, err, w.Body)
	}
	if cfg.OIDCIssuer != "https://login.example.com/realms/x" || cfg.OIDCClientID != "latchkey-console" {
		t.Errorf("config = %+v", cfg)
	}
	checkSecurityHeaders(t, "config", w)
	if csp := w.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "connect-src 'self' https://login.example.com;") {
		t.Errorf("with an issuer, connect-src does not name its origin: %q", csp)
	}
	// Without sign-in configured, the page is told so, and may call only
	// its own origin.
	plain := newHandler(t, console.Options{})
	w = get(plain, console.ConfigPath)
	if strings.TrimSpace(w.Body.String()) != "{}" {
		t.Errorf("config without OIDC = %s, want {}", w.Body)
	}
	if csp := w.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "connect-src 'self';") {
		t.Errorf("without an issuer, connect-src is not 'self' alone: %q", csp)
	}
}
