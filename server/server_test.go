package server_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"buf.build/gen/go/bufbuild/protovalidate/protocolbuffers/go/buf/validate"
	"connectrpc.com/connect/v2"
	"connectrpc.com/connect/v2/connecthttp"
	"connectrpc.com/connect/v2/connectproto"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/auth"
	latchkeyv1 "github.com/latchkey/latchkey/gen/latchkey/v1"
	"github.com/latchkey/latchkey/gen/latchkey/v1/latchkeyv1connect"
	"github.com/latchkey/latchkey/internal/pepper"
	"github.com/latchkey/latchkey/server"
	"github.com/latchkey/latchkey/store/sqlite"
)

// clock is a settable clock shared by the server and the store, so tests
// can let keys expire without waiting.
type clock struct{ offset atomic.Int64 }

func (c *clock) Now() time.Time          { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *clock) Advance(d time.Duration) { c.offset.Add(int64(d)) }

// env is one running server over HTTP/2 with its operator token.
type env struct {
	t        *testing.T
	url      string
	http     *http.Client
	clock    *clock
	operator string
	logs     *syncBuffer
	dbPath   string
}

// syncBuffer collects log output from concurrent handlers.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// newServer opens a fresh store and returns a server on it, made from cfg
// with its Store and Hasher filled in, and the operator's token; all of it
// is closed when the test ends. newEnv builds the whole fixture on top of
// the same parts; this is for tests that need a Config of their own.
func newServer(t testing.TB, cfg server.Config) (*server.Server, string) {
	t.Helper()
	store, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "latchkey.db"), sqlite.Options{CursorKey: []byte("cursor key of the server tests, 32+ bytes")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	cfg.Store = store
	if cfg.Hasher, err = pepper.NewHasher([]byte("pepper of the server tests, at least 32 bytes"), 1); err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close(context.Background()) })
	operator, err := srv.Bootstrap(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return srv, operator
}

func newEnv(t *testing.T) *env {
	t.Helper()
	return newEnvOn(t, nil)
}

// newEnvOn is newEnv with the server's store wrapped by wrap (nil: as it
// is), for tests that must step between a handler and its store.
func newEnvOn(t *testing.T, wrap func(latchkey.Store) latchkey.Store) *env {
	t.Helper()
	return newEnvWith(t, wrap, nil)
}

