package sqlite

import (
	"context"
	"database/sql"
	"sync"
)

// stmts caches the prepared statements of one *sql.DB by their text.
// SQLite takes about as long to parse and plan a small statement as to run
// it, and database/sql would otherwise prepare every query anew.
type stmts struct {
	db     *sql.DB
	m      sync.Map // query → *sql.Stmt
	wanted sync.Map // query → struct{}: run unprepared in a transaction
}

func (c *stmts) get(ctx context.Context, query string) (*sql.Stmt, error) {
	if st, ok := c.m.Load(query); ok {
		return st.(*sql.Stmt), nil
	}
	st, err := c.db.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	if prev, loaded := c.m.LoadOrStore(query, st); loaded {
		st.Close()
		return prev.(*sql.Stmt), nil
	}
	return st, nil
}

func (c *stmts) close() {
	c.m.Range(func(_, st any) bool {
		st.(*sql.Stmt).Close()
		return true
	})
}

// QueryRowContext runs a cached statement on the pool. When the statement
// cannot be prepared, the plain query reports why.
func (c *stmts) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	st, err := c.get(ctx, query)
	if err != nil {
		return c.db.QueryRowContext(ctx, query, args...)
	}
	return st.QueryRowContext(ctx, args...)
}

// QueryContext runs a cached statement on the pool.
func (c *stmts) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	st, err := c.get(ctx, query)
	if err != nil {
		return nil, err
	}
	return st.QueryContext(ctx, args...)
}

// txn is a write transaction whose statements come from the writer's
// cache. The writer has one connection, and the transaction holds it, so a
// statement cannot be prepared on the pool while the transaction runs: a
// statement not yet cached runs unprepared and is noted, and the committer
// prepares the noted ones once the transaction has ended.
type txn struct {
	tx    *sql.Tx
	stmts *stmts
}

// stmt returns the cached statement for query bound to the transaction,
// or nil after noting query for preparation.
func (t *txn) stmt(ctx context.Context, query string) *sql.Stmt {
	st, ok := t.stmts.m.Load(query)
	if !ok {
		t.stmts.wanted.Store(query, struct{}{})
		return nil
	}
	return t.tx.StmtContext(ctx, st.(*sql.Stmt))
}

// ExecContext runs a statement in the transaction.
func (t *txn) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if st := t.stmt(ctx, query); st != nil {
		return st.ExecContext(ctx, args...)
	}
	return t.tx.ExecContext(ctx, query, args...)
}

// QueryRowContext runs a single-row statement in the transaction.
func (t *txn) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	if st := t.stmt(ctx, query); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return t.tx.QueryRowContext(ctx, query, args...)
}

// QueryContext runs a statement in the transaction.
func (t *txn) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if st := t.stmt(ctx, query); st != nil {
		return st.QueryContext(ctx, args...)
	}
	return t.tx.QueryContext(ctx, query, args...)
}

// prepareWanted prepares the statements that transactions ran unprepared.
// Only the committer calls it, between transactions, when the writer's
// connection is free. A statement that fails to prepare keeps running
// unprepared; the transaction that used it already reported any error.
func (c *stmts) prepareWanted(ctx context.Context) {
	c.wanted.Range(func(q, _ any) bool {
		c.wanted.Delete(q)
		c.get(ctx, q.(string))
		return true
	})
}
