// Package oidctest runs a real OpenID Provider for tests: the example
// provider of github.com/zitadel/oidc/v3 (a certified OP library), built
// from the module proxy and run as its own process on loopback. Tokens come
// from it as a browser gets them: the authorization-code flow with PKCE,
// through the provider's HTML login form, with a cookie jar, up to the
// redirect back to the client, whose code is then exchanged.
//
// The provider is the example's router, login form, OP configuration and
// in-memory storage, with a main of our own in opserver/ (a module of its
// own, so that zitadel stays out of Latchkey's go.mod). That main listens on
// 127.0.0.1 only, puts the email and profile claims in the ID token (the
// example's clients leave them out of the code flow's ID tokens), lets a
// test replace the users and rotate the signing key. See opserver/main.go.
//
// The binary is built once per machine and source (cached under the user's
// cache directory, keyed by a hash of opserver/), so a test pays the build
// the first time only; a Start then takes 0.1 to 0.5 s (two RSA keys are
// made) and a Login a few milliseconds.
package oidctest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latchkey/latchkey/internal/testenv"
)

// User is a person the provider knows. Its JSON is that of the example's
// storage.User.
type User struct {
	// ID is the subject, the sub claim.
	ID       string `json:"ID"`
	Username string `json:"Username"`
	Password string `json:"Password"`
	// FirstName and LastName make the given_name, family_name and name
	// claims.
	FirstName string `json:"FirstName"`
	LastName  string `json:"LastName"`
	Email     string `json:"Email"`
	// EmailVerified false leaves the email_verified claim out of the
	// tokens altogether (zitadel's omitempty), rather than false.
	EmailVerified bool `json:"EmailVerified"`
	// IsAdmin lets the user impersonate others in the example's token
	// exchange; nothing else reads it.
	IsAdmin bool `json:"IsAdmin"`
}

// The users a Provider has unless WithUsers says otherwise: two people with
// verified emails and one whose email is not verified.
var (
	Alice = User{ID: "sub-alice", Username: "alice", Password: "alice-password",
		FirstName: "Alice", LastName: "Example", Email: "alice@example.com", EmailVerified: true}
	Bob = User{ID: "sub-bob", Username: "bob", Password: "bob-password",
		FirstName: "Bob", LastName: "Example", Email: "bob@example.com", EmailVerified: true}
	Mallory = User{ID: "sub-mallory", Username: "mallory", Password: "mallory-password",
		FirstName: "Mallory", LastName: "Example", Email: "mallory@example.com", EmailVerified: false}
)

// DefaultUsers are Alice, Bob and Mallory.
func DefaultUsers() []User { return []User{Alice, Bob, Mallory} }

const (
	// ClientID is the example's public client ("native": no secret, PKCE
	// required), the one Login uses: the ID tokens' audience.
	ClientID = "native"
	// WebClientID and WebClientSecret are the example's confidential
	// client, which authenticates to the token endpoint with HTTP Basic;
	// its ID tokens have this audience, for a wrong-audience test.
	WebClientID     = "web"
	WebClientSecret = "secret"
	// RedirectURI is the redirect URI the clients have by default. Login
	// never follows it: it reads the code and state from the Location
	// header, so nothing needs to listen there.
	RedirectURI = "http://127.0.0.1/callback"
)

// ErrLoginRefused is what TryLogin's error wraps when the login form
// answered with itself and an error instead of a redirect: a wrong username
// or password.
var ErrLoginRefused = errors.New("oidctest: the login form refused the username or password")

// Provider is a running OpenID Provider.
type Provider struct {
	// Issuer is the issuer URL exactly as discovery and the tokens have it,
	// with its trailing slash: "http://127.0.0.1:PORT/".
	Issuer string
	// ClientID is the audience of the ID tokens Login returns.
	ClientID string

	discovery struct {
		Authorization string `json:"authorization_endpoint"`
		Token         string `json:"token_endpoint"`
		UserInfo      string `json:"userinfo_endpoint"`
		JWKS          string `json:"jwks_uri"`
	}
	redirectURI string

	mu    sync.Mutex // the command pipe and users
	users []User
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   *bufio.Reader
	done  chan struct{} // closed when the process has exited
	log   string        // file with its stderr
}