// newEnvWith is newEnvOn with configure run on the server's Config before
// the server is made (nil: as it is).
func newEnvWith(t *testing.T, wrap func(latchkey.Store) latchkey.Store, configure func(*server.Config)) *env {
	t.Helper()
	clk := &clock{}
	dbPath := filepath.Join(t.TempDir(), "latchkey.db")
	store, err := sqlite.Open(t.Context(), dbPath, sqlite.Options{
		CursorKey: []byte("cursor key of the server tests, 32+ bytes"),
		Now:       clk.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	hasher, err := pepper.NewHasher([]byte("pepper of the server tests, at least 32 bytes"), 1)
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	var served latchkey.Store = store
	if wrap != nil {
		served = wrap(store)
	}
	cfg := server.Config{
		Store:         served,
		Hasher:        hasher,
		MaxActiveKeys: 20,
		Logger:        slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Now:           clk.Now,
		// Short, so that the change stream tests see heartbeats.
		WatchHeartbeat: 200 * time.Millisecond,
	}
	if configure != nil {
		configure(&cfg)
	}
	srv, err := server.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	operator, err := srv.Bootstrap(t.Context())
	if err != nil || operator == "" {
		t.Fatalf("Bootstrap = %q, %v", operator, err)
	}
	again, err := srv.Bootstrap(t.Context())
	if err != nil || again != "" {
		t.Fatalf("second Bootstrap = %q, %v; want no token", again, err)
	}
	t.Cleanup(func() { srv.Close(context.Background()) })
	srv.SetServing(true)
	// The services and forward authentication, as the binary mounts them.
	mux := http.NewServeMux()
	srv.Mount(mux)
	mux.Handle(auth.ForwardAuthRoute, srv.ForwardAuth())
	ts := httptest.NewUnstartedServer(mux)
	ts.EnableHTTP2 = true
	ts.StartTLS()
	t.Cleanup(ts.Close)
	return &env{t: t, url: ts.URL, http: ts.Client(), clock: clk, operator: operator, logs: logs, dbPath: dbPath}
}

// withHeader sets one request header on every call.
func withHeader(name, value string) connect.ClientInterceptor {
	return func(next connect.ClientFunc) connect.ClientFunc {
		return func(ctx context.Context, spec connect.Spec) (connect.ClientStream, error) {
			if info, ok := connect.CallInfoForClientContext(ctx); ok && value != "" {
				info.RequestHeader().Set(name, value)
			}
			return next(ctx, spec)
		}
	}
}

// clients are the six service clients of one caller.
type clients struct {
	keys       latchkeyv1connect.ApiKeyServiceClient
	auth       latchkeyv1connect.AuthServiceClient
	workspaces latchkeyv1connect.WorkspaceServiceClient
	profiles   latchkeyv1connect.ProfileServiceClient
	accounts   latchkeyv1connect.AccountServiceClient
	audit      latchkeyv1connect.AuditServiceClient
}

// as returns clients that present tok as a bearer token ("" sends none).
func (e *env) as(tok string, opts ...connecthttp.Option) clients {
	return e.withInterceptor(withHeader("Authorization", "Bearer "+tok), opts...)
}

func (e *env) withInterceptor(ic connect.ClientInterceptor, opts ...connecthttp.Option) clients {
	c := connect.NewClient(connecthttp.NewTransport(e.http, e.url, opts...), ic)
	return clients{
		keys:       latchkeyv1connect.NewApiKeyServiceClient(c),
		auth:       latchkeyv1connect.NewAuthServiceClient(c),
		workspaces: latchkeyv1connect.NewWorkspaceServiceClient(c),
		profiles:   latchkeyv1connect.NewProfileServiceClient(c),
		accounts:   latchkeyv1connect.NewAccountServiceClient(c),
		audit:      latchkeyv1connect.NewAuditServiceClient(c),
	}
}

// tenant is an account made by the operator, with its system key.
type tenant struct {
	account *latchkeyv1.Account
	system  string
	c       clients
}

func (e *env) newTenant(name string) tenant {
	e.t.Helper()
	return e.newTenantWithLimit(name, 0)
}

// newTenantWithLimit makes a tenant allowed maxActiveKeys keys (0 for the
// server default).
func (e *env) newTenantWithLimit(name string, maxActiveKeys int64) tenant {
	e.t.Helper()
	res, err := e.as(e.operator).accounts.CreateAccount(e.t.Context(), &latchkeyv1.CreateAccountRequest{Name: name, MaxActiveKeys: maxActiveKeys})
	if err != nil {
		e.t.Fatalf("CreateAccount: %v", err)
	}
	tok := res.GetSystemApiKey().GetSpec().GetToken()
	return tenant{account: res.GetAccount(), system: tok, c: e.as(tok)}
}

// issue makes a key in the tenant's account and returns it with its token.
func (tn tenant) issue(t *testing.T, req *latchkeyv1.IssueRequest) (*latchkeyv1.ApiKey, string) {
	t.Helper()
	if req.Metadata == nil {
		req.Metadata = &latchkeyv1.AccountResourceMetadata{Name: "test key"}
	}
	res, err := tn.c.keys.Issue(t.Context(), req)
	if err != nil {
		t.Fatalf("Issue: %v", err)
	}
	return res.GetApiKey(), res.GetApiKey().GetSpec().GetToken()
}

func (tn tenant) workspace(t *testing.T, name string) *latchkeyv1.Workspace {
	t.Helper()
	res, err := tn.c.workspaces.CreateWorkspace(t.Context(), &latchkeyv1.CreateWorkspaceRequest{
		Metadata: &latchkeyv1.AccountResourceMetadata{Name: name},
	})
	if err != nil {
		t.Fatalf("CreateWorkspace: %v", err)
	}
	return res.GetWorkspace()
}

// auditCount counts the tenant's audit events, to show a failed call wrote
// nothing.
func (tn tenant) auditCount(t *testing.T) int {
	t.Helper()
	n, tok := 0, ""
	for {
		res, err := tn.c.audit.ListAuditEvents(t.Context(), &latchkeyv1.ListAuditEventsRequest{PageSize: 500, PageToken: tok})
		if err != nil {
			t.Fatalf("ListAuditEvents: %v", err)
		}
		n += len(res.GetAuditEvents())
		if tok = res.GetNextPageToken(); tok == "" {
			return n
		}
	}
}

// wantCode fails unless err carries code.
func wantCode(t *testing.T, err error, code connect.Code) {
	t.Helper()
	if got := connect.CodeOf(err); err == nil || got != code {
		t.Fatalf("error = %v (code %v), want code %v", err, got, code)
	}
}

// wantViolation fails unless err is invalid_argument with a violation on field.
func wantViolation(t *testing.T, err error, field string) {
	t.Helper()
	fields := violationFields(t, err)
	if !slices.Contains(fields, field) {
		t.Fatalf("violations on %v, want one on %q (error %v)", fields, field, err)
	}
}

// violations returns the buf.validate violations an error carries.
func violations(err error) []*validate.Violation {
	var ce *connect.Error
	if !errors.As(err, &ce) {
		return nil
	}
	var out []*validate.Violation
	for _, d := range ce.Details() {
		msg, err := connectproto.UnmarshalErrorDetail(d)
		if v, ok := msg.(*validate.Violations); ok && err == nil {
			out = append(out, v.GetViolations()...)
		}
	}
	return out
}
