package server_test

import (
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect/v2"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	latchkeyv1 "github.com/latchkey/latchkey/gen/latchkey/v1"
)

// TestRacesOnOneKey rotates, updates, grants, verifies and finally revokes
// one key from many goroutines at once. Afterwards the key's state, its
// grants and its audit trail must agree with the calls that succeeded, and
// no token of it may verify; no Verify that began after Revoke answered may
// have found it valid.
func TestRacesOnOneKey(t *testing.T) {
	e := newEnv(t)
	tn := e.newTenantWithLimit("acme", 1000)
	key, first := tn.issue(t, &latchkeyv1.IssueRequest{Spec: &latchkeyv1.ApiKeySpec{Permissions: []string{"invoices:read"}}})
	id := key.GetMetadata().GetId()
	const granters, rotators, updaters, verifiers = 4, 3, 3, 4
	var workspaces []string
	for i := range granters {
		workspaces = append(workspaces, tn.workspace(t, fmt.Sprintf("ws %d", i)).GetMetadata().GetId())
	}

	var (
		mu        sync.Mutex
		tokens    = []string{first}
		rotations atomic.Int64
		updates   atomic.Int64
		toggles   atomic.Int64
		granted   = make([]bool, granters) // each granter owns one workspace
		revoked   atomic.Bool
		stop      = make(chan struct{})
		writers   sync.WaitGroup
		readers   sync.WaitGroup
	)
	// afterRevoke accepts the refusal a write gets once the key is revoked.
	afterRevoke := func(t *testing.T, err error) bool {
		if err == nil {
			return true
		}
		if connect.CodeOf(err) != connect.CodeFailedPrecondition {
			t.Errorf("unexpected error %v", err)
		}
		return false
	}

	for range rotators {
		writers.Go(func() {
			for i := range 15 {
				req := &latchkeyv1.RotateRequest{Id: id}
				if i%2 == 0 {
					req.GracePeriod = durationpb.New(time.Hour)
				}
				res, err := tn.c.keys.Rotate(t.Context(), req)
				if afterRevoke(t, err) {
					rotations.Add(1)
					mu.Lock()
					tokens = append(tokens, res.GetApiKey().GetSpec().GetToken())
					mu.Unlock()
				}
			}
		})
	}
	for u := range updaters {
		writers.Go(func() {
			for i := range 15 {
				_, err := tn.c.keys.Update(t.Context(), &latchkeyv1.UpdateRequest{
					Id:         id,
					Spec:       &latchkeyv1.ApiKeySpec{Description: fmt.Sprintf("updater %d, round %d", u, i), Permissions: []string{"invoices:read", fmt.Sprintf("round:r%d", i)}},
					UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"spec.description", "spec.permissions"}},
				})
				if afterRevoke(t, err) {
					updates.Add(1)
				}
			}
		})
	}
	for g, ws := range workspaces {
		writers.Go(func() {
			for i := range 10 {
				var err error
				if i%2 == 0 {
					_, err = tn.c.keys.GrantWorkspace(t.Context(), &latchkeyv1.GrantWorkspaceRequest{Id: id, WorkspaceId: ws})
				} else {
					_, err = tn.c.keys.RevokeWorkspace(t.Context(), &latchkeyv1.RevokeWorkspaceRequest{Id: id, WorkspaceId: ws})
				}
				if afterRevoke(t, err) {
					toggles.Add(1)
					granted[g] = i%2 == 0
				}
			}
		})
	}
	for range verifiers {
		readers.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				mu.Lock()
				tok := tokens[len(tokens)-1]
				mu.Unlock()
				began := revoked.Load()
				res, err := tn.c.auth.Verify(t.Context(), &latchkeyv1.VerifyRequest{Token: tok})
				if err != nil {
					t.Errorf("Verify: %v", err)
					return
				}
				if began && res.GetValid() {
					t.Errorf("a Verify that began after Revoke answered found the key valid")
				}
			}
		})
	}
	// The revocation lands in the middle of the storm.
	writers.Go(func() {
		for rotations.Load() < 10 {
			time.Sleep(time.Millisecond)
		}
		if _, err := tn.c.keys.Revoke(t.Context(), &latchkeyv1.RevokeRequest{Id: id}); err != nil {
			t.Errorf("Revoke: %v", err)
		}
		revoked.Store(true)
	})
	writers.Wait()
	close(stop)
	readers.Wait()
	t.Logf("%d rotations, %d updates, %d grant changes succeeded", rotations.Load(), updates.Load(), toggles.Load())

	t.Run("the key is revoked and no token of it verifies", func(t *testing.T) {
		got, err := tn.c.keys.Get(t.Context(), &latchkeyv1.GetRequest{Id: id})
		if err != nil {
			t.Fatal(err)
		}
		if s := got.GetApiKey().GetInfo().GetState(); s != latchkeyv1.ApiKeyState_API_KEY_STATE_REVOKED {
			t.Errorf("state %v, want revoked", s)
		}
		for _, tok := range tokens {
			for range 2 { // the second answer comes from the cache
				res, err := tn.c.auth.Verify(t.Context(), &latchkeyv1.VerifyRequest{Token: tok})
				if err != nil || res.GetValid() {
					t.Errorf("Verify of a token of the revoked key = %v, %v", res.GetCode(), err)
				}
			}
		}
	})

	t.Run("grants agree with the last successful call per workspace", func(t *testing.T) {
		var want []string
		for g, ws := range workspaces {
			if granted[g] {
				want = append(want, ws)
			}
		}
		res, err := tn.c.keys.ListGrantedWorkspaces(t.Context(), &latchkeyv1.ListGrantedWorkspacesRequest{Id: id})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, ws := range res.GetWorkspaces() {
			got = append(got, ws.GetMetadata().GetId())
		}
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("granted %v, want %v", got, want)
		}
		key, err := tn.c.keys.Get(t.Context(), &latchkeyv1.GetRequest{Id: id})
		if err != nil {
			t.Fatal(err)
		}
		if n := key.GetApiKey().GetInfo().GetWorkspacesTotal(); n != int64(len(want)) {
			t.Errorf("workspaces_total %d, want %d", n, len(want))
		}
	})

	t.Run("the audit trail has one event per successful write", func(t *testing.T) {
		counts := map[string]int64{}
		tok := ""
		for {
			res, err := tn.c.audit.ListAuditEvents(t.Context(), &latchkeyv1.ListAuditEventsRequest{TargetId: id, PageSize: 500, PageToken: tok})
			if err != nil {
				t.Fatal(err)
			}
			for _, ev := range res.GetAuditEvents() {
				counts[ev.GetAction()]++
			}
			if tok = res.GetNextPageToken(); tok == "" {
				break
			}
		}
		want := map[string]int64{
			"api_key.issue":  1,
			"api_key.rotate": rotations.Load(),
			"api_key.update": updates.Load(),
			"api_key.revoke": 1,
		}
		for action, n := range want {
			if counts[action] != n {
				t.Errorf("%d %s events, want %d", counts[action], action, n)
			}
		}
		if n := counts["workspace.grant"] + counts["workspace.revoke"]; n != toggles.Load() {
			t.Errorf("%d grant and withdrawal events, want %d", n, toggles.Load())
		}
	})
}
