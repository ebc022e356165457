package latchkey

import (
	"context"
	"time"
)

// Store persists every resource. Each method is one transaction: a mutation
// and its audit event land together or not at all. Methods scoped to an
// account return CodeNotFound for a resource of another account, exactly as
// for one that does not exist. Errors are *Error values; no driver error
// escapes an implementation.
//
// Beside the codes each method lists, every method may return
// CodeUnavailable (the database cannot be reached, or the call's context
// ended first) and CodeInternal (a fault of the store), and every write
// CodeResourceExhausted when the database's storage is full. A write that
// fails has written nothing.
type Store interface {
	// Bootstrap creates the operator account, its system profile and system
	// key if and only if the store holds no account yet. Errors:
	// CodeAlreadyExists when an account exists, so concurrent starts make
	// exactly one operator.
	Bootstrap(ctx context.Context, in NewAccount) (Account, APIKey, error)
	// HasKeys reports whether any API key has ever been stored, so that a
	// server can refuse to start with a missing pepper. Errors: only the
	// common ones.
	HasKeys(ctx context.Context) (bool, error)
	// CheckPeppers compares the peppers a server holds, as fingerprints by
	// pepper id, with what the database knows, and records the ones it
	// does not know yet. It returns the ids of held peppers that were
	// retired. In a store with no key the held peppers replace whatever
	// was recorded. Errors: CodeFailedPrecondition when a held pepper's
	// fingerprint is not the one recorded for its id (the wrong pepper
	// file), or when keys that can still be verified are hashed with a
	// pepper the server lacks and that was not retired (the message names
	// it), so that such a server refuses to start instead of turning keys
	// away.
	CheckPeppers(ctx context.Context, fingerprints map[int]string) (retired []int, err error)
	// PepperUsage returns, for every pepper that a key's hash uses or that
	// a server recorded, how many keys use it, by pepper id. Errors: only
	// the common ones.
	PepperUsage(ctx context.Context) ([]PepperUse, error)
	// RetirePepper records pepper id as retired and returns the ids of the
	// keys, neither revoked nor expired, still hashed with it (their
	// current or in-grace previous secret). Errors: CodeFailedPrecondition
	// while such keys exist, unless force; then they can no longer be
	// verified by a server without the pepper.
	RetirePepper(ctx context.Context, id int, force bool) (stranded []string, err error)
	// RehashKeys applies rehashes in one write. A rehash whose key no
	// longer holds its Old hash (rotated, revoked and rotated, or rehashed
	// already) is skipped. No change is recorded: both hashes verify the
	// same secret. Errors: only the common ones.
	RehashKeys(ctx context.Context, rehashes []Rehash) error

	// CreateAccount creates an account with its system profile and system
	// key, and its audit event. Errors: only the common ones.
	CreateAccount(ctx context.Context, actor Actor, in NewAccount) (Account, APIKey, error)
	// GetAccount returns an account. Errors: CodeNotFound.
	GetAccount(ctx context.Context, id string) (Account, error)
	// ListAccounts lists every account, oldest first. Errors:
	// CodeInvalidArgument (field page_token) for a page token this store
	// did not make.
	ListAccounts(ctx context.Context, page PageRequest) (Page[Account], error)
	// UpdateAccount changes the fields of an account named in in.Paths.
	// Errors: CodeNotFound; CodeAborted when in.ETag is set and stale;
	// CodeInvalidArgument (field update_mask) for a path that cannot be
	// updated; and in.Guard's error, which aborts the update.
	UpdateAccount(ctx context.Context, actor Actor, in AccountUpdate) (Account, error)
	// SuspendAccount suspends an account and records the change (kind
	// ChangeAccountSuspended) and its audit event, with reason. Suspending
	// a suspended account returns it unchanged and writes nothing.
	// Errors: CodeNotFound; CodeFailedPrecondition for the operator
	// account.
	SuspendAccount(ctx context.Context, actor Actor, id, reason string) (Account, error)
	// RestoreAccount ends a suspension, recording the change (kind
	// ChangeAccountRestored) and its audit event, with reason. Restoring
	// an active account returns it unchanged and writes nothing. Errors:
	// CodeNotFound.
	RestoreAccount(ctx context.Context, actor Actor, id, reason string) (Account, error)

	// CreateProfile creates a user profile. Errors: CodeAlreadyExists
	// (field spec.email) for an email already in the account; CodeNotFound
	// for an unknown account.
	CreateProfile(ctx context.Context, actor Actor, in Profile) (Profile, error)
	// GetProfile returns a profile of the account. Errors: CodeNotFound.
	GetProfile(ctx context.Context, accountID, id string) (Profile, error)
	// ListProfiles lists an account's profiles. Errors:
	// CodeInvalidArgument (field page_token).
	ListProfiles(ctx context.Context, q ProfileQuery) (Page[Profile], error)
	// UpdateProfile changes the fields of a user profile named in
	// in.Paths, recording a change (ChangePersonChanged). Errors:
	// CodeNotFound; CodeAborted when in.ETag is set and stale;
	// CodeFailedPrecondition for a profile that is not a user's;
	// CodeAlreadyExists (field spec.email) for an email another user of
	// the account has; CodeInvalidArgument (field update_mask) for a path
	// that cannot be updated; and in.Guard's error, which aborts it.
	UpdateProfile(ctx context.Context, actor Actor, in ProfileUpdate) (Profile, error)
	// SuspendProfile suspends a user profile, or with suspend false
	// restores it, recording a change (ChangePersonChanged) and its audit
	// event. A profile already in that state is returned unchanged and
	// nothing is written. Errors: CodeNotFound; CodeFailedPrecondition for
	// a profile that is not a user's; and guard's error, which aborts it.
	SuspendProfile(ctx context.Context, actor Actor, accountID, id string, suspend bool, guard ProfileGuard) (Profile, error)
	// SignIn returns the user profiles bound to the identity, in every
	// account, oldest account first. With a verified email it first binds
	// to the identity every unbound user profile of that email in an
	// account where no profile is bound to it yet, with an audit event
	// each (ChangePersonChanged too). Errors: only the common ones.
	SignIn(ctx context.Context, in SignIn) ([]PersonProfile, error)

	// CreateWorkspace creates a workspace. Errors: CodeNotFound for an
	// unknown account.
	CreateWorkspace(ctx context.Context, actor Actor, in Workspace) (Workspace, error)
	// GetWorkspace returns a workspace of the account. Errors:
	// CodeNotFound.
	GetWorkspace(ctx context.Context, accountID, id string) (Workspace, error)
	// ListWorkspaces lists an account's workspaces. Errors:
	// CodeInvalidArgument (field page_token).
	ListWorkspaces(ctx context.Context, q WorkspaceQuery) (Page[Workspace], error)
	// UpdateWorkspace changes a workspace. Errors: CodeNotFound;
	// CodeAborted when in.ETag is set and stale; CodeFailedPrecondition
	// for an archived workspace; CodeInvalidArgument (field update_mask)
	// for a path that cannot be updated.
	UpdateWorkspace(ctx context.Context, actor Actor, in WorkspaceUpdate) (Workspace, error)
	// ArchiveWorkspace is idempotent; grants stay recorded but admit
	// nothing. Errors: CodeNotFound.
	ArchiveWorkspace(ctx context.Context, actor Actor, accountID, id string) (Workspace, error)

	// GrantWorkspace attaches a workspace to a profile (an API key's
	// grants live on its own profile). Idempotent. Errors: CodeNotFound
	// for an unknown profile or workspace; CodeFailedPrecondition for an
	// archived workspace.
	GrantWorkspace(ctx context.Context, actor Actor, g Grant) error
	// RevokeWorkspace detaches a workspace from a profile. Idempotent.
	// Errors: CodeNotFound for an unknown profile or workspace.
	RevokeWorkspace(ctx context.Context, actor Actor, g Grant) error
	// ListProfileWorkspaces lists the workspaces granted to a profile.
	// Errors: CodeNotFound for an unknown profile; CodeInvalidArgument
	// (field page_token).
	ListProfileWorkspaces(ctx context.Context, q GrantQuery) (Page[Workspace], error)
	GrantReader
	// ProfilePermissions returns the permissions of a profile, which are
	// those of the keys acting through it (an API key's own profile, or
	// the system profile of the system key). Errors: CodeNotFound.
	ProfilePermissions(ctx context.Context, accountID, profileID string) ([]string, error)

	// IssueKey stores a key, its own profile (type API_KEY), its initial
	// grants and its audit event together. The caller chooses in.Key.ID
	// because the token carries it. Errors: CodeResourceExhausted when the
	// account's active keys would exceed its quota (the account's own
	// max_active_keys, read in the same transaction, or else
	// in.DefaultMaxActiveKeys); CodeNotFound for an unknown account;
	// CodeNotFound or CodeFailedPrecondition (field
	// initial_workspace_ids) for a workspace that is unknown or archived.
	IssueKey(ctx context.Context, actor Actor, in NewAPIKey) (APIKey, error)
	// GetKey returns a key of the account with its workspace preview.
	// Errors: CodeNotFound.
	GetKey(ctx context.Context, accountID, id string) (APIKey, error)
	// ListKeys lists an account's keys. Errors: CodeInvalidArgument (field
	// page_token, or state for an unknown state).
	ListKeys(ctx context.Context, q KeyQuery) (Page[APIKey], error)
	// UpdateKey changes a key. Errors: CodeNotFound; CodeAborted when
	// in.ETag is set and stale; CodeFailedPrecondition for a revoked key;
	// CodeResourceExhausted when the update makes an expired key active
	// again and the account's quota is full, as Issue is;
	// CodeInvalidArgument (field update_mask) for a path that cannot be
	// updated, or a system key's permissions or expiry; and in.Guard's
	// error, which aborts the update.
	UpdateKey(ctx context.Context, actor Actor, in KeyUpdate) (APIKey, error)
	// RotateKey replaces the key's secret hash. With a grace period the
	// current hash becomes the previous one until in.PreviousExpire; without
	// one any previous hash is dropped. Errors: CodeNotFound;
	// CodeFailedPrecondition for a revoked or expired key; and in.Guard's
	// error, which aborts the rotation.
	RotateKey(ctx context.Context, actor Actor, in KeyRotation) (APIKey, error)
	// RevokeKey is idempotent: revoking a revoked key returns it unchanged
	// and writes no audit event. Errors: CodeNotFound;
	// CodeFailedPrecondition for the system key.
	RevokeKey(ctx context.Context, actor Actor, accountID, id string) (APIKey, error)
	// GetCredential returns a key and its secret hashes by key id, in any
	// account, with the state of the key's account: verification looks
	// keys up by the id inside the token. Errors: CodeNotFound.
	GetCredential(ctx context.Context, keyID string) (Credential, error)
	// RecordKeyUse sets last-used times in one write; older times than the
	// stored ones are ignored, and so are unknown keys. Errors: only the
	// common ones.
	RecordKeyUse(ctx context.Context, uses map[string]time.Time) error

	// ListAuditEvents lists an account's audit events. Errors:
	// CodeInvalidArgument (field page_token).
	ListAuditEvents(ctx context.Context, q AuditQuery) (Page[AuditEvent], error)

	// ChangeLog records, in the same transaction, every write above that
	// can change a verdict (UpdateKey, RotateKey, RevokeKey,
	// GrantWorkspace, RevokeWorkspace, ArchiveWorkspace, SuspendAccount,
	// RestoreAccount), and feeds it to followers.
	ChangeLog

	// Ping reports whether the database answers now. Errors: only the
	// common ones.
	Ping(ctx context.Context) error

	// Close releases the database. Errors: only the common ones.
	Close() error
}

