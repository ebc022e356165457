// Package postgres is Latchkey's store for deployments of many replicas:
// latchkey.Store on PostgreSQL through pgx, sharing internal/sqlstore's
// queries with the SQLite store.
//
// Every write transaction runs at SERIALIZABLE isolation and is retried
// when PostgreSQL reports a serialization failure or a deadlock, so the
// transaction bodies keep the guarantees they have on SQLite's single
// writer (a quota checked and a key inserted together, one operator
// account however many replicas bootstrap at once) without locking by
// hand. Changes that can alter a key's verdict are published through a
// change feed (see Feed) for the verification caches of every replica.
package postgres

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/sqlstore"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Options configures Open.
type Options struct {
	// CursorKey seals page tokens; every replica must use the same one.
	CursorKey []byte
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// SyncBound is the longest a change committed by another replica may
	// go unseen by a follower of this store (see Follow); 0 means
	// DefaultSyncBound.
	SyncBound time.Duration
	// Logger receives the change feed's warnings; nil means slog.Default.
	Logger *slog.Logger
}

// Store is latchkey.Store on one PostgreSQL database.
type Store struct {
	*sqlstore.Store
	pool   *pgxpool.Pool
	db     *sql.DB
	dsn    string
	bound  time.Duration
	logger *slog.Logger
	now    func() time.Time
}

// writeTimeout bounds a write, retries included. Writes run detached from
// the caller's context once begun, so that a caller who gives up cannot
// roll back a transaction whose commit is already on its way.
const writeTimeout = 30 * time.Second

// Open connects to the database at dsn (a postgres:// URL or key=value
// string) and applies every migration it lacks. Replicas starting at once
// migrate one at a time, under an advisory lock.
func Open(ctx context.Context, dsn string, opts Options) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", redact(err))
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", redact(err))
	}
	db := stdlib.OpenDBFromPool(pool)
	if err := migrate(ctx, db); err != nil {
		db.Close()
		pool.Close()
		return nil, fmt.Errorf("postgres: migrate: %w", redact(err))
	}
	if opts.SyncBound <= 0 {
		opts.SyncBound = DefaultSyncBound
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	s := &Store{pool: pool, db: db, dsn: dsn, bound: opts.SyncBound, logger: opts.Logger, now: opts.Now}
	s.Store, err = sqlstore.New(sqlstore.Backend{
		Read:      querier{db},
		Write:     s.write,
		Dialect:   dialect{},
		Now:       opts.Now,
		CursorKey: opts.CursorKey,
	})
	if err != nil {
		db.Close()
		pool.Close()
		return nil, err
	}
	return s, nil
}

// redact keeps a password in a connection string out of an error.
func redact(err error) error {
	var pe *pgconn.ParseConfigError
	if errors.As(err, &pe) {
		return errors.New("the database URL cannot be parsed")
	}
	return err
}

func migrate(ctx context.Context, db *sql.DB) error {
	fsys, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return err
	}
	// Replicas that start together wait their turn, probing each second
	// (goose's default is every 5 s) for up to five minutes.
	locker, err := lock.NewPostgresSessionLocker(lock.WithLockTimeout(1, 300))
	if err != nil {
		return err
	}
	provider, err := goose.NewProvider(goose.DialectPostgres, db, fsys, goose.WithSessionLocker(locker))
	if err != nil {
		return err
	}
	_, err = provider.Up(ctx)
	return err
}

// Close closes every connection. Calling it again is harmless.
func (s *Store) Close() error {
	err := s.db.Close()
	s.pool.Close()
	return err
}

