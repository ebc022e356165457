package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/cursor"
)

// keyColumns are the columns of an APIKey; the secret hashes are read only
// by GetCredential. A key's permissions are its own profile's.
const keyColumns = `id, account_id, profile_id, name, external_id, labels, description,
	(SELECT profiles.permissions FROM profiles WHERE profiles.id = api_keys.profile_id), system,
	environment, expire_time, allowed_cidrs, created_by, token_prefix, last_used_time, rotate_time,
	previous_expire_time, revoke_time, create_time, update_time, etag`

// activeKey is the SQL condition of a key that is neither revoked nor
// expired at the time bound to its one parameter.
const activeKey = "revoke_time IS NULL AND (expire_time IS NULL OR expire_time > ?)"

// IssueKey stores a key, its own profile, its initial grants and its audit
// event in one transaction, after checking the quota in the same one.
func (s *Store) IssueKey(ctx context.Context, actor latchkey.Actor, in latchkey.NewAPIKey) (latchkey.APIKey, error) {
	var out latchkey.APIKey
	err := s.write(ctx, in.Key.AccountID, func(ctx context.Context, tx Tx) error {
		if err := s.checkQuota(ctx, tx, in.Key.AccountID, in.DefaultMaxActiveKeys); err != nil {
			return err
		}
		profile, err := s.insertProfile(ctx, tx, latchkey.Profile{
			Metadata:    latchkey.Metadata{ID: latchkey.NewID(latchkey.PrefixProfile), AccountID: in.Key.AccountID, Name: in.Key.Name},
			Type:        latchkey.ProfileTypeAPIKey,
			Permissions: in.Key.Permissions,
		})
		if err != nil {
			return err
		}
		key := in.Key
		key.ProfileID = profile.ID
		key.System = false
		if key, err = s.insertKey(ctx, tx, key, in.Secret); err != nil {
			return err
		}
		for _, ws := range in.InitialWorkspaceIDs {
			_, err := s.grant(ctx, tx, latchkey.Grant{AccountID: key.AccountID, ProfileID: key.ProfileID, WorkspaceID: ws})
			if err != nil {
				if e := (*latchkey.Error)(nil); errors.As(err, &e) {
					e.Field = "initial_workspace_ids"
				}
				return err
			}
		}
		if err := s.audit(ctx, tx, key.AccountID, actor, latchkey.ActionAPIKeyIssue, latchkey.Bare{ID: key.ID, Name: key.Name}); err != nil {
			return err
		}
		// Without grants the key is returned as inserted; a grant changes
		// the key's etag and preview, so then it is read back.
		if len(in.InitialWorkspaceIDs) == 0 {
			out = key
			return nil
		}
		out, err = s.getKey(ctx, tx, key.AccountID, key.ID)
		return err
	})
	return out, err
}