// NewAccount is the input of Bootstrap and CreateAccount. SystemKey is the
// account's first key: the system key, which can be rotated but not revoked.
type NewAccount struct {
	Name                  string
	Operator              bool
	MaxActiveKeys         int64
	DefaultKeyPermissions []string
	// OwnerEmail, when set, makes a user profile holding `*` with the
	// account, bound at its owner's first sign-in.
	OwnerEmail string
	SystemKey  NewAPIKey
}

// AccountUpdate changes the fields of an account named in Paths
// ("metadata.name", "spec.max_active_keys",
// "spec.default_key_permissions"). A non-empty stale ETag is CodeAborted.
type AccountUpdate struct {
	ID      string
	ETag    string
	Paths   []string
	Account Account // the new values of the fields in Paths
	// Guard, when set, decides inside the transaction, on the account as
	// the transaction sees it, whether the update may go ahead.
	Guard func(ctx context.Context, current Account) error
}

// NewAPIKey is the input of IssueKey. Key.ID, Key.AccountID, Key.Name and the
// spec fields come from the caller; the store sets the rest of the metadata
// and creates the key's profile, named after the key.
type NewAPIKey struct {
	Key                 APIKey
	Secret              SecretHash
	InitialWorkspaceIDs []string
	// DefaultMaxActiveKeys is the quota of an account that sets none;
	// zero with no account setting means no quota.
	DefaultMaxActiveKeys int64
}

