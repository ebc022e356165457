// Package observe decorates a latchkey.Store with metrics: how long each
// method takes and how it ends, by its error code, so that no query
// carries instruments of its own. It changes nothing of what the store
// does; since it implements the whole interface, a method cannot pass by
// it unobserved.
package observe

import (
	"context"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/latchkey/latchkey"
)

// Store is a latchkey.Store that records latchkey.store.call.duration,
// by method and code ("ok" or a latchkey.Code), for every call.
type Store struct {
	inner    latchkey.Store
	duration metric.Float64Histogram
}

var _ latchkey.Store = (*Store)(nil)

// New returns inner observed through meter.
func New(inner latchkey.Store, meter metric.Meter) (*Store, error) {
	d, err := meter.Float64Histogram("latchkey.store.call.duration",
		metric.WithUnit("s"),
		metric.WithDescription("Store calls by method and by how they ended: ok, or the error code (unavailable: the database could not answer)."),
		metric.WithExplicitBucketBoundaries(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5))
	if err != nil {
		return nil, err
	}
	return &Store{inner: inner, duration: d}, nil
}

func (s *Store) observe(ctx context.Context, method string, start time.Time, err *error) {
	code := "ok"
	if *err != nil {
		code = string(latchkey.ErrorCode(*err))
	}
	s.duration.Record(ctx, time.Since(start).Seconds(), metric.WithAttributes(
		attribute.String("method", method), attribute.String("code", code)))
}

// Follow is the inner store's: following the log is not a call.
func (s *Store) Follow(sink latchkey.ChangeSink) (latchkey.ChangeFeed, error) {
	return s.inner.Follow(sink)
}

// Close is the inner store's.
func (s *Store) Close() error { return s.inner.Close() }

// Bootstrap is the inner store's, observed.
func (s *Store) Bootstrap(ctx context.Context, in latchkey.NewAccount) (r0 latchkey.Account, r1 latchkey.APIKey, err error) {
	defer s.observe(ctx, "Bootstrap", time.Now(), &err)
	return s.inner.Bootstrap(ctx, in)
}

// HasKeys is the inner store's, observed.
func (s *Store) HasKeys(ctx context.Context) (r0 bool, err error) {
	defer s.observe(ctx, "HasKeys", time.Now(), &err)
	return s.inner.HasKeys(ctx)
}

// CheckPeppers is the inner store's, observed.
func (s *Store) CheckPeppers(ctx context.Context, fingerprints map[int]string) (r0 []int, err error) {
	defer s.observe(ctx, "CheckPeppers", time.Now(), &err)
	return s.inner.CheckPeppers(ctx, fingerprints)
}

// PepperUsage is the inner store's, observed.
func (s *Store) PepperUsage(ctx context.Context) (r0 []latchkey.PepperUse, err error) {
	defer s.observe(ctx, "PepperUsage", time.Now(), &err)
	return s.inner.PepperUsage(ctx)
}

// RetirePepper is the inner store's, observed.
func (s *Store) RetirePepper(ctx context.Context, id int, force bool) (r0 []string, err error) {
	defer s.observe(ctx, "RetirePepper", time.Now(), &err)
	return s.inner.RetirePepper(ctx, id, force)
}

// CreateAccount is the inner store's, observed.
func (s *Store) CreateAccount(ctx context.Context, actor latchkey.Actor, in latchkey.NewAccount) (r0 latchkey.Account, r1 latchkey.APIKey, err error) {
	defer s.observe(ctx, "CreateAccount", time.Now(), &err)
	return s.inner.CreateAccount(ctx, actor, in)
}

// GetAccount is the inner store's, observed.
func (s *Store) GetAccount(ctx context.Context, id string) (r0 latchkey.Account, err error) {
	defer s.observe(ctx, "GetAccount", time.Now(), &err)
	return s.inner.GetAccount(ctx, id)
}

// ListAccounts is the inner store's, observed.
func (s *Store) ListAccounts(ctx context.Context, page latchkey.PageRequest) (r0 latchkey.Page[latchkey.Account], err error) {
	defer s.observe(ctx, "ListAccounts", time.Now(), &err)
	return s.inner.ListAccounts(ctx, page)
}

// UpdateAccount is the inner store's, observed.
func (s *Store) UpdateAccount(ctx context.Context, actor latchkey.Actor, in latchkey.AccountUpdate) (r0 latchkey.Account, err error) {
	defer s.observe(ctx, "UpdateAccount", time.Now(), &err)
	return s.inner.UpdateAccount(ctx, actor, in)
}

// SuspendAccount is the inner store's, observed.
func (s *Store) SuspendAccount(ctx context.Context, actor latchkey.Actor, id, reason string) (r0 latchkey.Account, err error) {
	defer s.observe(ctx, "SuspendAccount", time.Now(), &err)
	return s.inner.SuspendAccount(ctx, actor, id, reason)
}

// RestoreAccount is the inner store's, observed.
func (s *Store) RestoreAccount(ctx context.Context, actor latchkey.Actor, id, reason string) (r0 latchkey.Account, err error) {
	defer s.observe(ctx, "RestoreAccount", time.Now(), &err)
	return s.inner.RestoreAccount(ctx, actor, id, reason)
}

