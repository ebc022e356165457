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

// TestRacesOnOneKey rotates, updates, grants, verifies and revokes one key
// from many goroutines at once. The revocation lands in the middle of the
// storm by construction: every rotator and updater keeps writing until the
// revocation refuses it. Afterwards the key's state, permissions,
// description, grants and audit trail must agree with the calls that
// succeeded, and no token of it may verify; no Verify that began after
// Revoke answered may have found it valid, and enough of those Verifies
// presented a current secret (answer "revoked", not "not found") for that
// to mean something.
func TestRacesOnOneKey(t *testing.T) {
	e := newEnv(t)
	tn := e.newTenantWithLimit("acme", 1000)
	key, first := tn.issue(t, &latchkeyv1.IssueRequest{Spec: &latchkeyv1.ApiKeySpec{Permissions: []string{"invoices:read"}}})
	id := key.GetMetadata().GetId()
	const granters, rotators, updaters, verifiers = 4, 3, 3, 4
	// Each kind of write succeeds this often before the revocation, and
	// this many Verifies after it must have met a current secret.
	const before, checkedAfter = 10, 40
	var workspaces []string
	for i := range granters {
		workspaces = append(workspaces, tn.workspace(t, fmt.Sprintf("ws %d", i)).GetMetadata().GetId())
	}

	type update struct {
		description string
		permissions []string
		updated     time.Time // the update time the answer gave
	}
	var (
		mu          sync.Mutex
		tokens      = []string{first}
		succeeded   []update // the updates that were answered with success
		rotations   atomic.Int64
		updates     atomic.Int64
		toggles     atomic.Int64
		granted     = make([]bool, granters) // each granter owns one workspace
		revoked     atomic.Bool
		validBefore atomic.Int64 // Verifies that found the key valid before the revocation
		checked     atomic.Int64 // Verifies begun after Revoke answered that met a current secret
		stop        = make(chan struct{})
		writers     sync.WaitGroup
		readers     sync.WaitGroup
	)
	// refused reports whether a write was refused because the key is
	// revoked, which is the only refusal expected; refusal before Revoke
	// answered is allowed, since the revocation may commit first.
	refused := func(t *testing.T, err error) bool {
		if err == nil {
			return false
		}
		if connect.CodeOf(err) != connect.CodeFailedPrecondition {
			t.Errorf("unexpected error %v", err)
		}
		return true
	}
	// A writer that is never refused would loop for ever: cap it, and fail.
	const maxRounds = 5000

	for range rotators {
		writers.Go(func() {
			for i := range maxRounds {
				req := &latchkeyv1.RotateRequest{Id: id}
				if i%2 == 0 {
					req.GracePeriod = durationpb.New(time.Hour)
				}
				res, err := tn.c.keys.Rotate(t.Context(), req)
				if refused(t, err) {
					return
				}
				// Success means the rotation committed before the
				// revocation: its answer shows the key active.
				if st := res.GetApiKey().GetInfo().GetState(); st != latchkeyv1.ApiKeyState_API_KEY_STATE_ACTIVE {
					t.Errorf("a rotation answered with success left the key %v: it was made on a revoked key", st)
				}
				rotations.Add(1)
				mu.Lock()
				tokens = append(tokens, res.GetApiKey().GetSpec().GetToken())
				mu.Unlock()
			}
			t.Errorf("a rotator was never refused in %d rounds: the revocation did not land during the storm", maxRounds)
		})
	}
	for u := range updaters {
		writers.Go(func() {
			for i := range maxRounds {
				want := update{description: fmt.Sprintf("updater %d, round %d", u, i), permissions: []string{"invoices:read", fmt.Sprintf("round:u%dr%d", u, i)}}
				res, err := tn.c.keys.Update(t.Context(), &latchkeyv1.UpdateRequest{
					Id:         id,
					Spec:       &latchkeyv1.ApiKeySpec{Description: want.description, Permissions: want.permissions},
					UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"spec.description", "spec.permissions"}},
				})
				if refused(t, err) {
					return
				}
				if st := res.GetApiKey().GetInfo().GetState(); st != latchkeyv1.ApiKeyState_API_KEY_STATE_ACTIVE {
					t.Errorf("an update answered with success left the key %v: it was made on a revoked key", st)
				}
				updates.Add(1)
				want.updated = res.GetApiKey().GetMetadata().GetUpdateTime().AsTime()
				mu.Lock()
				succeeded = append(succeeded, want)
				mu.Unlock()
			}
			t.Errorf("an updater was never refused in %d rounds: the revocation did not land during the storm", maxRounds)
		})
	}
	// Grants may still change on a revoked key (they have no effect), so
	// granters are not refused: each goes on for a few rounds past the
	// revocation instead.
	for g, ws := range workspaces {
		writers.Go(func() {
			past := 0
			for i := 0; past < 4; i++ {
				if revoked.Load() {
					past++
				}
				var err error
				if i%2 == 0 {
					_, err = tn.c.keys.GrantWorkspace(t.Context(), &latchkeyv1.GrantWorkspaceRequest{Id: id, WorkspaceId: ws})
				} else {
					_, err = tn.c.keys.RevokeWorkspace(t.Context(), &latchkeyv1.RevokeWorkspaceRequest{Id: id, WorkspaceId: ws})
				}
				if err != nil {
					t.Errorf("grant change: %v", err)
					return
				}
				toggles.Add(1)
				granted[g] = i%2 == 0
			}
		})
	}
	for v := range verifiers {
		readers.Go(func() {
			for n := v; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				// One of the newest tokens: the last answered rotation may
				// not be the last committed one, and a rotation with grace
				// leaves the one before it current too.
				mu.Lock()
				tok := tokens[max(0, len(tokens)-1-n%3)]
				mu.Unlock()
				began := revoked.Load()
				res, err := tn.c.auth.Verify(t.Context(), &latchkeyv1.VerifyRequest{Token: tok})
				if err != nil {
					t.Errorf("Verify: %v", err)
					return
				}
				switch {
				case began && res.GetValid():
					t.Errorf("a Verify that began after Revoke answered found the key valid")
				case began && res.GetCode() == latchkeyv1.VerifyCode_VERIFY_CODE_REVOKED:
					checked.Add(1)
				case res.GetValid():
					validBefore.Add(1)
				}
			}
		})
	}
	// The revocation lands once every kind of write has succeeded a few
	// times, while all of them are still going.
	writers.Go(func() {
		for deadline := time.Now().Add(30 * time.Second); rotations.Load() < before || updates.Load() < before || toggles.Load() < before; {
			if time.Now().After(deadline) {
				t.Errorf("the writers did not reach %d successes each before the revocation", before)
				break
			}
			time.Sleep(time.Millisecond)
		}
		if _, err := tn.c.keys.Revoke(t.Context(), &latchkeyv1.RevokeRequest{Id: id}); err != nil {
			t.Errorf("Revoke: %v", err)
		}
		revoked.Store(true)
	})
	writers.Wait()
	// The verifiers go on until enough Verifies begun after the revocation
	// met a current secret.
	deadline := time.Now().Add(30 * time.Second)
	for checked.Load() < checkedAfter && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	close(stop)
	readers.Wait()
	t.Logf("%d rotations, %d updates, %d grant changes succeeded; %d Verifies found the key valid before the revocation, %d after it met a current secret",
		rotations.Load(), updates.Load(), toggles.Load(), validBefore.Load(), checked.Load())
	if validBefore.Load() == 0 {
		t.Error("no Verify found the key valid before the revocation: the verifiers never used a current token")
	}
	if n := checked.Load(); n < checkedAfter {
		t.Errorf("only %d Verifies begun after Revoke answered met a current secret, want %d", n, checkedAfter)
	}

	t.Run("permissions and description are those of the last successful update", func(t *testing.T) {
		got, err := tn.c.keys.Get(t.Context(), &latchkeyv1.GetRequest{Id: id})
		if err != nil {
			t.Fatal(err)
		}
		last := slices.MaxFunc(succeeded, func(a, b update) int { return a.updated.Compare(b.updated) })
		spec := got.GetApiKey().GetSpec()
		if spec.GetDescription() != last.description || !slices.Equal(spec.GetPermissions(), last.permissions) {
			t.Errorf("the key holds %q with %v; the last successful update (at %v) set %q with %v",
				spec.GetDescription(), spec.GetPermissions(), last.updated, last.description, last.permissions)
		}
	})

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

	t.Run("the audit trail has one event per successful write, none of a rotation or update after the revocation", func(t *testing.T) {
		counts := map[string]int64{}
		tok := ""
		for {
			// Newest first: until the revocation's event, only grant
			// changes may appear, the one kind of write a revoked key takes.
			res, err := tn.c.audit.ListAuditEvents(t.Context(), &latchkeyv1.ListAuditEventsRequest{TargetId: id, PageSize: 500, PageToken: tok})
			if err != nil {
				t.Fatal(err)
			}
			for _, ev := range res.GetAuditEvents() {
				if a := ev.GetAction(); counts["api_key.revoke"] == 0 && (a == "api_key.rotate" || a == "api_key.update") {
					t.Errorf("%s at %v, after the revocation", a, ev.GetTime().AsTime())
				}
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