// KeyUpdate changes the fields of a key named in Paths (proto field mask
// paths such as "metadata.name" or "spec.permissions"). A non-empty ETag
// that no longer matches is CodeAborted.
type KeyUpdate struct {
	AccountID string
	ID        string
	ETag      string
	Paths     []string
	Key       APIKey // the new values of the fields in Paths
	// DefaultMaxActiveKeys is the quota of an account that sets none, for
	// an update that revives an expired key; as in NewAPIKey.
	DefaultMaxActiveKeys int64
	// Guard, when set, decides inside the transaction whether the update
	// may go ahead.
	Guard KeyGuard
}

// GrantReader answers what authorization asks about workspace grants. The
// Store implements it over the database, and a KeyGuard is given one that
// reads inside the write's own transaction.
type GrantReader interface {
	// WorkspaceAccess reports whether the profile is granted the workspace
	// and the workspace is active. A workspace of another account is false.
	WorkspaceAccess(ctx context.Context, accountID, profileID, workspaceID string) (bool, error)
	// WorkspacesBeyond reports whether profileID is granted an active
	// workspace of the account that reachProfileID is not granted, for the
	// rule that a caller changes only what is within its reach.
	WorkspacesBeyond(ctx context.Context, accountID, profileID, reachProfileID string) (bool, error)
}

