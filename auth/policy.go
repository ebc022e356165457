package auth

import "github.com/latchkey/latchkey/gen/latchkey/v1/latchkeyv1connect"

// AnyCaller marks a method that every authenticated caller may call; the
// handler itself narrows what it returns.
const AnyCaller = ""

// policy is the one table from procedure to the permission it needs. A
// procedure missing from it is refused (Authorizer.Call), so a new RPC
// cannot ship unguarded. What a method may do to its target beyond that
// permission is decided by the Authorizer's other methods.
var policy = map[string]string{
	latchkeyv1connect.ApiKeyServiceIssueProcedure:                 APIKeysManage,
	latchkeyv1connect.ApiKeyServiceGetProcedure:                   APIKeysRead,
	latchkeyv1connect.ApiKeyServiceListProcedure:                  APIKeysRead,
	latchkeyv1connect.ApiKeyServiceUpdateProcedure:                APIKeysManage,
	latchkeyv1connect.ApiKeyServiceRotateProcedure:                APIKeysManage,
	latchkeyv1connect.ApiKeyServiceRevokeProcedure:                APIKeysManage,
	latchkeyv1connect.ApiKeyServiceGrantWorkspaceProcedure:        APIKeysManage,
	latchkeyv1connect.ApiKeyServiceRevokeWorkspaceProcedure:       APIKeysManage,
	latchkeyv1connect.ApiKeyServiceListGrantedWorkspacesProcedure: APIKeysRead,

	latchkeyv1connect.AuthServiceVerifyProcedure: APIKeysVerify,
	latchkeyv1connect.AuthServiceWhoAmIProcedure: AnyCaller,
	// A person's own profiles, for an account switcher: the one call a
	// person with several accounts makes without naming one.
	latchkeyv1connect.AuthServiceListMyProfilesProcedure: AnyCaller,
	// Watching reveals no more than Verify: which keys of the caller's
	// account changed, never how.
	latchkeyv1connect.AuthServiceWatchKeyChangesProcedure: APIKeysVerify,

	latchkeyv1connect.WorkspaceServiceCreateWorkspaceProcedure:  WorkspacesManage,
	latchkeyv1connect.WorkspaceServiceGetWorkspaceProcedure:     WorkspacesRead,
	latchkeyv1connect.WorkspaceServiceListWorkspacesProcedure:   WorkspacesRead,
	latchkeyv1connect.WorkspaceServiceUpdateWorkspaceProcedure:  WorkspacesManage,
	latchkeyv1connect.WorkspaceServiceArchiveWorkspaceProcedure: WorkspacesManage,

	latchkeyv1connect.ProfileServiceCreateProfileProcedure:          ProfilesManage,
	latchkeyv1connect.ProfileServiceGetProfileProcedure:             ProfilesRead,
	latchkeyv1connect.ProfileServiceListProfilesProcedure:           ProfilesRead,
	latchkeyv1connect.ProfileServiceGrantProfileWorkspaceProcedure:  ProfilesManage,
	latchkeyv1connect.ProfileServiceRevokeProfileWorkspaceProcedure: ProfilesManage,
	latchkeyv1connect.ProfileServiceListProfileWorkspacesProcedure:  ProfilesRead,
	latchkeyv1connect.ProfileServiceUpdateProfileProcedure:          ProfilesManage,
	latchkeyv1connect.ProfileServiceSuspendProfileProcedure:         ProfilesManage,
	latchkeyv1connect.ProfileServiceRestoreProfileProcedure:         ProfilesManage,

	latchkeyv1connect.AccountServiceCreateAccountProcedure: AccountsManage,
	// Any key may read its own account; Authorizer.ReadAccount asks
	// accounts:manage for any other.
	latchkeyv1connect.AccountServiceGetAccountProcedure:   AnyCaller,
	latchkeyv1connect.AccountServiceListAccountsProcedure: AccountsManage,
	// An account's own keys may change its default key permissions
	// (api_keys:manage, within reach); Authorizer.UpdateAccount asks
	// accounts:manage for anything else.
	latchkeyv1connect.AccountServiceUpdateAccountProcedure:  AnyCaller,
	latchkeyv1connect.AccountServiceSuspendAccountProcedure: AccountsManage,
	latchkeyv1connect.AccountServiceRestoreAccountProcedure: AccountsManage,

	latchkeyv1connect.AuditServiceListAuditEventsProcedure: AuditRead,

	// Not an RPC: the HTTP route of forward authentication, which answers
	// for a gateway what Verify answers.
	ForwardAuthRoute: APIKeysVerify,
}

// ForwardAuthRoute is the path of forward authentication, in the policy
// table beside the procedures.
const ForwardAuthRoute = "/forward-auth"

// Permission returns the permission procedure needs (AnyCaller for one
// every caller may call) and false for a procedure that has no policy.
func Permission(procedure string) (string, bool) {
	perm, ok := policy[procedure]
	return perm, ok
}
