package client

import (
	"context"
	"net"
	"net/http"
	"net/netip"
	"strings"

	latchkeyv1 "github.com/latchkey/latchkey/gen/latchkey/v1"
)

// Route is what a protected route asks of a key.
type Route struct {
	// Workspace, when set, must be granted to the key.
	Workspace string
	// Permissions must all be held by the key.
	Permissions []string
}

type keyInContext struct{}

// keyContext carries an admitted key: one allocation where
// context.WithValue and a pointer to the Result would take two.
type keyContext struct {
	context.Context
	res Result
}

func (k *keyContext) Value(key any) any {
	if key == (keyInContext{}) {
		return &k.res
	}
	return k.Context.Value(key)
}

// withResult returns ctx carrying res.
func withResult(ctx context.Context, res Result) context.Context {
	return &keyContext{Context: ctx, res: res}
}

// KeyFrom returns the verdict of the key that the middleware or an
// interceptor admitted for the request ctx belongs to.
func KeyFrom(ctx context.Context) (Result, bool) {
	r, ok := ctx.Value(keyInContext{}).(*Result)
	if !ok {
		return Result{}, false
	}
	return *r, true
}

// Middleware protects next: a request passes only with a key that admits
// route, read from `Authorization: Bearer`, then `x-api-key` (and the
// `api_key` query parameter when Options.QueryParameter is on). It answers
// 401 (unauthenticated) for a missing, malformed, unknown, revoked or
// expired key, 403 (permission_denied) for the key's address, workspace
// or permissions or a suspended account, and 503 (unavailable) when
// Latchkey cannot answer. The
// admitted key is in the request's context (KeyFrom).
func (c *Client) Middleware(route Route) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			token, ok := c.tokenFromRequest(r)
			if !ok {
				w.Header().Set("WWW-Authenticate", `Bearer realm="latchkey"`)
				writeError(w, http.StatusUnauthorized, "unauthenticated", "missing API key: send Authorization: Bearer <key> or x-api-key: <key>")
				return
			}
			res, err := c.Verify(r.Context(), token, Requirements{
				Workspace: route.Workspace, Permissions: route.Permissions,
				ClientIP: c.clientAddr(r),
			})
			if err != nil {
				writeError(w, http.StatusServiceUnavailable, "unavailable", "the API key cannot be verified now; retry later")
				return
			}
			if status, code, msg := refusal(res); status != 0 {
				if status == http.StatusUnauthorized {
					w.Header().Set("WWW-Authenticate", `Bearer realm="latchkey", error="invalid_token"`)
				}
				writeError(w, status, code, msg)
				return
			}
			next.ServeHTTP(w, r.WithContext(withResult(r.Context(), res)))
		})
	}
}

// refusal maps a verdict to an HTTP status, a wire code and a message;
// status 0 admits.
func refusal(res Result) (status int, code, msg string) {
	switch res.Code {
	case latchkeyv1.VerifyCode_VERIFY_CODE_VALID:
		return 0, "", ""
	case latchkeyv1.VerifyCode_VERIFY_CODE_IP_NOT_ALLOWED:
		return http.StatusForbidden, "permission_denied", "the API key is not allowed from this address"
	case latchkeyv1.VerifyCode_VERIFY_CODE_WORKSPACE_DENIED:
		return http.StatusForbidden, "permission_denied", "the API key is not granted this workspace"
	case latchkeyv1.VerifyCode_VERIFY_CODE_PERMISSION_DENIED:
		return http.StatusForbidden, "permission_denied", "the API key lacks a permission this route needs"
	case latchkeyv1.VerifyCode_VERIFY_CODE_ACCOUNT_SUSPENDED:
		return http.StatusForbidden, "permission_denied", "the API key's account is suspended"
	case latchkeyv1.VerifyCode_VERIFY_CODE_REVOKED:
		return http.StatusUnauthorized, "unauthenticated", "the API key is revoked"
	case latchkeyv1.VerifyCode_VERIFY_CODE_EXPIRED:
		return http.StatusUnauthorized, "unauthenticated", "the API key has expired"
	default:
		return http.StatusUnauthorized, "unauthenticated", "unknown or malformed API key"
	}
}

// writeError answers as Connect does: {"code": ..., "message": ...}.
func writeError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	// The message is ours and holds no quote or backslash.
	w.Write([]byte(`{"code":"` + code + `","message":"` + msg + `"}` + "\n"))
}

// tokenFromRequest finds the caller's key in the request.
func (c *Client) tokenFromRequest(r *http.Request) (string, bool) {
	if tok, ok := tokenFromHeaders(r.Header.Get("Authorization"), r.Header.Get("X-Api-Key")); ok {
		return tok, true
	}
	if c.opts.QueryParameter {
		if tok := strings.TrimSpace(r.URL.Query().Get("api_key")); tok != "" {
			return tok, true
		}
	}
	return "", false
}

// tokenFromHeaders picks `Authorization: Bearer <key>`, else `x-api-key`.
func tokenFromHeaders(authorization, apiKey string) (string, bool) {
	if scheme, tok, ok := strings.Cut(authorization, " "); ok && strings.EqualFold(scheme, "Bearer") {
		tok = strings.TrimSpace(tok)
		return tok, tok != ""
	}
	apiKey = strings.TrimSpace(apiKey)
	return apiKey, apiKey != ""
}

// clientAddr is the connection's address or, when that is a trusted
// proxy, the last X-Forwarded-For entry that is not one.
func (c *Client) clientAddr(r *http.Request) netip.Addr {
	addr := remoteAddr(r.RemoteAddr)
	if !c.trusted(addr) {
		return addr
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			return netip.Addr{} // a garbled chain proves nothing
		}
		a = a.Unmap()
		if !c.trusted(a) {
			return a
		}
	}
	return addr
}

func (c *Client) trusted(a netip.Addr) bool {
	for _, p := range c.opts.TrustedProxies {
		if a.IsValid() && p.Contains(a) {
			return true
		}
	}
	return false
}

// remoteAddr parses a "host:port" peer address.
func remoteAddr(s string) netip.Addr {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap()
	}
	host, _, err := net.SplitHostPort(s)
	if err != nil {
		host = s
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}
	}
	return a.Unmap()
}
