package storetest

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/latchkey/latchkey"
)

// pagedRows is how many rows the paging test writes: enough for many
// pages, few enough to write in seconds.
const pagedRows = 1200

func testPaging(t *testing.T, open Opener) {
	f := newFixture(t, open)
	ctx := t.Context()
	ids := make([]string, 0, pagedRows)
	for i := range pagedRows {
		w, err := f.store.CreateWorkspace(ctx, f.actor, latchkey.Workspace{
			Metadata: latchkey.Metadata{AccountID: f.account.ID, Name: "w", Labels: map[string]string{"even": map[bool]string{true: "yes", false: "no"}[i%2 == 0]}},
		})
		must(t, err)
		ids = append(ids, w.ID)
	}
	list := func(order latchkey.Order, size int, labels map[string]string) []latchkey.Workspace {
		return collect(t, func(tok string) (latchkey.Page[latchkey.Workspace], error) {
			return f.store.ListWorkspaces(ctx, latchkey.WorkspaceQuery{AccountID: f.account.ID, Labels: labels, Page: latchkey.PageRequest{Size: size, Token: tok, Order: order}})
		})
	}
	idsOf := func(ws []latchkey.Workspace) []string {
		out := make([]string, len(ws))
		for i, w := range ws {
			out[i] = w.ID
		}
		return out
	}
	sortedByTime := func(ws []latchkey.Workspace, desc bool) bool {
		return slices.IsSortedFunc(ws, func(a, b latchkey.Workspace) int {
			c := a.CreateTime.Compare(b.CreateTime)
			if c == 0 {
				c = strings.Compare(a.ID, b.ID)
			}
			if desc {
				return -c
			}
			return c
		})
	}

	t.Run("ascending pages hold every row once in order", func(t *testing.T) {
		got := list(latchkey.OrderCreateTimeAsc, 100, nil)
		if !slices.Equal(idsOf(got), ids) || !sortedByTime(got, false) {
			t.Fatalf("ascending list of %d rows differs from the %d written", len(got), len(ids))
		}
	})
	t.Run("descending is the default", func(t *testing.T) {
		got := list(latchkey.OrderUnspecified, 77, nil)
		want := slices.Clone(ids)
		slices.Reverse(want)
		if !slices.Equal(idsOf(got), want) || !sortedByTime(got, true) {
			t.Fatalf("descending list of %d rows differs", len(got))
		}
	})
	t.Run("label filter pages too", func(t *testing.T) {
		got := list(latchkey.OrderCreateTimeAsc, 50, map[string]string{"even": "yes"})
		if len(got) != (pagedRows+1)/2 {
			t.Fatalf("%d rows labelled even, want %d", len(got), (pagedRows+1)/2)
		}
		for _, w := range got {
			if w.Labels["even"] != "yes" {
				t.Fatalf("label filter let %+v through", w)
			}
		}
	})
	t.Run("page sizes are clamped", func(t *testing.T) {
		p, err := f.store.ListWorkspaces(ctx, latchkey.WorkspaceQuery{AccountID: f.account.ID})
		must(t, err)
		if len(p.Items) != latchkey.DefaultPageSize || p.NextToken == "" {
			t.Fatalf("default page: %d items", len(p.Items))
		}
		p, err = f.store.ListWorkspaces(ctx, latchkey.WorkspaceQuery{AccountID: f.account.ID, Page: latchkey.PageRequest{Size: 100000}})
		must(t, err)
		if len(p.Items) != latchkey.MaxPageSize {
			t.Fatalf("huge page: %d items", len(p.Items))
		}
	})
	t.Run("the last page has no token, even when it is full", func(t *testing.T) {
		pages, tok := 0, ""
		for {
			p, err := f.store.ListWorkspaces(ctx, latchkey.WorkspaceQuery{AccountID: f.account.ID, Page: latchkey.PageRequest{Size: 100, Token: tok}})
			must(t, err)
			pages++
			if len(p.Items) != 100 {
				t.Fatalf("page %d has %d items", pages, len(p.Items))
			}
			if tok = p.NextToken; tok == "" {
				break
			}
		}
		if pages != pagedRows/100 {
			t.Fatalf("%d pages of 100 for %d rows", pages, pagedRows)
		}
	})
	t.Run("foreign page tokens are invalid", func(t *testing.T) {
		p, err := f.store.ListWorkspaces(ctx, latchkey.WorkspaceQuery{AccountID: f.account.ID, Page: latchkey.PageRequest{Size: 10}})
		must(t, err)
		tampered := []byte(p.NextToken)
		tampered[len(tampered)/2] ^= 0x01
		if tampered[len(tampered)/2] == '-' || tampered[len(tampered)/2] == '_' {
			tampered[len(tampered)/2] = 'A'
		}
		cases := map[string]latchkey.WorkspaceQuery{
			"tampered":          {AccountID: f.account.ID, Page: latchkey.PageRequest{Token: string(tampered)}},
			"garbage":           {AccountID: f.account.ID, Page: latchkey.PageRequest{Token: "not a token"}},
			"other filter":      {AccountID: f.account.ID, Labels: map[string]string{"even": "no"}, Page: latchkey.PageRequest{Token: p.NextToken}},
			"other order":       {AccountID: f.account.ID, Page: latchkey.PageRequest{Token: p.NextToken, Order: latchkey.OrderCreateTimeAsc}},
			"other account":     {AccountID: f.operator.ID, Page: latchkey.PageRequest{Token: p.NextToken}},
			"other list status": {AccountID: f.account.ID, Status: latchkey.WorkspaceStatusArchived, Page: latchkey.PageRequest{Token: p.NextToken}},
		}
		for name, q := range cases {
			t.Run(name, func(t *testing.T) {
				_, err := f.store.ListWorkspaces(ctx, q)
				wantField(t, err, "page_token")
			})
		}
		_, err = f.store.ListKeys(ctx, latchkey.KeyQuery{AccountID: f.account.ID, Page: latchkey.PageRequest{Token: p.NextToken}})
		wantField(t, err, "page_token")
	})
}

