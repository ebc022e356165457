package server

import (
	"context"

	"github.com/latchkey/latchkey"
	latchkeyv1 "github.com/latchkey/latchkey/gen/latchkey/v1"
)

// auditHandler serves latchkey.v1.AuditService.
type auditHandler struct{ *Server }

func (h auditHandler) ListAuditEvents(ctx context.Context, req *latchkeyv1.ListAuditEventsRequest) (*latchkeyv1.ListAuditEventsResponse, error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	q := latchkey.AuditQuery{
		AccountID: p.AccountID,
		TargetID:  req.GetTargetId(),
		Action:    req.GetAction(),
		ActorID:   req.GetActorId(),
		Page:      pageRequest(req.GetPageSize(), req.GetPageToken(), req.GetOrder()),
	}
	if req.GetStartTime() != nil {
		q.Start = req.GetStartTime().AsTime()
	}
	if req.GetEndTime() != nil {
		q.End = req.GetEndTime().AsTime()
	}
	if !q.Start.IsZero() && !q.End.IsZero() && !q.End.After(q.Start) {
		return nil, latchkey.InvalidField("end_time", "must be after start_time")
	}
	page, err := h.store.ListAuditEvents(ctx, q)
	if err != nil {
		return nil, err
	}
	out := &latchkeyv1.ListAuditEventsResponse{NextPageToken: page.NextToken}
	for _, e := range page.Items {
		out.AuditEvents = append(out.AuditEvents, toAuditEventProto(e))
	}
	return out, nil
}
