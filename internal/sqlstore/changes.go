package sqlstore

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/latchkey/latchkey"
)

// The change log. Every write that can change a verdict records its
// changes in its own transaction (recordChange); once the transaction has
// committed, the shared write path (Store.write) brings them to this
// process's followers before the write returns. So no caller of the store
// has to remember to invalidate anything, and a write that bypasses every
// handler is followed all the same.

// ChangeRetention is how long the log keeps a change. A follower that has
// not read the log for longer (a replica cut off from the database, a
// watcher that went away) finds a hole and resets.
const ChangeRetention = 10 * time.Minute

// pruneEvery is how often, in sequence numbers, a recording write also
// deletes the changes older than ChangeRetention: pruning rides on the
// writes, so it needs no goroutine of its own and costs one indexed delete
// per pruneEvery changes.
const pruneEvery = 256

// changeTx is the transaction every write body gets: it remembers whether
// the body recorded a change, so that only those writes read the log back.
type changeTx struct {
	Tx
	recorded bool
}

// recordChange appends c to the log, in tx. The sequence number comes from
// the one row of change_counter, which the transaction keeps locked until
// it ends: sequence numbers therefore commit in order, and a follower that
// reads past its last one cannot step over a change that commits late.
func (s *Store) recordChange(ctx context.Context, tx Tx, c latchkey.Change) error {
	ct, ok := tx.(*changeTx)
	if !ok {
		return latchkey.Internal(errors.New("sqlstore: a change recorded outside Store.write"))
	}
	var seq int64
	if err := tx.QueryRowContext(ctx, `UPDATE change_counter SET seq = seq + 1 WHERE id = 1 RETURNING seq`).Scan(&seq); err != nil {
		return err
	}
	now := s.now()
	if _, err := tx.ExecContext(ctx, `INSERT INTO key_changes (seq, account_id, kind, key_id, profile_id, workspace_id, change_time)
		VALUES (?, ?, ?, ?, ?, ?, ?)`, seq, c.AccountID, string(c.Kind), c.KeyID, c.ProfileID, c.WorkspaceID, now.UnixNano()); err != nil {
		return err
	}
	if seq%pruneEvery == 0 {
		if _, err := tx.ExecContext(ctx, `DELETE FROM key_changes WHERE seq < ? AND change_time < ?`,
			seq, now.Add(-ChangeRetention).UnixNano()); err != nil {
			return err
		}
	}
	ct.recorded = true
	return nil
}

// recordProfileChange records a change of the grants of g's profile: one for each key that
// acts through it (an API key's own profile, the system profile), or one
// for the profile alone when no key does.
func (s *Store) recordProfileChange(ctx context.Context, tx Tx, kind latchkey.ChangeKind, g latchkey.Grant) error {
	rows, err := tx.QueryContext(ctx, `SELECT id FROM api_keys WHERE profile_id = ?`, g.ProfileID)
	if err != nil {
		return err
	}
	var keys []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return err
		}
		keys = append(keys, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	c := latchkey.Change{AccountID: g.AccountID, Kind: kind, ProfileID: g.ProfileID, WorkspaceID: g.WorkspaceID}
	if len(keys) == 0 {
		return s.recordChange(ctx, tx, c)
	}
	for _, id := range keys {
		c.KeyID = id
		if err := s.recordChange(ctx, tx, c); err != nil {
			return err
		}
	}
	return nil
}

