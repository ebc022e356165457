package storetest

import (
	"slices"
	"testing"
	"time"

	"github.com/latchkey/latchkey"
)

// testAuditFilters lists the audit log by action, by actor and by time,
// alone and together, in both orders and in pages of two, and checks each
// listing against the whole log filtered here.
func testAuditFilters(t *testing.T, open Opener) {
	f := newFixture(t, open)
	ctx := t.Context()
	system := latchkey.Actor{Profile: latchkey.Bare{ID: f.system.ProfileID, Name: "system"}, RequestID: "req-filters"}
	var keys []latchkey.APIKey
	for _, name := range []string{"a", "b", "c"} {
		k, err := f.store.IssueKey(ctx, system, f.newKey(name))
		must(t, err)
		keys = append(keys, k)
		time.Sleep(2 * time.Millisecond) // distinct times, so that a bound falls between events
	}
	// The first key acts too: its own profile is the actor.
	byKey := latchkey.Actor{Profile: latchkey.Bare{ID: keys[0].ProfileID, Name: keys[0].Name}, RequestID: "req-filters"}
	for _, k := range keys[1:] {
		_, err := f.store.RevokeKey(ctx, byKey, f.account.ID, k.ID)
		must(t, err)
		time.Sleep(2 * time.Millisecond)
	}
	_, err := f.store.RotateKey(ctx, system, latchkey.KeyRotation{AccountID: f.account.ID, ID: keys[0].ID, Secret: NewSecret(), TokenPrefix: "x"})
	must(t, err)

	all := f.events(t, "")
	if len(all) < 6 {
		t.Fatalf("%d events, want at least 6", len(all))
	}
	// all is newest first: a bound at the time of the fourth newest event
	// (the first revocation) and one at the newest (the rotation).
	mid, last := all[3].Time, all[0].Time
	ids := func(es []latchkey.AuditEvent) []string {
		var out []string
		for _, e := range es {
			out = append(out, e.ID)
		}
		return out
	}
	for _, tc := range []struct {
		name  string
		q     latchkey.AuditQuery
		match func(latchkey.AuditEvent) bool
		least int
	}{
		{"action", latchkey.AuditQuery{Action: latchkey.ActionAPIKeyRevoke},
			func(e latchkey.AuditEvent) bool { return e.Action == latchkey.ActionAPIKeyRevoke }, 2},
		{"actor", latchkey.AuditQuery{ActorID: keys[0].ProfileID},
			func(e latchkey.AuditEvent) bool { return e.Actor.ID == keys[0].ProfileID }, 2},
		{"start", latchkey.AuditQuery{Start: mid},
			func(e latchkey.AuditEvent) bool { return !e.Time.Before(mid) }, 3},
		{"end", latchkey.AuditQuery{End: mid},
			func(e latchkey.AuditEvent) bool { return e.Time.Before(mid) }, 3},
		{"start and end", latchkey.AuditQuery{Start: mid, End: last},
			func(e latchkey.AuditEvent) bool { return !e.Time.Before(mid) && e.Time.Before(last) }, 2},
		{"action, actor and target", latchkey.AuditQuery{Action: latchkey.ActionAPIKeyRevoke, ActorID: keys[0].ProfileID, TargetID: keys[2].ID},
			func(e latchkey.AuditEvent) bool {
				return e.Action == latchkey.ActionAPIKeyRevoke && e.Actor.ID == keys[0].ProfileID && e.Target.ID == keys[2].ID
			}, 1},
		{"an action no event has", latchkey.AuditQuery{Action: latchkey.ActionAccountSuspend},
			func(e latchkey.AuditEvent) bool { return false }, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var want []latchkey.AuditEvent
			for _, e := range all {
				if tc.match(e) {
					want = append(want, e)
				}
			}
			if len(want) < tc.least {
				t.Fatalf("the log has %d such events, the test expects at least %d: %v", len(want), tc.least, ids(all))
			}
			for _, order := range []latchkey.Order{latchkey.OrderCreateTimeDesc, latchkey.OrderCreateTimeAsc} {
				got := collect(t, func(tok string) (latchkey.Page[latchkey.AuditEvent], error) {
					q := tc.q
					q.AccountID = f.account.ID
					q.Page = latchkey.PageRequest{Size: 2, Token: tok, Order: order}
					return f.store.ListAuditEvents(ctx, q)
				})
				w := ids(want)
				if order == latchkey.OrderCreateTimeAsc {
					slices.Reverse(w)
				}
				if !slices.Equal(ids(got), w) {
					t.Fatalf("order %v: events %v, want %v", order, ids(got), w)
				}
			}
		})
	}
}
