package main

import (
	"io"
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

// With a baseline, the load tool measures Verify on both servers in the
// same run and reports the ratio of their throughputs.
func TestBenchAgainstABaseline(t *testing.T) {
	operatorOf := func(srv started) string {
		t.Helper()
		m := operatorLine.FindStringSubmatch(srv.stderr.String())
		if m == nil {
			t.Fatalf("no operator line:\n%s", srv.stderr)
		}
		return m[1]
	}
	target := startServe(t, "--db", t.TempDir()+"/latchkey.db")
	defer target.stop()
	baseline := startServe(t, "--db", t.TempDir()+"/latchkey.db")
	defer baseline.stop()
	var out, progress strings.Builder
	err := bench(t.Context(), []string{"--url", "http://" + target.addr, "--token", operatorOf(target),
		"--baseline-url", "http://" + baseline.addr, "--baseline-token", operatorOf(baseline),
		"--clients", "2", "--keys", "3", "--duration", "400ms", "--protocols", "grpc", "--issue-duration", "0"}, &out, &progress)
	if err != nil {
		t.Fatalf("bench: %v\n%s", err, out.String())
	}
	for _, row := range []string{`grpc +verify +[0-9]+ .* 0$`, `grpc +baseline +[0-9]+ .* 0$`, `grpc +ratio +[0-9.]+x of the baseline's Verify throughput`} {
		if !regexp.MustCompile(`(?m)^` + row).MatchString(out.String()) {
			t.Errorf("no row matching %q in:\n%s", row, out.String())
		}
	}
	for _, tok := range []string{operatorOf(target), operatorOf(baseline)} {
		if strings.Contains(out.String()+progress.String(), tok) {
			t.Error("the bench printed an operator token")
		}
	}
	t.Run("a baseline without its operator key is refused", func(t *testing.T) {
		err := bench(t.Context(), []string{"--url", "http://" + target.addr, "--token", operatorOf(target), "--baseline-url", "http://" + baseline.addr}, io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), "--baseline-token") {
			t.Fatalf("bench = %v, want an error naming --baseline-token", err)
		}
	})
}
