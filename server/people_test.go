package server_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect/v2"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/auth"
	latchkeyv1 "github.com/latchkey/latchkey/gen/latchkey/v1"
	"github.com/latchkey/latchkey/server"
)

// identities is an IdentityVerifier for the edge cases of binding: each
// made-up JWT stands for the sign-in the test says. The real provider,
// and the real JWT checks, are TestSignIn's (cmd/latchkey) and auth/oidc's.
type identities struct {
	mu     sync.Mutex
	tokens map[string]latchkey.SignIn
}

func (ids *identities) VerifySignIn(_ context.Context, raw string) (latchkey.SignIn, error) {
	ids.mu.Lock()
	defer ids.mu.Unlock()
	in, ok := ids.tokens[raw]
	if !ok {
		return in, latchkey.Errorf(latchkey.CodeUnauthenticated, "the provider does not vouch for this token")
	}
	return in, nil
}

// token returns a made-up JWT for a sign-in, shaped like one.
func (ids *identities) token(in latchkey.SignIn) string {
	ids.mu.Lock()
	defer ids.mu.Unlock()
	raw := "eyJhbGciOiJSUzI1NiJ9." + strings.ToLower(latchkey.NewID("jwt")) + ".sig"
	ids.tokens[raw] = in
	return raw
}

const testIssuer = "https://idp.example.com"

func newPeopleEnv(t *testing.T) (*env, *identities) {
	ids := &identities{tokens: map[string]latchkey.SignIn{}}
	e := newEnvWith(t, nil, func(cfg *server.Config) { cfg.Identities = ids })
	return e, ids
}

// inAccount returns clients that name an account with latchkey-account.
func (e *env) asIn(tok, account string) clients {
	return e.withInterceptor(chain(withHeader("Authorization", "Bearer "+tok), withHeader(auth.AccountHeader, account)))
}

func chain(a, b connect.ClientInterceptor) connect.ClientInterceptor {
	return func(next connect.ClientFunc) connect.ClientFunc { return a(b(next)) }
}

