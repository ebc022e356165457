package server

import (
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/latchkey/latchkey"
	latchkeyv1 "github.com/latchkey/latchkey/gen/latchkey/v1"
)

// This file converts between domain values and their proto messages. The
// domain enums are numbered as the proto enums, so they convert by value.

func timestampOrNil(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

func toMetadataProto(m latchkey.Metadata) *latchkeyv1.AccountResourceMetadata {
	return &latchkeyv1.AccountResourceMetadata{
		Id:         m.ID,
		AccountId:  m.AccountID,
		Name:       m.Name,
		ProfileId:  m.ProfileID,
		ExternalId: m.ExternalID,
		Labels:     m.Labels,
		CreateTime: timestampOrNil(m.CreateTime),
		UpdateTime: timestampOrNil(m.UpdateTime),
		Etag:       m.ETag,
	}
}

// fromMetadataProto reads the fields a caller may set; output-only fields
// are ignored, as AIP-203 asks.
func fromMetadataProto(m *latchkeyv1.AccountResourceMetadata) latchkey.Metadata {
	return latchkey.Metadata{
		Name:       m.GetName(),
		ExternalID: m.GetExternalId(),
		Labels:     m.GetLabels(),
	}
}

func toBareProtos(bs []latchkey.Bare) []*latchkeyv1.BareMetadata {
	out := make([]*latchkeyv1.BareMetadata, len(bs))
	for i, b := range bs {
		out[i] = &latchkeyv1.BareMetadata{Id: b.ID, Name: b.Name}
	}
	return out
}

func toAPIKeyProto(k latchkey.APIKey, createdBy *latchkeyv1.Profile, now time.Time) *latchkeyv1.ApiKey {
	return &latchkeyv1.ApiKey{
		Metadata: toMetadataProto(k.Metadata),
		Spec: &latchkeyv1.ApiKeySpec{
			Description:  k.Description,
			Permissions:  k.Permissions,
			System:       k.System,
			Environment:  latchkeyv1.Environment(k.Environment),
			ExpireTime:   timestampOrNil(k.ExpireTime),
			AllowedCidrs: k.AllowedCIDRs,
		},
		Info: &latchkeyv1.ApiKeyInfo{
			CreatedBy:               createdBy,
			WorkspacesPreview:       toBareProtos(k.WorkspacesPreview),
			WorkspacesTotal:         k.WorkspacesTotal,
			State:                   latchkeyv1.ApiKeyState(k.State(now)),
			TokenPrefix:             k.TokenPrefix,
			LastUsedTime:            timestampOrNil(k.LastUsedTime),
			RotateTime:              timestampOrNil(k.RotateTime),
			PreviousTokenExpireTime: timestampOrNil(k.PreviousTokenExpireTime),
			RevokeTime:              timestampOrNil(k.RevokeTime),
		},
	}
}

func toProfileProto(p latchkey.Profile) *latchkeyv1.Profile {
	info := &latchkeyv1.ProfileInfo{State: latchkeyv1.ProfileState_PROFILE_STATE_ACTIVE, SuspendTime: timestampOrNil(p.SuspendTime)}
	if p.Suspended() {
		info.State = latchkeyv1.ProfileState_PROFILE_STATE_SUSPENDED
	}
	if p.Identity.Subject != "" {
		info.Identity = &latchkeyv1.ProfileIdentity{Issuer: p.Identity.Issuer, Subject: p.Identity.Subject, BindTime: timestampOrNil(p.Identity.BindTime)}
	}
	return &latchkeyv1.Profile{
		Metadata: toMetadataProto(p.Metadata),
		Spec: &latchkeyv1.ProfileSpec{
			Type:        latchkeyv1.ProfileType(p.Type),
			Email:       p.Email,
			Name:        p.DisplayName,
			Permissions: p.Permissions,
		},
		Info: info,
	}
}

func toWorkspaceProto(w latchkey.Workspace) *latchkeyv1.Workspace {
	return &latchkeyv1.Workspace{
		Metadata: toMetadataProto(w.Metadata),
		Spec:     &latchkeyv1.WorkspaceSpec{Description: w.Description},
		Status:   latchkeyv1.WorkspaceStatus(w.Status),
	}
}

func toWorkspaceProtos(ws []latchkey.Workspace) []*latchkeyv1.Workspace {
	out := make([]*latchkeyv1.Workspace, len(ws))
	for i, w := range ws {
		out[i] = toWorkspaceProto(w)
	}
	return out
}

func toAccountProto(a latchkey.Account) *latchkeyv1.Account {
	state := latchkeyv1.AccountState_ACCOUNT_STATE_ACTIVE
	if a.Suspended() {
		state = latchkeyv1.AccountState_ACCOUNT_STATE_SUSPENDED
	}
	return &latchkeyv1.Account{
		Metadata: toMetadataProto(a.Metadata),
		Spec: &latchkeyv1.AccountSpec{
			Operator:              a.Operator,
			MaxActiveKeys:         a.MaxActiveKeys,
			DefaultKeyPermissions: a.DefaultKeyPermissions,
		},
		State:         state,
		SuspendTime:   timestampOrNil(a.SuspendTime),
		SuspendReason: a.SuspendReason,
	}
}

func toAuditEventProto(e latchkey.AuditEvent) *latchkeyv1.AuditEvent {
	return &latchkeyv1.AuditEvent{
		Id:        e.ID,
		AccountId: e.AccountID,
		Time:      timestampOrNil(e.Time),
		Actor:     &latchkeyv1.BareMetadata{Id: e.Actor.ID, Name: e.Actor.Name},
		Action:    e.Action,
		Target:    &latchkeyv1.BareMetadata{Id: e.Target.ID, Name: e.Target.Name},
		RequestId: e.RequestID,
		Reason:    e.Reason,
	}
}

func pageRequest(size int32, tok string, order latchkeyv1.Order) latchkey.PageRequest {
	return latchkey.PageRequest{Size: int(size), Token: tok, Order: latchkey.Order(order)}
}
