package server

import (
	"context"

	"github.com/latchkey/latchkey"
	latchkeyv1 "github.com/latchkey/latchkey/gen/latchkey/v1"
)

// workspaceHandler serves latchkey.v1.WorkspaceService.
type workspaceHandler struct{ *Server }

func (h workspaceHandler) CreateWorkspace(ctx context.Context, req *latchkeyv1.CreateWorkspaceRequest) (*latchkeyv1.CreateWorkspaceResponse, error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	meta := fromMetadataProto(req.GetMetadata())
	meta.AccountID = p.AccountID
	ws, err := h.store.CreateWorkspace(ctx, p.Actor(requestIDFrom(ctx)), latchkey.Workspace{
		Metadata:    meta,
		Description: req.GetSpec().GetDescription(),
		Status:      latchkey.WorkspaceStatusActive,
	})
	if err != nil {
		return nil, err
	}
	return &latchkeyv1.CreateWorkspaceResponse{Workspace: toWorkspaceProto(ws)}, nil
}

func (h workspaceHandler) GetWorkspace(ctx context.Context, req *latchkeyv1.GetWorkspaceRequest) (*latchkeyv1.GetWorkspaceResponse, error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	ws, err := h.store.GetWorkspace(ctx, p.AccountID, req.GetId())
	if err != nil {
		return nil, err
	}
	return &latchkeyv1.GetWorkspaceResponse{Workspace: toWorkspaceProto(ws)}, nil
}

func (h workspaceHandler) ListWorkspaces(ctx context.Context, req *latchkeyv1.ListWorkspacesRequest) (*latchkeyv1.ListWorkspacesResponse, error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	labels, err := latchkey.ParseLabelSelector(req.GetLabelSelector())
	if err != nil {
		return nil, err
	}
	page, err := h.store.ListWorkspaces(ctx, latchkey.WorkspaceQuery{
		AccountID: p.AccountID,
		Status:    latchkey.WorkspaceStatus(req.GetStatus()),
		Labels:    labels,
		Page:      pageRequest(req.GetPageSize(), req.GetPageToken(), req.GetOrder()),
	})
	if err != nil {
		return nil, err
	}
	return &latchkeyv1.ListWorkspacesResponse{Workspaces: toWorkspaceProtos(page.Items), NextPageToken: page.NextToken}, nil
}

func (h workspaceHandler) UpdateWorkspace(ctx context.Context, req *latchkeyv1.UpdateWorkspaceRequest) (*latchkeyv1.UpdateWorkspaceResponse, error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	paths := req.GetUpdateMask().GetPaths()
	for _, path := range paths {
		if path == "metadata.name" && req.GetMetadata().GetName() == "" {
			return nil, latchkey.InvalidField("metadata.name", "a workspace's name cannot be cleared")
		}
	}
	ws, err := h.store.UpdateWorkspace(ctx, p.Actor(requestIDFrom(ctx)), latchkey.WorkspaceUpdate{
		AccountID: p.AccountID,
		ID:        req.GetId(),
		ETag:      req.GetEtag(),
		Paths:     paths,
		Workspace: latchkey.Workspace{
			Metadata:    fromMetadataProto(req.GetMetadata()),
			Description: req.GetSpec().GetDescription(),
		},
	})
	if err != nil {
		return nil, err
	}
	return &latchkeyv1.UpdateWorkspaceResponse{Workspace: toWorkspaceProto(ws)}, nil
}

func (h workspaceHandler) ArchiveWorkspace(ctx context.Context, req *latchkeyv1.ArchiveWorkspaceRequest) (*latchkeyv1.ArchiveWorkspaceResponse, error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	ws, err := h.store.ArchiveWorkspace(ctx, p.Actor(requestIDFrom(ctx)), p.AccountID, req.GetId())
	if err != nil {
		return nil, err
	}
	return &latchkeyv1.ArchiveWorkspaceResponse{Workspace: toWorkspaceProto(ws)}, nil
}