// UpdateProfile is the inner store's, observed.
func (s *Store) UpdateProfile(ctx context.Context, actor latchkey.Actor, in latchkey.ProfileUpdate) (r0 latchkey.Profile, err error) {
	defer s.observe(ctx, "UpdateProfile", time.Now(), &err)
	return s.inner.UpdateProfile(ctx, actor, in)
}

// SuspendProfile is the inner store's, observed.
func (s *Store) SuspendProfile(ctx context.Context, actor latchkey.Actor, accountID, id string, suspend bool, guard latchkey.ProfileGuard) (r0 latchkey.Profile, err error) {
	defer s.observe(ctx, "SuspendProfile", time.Now(), &err)
	return s.inner.SuspendProfile(ctx, actor, accountID, id, suspend, guard)
}

// SignIn is the inner store's, observed.
func (s *Store) SignIn(ctx context.Context, in latchkey.SignIn) (r0 []latchkey.PersonProfile, err error) {
	defer s.observe(ctx, "SignIn", time.Now(), &err)
	return s.inner.SignIn(ctx, in)
}

// CreateProfile is the inner store's, observed.
func (s *Store) CreateProfile(ctx context.Context, actor latchkey.Actor, in latchkey.Profile) (r0 latchkey.Profile, err error) {
	defer s.observe(ctx, "CreateProfile", time.Now(), &err)
	return s.inner.CreateProfile(ctx, actor, in)
}

// GetProfile is the inner store's, observed.
func (s *Store) GetProfile(ctx context.Context, accountID, id string) (r0 latchkey.Profile, err error) {
	defer s.observe(ctx, "GetProfile", time.Now(), &err)
	return s.inner.GetProfile(ctx, accountID, id)
}

// ListProfiles is the inner store's, observed.
func (s *Store) ListProfiles(ctx context.Context, q latchkey.ProfileQuery) (r0 latchkey.Page[latchkey.Profile], err error) {
	defer s.observe(ctx, "ListProfiles", time.Now(), &err)
	return s.inner.ListProfiles(ctx, q)
}

// CreateWorkspace is the inner store's, observed.
func (s *Store) CreateWorkspace(ctx context.Context, actor latchkey.Actor, in latchkey.Workspace) (r0 latchkey.Workspace, err error) {
	defer s.observe(ctx, "CreateWorkspace", time.Now(), &err)
	return s.inner.CreateWorkspace(ctx, actor, in)
}

// GetWorkspace is the inner store's, observed.
func (s *Store) GetWorkspace(ctx context.Context, accountID, id string) (r0 latchkey.Workspace, err error) {
	defer s.observe(ctx, "GetWorkspace", time.Now(), &err)
	return s.inner.GetWorkspace(ctx, accountID, id)
}

// ListWorkspaces is the inner store's, observed.
func (s *Store) ListWorkspaces(ctx context.Context, q latchkey.WorkspaceQuery) (r0 latchkey.Page[latchkey.Workspace], err error) {
	defer s.observe(ctx, "ListWorkspaces", time.Now(), &err)
	return s.inner.ListWorkspaces(ctx, q)
}

// UpdateWorkspace is the inner store's, observed.
func (s *Store) UpdateWorkspace(ctx context.Context, actor latchkey.Actor, in latchkey.WorkspaceUpdate) (r0 latchkey.Workspace, err error) {
	defer s.observe(ctx, "UpdateWorkspace", time.Now(), &err)
	return s.inner.UpdateWorkspace(ctx, actor, in)
}

// ArchiveWorkspace is the inner store's, observed.
func (s *Store) ArchiveWorkspace(ctx context.Context, actor latchkey.Actor, accountID, id string) (r0 latchkey.Workspace, err error) {
	defer s.observe(ctx, "ArchiveWorkspace", time.Now(), &err)
	return s.inner.ArchiveWorkspace(ctx, actor, accountID, id)
}

// GrantWorkspace is the inner store's, observed.
func (s *Store) GrantWorkspace(ctx context.Context, actor latchkey.Actor, g latchkey.Grant) (err error) {
	defer s.observe(ctx, "GrantWorkspace", time.Now(), &err)
	return s.inner.GrantWorkspace(ctx, actor, g)
}

// RevokeWorkspace is the inner store's, observed.
func (s *Store) RevokeWorkspace(ctx context.Context, actor latchkey.Actor, g latchkey.Grant) (err error) {
	defer s.observe(ctx, "RevokeWorkspace", time.Now(), &err)
	return s.inner.RevokeWorkspace(ctx, actor, g)
}

// ListProfileWorkspaces is the inner store's, observed.
func (s *Store) ListProfileWorkspaces(ctx context.Context, q latchkey.GrantQuery) (r0 latchkey.Page[latchkey.Workspace], err error) {
	defer s.observe(ctx, "ListProfileWorkspaces", time.Now(), &err)
	return s.inner.ListProfileWorkspaces(ctx, q)
}

