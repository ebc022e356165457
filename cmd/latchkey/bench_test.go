package main

import (
	"regexp"
	"strings"
	"testing"
)

// The load tool runs every phase against a real server and reports a row
// for each, with no errors.
func TestBench(t *testing.T) {
	srv := startServe(t, "--db", t.TempDir()+"/latchkey.db")
	defer srv.stop()
	m := operatorLine.FindStringSubmatch(srv.stderr.String())
	if m == nil {
		t.Fatalf("no operator line:\n%s", srv.stderr)
	}
	var out, progress strings.Builder
	err := bench(t.Context(), []string{"--url", "http://" + srv.addr, "--token", m[1], "--clients", "2",
		"--keys", "3", "--duration", "200ms", "--issue-clients", "2", "--issue-duration", "200ms"}, &out, &progress)
	if err != nil {
		t.Fatalf("bench: %v\n%s", err, out.String())
	}
	for _, row := range []string{"grpc +health", "grpc +verify", "grpc +ratio", "connect +health", "connect +verify", "connect +ratio", "grpc +issue"} {
		re := regexp.MustCompile(`(?m)^` + row + ` +[0-9.]+`)
		if !re.MatchString(out.String()) {
			t.Errorf("no %q row in:\n%s", row, out.String())
		}
	}
	errorsColumn := regexp.MustCompile(`(?m)^\w+ +(health|verify|issue) .* (\d+)$`)
	for _, m := range errorsColumn.FindAllStringSubmatch(out.String(), -1) {
		if m[2] != "0" {
			t.Errorf("errors in %q", m[0])
		}
	}
	if !strings.Contains(progress.String(), "grpc verify") {
		t.Error("no progress shown while running")
	}
	if strings.Contains(out.String()+progress.String(), m[1]) {
		t.Error("the bench printed the operator token")
	}
}
