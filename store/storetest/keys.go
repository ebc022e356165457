package storetest

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/latchkey/latchkey"
)

func testIssue(t *testing.T, open Opener) {
	f := newFixture(t, open)
	ctx := t.Context()
	ws := []latchkey.Workspace{f.workspace(t, "b"), f.workspace(t, "a")}
	expire := time.Now().Add(time.Hour).UTC().Truncate(time.Microsecond)
	key := f.issue(t, "reader", func(in *latchkey.NewAPIKey) {
		in.Key.Labels = map[string]string{"env": "prod"}
		in.Key.ExternalID = "ext-1"
		in.Key.Description = "reads invoices"
		in.Key.Permissions = []string{"invoices:read", "reports:*"}
		in.Key.Environment = latchkey.EnvironmentTest
		in.Key.ExpireTime = expire
		in.Key.AllowedCIDRs = []string{"10.0.0.0/8", "2001:db8::/32"}
		in.InitialWorkspaceIDs = []string{ws[0].ID, ws[1].ID}
	})
	got, err := f.store.GetKey(ctx, f.account.ID, key.ID)
	must(t, err)
	if got.Name != "reader" || got.ExternalID != "ext-1" || got.Labels["env"] != "prod" || got.Description != "reads invoices" ||
		!slices.Equal(got.Permissions, []string{"invoices:read", "reports:*"}) || got.Environment != latchkey.EnvironmentTest ||
		!slices.Equal(got.AllowedCIDRs, []string{"10.0.0.0/8", "2001:db8::/32"}) || got.System ||
		got.CreatedBy != f.system.ProfileID || got.TokenPrefix != "lk_live_01ABCDEF" || got.ETag == "" {
		t.Fatalf("GetKey = %+v", got)
	}
	wantSameTime(t, "expire time", got.ExpireTime, expire)
	if got.State(time.Now()) != latchkey.KeyStateActive {
		t.Fatal("a new key is not active")
	}
	if got.WorkspacesTotal != 2 || len(got.WorkspacesPreview) != 2 || got.WorkspacesPreview[0].Name != "a" {
		t.Fatalf("workspaces: %d %+v", got.WorkspacesTotal, got.WorkspacesPreview)
	}
	prof, err := f.store.GetProfile(ctx, f.account.ID, got.ProfileID)
	must(t, err)
	if prof.Type != latchkey.ProfileTypeAPIKey || prof.Name != "reader" {
		t.Fatalf("the key's own profile = %+v", prof)
	}
	events := f.events(t, key.ID)
	if len(events) != 1 || events[0].Action != latchkey.ActionAPIKeyIssue {
		t.Fatalf("issue events = %+v", events)
	}
	wantSameKey(t, key, got)

	t.Run("what Issue returns is what Get reads", func(t *testing.T) {
		for name, grants := range map[string][]string{"no workspaces": nil, "one workspace": {ws[1].ID}} {
			issued := f.issue(t, name, func(in *latchkey.NewAPIKey) {
				in.Key.Labels = map[string]string{"team": "a"}
				in.Key.ExpireTime = time.Now().Add(time.Hour)
				in.InitialWorkspaceIDs = grants
			})
			read, err := f.store.GetKey(ctx, f.account.ID, issued.ID)
			must(t, err)
			wantSameKey(t, issued, read)
		}
	})

	t.Run("a bad initial workspace leaves nothing written", func(t *testing.T) {
		archived := f.workspace(t, "gone")
		_, err := f.store.ArchiveWorkspace(ctx, f.actor, f.account.ID, archived.ID)
		must(t, err)
		foreign, err := f.store.CreateWorkspace(ctx, f.actor, latchkey.Workspace{Metadata: latchkey.Metadata{AccountID: f.operator.ID, Name: "op"}})
		must(t, err)
		for name, c := range map[string]struct {
			id   string
			code latchkey.Code
		}{
			"unknown":  {latchkey.NewID(latchkey.PrefixWorkspace), latchkey.CodeNotFound},
			"foreign":  {foreign.ID, latchkey.CodeNotFound},
			"archived": {archived.ID, latchkey.CodeFailedPrecondition},
		} {
			t.Run(name, func(t *testing.T) {
				before := f.counts(t)
				in := f.newKey("broken", func(in *latchkey.NewAPIKey) { in.InitialWorkspaceIDs = []string{ws[0].ID, c.id} })
				_, err := f.store.IssueKey(ctx, f.actor, in)
				wantCode(t, err, c.code)
				if after := f.counts(t); after != before {
					t.Fatalf("a refused issue changed the store: %+v -> %+v", before, after)
				}
				_, err = f.store.GetKey(ctx, f.account.ID, in.Key.ID)
				wantCode(t, err, latchkey.CodeNotFound)
			})
		}
	})
}

