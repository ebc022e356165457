package server

import (
	"context"
	"slices"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/auth"
	latchkeyv1 "github.com/latchkey/latchkey/gen/latchkey/v1"
)

// profileHandler serves latchkey.v1.ProfileService.
type profileHandler struct{ *Server }

func (h profileHandler) CreateProfile(ctx context.Context, req *latchkeyv1.CreateProfileRequest) (*latchkeyv1.CreateProfileResponse, error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	if err := h.authz.GivePermissions(p, req.GetSpec().GetPermissions()); err != nil {
		return nil, err
	}
	meta := fromMetadataProto(req.GetMetadata())
	meta.AccountID = p.AccountID
	prof, err := h.store.CreateProfile(ctx, p.Actor(requestIDFrom(ctx)), latchkey.Profile{
		Metadata:    meta,
		Type:        latchkey.ProfileTypeUser,
		Email:       req.GetSpec().GetEmail(),
		DisplayName: req.GetSpec().GetName(),
		Permissions: req.GetSpec().GetPermissions(),
	})
	if err != nil {
		return nil, err
	}
	return &latchkeyv1.CreateProfileResponse{Profile: toProfileProto(prof)}, nil
}

func (h profileHandler) GetProfile(ctx context.Context, req *latchkeyv1.GetProfileRequest) (*latchkeyv1.GetProfileResponse, error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	prof, err := h.store.GetProfile(ctx, p.AccountID, req.GetId())
	if err != nil {
		return nil, err
	}
	return &latchkeyv1.GetProfileResponse{Profile: toProfileProto(prof)}, nil
}

func (h profileHandler) ListProfiles(ctx context.Context, req *latchkeyv1.ListProfilesRequest) (*latchkeyv1.ListProfilesResponse, error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	labels, err := latchkey.ParseLabelSelector(req.GetLabelSelector())
	if err != nil {
		return nil, err
	}
	page, err := h.store.ListProfiles(ctx, latchkey.ProfileQuery{
		AccountID: p.AccountID,
		Type:      latchkey.ProfileType(req.GetType()),
		Labels:    labels,
		Page:      pageRequest(req.GetPageSize(), req.GetPageToken(), req.GetOrder()),
	})
	if err != nil {
		return nil, err
	}
	out := &latchkeyv1.ListProfilesResponse{NextPageToken: page.NextToken}
	for _, prof := range page.Items {
		out.Profiles = append(out.Profiles, toProfileProto(prof))
	}
	return out, nil
}

func (h profileHandler) GrantProfileWorkspace(ctx context.Context, req *latchkeyv1.GrantProfileWorkspaceRequest) (*latchkeyv1.GrantProfileWorkspaceResponse, error) {
	prof, err := h.changeGrant(ctx, req.GetId(), req.GetWorkspaceId(), h.store.GrantWorkspace)
	if err != nil {
		return nil, err
	}
	return &latchkeyv1.GrantProfileWorkspaceResponse{Profile: prof}, nil
}

func (h profileHandler) RevokeProfileWorkspace(ctx context.Context, req *latchkeyv1.RevokeProfileWorkspaceRequest) (*latchkeyv1.RevokeProfileWorkspaceResponse, error) {
	prof, err := h.changeGrant(ctx, req.GetId(), req.GetWorkspaceId(), h.store.RevokeWorkspace)
	if err != nil {
		return nil, err
	}
	return &latchkeyv1.RevokeProfileWorkspaceResponse{Profile: prof}, nil
}

// changeGrant grants or withdraws a workspace on a profile, under the same
// reach and no-escalation rules as API keys.
func (h profileHandler) changeGrant(ctx context.Context, profileID, workspaceID string,
	change func(context.Context, latchkey.Actor, latchkey.Grant) error,
) (*latchkeyv1.Profile, error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	prof, err := h.store.GetProfile(ctx, p.AccountID, profileID)
	if err != nil {
		return nil, err
	}
	// A key's profile, or the system profile, is as strong as its keys.
	perms, err := h.store.ProfilePermissions(ctx, p.AccountID, prof.ID)
	if err != nil {
		return nil, err
	}
	if err := h.authz.Change(ctx, p, auth.Target{ProfileID: prof.ID, Permissions: perms}); err != nil {
		return nil, err
	}
	if err := h.authz.GrantWorkspace(ctx, p, workspaceID); err != nil {
		return nil, err
	}
	err = change(ctx, p.Actor(requestIDFrom(ctx)), latchkey.Grant{
		AccountID:   p.AccountID,
		ProfileID:   prof.ID,
		WorkspaceID: workspaceID,
		Target:      latchkey.Bare{ID: prof.ID, Name: prof.Name},
	})
	if err != nil {
		return nil, err
	}
	return toProfileProto(prof), nil
}

