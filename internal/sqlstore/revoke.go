package sqlstore

import (
	"context"

	"github.com/latchkey/latchkey"
)

// RevokeKey revokes a key at once. Revoking a revoked key returns it as it
// is and writes no audit event.
func (s *Store) RevokeKey(ctx context.Context, actor latchkey.Actor, accountID, id string) (latchkey.APIKey, error) {
	var out latchkey.APIKey
	err := s.write(ctx, accountID, func(ctx context.Context, tx Tx) error {
		k, err := s.getKey(ctx, tx, accountID, id)
		if err != nil {
			return err
		}
		if k.System {
			return latchkey.Errorf(latchkey.CodeFailedPrecondition, "API key %q is the account's system key: rotate it instead", id)
		}
		if !k.RevokeTime.IsZero() {
			out = k
			return nil
		}
		now := s.now().UnixNano()
		// The previous secret goes too: nothing of a revoked key verifies.
		_, err = tx.ExecContext(ctx, `UPDATE api_keys SET revoke_time = ?, previous_hash = NULL,
			previous_pepper_version = NULL, previous_expire_time = NULL, update_time = ?, etag = ? WHERE id = ?`,
			now, now, newETag(), k.ID)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE accounts SET unrevoked_keys = unrevoked_keys - 1 WHERE id = ?`, accountID); err != nil {
			return err
		}
		if err := s.recordChange(ctx, tx, keyChange(k, latchkey.ChangeKeyRevoked)); err != nil {
			return err
		}
		if err := s.audit(ctx, tx, accountID, actor, latchkey.ActionAPIKeyRevoke, latchkey.Bare{ID: k.ID, Name: k.Name}); err != nil {
			return err
		}
		out, err = s.getKey(ctx, tx, accountID, id)
		return err
	})
	return out, err
}
