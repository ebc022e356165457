package server

import (
	"context"
	"net/netip"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/auth"
	latchkeyv1 "github.com/latchkey/latchkey/gen/latchkey/v1"
)

// authHandler serves latchkey.v1.AuthService.
type authHandler struct{ *Server }

// Verify answers every outcome for the checked token as a normal response;
// only the caller's own credential and the store can make it fail.
func (h authHandler) Verify(ctx context.Context, req *latchkeyv1.VerifyRequest) (*latchkeyv1.VerifyResponse, error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	need := auth.Requirements{
		AccountID:   h.authz.VerifyScope(p),
		WorkspaceID: req.GetWorkspaceId(),
		Permissions: req.GetPermissions(),
	}
	if req.GetClientIp() != "" {
		// Validation has already refused anything that is not an address.
		need.ClientIP, _ = netip.ParseAddr(req.GetClientIp())
	}
	verdict, err := h.verifier.Verify(ctx, req.GetToken(), need)
	if err != nil {
		return nil, err
	}
	out := &latchkeyv1.VerifyResponse{
		Valid: verdict.Valid(),
		Code:  latchkeyv1.VerifyCode(verdict.Outcome),
	}
	if c := verdict.Credential; c != nil {
		// info.created_by is left unset: Verify sits on other services'
		// hot path and answers from the key alone.
		out.ApiKey = toAPIKeyProto(c.Key, nil, h.now())
		out.AccountId = c.Key.AccountID
		out.ProfileId = c.Key.ProfileID
		out.Permissions = c.Key.Permissions
	}
	return out, nil
}

func (h authHandler) WhoAmI(ctx context.Context, _ *latchkeyv1.WhoAmIRequest) (*latchkeyv1.WhoAmIResponse, error) {
	p, prof, account, err := h.caller(ctx)
	if err != nil {
		return nil, err
	}
	res := &latchkeyv1.WhoAmIResponse{Profile: toProfileProto(prof), Account: toAccountProto(account)}
	// The key is shown to a caller that authenticated with one.
	if p.Method == auth.MethodAPIKey {
		key, err := h.store.GetKey(ctx, p.AccountID, p.KeyID)
		if err != nil {
			return nil, err
		}
		res.ApiKey = h.apiKeyProto(ctx, key, nil)
	}
	return res, nil
}

// ListMyProfiles answers a person's profiles in every account (read
// afresh), or a key's own profile.
func (h authHandler) ListMyProfiles(ctx context.Context, _ *latchkeyv1.ListMyProfilesRequest) (*latchkeyv1.ListMyProfilesResponse, error) {
	out := &latchkeyv1.ListMyProfilesResponse{}
	if raw, ok := ctx.Value(signInKey{}).(string); ok {
		profiles, err := h.people.Profiles(ctx, raw)
		if err != nil {
			return nil, err
		}
		for _, pp := range profiles {
			out.Profiles = append(out.Profiles, myProfile(pp.Profile, pp.AccountName, pp.AccountSuspended))
		}
		return out, nil
	}
	_, prof, account, err := h.caller(ctx)
	if err != nil {
		return nil, err
	}
	out.Profiles = append(out.Profiles, myProfile(prof, account.Name, account.Suspended()))
	return out, nil
}

// caller returns the principal of the call with its profile and account.
func (h authHandler) caller(ctx context.Context) (*auth.Principal, latchkey.Profile, latchkey.Account, error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, latchkey.Profile{}, latchkey.Account{}, err
	}
	prof, err := h.store.GetProfile(ctx, p.AccountID, p.ProfileID)
	if err != nil {
		return nil, latchkey.Profile{}, latchkey.Account{}, err
	}
	account, err := h.store.GetAccount(ctx, p.AccountID)
	return p, prof, account, err
}

func myProfile(prof latchkey.Profile, accountName string, suspended bool) *latchkeyv1.MyProfile {
	state := latchkeyv1.AccountState_ACCOUNT_STATE_ACTIVE
	if suspended {
		state = latchkeyv1.AccountState_ACCOUNT_STATE_SUSPENDED
	}
	return &latchkeyv1.MyProfile{
		Profile:      toProfileProto(prof),
		Account:      &latchkeyv1.BareMetadata{Id: prof.AccountID, Name: accountName},
		AccountState: state,
	}
}
