package storetest

import (
	"testing"

	"github.com/latchkey/latchkey"
)

func testWorkspaces(t *testing.T, open Opener) {
	f := newFixture(t, open)
	ctx := t.Context()
	w := f.workspace(t, "billing")
	if w.ID == "" || w.Status != latchkey.WorkspaceStatusActive || w.ETag == "" {
		t.Fatalf("CreateWorkspace = %+v", w)
	}
	got, err := f.store.GetWorkspace(ctx, f.account.ID, w.ID)
	must(t, err)
	if got.Name != "billing" || got.ETag != w.ETag {
		t.Fatalf("GetWorkspace = %+v", got)
	}

	t.Run("update changes the masked fields and the etag", func(t *testing.T) {
		up, err := f.store.UpdateWorkspace(ctx, f.actor, latchkey.WorkspaceUpdate{
			AccountID: f.account.ID, ID: w.ID, ETag: w.ETag,
			Paths:     []string{"spec.description", "metadata.labels"},
			Workspace: latchkey.Workspace{Metadata: latchkey.Metadata{Name: "ignored", Labels: map[string]string{"env": "prod"}}, Description: "money"},
		})
		must(t, err)
		if up.Name != "billing" || up.Description != "money" || up.Labels["env"] != "prod" {
			t.Fatalf("update = %+v", up)
		}
		if up.ETag == w.ETag || up.UpdateTime.Before(w.UpdateTime) {
			t.Fatalf("etag %q -> %q, update time %v -> %v", w.ETag, up.ETag, w.UpdateTime, up.UpdateTime)
		}
		_, err = f.store.UpdateWorkspace(ctx, f.actor, latchkey.WorkspaceUpdate{
			AccountID: f.account.ID, ID: w.ID, ETag: w.ETag, Paths: []string{"spec.description"},
		})
		wantCode(t, err, latchkey.CodeAborted)
		_, err = f.store.UpdateWorkspace(ctx, f.actor, latchkey.WorkspaceUpdate{
			AccountID: f.account.ID, ID: w.ID, Paths: []string{"status"},
		})
		wantField(t, err, "update_mask")
		again, err := f.store.GetWorkspace(ctx, f.account.ID, w.ID)
		must(t, err)
		if again.ETag != up.ETag || again.Description != "money" {
			t.Fatalf("a refused update changed the workspace: %+v", again)
		}
	})

	t.Run("archive is idempotent and hides it from the default list", func(t *testing.T) {
		other := f.workspace(t, "other")
		a, err := f.store.ArchiveWorkspace(ctx, f.actor, f.account.ID, other.ID)
		must(t, err)
		if a.Status != latchkey.WorkspaceStatusArchived {
			t.Fatalf("archive = %+v", a)
		}
		b, err := f.store.ArchiveWorkspace(ctx, f.actor, f.account.ID, other.ID)
		must(t, err)
		if b.ETag != a.ETag {
			t.Fatal("archiving twice changed the etag")
		}
		active, err := f.store.ListWorkspaces(ctx, latchkey.WorkspaceQuery{AccountID: f.account.ID})
		must(t, err)
		for _, x := range active.Items {
			if x.ID == other.ID {
				t.Fatal("the default list shows an archived workspace")
			}
		}
		archived, err := f.store.ListWorkspaces(ctx, latchkey.WorkspaceQuery{AccountID: f.account.ID, Status: latchkey.WorkspaceStatusArchived})
		must(t, err)
		if len(archived.Items) != 1 || archived.Items[0].ID != other.ID {
			t.Fatalf("archived list = %+v", archived.Items)
		}
		before := f.counts(t)
		_, err = f.store.UpdateWorkspace(ctx, f.actor, latchkey.WorkspaceUpdate{
			AccountID: f.account.ID, ID: other.ID, Paths: []string{"metadata.name"},
			Workspace: latchkey.Workspace{Metadata: latchkey.Metadata{Name: "renamed"}},
		})
		wantCode(t, err, latchkey.CodeFailedPrecondition)
		still, err := f.store.GetWorkspace(ctx, f.account.ID, other.ID)
		must(t, err)
		if still.Name != "other" || still.ETag != a.ETag || f.counts(t) != before {
			t.Fatalf("an update refused on an archived workspace wrote: %+v", still)
		}
	})
}

