package main

import (
	"runtime"
	"strings"
	"testing"
)

func TestVersion(t *testing.T) {
	var out strings.Builder
	if err := version(&out); err != nil {
		t.Fatal(err)
	}
	if got := out.String(); !strings.HasPrefix(got, "latchkey ") || !strings.Contains(got, runtime.Version()) {
		t.Fatalf("latchkey version printed %q", got)
	}
}
