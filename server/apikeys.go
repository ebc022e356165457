package server

import (
	"context"
	"errors"
	"slices"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/auth"
	latchkeyv1 "github.com/latchkey/latchkey/gen/latchkey/v1"
	"github.com/latchkey/latchkey/token"
)

// apiKeyHandler serves latchkey.v1.ApiKeyService. The permission each
// method needs is checked before it runs; the handlers ask the Authorizer
// about the target (reach) and what the caller gives (no escalation), and
// scope everything to the caller's account.
type apiKeyHandler struct{ *Server }

func (h apiKeyHandler) Issue(ctx context.Context, req *latchkeyv1.IssueRequest) (*latchkeyv1.IssueResponse, error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	spec := req.GetSpec()
	perms := spec.GetPermissions()
	defaults := len(perms) == 0 && !req.GetNoDefaultPermissions()
	if defaults {
		account, err := h.store.GetAccount(ctx, p.AccountID)
		if err != nil {
			return nil, err
		}
		perms = account.DefaultKeyPermissions
	}
	// The account's defaults are given by the caller exactly as a list
	// sent by hand: a caller that could not give them is refused, never
	// handed fewer.
	if err := h.authz.GivePermissions(p, perms); err != nil {
		if e := (*latchkey.Error)(nil); defaults && errors.As(err, &e) {
			e.Message += " (it is among the account's default_key_permissions, given because spec.permissions is empty; send the permissions to give, or no_default_permissions for none)"
		}
		return nil, err
	}
	for _, ws := range req.GetInitialWorkspaceIds() {
		if err := h.authz.GrantWorkspace(ctx, p, ws); err != nil {
			return nil, err
		}
	}
	env := latchkey.Environment(spec.GetEnvironment())
	if env == latchkey.EnvironmentUnspecified {
		env = latchkey.EnvironmentLive
	}
	id := latchkey.NewID(latchkey.PrefixAPIKey)
	tok, hash, err := h.tokens.mint(id, env)
	if err != nil {
		return nil, err
	}
	meta := fromMetadataProto(req.GetMetadata())
	meta.ID, meta.AccountID = id, p.AccountID
	key := latchkey.APIKey{
		Metadata:     meta,
		Description:  spec.GetDescription(),
		Permissions:  perms,
		Environment:  env,
		AllowedCIDRs: spec.GetAllowedCidrs(),
		CreatedBy:    p.ProfileID,
		TokenPrefix:  tok.DisplayPrefix(),
	}
	if spec.GetExpireTime() != nil {
		key.ExpireTime = spec.GetExpireTime().AsTime()
	}
	issued, err := h.store.IssueKey(ctx, p.Actor(requestIDFrom(ctx)), latchkey.NewAPIKey{
		Key:                 key,
		Secret:              hash,
		InitialWorkspaceIDs: req.GetInitialWorkspaceIds(),
		// The account's own limit, read in the store's transaction, comes
		// before the server default.
		DefaultMaxActiveKeys: h.maxActiveKeys,
	})
	if err != nil {
		return nil, err
	}
	return &latchkeyv1.IssueResponse{ApiKey: h.apiKeyWithToken(ctx, issued, tok)}, nil
}

func (h apiKeyHandler) Get(ctx context.Context, req *latchkeyv1.GetRequest) (*latchkeyv1.GetResponse, error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	key, err := h.store.GetKey(ctx, p.AccountID, req.GetId())
	if err != nil {
		return nil, err
	}
	return &latchkeyv1.GetResponse{ApiKey: h.apiKeyProto(ctx, key, nil)}, nil
}

func (h apiKeyHandler) List(ctx context.Context, req *latchkeyv1.ListRequest) (*latchkeyv1.ListResponse, error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	labels, err := latchkey.ParseLabelSelector(req.GetLabelSelector())
	if err != nil {
		return nil, err
	}
	page, err := h.store.ListKeys(ctx, latchkey.KeyQuery{
		AccountID:   p.AccountID,
		State:       latchkey.KeyState(req.GetState()),
		Labels:      labels,
		WorkspaceID: req.GetWorkspaceId(),
		Page:        pageRequest(req.GetPageSize(), req.GetPageToken(), req.GetOrder()),
	})
	if err != nil {
		return nil, err
	}
	creators := map[string]*latchkeyv1.Profile{} // one read per creator of the page
	out := &latchkeyv1.ListResponse{NextPageToken: page.NextToken}
	for _, k := range page.Items {
		out.ApiKeys = append(out.ApiKeys, h.apiKeyProto(ctx, k, creators))
	}
	return out, nil
}

