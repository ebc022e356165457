package storetest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/auth"
	"github.com/latchkey/latchkey/internal/pepper"
	"github.com/latchkey/latchkey/token"
)

// recordingSink keeps what a follower gave it.
type recordingSink struct {
	mu      sync.Mutex
	changes []latchkey.Change
	resets  int
}

func (r *recordingSink) ApplyChange(c latchkey.Change) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.changes = append(r.changes, c)
}

func (r *recordingSink) ResetChanges() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.resets++
}

// take returns and forgets what the sink got.
func (r *recordingSink) take() []latchkey.Change {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.changes
	r.changes = nil
	return c
}

// testChangeLog: every write that can change a verdict records one change
// with what a watcher needs, in order and without holes; a follower has it
// before the write returns; writes that change no verdict, and writes that
// fail, record nothing.
func testChangeLog(t *testing.T, open Opener) {
	f := newFixture(t, open)
	ctx := t.Context()
	sink := &recordingSink{}
	feed, err := f.store.Follow(sink)
	must(t, err)
	defer feed.Close()
	if !feed.Fresh(time.Now()) && !waitFresh(feed) {
		t.Fatal("a new feed never became fresh")
	}
	sink.take()

	ws := f.workspace(t, "billing")
	key := f.issue(t, "k", func(n *latchkey.NewAPIKey) { n.InitialWorkspaceIDs = []string{ws.ID} })
	if got := sink.take(); len(got) != 0 {
		t.Fatalf("creating a workspace and issuing a key recorded %+v; neither changes a verdict", got)
	}
	first, err := f.store.LastChange(ctx)
	must(t, err)

	user, err := f.store.CreateProfile(ctx, f.actor, latchkey.Profile{
		Metadata: latchkey.Metadata{AccountID: f.account.ID, Name: "ada"}, Type: latchkey.ProfileTypeUser,
	})
	must(t, err)
	grant := latchkey.Grant{AccountID: f.account.ID, ProfileID: key.ProfileID, WorkspaceID: ws.ID, Target: latchkey.Bare{ID: key.ID}}
	userGrant := latchkey.Grant{AccountID: f.account.ID, ProfileID: user.ID, WorkspaceID: ws.ID, Target: latchkey.Bare{ID: user.ID}}
	acct, keyID, profileID := f.account.ID, key.ID, key.ProfileID
	steps := []struct {
		name  string
		write func() error
		want  []latchkey.Change // Seq and Time are checked apart
	}{
		{"update", func() error {
			_, err := f.store.UpdateKey(ctx, f.actor, latchkey.KeyUpdate{AccountID: acct, ID: keyID, Paths: []string{"spec.description"}, Key: latchkey.APIKey{Description: "d"}})
			return err
		}, []latchkey.Change{{AccountID: acct, Kind: latchkey.ChangeKeyUpdated, KeyID: keyID, ProfileID: profileID}}},
		{"rotate", func() error {
			_, err := f.store.RotateKey(ctx, f.actor, latchkey.KeyRotation{AccountID: acct, ID: keyID, Secret: NewSecret(), TokenPrefix: "lk_live_01ABCDEF"})
			return err
		}, []latchkey.Change{{AccountID: acct, Kind: latchkey.ChangeKeyRotated, KeyID: keyID, ProfileID: profileID}}},
		{"withdraw a workspace", func() error { return f.store.RevokeWorkspace(ctx, f.actor, grant) },
			[]latchkey.Change{{AccountID: acct, Kind: latchkey.ChangeGrantsChanged, KeyID: keyID, ProfileID: profileID, WorkspaceID: ws.ID}}},
		{"withdraw it again, which changes nothing", func() error { return f.store.RevokeWorkspace(ctx, f.actor, grant) }, nil},
		{"grant a workspace", func() error { return f.store.GrantWorkspace(ctx, f.actor, grant) },
			[]latchkey.Change{{AccountID: acct, Kind: latchkey.ChangeGrantsChanged, KeyID: keyID, ProfileID: profileID, WorkspaceID: ws.ID}}},
		{"grant it again, which changes nothing", func() error { return f.store.GrantWorkspace(ctx, f.actor, grant) }, nil},
		{"grant a workspace to a user", func() error { return f.store.GrantWorkspace(ctx, f.actor, userGrant) },
			[]latchkey.Change{{AccountID: acct, Kind: latchkey.ChangeGrantsChanged, ProfileID: user.ID, WorkspaceID: ws.ID}}},
		{"a failed update", func() error {
			_, err := f.store.UpdateKey(ctx, f.actor, latchkey.KeyUpdate{AccountID: acct, ID: keyID, ETag: "stale", Paths: []string{"spec.description"}})
			if latchkey.ErrorCode(err) != latchkey.CodeAborted {
				t.Errorf("update with a stale etag: %v, want aborted", err)
			}
			return nil
		}, nil},
		{"a refused guard", func() error {
			_, err := f.store.RotateKey(ctx, f.actor, latchkey.KeyRotation{AccountID: acct, ID: keyID, Secret: NewSecret(), TokenPrefix: "lk_live_01ABCDEF",
				Guard: func(_ context.Context, _ latchkey.APIKey, _ latchkey.GrantReader) error {
					return latchkey.Errorf(latchkey.CodePermissionDenied, "no")
				}})
			if latchkey.ErrorCode(err) != latchkey.CodePermissionDenied {
				t.Errorf("rotation refused by its guard: %v", err)
			}
			return nil
		}, nil},
		{"last use, which changes no verdict", func() error {
			return f.store.RecordKeyUse(ctx, map[string]time.Time{keyID: time.Now()})
		}, nil},
		{"archive the workspace", func() error {
			_, err := f.store.ArchiveWorkspace(ctx, f.actor, acct, ws.ID)
			return err
		}, []latchkey.Change{{AccountID: acct, Kind: latchkey.ChangeWorkspaceArchived, WorkspaceID: ws.ID}}},
		{"revoke", func() error {
			_, err := f.store.RevokeKey(ctx, f.actor, acct, keyID)
			return err
		}, []latchkey.Change{{AccountID: acct, Kind: latchkey.ChangeKeyRevoked, KeyID: keyID, ProfileID: profileID}}},
		{"revoke again, which changes nothing", func() error {
			_, err := f.store.RevokeKey(ctx, f.actor, acct, keyID)
			return err
		}, nil},
	}
	seq := first
	var all []latchkey.Change
	for _, step := range steps {
		before := time.Now().Add(-time.Second)
		must(t, step.write())
		// The follower has the change when the write returns.
		got := sink.take()
		if len(got) != len(step.want) {
			t.Fatalf("%s: the follower got %+v, want %+v", step.name, got, step.want)
		}
		for i, c := range got {
			seq++
			if c.Seq != seq {
				t.Errorf("%s: seq %d, want %d: sequence numbers have no holes", step.name, c.Seq, seq)
			}
			if c.Time.Before(before) || c.Time.After(time.Now().Add(time.Second)) {
				t.Errorf("%s: time %v is not the write's", step.name, c.Time)
			}
			// The store's own write reaches its follower before the write
			// returns; a store that also follows other processes may
			// have had it by notification or poll first.
			switch c.Source {
			case latchkey.ChangeFromWrite, latchkey.ChangeFromNotification, latchkey.ChangeFromPoll:
			default:
				t.Errorf("%s: source %q: the follower must say how the change arrived", step.name, c.Source)
			}
			want := step.want[i]
			want.Seq, want.Time, want.Source = c.Seq, c.Time, c.Source
			if c != want {
				t.Errorf("%s: change %+v, want %+v", step.name, c, want)
			}
		}
		all = append(all, got...)
	}

	t.Run("the log reads back as the follower saw it, from any position", func(t *testing.T) {
		got, err := f.store.ReadChanges(ctx, first, 100)
		must(t, err)
		if len(got) != len(all) {
			t.Fatalf("ReadChanges: %d changes, want %d", len(got), len(all))
		}
		for i := range got {
			if !got[i].Time.Equal(all[i].Time) {
				t.Errorf("change %d: time %v read back as %v", i, all[i].Time, got[i].Time)
			}
			if got[i].Source != "" {
				t.Errorf("change %d read back with source %q: the source is the follower's, not stored", i, got[i].Source)
			}
			got[i].Time, got[i].Source = all[i].Time, all[i].Source
			if got[i] != all[i] {
				t.Errorf("change %d: read %+v, followed %+v", i, got[i], all[i])
			}
		}
		page, err := f.store.ReadChanges(ctx, first+1, 2)
		must(t, err)
		if len(page) != 2 || page[0].Seq != first+2 || page[1].Seq != first+3 {
			t.Errorf("ReadChanges(after %d, limit 2) = %+v", first+1, page)
		}
		last, err := f.store.LastChange(ctx)
		must(t, err)
		if last != seq {
			t.Errorf("LastChange = %d, want %d", last, seq)
		}
		if none, err := f.store.ReadChanges(ctx, last, 10); err != nil || len(none) != 0 {
			t.Errorf("ReadChanges past the end = %+v, %v", none, err)
		}
	})

	t.Run("a closed feed gets nothing more", func(t *testing.T) {
		feed.Close()
		other := f.issue(t, "other")
		_, err := f.store.RevokeKey(ctx, f.actor, acct, other.ID)
		must(t, err)
		if got := sink.take(); len(got) != 0 {
			t.Errorf("after Close the sink got %+v", got)
		}
	})
}

