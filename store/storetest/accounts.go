package storetest

import (
	"testing"

	"github.com/latchkey/latchkey"
)

func testAccounts(t *testing.T, open Opener) {
	s := open(t)
	ctx := t.Context()
	has, err := s.HasKeys(ctx)
	must(t, err)
	if has {
		t.Fatal("an empty store has keys")
	}
	op, opKey, err := s.Bootstrap(ctx, NewAccount("operator"))
	must(t, err)
	if !op.Operator || !opKey.System || opKey.AccountID != op.ID {
		t.Fatalf("bootstrap made %+v with key %+v", op, opKey)
	}
	_, _, err = s.Bootstrap(ctx, NewAccount("again"))
	wantCode(t, err, latchkey.CodeAlreadyExists)
	has, err = s.HasKeys(ctx)
	must(t, err)
	if !has {
		t.Fatal("HasKeys is false after bootstrap")
	}

	actor := latchkey.Actor{Profile: latchkey.Bare{ID: opKey.ProfileID, Name: "system"}, RequestID: "req-1"}
	in := NewAccount("acme")
	in.MaxActiveKeys = 7
	acct, system, err := s.CreateAccount(ctx, actor, in)
	must(t, err)
	if acct.Operator || acct.MaxActiveKeys != 7 || acct.Name != "acme" || acct.ETag == "" || acct.CreateTime.IsZero() {
		t.Fatalf("CreateAccount = %+v", acct)
	}
	if !system.System || system.AccountID != acct.ID || system.ID != in.SystemKey.Key.ID {
		t.Fatalf("system key = %+v", system)
	}
	prof, err := s.GetProfile(ctx, acct.ID, system.ProfileID)
	must(t, err)
	if prof.Type != latchkey.ProfileTypeSystem {
		t.Fatalf("the system key acts through a %v profile", prof.Type)
	}
	got, err := s.GetAccount(ctx, acct.ID)
	must(t, err)
	if got.ID != acct.ID || got.Name != "acme" || got.MaxActiveKeys != 7 || got.ETag != acct.ETag {
		t.Fatalf("GetAccount = %+v, want %+v", got, acct)
	}
	_, err = s.GetAccount(ctx, latchkey.NewID(latchkey.PrefixAccount))
	wantCode(t, err, latchkey.CodeNotFound)

	page, err := s.ListAccounts(ctx, latchkey.PageRequest{Order: latchkey.OrderCreateTimeAsc})
	must(t, err)
	if len(page.Items) != 2 || page.Items[0].ID != op.ID || page.Items[1].ID != acct.ID || page.NextToken != "" {
		t.Fatalf("ListAccounts = %+v", page)
	}
}

func testProfiles(t *testing.T, open Opener) {
	f := newFixture(t, open)
	ctx := t.Context()
	user := latchkey.Profile{
		Metadata: latchkey.Metadata{AccountID: f.account.ID, Name: "ada", Labels: map[string]string{"team": "core"}},
		Type:     latchkey.ProfileTypeUser, Email: "ada@example.com", DisplayName: "Ada",
	}
	created, err := f.store.CreateProfile(ctx, f.actor, user)
	must(t, err)
	if created.ID == "" || created.ETag == "" || created.Email != "ada@example.com" {
		t.Fatalf("CreateProfile = %+v", created)
	}
	got, err := f.store.GetProfile(ctx, f.account.ID, created.ID)
	must(t, err)
	if got.Name != "ada" || got.DisplayName != "Ada" || got.Type != latchkey.ProfileTypeUser || got.Labels["team"] != "core" {
		t.Fatalf("GetProfile = %+v", got)
	}

	t.Run("email is unique in the account", func(t *testing.T) {
		before := f.counts(t)
		dup := user
		dup.Name = "ada again"
		_, err := f.store.CreateProfile(ctx, f.actor, dup)
		wantCode(t, err, latchkey.CodeAlreadyExists)
		if after := f.counts(t); after != before {
			t.Fatalf("a refused profile changed the store: %+v -> %+v", before, after)
		}
		other := dup
		other.AccountID = f.operator.ID
		_, err = f.store.CreateProfile(ctx, f.actor, other)
		must(t, err)
	})
	t.Run("another account's profile is not found", func(t *testing.T) {
		_, err := f.store.GetProfile(ctx, f.operator.ID, created.ID)
		wantCode(t, err, latchkey.CodeNotFound)
	})
	t.Run("lists by type", func(t *testing.T) {
		f.issue(t, "k1")
		users, err := f.store.ListProfiles(ctx, latchkey.ProfileQuery{AccountID: f.account.ID, Type: latchkey.ProfileTypeUser})
		must(t, err)
		if len(users.Items) != 1 || users.Items[0].ID != created.ID {
			t.Fatalf("users = %+v", users.Items)
		}
		keys, err := f.store.ListProfiles(ctx, latchkey.ProfileQuery{AccountID: f.account.ID, Type: latchkey.ProfileTypeAPIKey})
		must(t, err)
		if len(keys.Items) != 1 || keys.Items[0].Name != "k1" {
			t.Fatalf("API key profiles = %+v", keys.Items)
		}
		all, err := f.store.ListProfiles(ctx, latchkey.ProfileQuery{AccountID: f.account.ID})
		must(t, err)
		if len(all.Items) != 3 { // system, ada, k1
			t.Fatalf("every profile: %d", len(all.Items))
		}
	})
}
