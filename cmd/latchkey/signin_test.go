package main

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect/v2"
	"connectrpc.com/connect/v2/connecthttp"

	latchkeyv1 "github.com/latchkey/latchkey/gen/latchkey/v1"
	"github.com/latchkey/latchkey/gen/latchkey/v1/latchkeyv1connect"
	"github.com/latchkey/latchkey/internal/oidctest"
)

// asPerson returns a client that presents a person's ID token, naming an
// account with latchkey-account when account is set.
func asPerson(addr, idToken, account string) *connect.Client {
	sign := func(next connect.ClientFunc) connect.ClientFunc {
		return func(ctx context.Context, spec connect.Spec) (connect.ClientStream, error) {
			if info, ok := connect.CallInfoForClientContext(ctx); ok {
				info.RequestHeader().Set("Authorization", "Bearer "+idToken)
				if account != "" {
					info.RequestHeader().Set("Latchkey-Account", account)
				}
			}
			return next(ctx, spec)
		}
	}
	return connect.NewClient(connecthttp.NewTransport(&http.Client{Timeout: 30 * time.Second}, "http://"+addr), sign)
}

// TestSignIn runs the real server against a real OpenID Provider (zitadel's
// example, internal/oidctest) and signs people in as a browser would: the
// authorization-code flow with PKCE through the provider's login form. The
// account's owner signs in, issues a key and is its creator, is suspended
// and refused, and restored; a person whose email is not verified binds
// nothing; the provider rotating its keys does not sign anyone out.
func TestSignIn(t *testing.T) {
	op := oidctest.Start(t)
	srv := startServe(t, "--db", t.TempDir()+"/latchkey.db", "--oidc-issuer", op.Issuer, "--oidc-audience", op.ClientID)
	defer srv.stop()
	m := operatorLine.FindStringSubmatch(srv.stderr.String())
	if m == nil {
		t.Fatalf("no operator key:\n%s", srv.stderr)
	}
	operator := latchkeyv1connect.NewAccountServiceClient(clientWithKey(srv.addr, m[1]))
	created, err := operator.CreateAccount(t.Context(), &latchkeyv1.CreateAccountRequest{Name: "acme", OwnerEmail: oidctest.Alice.Email})
	if err != nil {
		t.Fatal(err)
	}
	acmeID := created.GetAccount().GetMetadata().GetId()
	system := clientWithKey(srv.addr, created.GetSystemApiKey().GetSpec().GetToken())

	alice := op.Login(t, oidctest.Alice.Username, oidctest.Alice.Password)
	asAlice := asPerson(srv.addr, alice.IDToken, "")
	var aliceProfile string
	t.Run("the owner signs in and is bound", func(t *testing.T) {
		who, err := latchkeyv1connect.NewAuthServiceClient(asAlice).WhoAmI(t.Context(), &latchkeyv1.WhoAmIRequest{})
		if err != nil {
			t.Fatal(err)
		}
		p := who.GetProfile()
		aliceProfile = p.GetMetadata().GetId()
		if who.GetAccount().GetMetadata().GetId() != acmeID || who.GetApiKey() != nil ||
			p.GetInfo().GetIdentity().GetIssuer() != op.Issuer || p.GetInfo().GetIdentity().GetSubject() != oidctest.Alice.ID {
			t.Fatalf("WhoAmI = %v", who)
		}
	})
	var keyToken string
	t.Run("a key she issues names her as its creator", func(t *testing.T) {
		res, err := latchkeyv1connect.NewApiKeyServiceClient(asAlice).Issue(t.Context(), &latchkeyv1.IssueRequest{
			Metadata: &latchkeyv1.AccountResourceMetadata{Name: "alice's key"},
			Spec:     &latchkeyv1.ApiKeySpec{Permissions: []string{"invoices:read"}},
		})
		if err != nil {
			t.Fatal(err)
		}
		keyToken = res.GetApiKey().GetSpec().GetToken()
		if by := res.GetApiKey().GetInfo().GetCreatedBy(); by.GetMetadata().GetId() != aliceProfile || by.GetSpec().GetEmail() != oidctest.Alice.Email {
			t.Fatalf("created_by = %v, want Alice's profile %s", by, aliceProfile)
		}
	})
	t.Run("an email the provider does not verify binds nothing", func(t *testing.T) {
		if _, err := latchkeyv1connect.NewProfileServiceClient(system).CreateProfile(t.Context(), &latchkeyv1.CreateProfileRequest{
			Metadata: &latchkeyv1.AccountResourceMetadata{Name: "mallory"}, Spec: &latchkeyv1.ProfileSpec{Email: oidctest.Mallory.Email},
		}); err != nil {
			t.Fatal(err)
		}
		mallory := op.Login(t, oidctest.Mallory.Username, oidctest.Mallory.Password)
		_, err := latchkeyv1connect.NewAuthServiceClient(asPerson(srv.addr, mallory.IDToken, "")).WhoAmI(t.Context(), &latchkeyv1.WhoAmIRequest{})
		if connect.CodeOf(err) != connect.CodePermissionDenied {
			t.Fatalf("Mallory's WhoAmI = %v, want permission_denied", err)
		}
	})
	t.Run("the provider rotating its keys signs nobody out", func(t *testing.T) {
		op.Rotate(t)
		fresh := op.Login(t, oidctest.Alice.Username, oidctest.Alice.Password)
		if _, err := latchkeyv1connect.NewAuthServiceClient(asPerson(srv.addr, fresh.IDToken, "")).WhoAmI(t.Context(), &latchkeyv1.WhoAmIRequest{}); err != nil {
			t.Fatalf("a token signed with the new key: %v", err)
		}
		if _, err := latchkeyv1connect.NewAuthServiceClient(asAlice).WhoAmI(t.Context(), &latchkeyv1.WhoAmIRequest{}); err != nil {
			t.Fatalf("a token signed before the rotation: %v", err)
		}
	})
	t.Run("a suspended person is refused at once, and her key keeps working", func(t *testing.T) {
		profiles := latchkeyv1connect.NewProfileServiceClient(system)
		if _, err := profiles.SuspendProfile(t.Context(), &latchkeyv1.SuspendProfileRequest{Id: aliceProfile}); err != nil {
			t.Fatal(err)
		}
		_, err := latchkeyv1connect.NewAuthServiceClient(asAlice).WhoAmI(t.Context(), &latchkeyv1.WhoAmIRequest{})
		if connect.CodeOf(err) != connect.CodePermissionDenied || !strings.Contains(err.Error(), "suspended") {
			t.Fatalf("Alice suspended: WhoAmI = %v, want permission_denied saying suspended", err)
		}
		v, err := latchkeyv1connect.NewAuthServiceClient(system).Verify(t.Context(), &latchkeyv1.VerifyRequest{Token: keyToken})
		if err != nil || !v.GetValid() {
			t.Fatalf("her key after the suspension: %v, %v", v.GetCode(), err)
		}
		if _, err := profiles.RestoreProfile(t.Context(), &latchkeyv1.RestoreProfileRequest{Id: aliceProfile}); err != nil {
			t.Fatal(err)
		}
		if _, err := latchkeyv1connect.NewAuthServiceClient(asAlice).WhoAmI(t.Context(), &latchkeyv1.WhoAmIRequest{}); err != nil {
			t.Fatalf("Alice restored: %v", err)
		}
	})
	t.Run("a token for another audience is refused", func(t *testing.T) {
		web, err := op.TryLogin(t.Context(), oidctest.LoginRequest{
			Username: oidctest.Alice.Username, Password: oidctest.Alice.Password,
			ClientID: oidctest.WebClientID, ClientSecret: oidctest.WebClientSecret,
		})
		if err != nil {
			t.Fatal(err)
		}
		_, err = latchkeyv1connect.NewAuthServiceClient(asPerson(srv.addr, web.IDToken, "")).WhoAmI(t.Context(), &latchkeyv1.WhoAmIRequest{})
		if connect.CodeOf(err) != connect.CodeUnauthenticated {
			t.Fatalf("a token of the web client: %v, want unauthenticated", err)
		}
	})
}
