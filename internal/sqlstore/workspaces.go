package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"strings"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/cursor"
)

const workspaceColumns = "id, account_id, name, description, status, external_id, labels, create_time, update_time, etag"

// CreateWorkspace creates an active workspace.
func (s *Store) CreateWorkspace(ctx context.Context, actor latchkey.Actor, in latchkey.Workspace) (latchkey.Workspace, error) {
	now := s.now().UTC()
	in.ID = latchkey.NewID(latchkey.PrefixWorkspace)
	in.Status = latchkey.WorkspaceStatusActive
	in.CreateTime, in.UpdateTime, in.ETag = now, now, newETag()
	err := s.write(ctx, in.AccountID, func(ctx context.Context, tx Tx) error {
		if err := accountExists(ctx, tx, in.AccountID); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, "INSERT INTO workspaces ("+workspaceColumns+") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
			in.ID, in.AccountID, in.Name, in.Description, int(in.Status), in.ExternalID, labelsJSON(in.Labels),
			now.UnixNano(), now.UnixNano(), in.ETag)
		if err != nil {
			return err
		}
		return s.audit(ctx, tx, in.AccountID, actor, latchkey.ActionWorkspaceCreate, latchkey.Bare{ID: in.ID, Name: in.Name})
	})
	if err != nil {
		return latchkey.Workspace{}, err
	}
	return in, nil
}

// GetWorkspace returns a workspace of the account.
func (s *Store) GetWorkspace(ctx context.Context, accountID, id string) (latchkey.Workspace, error) {
	return s.getWorkspace(ctx, s.read, accountID, id)
}

func (s *Store) getWorkspace(ctx context.Context, db Querier, accountID, id string) (latchkey.Workspace, error) {
	w, err := scanWorkspace(db.QueryRowContext(ctx, "SELECT "+workspaceColumns+" FROM workspaces WHERE id = ? AND account_id = ?", id, accountID))
	if errors.Is(err, sql.ErrNoRows) {
		return latchkey.Workspace{}, latchkey.NotFound("workspace", id)
	}
	return w, s.wrap(ctx, err)
}

// ListWorkspaces lists an account's workspaces, active ones by default.
func (s *Store) ListWorkspaces(ctx context.Context, q latchkey.WorkspaceQuery) (latchkey.Page[latchkey.Workspace], error) {
	status := q.Status
	if status == latchkey.WorkspaceStatusUnspecified {
		status = latchkey.WorkspaceStatusActive
	}
	lq := listQuery{name: "workspaces", columns: workspaceColumns, from: "workspaces", timeColumn: "create_time", idColumn: "id"}
	lq.filter("account_id = ?", q.AccountID)
	lq.filter("status = ?", int(status))
	lq.filterLabels(s.dialect, "labels", q.Labels)
	return list(ctx, s, lq, q.Page, scanWorkspace, workspacePosition)
}

func workspacePosition(w latchkey.Workspace) cursor.Position {
	return cursor.Position{Time: w.CreateTime.UnixNano(), ID: w.ID}
}

// UpdateWorkspace changes the fields named in in.Paths.
func (s *Store) UpdateWorkspace(ctx context.Context, actor latchkey.Actor, in latchkey.WorkspaceUpdate) (latchkey.Workspace, error) {
	var out latchkey.Workspace
	err := s.write(ctx, in.AccountID, func(ctx context.Context, tx Tx) error {
		w, err := s.getWorkspace(ctx, tx, in.AccountID, in.ID)
		if err != nil {
			return err
		}
		if in.ETag != "" && in.ETag != w.ETag {
			return latchkey.Errorf(latchkey.CodeAborted, "the workspace changed since etag %q was read", in.ETag)
		}
		if w.Status == latchkey.WorkspaceStatusArchived {
			return latchkey.Errorf(latchkey.CodeFailedPrecondition, "workspace %q is archived and cannot be changed", in.ID)
		}
		for _, path := range in.Paths {
			switch path {
			case "metadata.name":
				w.Name = in.Workspace.Name
			case "metadata.labels":
				w.Labels = in.Workspace.Labels
			case "metadata.external_id":
				w.ExternalID = in.Workspace.ExternalID
			case "spec.description":
				w.Description = in.Workspace.Description
			default:
				return latchkey.InvalidField("update_mask", "%q cannot be updated on a workspace", path)
			}
		}
		w.UpdateTime, w.ETag = s.now().UTC(), newETag()
		_, err = tx.ExecContext(ctx, `UPDATE workspaces SET name = ?, labels = ?, external_id = ?, description = ?,
			update_time = ?, etag = ? WHERE id = ?`,
			w.Name, labelsJSON(w.Labels), w.ExternalID, w.Description, w.UpdateTime.UnixNano(), w.ETag, w.ID)
		if err != nil {
			return err
		}
		out = w
		return s.audit(ctx, tx, in.AccountID, actor, latchkey.ActionWorkspaceUpdate, latchkey.Bare{ID: w.ID, Name: w.Name})
	})
	return out, err
}

