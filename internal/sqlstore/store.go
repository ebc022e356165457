// Package sqlstore is latchkey.Store over database/sql, shared by the
// SQLite and PostgreSQL stores: every query and every transaction body is
// written once, in SQL both databases speak, and a Backend supplies what
// differs: how a write transaction is run, how reads reach the database,
// and the Dialect of the few expressions that are not portable.
package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"sync"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/cursor"
)

// Querier runs reads: the read pool of a database, or a transaction.
type Querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// Tx is a write transaction. Queries use `?` placeholders.
type Tx interface {
	Querier
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// Dialect holds the SQL that differs between databases.
type Dialect interface {
	// LabelCondition returns a condition, with two placeholders (label key,
	// then value), that holds when the JSON object in column has the pair.
	LabelCondition(column string) string
	// IsUniqueViolation reports whether err is a unique constraint failure.
	IsUniqueViolation(err error) bool
	// Classify says what a failure of the database means for the caller:
	// latchkey.CodeUnavailable when the database cannot be reached or
	// cannot serve now, latchkey.CodeResourceExhausted when its storage is
	// full, and "" for anything else. Both codes tell the caller that
	// trying again later may work.
	Classify(err error) latchkey.Code
}

// Backend is what a database brings to the shared store.
type Backend struct {
	// Read runs reads outside any write transaction.
	Read Querier
	// Write runs fn in a write transaction and returns once that
	// transaction committed or was undone. fn may be run more than once
	// (a backend may retry a transaction that lost a conflict), so it must
	// not act outside the transaction. A domain error (*latchkey.Error)
	// from fn undoes fn's work and is returned as it is. scope is the
	// account whose rows fn changes, or "" when it may change any: a
	// backend may run the writes of one scope one at a time, so they
	// queue instead of conflicting.
	Write   func(ctx context.Context, scope string, fn func(context.Context, Tx) error) error
	Dialect Dialect
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// CursorKey seals page tokens; it must be secret and stable across
	// restarts.
	CursorKey []byte
}

// Store is latchkey.Store on a Backend. The database-specific packages
// embed it.
type Store struct {
	read    Querier
	write   func(ctx context.Context, scope string, fn func(context.Context, Tx) error) error
	dialect Dialect
	now     func() time.Time
	cursors *cursor.Codec
	// followers holds the started *Follower values, synced after every
	// write that recorded a change (changes.go).
	followers sync.Map
}

// New returns the shared store over b.
func New(b Backend) (*Store, error) {
	if len(b.CursorKey) == 0 {
		return nil, errors.New("sqlstore: Backend.CursorKey is required")
	}
	if b.Read == nil || b.Write == nil || b.Dialect == nil {
		return nil, errors.New("sqlstore: Backend needs Read, Write and Dialect")
	}
	if b.Now == nil {
		b.Now = time.Now
	}
	s := &Store{read: b.Read, dialect: b.Dialect, now: b.Now, cursors: cursor.New(b.CursorKey)}
	s.write = func(ctx context.Context, scope string, fn func(context.Context, Tx) error) error {
		// fn may run more than once; the attempt that committed is the
		// last one, and decides whether followers read the log back.
		recorded := false
		err := b.Write(ctx, scope, func(ctx context.Context, tx Tx) error {
			ct := &changeTx{Tx: tx}
			err := fn(ctx, ct)
			recorded = ct.recorded
			return err
		})
		if err == nil && recorded {
			s.publish(ctx)
		}
		return s.wrap(ctx, err)
	}
	return s, nil
}

// storeWide is the scope of a write that is not confined to one account.
const storeWide = ""

// wrap turns any error into a domain error: domain errors pass, context
// errors keep their identity for errors.Is, a database that cannot be
// reached is unavailable, storage that is full is resource_exhausted (as
// the Dialect says), and the rest is internal. The driver's own text stays
// in Cause, for the log.
func (s *Store) wrap(ctx context.Context, err error) error {
	var de *latchkey.Error
	switch {
	case err == nil:
		return nil
	case errors.As(err, &de):
		return err
	case ctx.Err() != nil:
		return &latchkey.Error{Code: latchkey.CodeUnavailable, Message: "the call ended before the database answered", Cause: ctx.Err()}
	}
	switch s.dialect.Classify(err) {
	case latchkey.CodeUnavailable:
		return &latchkey.Error{Code: latchkey.CodeUnavailable, Message: "the database cannot be reached; retry later", Cause: err}
	case latchkey.CodeResourceExhausted:
		return &latchkey.Error{Code: latchkey.CodeResourceExhausted, Message: "the database's storage is full; nothing was written; retry once space has been freed", Cause: err}
	}
	return latchkey.Internal(err)
}

// Ping asks the database for nothing, to learn whether it answers.
func (s *Store) Ping(ctx context.Context) error {
	var one int
	return s.wrap(ctx, s.read.QueryRowContext(ctx, "SELECT 1").Scan(&one))
}
