package pepper_test

import (
	"bytes"
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
