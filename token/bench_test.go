package token_test

import (
	"testing"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/token"
)

// The token benchmarks measure the per-verification work that precedes any
// lookup. Run: go test ./token -run XXX -bench . -benchmem

func BenchmarkParse(b *testing.B) {
	tok, err := token.New("lk", latchkey.EnvironmentLive, latchkey.NewID(latchkey.PrefixAPIKey))
	if err != nil {
		b.Fatal(err)
	}
	raw := tok.Reveal()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := token.Parse(raw); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseMalformed(b *testing.B) {
	raw := []byte(newRaw(b))
	raw[len(raw)-1] ^= 1 // a bad checksum
	s := string(raw)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := token.Parse(s); err == nil {
			b.Fatal("accepted")
		}
	}
}

func BenchmarkNew(b *testing.B) {
	id := latchkey.NewID(latchkey.PrefixAPIKey)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := token.New("lk", latchkey.EnvironmentLive, id); err != nil {
			b.Fatal(err)
		}
	}
}

func newRaw(b *testing.B) string {
	tok, err := token.New("lk", latchkey.EnvironmentLive, latchkey.NewID(latchkey.PrefixAPIKey))
	if err != nil {
		b.Fatal(err)
	}
	return tok.Reveal()
}