// ReadChanges returns up to limit changes after seq, in order.
func (s *Store) ReadChanges(ctx context.Context, after int64, limit int) ([]latchkey.Change, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT seq, account_id, kind, key_id, profile_id, workspace_id, change_time
		FROM key_changes WHERE seq > ? ORDER BY seq LIMIT ?`, after, limit)
	if err != nil {
		return nil, s.wrap(ctx, err)
	}
	defer rows.Close()
	var out []latchkey.Change
	for rows.Next() {
		var c latchkey.Change
		var kind string
		var at int64
		if err := rows.Scan(&c.Seq, &c.AccountID, &kind, &c.KeyID, &c.ProfileID, &c.WorkspaceID, &at); err != nil {
			return nil, s.wrap(ctx, err)
		}
		c.Kind, c.Time = latchkey.ChangeKind(kind), time.Unix(0, at).UTC()
		out = append(out, c)
	}
	return out, s.wrap(ctx, rows.Err())
}

// LastChange returns the newest sequence number, 0 before any change.
func (s *Store) LastChange(ctx context.Context) (int64, error) {
	var seq int64
	err := s.read.QueryRowContext(ctx, `SELECT seq FROM change_counter WHERE id = 1`).Scan(&seq)
	return seq, s.wrap(ctx, err)
}

// Follower applies the log to one sink from a position. The store syncs it
// after each of its own writes that recorded a change; a backend shared by
// several processes also syncs it from a poll or a notification (see
// store/postgres).
type Follower struct {
	store *Store
	sink  latchkey.ChangeSink

	mu      sync.Mutex
	last    int64 // the sequence number applied last
	started bool
}

// NewFollower returns a follower of the log for sink. It follows nothing
// until Start.
func (s *Store) NewFollower(sink latchkey.ChangeSink) *Follower {
	return &Follower{store: s, sink: sink}
}

// Start places the follower at the end of the log and has the store sync
// it after each of its writes. The follower is registered before its
// position is read, so that a write committing meanwhile resets the sink
// (Sync fails until the position is known) rather than slipping past it.
// The sink is reset once more when the position is known: it is expected
// to hold nothing older than the call, and is flushed anyway.
func (f *Follower) Start(ctx context.Context) error {
	f.store.followers.Store(f, struct{}{})
	last, err := f.store.LastChange(ctx)
	if err != nil {
		f.store.followers.Delete(f)
		return err
	}
	f.mu.Lock()
	f.last, f.started = last, true
	f.mu.Unlock()
	f.sink.ResetChanges()
	return nil
}

// Stop ends the store's syncs of f.
func (f *Follower) Stop() { f.store.followers.Delete(f) }

// errNotStarted is Sync's error before Start has placed the follower.
var errNotStarted = latchkey.Internal(errors.New("sqlstore: the follower's position is not known yet"))

// Sync applies every change past the follower's position, marked as
// learned from source. A hole in the sequence can only be changes pruned
// before the follower read them, so it resets the sink. On error the
// position stays where it was.
func (f *Follower) Sync(ctx context.Context, source latchkey.ChangeSource) error {
	const page = 1000
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.started {
		return errNotStarted
	}
	for {
		changes, err := f.store.ReadChanges(ctx, f.last, page)
		if err != nil {
			return err
		}
		for _, c := range changes {
			if c.Seq != f.last+1 {
				f.sink.ResetChanges()
			}
			c.Source = source
			f.sink.ApplyChange(c)
			f.last = c.Seq
		}
		if len(changes) < page {
			return nil
		}
	}
}

// localFeed is the ChangeFeed of a store that no other process writes.
type localFeed struct{ f *Follower }

func (l localFeed) Fresh(time.Time) bool { return true }
func (l localFeed) Close()               { l.f.Stop() }

// Follow feeds sink every change this store writes, before each write
// returns. It suits a database that no other process writes (SQLite); a
// shared one adds its own sync (store/postgres).
func (s *Store) Follow(sink latchkey.ChangeSink) (latchkey.ChangeFeed, error) {
	f := s.NewFollower(sink)
	if err := f.Start(context.Background()); err != nil {
		return nil, err
	}
	return localFeed{f}, nil
}

// syncTimeout bounds the read that brings a committed write's changes to
// the followers.
const syncTimeout = 5 * time.Second

// publish syncs every follower after a write that recorded changes. It
// runs whether or not the caller is still waiting: the write committed. A
// follower that cannot read the log is reset rather than left holding
// what the write made wrong.
func (s *Store) publish(ctx context.Context) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), syncTimeout)
	defer cancel()
	s.followers.Range(func(k, _ any) bool {
		f := k.(*Follower)
		if err := f.Sync(ctx, latchkey.ChangeFromWrite); err != nil {
			f.sink.ResetChanges()
		}
		return true
	})
}
