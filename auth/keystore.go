package auth

import (
	"context"
	"time"

	"github.com/latchkey/latchkey"
)

// KeyStore is what verification needs of the store: four of its methods,
// so that a verifier can be built over anything that answers them.
// latchkey.Store implements it.
type KeyStore interface {
	// GetCredential returns a key and its secret hashes by key id, in any
	// account. Errors: OutcomeNotFound for an unknown key; CodeUnavailable
	// when the database cannot answer.
	GetCredential(ctx context.Context, keyID string) (latchkey.Credential, error)
	// WorkspaceAccess reports whether the profile is granted the workspace
	// and the workspace is active. Errors: CodeUnavailable.
	WorkspaceAccess(ctx context.Context, accountID, profileID, workspaceID string) (bool, error)
	// RecordKeyUse sets last-used times in one write, ignoring times older
	// than the stored ones. Errors: CodeUnavailable,
	// CodeResourceExhausted when the storage is full.
	RecordKeyUse(ctx context.Context, uses map[string]time.Time) error
	// RehashKeys replaces hashes made with an older pepper by the current
	// pepper's, for keys that still hold the old ones. Errors:
	// CodeUnavailable, CodeResourceExhausted when the storage is full.
	RehashKeys(ctx context.Context, rehashes []latchkey.Rehash) error
}
