package server

import (
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strings"

	"buf.build/go/protovalidate"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/auth"
	latchkeyv1 "github.com/latchkey/latchkey/gen/latchkey/v1"
)

// The headers of forward authentication (API.md, "Gateways").
const (
	// GatewayKeyHeader carries the gateway's own API key.
	GatewayKeyHeader = "Latchkey-Gateway-Key"
	// WorkspaceHeader names a workspace the caller's key must be granted.
	WorkspaceHeader = "Latchkey-Workspace"
	// PermissionsHeader lists, comma-separated, the permissions the
	// caller's key must hold.
	PermissionsHeader = "Latchkey-Permissions"
	// The identity of an admitted key, for the upstream.
	KeyIDHeader     = "Latchkey-Key-Id"
	AccountIDHeader = "Latchkey-Account-Id"
	ProfileIDHeader = "Latchkey-Profile-Id"
)

// ForwardAuth returns the handler of /forward-auth, which reverse proxies
// (nginx auth_request, Caddy forward_auth, Traefik ForwardAuth) call
// before they pass a request on. Any method is accepted. The gateway
// authenticates with its own key (GatewayKeyHeader), which must hold
// api_keys:verify and sees the keys Verify would let it see; the caller's
// key comes from the forwarded Authorization (Bearer) or x-api-key header;
// the requirements come from the gateway's configuration (WorkspaceHeader,
// PermissionsHeader); the caller's address is the last entry of
// X-Forwarded-For, the one the gateway itself added.
//
// It answers 200 with the key's identity headers, 401 for a caller with
// no key or a malformed, unknown, revoked or expired one, 403 for a key
// refused its address, workspace or permissions, 400 for requirement
// headers the gateway's configuration got wrong, 500 when the gateway's
// own key is refused (a gateway misconfigured is not the caller's fault),
// and 503 when Latchkey cannot answer.
func (s *Server) ForwardAuth() http.Handler {
	return http.HandlerFunc(s.forwardAuth)
}

func (s *Server) forwardAuth(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	w.Header().Set("Cache-Control", "no-store")
	gatewayKey, ok := auth.TokenFromHeaders("", r.Header.Get(GatewayKeyHeader))
	if !ok {
		http.Error(w, "forward-auth: the gateway sent no "+GatewayKeyHeader+" header", http.StatusInternalServerError)
		return
	}
	gateway, err := s.verifier.Authenticate(ctx, gatewayKey, peerAddr(r.RemoteAddr))
	if err == nil {
		err = s.authz.Call(gateway, auth.ForwardAuthRoute)
	}
	if err != nil {
		s.forwardAuthFailed(w, r, "the gateway's own key was refused", err)
		return
	}

	raw, ok := auth.TokenFromHeaders(r.Header.Get("Authorization"), r.Header.Get("X-Api-Key"))
	if !ok {
		w.Header().Set("WWW-Authenticate", `Bearer realm="latchkey"`)
		http.Error(w, "missing credential: send Authorization: Bearer <token> or x-api-key: <token>", http.StatusUnauthorized)
		return
	}
	// The requirements are checked by the rules of VerifyRequest, so that
	// a gateway cannot ask what Verify would refuse.
	// The token itself is left to the verifier: one that is not a token is
	// the caller's 401, not the gateway's 400.
	req := &latchkeyv1.VerifyRequest{WorkspaceId: r.Header.Get(WorkspaceHeader)}
	for _, p := range strings.Split(r.Header.Get(PermissionsHeader), ",") {
		if p = strings.TrimSpace(p); p != "" {
			req.Permissions = append(req.Permissions, p)
		}
	}
	client := forwardedClient(r.Header.Values("X-Forwarded-For"))
	if client.IsValid() {
		req.ClientIp = client.String()
	}
	if err := s.validator.Validate(req); err != nil {
		http.Error(w, "forward-auth: "+requirementError(err), http.StatusBadRequest)
		return
	}
	verdict, err := s.verifier.Verify(ctx, raw, auth.Requirements{
		AccountID:   s.authz.VerifyScope(gateway),
		ClientIP:    client,
		WorkspaceID: req.GetWorkspaceId(),
		Permissions: req.GetPermissions(),
	})
	if err != nil {
		s.forwardAuthFailed(w, r, "verification failed", err)
		return
	}
	switch verdict.Outcome {
	case auth.OutcomeValid:
		k := verdict.Credential.Key
		w.Header().Set(KeyIDHeader, k.ID)
		w.Header().Set(AccountIDHeader, k.AccountID)
		w.Header().Set(ProfileIDHeader, k.ProfileID)
		w.WriteHeader(http.StatusOK)
	case auth.OutcomeIPNotAllowed, auth.OutcomeWorkspaceDenied, auth.OutcomePermissionDenied, auth.OutcomeAccountSuspended:
		http.Error(w, outcomeText(verdict.Outcome), http.StatusForbidden)
	default:
		w.Header().Set("WWW-Authenticate", `Bearer realm="latchkey", error="invalid_token"`)
		http.Error(w, outcomeText(verdict.Outcome), http.StatusUnauthorized)
	}
}

// forwardAuthFailed answers an error that is not the caller's verdict:
// 503 when Latchkey cannot answer now, else 500. The cause is logged,
// never sent.
func (s *Server) forwardAuthFailed(w http.ResponseWriter, r *http.Request, what string, err error) {
	status := http.StatusInternalServerError
	switch latchkey.ErrorCode(err) {
	case latchkey.CodeUnavailable, latchkey.CodeResourceExhausted:
		status = http.StatusServiceUnavailable
	}
	var de *latchkey.Error
	msg := "internal error"
	if errors.As(err, &de) && de.Code != latchkey.CodeInternal {
		msg = de.Message
	}
	s.logger.WarnContext(r.Context(), "forward-auth: "+what, "code", latchkey.ErrorCode(err), "cause", err)
	http.Error(w, fmt.Sprintf("forward-auth: %s: %s", what, msg), status)
}

// forwardedClient returns the last address of X-Forwarded-For: the one the
// gateway appended, the only one it vouches for. Earlier entries came from
// the client and prove nothing.
func forwardedClient(values []string) netip.Addr {
	if len(values) == 0 {
		return netip.Addr{}
	}
	last := values[len(values)-1]
	if i := strings.LastIndexByte(last, ','); i >= 0 {
		last = last[i+1:]
	}
	a, err := netip.ParseAddr(strings.TrimSpace(last))
	if err != nil {
		return netip.Addr{}
	}
	return a.Unmap()
}

// requirementError names the requirement header a violation is about.
func requirementError(err error) string {
	var verr *protovalidate.ValidationError
	if !errors.As(err, &verr) {
		return "bad requirement headers"
	}
	headers := map[string]string{"workspace_id": WorkspaceHeader, "permissions": PermissionsHeader, "client_ip": "X-Forwarded-For"}
	var parts []string
	for _, v := range verr.Violations {
		field := protovalidate.FieldPathString(v.Proto.GetField())
		name, _, _ := strings.Cut(field, "[")
		if h, ok := headers[name]; ok {
			field = h
		}
		parts = append(parts, field+": "+v.Proto.GetMessage())
	}
	return strings.Join(parts, "; ")
}

// outcomeText says why a key was refused, in the words of VerifyCode.
func outcomeText(o auth.Outcome) string {
	return strings.ToLower(strings.TrimPrefix(latchkeyv1.VerifyCode(o).String(), "VERIFY_CODE_"))
}
