package storetest

import (
	"bytes"
	"crypto/rand"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/latchkey/latchkey"
)

// secretUnder returns a random secret hash made, as it says, with pepper id.
func secretUnder(id int) latchkey.SecretHash {
	h := make([]byte, 32)
	rand.Read(h)
	return latchkey.SecretHash{Hash: h, PepperVersion: id}
}

// usage returns PepperUsage by pepper id.
func usage(t *testing.T, s latchkey.Store) map[int]latchkey.PepperUse {
	t.Helper()
	uses, err := s.PepperUsage(t.Context())
	must(t, err)
	byID := map[int]latchkey.PepperUse{}
	for i, u := range uses {
		if i > 0 && uses[i-1].ID >= u.ID {
			t.Fatalf("PepperUsage is not ordered by id: %+v", uses)
		}
		byID[u.ID] = u
	}
	return byID
}

func testPepperCheck(t *testing.T, open Opener) {
	s := open(t)
	ctx := t.Context()
	_, err := s.CheckPeppers(ctx, map[int]string{1: "one"})
	must(t, err)
	// With no key yet new peppers replace the recorded ones.
	_, err = s.CheckPeppers(ctx, map[int]string{1: "two"})
	must(t, err)
	_, _, err = s.Bootstrap(ctx, NewAccount("operator")) // its key: pepper 1
	must(t, err)
	_, err = s.CheckPeppers(ctx, map[int]string{1: "two"})
	must(t, err)
	_, err = s.CheckPeppers(ctx, map[int]string{1: "three"})
	wantCode(t, err, latchkey.CodeFailedPrecondition)
	if err == nil || !strings.Contains(err.Error(), "pepper 1") {
		t.Fatalf("a wrong pepper 1: %v, want the error to name it", err)
	}
	// A server without pepper 1 cannot verify the operator key.
	_, err = s.CheckPeppers(ctx, map[int]string{2: "b"})
	wantCode(t, err, latchkey.CodeFailedPrecondition)
	if err == nil || !strings.Contains(err.Error(), "pepper 1") {
		t.Fatalf("a server lacking pepper 1: %v, want the error to name it", err)
	}
	// A server that adds pepper 2 is recorded; a later one with another
	// pepper 2 is refused.
	retired, err := s.CheckPeppers(ctx, map[int]string{1: "two", 2: "b"})
	must(t, err)
	if len(retired) != 0 {
		t.Fatalf("retired %v, want none", retired)
	}
	_, err = s.CheckPeppers(ctx, map[int]string{1: "two", 2: "not b"})
	wantCode(t, err, latchkey.CodeFailedPrecondition)
	u := usage(t, s)
	if !u[1].Recorded || !u[2].Recorded || u[1].Keys != 1 || u[2].Keys != 0 || u[1].Retired {
		t.Fatalf("usage %+v, want pepper 1 with the operator key and pepper 2 recorded", u)
	}
}

func testPepperUsage(t *testing.T, open Opener) {
	f := newFixture(t, open)
	ctx := t.Context()
	before := usage(t, f.store)
	f.issue(t, "under 3", func(in *latchkey.NewAPIKey) { in.Secret = secretUnder(3) })
	revoked := f.issue(t, "revoked under 3", func(in *latchkey.NewAPIKey) { in.Secret = secretUnder(3) })
	_, err := f.store.RevokeKey(ctx, f.actor, f.account.ID, revoked.ID)
	must(t, err)
	rotated := f.issue(t, "rotated from 3 to 4", func(in *latchkey.NewAPIKey) { in.Secret = secretUnder(3) })
	_, err = f.store.RotateKey(ctx, f.actor, latchkey.KeyRotation{AccountID: f.account.ID, ID: rotated.ID,
		Secret: secretUnder(4), TokenPrefix: "lk_live_01ROTATE", PreviousExpire: time.Now().Add(time.Hour)})
	must(t, err)
	ended := f.issue(t, "rotated from 5 without grace", func(in *latchkey.NewAPIKey) { in.Secret = secretUnder(5) })
	_, err = f.store.RotateKey(ctx, f.actor, latchkey.KeyRotation{AccountID: f.account.ID, ID: ended.ID,
		Secret: secretUnder(4), TokenPrefix: "lk_live_01ROTATE"})
	must(t, err)

	// An expired key counts: an update can lift its expiry.
	f.issue(t, "expired under 6", func(in *latchkey.NewAPIKey) {
		in.Secret = secretUnder(6)
		in.Key.ExpireTime = time.Now().Add(-time.Hour)
	})

	after := usage(t, f.store)
	for id, want := range map[int]latchkey.PepperUse{
		1: {ID: 1, Keys: before[1].Keys},
		3: {ID: 3, Keys: 1, Previous: 1},
		4: {ID: 4, Keys: 2},
		6: {ID: 6, Keys: 1},
	} {
		got := after[id]
		if got.Keys != want.Keys || got.Previous != want.Previous || got.Retired {
			t.Errorf("pepper %d: %+v, want %d keys and %d in grace", id, got, want.Keys, want.Previous)
		}
	}
	if _, ok := after[5]; ok {
		t.Errorf("pepper 5, used by no key that can still verify, is listed: %+v", after[5])
	}
	if !after[3].InUse() || (latchkey.PepperUse{}).InUse() {
		t.Error("InUse does not count keys")
	}
}

