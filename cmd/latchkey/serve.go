package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"time"

	"go.opentelemetry.io/otel/metric"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/server"
	"github.com/latchkey/latchkey/store/observe"
	"github.com/latchkey/latchkey/store/postgres"
	"github.com/latchkey/latchkey/store/sqlite"
	"github.com/latchkey/latchkey/telemetry"
)

func serve(ctx context.Context, args []string, stderr io.Writer) error {
	cfg, err := parseConfig(args, os.Getenv, stderr)
	if err != nil {
		return err
	}
	logger := newLogger(cfg.logFormat, cfg.logLevel, stderr)

	hasher, cursorKey, err := loadHasher(ctx, cfg)
	if err != nil {
		return err
	}
	store, err := openStore(ctx, cfg, cursorKey, logger)
	if err != nil {
		return fmt.Errorf("open database %s: %w", cfg.dbName(), err)
	}
	defer store.Close()
	if hasher, err = checkPeppers(ctx, cfg, store, hasher, logger); err != nil {
		return err
	}

	// With --metrics-addr, the store is observed through a decorator and
	// the server gets a meter provider; metrics are served on a listener of
	// their own, never on the API port.
	var metrics *telemetry.Metrics
	if cfg.metricsAddr != "" {
		if metrics, err = telemetry.NewMetrics(buildVersion()); err != nil {
			return err
		}
		defer metrics.Shutdown(context.WithoutCancel(ctx))
		storeMeter := metrics.Provider.Meter("github.com/latchkey/latchkey/store")
		// Each backend has instruments of its own: the pool, and SQLite's
		// group commits.
		if instrumented, ok := store.(interface{ Instrument(metric.Meter) error }); ok {
			if err := instrumented.Instrument(storeMeter); err != nil {
				return err
			}
		}
		observed, err := observe.New(store, storeMeter)
		if err != nil {
			return err
		}
		store = observed
	}
	scfg := server.Config{
		Store:           store,
		Hasher:          hasher,
		TokenPrefix:     cfg.tokenPrefix,
		MaxActiveKeys:   cfg.maxActiveKeys,
		MaxRequestBytes: cfg.maxRequestBytes,
		Logger:          logger,
	}
	if metrics != nil {
		scfg.MeterProvider = metrics.Provider
	}
	// Traces go over OTLP when the standard variables name an endpoint.
	if telemetry.TracingConfigured(os.Getenv) {
		tracing, err := telemetry.NewTracing(ctx, buildVersion())
		if err != nil {
			return fmt.Errorf("tracing: %w", err)
		}
		defer tracing.Shutdown(context.WithoutCancel(ctx))
		scfg.TracerProvider = tracing.Provider
	}
	var signInMeter metric.Meter
	if metrics != nil {
		signInMeter = metrics.Provider.Meter("github.com/latchkey/latchkey/auth/oidc")
	}
	if scfg.Identities, err = newSignIns(ctx, cfg, signInMeter, logger); err != nil {
		return fmt.Errorf("--oidc-issuer: %w", err)
	}
	srv, err := server.New(scfg)
	if err != nil {
		return err
	}
	// On every way out the server stops following the store's changes
	// before the store closes; after the shutdown below's own Close it
	// does nothing.
	defer srv.Close(context.Background())
	// Health says NOT_SERVING while the database has not answered for
	// longer than the sync bound.
	monitorCtx, stopMonitor := context.WithCancel(context.WithoutCancel(ctx))
	monitorDone := make(chan struct{})
	go func() {
		defer close(monitorDone)
		srv.MonitorStore(monitorCtx, cfg.syncBound/4, cfg.syncBound)
	}()
	defer func() { stopMonitor(); <-monitorDone }()
	operatorToken, err := srv.Bootstrap(ctx)
	if err != nil {
		return fmt.Errorf("bootstrap: %w", err)
	}
	if operatorToken != "" {
		// The one line the contract promises, on the first start only. It is
		// written straight to stderr, never through the logger.
		fmt.Fprintf(stderr, "operator key (shown once): %s\n", operatorToken)
	}

	listener, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		return err
	}
	if metrics != nil {
		stopMetrics, err := serveMetrics(cfg.metricsAddr, metrics, cfg.pprof, logger)
		if err != nil {
			return err
		}
		defer stopMetrics()
	}
	protocols := new(http.Protocols)
	protocols.SetHTTP1(true)
	protocols.SetHTTP2(true)
	protocols.SetUnencryptedHTTP2(true)
	httpServer := &http.Server{
		Handler:   routes(cfg, srv),
		Protocols: protocols,
		// Both bound how long a slow client can hold a connection (or, over
		// HTTP/2, a stream) before it has sent its request.
		ReadHeaderTimeout: cfg.headerTimeout,
		ReadTimeout:       cfg.readTimeout,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	if cfg.acme() {
		acme, err := newACME(ctx, cfg, cursorKey, logger)
		if err != nil {
			listener.Close()
			return err
		}
		defer acme.close()
		httpServer.TLSConfig = acme.config
	}
	srv.SetServing(true)
	served := make(chan error, 1)
	go func() {
		switch {
		case cfg.acme():
			served <- httpServer.ServeTLS(listener, "", "") // certificates from TLSConfig
		case cfg.tlsCert != "":
			served <- httpServer.ServeTLS(listener, cfg.tlsCert, cfg.tlsKey)
		default:
			served <- httpServer.Serve(listener)
		}
	}()
	servingAttrs := []any{"addr", listener.Addr().String(), "db", cfg.dbName(), "tls", cfg.tlsCert != "" || cfg.acme(), "acme", cfg.acme()}
	if cfg.acme() {
		servingAttrs = append(servingAttrs, "acme_domains", cfg.acmeDomains)
	}
	logger.Info("serving", append(servingAttrs, "version", buildVersion())...)

	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	// Drain: health says NOT_SERVING at once and the server keeps answering
	// for the drain delay, so that load balancers see it and move traffic
	// away; then new connections are refused and calls in flight finish.
	logger.Info("shutting down", "drain_delay", cfg.drainDelay)
	srv.SetServing(false)
	if cfg.drainDelay > 0 {
		select {
		case <-time.After(cfg.drainDelay):
		case err := <-served:
			return err
		}
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), cfg.shutdownTimeout)
	defer cancel()
	if err := httpServer.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	// Calls are done: write the last-used times still in memory.
	if err := srv.Close(shutdownCtx); err != nil {
		logger.Warn("writing last-used times at shutdown failed", "err", err)
	}
	logger.Info("stopped")
	return nil
}