func (h apiKeyHandler) Update(ctx context.Context, req *latchkeyv1.UpdateRequest) (*latchkeyv1.UpdateResponse, error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	paths := req.GetUpdateMask().GetPaths()
	spec := req.GetSpec()
	if slices.Contains(paths, "metadata.name") && req.GetMetadata().GetName() == "" {
		return nil, latchkey.InvalidField("metadata.name", "a key's name cannot be cleared")
	}
	target, err := h.changeableKey(ctx, p, req.GetId())
	if err != nil {
		return nil, err
	}
	if slices.Contains(paths, "spec.permissions") {
		if err := h.authz.GivePermissions(p, spec.GetPermissions()); err != nil {
			return nil, err
		}
	}
	meta := fromMetadataProto(req.GetMetadata())
	update := latchkey.KeyUpdate{
		AccountID:            p.AccountID,
		ID:                   target.ID,
		ETag:                 req.GetEtag(),
		Paths:                paths,
		DefaultMaxActiveKeys: h.maxActiveKeys,
		Guard:                h.authz.KeyGuard(p),
		Key: latchkey.APIKey{
			Metadata:     meta,
			Description:  spec.GetDescription(),
			Permissions:  spec.GetPermissions(),
			AllowedCIDRs: spec.GetAllowedCidrs(),
		},
	}
	if spec.GetExpireTime() != nil {
		update.Key.ExpireTime = spec.GetExpireTime().AsTime()
	}
	key, err := h.store.UpdateKey(ctx, p.Actor(requestIDFrom(ctx)), update)
	if err != nil {
		return nil, err
	}
	return &latchkeyv1.UpdateResponse{ApiKey: h.apiKeyProto(ctx, key, nil)}, nil
}

func (h apiKeyHandler) Rotate(ctx context.Context, req *latchkeyv1.RotateRequest) (*latchkeyv1.RotateResponse, error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	// The environment is fixed at issue and written into every token of
	// the key, so the new token takes it from the stored key.
	current, err := h.changeableKey(ctx, p, req.GetId())
	if err != nil {
		return nil, err
	}
	tok, hash, err := h.tokens.mint(current.ID, current.Environment)
	if err != nil {
		return nil, err
	}
	rotation := latchkey.KeyRotation{
		AccountID: p.AccountID,
		ID:        current.ID,
		// Asked again in the write's transaction: a key made stronger since
		// the check is not rotated into a token for the caller.
		Guard:       h.authz.KeyGuard(p),
		Secret:      hash,
		TokenPrefix: tok.DisplayPrefix(),
	}
	if grace := req.GetGracePeriod().AsDuration(); grace > 0 {
		rotation.PreviousExpire = h.now().Add(grace).Truncate(time.Millisecond)
	}
	key, err := h.store.RotateKey(ctx, p.Actor(requestIDFrom(ctx)), rotation)
	if err != nil {
		return nil, err
	}
	return &latchkeyv1.RotateResponse{ApiKey: h.apiKeyWithToken(ctx, key, tok)}, nil
}

func (h apiKeyHandler) Revoke(ctx context.Context, req *latchkeyv1.RevokeRequest) (*latchkeyv1.RevokeResponse, error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	// Revocation only takes power away, so it needs no guard in the
	// transaction: a target made stronger after the check gains the caller
	// nothing. The same holds for grants, which give only what the caller
	// reaches.
	target, err := h.changeableKey(ctx, p, req.GetId())
	if err != nil {
		return nil, err
	}
	// The store's change log drops the key from every verification cache
	// here before RevokeKey returns (latchkey.ChangeLog): once a client
	// sees the revocation, no verification on this server admits the key.
	key, err := h.store.RevokeKey(ctx, p.Actor(requestIDFrom(ctx)), p.AccountID, target.ID)
	if err != nil {
		return nil, err
	}
	return &latchkeyv1.RevokeResponse{ApiKey: h.apiKeyProto(ctx, key, nil)}, nil
}

func (h apiKeyHandler) GrantWorkspace(ctx context.Context, req *latchkeyv1.GrantWorkspaceRequest) (*latchkeyv1.GrantWorkspaceResponse, error) {
	key, err := h.changeGrant(ctx, req.GetId(), req.GetWorkspaceId(), h.store.GrantWorkspace)
	if err != nil {
		return nil, err
	}
	return &latchkeyv1.GrantWorkspaceResponse{ApiKey: key}, nil
}