// TestPeople signs people in with JWTs that a stand-in provider vouches
// for: binding by verified email once and by issuer and subject after,
// several accounts, permissions and suspension.
func TestPeople(t *testing.T) {
	e, ids := newPeopleEnv(t)
	operator := e.as(e.operator)
	acmeRes, err := operator.accounts.CreateAccount(t.Context(), &latchkeyv1.CreateAccountRequest{Name: "acme", OwnerEmail: "ann@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	acmeID := acmeRes.GetAccount().GetMetadata().GetId()
	acme := e.as(acmeRes.GetSystemApiKey().GetSpec().GetToken())
	ann := ids.token(latchkey.SignIn{Issuer: testIssuer, Subject: "sub-ann", Email: "Ann@Example.com", EmailVerified: true})

	var annProfile string
	t.Run("the owner's first sign-in binds the owner profile", func(t *testing.T) {
		who, err := e.as(ann).auth.WhoAmI(t.Context(), &latchkeyv1.WhoAmIRequest{})
		if err != nil {
			t.Fatal(err)
		}
		p := who.GetProfile()
		annProfile = p.GetMetadata().GetId()
		id := p.GetInfo().GetIdentity()
		if who.GetApiKey() != nil || who.GetAccount().GetMetadata().GetId() != acmeID || p.GetSpec().GetEmail() != "ann@example.com" ||
			id.GetIssuer() != testIssuer || id.GetSubject() != "sub-ann" || id.GetBindTime() == nil || p.GetSpec().GetPermissions()[0] != "*" {
			t.Fatalf("WhoAmI = %v", who)
		}
	})
	t.Run("keys a person issues name the person as creator", func(t *testing.T) {
		res, err := e.as(ann).keys.Issue(t.Context(), &latchkeyv1.IssueRequest{Metadata: &latchkeyv1.AccountResourceMetadata{Name: "by ann"}})
		if err != nil {
			t.Fatal(err)
		}
		if by := res.GetApiKey().GetInfo().GetCreatedBy().GetMetadata().GetId(); by != annProfile {
			t.Fatalf("created_by %q, want Ann's profile %q", by, annProfile)
		}
		events, err := acme.audit.ListAuditEvents(t.Context(), &latchkeyv1.ListAuditEventsRequest{TargetId: res.GetApiKey().GetMetadata().GetId()})
		if err != nil {
			t.Fatal(err)
		}
		if ev := events.GetAuditEvents(); len(ev) != 1 || ev[0].GetActor().GetId() != annProfile {
			t.Fatalf("audit events %v, want one by Ann", ev)
		}
	})
	t.Run("a changed email keeps the binding", func(t *testing.T) {
		moved := ids.token(latchkey.SignIn{Issuer: testIssuer, Subject: "sub-ann", Email: "ann@elsewhere.example", EmailVerified: true})
		who, err := e.as(moved).auth.WhoAmI(t.Context(), &latchkeyv1.WhoAmIRequest{})
		if err != nil || who.GetProfile().GetMetadata().GetId() != annProfile {
			t.Fatalf("WhoAmI = %v, %v", who.GetProfile(), err)
		}
	})
	t.Run("another identity with the bound email takes nothing", func(t *testing.T) {
		eve := ids.token(latchkey.SignIn{Issuer: testIssuer, Subject: "sub-eve", Email: "ann@example.com", EmailVerified: true})
		_, err := e.as(eve).auth.WhoAmI(t.Context(), &latchkeyv1.WhoAmIRequest{})
		wantCode(t, err, connect.CodePermissionDenied)
		// Nor does the same subject at another issuer.
		other := ids.token(latchkey.SignIn{Issuer: "https://other-idp.example.com", Subject: "sub-ann", Email: "ann@example.com", EmailVerified: true})
		_, err = e.as(other).auth.WhoAmI(t.Context(), &latchkeyv1.WhoAmIRequest{})
		wantCode(t, err, connect.CodePermissionDenied)
	})
	t.Run("an email the provider does not vouch for binds nothing", func(t *testing.T) {
		if _, err := acme.profiles.CreateProfile(t.Context(), &latchkeyv1.CreateProfileRequest{
			Metadata: &latchkeyv1.AccountResourceMetadata{Name: "bob"}, Spec: &latchkeyv1.ProfileSpec{Email: "bob@example.com"},
		}); err != nil {
			t.Fatal(err)
		}
		unverified := ids.token(latchkey.SignIn{Issuer: testIssuer, Subject: "sub-bob", Email: "bob@example.com"})
		_, err := e.as(unverified).auth.WhoAmI(t.Context(), &latchkeyv1.WhoAmIRequest{})
		wantCode(t, err, connect.CodePermissionDenied)
		if !strings.Contains(err.Error(), "does not vouch for your email") {
			t.Errorf("the refusal %q does not say why", err)
		}
		verified := ids.token(latchkey.SignIn{Issuer: testIssuer, Subject: "sub-bob", Email: "bob@example.com", EmailVerified: true})
		if _, err := e.as(verified).auth.WhoAmI(t.Context(), &latchkeyv1.WhoAmIRequest{}); err != nil {
			t.Fatalf("once verified: %v", err)
		}
	})
	t.Run("a second profile cannot bind an identity already bound", func(t *testing.T) {
		if _, err := acme.profiles.CreateProfile(t.Context(), &latchkeyv1.CreateProfileRequest{
			Metadata: &latchkeyv1.AccountResourceMetadata{Name: "ann again"}, Spec: &latchkeyv1.ProfileSpec{Email: "ann.two@example.com", Permissions: []string{"*"}},
		}); err != nil {
			t.Fatal(err)
		}
		again := ids.token(latchkey.SignIn{Issuer: testIssuer, Subject: "sub-ann", Email: "ann.two@example.com", EmailVerified: true})
		res, err := e.as(again).auth.ListMyProfiles(t.Context(), &latchkeyv1.ListMyProfilesRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if ps := res.GetProfiles(); len(ps) != 1 || ps[0].GetProfile().GetMetadata().GetId() != annProfile {
			t.Fatalf("ListMyProfiles = %v, want Ann's first profile alone", ps)
		}
	})

	globexRes, err := operator.accounts.CreateAccount(t.Context(), &latchkeyv1.CreateAccountRequest{Name: "globex"})
	if err != nil {
		t.Fatal(err)
	}
	globexID := globexRes.GetAccount().GetMetadata().GetId()
	globex := e.as(globexRes.GetSystemApiKey().GetSpec().GetToken())
	if _, err := globex.profiles.CreateProfile(t.Context(), &latchkeyv1.CreateProfileRequest{
		Metadata: &latchkeyv1.AccountResourceMetadata{Name: "ann at globex"},
		Spec:     &latchkeyv1.ProfileSpec{Email: "ann@example.com", Permissions: []string{"api_keys:read"}},
	}); err != nil {
		t.Fatal(err)
	}

	t.Run("a person with several accounts names one", func(t *testing.T) {
		res, err := e.as(ann).auth.ListMyProfiles(t.Context(), &latchkeyv1.ListMyProfilesRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if ps := res.GetProfiles(); len(ps) != 2 || ps[0].GetAccount().GetId() != acmeID || ps[1].GetAccount().GetId() != globexID || ps[1].GetAccount().GetName() != "globex" {
			t.Fatalf("ListMyProfiles = %v, want acme then globex", ps)
		}
		_, err = e.as(ann).auth.WhoAmI(t.Context(), &latchkeyv1.WhoAmIRequest{})
		wantCode(t, err, connect.CodeFailedPrecondition)
		who, err := e.asIn(ann, globexID).auth.WhoAmI(t.Context(), &latchkeyv1.WhoAmIRequest{})
		if err != nil || who.GetAccount().GetMetadata().GetId() != globexID {
			t.Fatalf("WhoAmI in globex = %v, %v", who.GetAccount(), err)
		}
		_, err = e.asIn(ann, latchkey.NewID(latchkey.PrefixAccount)).auth.WhoAmI(t.Context(), &latchkeyv1.WhoAmIRequest{})
		wantCode(t, err, connect.CodePermissionDenied)
		_, err = e.asIn(ann, "globex").auth.WhoAmI(t.Context(), &latchkeyv1.WhoAmIRequest{})
		wantCode(t, err, connect.CodeInvalidArgument)
	})
	t.Run("a person holds the profile's permissions, in that account only", func(t *testing.T) {
		inGlobex := e.asIn(ann, globexID)
		if _, err := inGlobex.keys.List(t.Context(), &latchkeyv1.ListRequest{}); err != nil {
			t.Fatal(err)
		}
		_, err := inGlobex.keys.Issue(t.Context(), &latchkeyv1.IssueRequest{Metadata: &latchkeyv1.AccountResourceMetadata{Name: "nope"}})
		wantCode(t, err, connect.CodePermissionDenied)
	})
	t.Run("a header that is no account id is invalid, whoever sends it", func(t *testing.T) {
		_, err := e.asIn(acmeRes.GetSystemApiKey().GetSpec().GetToken(), "garbage").auth.WhoAmI(t.Context(), &latchkeyv1.WhoAmIRequest{})
		wantViolation(t, err, "latchkey-account")
		_, err = e.asIn(ann, "garbage").auth.ListMyProfiles(t.Context(), &latchkeyv1.ListMyProfilesRequest{})
		wantViolation(t, err, "latchkey-account")
	})
	t.Run("a person's stream ends when the sign-in expires", func(t *testing.T) {
		short := ids.token(latchkey.SignIn{Issuer: testIssuer, Subject: "sub-ann", Email: "ann@example.com", EmailVerified: true, Expiry: e.clock.Now().Add(time.Minute)})
		w := openWatch(t, e.asIn(short, acmeID), nil)
		w.first(t)
		e.clock.Advance(2 * time.Minute)
		defer e.clock.Advance(-2 * time.Minute)
		err := w.end(t)
		wantCode(t, err, connect.CodeUnauthenticated)
		if !strings.Contains(err.Error(), "sign-in has expired") {
			t.Errorf("the stream ended with %v", err)
		}
	})
	t.Run("an API key may name its own account only", func(t *testing.T) {
		if _, err := e.asIn(acmeRes.GetSystemApiKey().GetSpec().GetToken(), acmeID).auth.WhoAmI(t.Context(), &latchkeyv1.WhoAmIRequest{}); err != nil {
			t.Fatal(err)
		}
		_, err := e.asIn(acmeRes.GetSystemApiKey().GetSpec().GetToken(), globexID).auth.WhoAmI(t.Context(), &latchkeyv1.WhoAmIRequest{})
		wantCode(t, err, connect.CodePermissionDenied)
	})

	_, manager := tenant{c: acme}.issue(t, &latchkeyv1.IssueRequest{Spec: &latchkeyv1.ApiKeySpec{Permissions: []string{"profiles:manage", "api_keys:read"}}})
	t.Run("people's permissions are given under no escalation", func(t *testing.T) {
		_, err := e.as(manager).profiles.CreateProfile(t.Context(), &latchkeyv1.CreateProfileRequest{
			Metadata: &latchkeyv1.AccountResourceMetadata{Name: "admin"}, Spec: &latchkeyv1.ProfileSpec{Email: "admin@example.com", Permissions: []string{"*"}},
		})
		wantCode(t, err, connect.CodePermissionDenied)
		res, err := e.as(manager).profiles.CreateProfile(t.Context(), &latchkeyv1.CreateProfileRequest{
			Metadata: &latchkeyv1.AccountResourceMetadata{Name: "reader"}, Spec: &latchkeyv1.ProfileSpec{Email: "reader@example.com", Permissions: []string{"api_keys:read"}},
		})
		if err != nil {
			t.Fatal(err)
		}
		_, err = e.as(manager).profiles.UpdateProfile(t.Context(), &latchkeyv1.UpdateProfileRequest{
			Id: res.GetProfile().GetMetadata().GetId(), Spec: &latchkeyv1.ProfileSpec{Permissions: []string{"api_keys:manage"}},
			UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"spec.permissions"}},
		})
		wantCode(t, err, connect.CodePermissionDenied)
	})
	t.Run("a person stronger than the caller is out of its reach", func(t *testing.T) {
		_, err := e.as(manager).profiles.SuspendProfile(t.Context(), &latchkeyv1.SuspendProfileRequest{Id: annProfile})
		wantCode(t, err, connect.CodePermissionDenied)
		if _, err := e.asIn(ann, acmeID).auth.WhoAmI(t.Context(), &latchkeyv1.WhoAmIRequest{}); err != nil {
			t.Fatalf("Ann after a refused suspension: %v", err)
		}
	})
	t.Run("a suspension stops the person at once, and not the keys they made", func(t *testing.T) {
		annAcme := e.asIn(ann, acmeID)
		key, err := annAcme.keys.Issue(t.Context(), &latchkeyv1.IssueRequest{
			Metadata: &latchkeyv1.AccountResourceMetadata{Name: "kept"}, Spec: &latchkeyv1.ApiKeySpec{Permissions: []string{"api_keys:verify"}},
		})
		if err != nil {
			t.Fatal(err)
		}
		watch := openWatch(t, annAcme, nil)
		watch.first(t)
		res, err := acme.profiles.SuspendProfile(t.Context(), &latchkeyv1.SuspendProfileRequest{Id: annProfile})
		if err != nil {
			t.Fatal(err)
		}
		if res.GetProfile().GetInfo().GetState() != latchkeyv1.ProfileState_PROFILE_STATE_SUSPENDED {
			t.Fatalf("SuspendProfile answered %v", res.GetProfile().GetInfo())
		}
		_, err = annAcme.auth.WhoAmI(t.Context(), &latchkeyv1.WhoAmIRequest{})
		wantCode(t, err, connect.CodePermissionDenied)
		if !strings.Contains(err.Error(), "suspended") {
			t.Errorf("the refusal %q does not say why", err)
		}
		wantCode(t, watch.end(t), connect.CodePermissionDenied)
		// Her profile in globex is another account's, and works.
		if _, err := e.asIn(ann, globexID).auth.WhoAmI(t.Context(), &latchkeyv1.WhoAmIRequest{}); err != nil {
			t.Fatalf("Ann in globex: %v", err)
		}
		v, err := acme.auth.Verify(t.Context(), &latchkeyv1.VerifyRequest{Token: key.GetApiKey().GetSpec().GetToken()})
		if err != nil || !v.GetValid() {
			t.Fatalf("a key Ann made, after her suspension: %v, %v", v.GetCode(), err)
		}
		if _, err := acme.profiles.RestoreProfile(t.Context(), &latchkeyv1.RestoreProfileRequest{Id: annProfile}); err != nil {
			t.Fatal(err)
		}
		if _, err := annAcme.auth.WhoAmI(t.Context(), &latchkeyv1.WhoAmIRequest{}); err != nil {
			t.Fatalf("Ann restored: %v", err)
		}
	})
	t.Run("a suspended account's people are refused", func(t *testing.T) {
		if _, err := operator.accounts.SuspendAccount(t.Context(), &latchkeyv1.SuspendAccountRequest{Id: globexID, Reason: "test"}); err != nil {
			t.Fatal(err)
		}
		_, err := e.asIn(ann, globexID).auth.WhoAmI(t.Context(), &latchkeyv1.WhoAmIRequest{})
		wantCode(t, err, connect.CodePermissionDenied)
		if !strings.Contains(err.Error(), "account is suspended") {
			t.Errorf("the refusal %q does not say why", err)
		}
		res, err := e.as(ann).auth.ListMyProfiles(t.Context(), &latchkeyv1.ListMyProfilesRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if ps := res.GetProfiles(); len(ps) != 2 || ps[1].GetAccountState() != latchkeyv1.AccountState_ACCOUNT_STATE_SUSPENDED {
			t.Fatalf("ListMyProfiles = %v", ps)
		}
	})
	t.Run("a token the provider refuses is unauthenticated", func(t *testing.T) {
		_, err := e.as("eyJhbGciOiJub25lIn0.e30.").auth.WhoAmI(t.Context(), &latchkeyv1.WhoAmIRequest{})
		wantCode(t, err, connect.CodeUnauthenticated)
	})
}

// TestSignInNotConfigured: without a provider, a JWT is refused saying so.
func TestSignInNotConfigured(t *testing.T) {
	e := newEnv(t)
	_, err := e.as("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln").auth.WhoAmI(t.Context(), &latchkeyv1.WhoAmIRequest{})
	wantCode(t, err, connect.CodeUnauthenticated)
	if !strings.Contains(err.Error(), "sign-in is not configured") {
		t.Fatalf("the refusal %q does not say that sign-in is not configured", err)
	}
}
