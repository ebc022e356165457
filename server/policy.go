package server

import (
	"github.com/latchkey/latchkey/auth"
	"github.com/latchkey/latchkey/gen/latchkey/v1/latchkeyv1connect"
)

// anyCaller marks a method that every authenticated caller may call; the
// handler itself narrows what it returns.
const anyCaller = ""

// policy is the one table from procedure to the permission it needs. The
// authentication interceptor refuses a procedure missing from it, so a new
// RPC cannot ship unguarded.
var policy = map[string]string{
	latchkeyv1connect.ApiKeyServiceIssueProcedure:                 auth.APIKeysManage,
	latchkeyv1connect.ApiKeyServiceGetProcedure:                   auth.APIKeysRead,
	latchkeyv1connect.ApiKeyServiceListProcedure:                  auth.APIKeysRead,
	latchkeyv1connect.ApiKeyServiceUpdateProcedure:                auth.APIKeysManage,
	latchkeyv1connect.ApiKeyServiceRotateProcedure:                auth.APIKeysManage,
	latchkeyv1connect.ApiKeyServiceRevokeProcedure:                auth.APIKeysManage,
	latchkeyv1connect.ApiKeyServiceGrantWorkspaceProcedure:        auth.APIKeysManage,
	latchkeyv1connect.ApiKeyServiceRevokeWorkspaceProcedure:       auth.APIKeysManage,
	latchkeyv1connect.ApiKeyServiceListGrantedWorkspacesProcedure: auth.APIKeysRead,

	latchkeyv1connect.AuthServiceVerifyProcedure: auth.APIKeysVerify,
	latchkeyv1connect.AuthServiceWhoAmIProcedure: anyCaller,

	latchkeyv1connect.WorkspaceServiceCreateWorkspaceProcedure:  auth.WorkspacesManage,
	latchkeyv1connect.WorkspaceServiceGetWorkspaceProcedure:     auth.WorkspacesRead,
	latchkeyv1connect.WorkspaceServiceListWorkspacesProcedure:   auth.WorkspacesRead,
	latchkeyv1connect.WorkspaceServiceUpdateWorkspaceProcedure:  auth.WorkspacesManage,
	latchkeyv1connect.WorkspaceServiceArchiveWorkspaceProcedure: auth.WorkspacesManage,

	latchkeyv1connect.ProfileServiceCreateProfileProcedure:          auth.ProfilesManage,
	latchkeyv1connect.ProfileServiceGetProfileProcedure:             auth.ProfilesRead,
	latchkeyv1connect.ProfileServiceListProfilesProcedure:           auth.ProfilesRead,
	latchkeyv1connect.ProfileServiceGrantProfileWorkspaceProcedure:  auth.ProfilesManage,
	latchkeyv1connect.ProfileServiceRevokeProfileWorkspaceProcedure: auth.ProfilesManage,
	latchkeyv1connect.ProfileServiceListProfileWorkspacesProcedure:  auth.ProfilesRead,

	latchkeyv1connect.AccountServiceCreateAccountProcedure: auth.AccountsManage,
	// Any key may read its own account; the handler asks accounts:manage
	// for any other.
	latchkeyv1connect.AccountServiceGetAccountProcedure:   anyCaller,
	latchkeyv1connect.AccountServiceListAccountsProcedure: auth.AccountsManage,

	latchkeyv1connect.AuditServiceListAuditEventsProcedure: auth.AuditRead,
}
