package token_test

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/token"
)

func newToken(t *testing.T, env latchkey.Environment) token.Token {
	t.Helper()
	tok, err := token.New("lk", env, latchkey.NewID(latchkey.PrefixAPIKey))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestParseRoundTrip(t *testing.T) {
	for _, env := range []latchkey.Environment{latchkey.EnvironmentLive, latchkey.EnvironmentTest} {
		tok := newToken(t, env)
		raw := tok.Reveal()
		want := "lk_" + env.String() + "_"
		if !strings.HasPrefix(raw, want) {
			t.Fatalf("token %q does not start with %q", raw, want)
		}
		got, err := token.Parse(raw)
		if err != nil {
			t.Fatalf("Parse(%q): %v", raw, err)
		}
		if got.Prefix != "lk" || got.Environment != env || got.KeyID() != tok.KeyID() || got.Secret() != tok.Secret() {
			t.Fatalf("Parse round trip: got %+v want %+v", got, tok)
		}
		if got.Reveal() != raw {
			t.Fatalf("Reveal after Parse = %q, want %q", got.Reveal(), raw)
		}
		if len(tok.Secret()) != token.SecretLength {
			t.Fatalf("secret has %d characters", len(tok.Secret()))
		}
		if tok.DisplayPrefix() != raw[:16] {
			t.Fatalf("DisplayPrefix = %q", tok.DisplayPrefix())
		}
	}
}

func TestSecretsDiffer(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		s := newToken(t, latchkey.EnvironmentLive).Secret()
		if seen[s] {
			t.Fatalf("secret %q made twice", s)
		}
		seen[s] = true
	}
}

func TestParseRefusesMalformed(t *testing.T) {
	raw := newToken(t, latchkey.EnvironmentLive).Reveal()
	flip := func(i int) string {
		b := []byte(raw)
		if b[i] == 'a' {
			b[i] = 'b'
		} else {
			b[i] = 'a'
		}
		return string(b)
	}
	cases := map[string]string{
		"empty":               "",
		"truncated":           raw[:len(raw)-1],
		"extra character":     raw + "x",
		"changed secret":      flip(len(raw) - 10),
		"changed checksum":    flip(len(raw) - 1),
		"changed key id":      flip(10),
		"other environment":   strings.Replace(raw, "_live_", "_prod_", 1),
		"uppercase prefix":    "LK" + raw[2:],
		"spaces":              " " + raw[1:],
		"just a uuid":         "6f1c0a7e-1a2b-4c3d-8e9f-0a1b2c3d4e5f",
		"non-ascii":           strings.Replace(raw, "lk", "lé", 1),
		"separator in secret": raw[:len(raw)-20] + "_" + raw[len(raw)-19:],
	}
	for name, s := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := token.Parse(s); err == nil {
				t.Fatalf("Parse(%q) accepted a malformed token", s)
			}
		})
	}
}

func TestPrintingRedactsTheSecret(t *testing.T) {
	tok := newToken(t, latchkey.EnvironmentLive)
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("token", "tok", tok)
	outputs := []string{
		fmt.Sprint(tok), fmt.Sprintf("%v %+v %#v %s %q", tok, tok, tok, tok, tok),
		fmt.Sprintf("%+v", struct{ T token.Token }{tok}), tok.String(), logged.String(),
	}
	for _, out := range outputs {
		if strings.Contains(out, tok.Secret()) {
			t.Fatalf("printed token shows its secret: %s", out)
		}
	}
}

func TestValidPrefix(t *testing.T) {
	for _, p := range []string{"lk", "acme", "a1b2c3d4"} {
		if err := token.ValidPrefix(p); err != nil {
			t.Errorf("ValidPrefix(%q) = %v", p, err)
		}
	}
	for _, p := range []string{"", "l", "1k", "LK", "l_k", "toolongpx", "lk-"} {
		if err := token.ValidPrefix(p); err == nil {
			t.Errorf("ValidPrefix(%q) accepted", p)
		}
	}
}

func TestNewRefusesBadInput(t *testing.T) {
	id := latchkey.NewID(latchkey.PrefixAPIKey)
	if _, err := token.New("LK", latchkey.EnvironmentLive, id); err == nil {
		t.Error("bad prefix accepted")
	}
	if _, err := token.New("lk", latchkey.EnvironmentUnspecified, id); err == nil {
		t.Error("unspecified environment accepted")
	}
	if _, err := token.New("lk", latchkey.EnvironmentLive, latchkey.NewID(latchkey.PrefixWorkspace)); err == nil {
		t.Error("workspace id accepted as key id")
	}
}
