// Package server is Latchkey's transport: it serves every service over
// Connect, gRPC and gRPC-Web, with gRPC reflection and gRPC health beside
// them, mounted on a mux that the binary composes (Mount), and the HTTP
// middleware the binary wraps around it (CORS). A call passes the interceptors
// (observe → authenticate → validate) and then a handler, which calls the
// store.
package server

import (
	"buf.build/go/protovalidate"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"connectrpc.com/connect/v2"
	"connectrpc.com/connect/v2/connecthttp"
	"connectrpc.com/grpchealth"
	"connectrpc.com/grpcreflect"
	"connectrpc.com/validate"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/auth"
	"github.com/latchkey/latchkey/gen/latchkey/v1/latchkeyv1connect"
	"github.com/latchkey/latchkey/internal/pepper"
	"github.com/latchkey/latchkey/token"
)

// Defaults of Config.
const (
	DefaultTokenPrefix     = "lk"
	DefaultMaxActiveKeys   = 1000
	DefaultMaxRequestBytes = 1 << 20
)

// Config configures a Server.
type Config struct {
	Store  latchkey.Store
	Hasher *pepper.Hasher
	// TokenPrefix starts every token this server issues and accepts.
	TokenPrefix string
	// MaxActiveKeys is the per-account quota for accounts that set none.
	MaxActiveKeys int64
	// MaxRequestBytes bounds a request body, compressed or not.
	MaxRequestBytes int
	Logger          *slog.Logger
	// Now is the clock; tests replace it.
	Now func() time.Time
	// MeterProvider, when set, gets the server's instruments: RPC
	// durations by procedure, protocol and code (otelconnect's histogram,
	// recorded by otelconnect when there is a TracerProvider and by the
	// server itself otherwise: rpcTelemetry says why) and the
	// verifier's (outcomes, cache).
	MeterProvider metric.MeterProvider
	// TracerProvider, when set, gets a span for every RPC (otelconnect),
	// continuing the caller's W3C trace context.
	TracerProvider trace.TracerProvider
	// Identities, when set, verifies the JWTs of people signing in with
	// an OpenID Provider (auth/oidc); without it a JWT is refused, saying
	// that sign-in is not configured.
	Identities auth.IdentityVerifier
	// WatchHeartbeat is how often a change stream with nothing to send
	// sends a heartbeat, and asks again whether its caller may go on;
	// DefaultWatchHeartbeat when zero.
	WatchHeartbeat time.Duration
}

// Server holds the handlers of every service.
type Server struct {
	store         latchkey.Store
	tokens        *minter
	verifier      *auth.Verifier
	people        *auth.People // nil without Config.Identities
	changes       latchkey.ChangeFeed
	authz         *auth.Authorizer
	maxActiveKeys int64
	maxBytes      int
	logger        *slog.Logger
	now           func() time.Time
	health        *grpchealth.StaticChecker
	profiles      *profileCache
	validator     *warmValidator
	bell          *changeBell
	watchers      watchers
	meters        metric.MeterProvider
	tracer        trace.TracerProvider
	serving       servingState
	// watchHeartbeat is Config.WatchHeartbeat.
	watchHeartbeat time.Duration
}

