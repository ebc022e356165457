package main

import (
	"context"
	"log/slog"
	"time"

	"go.opentelemetry.io/otel/metric"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/auth"
	"github.com/latchkey/latchkey/auth/oidc"
)

// signIns is the server's IdentityVerifier over one OpenID Provider.
type signIns struct{ v *oidc.Verifier }

// VerifySignIn verifies a person's JWT and says who it proves.
func (s signIns) VerifySignIn(ctx context.Context, raw string) (latchkey.SignIn, error) {
	id, err := s.v.Verify(ctx, raw)
	if err != nil {
		return latchkey.SignIn{}, err
	}
	return latchkey.SignIn{Issuer: id.Issuer, Subject: id.Subject, Email: id.Email, EmailVerified: id.EmailVerified, Expiry: id.Expiry}, nil
}

// newSignIns makes the verifier of --oidc-issuer, or nil without one. It
// waits a little for the provider's discovery, but starts without it: API
// keys must work while the provider is down, and sign-in comes back when
// the provider does.
func newSignIns(ctx context.Context, cfg config, meter metric.Meter, logger *slog.Logger) (auth.IdentityVerifier, error) {
	if cfg.oidcIssuer == "" {
		return nil, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	v, err := oidc.New(ctx, oidc.Config{Issuer: cfg.oidcIssuer, Audience: cfg.oidcAudience, Meter: meter, Logger: logger})
	if err != nil {
		return nil, err
	}
	return signIns{v}, nil
}