// insertKey inserts a key with its secret hash, filling its times and etag.
// Its permissions are its profile's, inserted before it.
func (s *Store) insertKey(ctx context.Context, tx Tx, k latchkey.APIKey, secret latchkey.SecretHash) (latchkey.APIKey, error) {
	now := s.now().UTC()
	k.CreateTime, k.UpdateTime, k.ETag = now, now, newETag()
	_, err := tx.ExecContext(ctx, `INSERT INTO api_keys (id, account_id, profile_id, name, external_id, labels,
		description, system, environment, expire_time, allowed_cidrs, created_by, token_prefix,
		secret_hash, pepper_version, create_time, update_time, etag)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		k.ID, k.AccountID, k.ProfileID, k.Name, k.ExternalID, labelsJSON(k.Labels), k.Description,
		k.System, int(k.Environment), nanos(k.ExpireTime), stringsJSON(k.AllowedCIDRs),
		k.CreatedBy, k.TokenPrefix, secret.Hash, secret.PepperVersion, now.UnixNano(), now.UnixNano(), k.ETag)
	if err != nil {
		return k, err
	}
	_, err = tx.ExecContext(ctx, `UPDATE accounts SET unrevoked_keys = unrevoked_keys + 1 WHERE id = ?`, k.AccountID)
	return k, err
}

// GetKey returns a key of the account with its workspace preview.
func (s *Store) GetKey(ctx context.Context, accountID, id string) (latchkey.APIKey, error) {
	return s.getKey(ctx, s.read, accountID, id)
}

func (s *Store) getKey(ctx context.Context, db Querier, accountID, id string) (latchkey.APIKey, error) {
	k, err := scanKey(db.QueryRowContext(ctx, "SELECT "+keyColumns+" FROM api_keys WHERE id = ? AND account_id = ?", id, accountID))
	if errors.Is(err, sql.ErrNoRows) {
		return latchkey.APIKey{}, latchkey.NotFound("API key", id)
	}
	if err != nil {
		return latchkey.APIKey{}, s.wrap(ctx, err)
	}
	keys := []latchkey.APIKey{k}
	if err := s.fillPreviews(ctx, db, keys); err != nil {
		return latchkey.APIKey{}, err
	}
	return keys[0], nil
}

// ListKeys lists an account's keys, active ones by default.
func (s *Store) ListKeys(ctx context.Context, q latchkey.KeyQuery) (latchkey.Page[latchkey.APIKey], error) {
	lq := listQuery{name: "api_keys", columns: keyColumns, from: "api_keys", timeColumn: "create_time", idColumn: "id"}
	lq.filter("account_id = ?", q.AccountID)
	// The state filters read the clock; it is bound as an argument but left
	// out of the page-token binding, or a token would expire at once.
	now := s.now().UnixNano()
	switch q.State {
	case latchkey.KeyStateUnspecified, latchkey.KeyStateActive:
		lq.where = append(lq.where, activeKey)
		lq.args = append(lq.args, now)
		lq.bind = append(lq.bind, "active")
	case latchkey.KeyStateRevoked:
		lq.filter("revoke_time IS NOT NULL")
	case latchkey.KeyStateExpired:
		lq.where = append(lq.where, "revoke_time IS NULL AND expire_time <= ?")
		lq.args = append(lq.args, now)
		lq.bind = append(lq.bind, "expired")
	default:
		return latchkey.Page[latchkey.APIKey]{}, latchkey.InvalidField("state", "unknown state %d", q.State)
	}
	if q.WorkspaceID != "" {
		lq.filter("profile_id IN (SELECT profile_id FROM profile_workspaces WHERE workspace_id = ?)", q.WorkspaceID)
	}
	lq.filterLabels(s.dialect, "labels", q.Labels)
	page, err := list(ctx, s, lq, q.Page, scanKey, func(k latchkey.APIKey) cursor.Position {
		return cursor.Position{Time: k.CreateTime.UnixNano(), ID: k.ID}
	})
	if err != nil {
		return page, err
	}
	return page, s.fillPreviews(ctx, s.read, page.Items)
}

// fillPreviews sets WorkspacesPreview and WorkspacesTotal of keys with one
// query: the first PreviewSize granted workspaces of each key by name, and
// how many it has in all.
func (s *Store) fillPreviews(ctx context.Context, db Querier, keys []latchkey.APIKey) error {
	if len(keys) == 0 {
		return nil
	}
	byProfile := make(map[string]*latchkey.APIKey, len(keys))
	args := make([]any, 0, len(keys)+1)
	for i := range keys {
		byProfile[keys[i].ProfileID] = &keys[i]
		args = append(args, keys[i].ProfileID)
	}
	args = append(args, latchkey.PreviewSize)
	rows, err := db.QueryContext(ctx, `SELECT profile_id, id, name, total FROM (
		SELECT g.profile_id, w.id, w.name,
			row_number() OVER (PARTITION BY g.profile_id ORDER BY w.name, w.id) AS n,
			count(*) OVER (PARTITION BY g.profile_id) AS total
		FROM profile_workspaces AS g JOIN workspaces AS w ON w.id = g.workspace_id
		WHERE g.profile_id IN (?`+strings.Repeat(", ?", len(keys)-1)+`)
	) AS previews WHERE n <= ? ORDER BY profile_id, n`, args...)
	if err != nil {
		return s.wrap(ctx, err)
	}
	defer rows.Close()
	for rows.Next() {
		var profileID string
		var ws latchkey.Bare
		var total int64
		if err := rows.Scan(&profileID, &ws.ID, &ws.Name, &total); err != nil {
			return s.wrap(ctx, err)
		}
		if k := byProfile[profileID]; k != nil {
			k.WorkspacesPreview = append(k.WorkspacesPreview, ws)
			k.WorkspacesTotal = total
		}
	}
	return s.wrap(ctx, rows.Err())
}

// UpdateKey changes the fields named in in.Paths.
func (s *Store) UpdateKey(ctx context.Context, actor latchkey.Actor, in latchkey.KeyUpdate) (latchkey.APIKey, error) {
	var out latchkey.APIKey
	err := s.write(ctx, in.AccountID, func(ctx context.Context, tx Tx) error {
		k, err := s.getKey(ctx, tx, in.AccountID, in.ID)
		if err != nil {
			return err
		}
		if in.ETag != "" && in.ETag != k.ETag {
			return latchkey.Errorf(latchkey.CodeAborted, "the API key changed since etag %q was read", in.ETag)
		}
		if in.Guard != nil {
			if err := in.Guard(ctx, k, txGrants{s, tx}); err != nil {
				return err
			}
		}
		wasExpired := false
		switch k.State(s.now()) {
		case latchkey.KeyStateRevoked:
			return latchkey.Errorf(latchkey.CodeFailedPrecondition, "API key %q is revoked", in.ID)
		case latchkey.KeyStateExpired:
			wasExpired = true
		}
		for _, path := range in.Paths {
			switch path {
			case "metadata.name":
				k.Name = in.Key.Name
			case "metadata.labels":
				k.Labels = in.Key.Labels
			case "metadata.external_id":
				k.ExternalID = in.Key.ExternalID
			case "spec.description":
				k.Description = in.Key.Description
			case "spec.permissions":
				if k.System {
					return latchkey.InvalidField("update_mask", "the permissions of a system key cannot change")
				}
				k.Permissions = in.Key.Permissions
			case "spec.expire_time":
				if k.System {
					return latchkey.InvalidField("update_mask", "a system key cannot expire")
				}
				k.ExpireTime = in.Key.ExpireTime
			case "spec.allowed_cidrs":
				k.AllowedCIDRs = in.Key.AllowedCIDRs
			default:
				return latchkey.InvalidField("update_mask", "%q cannot be updated on an API key", path)
			}
		}
		// An expired key that the update makes active again takes a place
		// in the quota, exactly as a new key would.
		if wasExpired && k.State(s.now()) == latchkey.KeyStateActive {
			if err := s.checkQuota(ctx, tx, k.AccountID, in.DefaultMaxActiveKeys); err != nil {
				return err
			}
		}
		_, err = tx.ExecContext(ctx, `UPDATE api_keys SET name = ?, labels = ?, external_id = ?, description = ?,
			expire_time = ?, allowed_cidrs = ?, update_time = ?, etag = ? WHERE id = ?`,
			k.Name, labelsJSON(k.Labels), k.ExternalID, k.Description,
			nanos(k.ExpireTime), stringsJSON(k.AllowedCIDRs), s.now().UnixNano(), newETag(), k.ID)
		if err != nil {
			return err
		}
		if slices.Contains(in.Paths, "spec.permissions") {
			if err := s.setProfilePermissions(ctx, tx, k.ProfileID, k.Permissions); err != nil {
				return err
			}
		}
		if err := s.recordChange(ctx, tx, keyChange(k, latchkey.ChangeKeyUpdated)); err != nil {
			return err
		}
		if err := s.audit(ctx, tx, k.AccountID, actor, latchkey.ActionAPIKeyUpdate, latchkey.Bare{ID: k.ID, Name: k.Name}); err != nil {
			return err
		}
		out, err = s.getKey(ctx, tx, k.AccountID, k.ID)
		return err
	})
	return out, err
}

// RotateKey replaces a key's secret hash, keeping the old one until
// in.PreviousExpire when that is set.
func (s *Store) RotateKey(ctx context.Context, actor latchkey.Actor, in latchkey.KeyRotation) (latchkey.APIKey, error) {
	var out latchkey.APIKey
	err := s.write(ctx, in.AccountID, func(ctx context.Context, tx Tx) error {
		k, err := s.getKey(ctx, tx, in.AccountID, in.ID)
		if err != nil {
			return err
		}
		if in.Guard != nil {
			if err := in.Guard(ctx, k, txGrants{s, tx}); err != nil {
				return err
			}
		}
		now := s.now().UTC()
		switch k.State(now) {
		case latchkey.KeyStateRevoked:
			return latchkey.Errorf(latchkey.CodeFailedPrecondition, "API key %q is revoked and cannot be rotated", in.ID)
		case latchkey.KeyStateExpired:
			return latchkey.Errorf(latchkey.CodeFailedPrecondition, "API key %q has expired and cannot be rotated", in.ID)
		}
		if in.PreviousExpire.IsZero() {
			_, err = tx.ExecContext(ctx, `UPDATE api_keys SET secret_hash = ?, pepper_version = ?, token_prefix = ?,
				previous_hash = NULL, previous_pepper_version = NULL, previous_expire_time = NULL,
				rotate_time = ?, update_time = ?, etag = ? WHERE id = ?`,
				in.Secret.Hash, in.Secret.PepperVersion, in.TokenPrefix, now.UnixNano(), now.UnixNano(), newETag(), k.ID)
		} else {
			_, err = tx.ExecContext(ctx, `UPDATE api_keys SET previous_hash = secret_hash,
				previous_pepper_version = pepper_version, previous_expire_time = ?,
				secret_hash = ?, pepper_version = ?, token_prefix = ?, rotate_time = ?, update_time = ?, etag = ? WHERE id = ?`,
				in.PreviousExpire.UnixNano(), in.Secret.Hash, in.Secret.PepperVersion, in.TokenPrefix,
				now.UnixNano(), now.UnixNano(), newETag(), k.ID)
		}
		if err != nil {
			return err
		}
		if err := s.recordChange(ctx, tx, keyChange(k, latchkey.ChangeKeyRotated)); err != nil {
			return err
		}
		if err := s.audit(ctx, tx, k.AccountID, actor, latchkey.ActionAPIKeyRotate, latchkey.Bare{ID: k.ID, Name: k.Name}); err != nil {
			return err
		}
		out, err = s.getKey(ctx, tx, k.AccountID, k.ID)
		return err
	})
	return out, err
}

// keyChange is the change of kind to key k.
func keyChange(k latchkey.APIKey, kind latchkey.ChangeKind) latchkey.Change {
	return latchkey.Change{AccountID: k.AccountID, Kind: kind, KeyID: k.ID, ProfileID: k.ProfileID}
}

// GetCredential returns a key of any account with its secret hashes.
func (s *Store) GetCredential(ctx context.Context, keyID string) (latchkey.Credential, error) {
	row := s.queryRow(ctx, `SELECT `+keyColumns+`, secret_hash, pepper_version, previous_hash,
		previous_pepper_version, (SELECT operator FROM accounts WHERE accounts.id = api_keys.account_id),
		(SELECT suspend_time IS NOT NULL FROM accounts WHERE accounts.id = api_keys.account_id)
		FROM api_keys WHERE id = ?`, keyID)
	var c latchkey.Credential
	var prevHash []byte
	var prevVersion sql.NullInt64
	k, err := scanKeyWith(row, &c.Current.Hash, &c.Current.PepperVersion, &prevHash, &prevVersion, &c.Operator, &c.AccountSuspended)
	if errors.Is(err, sql.ErrNoRows) {
		return latchkey.Credential{}, latchkey.NotFound("API key", keyID)
	}
	if err != nil {
		return latchkey.Credential{}, s.wrap(ctx, err)
	}
	c.Key = k
	if prevHash != nil {
		c.Previous = &latchkey.SecretHash{Hash: prevHash, PepperVersion: int(prevVersion.Int64)}
		c.PreviousExpire = k.PreviousTokenExpireTime
	}
	return c, nil
}

// RecordKeyUse moves last-used times forward, all in one transaction.
func (s *Store) RecordKeyUse(ctx context.Context, uses map[string]time.Time) error {
	if len(uses) == 0 {
		return nil
	}
	return s.write(ctx, storeWide, func(ctx context.Context, tx Tx) error {
		for id, t := range uses {
			_, err := tx.ExecContext(ctx, `UPDATE api_keys SET last_used_time = ?
				WHERE id = ? AND (last_used_time IS NULL OR last_used_time < ?)`, t.UnixNano(), id, t.UnixNano())
			if err != nil {
				return err
			}
		}
		return nil
	})
}

func scanKey(row scanner) (latchkey.APIKey, error) {
	return scanKeyWith(row)
}

// scanKeyWith scans the key columns and then extra.
func scanKeyWith(row scanner, extra ...any) (latchkey.APIKey, error) {
	var k latchkey.APIKey
	var labels, permissions, cidrs string
	var env int
	var expire, lastUsed, rotated, prevExpire, revoked, created, updated sql.NullInt64
	dest := append([]any{&k.ID, &k.AccountID, &k.ProfileID, &k.Name, &k.ExternalID, &labels, &k.Description,
		&permissions, &k.System, &env, &expire, &cidrs, &k.CreatedBy, &k.TokenPrefix, &lastUsed, &rotated,
		&prevExpire, &revoked, &created, &updated, &k.ETag}, extra...)
	if err := row.Scan(dest...); err != nil {
		return k, err
	}
	k.Environment = latchkey.Environment(env)
	k.ExpireTime, k.LastUsedTime, k.RotateTime = fromNanos(expire), fromNanos(lastUsed), fromNanos(rotated)
	k.PreviousTokenExpireTime, k.RevokeTime = fromNanos(prevExpire), fromNanos(revoked)
	k.CreateTime, k.UpdateTime = fromNanos(created), fromNanos(updated)
	var err error
	if k.Labels, err = decodeLabels(labels); err != nil {
		return k, err
	}
	if k.Permissions, err = decodeStrings(permissions); err != nil {
		return k, err
	}
	k.AllowedCIDRs, err = decodeStrings(cidrs)
	return k, err
}
