package auth

import (
	"context"
	"net/netip"
	"time"

	"github.com/latchkey/latchkey"
)

// Target is what a call would change, as far as authorization needs to
// know it: an API key, or a profile with the permissions of the keys that
// act through it.
type Target struct {
	// ProfileID is the profile whose grants are the target's workspaces
	// (an API key's own profile).
	ProfileID string
	// Permissions are the target's permissions.
	Permissions []string
}

// KeyTarget returns an API key as the target of a call.
func KeyTarget(k latchkey.APIKey) Target {
	return Target{ProfileID: k.ProfileID, Permissions: k.Permissions}
}

// Authorizer makes every authorization decision of the server, so that no
// handler carries a rule of its own: the permission a method needs, reach
// over the target, what a caller may give, and the operator's rules. Every
// refusal is a *latchkey.Error with OutcomePermissionDenied (or OutcomeNotFound
// where the contract hides that a resource exists); store failures keep
// their own codes.
type Authorizer struct {
	grants latchkey.GrantReader
}

// NewAuthorizer returns an Authorizer that reads grants from g (the
// store).
func NewAuthorizer(g latchkey.GrantReader) *Authorizer { return &Authorizer{grants: g} }

// Call decides whether p may call procedure at all: the permission the
// policy table names for it. A procedure missing from the table is
// refused.
func (a *Authorizer) Call(p *Principal, procedure string) error {
	perm, ok := Permission(procedure)
	if !ok {
		return latchkey.Errorf(latchkey.CodePermissionDenied, "no policy for %s", procedure)
	}
	if perm != AnyCaller && !p.Can(perm) {
		return latchkey.Errorf(latchkey.CodePermissionDenied, "the API key lacks the permission %s", perm)
	}
	return nil
}

// Change decides whether p may change t (update, rotate, revoke, or grant
// or withdraw a workspace): only when t's reach is within p's. Reach is a
// principal's effective permissions and the active workspaces it is
// granted, all of the account's with workspaces:manage. So an account's
// system key (`*`) is changed only by a caller holding `*`. The refusal
// says that the target holds more than the caller, never what.
func (a *Authorizer) Change(ctx context.Context, p *Principal, t Target) error {
	return change(ctx, a.grants, p, t)
}

// KeyGuard returns Change as a guard that the store runs inside the write's
// transaction, on the key as the write sees it: a key made stronger by
// another writer after the handler's check is not changed (above all, not
// rotated into a token for the caller).
func (a *Authorizer) KeyGuard(p *Principal) latchkey.KeyGuard {
	return func(ctx context.Context, key latchkey.APIKey, grants latchkey.GrantReader) error {
		return change(ctx, grants, p, KeyTarget(key))
	}
}

// ProfileGuard is KeyGuard for a person's profile: the store runs it
// inside the write, on the profile as the write sees it.
func (a *Authorizer) ProfileGuard(p *Principal) latchkey.ProfileGuard {
	return func(ctx context.Context, prof latchkey.Profile, grants latchkey.GrantReader) error {
		return change(ctx, grants, p, Target{ProfileID: prof.ID, Permissions: prof.Permissions})
	}
}

func change(ctx context.Context, grants latchkey.GrantReader, p *Principal, t Target) error {
	for _, perm := range t.Permissions {
		// A permission that is not effective in the account (accounts:* of
		// a tenant) gives the target nothing to protect.
		if !p.Operator && operatorOnly(perm) {
			continue
		}
		if !p.Can(perm) {
			return beyondReach()
		}
	}
	if p.Can(WorkspacesManage) {
		return nil
	}
	beyond, err := grants.WorkspacesBeyond(ctx, p.AccountID, t.ProfileID, p.ProfileID)
	if err != nil {
		return err
	}
	if beyond {
		return beyondReach()
	}
	return nil
}

func beyondReach() error {
	return latchkey.Errorf(latchkey.CodePermissionDenied,
		"the target holds more than the caller: a caller may change only keys and profiles whose permissions and workspaces are within its own")
}

// GivePermissions decides whether p may give perms to a key (at Issue, or
// by Update): only permissions it effectively holds itself.
func (a *Authorizer) GivePermissions(p *Principal, perms []string) error {
	for _, perm := range perms {
		if !p.Can(perm) {
			return latchkey.Errorf(latchkey.CodePermissionDenied,
				"the caller cannot give the permission %s, which it does not hold", perm)
		}
	}
	return nil
}