// Option changes how Start sets the provider up.
type Option func(*config)

type config struct {
	users        []User
	redirectURIs []string
}

// WithUsers sets the provider's users instead of DefaultUsers.
func WithUsers(users ...User) Option {
	return func(c *config) { c.users = slices.Clone(users) }
}

// WithRedirectURIs sets the redirect URIs of the example's clients instead
// of RedirectURI; Login uses the first. A loopback one may be called with
// any port by the public client (RFC 8252).
func WithRedirectURIs(uris ...string) Option {
	return func(c *config) { c.redirectURIs = slices.Clone(uris) }
}

// Start builds the provider if it has not been built, starts it on a free
// port of 127.0.0.1 and stops it when t ends. When the provider cannot be
// built (no module proxy and nothing cached) it skips t, or fails t in CI.
func Start(t testing.TB, opts ...Option) *Provider {
	t.Helper()
	cfg := config{users: DefaultUsers(), redirectURIs: []string{RedirectURI}}
	for _, o := range opts {
		o(&cfg)
	}
	bin, err := Binary()
	if err != nil {
		testenv.Skip(t, "the OpenID Provider cannot be built: "+err.Error())
	}
	dir := t.TempDir()
	users, err := json.Marshal(cfg.users)
	if err != nil {
		t.Fatal(err)
	}
	usersFile := filepath.Join(dir, "users.json")
	if err := os.WriteFile(usersFile, users, 0o600); err != nil {
		t.Fatal(err)
	}
	p := &Provider{
		ClientID:    ClientID,
		redirectURI: cfg.redirectURIs[0],
		users:       cfg.users,
		done:        make(chan struct{}),
		log:         filepath.Join(dir, "opserver.log"),
	}
	logFile, err := os.Create(p.log)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	p.cmd = exec.Command(bin, "-addr", "127.0.0.1:0", "-users", usersFile,
		"-redirect-uris", strings.Join(cfg.redirectURIs, ","))
	p.cmd.Stderr = logFile
	if p.stdin, err = p.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p.out = bufio.NewReader(stdout)
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.Close()
		if t.Failed() {
			p.dumpLog(t)
		}
	})

	var hello struct {
		Issuer string `json:"issuer"`
	}
	if err := p.readLine(30*time.Second, &hello); err != nil {
		t.Fatalf("oidctest: the provider did not start: %v\n%s", err, p.logTail())
	}
	p.Issuer = hello.Issuer
	if err := p.getJSON(t.Context(), p.Issuer+".well-known/openid-configuration", &p.discovery); err != nil {
		t.Fatalf("oidctest: discovery: %v", err)
	}
	return p
}

// Close stops the provider: its issuer then refuses connections, as an
// identity provider that is down. Start's cleanup calls it too.
func (p *Provider) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stdin.Close() // it exits when its standard input closes
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
	}
}

// Users returns the users the provider has now.
func (p *Provider) Users() []User {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.users)
}

// SetUser adds u, or replaces the user with u's ID: a new email, a new
// email_verified, a new password. Tokens issued after it returns carry the
// new claims; tokens issued before keep theirs.
func (p *Provider) SetUser(t testing.TB, u User) {
	t.Helper()
	p.mu.Lock()
	users := slices.Clone(p.users)
	i := slices.IndexFunc(users, func(v User) bool { return v.ID == u.ID })
	if i < 0 {
		users = append(users, u)
	} else {
		users[i] = u
	}
	p.mu.Unlock()
	if _, err := p.command(map[string]any{"op": "users", "users": users}); err != nil {
		t.Fatalf("oidctest: SetUser: %v", err)
	}
	p.mu.Lock()
	p.users = users
	p.mu.Unlock()
}

