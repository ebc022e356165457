package sqlite

import (
	"context"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/sqlstore"
)

// Group commit. With synchronous=FULL every commit waits for an fsync, and
// SQLite has one writer: one transaction per write would cap writes at one
// fsync each. Instead one goroutine, the committer, takes every write that
// is waiting when it is free and runs them in one transaction, each inside
// its own savepoint, and commits them with a single fsync. A write that
// fails rolls back to its savepoint and leaves the others untouched; a
// write is acknowledged only after the commit that holds it.

// maxBatch bounds the writes of one transaction, so that one commit never
// holds the write lock for long.
const maxBatch = 256

// writeJob is one Store method's transaction body waiting for the committer.
type writeJob struct {
	ctx  context.Context
	fn   func(context.Context, sqlstore.Tx) error
	done chan error
}

// errClosed is returned by writes after Close.
var errClosed = &latchkey.Error{Code: latchkey.CodeUnavailable, Message: "the store is closed"}

// write runs fn in a write transaction, possibly shared with other writes,
// and returns once that transaction committed or fn's work was undone.
// SQLite has one writer, so every write is already serialized and scope
// does not matter.
func (s *Store) write(ctx context.Context, _ string, fn func(context.Context, sqlstore.Tx) error) error {
	job := &writeJob{ctx: ctx, fn: fn, done: make(chan error, 1)}
	select {
	case s.writes <- job:
	case <-ctx.Done():
		return ctx.Err()
	case <-s.closing:
		return errClosed
	}
	// Once the committer holds the job, only it knows whether the write
	// lands, so the answer is awaited even if ctx ends meanwhile: a caller
	// is never told "not written" about a write that committed.
	// The shared store turns err into a domain error.
	return <-job.done
}

func (s *Store) commitLoop() {
	for {
		var batch []*writeJob
		select {
		case job := <-s.writes:
			batch = append(batch, job)
		case <-s.closing:
			return
		}
	gather:
		for len(batch) < maxBatch {
			select {
			case job := <-s.writes:
				batch = append(batch, job)
			default:
				break gather
			}
		}
		s.commit(batch)
	}
}

// commit runs batch in one transaction and answers every job.
func (s *Store) commit(batch []*writeJob) {
	for len(batch) > 0 {
		batch = s.tryCommit(batch)
		s.writeStmts.prepareWanted(context.Background())
	}
}

// tryCommit runs batch in one transaction. A job whose body fails with a
// domain error is rolled back to its savepoint and answered with it. A
// failure of the database itself aborts the transaction: the job that met
// it is answered, and the others, whose work was undone with it, are
// returned to be run again.
func (s *Store) tryCommit(batch []*writeJob) (retry []*writeJob) {
	ctx := context.Background()
	results := make([]error, len(batch))
	// fail answers job i with err and returns the others to run again;
	// with i < 0 the failure is nobody's own, and every job gets it, so
	// that a database that keeps failing cannot keep the committer busy.
	fail := func(i int, err error) []*writeJob {
		for j, job := range batch {
			switch {
			case i < 0 || j == i:
				job.done <- err
			default:
				retry = append(retry, job)
			}
		}
		return retry
	}
	tx, err := s.writer.BeginTx(ctx, nil)
	if err != nil {
		return fail(-1, err)
	}
	for i, job := range batch {
		if err := job.ctx.Err(); err != nil {
			results[i] = err // gave up before it ran: nothing written
			continue
		}
		if _, err := tx.ExecContext(ctx, "SAVEPOINT job"); err != nil {
			tx.Rollback()
			return fail(-1, err)
		}
		// The body runs under a context that cannot be canceled: an
		// interrupt would roll back the whole shared transaction.
		err := job.fn(context.WithoutCancel(job.ctx), &txn{tx: tx, stmts: s.writeStmts})
		if err != nil && !ownFailure(err) {
			tx.Rollback()
			return fail(i, err)
		}
		if err != nil {
			results[i] = err
			if _, rerr := tx.ExecContext(ctx, "ROLLBACK TO job"); rerr != nil {
				tx.Rollback()
				return fail(i, rerr)
			}
		}
		if _, err := tx.ExecContext(ctx, "RELEASE job"); err != nil {
			tx.Rollback()
			return fail(-1, err)
		}
	}
	committing := time.Now()
	err = tx.Commit()
	s.recordCommit(len(batch), time.Since(committing))
	if err != nil {
		for i, job := range batch {
			if results[i] == nil {
				results[i] = err
			}
			job.done <- results[i]
		}
		return nil
	}
	for i, job := range batch {
		job.done <- results[i]
	}
	return nil
}
