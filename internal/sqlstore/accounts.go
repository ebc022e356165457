package sqlstore

import (
	"context"
	"database/sql"
	"errors"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/cursor"
)

// Bootstrap creates the operator account once: the check for an existing
// account and the insert share one immediate transaction, so of several
// servers starting at once exactly one succeeds.
func (s *Store) Bootstrap(ctx context.Context, in latchkey.NewAccount) (latchkey.Account, latchkey.APIKey, error) {
	var account latchkey.Account
	var key latchkey.APIKey
	err := s.write(ctx, storeWide, func(ctx context.Context, tx Tx) error {
		var exists bool
		if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM accounts)`).Scan(&exists); err != nil {
			return err
		}
		if exists {
			return latchkey.Errorf(latchkey.CodeAlreadyExists, "the store is already bootstrapped")
		}
		in.Operator = true
		var err error
		account, key, err = s.createAccount(ctx, tx, nil, in, latchkey.ActionAccountBootstrap)
		return err
	})
	return account, key, err
}

// CreateAccount creates an account with its system profile and system key.
func (s *Store) CreateAccount(ctx context.Context, actor latchkey.Actor, in latchkey.NewAccount) (latchkey.Account, latchkey.APIKey, error) {
	var account latchkey.Account
	var key latchkey.APIKey
	err := s.write(ctx, storeWide, func(ctx context.Context, tx Tx) error {
		in.Operator = false
		var err error
		account, key, err = s.createAccount(ctx, tx, &actor, in, latchkey.ActionAccountCreate)
		return err
	})
	return account, key, err
}

// createAccount inserts the account, its system profile (type SYSTEM,
// which is also the profile its system key acts through) and the system
// key. A nil actor means the account's own system profile acts, as at
// bootstrap.
func (s *Store) createAccount(ctx context.Context, tx Tx, actor *latchkey.Actor, in latchkey.NewAccount, action string) (latchkey.Account, latchkey.APIKey, error) {
	now := s.now().UTC()
	account := latchkey.Account{
		Metadata: latchkey.Metadata{
			ID: latchkey.NewID(latchkey.PrefixAccount), Name: in.Name,
			CreateTime: now, UpdateTime: now, ETag: newETag(),
		},
		Operator:              in.Operator,
		MaxActiveKeys:         in.MaxActiveKeys,
		DefaultKeyPermissions: in.DefaultKeyPermissions,
	}
	account.AccountID = account.ID
	_, err := tx.ExecContext(ctx, `INSERT INTO accounts
		(id, name, external_id, labels, operator, max_active_keys, default_key_permissions, create_time, update_time, etag)
		VALUES (?, ?, '', '{}', ?, ?, ?, ?, ?, ?)`,
		account.ID, account.Name, account.Operator, account.MaxActiveKeys, stringsJSON(account.DefaultKeyPermissions),
		now.UnixNano(), now.UnixNano(), account.ETag)
	if err != nil {
		return latchkey.Account{}, latchkey.APIKey{}, err
	}
	system := latchkey.Profile{
		Metadata:    latchkey.Metadata{ID: latchkey.NewID(latchkey.PrefixProfile), AccountID: account.ID, Name: "system"},
		Type:        latchkey.ProfileTypeSystem,
		Permissions: in.SystemKey.Key.Permissions,
	}
	if system, err = s.insertProfile(ctx, tx, system); err != nil {
		return latchkey.Account{}, latchkey.APIKey{}, err
	}
	if actor == nil {
		actor = &latchkey.Actor{Profile: latchkey.Bare{ID: system.ID, Name: system.Name}}
	}
	if in.OwnerEmail != "" {
		owner := latchkey.Profile{
			Metadata:    latchkey.Metadata{ID: latchkey.NewID(latchkey.PrefixProfile), AccountID: account.ID, Name: ownerName(in.OwnerEmail)},
			Type:        latchkey.ProfileTypeUser,
			Email:       in.OwnerEmail,
			Permissions: []string{"*"},
		}
		if owner, err = s.insertProfile(ctx, tx, owner); err != nil {
			return latchkey.Account{}, latchkey.APIKey{}, err
		}
		if err := s.audit(ctx, tx, account.ID, *actor, latchkey.ActionProfileCreate, latchkey.Bare{ID: owner.ID, Name: owner.Name}); err != nil {
			return latchkey.Account{}, latchkey.APIKey{}, err
		}
	}
	key := in.SystemKey.Key
	key.AccountID = account.ID
	key.ProfileID = system.ID
	key.System = true
	key.CreatedBy = actor.Profile.ID
	if key, err = s.insertKey(ctx, tx, key, in.SystemKey.Secret); err != nil {
		return latchkey.Account{}, latchkey.APIKey{}, err
	}
	if err := s.audit(ctx, tx, account.ID, *actor, action, latchkey.Bare{ID: account.ID, Name: account.Name}); err != nil {
		return latchkey.Account{}, latchkey.APIKey{}, err
	}
	return account, key, nil
}

// HasKeys reports whether any API key was ever stored.
func (s *Store) HasKeys(ctx context.Context) (bool, error) {
	var exists bool
	err := s.queryRow(ctx, `SELECT EXISTS (SELECT 1 FROM api_keys)`).Scan(&exists)
	return exists, s.wrap(ctx, err)
}

const accountColumns = `id, name, external_id, labels, operator, max_active_keys, default_key_permissions,
	suspend_time, suspend_reason, create_time, update_time, etag`

// GetAccount returns an account by id.
func (s *Store) GetAccount(ctx context.Context, id string) (latchkey.Account, error) {
	a, err := s.getAccount(ctx, s.read, id)
	return a, s.wrap(ctx, err)
}

// getAccount reads an account through q (the read pool, or a write's
// transaction).
func (s *Store) getAccount(ctx context.Context, q Querier, id string) (latchkey.Account, error) {
	a, err := scanAccount(q.QueryRowContext(ctx, "SELECT "+accountColumns+" FROM accounts WHERE id = ?", id))
	if errors.Is(err, sql.ErrNoRows) {
		return latchkey.Account{}, latchkey.NotFound("account", id)
	}
	return a, err
}

// ListAccounts lists every account.
func (s *Store) ListAccounts(ctx context.Context, page latchkey.PageRequest) (latchkey.Page[latchkey.Account], error) {
	q := listQuery{name: "accounts", columns: accountColumns, from: "accounts", timeColumn: "create_time", idColumn: "id"}
	return list(ctx, s, q, page, scanAccount, func(a latchkey.Account) cursor.Position {
		return cursor.Position{Time: a.CreateTime.UnixNano(), ID: a.ID}
	})
}

func scanAccount(row scanner) (latchkey.Account, error) {
	var a latchkey.Account
	var labels string
	var defaults string
	var suspended, created, updated sql.NullInt64
	err := row.Scan(&a.ID, &a.Name, &a.ExternalID, &labels, &a.Operator, &a.MaxActiveKeys, &defaults,
		&suspended, &a.SuspendReason, &created, &updated, &a.ETag)
	if err != nil {
		return a, err
	}
	a.AccountID = a.ID
	a.SuspendTime, a.CreateTime, a.UpdateTime = fromNanos(suspended), fromNanos(created), fromNanos(updated)
	if a.Labels, err = decodeLabels(labels); err != nil {
		return a, err
	}
	a.DefaultKeyPermissions, err = decodeStrings(defaults)
	return a, err
}

// ownerName names the owner's profile after the email, within the 128
// characters of a name (an email may have 254).
func ownerName(email string) string {
	if len(email) <= 128 {
		return email
	}
	return email[:128] // an email the API accepted is ASCII
}
