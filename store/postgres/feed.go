package postgres

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
)

// DefaultSyncBound is the default of FeedOptions.Bound.
const DefaultSyncBound = time.Second

// changesChannel is the NOTIFY channel of the key_changes triggers.
const changesChannel = "latchkey_key_changes"

// Invalidator drops cached verification state: the server's verifier.
type Invalidator interface {
	Invalidate(keyID string)
	InvalidateAll()
}

// FeedOptions configures a Feed.
type FeedOptions struct {
	// Bound is the longest a change committed by another replica may go
	// unseen by this one. Notifications usually arrive within
	// milliseconds; polls every Bound/4 catch any that were lost; and when
	// no poll has succeeded for Bound, Fresh turns false, so the cache is
	// not trusted and verification reads the database or fails.
	Bound  time.Duration
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Feed brings the changes other replicas commit to this replica's
// verification cache: it LISTENs for the triggers' notifications, polls
// key_changes past the last sequence number it applied, and flushes the
// whole cache whenever it may have missed something (a listener that
// reconnected, changes pruned before it read them).
type Feed struct {
	store  *Store
	bound  time.Duration
	logger *slog.Logger
	now    func() time.Time

	last     int64        // the sequence number applied last; the poller's own
	syncedAt atomic.Int64 // Unix ns when the last complete poll began
}

// Feed returns a change feed over the store's database. Run it with Run.
func (s *Store) Feed(opts FeedOptions) *Feed {
	if opts.Bound <= 0 {
		opts.Bound = DefaultSyncBound
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Feed{store: s, bound: opts.Bound, logger: opts.Logger, now: opts.Now}
}

// Fresh reports whether every change committed more than the bound before
// now has been applied, so cached verdicts may be trusted. Before Run's
// first poll, and whenever polls keep failing, it is false.
func (f *Feed) Fresh(now time.Time) bool {
	synced := f.syncedAt.Load()
	return synced != 0 && now.UnixNano()-synced <= int64(f.bound)
}

// Run applies changes to sink until ctx ends. It starts from the present:
// sink is expected to hold nothing older than the call, and is flushed
// anyway.
func (f *Feed) Run(ctx context.Context, sink Invalidator) error {
	// Until the present is known, Fresh stays false and the cache unused.
	start := f.now()
	var down outage
	for {
		err := f.store.db.QueryRowContext(ctx, `SELECT seq FROM change_counter WHERE id = 1`).Scan(&f.last)
		if err == nil {
			down.over(f.logger, f.now(), "reading the change sequence works again")
			break
		}
		if ctx.Err() == nil {
			down.failed(f.logger, f.now(), err, "reading the change sequence failed; retrying every bound/4", "bound", f.bound)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(f.bound / 4):
		}
		start = f.now()
	}
	sink.InvalidateAll()
	f.syncedAt.Store(start.UnixNano())
	done := make(chan struct{})
	go func() {
		defer close(done)
		f.listen(ctx, sink)
	}()
	f.poll(ctx, sink)
	<-done
	return nil
}

// poll reads key_changes every bound/4 until ctx ends, and prunes it.
func (f *Feed) poll(ctx context.Context, sink Invalidator) {
	tick := time.NewTicker(f.bound / 4)
	defer tick.Stop()
	lastPrune := time.Time{}
	var down outage
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		start := f.now()
		if err := f.catchUp(ctx, sink); err != nil {
			if ctx.Err() == nil {
				down.failed(f.logger, start, err, "polling key changes failed; cached verdicts expire with the sync bound and verification then needs the database", "bound", f.bound)
			}
			continue
		}
		down.over(f.logger, f.now(), "polling key changes works again")
		f.syncedAt.Store(start.UnixNano())
		if start.Sub(lastPrune) > time.Minute {
			lastPrune = start
			f.prune(ctx)
		}
	}
}

// catchUp applies every change past f.last.
func (f *Feed) catchUp(ctx context.Context, sink Invalidator) error {
	ctx, cancel := context.WithTimeout(ctx, f.bound)
	defer cancel()
	for {
		rows, err := f.store.db.QueryContext(ctx, `SELECT seq, key_id FROM key_changes WHERE seq > $1 ORDER BY seq LIMIT 1000`, f.last)
		if err != nil {
			return err
		}
		n := 0
		for rows.Next() {
			var seq int64
			var keyID *string
			if err := rows.Scan(&seq, &keyID); err != nil {
				rows.Close()
				return err
			}
			// Sequence numbers commit in order (see the migration), so a
			// hole can only be rows pruned before this replica read them.
			if seq != f.last+1 {
				sink.InvalidateAll()
			}
			if keyID == nil {
				sink.InvalidateAll()
			} else {
				sink.Invalidate(*keyID)
			}
			f.last = seq
			n++
		}
		if err := rows.Err(); err != nil {
			rows.Close()
			return err
		}
		rows.Close()
		if n < 1000 {
			return nil
		}
	}
}

// prune deletes changes old enough that no replica that polls can still
// need them; a replica that was away longer finds a hole and flushes.
func (f *Feed) prune(ctx context.Context) {
	if _, err := f.store.db.ExecContext(ctx, `DELETE FROM key_changes WHERE change_time < now() - interval '10 minutes'`); err != nil && ctx.Err() == nil {
		f.logger.Warn("pruning key changes failed", "err", err)
	}
}

// listen applies notifications as they arrive, reconnecting after any
// failure and flushing sink each time it (re)starts listening, since
// notifications sent while it was away are gone.
func (f *Feed) listen(ctx context.Context, sink Invalidator) {
	const firstBackoff = 10 * time.Millisecond
	backoff := firstBackoff
	var down outage
	for ctx.Err() == nil {
		listened, err := f.listenOnce(ctx, sink, func() { down.over(f.logger, f.now(), "key change listener is listening again") })
		if ctx.Err() != nil {
			return
		}
		down.failed(f.logger, f.now(), err, "key change listener lost its connection; polling covers the gap")
		if listened {
			// A connection that worked is retried at once: the database is
			// there, only this session ended.
			backoff = firstBackoff
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, f.bound)
	}
}

// listenOnce listens on one connection until it fails, and reports whether
// it got as far as listening. It calls listening once it listens.
func (f *Feed) listenOnce(ctx context.Context, sink Invalidator, listening func()) (listened bool, err error) {
	conn, err := pgx.ConnectConfig(ctx, f.store.pool.Config().ConnConfig.Copy())
	if err != nil {
		return false, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "LISTEN "+changesChannel); err != nil {
		return false, err
	}
	// Whatever changed while nobody listened is dropped from the cache;
	// the poller would find it too, but only after up to bound/4.
	sink.InvalidateAll()
	listening()
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			if errors.Is(err, context.Canceled) {
				return true, nil
			}
			return true, err
		}
		_, keyID, _ := strings.Cut(n.Payload, " ")
		if keyID == "*" || keyID == "" {
			sink.InvalidateAll()
		} else {
			sink.Invalidate(keyID)
		}
	}
}

// outage turns a run of failures of one loop into two log lines: a
// warning at the first failure, with its error, and a line when it works
// again, with how long it did not. Failures between them are logged at
// debug level only: during an outage the loops retry several times a
// second, and one line per retry would bury everything else.
type outage struct {
	since    time.Time // zero while working
	failures int
}

// failed records a failure at now.
func (o *outage) failed(logger *slog.Logger, now time.Time, err error, msg string, args ...any) {
	o.failures++
	if !o.since.IsZero() {
		logger.Debug(msg, "err", err, "failures", o.failures)
		return
	}
	o.since = now
	logger.Warn(msg, append([]any{"err", err}, args...)...)
}

// over records a success at now, which ends the outage if there was one.
func (o *outage) over(logger *slog.Logger, now time.Time, msg string) {
	if o.since.IsZero() {
		return
	}
	logger.Info(msg, "outage", now.Sub(o.since).Round(time.Millisecond).String(), "failures", o.failures)
	o.since, o.failures = time.Time{}, 0
}