// Rotate makes a new signing key, which signs the tokens issued from now on,
// and returns its key id. The JWKS publishes it at once and keeps the
// previous keys, so tokens already issued still verify, until RetireKeys.
func (p *Provider) Rotate(t testing.TB) (kid string) {
	t.Helper()
	r, err := p.command(map[string]any{"op": "rotate"})
	if err != nil {
		t.Fatalf("oidctest: Rotate: %v", err)
	}
	return r.Kid
}

// RetireKeys drops every key but the one that signs from the JWKS: tokens
// signed with an older key no longer verify against the provider's keys.
func (p *Provider) RetireKeys(t testing.TB) {
	t.Helper()
	if _, err := p.command(map[string]any{"op": "retire"}); err != nil {
		t.Fatalf("oidctest: RetireKeys: %v", err)
	}
}

// JWKS is the provider's JSON Web Key Set as its jwks_uri serves it.
type JWKS struct {
	Keys []JWK `json:"keys"`
}

// JWK is one of its keys: RSA, for RS256 signatures.
type JWK struct {
	Kid string `json:"kid"`
	Kty string `json:"kty"`
	Alg string `json:"alg"`
	Use string `json:"use"`
	N   string `json:"n"`
	E   string `json:"e"`
}

// JWKS fetches the key set from the provider's jwks_uri.
func (p *Provider) JWKS(t testing.TB) JWKS {
	t.Helper()
	var set JWKS
	if err := p.getJSON(t.Context(), p.discovery.JWKS, &set); err != nil {
		t.Fatalf("oidctest: JWKS: %v", err)
	}
	return set
}

// UserInfo calls the provider's userinfo endpoint with an access token and
// returns its claims.
func (p *Provider) UserInfo(t testing.TB, accessToken string) map[string]any {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, p.discovery.UserInfo, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+accessToken)
	var claims map[string]any
	if err := doJSON(http.DefaultClient, req, &claims); err != nil {
		t.Fatalf("oidctest: userinfo: %v", err)
	}
	return claims
}

// Tokens are what the token endpoint answered to a login.
type Tokens struct {
	// IDToken is the signed JWT (RS256) a person's browser would hand to
	// Latchkey as a bearer token.
	IDToken string
	// AccessToken is opaque (the example encrypts it); it serves the
	// userinfo endpoint.
	AccessToken string
	// Claims are the ID token's payload, not verified here beyond its
	// nonce: iss, sub, aud, exp, iat, nonce, email, email_verified, name...
	Claims map[string]any
	// KeyID is the kid of the ID token's header.
	KeyID string
}

// Login signs username in with the public client (ClientID) and returns
// the tokens, failing t if anything goes wrong, a refused password too.
func (p *Provider) Login(t testing.TB, username, password string) Tokens {
	t.Helper()
	tok, err := p.TryLogin(t.Context(), LoginRequest{Username: username, Password: password})
	if err != nil {
		t.Fatalf("oidctest: login as %q: %v", username, err)
	}
	return tok
}

// LoginRequest says who signs in, and with which client.
type LoginRequest struct {
	Username, Password string
	// ClientID is ClientID unless set; with WebClientID, ClientSecret
	// authenticates it to the token endpoint.
	ClientID, ClientSecret string
	// Scope is "openid email profile" unless set.
	Scope string
}

