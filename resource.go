package latchkey

import "time"

// Metadata is carried by every account resource. The store fills ID,
// AccountID, CreateTime, UpdateTime and ETag; callers set the rest.
type Metadata struct {
	ID         string
	AccountID  string
	Name       string
	ProfileID  string // the profile acting as this resource's principal, if any
	ExternalID string
	Labels     map[string]string
	CreateTime time.Time
	UpdateTime time.Time
	ETag       string
}

// Bare names a resource by id and name, for previews and audit events.
type Bare struct {
	ID   string
	Name string
}

// Account is a tenant. Everything else belongs to exactly one account.
type Account struct {
	Metadata
	// Operator is true only for the account made at bootstrap, whose keys
	// may hold accounts:manage and verify keys of every account.
	Operator bool
	// MaxActiveKeys caps the account's active keys; 0 means the server default.
	MaxActiveKeys int64
	// DefaultKeyPermissions are what a key issued with no permissions
	// gets, unless its Issue asks for none.
	DefaultKeyPermissions []string
	// SuspendTime is when the operator suspended the account, zero while
	// it is active; SuspendReason is the reason then given.
	SuspendTime   time.Time
	SuspendReason string
}

// Suspended reports whether the account is suspended: its keys and people
// are refused until it is restored.
func (a *Account) Suspended() bool { return !a.SuspendTime.IsZero() }

// ProfileType says what kind of principal a profile stands for.
type ProfileType int

// Profile types, numbered as in the proto enum.
const (
	ProfileTypeUnspecified ProfileType = iota
	ProfileTypeUser
	ProfileTypeAPIKey
	ProfileTypeSystem
)

// Profile is a principal at the account level: a user, an API key, or the
// account's system principal. Workspace grants attach to profiles.
type Profile struct {
	Metadata
	Type        ProfileType
	Email       string // required and unique within the account for users
	DisplayName string // the proto's spec.name
	// Permissions are what the profile may do. An API key's permissions
	// are its own profile's; the system profile holds `*`; a user holds
	// none until given some.
	Permissions []string
	// SuspendTime is when a user profile was suspended, zero while it is
	// active.
	SuspendTime time.Time
	// Identity is the OpenID identity bound to a user profile at the
	// person's first sign-in; zero until then.
	Identity Identity
}

// Suspended reports whether the profile is suspended.
func (p *Profile) Suspended() bool { return !p.SuspendTime.IsZero() }

// Identity is a person's identity at an OpenID Provider: the provider's
// issuer and the person's subject there, which together name the person
// for good (an email may change hands; a subject does not).
type Identity struct {
	Issuer  string
	Subject string
	// BindTime is when the identity was bound to a profile.
	BindTime time.Time
}

// SignIn is a verified sign-in: the identity and the email the provider
// vouches for (when EmailVerified), which binds an unbound user profile of
// the same email at the first sign-in.
type SignIn struct {
	Issuer, Subject string
	Email           string
	EmailVerified   bool
	// Expiry is when the provider's token stops vouching for it.
	Expiry time.Time
}

// PersonProfile is a user profile bound to a person, with what
// authentication needs of its account.
type PersonProfile struct {
	Profile
	AccountName      string
	AccountOperator  bool
	AccountSuspended bool
}

// WorkspaceStatus is the life-cycle state of a workspace.
type WorkspaceStatus int

// Workspace states, numbered as in the proto enum.
const (
	WorkspaceStatusUnspecified WorkspaceStatus = iota
	WorkspaceStatusActive
	WorkspaceStatusArchived
)

// Workspace is a unit of access that keys and profiles are granted to.
type Workspace struct {
	Metadata
	Description string
	Status      WorkspaceStatus
}

// Environment separates live keys from test keys; it is part of the token.
type Environment int

// Environments, numbered as in the proto enum.
const (
	EnvironmentUnspecified Environment = iota
	EnvironmentLive
	EnvironmentTest
)

// String returns the environment as it appears in a token.
func (e Environment) String() string {
	if e == EnvironmentTest {
		return "test"
	}
	return "live"
}

// KeyState is the derived state of an API key.
type KeyState int

// Key states, numbered as in the proto enum.
const (
	KeyStateUnspecified KeyState = iota
	KeyStateActive
	KeyStateRevoked
	KeyStateExpired
)

// APIKey is an account-level API key without its secret. Its own profile
// (Metadata.ProfileID) is the principal that workspace grants attach to.
type APIKey struct {
	Metadata
	Description  string
	Permissions  []string
	System       bool
	Environment  Environment
	ExpireTime   time.Time // zero: never expires
	AllowedCIDRs []string  // empty: any address
	CreatedBy    string    // profile id of the creator

	// TokenPrefix is the token's first 16 characters, safe to display.
	TokenPrefix             string
	LastUsedTime            time.Time
	RotateTime              time.Time
	PreviousTokenExpireTime time.Time
	RevokeTime              time.Time

	// WorkspacesPreview holds up to PreviewSize granted workspaces by name.
	WorkspacesPreview []Bare
	WorkspacesTotal   int64
}

// PreviewSize is the number of workspaces shown in an API key's preview.
const PreviewSize = 5

// State derives the key's state at time now: revoked wins over expired.
func (k *APIKey) State(now time.Time) KeyState {
	switch {
	case !k.RevokeTime.IsZero():
		return KeyStateRevoked
	case !k.ExpireTime.IsZero() && !now.Before(k.ExpireTime):
		return KeyStateExpired
	default:
		return KeyStateActive
	}
}

// SecretHash is the keyed hash of a key's current secret, or of its previous
// secret during a rotation grace period. The plain secret is never stored.
type SecretHash struct {
	Hash          []byte
	PepperVersion int
}

// Credential is what verification needs about a key: the key itself and its
// secret hashes. Only the store's GetCredential returns it, so hashes never
// travel with an ordinary read.
type Credential struct {
	Key      APIKey
	Operator bool // the key's account is the operator account
	// AccountSuspended is set while the key's account is suspended.
	AccountSuspended bool
	Current          SecretHash
	// Previous is set while a rotation grace period runs, until PreviousExpire.
	Previous       *SecretHash
	PreviousExpire time.Time
}

// AuditEvent records one mutation. It is written in the same transaction
// as the mutation itself.
type AuditEvent struct {
	ID        string
	AccountID string
	Time      time.Time
	Actor     Bare
	Action    string
	Target    Bare
	RequestID string
	// Reason is why, for the actions that take one (suspend, restore).
	Reason string
}

// Actor says who performs a mutation, for its audit event.
type Actor struct {
	Profile   Bare
	RequestID string
}