func testListFilters(t *testing.T, open Opener) {
	f := newFixture(t, open)
	ctx := t.Context()
	w := f.workspace(t, "w")
	prod := f.issue(t, "prod", func(in *latchkey.NewAPIKey) {
		in.Key.Labels = map[string]string{"env": "prod", "team": "ai"}
		in.InitialWorkspaceIDs = []string{w.ID}
	})
	f.issue(t, "prod-other-team", func(in *latchkey.NewAPIKey) { in.Key.Labels = map[string]string{"env": "prod", "team": "web"} })
	revoked := f.issue(t, "revoked", func(in *latchkey.NewAPIKey) { in.Key.Labels = map[string]string{"env": "prod", "team": "ai"} })
	_, err := f.store.RevokeKey(ctx, f.actor, f.account.ID, revoked.ID)
	must(t, err)
	expired := f.issue(t, "expired", func(in *latchkey.NewAPIKey) { in.Key.ExpireTime = time.Now().Add(-time.Second) })

	names := func(q latchkey.KeyQuery) []string {
		q.AccountID = f.account.ID
		var out []string
		for _, k := range collect(t, func(tok string) (latchkey.Page[latchkey.APIKey], error) {
			q.Page.Token = tok
			return f.store.ListKeys(ctx, q)
		}) {
			out = append(out, k.Name)
		}
		slices.Sort(out)
		return out
	}
	for name, tc := range map[string]struct {
		q    latchkey.KeyQuery
		want []string
	}{
		"active by default":      {latchkey.KeyQuery{}, []string{"prod", "prod-other-team", "system"}},
		"every label must match": {latchkey.KeyQuery{Labels: map[string]string{"env": "prod", "team": "ai"}}, []string{"prod"}},
		"revoked":                {latchkey.KeyQuery{State: latchkey.KeyStateRevoked}, []string{"revoked"}},
		"expired":                {latchkey.KeyQuery{State: latchkey.KeyStateExpired}, []string{expired.Name}},
		"by workspace":           {latchkey.KeyQuery{WorkspaceID: w.ID}, []string{prod.Name}},
		"labels and state":       {latchkey.KeyQuery{State: latchkey.KeyStateRevoked, Labels: map[string]string{"team": "ai"}}, []string{"revoked"}},
	} {
		t.Run(name, func(t *testing.T) {
			if got := names(tc.q); !slices.Equal(got, tc.want) {
				t.Fatalf("keys %v, want %v", got, tc.want)
			}
		})
	}
}