func testQuota(t *testing.T, open Opener) {
	f := newFixture(t, open)
	ctx := t.Context()
	limit := func(in *latchkey.NewAPIKey) { in.DefaultMaxActiveKeys = 3 } // the system key counts
	a := f.issue(t, "a", limit)
	f.issue(t, "b", limit)
	before := f.counts(t)
	_, err := f.store.IssueKey(ctx, f.actor, f.newKey("c", limit))
	wantCode(t, err, latchkey.CodeResourceExhausted)
	if after := f.counts(t); after != before {
		t.Fatalf("a refused issue changed the store: %+v -> %+v", before, after)
	}
	_, err = f.store.RevokeKey(ctx, f.actor, f.account.ID, a.ID)
	must(t, err)
	f.issue(t, "c", limit)
	_, err = f.store.IssueKey(ctx, f.actor, f.newKey("d", limit))
	wantCode(t, err, latchkey.CodeResourceExhausted)

	// A key that expires stops counting when it does. It must outlive two
	// Issues first, which on a loaded machine (PostgreSQL, -race, two
	// cores) can take longer than any fixed expiry: a refusal is judged
	// only when it came back before the expiry, and otherwise the attempt
	// is made again with a longer one.
	var (
		g       *fixture
		short   latchkey.APIKey
		b       latchkey.APIKey
		expires time.Time
	)
	for expiry := time.Second; ; expiry *= 2 {
		g = newFixture(t, open)
		expires = time.Now().Add(expiry)
		short = g.issue(t, "short-lived", limit, func(in *latchkey.NewAPIKey) { in.Key.ExpireTime = expires })
		b = g.issue(t, "b", limit)
		_, err = g.store.IssueKey(ctx, g.actor, g.newKey("c", limit))
		if time.Now().Before(expires) {
			wantCode(t, err, latchkey.CodeResourceExhausted)
			break
		}
		if expiry >= 16*time.Second {
			t.Fatalf("three writes took longer than %v", expiry)
		}
	}
	time.Sleep(time.Until(expires))
	g.issue(t, "c", limit)

	t.Run("reviving an expired key passes the quota like an issue", func(t *testing.T) {
		revive := latchkey.KeyUpdate{AccountID: g.account.ID, ID: short.ID, Paths: []string{"spec.expire_time"}, DefaultMaxActiveKeys: 3}
		before := g.counts(t)
		_, err := g.store.UpdateKey(ctx, g.actor, revive)
		wantCode(t, err, latchkey.CodeResourceExhausted)
		got, err := g.store.GetKey(ctx, g.account.ID, short.ID)
		must(t, err)
		if got.State(time.Now()) != latchkey.KeyStateExpired || got.ETag != short.ETag || g.counts(t) != before {
			t.Fatalf("a refused revival wrote: state %v, etag %q -> %q", got.State(time.Now()), short.ETag, got.ETag)
		}
		// An update that leaves the key expired takes no place.
		_, err = g.store.UpdateKey(ctx, g.actor, latchkey.KeyUpdate{AccountID: g.account.ID, ID: short.ID,
			Paths: []string{"spec.description"}, Key: latchkey.APIKey{Description: "still expired"}, DefaultMaxActiveKeys: 3})
		must(t, err)
		_, err = g.store.RevokeKey(ctx, g.actor, g.account.ID, b.ID)
		must(t, err)
		revived, err := g.store.UpdateKey(ctx, g.actor, revive)
		must(t, err)
		if revived.State(time.Now()) != latchkey.KeyStateActive {
			t.Fatalf("state after revival = %v", revived.State(time.Now()))
		}
		_, err = g.store.IssueKey(ctx, g.actor, g.newKey("d", limit))
		wantCode(t, err, latchkey.CodeResourceExhausted)
	})

	t.Run("the account's own limit comes before the default", func(t *testing.T) {
		in := NewAccount("small")
		in.MaxActiveKeys = 2 // its system key and one more
		small, _, err := f.store.CreateAccount(ctx, f.actor, in)
		must(t, err)
		key := func(name string) latchkey.NewAPIKey {
			return f.newKey(name, func(in *latchkey.NewAPIKey) { in.Key.AccountID = small.ID })
		}
		_, err = f.store.IssueKey(ctx, f.actor, key("one"))
		must(t, err)
		_, err = f.store.IssueKey(ctx, f.actor, key("two"))
		wantCode(t, err, latchkey.CodeResourceExhausted)
	})
}