// write runs fn in a SERIALIZABLE transaction, again from the start while
// it loses to a concurrent one, until writeTimeout.
//
// Writes of one scope (an account) first take an advisory lock on it, on
// the connection and before the transaction begins, so its snapshot is
// taken once the writes ahead of it have committed: they queue rather
// than fail one another. Without the lock, many keys issued at once in one
// account, all updating the account's key count, would mostly fail and
// retry. Conflicts across scopes remain possible and are retried.
//
// A connection that fails is not retried here: database/sql already
// replaces a pooled connection found dead before anything was sent, and a
// connection lost during COMMIT may have committed, so running fn again
// could do twice what was done once. The error goes back to the shared
// store, whose Dialect makes it unavailable (or storage full) for the
// caller to retry.
func (s *Store) write(ctx context.Context, scope string, fn func(context.Context, sqlstore.Tx) error) error {
	deadline := time.Now().Add(writeTimeout)
	for attempt := 1; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		err := s.tryWrite(ctx, deadline, scope, fn)
		if !retryable(err) || time.Now().After(deadline) {
			return err
		}
		// Jittered and growing, so that the transactions that collided do
		// not collide again.
		time.Sleep(time.Duration(rand.Int64N(int64(min(attempt, 20))*int64(time.Millisecond)) + 1))
	}
}

func (s *Store) tryWrite(ctx context.Context, deadline time.Time, scope string, fn func(context.Context, sqlstore.Tx) error) (err error) {
	ctx, cancel := context.WithDeadline(context.WithoutCancel(ctx), deadline)
	defer cancel()
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if scope != "" {
		if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock(hashtextextended($1, 0))`, scope); err != nil {
			return err
		}
		defer func() {
			if _, uerr := conn.ExecContext(ctx, `SELECT pg_advisory_unlock(hashtextextended($1, 0))`, scope); uerr != nil {
				// A connection that may still hold the lock must not go
				// back to the pool: dropping it releases the lock.
				_ = conn.Raw(func(any) error { return driver.ErrBadConn })
			}
		}()
	}
	tx, err := conn.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelSerializable})
	if err != nil {
		return err
	}
	if err := fn(ctx, txn{tx}); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}

// retryable reports whether a transaction failed only because another
// one won a conflict.
func retryable(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "40001" || pe.Code == "40P01")
}

// dialect is PostgreSQL's SQL where it differs.
type dialect struct{}

func (dialect) LabelCondition(column string) string {
	return "(" + column + "::jsonb ->> ?) = ?"
}

func (dialect) IsUniqueViolation(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505"
}

// Classify is the one place where pgx's errors say what a failed call
// means for the caller. The server's own verdicts come as SQLSTATEs:
// 53100 (disk_full) is storage full; class 08 (connection exception),
// 57P01–57P03 (shut down by an administrator, crashed, cannot connect now)
// and 53300 (too many connections) are the database being unavailable.
// Failures below SQL are unavailable too: a connection that could not be
// made, or broke (a network error, an EOF, a closed connection, or
// anything pgx itself calls safe to retry because nothing was sent).
func (dialect) Classify(err error) latchkey.Code {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch {
		case pe.Code == "53100":
			return latchkey.CodeResourceExhausted
		case strings.HasPrefix(pe.Code, "08"), pe.Code == "57P01", pe.Code == "57P02", pe.Code == "57P03", pe.Code == "53300":
			return latchkey.CodeUnavailable
		}
	}
	var connect *pgconn.ConnectError
	var netErr *net.OpError
	switch {
	case errors.As(err, &connect), errors.As(err, &netErr),
		errors.Is(err, driver.ErrBadConn), errors.Is(err, pgconn.ErrConnClosed),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		pgconn.SafeToRetry(err):
		return latchkey.CodeUnavailable
	}
	return ""
}

// querier runs sqlstore's `?` queries on the pool.
type querier struct{ db *sql.DB }

func (q querier) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	return q.db.QueryRowContext(ctx, rebind(query), args...)
}

func (q querier) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return q.db.QueryContext(ctx, rebind(query), args...)
}

// txn runs sqlstore's `?` queries in a transaction.
type txn struct{ tx *sql.Tx }

func (t txn) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	return t.tx.QueryRowContext(ctx, rebind(query), args...)
}

func (t txn) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return t.tx.QueryContext(ctx, rebind(query), args...)
}

func (t txn) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return t.tx.ExecContext(ctx, rebind(query), args...)
}

// rebind turns sqlstore's `?` placeholders into PostgreSQL's $1, $2, ...
// sqlstore's queries hold no `?` in a literal or an operator.
func rebind(query string) string {
	var b strings.Builder
	b.Grow(len(query) + 16)
	n := 0
	for _, r := range query {
		if r == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}
