package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/latchkey/latchkey"
)

// The account's own state: its default key permissions, which UpdateAccount
// changes, and its suspension, which SuspendAccount and RestoreAccount set
// and clear. A suspension changes the verdict of every key of the account,
// so it is recorded in the change log and fed to followers as any other
// such write; it deletes and changes nothing but the account.

// accountWrites is what a write to an account can leave behind: the
// account as stored, the newest change, and the audit events of the
// account. A write that is refused, or that finds nothing to do, leaves
// all three as they were.
type accountWrites struct {
	account latchkey.Account
	change  int64
	events  int
}

func (f *fixture) accountWrites(t *testing.T, accountID string) accountWrites {
	t.Helper()
	a, err := f.store.GetAccount(t.Context(), accountID)
	must(t, err)
	last, err := f.store.LastChange(t.Context())
	must(t, err)
	return accountWrites{account: a, change: last, events: len(accountEvents(t, f.store, accountID, ""))}
}

// wantNothingWritten fails unless the account, the change log and the
// account's audit events are as before.
func (f *fixture) wantNothingWritten(t *testing.T, what string, before accountWrites) {
	t.Helper()
	after := f.accountWrites(t, before.account.ID)
	wantSameAccount(t, after.account, before.account)
	if after.change != before.change {
		t.Errorf("%s recorded changes %d..%d", what, before.change+1, after.change)
	}
	if after.events != before.events {
		t.Errorf("%s wrote %d audit events", what, after.events-before.events)
	}
}

// accountEvents returns an account's audit events, oldest first, about
// targetID or about anything for "".
func accountEvents(t *testing.T, s latchkey.Store, accountID, targetID string) []latchkey.AuditEvent {
	t.Helper()
	return collect(t, func(tok string) (latchkey.Page[latchkey.AuditEvent], error) {
		return s.ListAuditEvents(t.Context(), latchkey.AuditQuery{AccountID: accountID, TargetID: targetID,
			Page: latchkey.PageRequest{Size: latchkey.MaxPageSize, Token: tok, Order: latchkey.OrderCreateTimeAsc}})
	})
}

// wantOneNewEvent fails unless exactly one audit event about the account
// was written since before (the account's event count then), and returns it.
func wantOneNewEvent(t *testing.T, s latchkey.Store, accountID string, before int) latchkey.AuditEvent {
	t.Helper()
	events := accountEvents(t, s, accountID, "")
	if len(events) != before+1 {
		t.Fatalf("%d audit events written, want 1: %+v", len(events)-before, events[min(before, len(events)):])
	}
	return events[len(events)-1]
}

// wantEvent fails unless e is action on the account, by actor, with reason.
func wantEvent(t *testing.T, e latchkey.AuditEvent, action string, account latchkey.Account, actor latchkey.Actor, reason string) {
	t.Helper()
	if e.Action != action || e.AccountID != account.ID || e.Target.ID != account.ID || e.Target.Name != account.Name ||
		e.Actor != actor.Profile || e.RequestID != actor.RequestID || e.Reason != reason || e.ID == "" || e.Time.IsZero() {
		t.Fatalf("audit event %+v, want %s of %s (%s) by %+v in request %q with reason %q",
			e, action, account.ID, account.Name, actor.Profile, actor.RequestID, reason)
	}
}

// wantSameAccount fails unless got and want are the same account in the
// same version, with times compared to the microsecond a backend keeps.
func wantSameAccount(t *testing.T, got, want latchkey.Account) {
	t.Helper()
	if got.ID != want.ID || got.AccountID != want.AccountID || got.Name != want.Name || got.ETag != want.ETag ||
		got.Operator != want.Operator || got.MaxActiveKeys != want.MaxActiveKeys ||
		!slices.Equal(got.DefaultKeyPermissions, want.DefaultKeyPermissions) ||
		got.Suspended() != want.Suspended() || got.SuspendReason != want.SuspendReason {
		t.Fatalf("account\n got %+v\nwant %+v", got, want)
	}
	wantSameTime(t, "create time", got.CreateTime, want.CreateTime)
	wantSameTime(t, "update time", got.UpdateTime, want.UpdateTime)
	wantSameTime(t, "suspend time", got.SuspendTime, want.SuspendTime)
}

// wantAccountChange fails unless got is exactly one change of kind about
// the whole account: it names the account and no key, profile or
// workspace, and follows after.
func wantAccountChange(t *testing.T, what string, got []latchkey.Change, kind latchkey.ChangeKind, accountID string, after int64) {
	t.Helper()
	if len(got) != 1 {
		t.Fatalf("%s: %d changes %+v, want one %s", what, len(got), got, kind)
	}
	c := got[0]
	if c.Kind != kind || c.AccountID != accountID || c.KeyID != "" || c.ProfileID != "" || c.WorkspaceID != "" ||
		c.Seq != after+1 || c.Time.IsZero() {
		t.Fatalf("%s: change %+v, want %s of account %s alone at seq %d", what, c, kind, accountID, after+1)
	}
}

