package pepper_test

import (
	"bytes"
	"slices"
	"testing"

	"github.com/latchkey/latchkey/internal/pepper"
)

var testPepper = []byte("0123456789abcdef0123456789abcdef")

func TestHasherVerifies(t *testing.T) {
	h, err := pepper.NewHasher(testPepper, 1)
	if err != nil {
		t.Fatal(err)
	}
	stored := h.Hash("secret-one")
	if len(stored.Hash) != 32 || stored.PepperVersion != 1 {
		t.Fatalf("hash = %x version %d", stored.Hash, stored.PepperVersion)
	}
	if !h.Verify("secret-one", stored) {
		t.Fatal("the right secret does not verify")
	}
	if h.Verify("secret-two", stored) {
		t.Fatal("a wrong secret verifies")
	}
	other, _ := pepper.NewHasher(bytes.Repeat([]byte{7}, 32), 1)
	if other.Verify("secret-one", stored) {
		t.Fatal("a hash verifies under another pepper")
	}
	if other.Fingerprint() == h.Fingerprint() {
		t.Fatal("two peppers share a fingerprint")
	}
	v2, _ := pepper.NewHasher(testPepper, 2)
	if v2.Verify("secret-one", stored) {
		t.Fatal("a hash of pepper version 1 verifies under version 2")
	}
}

func TestNewHasherRefusesShortPepper(t *testing.T) {
	if _, err := pepper.NewHasher(testPepper[:31], 1); err == nil {
		t.Fatal("31-byte pepper accepted")
	}
	if _, err := pepper.NewHasher(testPepper, 0); err == nil {
		t.Fatal("version 0 accepted")
	}
}

func TestHasherOfSeveralPeppersChecksEachHashWithItsOwn(t *testing.T) {
	one, _ := pepper.New(1, testPepper)
	two, _ := pepper.New(2, bytes.Repeat([]byte{2}, 32))
	old, err := pepper.NewHasherOf([]pepper.Pepper{one})
	if err != nil {
		t.Fatal(err)
	}
	both, err := pepper.NewHasherOf([]pepper.Pepper{two, one})
	if err != nil {
		t.Fatal(err)
	}
	if both.Current() != 2 || !slices.Equal(both.IDs(), []int{1, 2}) || !both.Holds(1) || both.Holds(3) {
		t.Fatalf("current %d, ids %v", both.Current(), both.IDs())
	}
	underOne := old.Hash("s")
	if !both.Verify("s", underOne) {
		t.Fatal("a hash of pepper 1 does not verify once pepper 2 is added")
	}
	underTwo := both.Hash("s")
	if underTwo.PepperVersion != 2 || !both.Verify("s", underTwo) || old.Verify("s", underTwo) {
		t.Fatalf("new hashes are not made with the current pepper: %+v", underTwo)
	}
	if both.Fingerprints()[1] != old.Fingerprint() || both.Fingerprint() == old.Fingerprint() {
		t.Fatal("fingerprints are not each pepper's")
	}
	if bytes.Equal(both.DeriveKey("x"), old.DeriveKey("x")) {
		t.Fatal("derived keys do not follow the current pepper")
	}
	retired, err := both.Without([]int{1})
	if err != nil {
		t.Fatal(err)
	}
	if retired.Verify("s", underOne) {
		t.Fatal("a hash of a left-out pepper verifies")
	}
	if _, err := both.Without([]int{2}); err == nil {
		t.Fatal("the current pepper was left out")
	}
	if _, err := pepper.NewHasherOf([]pepper.Pepper{one, one}); err == nil {
		t.Fatal("a pepper given twice was accepted")
	}
	if _, err := pepper.NewHasherOf(nil); err == nil {
		t.Fatal("a hasher of no pepper was made")
	}
}
