package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/latchkey/latchkey"
)

// The profiles of people: what they may do, their suspension, and the
// identity they sign in with. None of it changes a key's verdict, so the
// changes recorded here name the profile alone (ChangePersonChanged),
// which the caches of signed-in people follow.

// getProfile reads a profile of the account through q (the read pool,
// or a write's transaction).
func (s *Store) getProfile(ctx context.Context, q Querier, accountID, id string) (latchkey.Profile, error) {
	p, err := scanProfile(q.QueryRowContext(ctx, "SELECT "+profileColumns+" FROM profiles WHERE id = ? AND account_id = ?", id, accountID))
	if errors.Is(err, sql.ErrNoRows) {
		return latchkey.Profile{}, latchkey.NotFound("profile", id)
	}
	return p, err
}

// userProfile reads a profile that must be a user's, for the writes that
// only people's profiles take.
func (s *Store) userProfile(ctx context.Context, tx Tx, accountID, id string) (latchkey.Profile, error) {
	p, err := s.getProfile(ctx, tx, accountID, id)
	if err != nil {
		return p, err
	}
	if p.Type != latchkey.ProfileTypeUser {
		return p, latchkey.Errorf(latchkey.CodeFailedPrecondition,
			"profile %q is not a user's: an API key's profile changes with its key, and the system profile never", id)
	}
	return p, nil
}

// UpdateProfile changes a user profile.
func (s *Store) UpdateProfile(ctx context.Context, actor latchkey.Actor, in latchkey.ProfileUpdate) (latchkey.Profile, error) {
	var out latchkey.Profile
	err := s.write(ctx, in.AccountID, func(ctx context.Context, tx Tx) error {
		p, err := s.userProfile(ctx, tx, in.AccountID, in.ID)
		if err != nil {
			return err
		}
		if in.ETag != "" && in.ETag != p.ETag {
			return latchkey.Errorf(latchkey.CodeAborted, "the profile changed since etag %q was read", in.ETag)
		}
		if in.Guard != nil {
			if err := in.Guard(ctx, p, txGrants{s: s, tx: tx}); err != nil {
				return err
			}
		}
		for _, path := range in.Paths {
			switch path {
			case "metadata.name":
				p.Name = in.Profile.Name
			case "metadata.labels":
				p.Labels = in.Profile.Labels
			case "metadata.external_id":
				p.ExternalID = in.Profile.ExternalID
			case "spec.email":
				p.Email = in.Profile.Email
			case "spec.name":
				p.DisplayName = in.Profile.DisplayName
			case "spec.permissions":
				p.Permissions = in.Profile.Permissions
			default:
				return latchkey.InvalidField("update_mask", "%q cannot be updated on a profile", path)
			}
		}
		p.UpdateTime, p.ETag = s.now().UTC(), newETag()
		_, err = tx.ExecContext(ctx, `UPDATE profiles SET name = ?, labels = ?, external_id = ?, email = ?, display_name = ?,
			permissions = ?, update_time = ?, etag = ? WHERE id = ?`,
			p.Name, labelsJSON(p.Labels), p.ExternalID, p.Email, p.DisplayName, stringsJSON(p.Permissions),
			p.UpdateTime.UnixNano(), p.ETag, p.ID)
		if s.dialect.IsUniqueViolation(err) {
			return &latchkey.Error{Code: latchkey.CodeAlreadyExists, Field: "spec.email",
				Message: "a profile with this email already exists in the account"}
		}
		if err != nil {
			return err
		}
		// What signed-in people's caches hold: their permissions, and the
		// name and email their calls are audited under.
		if slices.ContainsFunc(in.Paths, func(path string) bool { return strings.HasPrefix(path, "spec.") }) {
			if err := s.recordChange(ctx, tx, latchkey.Change{AccountID: p.AccountID, Kind: latchkey.ChangePersonChanged, ProfileID: p.ID}); err != nil {
				return err
			}
		}
		out = p
		return s.audit(ctx, tx, p.AccountID, actor, latchkey.ActionProfileUpdate, latchkey.Bare{ID: p.ID, Name: p.Name})
	})
	return out, err
}

// SuspendProfile suspends or restores a user profile, idempotently.
func (s *Store) SuspendProfile(ctx context.Context, actor latchkey.Actor, accountID, id string, suspend bool, guard latchkey.ProfileGuard) (latchkey.Profile, error) {
	var out latchkey.Profile
	err := s.write(ctx, accountID, func(ctx context.Context, tx Tx) error {
		p, err := s.userProfile(ctx, tx, accountID, id)
		if err != nil {
			return err
		}
		out = p
		if p.Suspended() == suspend {
			return nil
		}
		if guard != nil {
			if err := guard(ctx, p, txGrants{s: s, tx: tx}); err != nil {
				return err
			}
		}
		now := s.now().UTC()
		action := latchkey.ActionProfileRestore
		p.SuspendTime = time.Time{}
		if suspend {
			action, p.SuspendTime = latchkey.ActionProfileSuspend, now
		}
		p.UpdateTime, p.ETag = now, newETag()
		if _, err := tx.ExecContext(ctx, `UPDATE profiles SET suspend_time = ?, update_time = ?, etag = ? WHERE id = ?`,
			nanos(p.SuspendTime), p.UpdateTime.UnixNano(), p.ETag, p.ID); err != nil {
			return err
		}
		if err := s.recordChange(ctx, tx, latchkey.Change{AccountID: accountID, Kind: latchkey.ChangePersonChanged, ProfileID: p.ID}); err != nil {
			return err
		}
		out = p
		return s.audit(ctx, tx, accountID, actor, action, latchkey.Bare{ID: p.ID, Name: p.Name})
	})
	return out, err
}

