// Package console serves the Latchkey console, the web frontend built from
// web/console, from files embedded in the binary, with the security
// headers a page that holds credentials needs.
//
// Routes: a file of the build is served under its own name (the hashed
// assets as immutable); a path without a file extension is a route of the
// single-page app under one of its sections (Routes) and gets index.html (never cached, so a new build is
// picked up at once); /console/config.json tells the page how people sign
// in. Every other path is 404. Every response, errors included, carries
// the Content-Security-Policy (no inline script, no framing), no-referrer
// and nosniff.
package console

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io/fs"
	"mime"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	webconsole "github.com/latchkey/latchkey/web/console"
)

// ConfigPath is where the page reads its sign-in configuration.
const ConfigPath = "/console/config.json"

// Options configure the console.
type Options struct {
	// OIDCIssuer is the OpenID Provider people sign in with (the server's
	// --oidc-issuer), or empty for sign-in with an API key only. Its origin
	// is added to the policy's connect-src, for discovery and the token
	// endpoint.
	OIDCIssuer string
	// OIDCClientID is the console's client id at the provider, which is the
	// audience the server requires (--oidc-audience).
	OIDCClientID string
}

// file is one file of the build, read once at start.
type file struct {
	body, gzipped []byte
	etag          string
	ctype         string
	cache         string
}

type handler struct {
	files  map[string]*file
	index  *file
	config *file
	csp    string
}

// Handler returns the console's handler, to be mounted at / behind the
// API's own routes. It fails only if the embedded build has no index.html.
func Handler(opts Options) (http.Handler, error) {
	dist, err := fs.Sub(webconsole.Dist, "dist")
	if err != nil {
		return nil, err
	}
	h := &handler{files: map[string]*file{}, csp: Policy(opts.OIDCIssuer)}
	err = fs.WalkDir(dist, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := fs.ReadFile(dist, name)
		if err != nil {
			return err
		}
		cache := "no-cache"
		if strings.HasPrefix(name, "assets/") {
			// Vite names every asset after a hash of its content.
			cache = "public, max-age=31536000, immutable"
		}
		h.files[name] = newFile(body, mimeType(name), cache)
		return nil
	})
	if err != nil {
		return nil, err
	}
	h.index = h.files["index.html"]
	if h.index == nil {
		return nil, fmt.Errorf("console: the embedded build has no index.html (run npm run build in web/console)")
	}
	cfg, err := json.Marshal(struct {
		OIDCIssuer   string `json:"oidcIssuer,omitempty"`
		OIDCClientID string `json:"oidcClientId,omitempty"`
	}{opts.OIDCIssuer, opts.OIDCClientID})
	if err != nil {
		return nil, err
	}
	h.config = newFile(cfg, "application/json", "no-cache")
	return h, nil
}

func newFile(body []byte, ctype, cache string) *file {
	sum := sha256.Sum256(body)
	f := &file{body: body, ctype: ctype, cache: cache, etag: `"` + base64.RawURLEncoding.EncodeToString(sum[:18]) + `"`}
	if compressible(ctype) && len(body) > 512 {
		var b bytes.Buffer
		w, _ := gzip.NewWriterLevel(&b, gzip.BestCompression)
		w.Write(body)
		w.Close()
		if b.Len() < len(body) {
			f.gzipped = b.Bytes()
		}
	}
	return f
}

func compressible(ctype string) bool {
	return strings.HasPrefix(ctype, "text/") || strings.Contains(ctype, "javascript") ||
		strings.Contains(ctype, "json") || strings.Contains(ctype, "svg")
}

func mimeType(name string) string {
	switch path.Ext(name) {
	case ".js":
		return "text/javascript; charset=utf-8"
	case ".css":
		return "text/css; charset=utf-8"
	case ".html":
		return "text/html; charset=utf-8"
	case ".svg":
		return "image/svg+xml"
	}
	if t := mime.TypeByExtension(path.Ext(name)); t != "" {
		return t
	}
	return "application/octet-stream"
}

// Policy is the Content-Security-Policy of every console response: scripts,
// styles, images and fonts from the console's own origin only, no inline
// script or style, calls to the same origin (the API) and to the OpenID
// Provider's origin if there is one, no framing, no <base>, forms posting
// only to the console.
func Policy(oidcIssuer string) string {
	connect := "'self'"
	if u, err := url.Parse(oidcIssuer); err == nil && oidcIssuer != "" && u.Scheme != "" && u.Host != "" {
		connect += " " + u.Scheme + "://" + u.Host
	}
	return "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; font-src 'self'; " +
		"connect-src " + connect + "; manifest-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'"
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("Content-Security-Policy", h.csp)
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("Cross-Origin-Opener-Policy", "same-origin")
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		hd.Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	f := h.lookup(r.URL.Path)
	if f == nil {
		hd.Set("Cache-Control", "no-cache")
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	hd.Set("Content-Type", f.ctype)
	hd.Set("Cache-Control", f.cache)
	hd.Set("ETag", f.etag)
	body := f.body
	if f.gzipped != nil {
		hd.Add("Vary", "Accept-Encoding")
		if acceptsGzip(r) {
			hd.Set("Content-Encoding", "gzip")
			hd.Set("ETag", strings.TrimSuffix(f.etag, `"`)+`-gzip"`)
			body = f.gzipped
		}
	}
	// ServeContent answers If-None-Match with 304 and HEAD without a body.
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(body))
}

// lookup finds what a path serves. The path is cleaned as rooted, so no
// ".." (decoded from %2e%2e or not) can climb out of the build, and only
// names the build holds are ever served.
func (h *handler) lookup(p string) *file {
	if p == ConfigPath {
		return h.config
	}
	name := strings.TrimPrefix(path.Clean("/"+p), "/")
	if name == "" {
		return h.index
	}
	if strings.ContainsRune(name, '\\') || !fs.ValidPath(name) {
		return nil
	}
	if f, ok := h.files[name]; ok {
		return f
	}
	// A route of the app: one of its sections, then anything without a
	// file extension.
	section, _, _ := strings.Cut(name, "/")
	if path.Ext(name) == "" && slices.Contains(Routes, section) {
		return h.index
	}
	return nil
}

// Routes are the first path segments of the app's own pages (its router,
// web/console/src/App.tsx, names the same), which get index.html. Any
// other path is 404, so that a path the API port does not serve, such as
// /metrics or a mistyped RPC, never answers 200 with a page.
var Routes = []string{"keys", "workspaces", "people", "audit", "accounts"}

// acceptsGzip reads Accept-Encoding: gzip with any q above zero.
func acceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		coding, params, _ := strings.Cut(part, ";")
		if !strings.EqualFold(strings.TrimSpace(coding), "gzip") {
			continue
		}
		q, ok := strings.CutPrefix(strings.TrimSpace(params), "q=")
		if !ok {
			return true
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(q), 64)
		return err == nil && v > 0
	}
	return false
}
