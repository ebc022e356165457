package main

import (
	"net/http"

	"github.com/latchkey/latchkey/auth"
	"github.com/latchkey/latchkey/console"
	"github.com/latchkey/latchkey/server"
)

// warmWorkers bounds the goroutines that keep their stacks between
// requests (warmStacks): enough for every call in flight at the rates a
// server of a few cores sees; past them, calls run as net/http started them.
const warmWorkers = 256

// routes composes what the API port serves: the services, reflection and
// health that the server mounts, /healthz for load balancers that cannot
// speak gRPC health, and forward authentication for gateways,
// inside the middleware every route shares. With --console (the default),
// the console takes every other path: the mux's more specific patterns
// (the services' /latchkey.v1.…/ prefixes, reflection, health, /healthz,
// /forward-auth) win over its "/".
// Outermost first: CORS answers a browser's preflight before anything else
// runs; the body limit then stops an oversized body on any route, RPC or
// not (Connect's own limit, --max-request-bytes, refuses an oversized
// message with resource_exhausted; the margin lets that answer be sent).
// Every request runs on a goroutine whose stack is already grown
// (warmStacks).
func routes(cfg config, srv *server.Server) http.Handler {
	mux := http.NewServeMux()
	srv.Mount(mux)
	mux.Handle(auth.ForwardAuthRoute, srv.ForwardAuth())
	mux.Handle("GET /healthz", srv.Healthz())
	if cfg.console {
		mux.Handle("/", consoleHandler(cfg))
	}
	var h http.Handler = mux
	h = http.MaxBytesHandler(h, int64(cfg.maxRequestBytes)+64<<10)
	h = server.CORS(cfg.corsOrigins)(h)
	return warmStacks(h, warmWorkers)
}

// consoleHandler is the console, told how people sign in: the console's
// client id at the provider is the audience the server requires.
func consoleHandler(cfg config) http.Handler {
	ui, err := console.Handler(console.Options{OIDCIssuer: cfg.oidcIssuer, OIDCClientID: cfg.oidcAudience})
	if err != nil {
		// Only a binary built without web/console/dist gets here (the
		// console package's tests prove the committed build has what it
		// needs); the API goes on working.
		return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			http.Error(w, "the console is not in this build: "+err.Error(), http.StatusInternalServerError)
		})
	}
	return ui
}