func testUpdateKey(t *testing.T, open Opener) {
	f := newFixture(t, open)
	ctx := t.Context()
	key := f.issue(t, "k")
	expire := time.Now().Add(24 * time.Hour).UTC()
	up, err := f.store.UpdateKey(ctx, f.actor, latchkey.KeyUpdate{
		AccountID: f.account.ID, ID: key.ID, ETag: key.ETag,
		Paths: []string{"metadata.name", "metadata.labels", "metadata.external_id", "spec.description",
			"spec.permissions", "spec.expire_time", "spec.allowed_cidrs"},
		Key: latchkey.APIKey{
			Metadata:    latchkey.Metadata{Name: "renamed", Labels: map[string]string{"a": "b"}, ExternalID: "x"},
			Description: "d", Permissions: []string{"p:read"}, ExpireTime: expire, AllowedCIDRs: []string{"192.0.2.0/24"},
		},
	})
	must(t, err)
	if up.Name != "renamed" || up.Labels["a"] != "b" || up.ExternalID != "x" || up.Description != "d" ||
		!slices.Equal(up.Permissions, []string{"p:read"}) || !slices.Equal(up.AllowedCIDRs, []string{"192.0.2.0/24"}) {
		t.Fatalf("update = %+v", up)
	}
	wantSameTime(t, "expire time", up.ExpireTime, expire)
	if up.ETag == key.ETag {
		t.Fatal("the etag did not change")
	}

	t.Run("only masked fields change", func(t *testing.T) {
		again, err := f.store.UpdateKey(ctx, f.actor, latchkey.KeyUpdate{
			AccountID: f.account.ID, ID: key.ID, Paths: []string{"spec.description"},
			Key: latchkey.APIKey{Description: "only this"},
		})
		must(t, err)
		if again.Name != "renamed" || again.Description != "only this" || len(again.Permissions) != 1 {
			t.Fatalf("update = %+v", again)
		}
	})
	t.Run("stale etag is aborted and changes nothing", func(t *testing.T) {
		before := f.counts(t)
		_, err := f.store.UpdateKey(ctx, f.actor, latchkey.KeyUpdate{
			AccountID: f.account.ID, ID: key.ID, ETag: key.ETag, Paths: []string{"metadata.name"},
			Key: latchkey.APIKey{Metadata: latchkey.Metadata{Name: "lost"}},
		})
		wantCode(t, err, latchkey.CodeAborted)
		got, err := f.store.GetKey(ctx, f.account.ID, key.ID)
		must(t, err)
		if got.Name == "lost" || f.counts(t) != before {
			t.Fatal("an aborted update wrote")
		}
	})
	t.Run("unknown path is invalid", func(t *testing.T) {
		_, err := f.store.UpdateKey(ctx, f.actor, latchkey.KeyUpdate{AccountID: f.account.ID, ID: key.ID, Paths: []string{"spec.system"}})
		wantField(t, err, "update_mask")
	})
	t.Run("a revoked key cannot be updated", func(t *testing.T) {
		r := f.issue(t, "r")
		_, err := f.store.RevokeKey(ctx, f.actor, f.account.ID, r.ID)
		must(t, err)
		_, err = f.store.UpdateKey(ctx, f.actor, latchkey.KeyUpdate{AccountID: f.account.ID, ID: r.ID, Paths: []string{"spec.description"}})
		wantCode(t, err, latchkey.CodeFailedPrecondition)
	})
}