// TryLogin runs the authorization-code flow with PKCE as a browser would:
// the authorization request (response_type=code, state, nonce,
// code_challenge S256), the redirects to the login form, the form posted
// with the username and password, the redirect to the redirect URI (not
// followed: its code and state are read from the Location header, and the
// state checked), then the code exchanged with the code_verifier. A refused
// password is an error that wraps ErrLoginRefused.
func (p *Provider) TryLogin(ctx context.Context, r LoginRequest) (Tokens, error) {
	if r.ClientID == "" {
		r.ClientID = p.ClientID
	}
	if r.Scope == "" {
		r.Scope = "openid email profile"
	}
	state, nonce, verifier := random(), random(), random()+random()
	challenge := sha256.Sum256([]byte(verifier))

	jar, err := cookiejar.New(nil)
	if err != nil {
		return Tokens{}, err
	}
	var callback *url.URL
	browser := &http.Client{
		Jar:     jar,
		Timeout: 30 * time.Second,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if strings.HasPrefix(req.URL.String(), p.redirectURI) {
				callback = req.URL
				return http.ErrUseLastResponse
			}
			if len(via) > 10 {
				return errors.New("more than 10 redirects")
			}
			return nil
		},
	}

	authz := p.discovery.Authorization + "?" + url.Values{
		"client_id":             {r.ClientID},
		"response_type":         {"code"},
		"scope":                 {r.Scope},
		"redirect_uri":          {p.redirectURI},
		"state":                 {state},
		"nonce":                 {nonce},
		"code_challenge":        {base64.RawURLEncoding.EncodeToString(challenge[:])},
		"code_challenge_method": {"S256"},
	}.Encode()
	page, pageURL, err := get(ctx, browser, authz)
	if err != nil {
		return Tokens{}, fmt.Errorf("authorization request: %w", err)
	}
	if callback != nil {
		return Tokens{}, fmt.Errorf("authorization request: redirected to the client without a login: %s", callback.Redacted())
	}
	form, err := parseForm(page)
	if err != nil {
		return Tokens{}, fmt.Errorf("login page %s: %w", pageURL, err)
	}
	action, err := pageURL.Parse(form.action)
	if err != nil {
		return Tokens{}, err
	}
	if !slices.Contains(form.names, "username") || !slices.Contains(form.names, "password") {
		return Tokens{}, fmt.Errorf("login page %s: the form has no username and password fields: %v", pageURL, form.names)
	}
	form.values.Set("username", r.Username)
	form.values.Set("password", r.Password)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, action.String(), strings.NewReader(form.values.Encode()))
	if err != nil {
		return Tokens{}, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", pageURL.Scheme+"://"+pageURL.Host)
	req.Header.Set("Referer", pageURL.String())
	resp, err := browser.Do(req)
	if err != nil {
		return Tokens{}, fmt.Errorf("login form: %w", err)
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	if callback == nil {
		if resp.StatusCode == http.StatusOK {
			if again, err := parseForm(body); err == nil && again.action == form.action {
				return Tokens{}, fmt.Errorf("%w: %q", ErrLoginRefused, again.text)
			}
		}
		return Tokens{}, fmt.Errorf("login form: no redirect to the client but %s: %.500s", resp.Status, body)
	}

	q := callback.Query()
	if e := q.Get("error"); e != "" {
		return Tokens{}, fmt.Errorf("the provider redirected with error %q: %s", e, q.Get("error_description"))
	}
	if got := q.Get("state"); got != state {
		return Tokens{}, fmt.Errorf("the redirect's state is %q, not the request's %q", got, state)
	}
	code := q.Get("code")
	if code == "" {
		return Tokens{}, fmt.Errorf("the redirect has no code: %s", callback.Redacted())
	}

	exchange := url.Values{
		"grant_type":    {"authorization_code"},
		"code":          {code},
		"redirect_uri":  {p.redirectURI},
		"code_verifier": {verifier},
	}
	if r.ClientSecret == "" {
		exchange.Set("client_id", r.ClientID)
	}
	req, err = http.NewRequestWithContext(ctx, http.MethodPost, p.discovery.Token, strings.NewReader(exchange.Encode()))
	if err != nil {
		return Tokens{}, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if r.ClientSecret != "" {
		req.SetBasicAuth(url.QueryEscape(r.ClientID), url.QueryEscape(r.ClientSecret))
	}
	var answer struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
		IDToken     string `json:"id_token"`
	}
	if err := doJSON(&http.Client{Timeout: 30 * time.Second}, req, &answer); err != nil {
		return Tokens{}, fmt.Errorf("token endpoint: %w", err)
	}
	if answer.IDToken == "" || !strings.EqualFold(answer.TokenType, "bearer") {
		return Tokens{}, fmt.Errorf("token endpoint: no ID token or not a bearer token type (%q)", answer.TokenType)
	}
	tok := Tokens{IDToken: answer.IDToken, AccessToken: answer.AccessToken}
	header, claims, err := decodeJWT(answer.IDToken)
	if err != nil {
		return Tokens{}, fmt.Errorf("the ID token: %w", err)
	}
	tok.Claims = claims
	tok.KeyID, _ = header["kid"].(string)
	if claims["nonce"] != nonce {
		return Tokens{}, fmt.Errorf("the ID token's nonce is %v, not the request's %q", claims["nonce"], nonce)
	}
	return tok, nil
}

// decodeJWT returns a compact JWS's header and payload, unverified.
func decodeJWT(token string) (header, claims map[string]any, err error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return nil, nil, fmt.Errorf("%d parts, not a compact JWS", len(parts))
	}
	for i, v := range []*map[string]any{&header, &claims} {
		raw, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil {
			return nil, nil, err
		}
		if err := json.Unmarshal(raw, v); err != nil {
			return nil, nil, err
		}
	}
	return header, claims, nil
}

