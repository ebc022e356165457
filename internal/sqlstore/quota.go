package sqlstore

import (
	"context"
	"database/sql"
	"errors"

	"github.com/latchkey/latchkey"
)

// checkQuota refuses a new key when the account is missing or its active
// keys reach its limit: its own max_active_keys, or else defaultMax.
// Active keys are the unrevoked ones, counted by issue and revoke, less
// those that expired; the expired ones are counted only near the limit.
func (s *Store) checkQuota(ctx context.Context, tx Tx, accountID string, defaultMax int64) error {
	var unrevoked, max int64
	err := tx.QueryRowContext(ctx, `SELECT unrevoked_keys, max_active_keys FROM accounts WHERE id = ?`, accountID).Scan(&unrevoked, &max)
	if errors.Is(err, sql.ErrNoRows) {
		return latchkey.NotFound("account", accountID)
	}
	if err != nil {
		return err
	}
	if max <= 0 {
		max = defaultMax
	}
	if max <= 0 || unrevoked < max {
		return nil
	}
	var expired int64
	err = tx.QueryRowContext(ctx, `SELECT count(*) FROM api_keys WHERE account_id = ? AND revoke_time IS NULL
		AND expire_time IS NOT NULL AND expire_time <= ?`, accountID, s.now().UnixNano()).Scan(&expired)
	if err != nil {
		return err
	}
	if active := unrevoked - expired; active >= max {
		return latchkey.Errorf(latchkey.CodeResourceExhausted,
			"the account has %d active keys, its limit: revoke one or raise max_active_keys", active)
	}
	return nil
}