// wantSuspended fails unless GetCredential of every key in ids reports
// the suspension as want.
func wantSuspended(t *testing.T, s latchkey.Store, want bool, ids ...string) {
	t.Helper()
	for _, id := range ids {
		cred, err := s.GetCredential(t.Context(), id)
		must(t, err)
		if cred.AccountSuspended != want {
			t.Errorf("GetCredential(%s).AccountSuspended = %v, want %v", id, cred.AccountSuspended, want)
		}
	}
}

// follow starts a recording follower of the store and waits until it is
// fresh, with nothing recorded yet.
func (f *fixture) follow(t *testing.T) *recordingSink {
	t.Helper()
	sink := &recordingSink{}
	feed, err := f.store.Follow(sink)
	must(t, err)
	t.Cleanup(feed.Close)
	if !feed.Fresh(time.Now()) && !waitFresh(feed) {
		t.Fatal("a new feed never became fresh")
	}
	sink.take()
	return sink
}

// testAccountState: an account keeps the default key permissions it was
// created with, and every read of it (GetAccount, ListAccounts) returns
// them and its suspension.
func testAccountState(t *testing.T, open Opener) {
	s := open(t)
	ctx := t.Context()
	opIn := NewAccount("operator")
	opIn.DefaultKeyPermissions = []string{"accounts:read"}
	op, opKey, err := s.Bootstrap(ctx, opIn)
	must(t, err)
	actor := latchkey.Actor{Profile: latchkey.Bare{ID: opKey.ProfileID, Name: opKey.Name}, RequestID: "req-state"}
	in := NewAccount("acme")
	in.DefaultKeyPermissions = []string{"invoices:read", "reports:*"}
	acct, _, err := s.CreateAccount(ctx, actor, in)
	must(t, err)
	bare, _, err := s.CreateAccount(ctx, actor, NewAccount("bare"))
	must(t, err)

	t.Run("create keeps the default key permissions", func(t *testing.T) {
		if !slices.Equal(op.DefaultKeyPermissions, []string{"accounts:read"}) {
			t.Errorf("Bootstrap's defaults = %v", op.DefaultKeyPermissions)
		}
		if !slices.Equal(acct.DefaultKeyPermissions, []string{"invoices:read", "reports:*"}) {
			t.Errorf("CreateAccount's defaults = %v", acct.DefaultKeyPermissions)
		}
		if len(bare.DefaultKeyPermissions) != 0 {
			t.Errorf("an account created with no defaults has %v", bare.DefaultKeyPermissions)
		}
	})
	t.Run("a new account is active", func(t *testing.T) {
		for _, a := range []latchkey.Account{op, acct, bare} {
			if a.Suspended() || !a.SuspendTime.IsZero() || a.SuspendReason != "" {
				t.Errorf("new account %s: suspended %v at %v for %q", a.Name, a.Suspended(), a.SuspendTime, a.SuspendReason)
			}
		}
	})
	t.Run("get and list read the defaults back", func(t *testing.T) {
		for _, want := range []latchkey.Account{op, acct, bare} {
			got, err := s.GetAccount(ctx, want.ID)
			must(t, err)
			wantSameAccount(t, got, want)
		}
		page, err := s.ListAccounts(ctx, latchkey.PageRequest{Order: latchkey.OrderCreateTimeAsc})
		must(t, err)
		if len(page.Items) != 3 {
			t.Fatalf("ListAccounts: %d accounts", len(page.Items))
		}
		for i, want := range []latchkey.Account{op, acct, bare} {
			wantSameAccount(t, page.Items[i], want)
		}
	})
	t.Run("get and list read the suspension back", func(t *testing.T) {
		before := time.Now().Add(-time.Second)
		suspended, err := s.SuspendAccount(ctx, actor, acct.ID, "unpaid invoice")
		must(t, err)
		if !suspended.Suspended() || suspended.SuspendReason != "unpaid invoice" ||
			suspended.SuspendTime.Before(before) || suspended.SuspendTime.After(time.Now().Add(time.Second)) {
			t.Fatalf("SuspendAccount = %+v", suspended)
		}
		got, err := s.GetAccount(ctx, acct.ID)
		must(t, err)
		wantSameAccount(t, got, suspended)
		page, err := s.ListAccounts(ctx, latchkey.PageRequest{Order: latchkey.OrderCreateTimeAsc})
		must(t, err)
		for _, a := range page.Items {
			switch a.ID {
			case acct.ID:
				wantSameAccount(t, a, suspended)
			default:
				if a.Suspended() || a.SuspendReason != "" {
					t.Errorf("ListAccounts shows %s suspended for %q: only %s is", a.Name, a.SuspendReason, acct.Name)
				}
			}
		}
	})
}

