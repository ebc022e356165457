package postgres

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/sqlstore"
)

// DefaultSyncBound is the default of Options.SyncBound.
const DefaultSyncBound = time.Second

// changesChannel is the NOTIFY channel of the key_changes trigger.
const changesChannel = "latchkey_key_changes"

// Feed brings the changes that every replica commits to one sink, through
// the shared store's Follower: this replica's own writes are applied
// before they return (the shared write path), and the others' by
// LISTENing for the log's notifications and polling it past the last
// sequence number applied. Whenever it may have missed something (a
// listener that reconnected, changes pruned before it read them) it
// resets the sink.
type Feed struct {
	store    *Store
	follower *sqlstore.Follower
	sink     latchkey.ChangeSink
	bound    time.Duration
	logger   *slog.Logger
	now      func() time.Time

	syncedAt atomic.Int64 // Unix ns when the last complete poll began
	stop     context.CancelFunc
	done     chan struct{}
}

// Follow feeds sink every change committed to the database, by this
// replica or any other: this replica's own writes before they return,
// the others' within Options.SyncBound. While that bound cannot be kept
// (the database cannot be polled), the feed is not Fresh, so that the
// verification cache is not trusted. Close the feed to stop it.
func (s *Store) Follow(sink latchkey.ChangeSink) (latchkey.ChangeFeed, error) {
	ctx, stop := context.WithCancel(context.Background())
	f := &Feed{
		store: s, follower: s.NewFollower(sink), sink: sink,
		bound: s.bound, logger: s.logger, now: s.now,
		stop: stop, done: make(chan struct{}),
	}
	go func() {
		defer close(f.done)
		f.run(ctx)
	}()
	return f, nil
}

// Fresh reports whether every change committed more than the bound before
// now has been applied, so cached verdicts may be trusted. Before the
// feed's first poll, and whenever polls keep failing, it is false.
func (f *Feed) Fresh(now time.Time) bool {
	synced := f.syncedAt.Load()
	return synced != 0 && now.UnixNano()-synced <= int64(f.bound)
}

// Close stops the feed and waits for it.
func (f *Feed) Close() {
	f.stop()
	<-f.done
	f.follower.Stop()
}

// run places the follower at the end of the log, retrying until the
// database answers, then listens and polls until ctx ends.
func (f *Feed) run(ctx context.Context) {
	// Until the present is known, Fresh stays false and the cache unused.
	var down outage
	for {
		start := f.now()
		err := f.follower.Start(ctx)
		if err == nil {
			down.over(f.logger, f.now(), "reading the change sequence works again")
			f.syncedAt.Store(start.UnixNano())
			break
		}
		if ctx.Err() != nil {
			return
		}
		down.failed(f.logger, f.now(), err, "reading the change sequence failed; retrying every bound/4", "bound", f.bound)
		select {
		case <-ctx.Done():
			return
		case <-time.After(f.bound / 4):
		}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		f.listen(ctx)
	}()
	f.poll(ctx)
	<-done
}

// poll syncs the follower every bound/4 until ctx ends.
func (f *Feed) poll(ctx context.Context) {
	tick := time.NewTicker(f.bound / 4)
	defer tick.Stop()
	var down outage
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		start := f.now()
		if err := f.sync(ctx, latchkey.ChangeFromPoll); err != nil {
			if ctx.Err() == nil {
				down.failed(f.logger, start, err, "polling key changes failed; cached verdicts expire with the sync bound and verification then needs the database", "bound", f.bound)
			}
			continue
		}
		down.over(f.logger, f.now(), "polling key changes works again")
		f.syncedAt.Store(start.UnixNano())
	}
}

// sync applies every change past the follower's position, within the
// bound, as learned from source.
func (f *Feed) sync(ctx context.Context, source latchkey.ChangeSource) error {
	ctx, cancel := context.WithTimeout(ctx, f.bound)
	defer cancel()
	return f.follower.Sync(ctx, source)
}

// listen syncs on each notification, reconnecting after any failure and
// resetting the sink each time it (re)starts listening, since changes
// committed while it was away were announced to nobody.
func (f *Feed) listen(ctx context.Context) {
	const firstBackoff = 10 * time.Millisecond
	backoff := firstBackoff
	var down outage
	for ctx.Err() == nil {
		listened, err := f.listenOnce(ctx, func() { down.over(f.logger, f.now(), "key change listener is listening again") })
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
func (f *Feed) listenOnce(ctx context.Context, listening func()) (listened bool, err error) {
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
	f.sink.ResetChanges()
	listening()
	for {
		if _, err := conn.WaitForNotification(ctx); err != nil {
			if errors.Is(err, context.Canceled) {
				return true, nil
			}
			return true, err
		}
		// The notification says only that the log grew; the log itself
		// says what changed. A failed read is left to the poller, which
		// also decides freshness.
		_ = f.sync(ctx, latchkey.ChangeFromNotification)
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
