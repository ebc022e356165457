package sqlstore

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/latchkey/latchkey"
)

// What the database knows of each pepper lives in settings rows named
// pepper/ID/fingerprint and pepper/ID/retired. Databases made before
// peppers had ids hold pepper 1's fingerprint as pepper_fingerprint; it is
// read as pepper 1's, and kept, so that an older binary started on the
// database still refuses the wrong pepper.
const legacyPepperFingerprint = "pepper_fingerprint"

func pepperSetting(id int, what string) string {
	return "pepper/" + strconv.Itoa(id) + "/" + what
}

// pepperFacts is what the settings say about one pepper.
type pepperFacts struct {
	fingerprint string
	retired     bool
}

func readPepperFacts(ctx context.Context, q Querier) (map[int]*pepperFacts, error) {
	rows, err := q.QueryContext(ctx, `SELECT name, value FROM settings WHERE name LIKE 'pepper/%' OR name = ?`, legacyPepperFingerprint)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	facts := map[int]*pepperFacts{}
	at := func(id int) *pepperFacts {
		if facts[id] == nil {
			facts[id] = &pepperFacts{}
		}
		return facts[id]
	}
	var legacy string
	for rows.Next() {
		var name, value string
		if err := rows.Scan(&name, &value); err != nil {
			return nil, err
		}
		if name == legacyPepperFingerprint {
			legacy = value
			continue
		}
		idText, what, _ := strings.Cut(strings.TrimPrefix(name, "pepper/"), "/")
		id, err := strconv.Atoi(idText)
		if err != nil {
			continue // not a row of ours
		}
		switch what {
		case "fingerprint":
			at(id).fingerprint = value
		case "retired":
			at(id).retired = true
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if legacy != "" && at(1).fingerprint == "" {
		at(1).fingerprint = legacy
	}
	return facts, nil
}

// usableKey is the SQL condition of a key whose secret may verify again:
// any key not revoked. An expired key counts, since an update can lift
// its expiry.
const usableKey = "revoke_time IS NULL"

// pepperCounts counts, by pepper id, the keys that can still be verified
// whose current secret (previous false) or in-grace previous secret
// (previous true) is hashed with it.
func (s *Store) pepperCounts(ctx context.Context, q Querier, previous bool) (map[int]int64, error) {
	now := s.now().UnixNano()
	query := `SELECT pepper_version, count(*) FROM api_keys WHERE ` + usableKey + ` GROUP BY pepper_version`
	var args []any
	if previous {
		query = `SELECT previous_pepper_version, count(*) FROM api_keys WHERE ` + usableKey + `
			AND previous_hash IS NOT NULL AND previous_expire_time > ? GROUP BY previous_pepper_version`
		args = append(args, now)
	}
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	counts := map[int]int64{}
	for rows.Next() {
		var id int
		var n int64
		if err := rows.Scan(&id, &n); err != nil {
			return nil, err
		}
		counts[id] = n
	}
	return counts, rows.Err()
}

// CheckPeppers checks the server's peppers against the database and
// records the new ones, in one transaction.
func (s *Store) CheckPeppers(ctx context.Context, held map[int]string) ([]int, error) {
	var retired []int
	err := s.write(ctx, storeWide, func(ctx context.Context, tx Tx) error {
		retired = nil // the write may run again
		var hasKeys bool
		if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM api_keys)`).Scan(&hasKeys); err != nil {
			return err
		}
		if !hasKeys {
			// Nothing is hashed yet: the server's peppers are the database's.
			if _, err := tx.ExecContext(ctx, `DELETE FROM settings WHERE name LIKE 'pepper/%' OR name = ?`, legacyPepperFingerprint); err != nil {
				return err
			}
			return recordPeppers(ctx, tx, held, nil)
		}
		facts, err := readPepperFacts(ctx, tx)
		if err != nil {
			return err
		}
		for _, id := range sortedIDs(held) {
			if f := facts[id]; f != nil && f.fingerprint != "" && f.fingerprint != held[id] {
				return latchkey.Errorf(latchkey.CodeFailedPrecondition, "pepper %d is not the one this database's keys were hashed with", id)
			}
		}
		var missing []int
		for _, previous := range []bool{false, true} {
			counts, err := s.pepperCounts(ctx, tx, previous)
			if err != nil {
				return err
			}
			for id := range counts {
				_, ok := held[id]
				if f := facts[id]; !ok && (f == nil || !f.retired) && !slices.Contains(missing, id) {
					missing = append(missing, id)
				}
			}
		}
		if len(missing) > 0 {
			slices.Sort(missing)
			return latchkey.Errorf(latchkey.CodeFailedPrecondition, "keys of this database are hashed with %s, which this server does not hold", pepperNames(missing))
		}
		for _, id := range sortedIDs(held) {
			if f := facts[id]; f != nil && f.retired {
				retired = append(retired, id)
			}
		}
		return recordPeppers(ctx, tx, held, facts)
	})
	return retired, err
}

// recordPeppers writes the fingerprints of held that the settings lack.
func recordPeppers(ctx context.Context, tx Tx, held map[int]string, facts map[int]*pepperFacts) error {
	for _, id := range sortedIDs(held) {
		if _, err := tx.ExecContext(ctx, `INSERT INTO settings (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING`,
			pepperSetting(id, "fingerprint"), held[id]); err != nil {
			return err
		}
	}
	one := held[1]
	if f := facts[1]; f != nil && f.fingerprint != "" {
		one = f.fingerprint // recorded before, by this server or another
	}
	if one == "" {
		return nil
	}
	// Pepper 1's row under its new name, even from a server that no longer
	// holds pepper 1, and under its legacy name too: a binary from before
	// pepper ids reads only that one, and would take any pepper without it.
	for _, name := range []string{pepperSetting(1, "fingerprint"), legacyPepperFingerprint} {
		if _, err := tx.ExecContext(ctx, `INSERT INTO settings (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING`, name, one); err != nil {
			return err
		}
	}
	return nil
}

// PepperUsage counts the keys of every pepper in use or recorded.
func (s *Store) PepperUsage(ctx context.Context) ([]latchkey.PepperUse, error) {
	facts, err := readPepperFacts(ctx, s.read)
	if err != nil {
		return nil, s.wrap(ctx, err)
	}
	current, err := s.pepperCounts(ctx, s.read, false)
	if err != nil {
		return nil, s.wrap(ctx, err)
	}
	previous, err := s.pepperCounts(ctx, s.read, true)
	if err != nil {
		return nil, s.wrap(ctx, err)
	}
	ids := map[int]bool{}
	for id := range facts {
		ids[id] = true
	}
	for id := range current {
		ids[id] = true
	}
	for id := range previous {
		ids[id] = true
	}
	var uses []latchkey.PepperUse
	for _, id := range sortedIDs(ids) {
		u := latchkey.PepperUse{ID: id, Keys: current[id], Previous: previous[id]}
		if f := facts[id]; f != nil {
			u.Recorded, u.Retired = f.fingerprint != "", f.retired
		}
		uses = append(uses, u)
	}
	return uses, nil
}

// RetirePepper records a pepper as retired, unless keys still need it and
// force is not set.
func (s *Store) RetirePepper(ctx context.Context, id int, force bool) ([]string, error) {
	var stranded []string
	err := s.write(ctx, storeWide, func(ctx context.Context, tx Tx) error {
		stranded = nil
		now := s.now().UnixNano()
		rows, err := tx.QueryContext(ctx, `SELECT id FROM api_keys WHERE `+usableKey+`
			AND (pepper_version = ? OR (previous_hash IS NOT NULL AND previous_expire_time > ? AND previous_pepper_version = ?))
			ORDER BY id`, id, now, id)
		if err != nil {
			return err
		}
		for rows.Next() {
			var keyID string
			if err := rows.Scan(&keyID); err != nil {
				rows.Close()
				return err
			}
			stranded = append(stranded, keyID)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if len(stranded) > 0 && !force {
			return latchkey.Errorf(latchkey.CodeFailedPrecondition, "%d keys are still hashed with pepper %d", len(stranded), id)
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO settings (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING`,
			pepperSetting(id, "retired"), strconv.FormatInt(now, 10))
		return err
	})
	if err != nil {
		return nil, err
	}
	return stranded, nil
}

// RehashKeys replaces old-pepper hashes that keys still hold.
func (s *Store) RehashKeys(ctx context.Context, rehashes []latchkey.Rehash) error {
	if len(rehashes) == 0 {
		return nil
	}
	return s.write(ctx, storeWide, func(ctx context.Context, tx Tx) error {
		for _, r := range rehashes {
			// The hash compared is the key's current or its previous one;
			// a secret's hash is never both, so at most one statement
			// changes the row.
			if r.New.PepperVersion <= r.Old.PepperVersion {
				continue // a rehash only ever moves a key to a newer pepper
			}
			if _, err := tx.ExecContext(ctx, `UPDATE api_keys SET secret_hash = ?, pepper_version = ?
				WHERE id = ? AND secret_hash = ? AND pepper_version = ?`,
				r.New.Hash, r.New.PepperVersion, r.KeyID, r.Old.Hash, r.Old.PepperVersion); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `UPDATE api_keys SET previous_hash = ?, previous_pepper_version = ?
				WHERE id = ? AND previous_hash = ? AND previous_pepper_version = ?`,
				r.New.Hash, r.New.PepperVersion, r.KeyID, r.Old.Hash, r.Old.PepperVersion); err != nil {
				return err
			}
		}
		return nil
	})
}

func sortedIDs[V any](m map[int]V) []int {
	ids := make([]int, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// pepperNames names peppers in a message: "pepper 2", "peppers 1 and 3".
func pepperNames(ids []int) string {
	if len(ids) == 1 {
		return fmt.Sprintf("pepper %d", ids[0])
	}
	parts := make([]string, len(ids))
	for i, id := range ids {
		parts[i] = strconv.Itoa(id)
	}
	return "peppers " + strings.Join(parts[:len(parts)-1], ", ") + " and " + parts[len(parts)-1]
}
