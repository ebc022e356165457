package main

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"connectrpc.com/connect/v2"
	"connectrpc.com/connect/v2/connecthttp"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/latchkey/latchkey"
	latchkeyv1 "github.com/latchkey/latchkey/gen/latchkey/v1"
	"github.com/latchkey/latchkey/gen/latchkey/v1/latchkeyv1connect"
	"github.com/latchkey/latchkey/token"
)

// A full scenario through `latchkey serve` at debug level — accounts,
// issue, rotation with grace, verification of good, forged, malformed,
// revoked and rotated-out tokens, refused and invalid calls — and then
// every log line and every error message is searched for each token's
// secret and for the pepper, in the forms it could be printed.
func TestNoSecretInLogsOrErrors(t *testing.T) {
	dir := t.TempDir()
	srv := startServe(t, "--db", filepath.Join(dir, "latchkey.db"), "--log-level", "debug")
	m := operatorLine.FindStringSubmatch(srv.stderr.String())
	if m == nil {
		t.Fatalf("no operator line:\n%s", srv.stderr)
	}
	base := "http://" + srv.addr
	type clients struct {
		keys     latchkeyv1connect.ApiKeyServiceClient
		accounts latchkeyv1connect.AccountServiceClient
		auth     latchkeyv1connect.AuthServiceClient
	}
	as := func(header, tok string) clients {
		withKey := func(next connect.ClientFunc) connect.ClientFunc {
			return func(ctx context.Context, spec connect.Spec) (connect.ClientStream, error) {
				if info, ok := connect.CallInfoForClientContext(ctx); ok {
					info.RequestHeader().Set(header, tok)
				}
				return next(ctx, spec)
			}
		}
		c := connect.NewClient(connecthttp.NewTransport(http.DefaultClient, base), withKey)
		return clients{latchkeyv1connect.NewApiKeyServiceClient(c), latchkeyv1connect.NewAccountServiceClient(c), latchkeyv1connect.NewAuthServiceClient(c)}
	}
	ctx := t.Context()
	var tokens, errs []string
	note := func(err error) {
		if err != nil {
			errs = append(errs, err.Error())
		}
	}

	operator := as("Authorization", "Bearer "+m[1])
	acct, err := operator.accounts.CreateAccount(ctx, &latchkeyv1.CreateAccountRequest{Name: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	system := acct.GetSystemApiKey().GetSpec().GetToken()
	admin := as("X-Api-Key", system)
	issued, err := admin.keys.Issue(ctx, &latchkeyv1.IssueRequest{
		Metadata: &latchkeyv1.AccountResourceMetadata{Name: "reader"},
		Spec:     &latchkeyv1.ApiKeySpec{Permissions: []string{"invoices:read"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	first := issued.GetApiKey().GetSpec().GetToken()
	id := issued.GetApiKey().GetMetadata().GetId()
	rotated, err := admin.keys.Rotate(ctx, &latchkeyv1.RotateRequest{Id: id, GracePeriod: durationpb.New(3600e9)})
	if err != nil {
		t.Fatal(err)
	}
	second := rotated.GetApiKey().GetSpec().GetToken()
	forged := second[:len(second)-10] + strings.Repeat("A", 10)
	malformed := strings.ToUpper(first)
	// A well-formed token of a real key with a wrong secret: its checksum
	// is right, so it reaches the hash comparison and fails only there.
	wrong, err := token.New("lk", latchkey.EnvironmentLive, id)
	if err != nil {
		t.Fatal(err)
	}
	wrongSecret := wrong.Reveal()
	// Every token that the scenario sends is searched for, whether it
	// verified or not: a log line that names a refused token leaks it just
	// the same, and a wrong secret is often a typo of the right one.
	tokens = append(tokens, m[1], system, first, second, forged, malformed, wrongSecret)

	for _, tok := range []string{first, second, forged, malformed, wrongSecret, "lk_live_" + strings.Repeat("x", 60)} {
		_, err := admin.auth.Verify(ctx, &latchkeyv1.VerifyRequest{Token: tok, Permissions: []string{"invoices:read"}})
		note(err)
		_, err = as("Authorization", "Bearer "+tok).auth.WhoAmI(ctx, &latchkeyv1.WhoAmIRequest{})
		note(err)
	}
	// Forward authentication, as a gateway asks it: the gateway's own key
	// and the caller's token both travel in headers.
	for _, tok := range []string{first, forged, wrongSecret} {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/forward-auth", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Latchkey-Gateway-Key", system)
		req.Header.Set("Authorization", "Bearer "+tok)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		errs = append(errs, string(body))
	}
	_, err = as("Authorization", "Bearer "+first).keys.Issue(ctx, &latchkeyv1.IssueRequest{}) // lacks permission
	note(err)
	_, err = admin.keys.Issue(ctx, &latchkeyv1.IssueRequest{Spec: &latchkeyv1.ApiKeySpec{Permissions: []string{"NOT VALID"}}})
	note(err)
	_, err = admin.keys.Revoke(ctx, &latchkeyv1.RevokeRequest{Id: id})
	note(err)
	// The revoked key's tokens, presented again after the revocation.
	for _, tok := range []string{first, second} {
		_, err = as("Authorization", "Bearer "+tok).auth.WhoAmI(ctx, &latchkeyv1.WhoAmIRequest{})
		note(err)
		_, err = admin.auth.Verify(ctx, &latchkeyv1.VerifyRequest{Token: tok})
		note(err)
	}
	if len(errs) < 5 {
		t.Fatalf("the scenario met only %d errors: %v", len(errs), errs)
	}
	if err := srv.stop(); err != nil {
		t.Fatal(err)
	}

	pepperFile, err := os.ReadFile(filepath.Join(dir, "latchkey.pepper"))
	if err != nil {
		t.Fatal(err)
	}
	pepper, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(pepperFile)))
	if err != nil {
		t.Fatal(err)
	}
	forbidden := map[string]string{
		"pepper (base64)": strings.TrimSpace(string(pepperFile)),
		"pepper (hex)":    hex.EncodeToString(pepper),
		"pepper (raw)":    string(pepper),
	}
	for i, tok := range tokens {
		// The secret is what follows the key id (the key id itself is
		// public), with or without its checksum. Any window of
		// secretWindow characters of it counts too: a truncated or
		// re-cut secret still leaks most of its bits, and 12 base62
		// characters (71 bits) do not turn up in the logs by chance.
		secret := tok[strings.LastIndex(tok, "_")+1:]
		for j := 0; j+secretWindow <= len(secret); j++ {
			forbidden[fmt.Sprintf("secret of token %d (characters %d to %d)", i, j, j+secretWindow)] = secret[j : j+secretWindow]
		}
	}
	logs := operatorLine.ReplaceAllString(srv.stderr.String(), "operator key line")
	if !strings.Contains(logs, `"level":"DEBUG"`) {
		t.Fatal("no debug lines captured: the scenario did not log every call")
	}
	for what, s := range forbidden {
		if strings.Contains(logs, s) {
			t.Errorf("the logs hold the %s", what)
		}
		for _, e := range errs {
			if strings.Contains(e, s) {
				t.Errorf("an error holds the %s: %s", what, e)
			}
		}
	}
}

// secretWindow is the shortest piece of a secret that the secrets tests
// look for: 12 base62 characters, about 71 bits.
const secretWindow = 12
