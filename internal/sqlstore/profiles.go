package sqlstore

import (
	"context"
	"database/sql"
	"errors"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/cursor"
)

const profileColumns = `id, account_id, type, name, display_name, email, external_id, labels, permissions,
	suspend_time, identity_issuer, identity_subject, bind_time, create_time, update_time, etag`

// CreateProfile creates a profile; a user's email must be unique in its
// account.
func (s *Store) CreateProfile(ctx context.Context, actor latchkey.Actor, in latchkey.Profile) (latchkey.Profile, error) {
	var out latchkey.Profile
	err := s.write(ctx, in.AccountID, func(ctx context.Context, tx Tx) error {
		if err := accountExists(ctx, tx, in.AccountID); err != nil {
			return err
		}
		if in.ID == "" {
			in.ID = latchkey.NewID(latchkey.PrefixProfile)
		}
		var err error
		if out, err = s.insertProfile(ctx, tx, in); err != nil {
			return err
		}
		return s.audit(ctx, tx, in.AccountID, actor, latchkey.ActionProfileCreate, latchkey.Bare{ID: out.ID, Name: out.Name})
	})
	return out, err
}

// insertProfile inserts p, filling its times and etag.
func (s *Store) insertProfile(ctx context.Context, tx Tx, p latchkey.Profile) (latchkey.Profile, error) {
	now := s.now().UTC()
	p.CreateTime, p.UpdateTime, p.ETag = now, now, newETag()
	p.ProfileID = p.ID
	var email sql.NullString
	if p.Email != "" {
		email = sql.NullString{String: p.Email, Valid: true}
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO profiles (id, account_id, type, name, display_name, email, external_id,
		labels, permissions, create_time, update_time, etag) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		p.ID, p.AccountID, int(p.Type), p.Name, p.DisplayName, email, p.ExternalID, labelsJSON(p.Labels),
		stringsJSON(p.Permissions), now.UnixNano(), now.UnixNano(), p.ETag)
	if s.dialect.IsUniqueViolation(err) {
		return latchkey.Profile{}, &latchkey.Error{Code: latchkey.CodeAlreadyExists, Field: "spec.email",
			Message: "a profile with this email already exists in the account"}
	}
	return p, err
}

// GetProfile returns a profile of the account.
func (s *Store) GetProfile(ctx context.Context, accountID, id string) (latchkey.Profile, error) {
	p, err := s.getProfile(ctx, s.read, accountID, id)
	return p, s.wrap(ctx, err)
}

// ListProfiles lists an account's profiles.
func (s *Store) ListProfiles(ctx context.Context, q latchkey.ProfileQuery) (latchkey.Page[latchkey.Profile], error) {
	lq := listQuery{name: "profiles", columns: profileColumns, from: "profiles", timeColumn: "create_time", idColumn: "id"}
	lq.filter("account_id = ?", q.AccountID)
	if q.Type != latchkey.ProfileTypeUnspecified {
		lq.filter("type = ?", int(q.Type))
	}
	lq.filterLabels(s.dialect, "labels", q.Labels)
	return list(ctx, s, lq, q.Page, scanProfile, func(p latchkey.Profile) cursor.Position {
		return cursor.Position{Time: p.CreateTime.UnixNano(), ID: p.ID}
	})
}

// ProfilePermissions returns the permissions of a profile.
func (s *Store) ProfilePermissions(ctx context.Context, accountID, profileID string) ([]string, error) {
	var encoded string
	err := s.read.QueryRowContext(ctx, `SELECT permissions FROM profiles WHERE id = ? AND account_id = ?`, profileID, accountID).Scan(&encoded)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, latchkey.NotFound("profile", profileID)
	}
	if err != nil {
		return nil, s.wrap(ctx, err)
	}
	perms, err := decodeStrings(encoded)
	return perms, s.wrap(ctx, err)
}

// setProfilePermissions replaces a profile's permissions, in tx.
func (s *Store) setProfilePermissions(ctx context.Context, tx Tx, profileID string, perms []string) error {
	_, err := tx.ExecContext(ctx, `UPDATE profiles SET permissions = ?, update_time = ?, etag = ? WHERE id = ?`,
		stringsJSON(perms), s.now().UnixNano(), newETag(), profileID)
	return err
}

func scanProfile(row scanner) (latchkey.Profile, error) {
	var p latchkey.Profile
	var typ int
	var email sql.NullString
	var labels, permissions string
	var issuer, subject sql.NullString
	var suspended, bound, created, updated sql.NullInt64
	err := row.Scan(&p.ID, &p.AccountID, &typ, &p.Name, &p.DisplayName, &email, &p.ExternalID, &labels, &permissions,
		&suspended, &issuer, &subject, &bound, &created, &updated, &p.ETag)
	if err != nil {
		return p, err
	}
	p.SuspendTime = fromNanos(suspended)
	p.Identity = latchkey.Identity{Issuer: issuer.String, Subject: subject.String, BindTime: fromNanos(bound)}
	if p.Permissions, err = decodeStrings(permissions); err != nil {
		return p, err
	}
	p.Type, p.Email, p.ProfileID = latchkey.ProfileType(typ), email.String, p.ID
	p.CreateTime, p.UpdateTime = fromNanos(created), fromNanos(updated)
	p.Labels, err = decodeLabels(labels)
	return p, err
}

func accountExists(ctx context.Context, tx Tx, id string) error {
	var exists bool
	if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM accounts WHERE id = ?)`, id).Scan(&exists); err != nil {
		return err
	}
	if !exists {
		return latchkey.NotFound("account", id)
	}
	return nil
}
