package storetest

import (
	"fmt"
	"sync"
	"testing"

	"github.com/latchkey/latchkey"
)

// testConcurrentWriters has 32 goroutines issue, update and revoke at once.
// No error may surface: a backend must queue its writers, not fail them.
// Some issues are refused on purpose (an unknown initial workspace): a
// backend that commits writes together must undo exactly those.
func testConcurrentWriters(t *testing.T, open Opener) {
	f := newFixture(t, open)
	ctx := t.Context()
	const writers, perWriter = 32, 10
	var wg sync.WaitGroup
	errs := make(chan error, writers*perWriter*3)
	issued := make(chan string, writers*perWriter)
	for g := range writers {
		wg.Go(func() {
			for i := range perWriter {
				if i%4 == 1 {
					bad := f.newKey("refused", func(in *latchkey.NewAPIKey) {
						in.InitialWorkspaceIDs = []string{latchkey.NewID(latchkey.PrefixWorkspace)}
					})
					if _, err := f.store.IssueKey(ctx, f.actor, bad); latchkey.ErrorCode(err) != latchkey.CodeNotFound {
						errs <- fmt.Errorf("issue with an unknown workspace: %v", err)
					}
					if _, err := f.store.GetKey(ctx, f.account.ID, bad.Key.ID); latchkey.ErrorCode(err) != latchkey.CodeNotFound {
						errs <- fmt.Errorf("a refused key was stored: %v", err)
					}
				}
				k, err := f.store.IssueKey(ctx, f.actor, f.newKey(fmt.Sprintf("k-%d-%d", g, i)))
				if err != nil {
					errs <- err
					continue
				}
				issued <- k.ID
				if _, err := f.store.UpdateKey(ctx, f.actor, latchkey.KeyUpdate{
					AccountID: f.account.ID, ID: k.ID, ETag: k.ETag, Paths: []string{"spec.description"},
					Key: latchkey.APIKey{Description: "updated"},
				}); err != nil {
					errs <- err
				}
				if i%3 == 0 {
					if _, err := f.store.RevokeKey(ctx, f.actor, f.account.ID, k.ID); err != nil {
						errs <- err
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	close(issued)
	for err := range errs {
		t.Errorf("a concurrent write failed: %v", err)
	}
	n := 0
	for id := range issued {
		k, err := f.store.GetKey(ctx, f.account.ID, id)
		must(t, err)
		if k.Description != "updated" {
			t.Fatalf("key %s lost its update", id)
		}
		n++
	}
	if n != writers*perWriter {
		t.Fatalf("%d keys issued, want %d", n, writers*perWriter)
	}
	for _, p := range collect(t, func(tok string) (latchkey.Page[latchkey.Profile], error) {
		return f.store.ListProfiles(ctx, latchkey.ProfileQuery{AccountID: f.account.ID, Page: latchkey.PageRequest{Size: latchkey.MaxPageSize, Token: tok}})
	}) {
		if p.Name == "refused" {
			t.Fatal("a refused issue left its profile behind")
		}
	}
}
