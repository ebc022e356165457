// Package auth decides who a caller is and what it may do: it turns a
// token into a Principal (authentication), checks a Principal against the
// permission a method needs (authorization), and verifies tokens for
// AuthService.Verify with the same code path.
package auth

import "strings"

// Permissions of Latchkey's own methods. Any other `resource:verb` may be
// stored on a key for other services to check through Verify.
const (
	APIKeysRead      = "api_keys:read"
	APIKeysManage    = "api_keys:manage"
	APIKeysVerify    = "api_keys:verify"
	WorkspacesRead   = "workspaces:read"
	WorkspacesManage = "workspaces:manage"
	ProfilesRead     = "profiles:read"
	ProfilesManage   = "profiles:manage"
	AuditRead        = "audit:read"
	// AccountsManage is effective only in the operator account.
	AccountsManage = "accounts:manage"
)

// operatorResource is the resource whose permissions are effective only in
// the operator account: accounts are the installation's, not a tenant's.
const operatorResource = "accounts"

// Allows reports whether the held permissions grant the wanted one. `*`
// grants everything, `resource:*` every verb of the resource, and
// `resource:manage` also grants `resource:read`. A wanted wildcard is
// granted only by a wildcard at least as wide, so holding every verb one by
// one never adds up to `resource:*`.
func Allows(held []string, wanted string) bool {
	for _, h := range held {
		if covers(h, wanted) {
			return true
		}
	}
	return false
}

// Holds reports whether a principal holding held effectively holds wanted:
// Allows, except that outside the operator account no permission on the
// accounts resource is effective, whatever is held (`*` included). It is
// the one rule for the server's own checks, for what a caller may give,
// for reach, and for AuthService.Verify.
func Holds(held []string, operator bool, wanted string) bool {
	if !operator && operatorOnly(wanted) {
		return false
	}
	return Allows(held, wanted)
}

// operatorOnly reports whether p names the operator's resource.
func operatorOnly(p string) bool {
	resource, _, ok := strings.Cut(p, ":")
	return ok && resource == operatorResource
}

func covers(held, wanted string) bool {
	if held == "*" || held == wanted {
		return true
	}
	if wanted == "*" {
		return false
	}
	hr, hv, ok := strings.Cut(held, ":")
	if !ok {
		return false
	}
	wr, wv, ok := strings.Cut(wanted, ":")
	if !ok || hr != wr {
		return false
	}
	return hv == "*" || (hv == "manage" && wv == "read")
}