// personColumns are the columns of a bound profile and its account, for
// SignIn.
const personColumns = `profiles.id, profiles.account_id, profiles.type, profiles.name, profiles.display_name,
	profiles.email, profiles.external_id, profiles.labels, profiles.permissions, profiles.suspend_time,
	profiles.identity_issuer, profiles.identity_subject, profiles.bind_time, profiles.create_time,
	profiles.update_time, profiles.etag, accounts.name, accounts.operator, accounts.suspend_time IS NOT NULL`

// SignIn binds what a verified email may bind, then returns every profile
// bound to the identity.
func (s *Store) SignIn(ctx context.Context, in latchkey.SignIn) ([]latchkey.PersonProfile, error) {
	// Only an ASCII email binds: case folding beyond ASCII differs
	// between Go and the databases, and maps some letters (the Kelvin sign)
	// onto ASCII ones, so that a look-alike address could bind another's
	// profile.
	if in.EmailVerified && in.Email != "" && isASCII(in.Email) {
		if err := s.bindByEmail(ctx, in); err != nil {
			return nil, err
		}
	}
	rows, err := s.read.QueryContext(ctx, `SELECT `+personColumns+` FROM profiles JOIN accounts ON accounts.id = profiles.account_id
		WHERE profiles.identity_issuer = ? AND profiles.identity_subject = ? AND profiles.type = ?
		ORDER BY accounts.create_time, accounts.id`, in.Issuer, in.Subject, int(latchkey.ProfileTypeUser))
	if err != nil {
		return nil, s.wrap(ctx, err)
	}
	defer rows.Close()
	var out []latchkey.PersonProfile
	for rows.Next() {
		var pp latchkey.PersonProfile
		var err error
		pp.Profile, err = scanProfile(personScanner{rows, &pp})
		if err != nil {
			return nil, s.wrap(ctx, err)
		}
		out = append(out, pp)
	}
	return out, s.wrap(ctx, rows.Err())
}

// personScanner scans a row of personColumns: the profile's columns for
// scanProfile, and the account's into pp.
type personScanner struct {
	rows *sql.Rows
	pp   *latchkey.PersonProfile
}

func (p personScanner) Scan(dest ...any) error {
	return p.rows.Scan(append(dest, &p.pp.AccountName, &p.pp.AccountOperator, &p.pp.AccountSuspended)...)
}

// bindByEmail binds the identity to the oldest unbound user profile of the
// verified email in each account where nothing is bound to it yet. It
// reads first and writes only when there is something to bind, so that a
// person's every sign-in after the first costs no write.
func (s *Store) bindByEmail(ctx context.Context, in latchkey.SignIn) error {
	find := func(ctx context.Context, q Querier) ([]latchkey.Profile, error) {
		rows, err := q.QueryContext(ctx, `SELECT `+profileColumns+` FROM profiles
			WHERE lower(email) = ? AND type = ? AND identity_subject IS NULL
			AND NOT EXISTS (SELECT 1 FROM profiles bound WHERE bound.account_id = profiles.account_id
				AND bound.identity_issuer = ? AND bound.identity_subject = ?)
			ORDER BY account_id, create_time, id`,
			asciiLower(in.Email), int(latchkey.ProfileTypeUser), in.Issuer, in.Subject)
		if err != nil {
			return nil, err
		}
		defer rows.Close()
		var out []latchkey.Profile
		for rows.Next() {
			p, err := scanProfile(rows)
			if err != nil {
				return nil, err
			}
			if len(out) == 0 || out[len(out)-1].AccountID != p.AccountID { // the oldest of each account
				out = append(out, p)
			}
		}
		return out, rows.Err()
	}
	pending, err := find(ctx, s.read)
	if err != nil || len(pending) == 0 {
		return s.wrap(ctx, err)
	}
	return s.write(ctx, storeWide, func(ctx context.Context, tx Tx) error {
		// Read again inside the write: another sign-in may have bound them.
		pending, err := find(ctx, tx)
		if err != nil {
			return err
		}
		now := s.now().UTC()
		for _, p := range pending {
			if _, err := tx.ExecContext(ctx, `UPDATE profiles SET identity_issuer = ?, identity_subject = ?, bind_time = ?,
				update_time = ?, etag = ? WHERE id = ?`, in.Issuer, in.Subject, now.UnixNano(), now.UnixNano(), newETag(), p.ID); err != nil {
				return err
			}
			if err := s.recordChange(ctx, tx, latchkey.Change{AccountID: p.AccountID, Kind: latchkey.ChangePersonChanged, ProfileID: p.ID}); err != nil {
				return err
			}
			self := latchkey.Actor{Profile: latchkey.Bare{ID: p.ID, Name: p.Name}}
			if err := s.audit(ctx, tx, p.AccountID, self, latchkey.ActionProfileBind, latchkey.Bare{ID: p.ID, Name: p.Name}); err != nil {
				return err
			}
		}
		return nil
	})
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// asciiLower lowers A to Z only, as SQL's lower() does on ASCII text.
func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}
