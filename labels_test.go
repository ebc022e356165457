package latchkey_test

import (
	"maps"
	"strings"
	"testing"

	"github.com/latchkey/latchkey"
)

func TestParseLabelSelector(t *testing.T) {
	got, err := latchkey.ParseLabelSelector("env=prod,team=ai")
	if err != nil || !maps.Equal(got, map[string]string{"env": "prod", "team": "ai"}) {
		t.Fatalf("got %v, %v", got, err)
	}
	if got, err := latchkey.ParseLabelSelector(""); err != nil || got != nil {
		t.Fatalf("empty selector: got %v, %v", got, err)
	}
	for _, bad := range []string{"env", "env=", "=prod", "Env=prod", "env=prod,", "a=b,a=c", "env==prod"} {
		_, err := latchkey.ParseLabelSelector(bad)
		if latchkey.ErrorCode(err) != latchkey.CodeInvalid {
			t.Errorf("ParseLabelSelector(%q) error = %v, want invalid", bad, err)
		}
	}
}

// FuzzParseLabelSelector checks that the parser never panics, accepts only
// valid pairs, and reads back what it accepted when printed again.
func FuzzParseLabelSelector(f *testing.F) {
	for _, s := range []string{"", "env=prod", "env=prod,team=ai", "a=b,a=c", "=", "env=prod,", "x=" + strings.Repeat("a", 64)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sel, err := latchkey.ParseLabelSelector(s)
		if err != nil {
			return
		}
		var pairs []string
		for k, v := range sel {
			if !latchkey.ValidLabel(k) || !latchkey.ValidLabel(v) {
				t.Fatalf("ParseLabelSelector(%q) accepted %q=%q", s, k, v)
			}
			pairs = append(pairs, k+"="+v)
		}
		again, err := latchkey.ParseLabelSelector(strings.Join(pairs, ","))
		if err != nil || !maps.Equal(again, sel) {
			t.Fatalf("%q parsed to %v, printed and parsed again to %v, %v", s, sel, again, err)
		}
	})
}