// wantSameKey fails unless got and want hold the same key, with times
// compared as instants.
func wantSameKey(t *testing.T, got, want latchkey.APIKey) {
	t.Helper()
	norm := func(k latchkey.APIKey) string {
		for _, tm := range []*time.Time{&k.CreateTime, &k.UpdateTime, &k.ExpireTime, &k.LastUsedTime,
			&k.RotateTime, &k.PreviousTokenExpireTime, &k.RevokeTime} {
			if !tm.IsZero() {
				*tm = tm.UTC().Round(0)
			}
		}
		if len(k.Labels) == 0 {
			k.Labels = nil
		}
		return fmt.Sprintf("%+v", k)
	}
	if g, w := norm(got), norm(want); g != w {
		t.Fatalf("key\n got %s\nwant %s", g, w)
	}
}

func testRotate(t *testing.T, open Opener) {
	f := newFixture(t, open)
	ctx := t.Context()
	in := f.newKey("k")
	key, err := f.store.IssueKey(ctx, f.actor, in)
	must(t, err)

	second := NewSecret()
	until := time.Now().Add(time.Hour).UTC()
	rotated, err := f.store.RotateKey(ctx, f.actor, latchkey.KeyRotation{
		AccountID: f.account.ID, ID: key.ID, Secret: second, TokenPrefix: "lk_live_01ROTATE", PreviousExpire: until,
	})
	must(t, err)
	if rotated.TokenPrefix != "lk_live_01ROTATE" || rotated.RotateTime.IsZero() || rotated.ETag == key.ETag {
		t.Fatalf("rotate = %+v", rotated)
	}
	wantSameTime(t, "previous token expire time", rotated.PreviousTokenExpireTime, until)
	cred, err := f.store.GetCredential(ctx, key.ID)
	must(t, err)
	if !bytes.Equal(cred.Current.Hash, second.Hash) || cred.Previous == nil || !bytes.Equal(cred.Previous.Hash, in.Secret.Hash) {
		t.Fatalf("credential after a graceful rotation = %+v", cred)
	}
	wantSameTime(t, "previous expire", cred.PreviousExpire, until)

	third := NewSecret()
	_, err = f.store.RotateKey(ctx, f.actor, latchkey.KeyRotation{AccountID: f.account.ID, ID: key.ID, Secret: third, TokenPrefix: "lk_live_01THIRD0"})
	must(t, err)
	cred, err = f.store.GetCredential(ctx, key.ID)
	must(t, err)
	if !bytes.Equal(cred.Current.Hash, third.Hash) || cred.Previous != nil {
		t.Fatalf("credential after a rotation without grace = %+v", cred)
	}

	t.Run("revoked and expired keys cannot be rotated", func(t *testing.T) {
		r := f.issue(t, "r")
		_, err := f.store.RevokeKey(ctx, f.actor, f.account.ID, r.ID)
		must(t, err)
		_, err = f.store.RotateKey(ctx, f.actor, latchkey.KeyRotation{AccountID: f.account.ID, ID: r.ID, Secret: NewSecret(), TokenPrefix: "x"})
		wantCode(t, err, latchkey.CodeFailedPrecondition)
		e := f.issue(t, "e", func(in *latchkey.NewAPIKey) { in.Key.ExpireTime = time.Now().Add(-time.Minute) })
		_, err = f.store.RotateKey(ctx, f.actor, latchkey.KeyRotation{AccountID: f.account.ID, ID: e.ID, Secret: NewSecret(), TokenPrefix: "x"})
		wantCode(t, err, latchkey.CodeFailedPrecondition)
	})
	t.Run("a guard sees the key and the grants as the transaction does", func(t *testing.T) {
		k := f.issue(t, "guarded")
		w := f.workspace(t, "guarded")
		must(t, f.store.GrantWorkspace(ctx, f.actor, latchkey.Grant{AccountID: f.account.ID, ProfileID: k.ProfileID, WorkspaceID: w.ID}))
		refused := latchkey.Errorf(latchkey.CodePermissionDenied, "refused by the guard")
		var seen latchkey.APIKey
		var access, beyond bool
		guard := func(ctx context.Context, key latchkey.APIKey, grants latchkey.GrantReader) error {
			seen = key
			var err error
			if access, err = grants.WorkspaceAccess(ctx, f.account.ID, key.ProfileID, w.ID); err != nil {
				return err
			}
			if beyond, err = grants.WorkspacesBeyond(ctx, f.account.ID, key.ProfileID, f.system.ProfileID); err != nil {
				return err
			}
			return refused
		}
		before := f.counts(t)
		_, err := f.store.RotateKey(ctx, f.actor, latchkey.KeyRotation{AccountID: f.account.ID, ID: k.ID, Guard: guard, Secret: NewSecret(), TokenPrefix: "x"})
		wantCode(t, err, latchkey.CodePermissionDenied)
		if seen.ID != k.ID || !access || !beyond {
			t.Fatalf("guard saw key %q, access %v, beyond %v", seen.ID, access, beyond)
		}
		_, err = f.store.UpdateKey(ctx, f.actor, latchkey.KeyUpdate{AccountID: f.account.ID, ID: k.ID, Guard: guard,
			Paths: []string{"spec.description"}, Key: latchkey.APIKey{Description: "x"}})
		wantCode(t, err, latchkey.CodePermissionDenied)
		cred, err := f.store.GetCredential(ctx, k.ID)
		must(t, err)
		if cred.Key.TokenPrefix == "x" || cred.Key.Description == "x" || f.counts(t) != before {
			t.Fatal("a write refused by its guard wrote")
		}
	})
	t.Run("the system key can be rotated", func(t *testing.T) {
		_, err := f.store.RotateKey(ctx, f.actor, latchkey.KeyRotation{AccountID: f.account.ID, ID: f.system.ID, Secret: NewSecret(), TokenPrefix: "x"})
		must(t, err)
	})
}

