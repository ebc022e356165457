package client

import (
	"context"
	"net/netip"

	"connectrpc.com/connect/v2"
)

// Routes says what each procedure of a service asks of a key, by its
// full name ("/pkg.Service/Method"); the entry "" applies to procedures
// not listed. A procedure with neither is refused, so that a method added
// later is not served unprotected by accident.
type Routes map[string]Route

// route returns the requirements of procedure.
func (r Routes) route(procedure string) (Route, bool) {
	if rt, ok := r[procedure]; ok {
		return rt, true
	}
	rt, ok := r[""]
	return rt, ok
}

// Interceptor returns a Connect server interceptor that admits a call
// only with a key that admits its procedure's Route, read from the
// Authorization (Bearer) or x-api-key header. Refusals are
// unauthenticated, permission_denied or, when Latchkey cannot answer,
// unavailable. The admitted key is in the handler's context (KeyFrom).
// It runs before the request body is read.
func (c *Client) Interceptor(routes Routes) connect.ServerInterceptor {
	return func(next connect.ServerFunc) connect.ServerFunc {
		return func(ctx context.Context, spec connect.Spec, stream connect.ServerStream) error {
			route, ok := routes.route(spec.Procedure)
			if !ok {
				return connect.NewError(connect.CodePermissionDenied, "no route allows "+spec.Procedure)
			}
			info, _ := connect.CallInfoForServerContext(ctx)
			token, ok := tokenFromHeaders(info.RequestHeader().Get("Authorization"), info.RequestHeader().Get("X-Api-Key"))
			if !ok {
				return connect.NewError(connect.CodeUnauthenticated, "missing API key: send Authorization: Bearer <key> or x-api-key: <key>")
			}
			res, err := c.Admit(ctx, token, route, remoteAddr(info.PeerAddr))
			if err != nil {
				return err
			}
			return next(withResult(ctx, res), spec, stream)
		}
	}
}

// Admit verifies token for route from addr and turns a refusal into a
// Connect error: unauthenticated, permission_denied or unavailable. The
// grpc-go interceptors (package grpcclient) use it too.
func (c *Client) Admit(ctx context.Context, token string, route Route, addr netip.Addr) (Result, error) {
	res, err := c.Verify(ctx, token, Requirements{Workspace: route.Workspace, Permissions: route.Permissions, ClientIP: addr})
	if err != nil {
		return Result{}, connect.NewError(connect.CodeUnavailable, "the API key cannot be verified now; retry later")
	}
	if status, code, msg := refusal(res); status != 0 {
		if code == "permission_denied" {
			return Result{}, connect.NewError(connect.CodePermissionDenied, msg)
		}
		return Result{}, connect.NewError(connect.CodeUnauthenticated, msg)
	}
	return res, nil
}

// WithKey returns ctx carrying an admitted key's verdict, for KeyFrom; the
// grpc-go interceptors use it.
func WithKey(ctx context.Context, res Result) context.Context { return withResult(ctx, res) }
