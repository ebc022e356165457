package token_test

import (
	"testing"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/token"
)

// FuzzParse checks that Parse never panics and that whatever it accepts
// prints back to exactly the input.
func FuzzParse(f *testing.F) {
	tok, err := token.New("lk", latchkey.EnvironmentLive, latchkey.NewID(latchkey.PrefixAPIKey))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(tok.Reveal())
	f.Add("lk_live_")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		parsed, err := token.Parse(s)
		if err != nil {
			return
		}
		if parsed.Reveal() != s {
			t.Fatalf("Parse(%q) accepted, but reveals %q", s, parsed.Reveal())
		}
	})
}