// serveMetrics serves /metrics on addr, on a listener of its own, until
// the returned function stops it; with profiles, Go's profiles at
// /debug/pprof/ too.
func serveMetrics(addr string, metrics *telemetry.Metrics, profiles bool, logger *slog.Logger) (stop func(), err error) {
	listener, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics listener: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", metrics.Handler)
	if profiles {
		mux.HandleFunc("GET /debug/pprof/", pprof.Index)
		mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(listener)
	logger.Info("serving metrics", "addr", listener.Addr().String(), "pprof", profiles)
	return func() { srv.Close() }, nil
}

// openStore opens the store --db names. A PostgreSQL store follows the
// changes of every replica within --sync-bound.
func openStore(ctx context.Context, cfg config, cursorKey []byte, logger *slog.Logger) (latchkey.Store, error) {
	if !cfg.postgres() {
		store, err := sqlite.Open(ctx, cfg.db, sqlite.Options{CursorKey: cursorKey})
		if err != nil {
			return nil, err // not a nil *sqlite.Store in a non-nil interface
		}
		return store, nil
	}
	store, err := postgres.Open(ctx, cfg.db, postgres.Options{CursorKey: cursorKey, SyncBound: cfg.syncBound, Logger: logger})
	if err != nil {
		return nil, err
	}
	return store, nil
}

// newLogger logs to w; a line logged with a traced call's context carries
// its trace_id.
func newLogger(format string, level slog.Level, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	if format == "text" {
		return slog.New(telemetry.WithTraceIDs(slog.NewTextHandler(w, opts)))
	}
	return slog.New(telemetry.WithTraceIDs(slog.NewJSONHandler(w, opts)))
}
