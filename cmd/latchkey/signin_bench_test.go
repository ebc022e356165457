package main

import (
	"net/http"
	"testing"
	"time"

	latchkeyv1 "github.com/latchkey/latchkey/gen/latchkey/v1"
	"github.com/latchkey/latchkey/gen/latchkey/v1/latchkeyv1connect"
	"github.com/latchkey/latchkey/internal/oidctest"
)

// BenchmarkWhoAmI measures, against one server in one run, WhoAmI signed
// in with a person's JWT (verified once, then remembered), WhoAmI with an
// API key, and the plain /healthz, so that their ratios say what a
// person's calls cost beside a key's and beside the transport alone:
//
//	go test ./cmd/latchkey -run '^$' -bench BenchmarkWhoAmI -benchtime 3s
func BenchmarkWhoAmI(b *testing.B) {
	op := oidctest.Start(b)
	srv := startServe(b, "--db", b.TempDir()+"/latchkey.db", "--oidc-issuer", op.Issuer, "--oidc-audience", op.ClientID)
	defer srv.stop()
	m := operatorLine.FindStringSubmatch(srv.stderr.String())
	if m == nil {
		b.Fatalf("no operator key:\n%s", srv.stderr)
	}
	created, err := latchkeyv1connect.NewAccountServiceClient(clientWithKey(srv.addr, m[1])).CreateAccount(b.Context(),
		&latchkeyv1.CreateAccountRequest{Name: "bench", OwnerEmail: oidctest.Alice.Email})
	if err != nil {
		b.Fatal(err)
	}
	alice := op.Login(b, oidctest.Alice.Username, oidctest.Alice.Password)
	for name, who := range map[string]latchkeyv1connect.AuthServiceClient{
		"jwt":     latchkeyv1connect.NewAuthServiceClient(asPerson(srv.addr, alice.IDToken, "")),
		"api_key": latchkeyv1connect.NewAuthServiceClient(clientWithKey(srv.addr, created.GetSystemApiKey().GetSpec().GetToken())),
	} {
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				if _, err := who.WhoAmI(b.Context(), &latchkeyv1.WhoAmIRequest{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("healthz", func(b *testing.B) {
		c := &http.Client{Timeout: 10 * time.Second}
		for b.Loop() {
			res, err := c.Get("http://" + srv.addr + "/healthz")
			if err != nil {
				b.Fatal(err)
			}
			res.Body.Close()
		}
	})
}
