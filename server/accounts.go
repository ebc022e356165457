package server

import (
	"context"

	"github.com/latchkey/latchkey"
	latchkeyv1 "github.com/latchkey/latchkey/gen/latchkey/v1"
)

// accountHandler serves latchkey.v1.AccountService.
type accountHandler struct{ *Server }

func (h accountHandler) CreateAccount(ctx context.Context, req *latchkeyv1.CreateAccountRequest) (*latchkeyv1.CreateAccountResponse, error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	key, tok, err := h.tokens.systemKey()
	if err != nil {
		return nil, err
	}
	account, system, err := h.store.CreateAccount(ctx, p.Actor(requestIDFrom(ctx)), latchkey.NewAccount{
		Name:          req.GetName(),
		MaxActiveKeys: req.GetMaxActiveKeys(),
		SystemKey:     key,
	})
	if err != nil {
		return nil, err
	}
	return &latchkeyv1.CreateAccountResponse{Account: toAccountProto(account), SystemApiKey: h.apiKeyWithToken(ctx, system, tok)}, nil
}

func (h accountHandler) GetAccount(ctx context.Context, req *latchkeyv1.GetAccountRequest) (*latchkeyv1.GetAccountResponse, error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	if err := h.authz.ReadAccount(p, req.GetId()); err != nil {
		return nil, err
	}
	account, err := h.store.GetAccount(ctx, req.GetId())
	if err != nil {
		return nil, err
	}
	return &latchkeyv1.GetAccountResponse{Account: toAccountProto(account)}, nil
}

func (h accountHandler) ListAccounts(ctx context.Context, req *latchkeyv1.ListAccountsRequest) (*latchkeyv1.ListAccountsResponse, error) {
	page, err := h.store.ListAccounts(ctx, pageRequest(req.GetPageSize(), req.GetPageToken(), req.GetOrder()))
	if err != nil {
		return nil, err
	}
	out := &latchkeyv1.ListAccountsResponse{NextPageToken: page.NextToken}
	for _, a := range page.Items {
		out.Accounts = append(out.Accounts, toAccountProto(a))
	}
	return out, nil
}
