package sqlstore

import (
	"context"
	"time"

	"github.com/latchkey/latchkey"
)

// UpdateAccount changes the fields of an account named in in.Paths, after
// in.Guard has approved the account as this transaction reads it.
func (s *Store) UpdateAccount(ctx context.Context, actor latchkey.Actor, in latchkey.AccountUpdate) (latchkey.Account, error) {
	var out latchkey.Account
	err := s.write(ctx, in.ID, func(ctx context.Context, tx Tx) error {
		a, err := s.getAccount(ctx, tx, in.ID)
		if err != nil {
			return err
		}
		if in.ETag != "" && in.ETag != a.ETag {
			return latchkey.Errorf(latchkey.CodeAborted, "the account changed since etag %q was read", in.ETag)
		}
		if in.Guard != nil {
			if err := in.Guard(ctx, a); err != nil {
				return err
			}
		}
		for _, path := range in.Paths {
			switch path {
			case "metadata.name":
				a.Name = in.Account.Name
			case "spec.max_active_keys":
				a.MaxActiveKeys = in.Account.MaxActiveKeys
			case "spec.default_key_permissions":
				a.DefaultKeyPermissions = in.Account.DefaultKeyPermissions
			default:
				return latchkey.InvalidField("update_mask", "%q cannot be updated on an account", path)
			}
		}
		a.UpdateTime, a.ETag = s.now().UTC(), newETag()
		if _, err := tx.ExecContext(ctx, `UPDATE accounts SET name = ?, max_active_keys = ?, default_key_permissions = ?,
			update_time = ?, etag = ? WHERE id = ?`,
			a.Name, a.MaxActiveKeys, stringsJSON(a.DefaultKeyPermissions), a.UpdateTime.UnixNano(), a.ETag, a.ID); err != nil {
			return err
		}
		out = a
		return s.audit(ctx, tx, a.ID, actor, latchkey.ActionAccountUpdate, latchkey.Bare{ID: a.ID, Name: a.Name})
	})
	return out, err
}

// SuspendAccount suspends an account. Nothing of it is deleted or changed
// but the account's row: its keys are refused because verification reads
// the account's state with every key (GetCredential), and the change it
// records makes every cache drop the account's keys.
func (s *Store) SuspendAccount(ctx context.Context, actor latchkey.Actor, id, reason string) (latchkey.Account, error) {
	return s.setSuspension(ctx, actor, id, reason, true)
}

// RestoreAccount ends an account's suspension.
func (s *Store) RestoreAccount(ctx context.Context, actor latchkey.Actor, id, reason string) (latchkey.Account, error) {
	return s.setSuspension(ctx, actor, id, reason, false)
}

// setSuspension suspends or restores an account, idempotently: an account
// already in the state asked for is returned as it is, with no change and
// no audit event.
func (s *Store) setSuspension(ctx context.Context, actor latchkey.Actor, id, reason string, suspend bool) (latchkey.Account, error) {
	var out latchkey.Account
	err := s.write(ctx, id, func(ctx context.Context, tx Tx) error {
		a, err := s.getAccount(ctx, tx, id)
		if err != nil {
			return err
		}
		out = a
		if a.Suspended() == suspend {
			return nil
		}
		if suspend && a.Operator {
			return latchkey.Errorf(latchkey.CodeFailedPrecondition,
				"the operator account cannot be suspended: nobody would be left to restore it")
		}
		now := s.now().UTC()
		action, kind := latchkey.ActionAccountRestore, latchkey.ChangeAccountRestored
		a.SuspendTime, a.SuspendReason = time.Time{}, ""
		if suspend {
			action, kind = latchkey.ActionAccountSuspend, latchkey.ChangeAccountSuspended
			a.SuspendTime, a.SuspendReason = now, reason
		}
		a.UpdateTime, a.ETag = now, newETag()
		if _, err := tx.ExecContext(ctx, `UPDATE accounts SET suspend_time = ?, suspend_reason = ?, update_time = ?, etag = ?
			WHERE id = ?`, nanos(a.SuspendTime), a.SuspendReason, a.UpdateTime.UnixNano(), a.ETag, a.ID); err != nil {
			return err
		}
		if err := s.recordChange(ctx, tx, latchkey.Change{AccountID: a.ID, Kind: kind}); err != nil {
			return err
		}
		out = a
		return s.auditWithReason(ctx, tx, a.ID, actor, action, latchkey.Bare{ID: a.ID, Name: a.Name}, reason)
	})
	return out, err
}
