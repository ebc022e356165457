package storetest

import (
	"bytes"
	"path/filepath"
	"testing"
	"time"

	"github.com/latchkey/latchkey"
)

// PathOpener opens the file-backed store at path. The suite closes what it
// opens; the backend must not register a cleanup that closes it again
// (though Close twice must be harmless anyway).
type PathOpener func(t *testing.T, path string) latchkey.Store

// RunReopen writes to a file-backed store, closes it, opens the same path
// again and checks that every write is still there.
func RunReopen(t *testing.T, open PathOpener) {
	path := filepath.Join(t.TempDir(), "latchkey.db")
	var first *fixture
	var kept, revoked latchkey.APIKey
	var keptSecret latchkey.SecretHash
	var w latchkey.Workspace
	func() {
		s := open(t, path)
		defer func() { must(t, s.Close()) }()
		first = newFixture(t, func(*testing.T) latchkey.Store { return s })
		w = first.workspace(t, "w")
		in := first.newKey("kept", func(in *latchkey.NewAPIKey) { in.InitialWorkspaceIDs = []string{w.ID} })
		keptSecret = in.Secret
		var err error
		kept, err = s.IssueKey(t.Context(), first.actor, in)
		must(t, err)
		revoked = first.issue(t, "revoked")
		_, err = s.RevokeKey(t.Context(), first.actor, first.account.ID, revoked.ID)
		must(t, err)
		_, err = s.CheckPeppers(t.Context(), map[int]string{1: "fingerprint"})
		must(t, err)
	}()

	s := open(t, path)
	defer func() { must(t, s.Close()) }()
	ctx := t.Context()
	f := *first
	f.store = s
	acct, err := s.GetAccount(ctx, f.account.ID)
	must(t, err)
	if acct.Name != "acme" {
		t.Fatalf("account after reopen = %+v", acct)
	}
	cred, err := s.GetCredential(ctx, kept.ID)
	must(t, err)
	if !bytes.Equal(cred.Current.Hash, keptSecret.Hash) || cred.Key.WorkspacesTotal != 0 && cred.Key.ID != kept.ID {
		t.Fatalf("credential after reopen = %+v", cred)
	}
	got, err := s.GetKey(ctx, f.account.ID, kept.ID)
	must(t, err)
	if got.WorkspacesTotal != 1 || got.ETag != kept.ETag {
		t.Fatalf("key after reopen = %+v", got)
	}
	r, err := s.GetKey(ctx, f.account.ID, revoked.ID)
	must(t, err)
	if r.State(time.Now()) != latchkey.KeyStateRevoked {
		t.Fatal("a revocation was lost on reopen")
	}
	ok, err := s.WorkspaceAccess(ctx, f.account.ID, kept.ProfileID, w.ID)
	must(t, err)
	if !ok {
		t.Fatal("a grant was lost on reopen")
	}
	if n := len(f.events(t, "")); n < 4 {
		t.Fatalf("%d audit events after reopen", n)
	}
	_, err = s.CheckPeppers(ctx, map[int]string{1: "another"})
	wantCode(t, err, latchkey.CodeFailedPrecondition)
	_, err = s.CheckPeppers(ctx, map[int]string{1: "fingerprint"})
	must(t, err)
	_, _, err = s.Bootstrap(ctx, NewAccount("again"))
	wantCode(t, err, latchkey.CodeAlreadyExists)
}