func testGrants(t *testing.T, open Opener) {
	f := newFixture(t, open)
	ctx := t.Context()
	key := f.issue(t, "k")
	names := []string{"f", "e", "d", "c", "b", "a"}
	var ws []latchkey.Workspace
	for _, n := range names {
		ws = append(ws, f.workspace(t, n))
	}
	grant := func(w latchkey.Workspace) latchkey.Grant {
		return latchkey.Grant{AccountID: f.account.ID, ProfileID: key.ProfileID, WorkspaceID: w.ID, Target: latchkey.Bare{ID: key.ID, Name: key.Name}}
	}
	for _, w := range ws {
		must(t, f.store.GrantWorkspace(ctx, f.actor, grant(w)))
	}
	must(t, f.store.GrantWorkspace(ctx, f.actor, grant(ws[0]))) // idempotent

	got, err := f.store.GetKey(ctx, f.account.ID, key.ID)
	must(t, err)
	if got.WorkspacesTotal != 6 || len(got.WorkspacesPreview) != latchkey.PreviewSize {
		t.Fatalf("total %d, preview %+v", got.WorkspacesTotal, got.WorkspacesPreview)
	}
	for i, b := range got.WorkspacesPreview {
		if b.Name != string(rune('a'+i)) {
			t.Fatalf("preview is not ordered by name: %+v", got.WorkspacesPreview)
		}
	}
	if got.ETag == key.ETag {
		t.Fatal("a grant left the key's etag unchanged")
	}
	ok, err := f.store.WorkspaceAccess(ctx, f.account.ID, key.ProfileID, ws[0].ID)
	must(t, err)
	if !ok {
		t.Fatal("a granted workspace is not accessible")
	}
	listed := collect(t, func(tok string) (latchkey.Page[latchkey.Workspace], error) {
		return f.store.ListProfileWorkspaces(ctx, latchkey.GrantQuery{AccountID: f.account.ID, ProfileID: key.ProfileID, Page: latchkey.PageRequest{Size: 4, Token: tok}})
	})
	if len(listed) != 6 {
		t.Fatalf("ListProfileWorkspaces: %d", len(listed))
	}

	t.Run("revoke is idempotent", func(t *testing.T) {
		must(t, f.store.RevokeWorkspace(ctx, f.actor, grant(ws[0])))
		must(t, f.store.RevokeWorkspace(ctx, f.actor, grant(ws[0])))
		ok, err := f.store.WorkspaceAccess(ctx, f.account.ID, key.ProfileID, ws[0].ID)
		must(t, err)
		if ok {
			t.Fatal("a withdrawn workspace is still accessible")
		}
		got, err := f.store.GetKey(ctx, f.account.ID, key.ID)
		must(t, err)
		if got.WorkspacesTotal != 5 {
			t.Fatalf("total after revoke = %d", got.WorkspacesTotal)
		}
	})
	t.Run("an archived workspace admits nothing and takes no grant", func(t *testing.T) {
		_, err := f.store.ArchiveWorkspace(ctx, f.actor, f.account.ID, ws[1].ID)
		must(t, err)
		ok, err := f.store.WorkspaceAccess(ctx, f.account.ID, key.ProfileID, ws[1].ID)
		must(t, err)
		if ok {
			t.Fatal("an archived workspace admits")
		}
		other := f.issue(t, "other")
		err = f.store.GrantWorkspace(ctx, f.actor, latchkey.Grant{AccountID: f.account.ID, ProfileID: other.ProfileID, WorkspaceID: ws[1].ID})
		wantCode(t, err, latchkey.CodeFailedPrecondition)
	})
	t.Run("unknown and foreign workspaces are not found", func(t *testing.T) {
		g := grant(ws[2])
		g.WorkspaceID = latchkey.NewID(latchkey.PrefixWorkspace)
		wantCode(t, f.store.GrantWorkspace(ctx, f.actor, g), latchkey.CodeNotFound)
		foreign, err := f.store.CreateWorkspace(ctx, f.actor, latchkey.Workspace{Metadata: latchkey.Metadata{AccountID: f.operator.ID, Name: "op"}})
		must(t, err)
		g.WorkspaceID = foreign.ID
		wantCode(t, f.store.GrantWorkspace(ctx, f.actor, g), latchkey.CodeNotFound)
		ok, err := f.store.WorkspaceAccess(ctx, f.account.ID, key.ProfileID, foreign.ID)
		must(t, err)
		if ok {
			t.Fatal("another account's workspace is accessible")
		}
		g = grant(ws[2])
		g.ProfileID = latchkey.NewID(latchkey.PrefixProfile)
		wantCode(t, f.store.GrantWorkspace(ctx, f.actor, g), latchkey.CodeNotFound)
	})
}
