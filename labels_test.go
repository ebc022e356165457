package latchkey_test

import (
	"maps"
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