type htmlForm struct {
	action string
	names  []string // of its inputs
	values url.Values
	text   string // the text of its paragraphs: an error message
}

// parseForm finds the first form of an HTML page, its action and inputs.
// encoding/xml reads the example's simple page well enough in its lenient
// mode, which spares the main module an HTML parser.
func parseForm(page []byte) (htmlForm, error) {
	d := xml.NewDecoder(bytes.NewReader(page))
	d.Strict = false
	d.AutoClose = xml.HTMLAutoClose
	d.Entity = xml.HTMLEntity
	var f htmlForm
	f.values = url.Values{}
	found, inForm, inP := false, false, false
	var text []string
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return f, fmt.Errorf("reading the page: %w", err)
		}
		switch el := tok.(type) {
		case xml.StartElement:
			attr := func(name string) string {
				for _, a := range el.Attr {
					if strings.EqualFold(a.Name.Local, name) {
						return a.Value
					}
				}
				return ""
			}
			switch strings.ToLower(el.Name.Local) {
			case "form":
				if !found {
					found, inForm = true, true
					f.action = attr("action")
				}
			case "p":
				inP = inForm
			case "input":
				if inForm && attr("name") != "" {
					f.names = append(f.names, attr("name"))
					f.values.Set(attr("name"), attr("value"))
				}
			}
		case xml.EndElement:
			switch strings.ToLower(el.Name.Local) {
			case "form":
				inForm = false
			case "p":
				inP = false
			}
		case xml.CharData:
			if s := strings.TrimSpace(string(el)); s != "" && inP {
				text = append(text, s)
			}
		}
	}
	if !found {
		return f, errors.New("no form on the page")
	}
	f.text = strings.Join(text, " ")
	return f, nil
}

// get fetches url with the browser, following redirects, and returns the
// page and the URL it came from.
func get(ctx context.Context, browser *http.Client, u string) ([]byte, *url.URL, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Accept", "text/html")
	resp, err := browser.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, nil, err
	}
	if resp.StatusCode != http.StatusOK && resp.StatusCode/100 != 3 {
		return nil, nil, fmt.Errorf("%s from %s: %.500s", resp.Status, resp.Request.URL, body)
	}
	return body, resp.Request.URL, nil
}

func (p *Provider) getJSON(ctx context.Context, u string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	return doJSON(&http.Client{Timeout: 10 * time.Second}, req, v)
}