// ArchiveWorkspace archives a workspace; archiving it again changes
// nothing and writes no audit event.
func (s *Store) ArchiveWorkspace(ctx context.Context, actor latchkey.Actor, accountID, id string) (latchkey.Workspace, error) {
	var out latchkey.Workspace
	err := s.write(ctx, accountID, func(ctx context.Context, tx Tx) error {
		w, err := s.getWorkspace(ctx, tx, accountID, id)
		if err != nil {
			return err
		}
		out = w
		if w.Status == latchkey.WorkspaceStatusArchived {
			return nil
		}
		w.Status, w.UpdateTime, w.ETag = latchkey.WorkspaceStatusArchived, s.now().UTC(), newETag()
		if _, err := tx.ExecContext(ctx, `UPDATE workspaces SET status = ?, update_time = ?, etag = ? WHERE id = ?`,
			int(w.Status), w.UpdateTime.UnixNano(), w.ETag, w.ID); err != nil {
			return err
		}
		out = w
		// Every key granted the workspace loses it: the change names the
		// account alone, and followers drop all they hold of it.
		if err := s.recordChange(ctx, tx, latchkey.Change{AccountID: accountID, Kind: latchkey.ChangeWorkspaceArchived, WorkspaceID: w.ID}); err != nil {
			return err
		}
		return s.audit(ctx, tx, accountID, actor, latchkey.ActionWorkspaceArchive, latchkey.Bare{ID: w.ID, Name: w.Name})
	})
	return out, err
}

// GrantWorkspace grants a workspace to a profile. Granting it again
// changes nothing and writes no audit event.
func (s *Store) GrantWorkspace(ctx context.Context, actor latchkey.Actor, g latchkey.Grant) error {
	return s.write(ctx, g.AccountID, func(ctx context.Context, tx Tx) error {
		changed, err := s.grant(ctx, tx, g)
		if err != nil || !changed {
			return err
		}
		if err := s.recordProfileChange(ctx, tx, latchkey.ChangeGrantsChanged, g); err != nil {
			return err
		}
		return s.audit(ctx, tx, g.AccountID, actor, latchkey.ActionWorkspaceGrant, g.Target)
	})
}

// grant inserts one grant after checking that the profile and an active
// workspace exist in the account. It bumps the etag of the key acting
// through the profile, whose workspaces changed.
func (s *Store) grant(ctx context.Context, tx Tx, g latchkey.Grant) (bool, error) {
	if err := s.profileExists(ctx, tx, g.AccountID, g.ProfileID); err != nil {
		return false, err
	}
	w, err := s.getWorkspace(ctx, tx, g.AccountID, g.WorkspaceID)
	if err != nil {
		return false, err
	}
	if w.Status != latchkey.WorkspaceStatusActive {
		return false, latchkey.Errorf(latchkey.CodeFailedPrecondition, "workspace %q is archived", g.WorkspaceID)
	}
	res, err := tx.ExecContext(ctx, `INSERT INTO profile_workspaces (profile_id, workspace_id, account_id, create_time)
		VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING`, g.ProfileID, g.WorkspaceID, g.AccountID, s.now().UnixNano())
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	if err != nil || n == 0 {
		return false, err
	}
	return true, s.touchProfileKeys(ctx, tx, g.ProfileID)
}

