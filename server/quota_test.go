package server_test

import (
	"log/slog"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect/v2"
	"connectrpc.com/connect/v2/connecthttp"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	latchkeyv1 "github.com/latchkey/latchkey/gen/latchkey/v1"
	"github.com/latchkey/latchkey/gen/latchkey/v1/latchkeyv1connect"
	"github.com/latchkey/latchkey/server"
)

// envQuota is newEnv's MaxActiveKeys: the quota of its accounts that set
// none.
const envQuota = 20

// TestDefaultQuota: an account created without max_active_keys is held to
// the server's quota, through the API, wherever a key can become active.
// The store suite checks the store given a default; this checks that the
// server gives it one, at Issue and at Update, and that a server given
// none uses DefaultMaxActiveKeys.
func TestDefaultQuota(t *testing.T) {
	t.Run("an account without its own limit is held to the server's at Issue", func(t *testing.T) {
		e := newEnv(t)
		tn := e.newTenant("default quota") // max_active_keys 0: the server's
		var first string
		for i := range envQuota - 1 { // the system key holds the last place
			k, _ := tn.issue(t, &latchkeyv1.IssueRequest{})
			if i == 0 {
				first = k.GetMetadata().GetId()
			}
		}
		events := tn.auditCount(t)
		_, err := tn.c.keys.Issue(t.Context(), &latchkeyv1.IssueRequest{Metadata: &latchkeyv1.AccountResourceMetadata{Name: "one too many"}})
		wantCode(t, err, connect.CodeResourceExhausted)
		if got := activeKeys(t, tn); got != envQuota {
			t.Fatalf("%d active keys after a refused Issue, want %d", got, envQuota)
		}
		if got := tn.auditCount(t); got != events {
			t.Fatalf("a refused Issue wrote %d audit events", got-events)
		}
		// The refusal is the quota's: a revocation frees a place.
		if _, err := tn.c.keys.Revoke(t.Context(), &latchkeyv1.RevokeRequest{Id: first}); err != nil {
			t.Fatal(err)
		}
		tn.issue(t, &latchkeyv1.IssueRequest{})
		_, err = tn.c.keys.Issue(t.Context(), &latchkeyv1.IssueRequest{Metadata: &latchkeyv1.AccountResourceMetadata{Name: "one too many"}})
		wantCode(t, err, connect.CodeResourceExhausted)
	})

	t.Run("an account without its own limit is held to the server's when Update revives an expired key", func(t *testing.T) {
		e := newEnv(t)
		tn := e.newTenant("default quota")
		var expired []string
		for range 2 {
			k, _ := tn.issue(t, &latchkeyv1.IssueRequest{Spec: &latchkeyv1.ApiKeySpec{ExpireTime: timestamppb.New(e.clock.Now().Add(time.Minute))}})
			expired = append(expired, k.GetMetadata().GetId())
		}
		e.clock.Advance(2 * time.Minute)
		var fresh string
		for i := range envQuota - 1 { // the expired keys hold no place
			k, _ := tn.issue(t, &latchkeyv1.IssueRequest{})
			if i == 0 {
				fresh = k.GetMetadata().GetId()
			}
		}
		revive := func(id string) error {
			_, err := tn.c.keys.Update(t.Context(), &latchkeyv1.UpdateRequest{
				Id:         id,
				Spec:       &latchkeyv1.ApiKeySpec{}, // no expire_time: never expires
				UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"spec.expire_time"}},
			})
			return err
		}
		for _, id := range expired {
			wantCode(t, revive(id), connect.CodeResourceExhausted)
			wantState(t, tn, id, latchkeyv1.ApiKeyState_API_KEY_STATE_EXPIRED)
		}
		if _, err := tn.c.keys.Revoke(t.Context(), &latchkeyv1.RevokeRequest{Id: fresh}); err != nil {
			t.Fatal(err)
		}
		if err := revive(expired[0]); err != nil {
			t.Fatalf("reviving with a free place: %v", err)
		}
		wantState(t, tn, expired[0], latchkeyv1.ApiKeyState_API_KEY_STATE_ACTIVE)
		wantCode(t, revive(expired[1]), connect.CodeResourceExhausted)
		if got := activeKeys(t, tn); got != envQuota {
			t.Fatalf("%d active keys, want %d", got, envQuota)
		}
	})

	t.Run("a server configured without a quota holds accounts to DefaultMaxActiveKeys", func(t *testing.T) {
		// No MaxActiveKeys; and no log of the refusals the test expects.
		srv, operator := newServer(t, server.Config{Logger: slog.New(slog.DiscardHandler)})
		ts := httptest.NewServer(srv.Handler())
		t.Cleanup(ts.Close)
		as := func(tok string) *connect.Client {
			return connect.NewClient(connecthttp.NewTransport(ts.Client(), ts.URL), withHeader("Authorization", "Bearer "+tok))
		}
		res, err := latchkeyv1connect.NewAccountServiceClient(as(operator)).CreateAccount(t.Context(), &latchkeyv1.CreateAccountRequest{Name: "default quota"})
		if err != nil {
			t.Fatal(err)
		}
		keys := latchkeyv1connect.NewApiKeyServiceClient(as(res.GetSystemApiKey().GetSpec().GetToken()))
		// Concurrent Issues share the store's group commit, which keeps a
		// thousand of them cheap; each is the quota's business all the same.
		var wg sync.WaitGroup
		var mu sync.Mutex
		var issued, refused int
		for range 8 {
			wg.Go(func() {
				for {
					_, err := keys.Issue(t.Context(), &latchkeyv1.IssueRequest{Metadata: &latchkeyv1.AccountResourceMetadata{Name: "k"}})
					mu.Lock()
					if err == nil {
						issued++
					} else if connect.CodeOf(err) == connect.CodeResourceExhausted {
						refused++
					} else {
						t.Errorf("Issue: %v", err)
					}
					done := err != nil || issued > server.DefaultMaxActiveKeys
					mu.Unlock()
					if done {
						return
					}
				}
			})
		}
		wg.Wait()
		if issued != server.DefaultMaxActiveKeys-1 || refused == 0 {
			t.Fatalf("%d keys issued beside the system key, %d refused; want %d issued, then refusals", issued, refused, server.DefaultMaxActiveKeys-1)
		}
	})
}

// activeKeys counts the tenant's active keys, its system key included.
func activeKeys(t *testing.T, tn tenant) int {
	t.Helper()
	n, tok := 0, ""
	for {
		res, err := tn.c.keys.List(t.Context(), &latchkeyv1.ListRequest{State: latchkeyv1.ApiKeyState_API_KEY_STATE_ACTIVE, PageSize: 500, PageToken: tok})
		if err != nil {
			t.Fatalf("List: %v", err)
		}
		n += len(res.GetApiKeys())
		if tok = res.GetNextPageToken(); tok == "" {
			return n
		}
	}
}
