package server_test

import (
	"testing"

	"github.com/latchkey/latchkey"
	latchkeyv1 "github.com/latchkey/latchkey/gen/latchkey/v1"
	"github.com/latchkey/latchkey/token"
)

// TestRefusedVerifyShowsNoKey: a key id is public, so a token made with a
// real key's id and a made-up secret, and a token of another account, are
// refused as if no such key existed: the answer carries nothing of the key.
func TestRefusedVerifyShowsNoKey(t *testing.T) {
	e := newEnv(t)
	a, b := e.newTenant("a"), e.newTenant("b")
	key, tok := a.issue(t, &latchkeyv1.IssueRequest{Spec: &latchkeyv1.ApiKeySpec{Permissions: []string{"invoices:read"}}})
	forged, err := token.New("lk", latchkey.EnvironmentLive, key.GetMetadata().GetId())
	if err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]struct {
		caller tenant
		token  string
	}{
		"a made-up secret for a real key id": {a, forged.Reveal()},
		"another account's key":              {b, tok},
	} {
		t.Run(name, func(t *testing.T) {
			res, err := c.caller.c.auth.Verify(t.Context(), &latchkeyv1.VerifyRequest{Token: c.token})
			if err != nil {
				t.Fatal(err)
			}
			if res.GetCode() != latchkeyv1.VerifyCode_VERIFY_CODE_NOT_FOUND || res.GetApiKey() != nil || res.GetAccountId() != "" ||
				res.GetProfileId() != "" || len(res.GetPermissions()) != 0 {
				t.Errorf("Verify answered %v", res)
			}
		})
	}
}

// TestCreatorOfAnotherAccountIsNotShown: the operator creates every
// account's system key, so the operator's profile is that key's creator.
// A tenant reading its system key must not see that profile, even once
// the operator's profile sits in the server's cache of creators.
func TestCreatorOfAnotherAccountIsNotShown(t *testing.T) {
	e := newEnv(t)
	// The operator shows a key it created: its profile is cached.
	if _, err := e.as(e.operator).keys.Issue(t.Context(), &latchkeyv1.IssueRequest{Metadata: &latchkeyv1.AccountResourceMetadata{Name: "operator's"}}); err != nil {
		t.Fatal(err)
	}
	tn := e.newTenant("acme")
	who, err := tn.c.auth.WhoAmI(t.Context(), &latchkeyv1.WhoAmIRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if by := who.GetApiKey().GetInfo().GetCreatedBy(); by != nil {
		t.Fatalf("the tenant sees its system key's creator, of another account: %v", by)
	}
	got, err := tn.c.keys.Get(t.Context(), &latchkeyv1.GetRequest{Id: who.GetApiKey().GetMetadata().GetId()})
	if err != nil {
		t.Fatal(err)
	}
	if by := got.GetApiKey().GetInfo().GetCreatedBy(); by != nil {
		t.Fatalf("Get shows the system key's creator, of another account: %v", by)
	}
}