// KeyGuard decides, inside a write's transaction and on the key as that
// transaction sees it, whether the write may go ahead; its error aborts
// the write. grants reads within the same transaction. A guard closes the
// gap between an authorization decided on one read and a write made after
// another writer changed the key.
type KeyGuard func(ctx context.Context, key APIKey, grants GrantReader) error

// ProfileUpdate changes the fields of a user profile named in Paths
// ("metadata.name", "metadata.labels", "metadata.external_id",
// "spec.email", "spec.name", "spec.permissions").
type ProfileUpdate struct {
	AccountID string
	ID        string
	ETag      string
	Paths     []string
	Profile   Profile // the new values of the fields in Paths
	// Guard, when set, decides inside the transaction whether the update
	// may go ahead.
	Guard ProfileGuard
}

// ProfileGuard decides, inside a write's transaction and on the profile
// as that transaction sees it, whether the write may go ahead; as
// KeyGuard for keys.
type ProfileGuard func(ctx context.Context, p Profile, grants GrantReader) error

// KeyRotation is the input of RotateKey.
type KeyRotation struct {
	AccountID string
	ID        string
	// Guard, when set, decides inside the transaction whether the
	// rotation may go ahead.
	Guard          KeyGuard
	Secret         SecretHash
	TokenPrefix    string
	PreviousExpire time.Time // zero: the old secret stops at once
}

// WorkspaceUpdate changes the fields of a workspace named in Paths
// ("metadata.name", "metadata.labels", "metadata.external_id",
// "spec.description"). A non-empty stale ETag is CodeAborted.
type WorkspaceUpdate struct {
	AccountID string
	ID        string
	ETag      string
	Paths     []string
	Workspace Workspace
}

// Grant names a profile and a workspace of one account. Target is the
// resource the audit event names (the API key for a key's profile).
type Grant struct {
	AccountID   string
	ProfileID   string
	WorkspaceID string
	Target      Bare
}

// KeyQuery filters ListKeys.
type KeyQuery struct {
	AccountID   string
	State       KeyState // unspecified: active only
	Labels      map[string]string
	WorkspaceID string
	Page        PageRequest
}

// WorkspaceQuery filters ListWorkspaces.
type WorkspaceQuery struct {
	AccountID string
	Status    WorkspaceStatus // unspecified: active only
	Labels    map[string]string
	Page      PageRequest
}

// ProfileQuery filters ListProfiles.
type ProfileQuery struct {
	AccountID string
	Type      ProfileType // unspecified: every type
	Labels    map[string]string
	Page      PageRequest
}

// GrantQuery lists the workspaces of one profile.
type GrantQuery struct {
	AccountID string
	ProfileID string
	Page      PageRequest
}

// AuditQuery filters ListAuditEvents, newest first by default. Every
// filter that is set must match.
type AuditQuery struct {
	AccountID string
	TargetID  string // optional
	Action    string // optional, such as ActionAPIKeyRevoke
	ActorID   string // optional: the acting profile
	// Start and End bound the events' times, Start included and End not;
	// either may be zero, for no bound.
	Start, End time.Time
	Page       PageRequest
}
