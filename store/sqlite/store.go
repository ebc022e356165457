// Package sqlite is Latchkey's embedded store: latchkey.Store on SQLite
// through modernc.org/sqlite (pure Go, no cgo).
//
// The database runs in WAL mode with synchronous=FULL, so a write is
// acknowledged only once it is on disk: an issued key or a revocation
// survives a crash of the process and a loss of power. SQLite admits one
// writer at a time, so the store keeps one writer connection, whose
// transactions begin IMMEDIATE (taking the write lock at once instead of
// failing with SQLITE_BUSY when a reader turns writer), and a pool of
// read-only connections.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pressly/goose/v3"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/sqlstore"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Options configures Open.
type Options struct {
	// CursorKey seals page tokens; it must be secret and stable across
	// restarts, or page tokens stop working when the server restarts.
	CursorKey []byte
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Store is latchkey.Store on one SQLite database file. The queries are
// sqlstore's; this package runs them through one writer connection with
// group commit and a read pool, both with cached prepared statements.
type Store struct {
	*sqlstore.Store
	writer *sql.DB
	reader *sql.DB
	// writeStmts and read cache prepared statements of the writer and of
	// the read pool.
	writeStmts *stmts
	read       *stmts
	writes     chan *writeJob // to the committer, unbuffered
	closing    chan struct{}
	committer  sync.WaitGroup
	closeOnce  sync.Once
	closeErr   error
	// commitMetrics is set by Instrument; the committer reads it.
	commitMetrics atomic.Pointer[commitMetrics]
}

var _ latchkey.Store = (*Store)(nil)

// Open opens (creating if needed) the database at path and applies every
// migration that it lacks.
func Open(ctx context.Context, path string, opts Options) (*Store, error) {
	if len(opts.CursorKey) == 0 {
		return nil, errors.New("sqlite: Options.CursorKey is required")
	}
	writer, err := sql.Open("sqlite", dsn(path, false))
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	writer.SetMaxOpenConns(1)
	writer.SetMaxIdleConns(1)
	writer.SetConnMaxLifetime(0)
	writer.SetConnMaxIdleTime(0)
	if err := migrate(ctx, writer); err != nil {
		writer.Close()
		return nil, fmt.Errorf("sqlite: migrate %s: %w", path, err)
	}
	reader, err := sql.Open("sqlite", dsn(path, true))
	if err != nil {
		writer.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	readers := max(4, runtime.GOMAXPROCS(0))
	reader.SetMaxOpenConns(readers)
	reader.SetMaxIdleConns(readers)
	reader.SetConnMaxIdleTime(0)
	s := &Store{
		writer: writer, reader: reader,
		writes: make(chan *writeJob), closing: make(chan struct{}),
		writeStmts: &stmts{db: writer}, read: &stmts{db: reader},
	}
	s.Store, err = sqlstore.New(sqlstore.Backend{
		Read: s.read, Write: s.write, Dialect: dialect{}, Now: opts.Now, CursorKey: opts.CursorKey,
	})
	if err != nil {
		writer.Close()
		reader.Close()
		return nil, err
	}
	s.committer.Go(s.commitLoop)
	return s, nil
}

// dsn builds the connection string. The pragmas are in the DSN because a
// PRAGMA executed on a *sql.DB reaches only one pooled connection;
// busy_timeout comes first so that the others wait rather than fail.
func dsn(path string, readOnly bool) string {
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "foreign_keys(1)")
	// FULL: WAL is fsynced at every commit, so an acknowledged write
	// survives power loss, not only a process crash.
	q.Add("_pragma", "synchronous(FULL)")
	// The committer gives every write its own savepoint; SQLite keeps a
	// savepoint's undo pages in a temporary file unless temp_store is
	// MEMORY, and that file cost a write per page changed.
	q.Add("_pragma", "temp_store(MEMORY)")
	if readOnly {
		q.Add("_pragma", "query_only(1)")
	} else {
		q.Set("_txlock", "immediate")
	}
	return "file:" + (&url.URL{Path: path}).EscapedPath() + "?" + q.Encode()
}

func migrate(ctx context.Context, db *sql.DB) error {
	fsys, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return err
	}
	provider, err := goose.NewProvider(goose.DialectSQLite3, db, fsys)
	if err != nil {
		return err
	}
	_, err = provider.Up(ctx)
	return err
}

// Close closes the database. Calling it again is harmless.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		close(s.closing)
		s.committer.Wait()
		s.writeStmts.close()
		s.read.close()
		s.closeErr = errors.Join(s.reader.Close(), s.writer.Close())
	})
	return s.closeErr
}

// dialect is SQLite's SQL where it differs.
type dialect struct{}

func (dialect) LabelCondition(column string) string {
	return "EXISTS (SELECT 1 FROM json_each(" + column + ") AS l WHERE l.key = ? AND l.value = ?)"
}

func (dialect) IsUniqueViolation(err error) bool {
	var e *sqlite.Error
	return errors.As(err, &e) && e.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE
}

// Classify is the one place where SQLite's result codes say what a failed
// call means for the caller. SQLITE_FULL (the disk, or the file system
// holding the database, has no room) is storage full. The file that cannot
// be opened, read or written (CANTOPEN, IOERR and its extended codes) and
// the lock another process held past busy_timeout (BUSY) are the database
// being unavailable: none says our query was wrong, and each may pass.
func (dialect) Classify(err error) latchkey.Code {
	var e *sqlite.Error
	if !errors.As(err, &e) {
		return ""
	}
	// Extended codes keep the primary code in their low byte.
	switch e.Code() & 0xff {
	case sqlite3.SQLITE_FULL:
		return latchkey.CodeResourceExhausted
	case sqlite3.SQLITE_IOERR, sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_BUSY:
		return latchkey.CodeUnavailable
	}
	return ""
}

// ownFailure reports whether err, returned by one write's body, is that
// write's own answer (a domain error such as not_found, or a constraint
// the write broke), so that undoing the write's savepoint is enough. Any
// other failure of SQLite, even one the body wrapped in a domain error,
// may have rolled back the whole shared transaction (SQLite does so on
// SQLITE_FULL and SQLITE_IOERR), so the transaction must be abandoned.
func ownFailure(err error) bool {
	var domain *latchkey.Error
	if !errors.As(err, &domain) {
		return false
	}
	var e *sqlite.Error
	return !errors.As(err, &e) || e.Code()&0xff == sqlite3.SQLITE_CONSTRAINT
}