// New returns a Server for cfg.
func New(cfg Config) (*Server, error) {
	if cfg.Store == nil || cfg.Hasher == nil {
		return nil, errors.New("server: Store and Hasher are required")
	}
	if cfg.TokenPrefix == "" {
		cfg.TokenPrefix = DefaultTokenPrefix
	}
	if err := token.ValidPrefix(cfg.TokenPrefix); err != nil {
		return nil, err
	}
	if cfg.MaxActiveKeys <= 0 {
		cfg.MaxActiveKeys = DefaultMaxActiveKeys
	}
	if cfg.MaxRequestBytes <= 0 {
		cfg.MaxRequestBytes = DefaultMaxRequestBytes
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.WatchHeartbeat <= 0 {
		cfg.WatchHeartbeat = DefaultWatchHeartbeat
	}
	// The caches follow the store's change log, the one source of
	// invalidations: writes through any handler (or none) reach them
	// before they return, and other replicas' within the store's bound.
	// While the store cannot promise that bound, the verifier's cache is
	// bypassed.
	var changes latchkey.ChangeFeed
	var meter metric.Meter
	if cfg.MeterProvider != nil {
		meter = cfg.MeterProvider.Meter("github.com/latchkey/latchkey/auth")
	}
	verifier := auth.NewVerifier(cfg.Store, cfg.Hasher, cfg.TokenPrefix, auth.VerifierOptions{
		Now: cfg.Now, Logger: cfg.Logger, Meter: meter,
		Fresh: func(now time.Time) bool { return changes.Fresh(now) },
	})
	profiles := newProfileCache(cfg.Store)
	sinks := changeSinks{verifier, profiles}
	var people *auth.People
	if cfg.Identities != nil {
		people = auth.NewPeople(cfg.Identities, cfg.Store, cfg.Now, func(now time.Time) bool { return changes.Fresh(now) })
		sinks = append(sinks, people)
	}
	// The bell comes last: a stream it wakes finds the caches already
	// rid of what the change made wrong.
	bell := newChangeBell()
	changes, err := cfg.Store.Follow(append(sinks, bell))
	if err != nil {
		verifier.Close(context.Background())
		return nil, fmt.Errorf("server: follow the store's changes: %w", err)
	}
	return &Server{
		store:         cfg.Store,
		tokens:        &minter{prefix: cfg.TokenPrefix, hasher: cfg.Hasher},
		verifier:      verifier,
		people:        people,
		changes:       changes,
		authz:         auth.NewAuthorizer(cfg.Store),
		maxActiveKeys: cfg.MaxActiveKeys,
		maxBytes:      cfg.MaxRequestBytes,
		logger:        cfg.Logger,
		now:           cfg.Now,
		health:        grpchealth.NewStaticChecker(serviceNames...),
		profiles:      profiles,
		validator:     newWarmValidator(protovalidate.GlobalValidator),
		bell:          bell,
		meters:        cfg.MeterProvider,
		tracer:        cfg.TracerProvider,

		watchHeartbeat: cfg.WatchHeartbeat,
	}, nil
}

// serviceNames lists every service, for reflection and health.
var serviceNames = []string{
	latchkeyv1connect.ApiKeyServiceName,
	latchkeyv1connect.AuthServiceName,
	latchkeyv1connect.WorkspaceServiceName,
	latchkeyv1connect.ProfileServiceName,
	latchkeyv1connect.AccountServiceName,
	latchkeyv1connect.AuditServiceName,
}

// Close stops following the store's changes and writes what the server
// still holds in memory (last-used times). Call it after the HTTP server
// has stopped. Calling it again does nothing more.
func (s *Server) Close(ctx context.Context) error {
	s.changes.Close()
	return s.verifier.Close(ctx)
}

// Mount registers every service, gRPC reflection and gRPC health on mux,
// each at its own path prefix, so that the binary can mount other routes
// (a console, metrics) beside them and wrap the whole in its middleware
// (CORS, a body limit). Connect itself refuses a message larger than
// Config.MaxRequestBytes.
func (s *Server) Mount(mux *http.ServeMux) {
	interceptors := []connect.ServerInterceptor{s.observe, s.authenticate, validate.NewServerInterceptor(validate.WithValidator(s.validator))}
	if rpcTelemetry, err := s.rpcTelemetry(); err != nil {
		s.logger.Error("RPC metrics and traces are off", "err", err)
	} else if rpcTelemetry != nil {
		interceptors = append([]connect.ServerInterceptor{rpcTelemetry}, interceptors...)
	}
	rpc := connect.NewServer(interceptors...)
	latchkeyv1connect.RegisterApiKeyServiceHandler(rpc, apiKeyHandler{s})
	latchkeyv1connect.RegisterAuthServiceHandler(rpc, authHandler{s})
	latchkeyv1connect.RegisterWorkspaceServiceHandler(rpc, workspaceHandler{s})
	latchkeyv1connect.RegisterProfileServiceHandler(rpc, profileHandler{s})
	latchkeyv1connect.RegisterAccountServiceHandler(rpc, accountHandler{s})
	latchkeyv1connect.RegisterAuditServiceHandler(rpc, auditHandler{s})

	connecthttp.Mount(mux, rpc, connecthttp.WithReadMaxBytes(s.maxBytes),
		// Small answers, Verify's above all, cost more to gzip than to send.
		connecthttp.WithCompressMinBytes(4096))
	reflector := grpcreflect.NewStaticReflector(serviceNames...)
	mux.Handle(grpcreflect.NewHandlerV1(reflector))
	mux.Handle(grpcreflect.NewHandlerV1Alpha(reflector))
	mux.Handle(grpchealth.NewHandler(s.health))
}

// Handler returns a handler that serves what Mount registers, and nothing
// else, with no middleware.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	s.Mount(mux)
	return mux
}