func testRevoke(t *testing.T, open Opener) {
	f := newFixture(t, open)
	ctx := t.Context()
	key := f.issue(t, "k")
	_, err := f.store.RotateKey(ctx, f.actor, latchkey.KeyRotation{
		AccountID: f.account.ID, ID: key.ID, Secret: NewSecret(), TokenPrefix: "x", PreviousExpire: time.Now().Add(time.Hour),
	})
	must(t, err)
	revoked, err := f.store.RevokeKey(ctx, f.actor, f.account.ID, key.ID)
	must(t, err)
	if revoked.RevokeTime.IsZero() || revoked.State(time.Now()) != latchkey.KeyStateRevoked {
		t.Fatalf("revoke = %+v", revoked)
	}
	again, err := f.store.RevokeKey(ctx, f.actor, f.account.ID, key.ID)
	must(t, err)
	if !again.RevokeTime.Equal(revoked.RevokeTime) || again.ETag != revoked.ETag {
		t.Fatal("revoking twice changed the key")
	}
	revokes := 0
	for _, e := range f.events(t, key.ID) {
		if e.Action == latchkey.ActionAPIKeyRevoke {
			revokes++
		}
	}
	if revokes != 1 {
		t.Fatalf("%d revoke events, want 1", revokes)
	}
	cred, err := f.store.GetCredential(ctx, key.ID)
	must(t, err)
	if cred.Key.RevokeTime.IsZero() {
		t.Fatal("the credential of a revoked key is not revoked")
	}
	_, err = f.store.RevokeKey(ctx, f.actor, f.account.ID, f.system.ID)
	wantCode(t, err, latchkey.CodeFailedPrecondition)
	_, err = f.store.RevokeKey(ctx, f.actor, f.account.ID, latchkey.NewID(latchkey.PrefixAPIKey))
	wantCode(t, err, latchkey.CodeNotFound)
}

