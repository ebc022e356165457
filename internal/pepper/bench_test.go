package pepper_test

import (
	"strings"
	"testing"

	"github.com/latchkey/latchkey/internal/pepper"
	"github.com/latchkey/latchkey/token"
)

func BenchmarkHasherVerify(b *testing.B) {
	h, err := pepper.NewHasher(testPepper, 1)
	if err != nil {
		b.Fatal(err)
	}
	// A secret of a token's length, as Verify sees it.
	secret := strings.Repeat("7", token.SecretLength)
	stored := h.Hash(secret)
	b.ReportAllocs()
	for b.Loop() {
		if !h.Verify(secret, stored) {
			b.Fatal("no match")
		}
	}
}
