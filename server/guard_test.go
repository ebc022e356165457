package server_test

import (
	"context"
	"sync"
	"testing"

	"connectrpc.com/connect/v2"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	"github.com/latchkey/latchkey"
	latchkeyv1 "github.com/latchkey/latchkey/gen/latchkey/v1"
)

// interleavingStore runs a step of the test's between a handler's checks
// and its write to the store, once: the window in which another writer can
// make the target stronger than the caller.
type interleavingStore struct {
	latchkey.Store
	mu   sync.Mutex
	step func()
}

func (s *interleavingStore) between(step func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.step = step
}

func (s *interleavingStore) runStep() {
	s.mu.Lock()
	step := s.step
	s.step = nil
	s.mu.Unlock()
	if step != nil {
		step()
	}
}

func (s *interleavingStore) UpdateKey(ctx context.Context, actor latchkey.Actor, in latchkey.KeyUpdate) (latchkey.APIKey, error) {
	s.runStep()
	return s.Store.UpdateKey(ctx, actor, in)
}

func (s *interleavingStore) RotateKey(ctx context.Context, actor latchkey.Actor, in latchkey.KeyRotation) (latchkey.APIKey, error) {
	s.runStep()
	return s.Store.RotateKey(ctx, actor, in)
}

func (s *interleavingStore) UpdateAccount(ctx context.Context, actor latchkey.Actor, in latchkey.AccountUpdate) (latchkey.Account, error) {
	s.runStep()
	return s.Store.UpdateAccount(ctx, actor, in)
}

// TestChangesAreAskedAgainInsideTheWrite: a caller may rotate or update a
// key that is within its reach when the handler checks, and the key may be
// made stronger by another writer before the write. The write must then be
// refused on the key as its own transaction sees it: above all, a rotation
// must not hand the caller a token of a key that now holds "*".
func TestChangesAreAskedAgainInsideTheWrite(t *testing.T) {
	var interleave *interleavingStore
	e := newEnvOn(t, func(s latchkey.Store) latchkey.Store {
		interleave = &interleavingStore{Store: s}
		return interleave
	})
	tn := e.newTenantWithLimit("acme", 100)
	_, limited := tn.issue(t, &latchkeyv1.IssueRequest{Spec: &latchkeyv1.ApiKeySpec{Permissions: []string{"api_keys:manage", "workspaces:manage"}}})
	attacker := e.as(limited)
	// strengthen gives the target "*" through the API, as the account's
	// system key would while the attacker's call is between check and write.
	strengthen := func(t *testing.T, id string) func() {
		return func() {
			_, err := tn.c.keys.Update(t.Context(), &latchkeyv1.UpdateRequest{
				Id:         id,
				Spec:       &latchkeyv1.ApiKeySpec{Permissions: []string{"*"}},
				UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"spec.permissions"}},
			})
			if err != nil {
				t.Errorf("the system key could not strengthen the target: %v", err)
			}
		}
	}

	t.Run("a rotation of a key made stronger meanwhile is refused", func(t *testing.T) {
		target, tok := tn.issue(t, &latchkeyv1.IssueRequest{Spec: &latchkeyv1.ApiKeySpec{Permissions: []string{"api_keys:read"}}})
		id := target.GetMetadata().GetId()
		interleave.between(strengthen(t, id))
		res, err := attacker.keys.Rotate(t.Context(), &latchkeyv1.RotateRequest{Id: id})
		wantCode(t, err, connect.CodePermissionDenied)
		if res.GetApiKey().GetSpec().GetToken() != "" {
			t.Fatal("the caller was handed a token of a key holding *")
		}
		// The key was strengthened but not rotated: its token still works.
		v, err := tn.c.auth.Verify(t.Context(), &latchkeyv1.VerifyRequest{Token: tok})
		if err != nil || !v.GetValid() {
			t.Fatalf("the target's own token: %v %v", v.GetCode(), err)
		}
	})
	t.Run("an update of a key made stronger meanwhile is refused", func(t *testing.T) {
		target, _ := tn.issue(t, &latchkeyv1.IssueRequest{Spec: &latchkeyv1.ApiKeySpec{Permissions: []string{"api_keys:read"}, Description: "before"}})
		id := target.GetMetadata().GetId()
		interleave.between(strengthen(t, id))
		_, err := attacker.keys.Update(t.Context(), &latchkeyv1.UpdateRequest{
			Id:         id,
			Spec:       &latchkeyv1.ApiKeySpec{AllowedCidrs: []string{"192.0.2.1"}},
			UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"spec.allowed_cidrs"}},
		})
		wantCode(t, err, connect.CodePermissionDenied)
		got, err := tn.c.keys.Get(t.Context(), &latchkeyv1.GetRequest{Id: id})
		if err != nil {
			t.Fatal(err)
		}
		if cidrs := got.GetApiKey().GetSpec().GetAllowedCidrs(); len(cidrs) != 0 {
			t.Fatalf("the stronger key was locked to %v", cidrs)
		}
	})
	t.Run("a change of defaults made stronger meanwhile is refused", func(t *testing.T) {
		setDefaults := func(c clients, perms ...string) error {
			_, err := c.accounts.UpdateAccount(t.Context(), &latchkeyv1.UpdateAccountRequest{
				Id:         tn.account.GetMetadata().GetId(),
				Spec:       &latchkeyv1.AccountSpec{DefaultKeyPermissions: perms},
				UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"spec.default_key_permissions"}},
			})
			return err
		}
		interleave.between(func() {
			if err := setDefaults(tn.c, "*"); err != nil {
				t.Errorf("the system key could not set the defaults: %v", err)
			}
		})
		wantCode(t, setDefaults(attacker, "api_keys:manage"), connect.CodePermissionDenied)
		got, err := tn.c.accounts.GetAccount(t.Context(), &latchkeyv1.GetAccountRequest{Id: tn.account.GetMetadata().GetId()})
		if err != nil {
			t.Fatal(err)
		}
		if d := got.GetAccount().GetSpec().GetDefaultKeyPermissions(); len(d) != 1 || d[0] != "*" {
			t.Fatalf("the defaults the system key set became %v", d)
		}
		if err := setDefaults(tn.c); err != nil { // back to none, for the subtest below
			t.Fatal(err)
		}
		if err := setDefaults(attacker, "api_keys:manage"); err != nil {
			t.Fatalf("without another writer: %v", err)
		}
	})
	t.Run("without another writer the same calls succeed", func(t *testing.T) {
		// So that the refusals above are the guard's, not the fixture's.
		target, _ := tn.issue(t, &latchkeyv1.IssueRequest{Spec: &latchkeyv1.ApiKeySpec{Permissions: []string{"api_keys:read"}}})
		if _, err := attacker.keys.Rotate(t.Context(), &latchkeyv1.RotateRequest{Id: target.GetMetadata().GetId()}); err != nil {
			t.Fatal(err)
		}
	})
}
