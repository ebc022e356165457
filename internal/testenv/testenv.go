// Package testenv decides what a test does when something it needs from
// outside Go is missing: a PostgreSQL server, nginx and Caddy, a tmpfs
// mount. On a developer's machine it skips, so that `go test ./...` passes
// with Go alone; in CI it fails, because a guarantee whose test skipped in
// CI was never checked.
package testenv

import (
	"os"
	"testing"
)

// InCI reports whether the tests run in CI: the CI variable is set, as CI
// services set it and .ci/run does.
func InCI() bool { return os.Getenv("CI") != "" }

// Skip skips t, saying why, or fails it with the same words in CI.
func Skip(t testing.TB, why string) {
	t.Helper()
	if InCI() {
		t.Fatalf("in CI (CI=%s) this test must run, not skip: %s", os.Getenv("CI"), why)
	}
	t.Skip(why)
}