// waitFresh waits a few seconds for a feed that follows other processes
// to catch up with the present.
func waitFresh(feed latchkey.ChangeFeed) bool {
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if feed.Fresh(time.Now()) {
			return true
		}
	}
	return false
}

// testCacheFollowsTheStore is the bypass test: a verifier that follows
// the store admits a key, keeps it cached, and refuses it once a write
// made straight through the store, past every handler, revokes it or
// takes its workspace away, with no call to the verifier in between.
func testCacheFollowsTheStore(t *testing.T, open Opener) {
	f := newFixture(t, open)
	ctx := t.Context()
	hasher, err := pepper.NewHasher(make([]byte, pepper.MinLength), 1)
	must(t, err)
	reads := &countingStore{Store: f.store}
	verifier := auth.NewVerifier(reads, hasher, "lk", auth.VerifierOptions{CacheTTL: time.Hour, FlushInterval: time.Hour})
	feed, err := f.store.Follow(verifier)
	must(t, err)
	defer feed.Close()
	if !waitFresh(feed) {
		t.Fatal("the feed never became fresh")
	}

	ws := f.workspace(t, "billing")
	issue := func(name string) (latchkey.APIKey, string) {
		id := latchkey.NewID(latchkey.PrefixAPIKey)
		tok, err := token.New("lk", latchkey.EnvironmentLive, id)
		must(t, err)
		in := f.newKey(name)
		in.Key.ID, in.Key.TokenPrefix, in.Secret = id, tok.DisplayPrefix(), hasher.Hash(tok.Secret())
		in.InitialWorkspaceIDs = []string{ws.ID}
		k, err := f.store.IssueKey(ctx, f.actor, in)
		must(t, err)
		return k, tok.Reveal()
	}
	verify := func(raw string, want auth.Outcome) {
		t.Helper()
		v, err := verifier.Verify(ctx, raw, auth.Requirements{WorkspaceID: ws.ID})
		must(t, err)
		if v.Outcome != want {
			t.Fatalf("verdict %v, want %v", v.Outcome, want)
		}
	}
	warm := func(raw string) {
		t.Helper()
		// The issue's own changes may reach the verifier through the feed
		// after the first verification (PostgreSQL's feed is asynchronous)
		// and rightly drop the entry once: try again until the feed has
		// caught up, and only then call an uncached key a failure.
		for attempt := 0; ; attempt++ {
			verify(raw, auth.OutcomeValid)
			n := reads.n()
			verify(raw, auth.OutcomeValid)
			if reads.n() == n {
				return
			}
			if attempt == 20 {
				t.Fatal("a second verification read the store: the key was not cached")
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	revoked, revokedTok := issue("revoked")
	warm(revokedTok)
	_, err = f.store.RevokeKey(ctx, f.actor, f.account.ID, revoked.ID)
	must(t, err)
	verify(revokedTok, auth.OutcomeRevoked)

	withdrawn, withdrawnTok := issue("withdrawn")
	warm(withdrawnTok)
	must(t, f.store.RevokeWorkspace(ctx, f.actor, latchkey.Grant{AccountID: f.account.ID, ProfileID: withdrawn.ProfileID, WorkspaceID: ws.ID, Target: latchkey.Bare{ID: withdrawn.ID}}))
	verify(withdrawnTok, auth.OutcomeWorkspaceDenied)

	_, archivedTok := issue("archived")
	warm(archivedTok)
	_, err = f.store.ArchiveWorkspace(ctx, f.actor, f.account.ID, ws.ID)
	must(t, err)
	verify(archivedTok, auth.OutcomeWorkspaceDenied)
}

// countingStore counts the store's credential reads, to tell a cached
// verdict from a fresh one.
type countingStore struct {
	latchkey.Store
	mu    sync.Mutex
	reads int
}

func (c *countingStore) GetCredential(ctx context.Context, keyID string) (latchkey.Credential, error) {
	c.mu.Lock()
	c.reads++
	c.mu.Unlock()
	return c.Store.GetCredential(ctx, keyID)
}

func (c *countingStore) n() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.reads
}
