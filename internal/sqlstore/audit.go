package sqlstore

import (
	"context"
	"database/sql"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/cursor"
)

// audit writes the audit event of a mutation inside the mutation's own
// transaction, so that neither lands without the other.
func (s *Store) audit(ctx context.Context, tx Tx, accountID string, actor latchkey.Actor, action string, target latchkey.Bare) error {
	return s.auditWithReason(ctx, tx, accountID, actor, action, target, "")
}

// auditWithReason is audit for the actions that keep why they were done.
func (s *Store) auditWithReason(ctx context.Context, tx Tx, accountID string, actor latchkey.Actor, action string, target latchkey.Bare, reason string) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO audit_events
		(id, account_id, time, actor_id, actor_name, action, target_id, target_name, request_id, reason)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		latchkey.NewID(latchkey.PrefixAudit), accountID, s.now().UnixNano(),
		actor.Profile.ID, actor.Profile.Name, action, target.ID, target.Name, actor.RequestID, reason)
	return err
}

// ListAuditEvents lists an account's audit events, newest first unless
// asked otherwise.
func (s *Store) ListAuditEvents(ctx context.Context, q latchkey.AuditQuery) (latchkey.Page[latchkey.AuditEvent], error) {
	lq := listQuery{
		name:       "audit_events",
		columns:    "id, account_id, time, actor_id, actor_name, action, target_id, target_name, request_id, reason",
		from:       "audit_events",
		timeColumn: "time",
		idColumn:   "id",
	}
	lq.filter("account_id = ?", q.AccountID)
	if q.TargetID != "" {
		lq.filter("target_id = ?", q.TargetID)
	}
	if q.Action != "" {
		lq.filter("action = ?", q.Action)
	}
	if q.ActorID != "" {
		lq.filter("actor_id = ?", q.ActorID)
	}
	if !q.Start.IsZero() {
		lq.filter("time >= ?", q.Start.UnixNano())
	}
	if !q.End.IsZero() {
		lq.filter("time < ?", q.End.UnixNano())
	}
	return list(ctx, s, lq, q.Page, scanAuditEvent, func(e latchkey.AuditEvent) cursor.Position {
		return cursor.Position{Time: e.Time.UnixNano(), ID: e.ID}
	})
}

func scanAuditEvent(row scanner) (latchkey.AuditEvent, error) {
	var e latchkey.AuditEvent
	var t int64
	err := row.Scan(&e.ID, &e.AccountID, &t, &e.Actor.ID, &e.Actor.Name, &e.Action, &e.Target.ID, &e.Target.Name, &e.RequestID, &e.Reason)
	e.Time = fromNanos(sql.NullInt64{Int64: t, Valid: true})
	return e, err
}
