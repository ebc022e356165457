package latchkey

// Audit actions, one per kind of mutation.
const (
	ActionAccountBootstrap = "account.bootstrap"
	ActionAccountCreate    = "account.create"
	ActionAccountUpdate    = "account.update"
	ActionAccountSuspend   = "account.suspend"
	ActionAccountRestore   = "account.restore"
	ActionProfileCreate    = "profile.create"
	ActionProfileUpdate    = "profile.update"
	ActionProfileBind      = "profile.bind"
	ActionProfileSuspend   = "profile.suspend"
	ActionProfileRestore   = "profile.restore"
	ActionWorkspaceCreate  = "workspace.create"
	ActionWorkspaceUpdate  = "workspace.update"
	ActionWorkspaceArchive = "workspace.archive"
	ActionWorkspaceGrant   = "workspace.grant"
	ActionWorkspaceRevoke  = "workspace.revoke"
	ActionAPIKeyIssue      = "api_key.issue"
	ActionAPIKeyUpdate     = "api_key.update"
	ActionAPIKeyRotate     = "api_key.rotate"
	ActionAPIKeyRevoke     = "api_key.revoke"
)