// ProfilePermissions is the inner store's, observed.
func (s *Store) ProfilePermissions(ctx context.Context, accountID, profileID string) (r0 []string, err error) {
	defer s.observe(ctx, "ProfilePermissions", time.Now(), &err)
	return s.inner.ProfilePermissions(ctx, accountID, profileID)
}

// IssueKey is the inner store's, observed.
func (s *Store) IssueKey(ctx context.Context, actor latchkey.Actor, in latchkey.NewAPIKey) (r0 latchkey.APIKey, err error) {
	defer s.observe(ctx, "IssueKey", time.Now(), &err)
	return s.inner.IssueKey(ctx, actor, in)
}

// GetKey is the inner store's, observed.
func (s *Store) GetKey(ctx context.Context, accountID, id string) (r0 latchkey.APIKey, err error) {
	defer s.observe(ctx, "GetKey", time.Now(), &err)
	return s.inner.GetKey(ctx, accountID, id)
}

// ListKeys is the inner store's, observed.
func (s *Store) ListKeys(ctx context.Context, q latchkey.KeyQuery) (r0 latchkey.Page[latchkey.APIKey], err error) {
	defer s.observe(ctx, "ListKeys", time.Now(), &err)
	return s.inner.ListKeys(ctx, q)
}

// UpdateKey is the inner store's, observed.
func (s *Store) UpdateKey(ctx context.Context, actor latchkey.Actor, in latchkey.KeyUpdate) (r0 latchkey.APIKey, err error) {
	defer s.observe(ctx, "UpdateKey", time.Now(), &err)
	return s.inner.UpdateKey(ctx, actor, in)
}

// RotateKey is the inner store's, observed.
func (s *Store) RotateKey(ctx context.Context, actor latchkey.Actor, in latchkey.KeyRotation) (r0 latchkey.APIKey, err error) {
	defer s.observe(ctx, "RotateKey", time.Now(), &err)
	return s.inner.RotateKey(ctx, actor, in)
}

// RevokeKey is the inner store's, observed.
func (s *Store) RevokeKey(ctx context.Context, actor latchkey.Actor, accountID, id string) (r0 latchkey.APIKey, err error) {
	defer s.observe(ctx, "RevokeKey", time.Now(), &err)
	return s.inner.RevokeKey(ctx, actor, accountID, id)
}

// GetCredential is the inner store's, observed.
func (s *Store) GetCredential(ctx context.Context, keyID string) (r0 latchkey.Credential, err error) {
	defer s.observe(ctx, "GetCredential", time.Now(), &err)
	return s.inner.GetCredential(ctx, keyID)
}

// RecordKeyUse is the inner store's, observed.
func (s *Store) RecordKeyUse(ctx context.Context, uses map[string]time.Time) (err error) {
	defer s.observe(ctx, "RecordKeyUse", time.Now(), &err)
	return s.inner.RecordKeyUse(ctx, uses)
}

// RehashKeys is the inner store's, observed.
func (s *Store) RehashKeys(ctx context.Context, rehashes []latchkey.Rehash) (err error) {
	defer s.observe(ctx, "RehashKeys", time.Now(), &err)
	return s.inner.RehashKeys(ctx, rehashes)
}

// ListAuditEvents is the inner store's, observed.
func (s *Store) ListAuditEvents(ctx context.Context, q latchkey.AuditQuery) (r0 latchkey.Page[latchkey.AuditEvent], err error) {
	defer s.observe(ctx, "ListAuditEvents", time.Now(), &err)
	return s.inner.ListAuditEvents(ctx, q)
}

// Ping is the inner store's, observed.
func (s *Store) Ping(ctx context.Context) (err error) {
	defer s.observe(ctx, "Ping", time.Now(), &err)
	return s.inner.Ping(ctx)
}

// WorkspaceAccess is the inner store's, observed.
func (s *Store) WorkspaceAccess(ctx context.Context, accountID, profileID, workspaceID string) (r0 bool, err error) {
	defer s.observe(ctx, "WorkspaceAccess", time.Now(), &err)
	return s.inner.WorkspaceAccess(ctx, accountID, profileID, workspaceID)
}

// WorkspacesBeyond is the inner store's, observed.
func (s *Store) WorkspacesBeyond(ctx context.Context, accountID, profileID, reachProfileID string) (r0 bool, err error) {
	defer s.observe(ctx, "WorkspacesBeyond", time.Now(), &err)
	return s.inner.WorkspacesBeyond(ctx, accountID, profileID, reachProfileID)
}

// ReadChanges is the inner store's, observed.
func (s *Store) ReadChanges(ctx context.Context, after int64, limit int) (r0 []latchkey.Change, err error) {
	defer s.observe(ctx, "ReadChanges", time.Now(), &err)
	return s.inner.ReadChanges(ctx, after, limit)
}

// LastChange is the inner store's, observed.
func (s *Store) LastChange(ctx context.Context) (r0 int64, err error) {
	defer s.observe(ctx, "LastChange", time.Now(), &err)
	return s.inner.LastChange(ctx)
}
