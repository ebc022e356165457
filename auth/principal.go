package auth

import (
	"context"
	"net/netip"
	"strings"

	"github.com/latchkey/latchkey"
)

// Principal is an authenticated caller: the API key that signed the call.
type Principal struct {
	Key      latchkey.APIKey
	Operator bool // the key belongs to the operator account
}

// AccountID returns the caller's account.
func (p *Principal) AccountID() string { return p.Key.AccountID }

// ProfileID returns the caller's own profile.
func (p *Principal) ProfileID() string { return p.Key.ProfileID }

// Can reports whether the caller effectively holds perm (see Holds):
// permissions on accounts count only in the operator account.
func (p *Principal) Can(perm string) bool {
	return Holds(p.Key.Permissions, p.Operator, perm)
}

// Actor returns the caller as the author of a mutation.
func (p *Principal) Actor(requestID string) latchkey.Actor {
	return latchkey.Actor{
		Profile:   latchkey.Bare{ID: p.Key.ProfileID, Name: p.Key.Name},
		RequestID: requestID,
	}
}

type principalKey struct{}

// WithPrincipal returns a context that carries p.
func WithPrincipal(ctx context.Context, p *Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// PrincipalFrom returns the caller that the authentication interceptor put
// in ctx.
func PrincipalFrom(ctx context.Context) (*Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(*Principal)
	return p, ok
}

// CredentialFromHeaders picks the token from `Authorization: Bearer <token>`
// or, failing that, `x-api-key: <token>`. It reports false when neither
// carries one.
func CredentialFromHeaders(authorization, apiKey string) (string, bool) {
	if scheme, tok, ok := strings.Cut(authorization, " "); ok && strings.EqualFold(scheme, "Bearer") {
		tok = strings.TrimSpace(tok)
		return tok, tok != ""
	}
	apiKey = strings.TrimSpace(apiKey)
	return apiKey, apiKey != ""
}

// Authenticate turns a presented token into a Principal. The errors are
// CodeUnauthenticated (or CodePermissionDenied for an address outside the
// key's allow-list); their messages never include the token.
func (v *Verifier) Authenticate(ctx context.Context, raw string, peer netip.Addr) (*Principal, error) {
	verdict, err := v.Verify(ctx, raw, Requirements{ClientIP: peer})
	if err != nil {
		return nil, err
	}
	switch verdict.Code {
	case CodeValid:
		return &Principal{Key: verdict.Credential.Key, Operator: verdict.Credential.Operator}, nil
	case CodeMalformed:
		return nil, latchkey.Errorf(latchkey.CodeUnauthenticated, "the credential is not a valid API key")
	case CodeRevoked:
		return nil, latchkey.Errorf(latchkey.CodeUnauthenticated, "the API key is revoked")
	case CodeExpired:
		return nil, latchkey.Errorf(latchkey.CodeUnauthenticated, "the API key has expired")
	case CodeIPNotAllowed:
		return nil, latchkey.Errorf(latchkey.CodePermissionDenied, "the API key is not allowed from this address")
	default:
		return nil, latchkey.Errorf(latchkey.CodeUnauthenticated, "unknown API key")
	}
}