// testUpdateAccount: UpdateAccount changes exactly the fields its paths
// name, with an audit event; a refusal of any kind (an unknown path, a
// stale etag, the guard, an unknown account) writes nothing.
func testUpdateAccount(t *testing.T, open Opener) {
	f := newFixture(t, open)
	ctx := t.Context()
	id := f.account.ID
	// Every update sends a new value for every field: only the masked one
	// may land.
	values := latchkey.Account{
		Metadata:              latchkey.Metadata{Name: "renamed", Labels: map[string]string{"ignored": "yes"}, ExternalID: "ignored"},
		Operator:              true,
		MaxActiveKeys:         42,
		DefaultKeyPermissions: []string{"invoices:read", "reports:*"},
		SuspendTime:           time.Now(),
		SuspendReason:         "ignored",
	}

	t.Run("each path changes only its own field", func(t *testing.T) {
		for _, tt := range []struct {
			path  string
			apply func(*latchkey.Account)
		}{
			{"metadata.name", func(a *latchkey.Account) { a.Name = values.Name }},
			{"spec.max_active_keys", func(a *latchkey.Account) { a.MaxActiveKeys = values.MaxActiveKeys }},
			{"spec.default_key_permissions", func(a *latchkey.Account) { a.DefaultKeyPermissions = values.DefaultKeyPermissions }},
		} {
			t.Run(tt.path, func(t *testing.T) {
				before := f.accountWrites(t, id)
				up, err := f.store.UpdateAccount(ctx, f.actor, latchkey.AccountUpdate{
					ID: id, ETag: before.account.ETag, Paths: []string{tt.path}, Account: values,
				})
				must(t, err)
				want := before.account
				tt.apply(&want)
				if up.ETag == before.account.ETag || up.ETag == "" {
					t.Errorf("the etag %q did not change", up.ETag)
				}
				if up.UpdateTime.Before(before.account.UpdateTime) {
					t.Errorf("update time %v went back from %v", up.UpdateTime, before.account.UpdateTime)
				}
				want.ETag, want.UpdateTime = up.ETag, up.UpdateTime
				wantSameAccount(t, up, want)
				got, err := f.store.GetAccount(ctx, id)
				must(t, err)
				wantSameAccount(t, got, up)
				if len(got.Labels) != 0 || got.ExternalID != "" {
					t.Errorf("fields that cannot be updated changed: labels %v, external id %q", got.Labels, got.ExternalID)
				}
				e := wantOneNewEvent(t, f.store, id, before.events)
				wantEvent(t, e, latchkey.ActionAccountUpdate, got, f.actor, "")
			})
		}
	})
	t.Run("the update time moves forward", func(t *testing.T) {
		before, err := f.store.GetAccount(ctx, id)
		must(t, err)
		time.Sleep(2 * time.Millisecond)
		up, err := f.store.UpdateAccount(ctx, f.actor, latchkey.AccountUpdate{ID: id, Paths: []string{"spec.max_active_keys"}, Account: latchkey.Account{MaxActiveKeys: 5}})
		must(t, err)
		if !up.UpdateTime.After(before.UpdateTime) {
			t.Errorf("update time %v, not after %v", up.UpdateTime, before.UpdateTime)
		}
		wantSameTime(t, "create time", up.CreateTime, before.CreateTime)
	})
	t.Run("several paths at once", func(t *testing.T) {
		up, err := f.store.UpdateAccount(ctx, f.actor, latchkey.AccountUpdate{ID: id,
			Paths:   []string{"metadata.name", "spec.max_active_keys", "spec.default_key_permissions"},
			Account: latchkey.Account{Metadata: latchkey.Metadata{Name: "both"}, MaxActiveKeys: 9, DefaultKeyPermissions: []string{"a:read"}}})
		must(t, err)
		got, err := f.store.GetAccount(ctx, id)
		must(t, err)
		if got.Name != "both" || got.MaxActiveKeys != 9 || !slices.Equal(got.DefaultKeyPermissions, []string{"a:read"}) {
			t.Fatalf("GetAccount = %+v", got)
		}
		wantSameAccount(t, got, up)
	})
	t.Run("the defaults can be cleared", func(t *testing.T) {
		up, err := f.store.UpdateAccount(ctx, f.actor, latchkey.AccountUpdate{ID: id, Paths: []string{"spec.default_key_permissions"}})
		must(t, err)
		got, err := f.store.GetAccount(ctx, id)
		must(t, err)
		if len(up.DefaultKeyPermissions) != 0 || len(got.DefaultKeyPermissions) != 0 {
			t.Fatalf("cleared defaults read %v, returned %v", got.DefaultKeyPermissions, up.DefaultKeyPermissions)
		}
	})
	t.Run("an unknown path is invalid and writes nothing", func(t *testing.T) {
		// Among them the fields no update may reach: what makes an
		// account the operator's, and its suspension.
		for _, path := range []string{"spec.operator", "suspend_time", "spec.suspend_reason", "metadata.labels", "metadata.id", "", "spec.default_key_permissions.0"} {
			t.Run(path, func(t *testing.T) {
				before := f.accountWrites(t, id)
				// A valid path first: its change must be undone with the rest.
				_, err := f.store.UpdateAccount(ctx, f.actor, latchkey.AccountUpdate{
					ID: id, Paths: []string{"metadata.name", path}, Account: values,
				})
				wantField(t, err, "update_mask")
				f.wantNothingWritten(t, "an update with path "+path, before)
			})
		}
	})
	t.Run("a stale etag is aborted and writes nothing", func(t *testing.T) {
		stale, err := f.store.GetAccount(ctx, id)
		must(t, err)
		_, err = f.store.UpdateAccount(ctx, f.actor, latchkey.AccountUpdate{ID: id, ETag: stale.ETag, Paths: []string{"spec.max_active_keys"}, Account: latchkey.Account{MaxActiveKeys: 11}})
		must(t, err)
		before := f.accountWrites(t, id)
		_, err = f.store.UpdateAccount(ctx, f.actor, latchkey.AccountUpdate{ID: id, ETag: stale.ETag, Paths: []string{"metadata.name"}, Account: values})
		wantCode(t, err, latchkey.CodeAborted)
		f.wantNothingWritten(t, "an update with a stale etag", before)
		_, err = f.store.UpdateAccount(ctx, f.actor, latchkey.AccountUpdate{ID: id, ETag: "not an etag", Paths: []string{"metadata.name"}, Account: values})
		wantCode(t, err, latchkey.CodeAborted)
		f.wantNothingWritten(t, "an update with a made-up etag", before)
	})
	t.Run("the guard's refusal aborts it and writes nothing", func(t *testing.T) {
		before := f.accountWrites(t, id)
		refusal := latchkey.Errorf(latchkey.CodePermissionDenied, "not within reach")
		calls := 0
		_, err := f.store.UpdateAccount(ctx, f.actor, latchkey.AccountUpdate{
			ID: id, Paths: []string{"metadata.name", "spec.default_key_permissions"}, Account: values,
			Guard: func(context.Context, latchkey.Account) error { calls++; return refusal },
		})
		if !errors.Is(err, refusal) {
			t.Fatalf("UpdateAccount = %v, want the guard's own error", err)
		}
		if calls == 0 {
			t.Fatal("the guard was not asked")
		}
		f.wantNothingWritten(t, "an update its guard refused", before)
	})
	t.Run("a guard's error of no domain code aborts it too", func(t *testing.T) {
		before := f.accountWrites(t, id)
		refusal := errors.New("the guard could not decide")
		_, err := f.store.UpdateAccount(ctx, f.actor, latchkey.AccountUpdate{
			ID: id, Paths: []string{"metadata.name"}, Account: values,
			Guard: func(context.Context, latchkey.Account) error { return refusal },
		})
		if err == nil || !errors.Is(err, refusal) {
			t.Fatalf("UpdateAccount = %v, want the guard's error", err)
		}
		f.wantNothingWritten(t, "an update whose guard failed", before)
	})
	t.Run("the guard sees the account as stored", func(t *testing.T) {
		// The caller's copy is out of date: another writer changed the
		// defaults since. The guard must judge what the store holds.
		callerCopy, err := f.store.GetAccount(ctx, id)
		must(t, err)
		stronger, err := f.store.UpdateAccount(ctx, f.operatorActor, latchkey.AccountUpdate{ID: id,
			Paths: []string{"spec.default_key_permissions"}, Account: latchkey.Account{DefaultKeyPermissions: []string{"*"}}})
		must(t, err)
		var seen latchkey.Account
		up, err := f.store.UpdateAccount(ctx, f.actor, latchkey.AccountUpdate{
			ID: id, Paths: []string{"spec.default_key_permissions"},
			Account: latchkey.Account{DefaultKeyPermissions: callerCopy.DefaultKeyPermissions},
			Guard:   func(_ context.Context, current latchkey.Account) error { seen = current; return nil },
		})
		must(t, err)
		// The guard sees the account before this update, as stored.
		wantSameAccount(t, seen, stronger)
		if up.ETag == stronger.ETag {
			t.Fatal("the guarded update did not change the etag")
		}
	})
	t.Run("an unknown account is not found and asks no guard", func(t *testing.T) {
		last, err := f.store.LastChange(ctx)
		must(t, err)
		asked := false
		unknown := latchkey.NewID(latchkey.PrefixAccount)
		_, err = f.store.UpdateAccount(ctx, f.operatorActor, latchkey.AccountUpdate{
			ID: unknown, Paths: []string{"metadata.name"}, Account: values,
			Guard: func(context.Context, latchkey.Account) error { asked = true; return nil },
		})
		wantCode(t, err, latchkey.CodeNotFound)
		if asked {
			t.Error("the guard was asked about an account that does not exist")
		}
		if n := len(accountEvents(t, f.store, unknown, "")); n != 0 {
			t.Errorf("%d audit events about an unknown account", n)
		}
		if now, err := f.store.LastChange(ctx); err != nil || now != last {
			t.Errorf("the change log moved from %d to %d (%v)", last, now, err)
		}
	})
	t.Run("concurrent guarded updates lose none", func(t *testing.T) {
		// Each writer adds one to the quota it read, and its guard refuses
		// when the account no longer holds what it read: a guard that saw
		// anything but the account as its own transaction reads it would
		// let two writers add the same one.
		start, err := f.store.GetAccount(ctx, id)
		must(t, err)
		const writers, perWriter = 8, 5
		var wg sync.WaitGroup
		errs := make(chan error, writers*perWriter)
		for range writers {
			wg.Go(func() {
				for range perWriter {
					// A refusal means another increment landed between the
					// read and the guard, and there are only so many: a
					// guard refused more often never saw the account as it
					// stands, and would be refused forever.
					for attempt := 0; ; attempt++ {
						if attempt > writers*perWriter {
							errs <- errors.New("an increment was refused more often than there were others: the guard does not see the quota as stored")
							return
						}
						read, err := f.store.GetAccount(ctx, id)
						if err != nil {
							errs <- err
							return
						}
						_, err = f.store.UpdateAccount(ctx, f.actor, latchkey.AccountUpdate{
							ID: id, Paths: []string{"spec.max_active_keys"},
							Account: latchkey.Account{MaxActiveKeys: read.MaxActiveKeys + 1},
							Guard: func(_ context.Context, current latchkey.Account) error {
								if current.MaxActiveKeys != read.MaxActiveKeys {
									return latchkey.Errorf(latchkey.CodeAborted, "moved")
								}
								return nil
							},
						})
						if latchkey.ErrorCode(err) == latchkey.CodeAborted {
							continue
						}
						if err != nil {
							errs <- err
						}
						break
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Errorf("a concurrent update failed: %v", err)
		}
		got, err := f.store.GetAccount(ctx, id)
		must(t, err)
		if want := start.MaxActiveKeys + writers*perWriter; got.MaxActiveKeys != want {
			t.Fatalf("max active keys %d after %d guarded increments of %d: updates were lost", got.MaxActiveKeys, writers*perWriter, start.MaxActiveKeys)
		}
	})
	t.Run("an update records no change", func(t *testing.T) {
		// Neither a name, nor a quota, nor the defaults (which only a new
		// key is given) changes the verdict of a key.
		sink := f.follow(t)
		last, err := f.store.LastChange(ctx)
		must(t, err)
		_, err = f.store.UpdateAccount(ctx, f.actor, latchkey.AccountUpdate{ID: id,
			Paths: []string{"metadata.name", "spec.max_active_keys", "spec.default_key_permissions"}, Account: values})
		must(t, err)
		if got := sink.take(); len(got) != 0 {
			t.Errorf("the follower got %+v", got)
		}
		if now, err := f.store.LastChange(ctx); err != nil || now != last {
			t.Errorf("the change log moved from %d to %d (%v)", last, now, err)
		}
	})
	t.Run("another account is untouched", func(t *testing.T) {
		before := f.accountWrites(t, f.operator.ID)
		_, err := f.store.UpdateAccount(ctx, f.actor, latchkey.AccountUpdate{ID: id, Paths: []string{"metadata.name"}, Account: latchkey.Account{Metadata: latchkey.Metadata{Name: "acme again"}}})
		must(t, err)
		f.wantNothingWritten(t, "an update of another account", before)
	})
}

// testSuspendAccount: a suspension marks the account, reaches every key
// of it through GetCredential, is recorded and fed to followers before the
// call returns, and is audited with its reason; suspending again, the
// operator account, or an unknown account writes nothing.
func testSuspendAccount(t *testing.T, open Opener) {
	f := newFixture(t, open)
	ctx := t.Context()
	op := f.operatorActor
	op.RequestID = "req-suspend"
	key := f.issue(t, "k")
	revoked := f.issue(t, "revoked")
	_, err := f.store.RevokeKey(ctx, f.actor, f.account.ID, revoked.ID)
	must(t, err)
	other, otherSystem, err := f.store.CreateAccount(ctx, f.operatorActor, NewAccount("globex"))
	must(t, err)
	opKeyID := f.operatorKeyID(t)
	sink := f.follow(t)

	before := f.accountWrites(t, f.account.ID)
	otherBefore := f.accountWrites(t, other.ID)
	start := time.Now().Add(-time.Second)
	suspended, err := f.store.SuspendAccount(ctx, op, f.account.ID, "unpaid invoice")
	must(t, err)
	// Taken at once: what the follower holds when the call returns.
	followed := sink.take()

	t.Run("the account is suspended with the time and reason", func(t *testing.T) {
		if !suspended.Suspended() || suspended.SuspendReason != "unpaid invoice" {
			t.Fatalf("SuspendAccount = %+v", suspended)
		}
		if suspended.SuspendTime.Before(start) || suspended.SuspendTime.After(time.Now().Add(time.Second)) {
			t.Errorf("suspend time %v is not the call's", suspended.SuspendTime)
		}
		if suspended.ETag == before.account.ETag {
			t.Error("the etag did not change")
		}
		if suspended.UpdateTime.Before(before.account.UpdateTime) {
			t.Errorf("update time %v went back from %v", suspended.UpdateTime, before.account.UpdateTime)
		}
		want := before.account
		want.ETag, want.UpdateTime = suspended.ETag, suspended.UpdateTime
		want.SuspendTime, want.SuspendReason = suspended.SuspendTime, suspended.SuspendReason
		wantSameAccount(t, suspended, want)
		got, err := f.store.GetAccount(ctx, f.account.ID)
		must(t, err)
		wantSameAccount(t, got, suspended)
	})
	t.Run("every key of the account reports it, and no other", func(t *testing.T) {
		wantSuspended(t, f.store, true, f.system.ID, key.ID, revoked.ID)
		wantSuspended(t, f.store, false, otherSystem.ID, opKeyID)
		// A key issued while the account is suspended is suspended too.
		late := f.issue(t, "issued while suspended")
		wantSuspended(t, f.store, true, late.ID)
	})
	t.Run("followers have the change before the call returns", func(t *testing.T) {
		wantAccountChange(t, "followed", followed, latchkey.ChangeAccountSuspended, f.account.ID, before.change)
	})
	t.Run("the log holds the change", func(t *testing.T) {
		got, err := f.store.ReadChanges(ctx, before.change, 10)
		must(t, err)
		wantAccountChange(t, "read back", got, latchkey.ChangeAccountSuspended, f.account.ID, before.change)
	})
	t.Run("the audit event keeps the reason and the actor", func(t *testing.T) {
		events := accountEvents(t, f.store, f.account.ID, f.account.ID)
		var suspends []latchkey.AuditEvent
		for _, e := range events {
			if e.Action == latchkey.ActionAccountSuspend {
				suspends = append(suspends, e)
			}
		}
		if len(suspends) != 1 {
			t.Fatalf("%d %s events: %+v", len(suspends), latchkey.ActionAccountSuspend, events)
		}
		wantEvent(t, suspends[0], latchkey.ActionAccountSuspend, suspended, op, "unpaid invoice")
	})
	t.Run("suspending again returns the account and writes nothing", func(t *testing.T) {
		sink.take()
		again := f.accountWrites(t, f.account.ID)
		got, err := f.store.SuspendAccount(ctx, op, f.account.ID, "another reason")
		must(t, err)
		// The first suspension stands, with its time and reason.
		wantSameAccount(t, got, again.account)
		f.wantNothingWritten(t, "a second suspension", again)
		if c := sink.take(); len(c) != 0 {
			t.Errorf("the follower got %+v", c)
		}
	})
	t.Run("another account is untouched", func(t *testing.T) {
		got := f.accountWrites(t, other.ID)
		wantSameAccount(t, got.account, otherBefore.account)
		if got.events != otherBefore.events {
			t.Errorf("suspending acme wrote %d audit events in globex", got.events-otherBefore.events)
		}
	})
	t.Run("an update keeps the suspension", func(t *testing.T) {
		var seen latchkey.Account
		up, err := f.store.UpdateAccount(ctx, op, latchkey.AccountUpdate{ID: f.account.ID, Paths: []string{"spec.max_active_keys"},
			Account: latchkey.Account{MaxActiveKeys: 3, SuspendReason: "overwritten"},
			Guard:   func(_ context.Context, current latchkey.Account) error { seen = current; return nil }})
		must(t, err)
		if !seen.Suspended() || seen.SuspendReason != "unpaid invoice" {
			t.Errorf("the guard saw %+v, not the suspension", seen)
		}
		got, err := f.store.GetAccount(ctx, f.account.ID)
		must(t, err)
		if !got.Suspended() || got.SuspendReason != "unpaid invoice" || !up.Suspended() {
			t.Fatalf("after an update: %+v", got)
		}
		wantSameTime(t, "suspend time", got.SuspendTime, suspended.SuspendTime)
		wantSuspended(t, f.store, true, key.ID)
	})
	t.Run("the operator account cannot be suspended and nothing is written", func(t *testing.T) {
		sink.take()
		opBefore := f.accountWrites(t, f.operator.ID)
		_, err := f.store.SuspendAccount(ctx, op, f.operator.ID, "by mistake")
		wantCode(t, err, latchkey.CodeFailedPrecondition)
		f.wantNothingWritten(t, "suspending the operator", opBefore)
		if c := sink.take(); len(c) != 0 {
			t.Errorf("the follower got %+v", c)
		}
		wantSuspended(t, f.store, false, opKeyID)
	})
	t.Run("an unknown account is not found", func(t *testing.T) {
		last, err := f.store.LastChange(ctx)
		must(t, err)
		unknown := latchkey.NewID(latchkey.PrefixAccount)
		_, err = f.store.SuspendAccount(ctx, op, unknown, "r")
		wantCode(t, err, latchkey.CodeNotFound)
		_, err = f.store.RestoreAccount(ctx, op, unknown, "r")
		wantCode(t, err, latchkey.CodeNotFound)
		if n := len(accountEvents(t, f.store, unknown, "")); n != 0 {
			t.Errorf("%d audit events about an unknown account", n)
		}
		if now, err := f.store.LastChange(ctx); err != nil || now != last {
			t.Errorf("the change log moved from %d to %d (%v)", last, now, err)
		}
	})
}

// testRestoreAccount: a restore clears the suspension, is recorded and
// audited with its reason, and finds the account's keys, profiles and
// grants as the suspension left them: nothing was deleted, and a revoked
// key stays revoked. Restoring an active account writes nothing.
func testRestoreAccount(t *testing.T, open Opener) {
	f := newFixture(t, open)
	ctx := t.Context()
	op := f.operatorActor
	op.RequestID = "req-restore"
	ws := f.workspace(t, "billing")
	key := f.issue(t, "k", func(in *latchkey.NewAPIKey) { in.InitialWorkspaceIDs = []string{ws.ID} })
	revokedBefore := f.issue(t, "revoked before")
	_, err := f.store.RevokeKey(ctx, f.actor, f.account.ID, revokedBefore.ID)
	must(t, err)
	revokedDuring := f.issue(t, "revoked during")
	user, err := f.store.CreateProfile(ctx, f.actor, latchkey.Profile{
		Metadata: latchkey.Metadata{AccountID: f.account.ID, Name: "ada"}, Type: latchkey.ProfileTypeUser, Email: "ada@example.com",
	})
	must(t, err)
	must(t, f.store.GrantWorkspace(ctx, f.actor, latchkey.Grant{AccountID: f.account.ID, ProfileID: user.ID, WorkspaceID: ws.ID, Target: latchkey.Bare{ID: user.ID}}))

	type snapshot struct {
		keys     map[string]latchkey.APIKey
		grants   map[string][]string
		profiles []latchkey.Profile
		counts   counts
	}
	keyIDs := []string{f.system.ID, key.ID, revokedBefore.ID, revokedDuring.ID}
	profileIDs := []string{f.system.ProfileID, key.ProfileID, user.ID}
	snap := func() snapshot {
		t.Helper()
		s := snapshot{keys: map[string]latchkey.APIKey{}, grants: map[string][]string{}, counts: f.counts(t)}
		for _, id := range keyIDs {
			k, err := f.store.GetKey(ctx, f.account.ID, id)
			must(t, err)
			s.keys[id] = k
		}
		for _, id := range profileIDs {
			for _, w := range collect(t, func(tok string) (latchkey.Page[latchkey.Workspace], error) {
				return f.store.ListProfileWorkspaces(ctx, latchkey.GrantQuery{AccountID: f.account.ID, ProfileID: id, Page: latchkey.PageRequest{Size: latchkey.MaxPageSize, Token: tok}})
			}) {
				s.grants[id] = append(s.grants[id], w.ID+" "+w.ETag)
			}
		}
		s.profiles = collect(t, func(tok string) (latchkey.Page[latchkey.Profile], error) {
			return f.store.ListProfiles(ctx, latchkey.ProfileQuery{AccountID: f.account.ID, Page: latchkey.PageRequest{Size: latchkey.MaxPageSize, Token: tok}})
		})
		return s
	}
	// wantSame compares the keys, grants and profiles, but not the audit
	// events, which suspend and restore add to.
	wantSame := func(t *testing.T, got, want snapshot) {
		t.Helper()
		for _, id := range keyIDs {
			wantSameKey(t, got.keys[id], want.keys[id])
		}
		for _, id := range profileIDs {
			if !slices.Equal(got.grants[id], want.grants[id]) {
				t.Errorf("profile %s's workspaces %v, were %v", id, got.grants[id], want.grants[id])
			}
		}
		if len(got.profiles) != len(want.profiles) {
			t.Fatalf("%d profiles, were %d", len(got.profiles), len(want.profiles))
		}
		for i := range got.profiles {
			g, w := got.profiles[i], want.profiles[i]
			if g.ID != w.ID || g.ETag != w.ETag || g.Name != w.Name || !slices.Equal(g.Permissions, w.Permissions) {
				t.Errorf("profile %+v, was %+v", g, w)
			}
		}
		if got.counts.keys != want.counts.keys || got.counts.profiles != want.counts.profiles {
			t.Errorf("counts %+v, were %+v", got.counts, want.counts)
		}
	}

	active := snap()
	suspended, err := f.store.SuspendAccount(ctx, op, f.account.ID, "audit pending")
	must(t, err)
	atSuspend := snap()
	_, err = f.store.RevokeKey(ctx, f.operatorActor, f.account.ID, revokedDuring.ID)
	must(t, err)
	during := snap()
	sink := f.follow(t)
	before := f.accountWrites(t, f.account.ID)
	restored, err := f.store.RestoreAccount(ctx, op, f.account.ID, "audit passed")
	must(t, err)
	followed := sink.take()
	after := snap()

	t.Run("the suspension is cleared", func(t *testing.T) {
		if restored.Suspended() || !restored.SuspendTime.IsZero() || restored.SuspendReason != "" {
			t.Fatalf("RestoreAccount = %+v", restored)
		}
		if restored.ETag == suspended.ETag {
			t.Error("the etag did not change")
		}
		if restored.UpdateTime.Before(suspended.UpdateTime) {
			t.Errorf("update time %v went back from %v", restored.UpdateTime, suspended.UpdateTime)
		}
		want := suspended
		want.ETag, want.UpdateTime, want.SuspendTime, want.SuspendReason = restored.ETag, restored.UpdateTime, time.Time{}, ""
		wantSameAccount(t, restored, want)
		got, err := f.store.GetAccount(ctx, f.account.ID)
		must(t, err)
		wantSameAccount(t, got, restored)
		wantSuspended(t, f.store, false, keyIDs...)
	})
	t.Run("followers have the change before the call returns", func(t *testing.T) {
		wantAccountChange(t, "followed", followed, latchkey.ChangeAccountRestored, f.account.ID, before.change)
	})
	t.Run("the log holds the change", func(t *testing.T) {
		got, err := f.store.ReadChanges(ctx, before.change, 10)
		must(t, err)
		wantAccountChange(t, "read back", got, latchkey.ChangeAccountRestored, f.account.ID, before.change)
	})
	t.Run("the audit event keeps the reason, and the suspension's its own", func(t *testing.T) {
		e := wantOneNewEvent(t, f.store, f.account.ID, before.events)
		wantEvent(t, e, latchkey.ActionAccountRestore, restored, op, "audit passed")
		var suspends int
		for _, e := range accountEvents(t, f.store, f.account.ID, f.account.ID) {
			if e.Action == latchkey.ActionAccountSuspend {
				suspends++
				wantEvent(t, e, latchkey.ActionAccountSuspend, suspended, op, "audit pending")
			}
		}
		if suspends != 1 {
			t.Errorf("%d suspend events after the restore, want the one", suspends)
		}
	})
	t.Run("nothing was deleted or changed", func(t *testing.T) {
		wantSame(t, atSuspend, active) // the suspension
		wantSame(t, after, during)     // the restore
	})
	t.Run("a revoked key stays revoked", func(t *testing.T) {
		for _, id := range []string{revokedBefore.ID, revokedDuring.ID} {
			k, err := f.store.GetKey(ctx, f.account.ID, id)
			must(t, err)
			if k.State(time.Now()) != latchkey.KeyStateRevoked {
				t.Errorf("key %s is %v after the restore", id, k.State(time.Now()))
			}
			cred, err := f.store.GetCredential(ctx, id)
			must(t, err)
			if cred.Key.RevokeTime.IsZero() {
				t.Errorf("key %s's credential lost its revocation", id)
			}
		}
		for _, id := range []string{f.system.ID, key.ID} {
			k, err := f.store.GetKey(ctx, f.account.ID, id)
			must(t, err)
			if k.State(time.Now()) != latchkey.KeyStateActive {
				t.Errorf("key %s is %v after the restore, was active", id, k.State(time.Now()))
			}
		}
		ok, err := f.store.WorkspaceAccess(ctx, f.account.ID, key.ProfileID, ws.ID)
		must(t, err)
		if !ok {
			t.Error("the key lost its workspace")
		}
	})
	t.Run("restoring an active account returns it and writes nothing", func(t *testing.T) {
		sink.take()
		for _, id := range []string{f.account.ID, f.operator.ID} {
			again := f.accountWrites(t, id)
			got, err := f.store.RestoreAccount(ctx, op, id, "again")
			must(t, err)
			wantSameAccount(t, got, again.account)
			f.wantNothingWritten(t, "restoring an active account", again)
		}
		if c := sink.take(); len(c) != 0 {
			t.Errorf("the follower got %+v", c)
		}
	})
	t.Run("a restored account can be suspended again", func(t *testing.T) {
		last, err := f.store.LastChange(ctx)
		must(t, err)
		again, err := f.store.SuspendAccount(ctx, op, f.account.ID, "second time")
		must(t, err)
		if !again.Suspended() || again.SuspendReason != "second time" {
			t.Fatalf("SuspendAccount = %+v", again)
		}
		wantAccountChange(t, "followed", sink.take(), latchkey.ChangeAccountSuspended, f.account.ID, last)
		wantSuspended(t, f.store, true, key.ID)
	})
}

// testConcurrentSuspensions: operators who suspend (or restore) the same
// account at once write one change and one audit event between them, and
// every one of them is answered with the suspended (or restored) account.
func testConcurrentSuspensions(t *testing.T, open Opener) {
	f := newFixture(t, open)
	ctx := t.Context()
	const callers = 16
	for _, step := range []struct {
		name    string
		call    func(latchkey.Actor, string) (latchkey.Account, error)
		kind    latchkey.ChangeKind
		action  string
		suspend bool
	}{
		{"suspend", func(a latchkey.Actor, r string) (latchkey.Account, error) {
			return f.store.SuspendAccount(ctx, a, f.account.ID, r)
		}, latchkey.ChangeAccountSuspended, latchkey.ActionAccountSuspend, true},
		{"restore", func(a latchkey.Actor, r string) (latchkey.Account, error) {
			return f.store.RestoreAccount(ctx, a, f.account.ID, r)
		}, latchkey.ChangeAccountRestored, latchkey.ActionAccountRestore, false},
	} {
		t.Run(step.name, func(t *testing.T) {
			before := f.accountWrites(t, f.account.ID)
			var wg sync.WaitGroup
			results := make(chan latchkey.Account, callers)
			errs := make(chan error, callers)
			for i := range callers {
				wg.Go(func() {
					actor := f.operatorActor
					actor.RequestID = fmt.Sprintf("req-%s-%d", step.name, i)
					a, err := step.call(actor, fmt.Sprintf("reason %d", i))
					if err != nil {
						errs <- err
						return
					}
					results <- a
				})
			}
			wg.Wait()
			close(errs)
			close(results)
			for err := range errs {
				t.Errorf("a concurrent %s failed: %v", step.name, err)
			}
			stored, err := f.store.GetAccount(ctx, f.account.ID)
			must(t, err)
			for a := range results {
				if a.Suspended() != step.suspend {
					t.Errorf("a caller got %+v", a)
				}
				wantSameAccount(t, a, stored)
			}
			changes, err := f.store.ReadChanges(ctx, before.change, 100)
			must(t, err)
			wantAccountChange(t, step.name, changes, step.kind, f.account.ID, before.change)
			e := wantOneNewEvent(t, f.store, f.account.ID, before.events)
			if e.Action != step.action {
				t.Fatalf("audit event %+v, want %s", e, step.action)
			}
			if step.suspend && stored.SuspendReason != e.Reason {
				t.Errorf("the account is suspended for %q, the audit event says %q", stored.SuspendReason, e.Reason)
			}
		})
	}
}