func testCredentials(t *testing.T, open Opener) {
	f := newFixture(t, open)
	ctx := t.Context()
	in := f.newKey("k")
	in.Secret.PepperVersion = 3
	key, err := f.store.IssueKey(ctx, f.actor, in)
	must(t, err)
	cred, err := f.store.GetCredential(ctx, key.ID)
	must(t, err)
	if !bytes.Equal(cred.Current.Hash, in.Secret.Hash) || cred.Current.PepperVersion != 3 || cred.Operator || cred.Key.ID != key.ID {
		t.Fatalf("credential = %+v", cred)
	}
	opCred, err := f.store.GetCredential(ctx, f.operatorKeyID(t))
	must(t, err)
	if !opCred.Operator {
		t.Fatal("the operator's key is not marked operator")
	}
	_, err = f.store.GetCredential(ctx, latchkey.NewID(latchkey.PrefixAPIKey))
	wantCode(t, err, latchkey.CodeNotFound)

	t.Run("last use only moves forward", func(t *testing.T) {
		later := time.Now().Add(time.Minute).UTC()
		must(t, f.store.RecordKeyUse(ctx, map[string]time.Time{key.ID: later}))
		must(t, f.store.RecordKeyUse(ctx, map[string]time.Time{key.ID: later.Add(-time.Hour)}))
		got, err := f.store.GetKey(ctx, f.account.ID, key.ID)
		must(t, err)
		wantSameTime(t, "last used time", got.LastUsedTime, later)
	})
}

// operatorKeyID finds the operator account's system key.
func (f *fixture) operatorKeyID(t *testing.T) string {
	t.Helper()
	page, err := f.store.ListKeys(t.Context(), latchkey.KeyQuery{AccountID: f.operator.ID})
	must(t, err)
	if len(page.Items) != 1 {
		t.Fatalf("operator keys: %+v", page.Items)
	}
	return page.Items[0].ID
}

func testIsolation(t *testing.T, open Opener) {
	f := newFixture(t, open)
	ctx := t.Context()
	key := f.issue(t, "k")
	w := f.workspace(t, "w")
	other := f.operator.ID
	actor := f.actor
	_, err := f.store.GetKey(ctx, other, key.ID)
	wantCode(t, err, latchkey.CodeNotFound)
	_, err = f.store.UpdateKey(ctx, actor, latchkey.KeyUpdate{AccountID: other, ID: key.ID, Paths: []string{"spec.description"}})
	wantCode(t, err, latchkey.CodeNotFound)
	_, err = f.store.RotateKey(ctx, actor, latchkey.KeyRotation{AccountID: other, ID: key.ID, Secret: NewSecret(), TokenPrefix: "x"})
	wantCode(t, err, latchkey.CodeNotFound)
	_, err = f.store.RevokeKey(ctx, actor, other, key.ID)
	wantCode(t, err, latchkey.CodeNotFound)
	err = f.store.GrantWorkspace(ctx, actor, latchkey.Grant{AccountID: other, ProfileID: key.ProfileID, WorkspaceID: w.ID})
	wantCode(t, err, latchkey.CodeNotFound)
	err = f.store.RevokeWorkspace(ctx, actor, latchkey.Grant{AccountID: other, ProfileID: key.ProfileID, WorkspaceID: w.ID})
	wantCode(t, err, latchkey.CodeNotFound)
	_, err = f.store.GetWorkspace(ctx, other, w.ID)
	wantCode(t, err, latchkey.CodeNotFound)
	_, err = f.store.UpdateWorkspace(ctx, actor, latchkey.WorkspaceUpdate{AccountID: other, ID: w.ID, Paths: []string{"spec.description"}})
	wantCode(t, err, latchkey.CodeNotFound)
	_, err = f.store.ArchiveWorkspace(ctx, actor, other, w.ID)
	wantCode(t, err, latchkey.CodeNotFound)
	_, err = f.store.ListProfileWorkspaces(ctx, latchkey.GrantQuery{AccountID: other, ProfileID: key.ProfileID})
	wantCode(t, err, latchkey.CodeNotFound)
	got, err := f.store.GetKey(ctx, f.account.ID, key.ID)
	must(t, err)
	if got.ETag != key.ETag || !got.RevokeTime.IsZero() {
		t.Fatal("a call in another account changed the key")
	}
	page, err := f.store.ListKeys(ctx, latchkey.KeyQuery{AccountID: other})
	must(t, err)
	for _, k := range page.Items {
		if k.AccountID != other {
			t.Fatalf("ListKeys of one account shows a key of another: %+v", k)
		}
	}
}
