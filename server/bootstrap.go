package server

import (
	"context"

	"github.com/latchkey/latchkey"
)

// Bootstrap creates the operator account and returns its system key's
// token when the store holds no account yet. It returns "" when an account
// already exists, so that only the very first start shows a token, even
// when several replicas start at once.
func (s *Server) Bootstrap(ctx context.Context) (string, error) {
	key, tok, err := s.tokens.systemKey()
	if err != nil {
		return "", err
	}
	_, _, err = s.store.Bootstrap(ctx, latchkey.NewAccount{Name: "operator", Operator: true, SystemKey: key})
	switch latchkey.ErrorCode(err) {
	case "":
		return tok.Reveal(), nil
	case latchkey.CodeAlreadyExists:
		return "", nil
	default:
		return "", err
	}
}