func (h profileHandler) ListProfileWorkspaces(ctx context.Context, req *latchkeyv1.ListProfileWorkspacesRequest) (*latchkeyv1.ListProfileWorkspacesResponse, error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := h.store.GetProfile(ctx, p.AccountID, req.GetId()); err != nil {
		return nil, err
	}
	page, err := h.store.ListProfileWorkspaces(ctx, latchkey.GrantQuery{
		AccountID: p.AccountID,
		ProfileID: req.GetId(),
		Page:      pageRequest(req.GetPageSize(), req.GetPageToken(), latchkeyv1.Order_ORDER_UNSPECIFIED),
	})
	if err != nil {
		return nil, err
	}
	return &latchkeyv1.ListProfileWorkspacesResponse{Workspaces: toWorkspaceProtos(page.Items), NextPageToken: page.NextToken}, nil
}

func (h profileHandler) UpdateProfile(ctx context.Context, req *latchkeyv1.UpdateProfileRequest) (*latchkeyv1.UpdateProfileResponse, error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	paths := req.GetUpdateMask().GetPaths()
	spec, meta := req.GetSpec(), fromMetadataProto(req.GetMetadata())
	if slices.Contains(paths, "metadata.name") && meta.Name == "" {
		return nil, latchkey.InvalidField("metadata.name", "a profile's name cannot be cleared")
	}
	if slices.Contains(paths, "spec.email") && spec.GetEmail() == "" {
		return nil, latchkey.InvalidField("spec.email", "a user profile's email cannot be cleared")
	}
	target, err := h.profileTarget(ctx, p, req.GetId())
	if err != nil {
		return nil, err
	}
	if err := h.authz.Change(ctx, p, target); err != nil {
		return nil, err
	}
	if slices.Contains(paths, "spec.permissions") {
		if err := h.authz.GivePermissions(p, spec.GetPermissions()); err != nil {
			return nil, err
		}
	}
	prof, err := h.store.UpdateProfile(ctx, p.Actor(requestIDFrom(ctx)), latchkey.ProfileUpdate{
		AccountID: p.AccountID,
		ID:        req.GetId(),
		ETag:      req.GetEtag(),
		Paths:     paths,
		Profile: latchkey.Profile{
			Metadata:    meta,
			Email:       spec.GetEmail(),
			DisplayName: spec.GetName(),
			Permissions: spec.GetPermissions(),
		},
		Guard: h.authz.ProfileGuard(p),
	})
	if err != nil {
		return nil, err
	}
	return &latchkeyv1.UpdateProfileResponse{Profile: toProfileProto(prof)}, nil
}

func (h profileHandler) SuspendProfile(ctx context.Context, req *latchkeyv1.SuspendProfileRequest) (*latchkeyv1.SuspendProfileResponse, error) {
	prof, err := h.setSuspension(ctx, req.GetId(), true)
	if err != nil {
		return nil, err
	}
	return &latchkeyv1.SuspendProfileResponse{Profile: prof}, nil
}

func (h profileHandler) RestoreProfile(ctx context.Context, req *latchkeyv1.RestoreProfileRequest) (*latchkeyv1.RestoreProfileResponse, error) {
	prof, err := h.setSuspension(ctx, req.GetId(), false)
	if err != nil {
		return nil, err
	}
	return &latchkeyv1.RestoreProfileResponse{Profile: prof}, nil
}

// setSuspension suspends or restores a person, under the reach rule: a
// caller stops or brings back only people whose permissions and
// workspaces are within its own.
func (h profileHandler) setSuspension(ctx context.Context, id string, suspend bool) (*latchkeyv1.Profile, error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	target, err := h.profileTarget(ctx, p, id)
	if err != nil {
		return nil, err
	}
	if err := h.authz.Change(ctx, p, target); err != nil {
		return nil, err
	}
	prof, err := h.store.SuspendProfile(ctx, p.Actor(requestIDFrom(ctx)), p.AccountID, id, suspend, h.authz.ProfileGuard(p))
	if err != nil {
		return nil, err
	}
	return toProfileProto(prof), nil
}

// profileTarget returns a profile of the caller's account as the target
// of a change.
func (h profileHandler) profileTarget(ctx context.Context, p *auth.Principal, id string) (auth.Target, error) {
	prof, err := h.store.GetProfile(ctx, p.AccountID, id)
	if err != nil {
		return auth.Target{}, err
	}
	return auth.Target{ProfileID: prof.ID, Permissions: prof.Permissions}, nil
}
