package latchkey

import (
	"context"
	"time"
)

// ChangeKind says what a Change did.
type ChangeKind string

// The kinds of change: every write that can change a verification verdict
// records one of them, in the write's own transaction.
const (
	// ChangeKeyUpdated: a key's spec or metadata changed (Update).
	ChangeKeyUpdated ChangeKind = "key.updated"
	// ChangeKeyRotated: a key got a new secret (Rotate).
	ChangeKeyRotated ChangeKind = "key.rotated"
	// ChangeKeyRevoked: a key was revoked.
	ChangeKeyRevoked ChangeKind = "key.revoked"
	// ChangeGrantsChanged: a workspace was granted to a profile or
	// withdrawn from it. KeyID names the key acting through the profile,
	// if one does.
	ChangeGrantsChanged ChangeKind = "profile.grants_changed"
	// ChangeWorkspaceArchived: a workspace of the account was archived,
	// which changes the verdict of every key granted it; only WorkspaceID
	// names what changed.
	ChangeWorkspaceArchived ChangeKind = "workspace.archived"
	// ChangeAccountSuspended: the account was suspended, which refuses
	// every key of it; only AccountID names what changed.
	ChangeAccountSuspended ChangeKind = "account.suspended"
	// ChangeAccountRestored: the account's suspension ended, which gives
	// every key of it its own verdict back; only AccountID names it.
	ChangeAccountRestored ChangeKind = "account.restored"
	// ChangePersonChanged: a user profile's permissions, binding or
	// suspension changed. No key's verdict depends on it, so only
	// ProfileID names it; the caches of signed-in people follow it.
	ChangePersonChanged ChangeKind = "profile.person_changed"
)

// IsAccountChange reports whether k changed a whole account's keys at
// once, so that a cache drops every key of Change.AccountID.
func (k ChangeKind) IsAccountChange() bool {
	return k == ChangeAccountSuspended || k == ChangeAccountRestored
}

// Change is one entry of the change log.
type Change struct {
	// Seq is the change's position in the log. Sequence numbers commit in
	// order and without holes, so a follower that reads past the last one
	// it applied never steps over a change that commits late.
	Seq       int64
	AccountID string
	Kind      ChangeKind
	// KeyID is the API key whose verdict may have changed, or "".
	KeyID string
	// ProfileID is the profile that changed (a key's own profile for key
	// changes), or "".
	ProfileID string
	// WorkspaceID is the workspace granted, withdrawn or archived, or "".
	WorkspaceID string
	// Time is when the change was written, by the writer's clock.
	Time time.Time
	// Source is how this process learned of the change. The follower
	// that applies it sets it; it is not stored.
	Source ChangeSource
}

// ChangeSource says how a process learned of a change, for metrics: the
// three ways reach a cache at different speeds, and a deployment whose
// notifications are lost shows it as changes arriving by poll.
type ChangeSource string

// The sources of a change.
const (
	// ChangeFromWrite: this process made the write, and its followers
	// applied the change before the write returned.
	ChangeFromWrite ChangeSource = "write"
	// ChangeFromNotification: the database announced the change
	// (PostgreSQL's NOTIFY), and the follower read it then.
	ChangeFromNotification ChangeSource = "notification"
	// ChangeFromPoll: the follower's periodic read of the log found it.
	ChangeFromPoll ChangeSource = "poll"
)

// ChangeSink is what a follower of the change log feeds: a cache that must
// drop what a change may have made wrong.
type ChangeSink interface {
	// ApplyChange is called with each change once it committed, in order.
	ApplyChange(c Change)
	// ResetChanges is called when changes may have been missed (the log
	// was pruned past the follower's position, or the follower could not
	// read it after a write): the sink must drop everything it holds.
	ResetChanges()
}

// ChangeFeed is a running follower of the change log, made by
// ChangeLog.Follow.
type ChangeFeed interface {
	// Fresh reports whether every change committed elsewhere (by another
	// process on the same database) more than the store's sync bound
	// before now has reached the sink, so cached verdicts may be trusted.
	// A store that no other process writes is always fresh.
	Fresh(now time.Time) bool
	// Close stops following.
	Close()
}

// ChangeLog is the ordered log of changes that can alter a verdict, kept
// by the store. It is the one source that invalidates verification caches,
// locally and across replicas, and what other services watch.
type ChangeLog interface {
	// ReadChanges returns up to limit changes with Seq > after, in order.
	// Errors: CodeUnavailable when the database cannot answer.
	ReadChanges(ctx context.Context, after int64, limit int) ([]Change, error)
	// LastChange returns the sequence number of the newest change, 0 for
	// none. Errors: CodeUnavailable.
	LastChange(ctx context.Context) (int64, error)
	// Follow feeds sink every change committed from now on: a write made
	// through this store is applied to sink before the write returns; a
	// write made by another process sharing the database (a replica) is
	// applied within the store's sync bound, and the returned feed says
	// when that cannot be promised. Errors: CodeUnavailable.
	Follow(sink ChangeSink) (ChangeFeed, error)
}
