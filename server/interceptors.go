package server

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"regexp"
	"runtime/debug"
	"strings"
	"time"

	"connectrpc.com/connect/v2"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/auth"
	"github.com/latchkey/latchkey/auth/oidc"
	"github.com/latchkey/latchkey/gen/latchkey/v1/latchkeyv1connect"
)

type requestIDKey struct{}

// callRecord collects what the log line of a call shows, filled in by the
// interceptors inside the one that logs.
type callRecord struct {
	requestID string
	keyID     string
}

func requestIDFrom(ctx context.Context) string {
	if rec, ok := ctx.Value(requestIDKey{}).(*callRecord); ok {
		return rec.requestID
	}
	return ""
}

var requestIDPattern = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,64}$`)

// observe is the outermost interceptor: it gives each call a request id
// (the caller's `x-request-id` when it is sane), turns every error into its
// wire form in one place, recovers panics, and writes one log line per
// call. The log names the key id, never a token.
func (s *Server) observe(next connect.ServerFunc) connect.ServerFunc {
	return func(ctx context.Context, spec connect.Spec, stream connect.ServerStream) (err error) {
		start := time.Now()
		info, _ := connect.CallInfoForServerContext(ctx)
		rec := &callRecord{requestID: info.RequestHeader().Get("X-Request-Id")}
		if !requestIDPattern.MatchString(rec.requestID) {
			rec.requestID = latchkey.NewID("req")
		}
		info.ResponseHeader().Set("X-Request-Id", rec.requestID)
		ctx = context.WithValue(ctx, requestIDKey{}, rec)
		defer func() {
			if r := recover(); r != nil {
				// The panic value and stack may hold request data; they go to
				// the log under the request id and never to the caller.
				s.logger.ErrorContext(ctx, "panic", "request_id", rec.requestID, "procedure", spec.Procedure,
					"panic", fmt.Sprint(r), "stack", string(debug.Stack()))
				err = connect.NewError(connect.CodeInternal, "internal error")
			}
			// Successful calls log at debug: Verify runs on other services'
			// hot paths, and a line per call would cost more than the call.
			code, level := "ok", slog.LevelDebug
			if err != nil {
				code, level = connect.CodeOf(err).String(), slog.LevelInfo
			}
			if s.logger.Enabled(ctx, level) {
				s.logger.Log(ctx, level, "rpc", "procedure", spec.Procedure, "protocol", info.Protocol,
					"code", code, "duration", time.Since(start), "request_id", rec.requestID, "key_id", rec.keyID)
			}
		}()
		return toConnectError(ctx, s.logger, next(ctx, spec, stream))
	}
}

// authenticate runs before the request body is read: it finds the
// credential in the headers, verifies it, checks the permission the
// procedure needs (auth's policy table) and puts the Principal in the
// context. What the call may do to its target is decided by the handler's
// calls to the Authorizer.
func (s *Server) authenticate(next connect.ServerFunc) connect.ServerFunc {
	return func(ctx context.Context, spec connect.Spec, stream connect.ServerStream) error {
		if _, ok := auth.Permission(spec.Procedure); !ok {
			return latchkey.Errorf(latchkey.CodePermissionDenied, "no policy for %s", spec.Procedure)
		}
		info, _ := connect.CallInfoForServerContext(ctx)
		raw, ok := auth.TokenFromHeaders(info.RequestHeader().Get("Authorization"), info.RequestHeader().Get("X-Api-Key"))
		if !ok {
			return latchkey.Errorf(latchkey.CodeUnauthenticated, "missing credential: send Authorization: Bearer <token> or x-api-key: <token>")
		}
		account := info.RequestHeader().Get(auth.AccountHeader)
		if err := auth.CheckAccountHeader(account); err != nil {
			return err
		}
		if oidc.LooksLikeJWT(raw) {
			if s.people == nil {
				return latchkey.Errorf(latchkey.CodeUnauthenticated, "the credential is a JWT, but sign-in is not configured on this server (--oidc-issuer): send an API key")
			}
			if spec.Procedure == latchkeyv1connect.AuthServiceListMyProfilesProcedure {
				// The account switcher's call: a person with no account
				// chosen yet, or none at all, may make it.
				return next(withSignIn(ctx, raw), spec, stream)
			}
		}
		p, err := s.principalOf(ctx, raw, account, peerAddr(info.PeerAddr))
		if err != nil {
			return err
		}
		if rec, ok := ctx.Value(requestIDKey{}).(*callRecord); ok {
			rec.keyID = p.KeyID
		}
		if err := s.authz.Call(p, spec.Procedure); err != nil {
			return err
		}
		return next(auth.WithPrincipal(ctx, p), spec, stream)
	}
}

// principalOf authenticates a bearer credential: a person's JWT in the
// account the latchkey-account header names, or an API key, which may
// send the header only to name its own account.
func (s *Server) principalOf(ctx context.Context, raw, account string, peer netip.Addr) (*auth.Principal, error) {
	if oidc.LooksLikeJWT(raw) {
		return s.people.Authenticate(ctx, raw, account)
	}
	p, err := s.verifier.Authenticate(ctx, raw, peer)
	if err != nil {
		return nil, err
	}
	if account != "" && account != p.AccountID {
		return nil, latchkey.Errorf(latchkey.CodePermissionDenied,
			"the API key belongs to another account than the %s header names", strings.ToLower(auth.AccountHeader))
	}
	return p, nil
}

type signInKey struct{}

// withSignIn carries a person's raw JWT to ListMyProfiles, the one
// handler that authenticates a person itself.
func withSignIn(ctx context.Context, raw string) context.Context {
	return context.WithValue(ctx, signInKey{}, raw)
}

// peerAddr parses the transport's "host:port" (or bare host) peer address.
func peerAddr(s string) netip.Addr {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap()
	}
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap()
	}
	return netip.Addr{}
}

// principal returns the caller. The authentication interceptor guarantees
// one for every registered procedure, so its absence is a bug of ours.
func principal(ctx context.Context) (*auth.Principal, error) {
	p, ok := auth.PrincipalFrom(ctx)
	if !ok {
		return nil, latchkey.Internal(fmt.Errorf("no principal in context"))
	}
	return p, nil
}