// GrantWorkspace decides whether p may grant workspaceID to someone or
// withdraw it: only a workspace p is granted itself, unless p holds
// workspaces:manage.
func (a *Authorizer) GrantWorkspace(ctx context.Context, p *Principal, workspaceID string) error {
	if p.Can(WorkspacesManage) {
		return nil
	}
	ok, err := a.grants.WorkspaceAccess(ctx, p.AccountID, p.ProfileID, workspaceID)
	if err != nil {
		return err
	}
	if !ok {
		return latchkey.Errorf(latchkey.CodePermissionDenied,
			"the caller is not granted the workspace %s and lacks workspaces:manage", workspaceID)
	}
	return nil
}

// ReadAccount decides whether p may read the account accountID: its own,
// or any with accounts:manage. Another account is OutcomeNotFound, as if it
// did not exist.
func (a *Authorizer) ReadAccount(p *Principal, accountID string) error {
	if accountID != p.AccountID && !p.Can(AccountsManage) {
		return latchkey.NotFound("account", accountID)
	}
	return nil
}

// UpdateAccount decides whether p may change the fields paths of the
// account: any field of any account with accounts:manage, but for its own
// account's defaults, which its keys change with api_keys:manage and
// within their reach (the defaults a key is issued with are what the
// caller gives, so it may set only what it could give: GivePermissions on
// newDefaults). The returned guard asks, inside the write, whether the
// defaults as they stand are within the caller's reach, so that defaults
// that another writer made stronger are not changed by a weaker caller.
// Another account that p may not read is CodeNotFound.
func (a *Authorizer) UpdateAccount(p *Principal, accountID string, paths []string, newDefaults []string) (func(context.Context, latchkey.Account) error, error) {
	if err := a.ReadAccount(p, accountID); err != nil {
		return nil, err
	}
	ownDefaults := false
	for _, path := range paths {
		if path == "spec.default_key_permissions" && accountID == p.AccountID {
			ownDefaults = true
			continue
		}
		if !p.Can(AccountsManage) {
			return nil, latchkey.Errorf(latchkey.CodePermissionDenied,
				"changing %s of an account needs the permission %s", path, AccountsManage)
		}
	}
	if !ownDefaults {
		return nil, nil
	}
	if !p.Can(APIKeysManage) {
		return nil, latchkey.Errorf(latchkey.CodePermissionDenied,
			"changing the account's default key permissions needs the permission %s", APIKeysManage)
	}
	if err := a.GivePermissions(p, newDefaults); err != nil {
		return nil, err
	}
	return func(_ context.Context, current latchkey.Account) error {
		for _, perm := range current.DefaultKeyPermissions {
			if !p.Can(perm) {
				return latchkey.Errorf(latchkey.CodePermissionDenied,
					"the account's default key permissions hold more than the caller: a caller may change them only when it holds every one")
			}
		}
		return nil
	}, nil
}

// OperatorOnly reports whether perm is effective only in the operator
// account (a permission on accounts), so that no key of another account
// can hold it.
func OperatorOnly(perm string) bool { return operatorOnly(perm) }

// VerifyScope returns the account whose keys p may verify, or "" for
// every account: operator keys verify keys of every account, others only
// their own.
func (a *Authorizer) VerifyScope(p *Principal) string {
	if p.Operator {
		return ""
	}
	return p.AccountID
}

// StillAllowed decides whether a long call (a stream) opened with an API
// key may go on, given the key's credential as the store holds it now:
// CodeUnauthenticated once the key is revoked or expired,
// CodePermissionDenied once its account is suspended or it no longer holds
// what procedure needs. A
// stream asks again whenever its caller's key changes and on each
// heartbeat, so that a credential taken away ends the calls it opened.
func (a *Authorizer) StillAllowed(cred *latchkey.Credential, procedure string, peer netip.Addr, now time.Time) error {
	switch cred.Key.State(now) {
	case latchkey.KeyStateRevoked:
		return latchkey.Errorf(latchkey.CodeUnauthenticated, "the API key is revoked")
	case latchkey.KeyStateExpired:
		return latchkey.Errorf(latchkey.CodeUnauthenticated, "the API key has expired")
	}
	if !addressAllowed(cred.Key.AllowedCIDRs, parseCIDRs(cred.Key.AllowedCIDRs), peer) {
		return latchkey.Errorf(latchkey.CodePermissionDenied, "the API key is not allowed from this address")
	}
	if cred.AccountSuspended {
		return errAccountSuspended()
	}
	return a.Call(APIKeyPrincipal(cred), procedure)
}