func doJSON(c *http.Client, req *http.Request, v any) error {
	req.Header.Set("Accept", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %.500s", resp.Status, body)
	}
	return json.Unmarshal(body, v)
}

// command sends one command to the provider and reads its answer.
func (p *Provider) command(cmd any) (reply struct {
	OK    bool     `json:"ok"`
	Error string   `json:"error"`
	Kid   string   `json:"kid"`
	Kids  []string `json:"kids"`
}, err error) {
	line, err := json.Marshal(cmd)
	if err != nil {
		return reply, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, err := p.stdin.Write(append(line, '\n')); err != nil {
		return reply, fmt.Errorf("the provider is not running: %w", err)
	}
	if err := p.readLine(10*time.Second, &reply); err != nil {
		return reply, err
	}
	if !reply.OK {
		return reply, fmt.Errorf("the provider refused %s: %s", line, reply.Error)
	}
	return reply, nil
}

// readLine reads one JSON line from the provider's standard output.
func (p *Provider) readLine(timeout time.Duration, v any) error {
	type result struct {
		line []byte
		err  error
	}
	ch := make(chan result, 1)
	go func() {
		line, err := p.out.ReadBytes('\n')
		ch <- result{line, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			return fmt.Errorf("reading from the provider: %w", r.err)
		}
		return json.Unmarshal(r.line, v)
	case <-time.After(timeout):
		return fmt.Errorf("no answer from the provider in %v", timeout)
	}
}

func (p *Provider) logTail() string {
	data, _ := os.ReadFile(p.log)
	if len(data) > 8<<10 {
		data = data[len(data)-8<<10:]
	}
	return string(data)
}

func (p *Provider) dumpLog(t testing.TB) {
	t.Helper()
	t.Logf("oidctest: the provider's log (%s), its end:\n%s", p.log, p.logTail())
}

func random() string {
	b := make([]byte, 24)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

var built struct {
	once sync.Once
	path string
	err  error
}

// Binary returns the path of the provider's binary, building it the first
// time: from opserver/ beside this file, with the go command on PATH, into
// the user's cache directory under a name that a hash of opserver/'s files,
// the platform and the Go version make, so that a change of source or
// version builds anew. Modules come from the module cache or the proxy.
func Binary() (string, error) {
	built.once.Do(func() { built.path, built.err = build() })
	return built.path, built.err
}

func build() (string, error) {
	_, file, _, ok := runtime.Caller(0)
	if !ok || !filepath.IsAbs(file) {
		return "", fmt.Errorf("cannot find the source of oidctest (built with -trimpath?): %q", file)
	}
	src := filepath.Join(filepath.Dir(file), "opserver")
	h := sha256.New()
	fmt.Fprintln(h, runtime.GOOS, runtime.GOARCH, runtime.Version())
	for _, name := range []string{"go.mod", "go.sum", "main.go"} {
		data, err := os.ReadFile(filepath.Join(src, name))
		if err != nil {
			return "", err
		}
		fmt.Fprintln(h, name, len(data))
		h.Write(data)
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	dir := filepath.Join(cache, "latchkey-oidctest", hex.EncodeToString(h.Sum(nil))[:20])
	bin := filepath.Join(dir, "opserver")
	if fi, err := os.Stat(bin); err == nil && fi.Mode().IsRegular() {
		return bin, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	goCmd, err := exec.LookPath("go")
	if err != nil {
		goCmd = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	// Into a name of its own, then renamed: test binaries of other
	// packages may build at the same time.
	tmp := filepath.Join(dir, "opserver."+random()[:8])
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, goCmd, "build", "-o", tmp, ".")
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=readonly -buildvcs=false")
	if out, err := cmd.CombinedOutput(); err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("go build in %s: %v\n%s", src, err, out)
	}
	if err := os.Rename(tmp, bin); err != nil {
		os.Remove(tmp)
		return "", err
	}
	return bin, nil
}
