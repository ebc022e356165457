package oidc_test

import (
	"context"
	"fmt"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/auth/oidc"
)

// The server routes a bearer credential that looks like a JWT to the
// Verifier, and binds the identity it returns to a profile.
func Example() {
	ctx := context.Background()
	idp, mint := exampleProvider() // an OpenID Provider, and a token it issued

	v, err := oidc.New(ctx, oidc.Config{
		Issuer:   idp,
		Audience: "latchkey-console",
	})
	if err != nil {
		fmt.Println(err) // a bad Config, or a provider naming another issuer
		return
	}
	for _, bearer := range []string{mint(time.Hour), mint(-time.Hour), "lk_live_01K3ABCDEFGHJKMNPQRSTVWXYZ_09AZaz0123456789ABCDEFGHIJKLmnop2gkivq"} {
		if !oidc.LooksLikeJWT(bearer) {
			fmt.Println("an API key: verified by auth")
			continue
		}
		id, err := v.Verify(ctx, bearer)
		if err != nil {
			fmt.Println(latchkey.ErrorCode(err), err)
			continue
		}
		fmt.Println(id.Subject, id.Email, id.EmailVerified)
	}
	// Output:
	// 248289761001 jane@example.com true
	// unauthenticated unauthenticated: the JWT has expired
	// an API key: verified by auth
}
