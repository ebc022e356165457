package server_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect/v2"
	"google.golang.org/protobuf/types/known/timestamppb"

	latchkeyv1 "github.com/latchkey/latchkey/gen/latchkey/v1"
	"github.com/latchkey/latchkey/server"
)

// TestSuspendedAccount suspends a tenant with keys, a workspace, a grant
// and a person, and restores it: while suspended, nothing of it acts and
// Verify says why, to those allowed to ask; restored, everything is as it
// was, but for a key that expired meanwhile.
func TestSuspendedAccount(t *testing.T) {
	e := newEnv(t)
	operator := e.as(e.operator)
	acme := e.newTenant("acme")
	globex := e.newTenant("globex")
	acmeID := acme.account.GetMetadata().GetId()
	ws := acme.workspace(t, "billing")
	wsID := ws.GetMetadata().GetId()
	key, tok := acme.issue(t, &latchkeyv1.IssueRequest{
		Spec:                &latchkeyv1.ApiKeySpec{Permissions: []string{"invoices:read", "api_keys:verify"}},
		InitialWorkspaceIds: []string{wsID},
	})
	_, expiringTok := acme.issue(t, &latchkeyv1.IssueRequest{Spec: &latchkeyv1.ApiKeySpec{ExpireTime: timestamppb.New(e.clock.Now().Add(time.Hour))}})
	revoked, revokedTok := acme.issue(t, &latchkeyv1.IssueRequest{})
	if _, err := acme.c.keys.Revoke(t.Context(), &latchkeyv1.RevokeRequest{Id: revoked.GetMetadata().GetId()}); err != nil {
		t.Fatal(err)
	}
	_, globexVerifier := globex.issue(t, &latchkeyv1.IssueRequest{Spec: &latchkeyv1.ApiKeySpec{Permissions: []string{"api_keys:verify"}}})
	_, operatorGateway := tenant{c: operator}.issue(t, &latchkeyv1.IssueRequest{Spec: &latchkeyv1.ApiKeySpec{Permissions: []string{"api_keys:verify"}}})

	verify := func(t *testing.T, c clients, token string, req *latchkeyv1.VerifyRequest) latchkeyv1.VerifyCode {
		t.Helper()
		if req == nil {
			req = &latchkeyv1.VerifyRequest{}
		}
		req.Token = token
		res, err := c.auth.Verify(t.Context(), req)
		if err != nil {
			t.Fatal(err)
		}
		return res.GetCode()
	}
	wantVerify := func(t *testing.T, c clients, token string, req *latchkeyv1.VerifyRequest, want latchkeyv1.VerifyCode) {
		t.Helper()
		if got := verify(t, c, token, req); got != want {
			t.Fatalf("Verify = %v, want %v", got, want)
		}
	}
	// The key is verified (and cached) before the suspension, so that the
	// suspension must reach the cache, not only the database.
	wantVerify(t, operator, tok, &latchkeyv1.VerifyRequest{WorkspaceId: wsID}, latchkeyv1.VerifyCode_VERIFY_CODE_VALID)
	if _, err := e.as(tok).auth.WhoAmI(t.Context(), &latchkeyv1.WhoAmIRequest{}); err != nil {
		t.Fatal(err)
	}
	// A stream of the account's own, opened before: it must end.
	ownWatch := openWatch(t, e.as(tok), nil)
	ownWatch.first(t)
	operatorWatch := openWatch(t, operator, nil)
	operatorWatch.first(t)

	res, err := operator.accounts.SuspendAccount(t.Context(), &latchkeyv1.SuspendAccountRequest{Id: acmeID, Reason: "invoice 1042 unpaid"})
	if err != nil {
		t.Fatal(err)
	}
	suspended := res.GetAccount()

	t.Run("the account says it is suspended, and why", func(t *testing.T) {
		if suspended.GetState() != latchkeyv1.AccountState_ACCOUNT_STATE_SUSPENDED || suspended.GetSuspendReason() != "invoice 1042 unpaid" || suspended.GetSuspendTime() == nil {
			t.Fatalf("SuspendAccount answered %v", suspended)
		}
		got, err := operator.accounts.GetAccount(t.Context(), &latchkeyv1.GetAccountRequest{Id: acmeID})
		if err != nil {
			t.Fatal(err)
		}
		if got.GetAccount().GetState() != latchkeyv1.AccountState_ACCOUNT_STATE_SUSPENDED {
			t.Fatalf("GetAccount state = %v", got.GetAccount().GetState())
		}
		other, err := operator.accounts.GetAccount(t.Context(), &latchkeyv1.GetAccountRequest{Id: globex.account.GetMetadata().GetId()})
		if err != nil {
			t.Fatal(err)
		}
		if other.GetAccount().GetState() != latchkeyv1.AccountState_ACCOUNT_STATE_ACTIVE || other.GetAccount().GetSuspendTime() != nil {
			t.Fatalf("another account reads %v", other.GetAccount())
		}
	})
	t.Run("its keys are refused at once, saying why", func(t *testing.T) {
		for name, token := range map[string]string{"a key": tok, "the system key": acme.system} {
			_, err := e.as(token).auth.WhoAmI(t.Context(), &latchkeyv1.WhoAmIRequest{})
			wantCode(t, err, connect.CodePermissionDenied)
			if !strings.Contains(err.Error(), "account is suspended") {
				t.Errorf("%s: %v does not say the account is suspended", name, err)
			}
		}
	})
	t.Run("Verify tells the services allowed to see the key", func(t *testing.T) {
		wantVerify(t, operator, tok, &latchkeyv1.VerifyRequest{WorkspaceId: wsID}, latchkeyv1.VerifyCode_VERIFY_CODE_ACCOUNT_SUSPENDED)
		wantVerify(t, operator, tok, nil, latchkeyv1.VerifyCode_VERIFY_CODE_ACCOUNT_SUSPENDED)
	})
	t.Run("Verify tells nobody else", func(t *testing.T) {
		// Another account sees no key at all, and a wrong secret is an
		// unknown key: a suspension is news only for the key's holder.
		wantVerify(t, e.as(globexVerifier), tok, nil, latchkeyv1.VerifyCode_VERIFY_CODE_NOT_FOUND)
		wrong := []byte(tok)
		wrong[len(wrong)-12] ^= 0x01
		if code := verify(t, operator, string(wrong), nil); code != latchkeyv1.VerifyCode_VERIFY_CODE_NOT_FOUND && code != latchkeyv1.VerifyCode_VERIFY_CODE_MALFORMED {
			t.Fatalf("a wrong secret answers %v", code)
		}
	})
	t.Run("revoked and expired outrank suspended", func(t *testing.T) {
		wantVerify(t, operator, revokedTok, nil, latchkeyv1.VerifyCode_VERIFY_CODE_REVOKED)
	})
	t.Run("forward authentication refuses with 403", func(t *testing.T) {
		res, body := forwardAuth(t, e, http.MethodGet, map[string]string{server.GatewayKeyHeader: operatorGateway, "Authorization": "Bearer " + tok})
		if res.StatusCode != http.StatusForbidden || !strings.Contains(body, "account_suspended") {
			t.Fatalf("forward-auth answered %d %q", res.StatusCode, body)
		}
	})
	t.Run("its own change streams end", func(t *testing.T) {
		wantCode(t, ownWatch.end(t), connect.CodePermissionDenied)
	})
	t.Run("the operator's stream tells of it", func(t *testing.T) {
		c := operatorWatch.next(t).GetChange()
		if c.GetKind() != latchkeyv1.KeyChangeKind_KEY_CHANGE_KIND_ACCOUNT_SUSPENDED || c.GetAccountId() != acmeID || c.GetApiKeyId() != "" {
			t.Fatalf("the operator's stream sent %v", c)
		}
	})
	t.Run("suspending again changes nothing", func(t *testing.T) {
		again, err := operator.accounts.SuspendAccount(t.Context(), &latchkeyv1.SuspendAccountRequest{Id: acmeID, Reason: "another reason"})
		if err != nil {
			t.Fatal(err)
		}
		if again.GetAccount().GetSuspendReason() != "invoice 1042 unpaid" || !again.GetAccount().GetSuspendTime().AsTime().Equal(suspended.GetSuspendTime().AsTime()) {
			t.Fatalf("a second suspension changed the account: %v", again.GetAccount())
		}
		operatorWatch.quiet(t, 100*time.Millisecond)
	})

	// Meanwhile a key expires: the restore must not bring it back.
	e.clock.Advance(2 * time.Hour)
	restored, err := operator.accounts.RestoreAccount(t.Context(), &latchkeyv1.RestoreAccountRequest{Id: acmeID, Reason: "paid"})
	if err != nil {
		t.Fatal(err)
	}

	t.Run("restored, everything is as it was", func(t *testing.T) {
		a := restored.GetAccount()
		if a.GetState() != latchkeyv1.AccountState_ACCOUNT_STATE_ACTIVE || a.GetSuspendTime() != nil || a.GetSuspendReason() != "" {
			t.Fatalf("RestoreAccount answered %v", a)
		}
		wantVerify(t, operator, tok, &latchkeyv1.VerifyRequest{WorkspaceId: wsID, Permissions: []string{"invoices:read"}}, latchkeyv1.VerifyCode_VERIFY_CODE_VALID)
		if _, err := e.as(tok).auth.WhoAmI(t.Context(), &latchkeyv1.WhoAmIRequest{}); err != nil {
			t.Fatal(err)
		}
		got, err := acme.c.keys.Get(t.Context(), &latchkeyv1.GetRequest{Id: key.GetMetadata().GetId()})
		if err != nil {
			t.Fatal(err)
		}
		if got.GetApiKey().GetInfo().GetWorkspacesTotal() != 1 {
			t.Fatalf("the key's workspaces after the restore: %v", got.GetApiKey().GetInfo())
		}
		c := operatorWatch.next(t).GetChange()
		if c.GetKind() != latchkeyv1.KeyChangeKind_KEY_CHANGE_KIND_ACCOUNT_RESTORED || c.GetAccountId() != acmeID {
			t.Fatalf("the operator's stream sent %v", c)
		}
	})
	t.Run("a key that expired meanwhile stays expired", func(t *testing.T) {
		wantVerify(t, operator, expiringTok, nil, latchkeyv1.VerifyCode_VERIFY_CODE_EXPIRED)
	})
	t.Run("the audit log keeps who and why", func(t *testing.T) {
		events, err := acme.c.audit.ListAuditEvents(t.Context(), &latchkeyv1.ListAuditEventsRequest{TargetId: acmeID})
		if err != nil {
			t.Fatal(err)
		}
		who, err := operator.auth.WhoAmI(t.Context(), &latchkeyv1.WhoAmIRequest{})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, ev := range events.GetAuditEvents() {
			if ev.GetAction() == "account.create" {
				continue
			}
			if ev.GetActor().GetId() != who.GetProfile().GetMetadata().GetId() {
				t.Errorf("%s by %v, want the operator's profile", ev.GetAction(), ev.GetActor())
			}
			got = append(got, ev.GetAction()+": "+ev.GetReason())
		}
		want := []string{"account.restore: paid", "account.suspend: invoice 1042 unpaid"}
		if strings.Join(got, "|") != strings.Join(want, "|") {
			t.Fatalf("audit events %q, want %q (newest first; one per change)", got, want)
		}
	})
	t.Run("restoring again changes nothing", func(t *testing.T) {
		if _, err := operator.accounts.RestoreAccount(t.Context(), &latchkeyv1.RestoreAccountRequest{Id: acmeID, Reason: "again"}); err != nil {
			t.Fatal(err)
		}
		operatorWatch.quiet(t, 100*time.Millisecond)
	})
	t.Run("the operator account cannot be suspended", func(t *testing.T) {
		who, err := operator.auth.WhoAmI(t.Context(), &latchkeyv1.WhoAmIRequest{})
		if err != nil {
			t.Fatal(err)
		}
		_, err = operator.accounts.SuspendAccount(t.Context(), &latchkeyv1.SuspendAccountRequest{Id: who.GetAccount().GetMetadata().GetId(), Reason: "oops"})
		wantCode(t, err, connect.CodeFailedPrecondition)
		if _, err := operator.auth.WhoAmI(t.Context(), &latchkeyv1.WhoAmIRequest{}); err != nil {
			t.Fatalf("the operator after a refused suspension: %v", err)
		}
	})
	t.Run("an unknown account is not found", func(t *testing.T) {
		_, err := operator.accounts.SuspendAccount(t.Context(), &latchkeyv1.SuspendAccountRequest{Id: "acct_01J00000000000000000000000", Reason: "r"})
		wantCode(t, err, connect.CodeNotFound)
		_, err = operator.accounts.RestoreAccount(t.Context(), &latchkeyv1.RestoreAccountRequest{Id: "acct_01J00000000000000000000000", Reason: "r"})
		wantCode(t, err, connect.CodeNotFound)
	})
}