func testAudit(t *testing.T, open Opener) {
	f := newFixture(t, open)
	ctx := t.Context()
	actor := latchkey.Actor{Profile: latchkey.Bare{ID: f.system.ProfileID, Name: "system"}, RequestID: "req-audit"}
	w, err := f.store.CreateWorkspace(ctx, actor, latchkey.Workspace{Metadata: latchkey.Metadata{AccountID: f.account.ID, Name: "w"}})
	must(t, err)
	key, err := f.store.IssueKey(ctx, actor, f.newKey("k"))
	must(t, err)
	target := latchkey.Bare{ID: key.ID, Name: key.Name}
	must(t, f.store.GrantWorkspace(ctx, actor, latchkey.Grant{AccountID: f.account.ID, ProfileID: key.ProfileID, WorkspaceID: w.ID, Target: target}))
	must(t, f.store.RevokeWorkspace(ctx, actor, latchkey.Grant{AccountID: f.account.ID, ProfileID: key.ProfileID, WorkspaceID: w.ID, Target: target}))
	_, err = f.store.UpdateKey(ctx, actor, latchkey.KeyUpdate{AccountID: f.account.ID, ID: key.ID, Paths: []string{"spec.description"}})
	must(t, err)
	_, err = f.store.RotateKey(ctx, actor, latchkey.KeyRotation{AccountID: f.account.ID, ID: key.ID, Secret: NewSecret(), TokenPrefix: "x"})
	must(t, err)
	_, err = f.store.RevokeKey(ctx, actor, f.account.ID, key.ID)
	must(t, err)
	_, err = f.store.UpdateWorkspace(ctx, actor, latchkey.WorkspaceUpdate{AccountID: f.account.ID, ID: w.ID, Paths: []string{"spec.description"}})
	must(t, err)
	_, err = f.store.ArchiveWorkspace(ctx, actor, f.account.ID, w.ID)
	must(t, err)
	_, err = f.store.CreateProfile(ctx, actor, latchkey.Profile{Metadata: latchkey.Metadata{AccountID: f.account.ID, Name: "u"}, Type: latchkey.ProfileTypeUser, Email: "u@example.com"})
	must(t, err)

	var got []string
	for _, e := range collect(t, func(tok string) (latchkey.Page[latchkey.AuditEvent], error) {
		return f.store.ListAuditEvents(ctx, latchkey.AuditQuery{AccountID: f.account.ID, Page: latchkey.PageRequest{Size: 3, Token: tok, Order: latchkey.OrderCreateTimeAsc}})
	}) {
		if e.RequestID != "req-audit" {
			continue // the fixture's own events
		}
		if e.Actor != actor.Profile || e.AccountID != f.account.ID || e.ID == "" || e.Time.IsZero() {
			t.Fatalf("event = %+v", e)
		}
		got = append(got, e.Action+" "+e.Target.ID)
	}
	want := []string{
		latchkey.ActionWorkspaceCreate + " " + w.ID,
		latchkey.ActionAPIKeyIssue + " " + key.ID,
		latchkey.ActionWorkspaceGrant + " " + key.ID,
		latchkey.ActionWorkspaceRevoke + " " + key.ID,
		latchkey.ActionAPIKeyUpdate + " " + key.ID,
		latchkey.ActionAPIKeyRotate + " " + key.ID,
		latchkey.ActionAPIKeyRevoke + " " + key.ID,
		latchkey.ActionWorkspaceUpdate + " " + w.ID,
		latchkey.ActionWorkspaceArchive + " " + w.ID,
	}
	if len(got) != len(want)+1 || !slices.Equal(got[:len(want)], want) || !strings.HasPrefix(got[len(want)], latchkey.ActionProfileCreate) {
		t.Fatalf("events:\n%s\nwant:\n%s\n+ profile.create", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	newestFirst, err := f.store.ListAuditEvents(ctx, latchkey.AuditQuery{AccountID: f.account.ID, Page: latchkey.PageRequest{Size: 1}})
	must(t, err)
	if newestFirst.Items[0].Action != latchkey.ActionProfileCreate {
		t.Fatalf("the default order is not newest first: %+v", newestFirst.Items[0])
	}
	byTarget := f.events(t, key.ID)
	if len(byTarget) != 6 {
		t.Fatalf("%d events for the key, want 6", len(byTarget))
	}
}