// RevokeWorkspace withdraws a workspace from a profile. Withdrawing one
// that is not granted changes nothing and writes no audit event.
func (s *Store) RevokeWorkspace(ctx context.Context, actor latchkey.Actor, g latchkey.Grant) error {
	return s.write(ctx, g.AccountID, func(ctx context.Context, tx Tx) error {
		if err := s.profileExists(ctx, tx, g.AccountID, g.ProfileID); err != nil {
			return err
		}
		if _, err := s.getWorkspace(ctx, tx, g.AccountID, g.WorkspaceID); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM profile_workspaces WHERE profile_id = ? AND workspace_id = ?`, g.ProfileID, g.WorkspaceID)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return err
		}
		if err := s.touchProfileKeys(ctx, tx, g.ProfileID); err != nil {
			return err
		}
		if err := s.recordProfileChange(ctx, tx, latchkey.ChangeGrantsChanged, g); err != nil {
			return err
		}
		return s.audit(ctx, tx, g.AccountID, actor, latchkey.ActionWorkspaceRevoke, g.Target)
	})
}

// touchProfileKeys gives the keys acting through a profile a new etag and
// update time, because what they reach changed.
func (s *Store) touchProfileKeys(ctx context.Context, tx Tx, profileID string) error {
	_, err := tx.ExecContext(ctx, `UPDATE api_keys SET update_time = ?, etag = ? WHERE profile_id = ?`,
		s.now().UnixNano(), newETag(), profileID)
	return err
}

// ListProfileWorkspaces lists the workspaces granted to a profile, active
// and archived, in the order they were created.
func (s *Store) ListProfileWorkspaces(ctx context.Context, q latchkey.GrantQuery) (latchkey.Page[latchkey.Workspace], error) {
	if err := s.profileExists(ctx, s.read, q.AccountID, q.ProfileID); err != nil {
		return latchkey.Page[latchkey.Workspace]{}, err
	}
	lq := listQuery{
		name:       "profile_workspaces",
		columns:    joinColumns("w.", workspaceColumns),
		from:       "profile_workspaces AS g JOIN workspaces AS w ON w.id = g.workspace_id",
		timeColumn: "w.create_time",
		idColumn:   "w.id",
	}
	lq.filter("g.profile_id = ?", q.ProfileID)
	lq.filter("w.account_id = ?", q.AccountID)
	return list(ctx, s, lq, q.Page, scanWorkspace, workspacePosition)
}

// WorkspaceAccess reports whether the profile is granted the workspace and
// the workspace is active.
func (s *Store) WorkspaceAccess(ctx context.Context, accountID, profileID, workspaceID string) (bool, error) {
	return s.workspaceAccess(ctx, s.read, accountID, profileID, workspaceID)
}

// WorkspacesBeyond reports whether profileID is granted an active
// workspace that reachProfileID is not.
func (s *Store) WorkspacesBeyond(ctx context.Context, accountID, profileID, reachProfileID string) (bool, error) {
	return s.workspacesBeyond(ctx, s.read, accountID, profileID, reachProfileID)
}

// txGrants reads grants inside a write's transaction, for a KeyGuard.
type txGrants struct {
	s  *Store
	tx Querier
}

func (g txGrants) WorkspaceAccess(ctx context.Context, accountID, profileID, workspaceID string) (bool, error) {
	return g.s.workspaceAccess(ctx, g.tx, accountID, profileID, workspaceID)
}

func (g txGrants) WorkspacesBeyond(ctx context.Context, accountID, profileID, reachProfileID string) (bool, error) {
	return g.s.workspacesBeyond(ctx, g.tx, accountID, profileID, reachProfileID)
}

func (s *Store) workspaceAccess(ctx context.Context, db Querier, accountID, profileID, workspaceID string) (bool, error) {
	var ok bool
	err := db.QueryRowContext(ctx, `SELECT EXISTS (
		SELECT 1 FROM profile_workspaces AS g JOIN workspaces AS w ON w.id = g.workspace_id
		WHERE g.profile_id = ? AND g.workspace_id = ? AND w.account_id = ? AND w.status = ?)`,
		profileID, workspaceID, accountID, int(latchkey.WorkspaceStatusActive)).Scan(&ok)
	return ok, s.wrap(ctx, err)
}

func (s *Store) workspacesBeyond(ctx context.Context, db Querier, accountID, profileID, reachProfileID string) (bool, error) {
	var beyond bool
	err := db.QueryRowContext(ctx, `SELECT EXISTS (
		SELECT 1 FROM profile_workspaces AS g JOIN workspaces AS w ON w.id = g.workspace_id
		WHERE g.profile_id = ? AND w.account_id = ? AND w.status = ?
		AND NOT EXISTS (SELECT 1 FROM profile_workspaces AS r WHERE r.profile_id = ? AND r.workspace_id = g.workspace_id))`,
		profileID, accountID, int(latchkey.WorkspaceStatusActive), reachProfileID).Scan(&beyond)
	return beyond, s.wrap(ctx, err)
}

func (s *Store) profileExists(ctx context.Context, db Querier, accountID, id string) error {
	var exists bool
	if err := db.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM profiles WHERE id = ? AND account_id = ?)`, id, accountID).Scan(&exists); err != nil {
		return s.wrap(ctx, err)
	}
	if !exists {
		return latchkey.NotFound("profile", id)
	}
	return nil
}

func scanWorkspace(row scanner) (latchkey.Workspace, error) {
	var w latchkey.Workspace
	var status int
	var labels string
	var created, updated sql.NullInt64
	err := row.Scan(&w.ID, &w.AccountID, &w.Name, &w.Description, &status, &w.ExternalID, &labels, &created, &updated, &w.ETag)
	if err != nil {
		return w, err
	}
	w.Status = latchkey.WorkspaceStatus(status)
	w.CreateTime, w.UpdateTime = fromNanos(created), fromNanos(updated)
	w.Labels, err = decodeLabels(labels)
	return w, err
}

// joinColumns qualifies each column of a comma-separated list.
func joinColumns(qualifier, columns string) string {
	parts := strings.Split(columns, ", ")
	for i, c := range parts {
		parts[i] = qualifier + c
	}
	return strings.Join(parts, ", ")
}