func testPepperRetire(t *testing.T, open Opener) {
	f := newFixture(t, open)
	ctx := t.Context()
	_, err := f.store.CheckPeppers(ctx, map[int]string{1: "one", 2: "two"})
	must(t, err)
	old := f.issue(t, "never verified since the rotation", func(in *latchkey.NewAPIKey) { in.Secret = secretUnder(1) })
	f.issue(t, "under 2", func(in *latchkey.NewAPIKey) { in.Secret = secretUnder(2) })

	stranded, err := f.store.RetirePepper(ctx, 1, false)
	wantCode(t, err, latchkey.CodeFailedPrecondition)
	if len(stranded) != 0 || usage(t, f.store)[1].Retired {
		t.Fatal("a refused retirement wrote something")
	}
	_, err = f.store.CheckPeppers(ctx, map[int]string{2: "two"})
	wantCode(t, err, latchkey.CodeFailedPrecondition)

	stranded, err = f.store.RetirePepper(ctx, 1, true)
	must(t, err)
	// Pepper 1 hashes the fixture's system keys too.
	if !slices.Contains(stranded, old.ID) || !slices.Contains(stranded, f.system.ID) || slices.IsSorted(stranded) == false {
		t.Fatalf("stranded %v, want the keys of pepper 1 (with %s), sorted", stranded, old.ID)
	}
	if u := usage(t, f.store)[1]; !u.Retired || u.Keys != int64(len(stranded)) {
		t.Fatalf("pepper 1 after a forced retirement: %+v", u)
	}
	// Servers without pepper 1 now start; one that still holds it hears
	// that it was retired.
	_, err = f.store.CheckPeppers(ctx, map[int]string{2: "two"})
	must(t, err)
	retired, err := f.store.CheckPeppers(ctx, map[int]string{1: "one", 2: "two"})
	must(t, err)
	if !slices.Equal(retired, []int{1}) {
		t.Fatalf("retired %v, want [1]", retired)
	}
	// Retiring twice is harmless, and retiring an unused pepper needs no force.
	_, err = f.store.RetirePepper(ctx, 1, true)
	must(t, err)
	stranded, err = f.store.RetirePepper(ctx, 9, false)
	must(t, err)
	if len(stranded) != 0 || !usage(t, f.store)[9].Retired {
		t.Fatalf("retiring an unused pepper: %v", stranded)
	}
}

func testRehash(t *testing.T, open Opener) {
	f := newFixture(t, open)
	ctx := t.Context()
	in := f.newKey("k", func(in *latchkey.NewAPIKey) { in.Secret = secretUnder(1) })
	key, err := f.store.IssueKey(ctx, f.actor, in)
	must(t, err)
	credential := func() latchkey.Credential {
		t.Helper()
		c, err := f.store.GetCredential(ctx, key.ID)
		must(t, err)
		return c
	}
	before := credential()
	rehashed := secretUnder(2)
	must(t, f.store.RehashKeys(ctx, []latchkey.Rehash{
		{KeyID: key.ID, Old: in.Secret, New: rehashed},
		{KeyID: "key_01NOSUCHKEY00000000000000", Old: in.Secret, New: secretUnder(2)},
	}))
	c := credential()
	if c.Current.PepperVersion != 2 || !bytes.Equal(c.Current.Hash, rehashed.Hash) {
		t.Fatalf("current after the rehash: %+v", c.Current)
	}
	if c.Key.ETag != before.Key.ETag || !c.Key.UpdateTime.Equal(before.Key.UpdateTime) {
		t.Fatal("a rehash changed the key's etag or update time: nothing a user sees changed")
	}
	// A second replica's rehash of the same secret finds the old hash gone.
	must(t, f.store.RehashKeys(ctx, []latchkey.Rehash{{KeyID: key.ID, Old: in.Secret, New: secretUnder(2)}}))
	if c := credential(); !bytes.Equal(c.Current.Hash, rehashed.Hash) {
		t.Fatal("a stale rehash overwrote the key's hash")
	}

	// A rotation with grace between the verification and the flush: the
	// old secret is now the previous one, and only that slot is rehashed.
	next := secretUnder(2)
	_, err = f.store.RotateKey(ctx, f.actor, latchkey.KeyRotation{AccountID: f.account.ID, ID: key.ID,
		Secret: next, TokenPrefix: "lk_live_01ROTATE", PreviousExpire: time.Now().Add(time.Hour)})
	must(t, err)
	again := secretUnder(3)
	must(t, f.store.RehashKeys(ctx, []latchkey.Rehash{{KeyID: key.ID, Old: rehashed, New: again}}))
	c = credential()
	if !bytes.Equal(c.Current.Hash, next.Hash) || c.Previous == nil || !bytes.Equal(c.Previous.Hash, again.Hash) || c.Previous.PepperVersion != 3 {
		t.Fatalf("after rehashing the previous secret: current %+v previous %+v", c.Current, c.Previous)
	}
	// A rehash never moves a key back to an older pepper (a replica whose
	// newer pepper is still staged would otherwise undo the others').
	must(t, f.store.RehashKeys(ctx, []latchkey.Rehash{{KeyID: key.ID, Old: next, New: secretUnder(1)}}))
	if c := credential(); !bytes.Equal(c.Current.Hash, next.Hash) {
		t.Fatal("a rehash moved a key to an older pepper")
	}
	if !c.PreviousExpire.Equal(credential().PreviousExpire) {
		t.Fatal("a rehash changed the grace period")
	}
	must(t, f.store.RehashKeys(ctx, nil))
}