func (h apiKeyHandler) RevokeWorkspace(ctx context.Context, req *latchkeyv1.RevokeWorkspaceRequest) (*latchkeyv1.RevokeWorkspaceResponse, error) {
	key, err := h.changeGrant(ctx, req.GetId(), req.GetWorkspaceId(), h.store.RevokeWorkspace)
	if err != nil {
		return nil, err
	}
	return &latchkeyv1.RevokeWorkspaceResponse{ApiKey: key}, nil
}

// changeGrant grants or withdraws a workspace on a key's own profile and
// returns the key as it is afterwards.
func (h apiKeyHandler) changeGrant(ctx context.Context, keyID, workspaceID string,
	change func(context.Context, latchkey.Actor, latchkey.Grant) error,
) (*latchkeyv1.ApiKey, error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	key, err := h.changeableKey(ctx, p, keyID)
	if err != nil {
		return nil, err
	}
	if err := h.authz.GrantWorkspace(ctx, p, workspaceID); err != nil {
		return nil, err
	}
	err = change(ctx, p.Actor(requestIDFrom(ctx)), latchkey.Grant{
		AccountID:   p.AccountID,
		ProfileID:   key.ProfileID,
		WorkspaceID: workspaceID,
		Target:      latchkey.Bare{ID: key.ID, Name: key.Name},
	})
	if err != nil {
		return nil, err
	}
	key, err = h.store.GetKey(ctx, p.AccountID, keyID)
	if err != nil {
		return nil, err
	}
	return h.apiKeyProto(ctx, key, nil), nil
}

func (h apiKeyHandler) ListGrantedWorkspaces(ctx context.Context, req *latchkeyv1.ListGrantedWorkspacesRequest) (*latchkeyv1.ListGrantedWorkspacesResponse, error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	key, err := h.store.GetKey(ctx, p.AccountID, req.GetId())
	if err != nil {
		return nil, err
	}
	page, err := h.store.ListProfileWorkspaces(ctx, latchkey.GrantQuery{
		AccountID: p.AccountID,
		ProfileID: key.ProfileID,
		Page:      pageRequest(req.GetPageSize(), req.GetPageToken(), latchkeyv1.Order_ORDER_UNSPECIFIED),
	})
	if err != nil {
		return nil, err
	}
	return &latchkeyv1.ListGrantedWorkspacesResponse{
		Workspaces:    toWorkspaceProtos(page.Items),
		NextPageToken: page.NextToken,
	}, nil
}

// changeableKey reads a key of the caller's account and asks the
// Authorizer whether the caller may change it.
func (h apiKeyHandler) changeableKey(ctx context.Context, p *auth.Principal, id string) (latchkey.APIKey, error) {
	key, err := h.store.GetKey(ctx, p.AccountID, id)
	if err != nil {
		return latchkey.APIKey{}, err
	}
	if err := h.authz.Change(ctx, p, auth.KeyTarget(key)); err != nil {
		return latchkey.APIKey{}, err
	}
	return key, nil
}

// apiKeyWithToken renders a key with its token: the one place a token
// leaves the server, for the answers of CreateAccount, Issue and Rotate.
func (s *Server) apiKeyWithToken(ctx context.Context, k latchkey.APIKey, tok token.Token) *latchkeyv1.ApiKey {
	out := s.apiKeyProto(ctx, k, nil)
	out.Spec.Token = proto.String(tok.Reveal())
	return out
}

// apiKeyProto renders a key with its creator's profile. page, when
// given, keeps the creators' profiles across the keys of one page.
func (s *Server) apiKeyProto(ctx context.Context, k latchkey.APIKey, page map[string]*latchkeyv1.Profile) *latchkeyv1.ApiKey {
	createdBy, cached := page[k.CreatedBy]
	if !cached && k.CreatedBy != "" {
		// The creator may be gone or in another account (the operator made
		// a system key); the key is shown without it rather than failing.
		if prof, err := s.profiles.get(ctx, k.AccountID, k.CreatedBy); err == nil {
			createdBy = toProfileProto(prof)
		}
		if page != nil {
			page[k.CreatedBy] = createdBy
		}
	}
	return toAPIKeyProto(k, createdBy, s.now())
}
