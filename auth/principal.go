package auth

import (
	"context"
	"net/netip"
	"strings"
	"time"

	"github.com/latchkey/latchkey"
)

// Method is how a principal authenticated.
type Method int

// The ways to authenticate.
const (
	// MethodAPIKey: the caller presented an API key.
	MethodAPIKey Method = iota + 1
	// MethodOIDC: a person presented a JWT of the OpenID Provider.
	MethodOIDC
)

// String returns the method's name, for logs.
func (m Method) String() string {
	switch m {
	case MethodAPIKey:
		return "api_key"
	case MethodOIDC:
		return "oidc"
	default:
		return "unknown"
	}
}

// Principal is an authenticated caller: a profile of an account, with the
// profile's permissions, however it authenticated. Authorization reads
// nothing else.
type Principal struct {
	AccountID string
	ProfileID string
	// Name names the caller in audit events: an API key's name, a
	// person's display name or email.
	Name string
	// Permissions are the profile's; an API key's are its own profile's.
	Permissions []string
	// Operator is set for a profile of the operator account.
	Operator bool
	Method   Method
	// KeyID is the API key presented, when Method is MethodAPIKey.
	KeyID string
	// Expires is when a person's sign-in ends (the provider's token
	// expires), when Method is MethodOIDC: a long call (a stream) ends
	// then.
	Expires time.Time
}

// APIKeyPrincipal returns the principal of a verified API key: the key's
// own profile, with its permissions.
func APIKeyPrincipal(cred *latchkey.Credential) *Principal {
	k := cred.Key
	return &Principal{
		AccountID: k.AccountID, ProfileID: k.ProfileID, Name: k.Name,
		Permissions: k.Permissions, Operator: cred.Operator,
		Method: MethodAPIKey, KeyID: k.ID,
	}
}

// Can reports whether the caller effectively holds perm (see Holds):
// permissions on accounts count only in the operator account.
func (p *Principal) Can(perm string) bool {
	return Holds(p.Permissions, p.Operator, perm)
}

// Actor returns the caller as the author of a mutation.
func (p *Principal) Actor(requestID string) latchkey.Actor {
	return latchkey.Actor{
		Profile:   latchkey.Bare{ID: p.ProfileID, Name: p.Name},
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

// TokenFromHeaders picks the token from `Authorization: Bearer <token>`
// or, failing that, `x-api-key: <token>`. It reports false when neither
// carries one.
func TokenFromHeaders(authorization, apiKey string) (string, bool) {
	if scheme, tok, ok := strings.Cut(authorization, " "); ok && strings.EqualFold(scheme, "Bearer") {
		tok = strings.TrimSpace(tok)
		return tok, tok != ""
	}
	apiKey = strings.TrimSpace(apiKey)
	return apiKey, apiKey != ""
}

// Authenticate turns a presented token into a Principal. The errors are
// CodeUnauthenticated (or CodePermissionDenied for an address outside the
// key's allow-list, or a key of a suspended account); their messages never
// include the token.
func (v *Verifier) Authenticate(ctx context.Context, raw string, peer netip.Addr) (*Principal, error) {
	verdict, err := v.Verify(ctx, raw, Requirements{ClientIP: peer})
	if err != nil {
		return nil, err
	}
	switch verdict.Outcome {
	case OutcomeValid:
		return APIKeyPrincipal(verdict.Credential), nil
	case OutcomeMalformed:
		return nil, latchkey.Errorf(latchkey.CodeUnauthenticated, "the credential is not a valid API key")
	case OutcomeRevoked:
		return nil, latchkey.Errorf(latchkey.CodeUnauthenticated, "the API key is revoked")
	case OutcomeExpired:
		return nil, latchkey.Errorf(latchkey.CodeUnauthenticated, "the API key has expired")
	case OutcomeIPNotAllowed:
		return nil, latchkey.Errorf(latchkey.CodePermissionDenied, "the API key is not allowed from this address")
	case OutcomeAccountSuspended:
		return nil, errAccountSuspended()
	default:
		return nil, latchkey.Errorf(latchkey.CodeUnauthenticated, "unknown API key")
	}
}

// errAccountSuspended is the one refusal of every call by a key (or,
// later, a person) of a suspended account.
func errAccountSuspended() error {
	return latchkey.Errorf(latchkey.CodePermissionDenied,
		"the account is suspended: its keys and people are refused until the operator restores it")
}
