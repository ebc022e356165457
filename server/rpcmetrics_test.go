package server_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect/v2"
	"connectrpc.com/connect/v2/connecthttp"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	latchkeyv1 "github.com/latchkey/latchkey/gen/latchkey/v1"
	"github.com/latchkey/latchkey/server"
	"github.com/latchkey/latchkey/telemetry"
)

const rpcDuration = "rpc_server_call_duration_seconds"

// rpcScript makes the same calls on any server: OK calls over each
// protocol, errors of several codes over Connect and gRPC, and a change
// stream ended by its caller. It returns once every call is recorded.
func rpcScript(t *testing.T, e *env, h http.Handler) {
	t.Helper()
	for _, opts := range [][]connecthttp.Option{nil, {connecthttp.WithGRPC()}, {connecthttp.WithGRPCWeb()}} {
		op, anonymous := e.as(e.operator, opts...), e.as("", opts...)
		if _, err := op.auth.WhoAmI(t.Context(), &latchkeyv1.WhoAmIRequest{}); err != nil {
			t.Fatal(err)
		}
		if _, err := op.auth.Verify(t.Context(), &latchkeyv1.VerifyRequest{Token: "lk_live_not_a_token"}); err != nil {
			t.Fatal(err)
		}
		if _, err := anonymous.auth.Verify(t.Context(), &latchkeyv1.VerifyRequest{Token: "t"}); connect.CodeOf(err) != connect.CodeUnauthenticated {
			t.Fatalf("Verify without a credential: %v", err)
		}
		if _, err := op.accounts.GetAccount(t.Context(), &latchkeyv1.GetAccountRequest{Id: "bad"}); connect.CodeOf(err) != connect.CodeInvalidArgument {
			t.Fatalf("GetAccount of a malformed id: %v", err)
		}
		if _, err := op.accounts.GetAccount(t.Context(), &latchkeyv1.GetAccountRequest{Id: "acct_00000000000000000000000000"}); connect.CodeOf(err) != connect.CodeNotFound {
			t.Fatalf("GetAccount of no account: %v", err)
		}
	}
	for _, opts := range [][]connecthttp.Option{nil, {connecthttp.WithGRPC()}} {
		w := openWatch(t, e.as(e.operator, opts...), nil)
		select {
		case <-w.events: // a heartbeat
		case <-time.After(5 * time.Second):
			t.Fatal("no heartbeat")
		}
		w.cancel()
		<-w.err
	}
	// The server records a stream when its handler has seen the cancel.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		var streams int
		for _, line := range rpcSeries(t, h) {
			if strings.HasPrefix(line, rpcDuration+"_count{") && strings.Contains(line, "WatchKeyChanges") {
				streams++
			}
		}
		if streams == 2 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d change streams recorded", streams)
		}
	}
}

// rpcSeries returns the exposition's lines of the RPC durations, without
// the values that depend on how long calls took: bucket counts and sums.
func rpcSeries(t *testing.T, h http.Handler) []string {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	var out []string
	for _, line := range strings.Split(rec.Body.String(), "\n") {
		switch {
		case strings.HasPrefix(line, "# HELP "+rpcDuration+" "), strings.HasPrefix(line, "# TYPE "+rpcDuration+" "),
			strings.HasPrefix(line, rpcDuration+"_count{"):
			out = append(out, line)
		case strings.HasPrefix(line, rpcDuration+"_bucket{"), strings.HasPrefix(line, rpcDuration+"_sum{"):
			out = append(out, line[:strings.LastIndexByte(line, ' ')])
		}
	}
	return out
}

// TestRPCDurationsAsOtelconnect: with metrics and no tracer the server
// records RPC durations itself rather than through otelconnect (for
// speed), and /metrics must read as it does with otelconnect: the same
// series, labels, buckets and counts, after the same calls. The series
// are also the ones the README's metric table and the Grafana dashboard
// name.
func TestRPCDurationsAsOtelconnect(t *testing.T) {
	run := func(traced bool) []string {
		metrics, err := telemetry.NewMetrics("test")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { metrics.Shutdown(context.Background()) })
		e := newEnvWith(t, nil, func(cfg *server.Config) {
			cfg.MeterProvider = metrics.Provider
			if traced {
				// A tracer provider puts otelconnect in place.
				cfg.TracerProvider = tracenoop.NewTracerProvider()
			}
		})
		rpcScript(t, e, metrics.Handler)
		return rpcSeries(t, metrics.Handler)
	}
	lean, otel := run(false), run(true)
	if !slices.Equal(lean, otel) {
		t.Errorf("/metrics without a tracer:\n%s\nwith otelconnect:\n%s", strings.Join(lean, "\n"), strings.Join(otel, "\n"))
	}

	type series struct {
		name   string
		labels map[string]string
	}
	var all []series
	pair := regexp.MustCompile(`([a-z_]+)="([^"]*)"`)
	for _, line := range lean {
		if strings.HasPrefix(line, "#") {
			continue
		}
		name, rest, _ := strings.Cut(line, "{")
		s := series{name: name, labels: map[string]string{}}
		for _, m := range pair.FindAllStringSubmatch(rest, -1) {
			s.labels[m[1]] = m[2]
		}
		all = append(all, s)
	}
	codes := map[string]bool{}
	for _, s := range all {
		codes[s.labels["rpc_response_status_code"]] = true
	}
	for _, code := range []string{"OK", "UNAUTHENTICATED", "INVALID_ARGUMENT", "NOT_FOUND", "CANCELED"} {
		if !codes[code] {
			t.Errorf("no series of code %s: the script no longer covers it", code)
		}
	}

	t.Run("the README's metric table names the labels", func(t *testing.T) {
		b, err := os.ReadFile(filepath.Join("..", "README.md"))
		if err != nil {
			t.Fatal(err)
		}
		row := regexp.MustCompile("(?m)^\\| `" + rpcDuration + `\{([^}]*)\}` + "`").FindSubmatch(b)
		if row == nil {
			t.Fatalf("no row of %s in the README's metric table", rpcDuration)
		}
		documented := map[string]bool{}
		for _, l := range strings.Split(string(row[1]), ",") {
			documented[strings.TrimSpace(l)] = true
		}
		for _, s := range all {
			for l := range documented {
				if _, ok := s.labels[l]; !ok {
					t.Errorf("%s%v has no %s", s.name, s.labels, l)
				}
			}
			for l := range s.labels {
				// le is the histogram's; error_type repeats the code of
				// an error, as otelconnect records it.
				if !documented[l] && l != "le" && l != "error_type" {
					t.Errorf("%s%v has %s, which the README does not name", s.name, s.labels, l)
				}
			}
		}
	})

	t.Run("the Grafana dashboard's queries select series", func(t *testing.T) {
		b, err := os.ReadFile(filepath.Join("..", "deploy", "grafana", "latchkey.json"))
		if err != nil {
			t.Fatal(err)
		}
		var dashboard struct {
			Panels []struct {
				Title   string
				Targets []struct{ Expr string }
			}
		}
		if err := json.Unmarshal(b, &dashboard); err != nil {
			t.Fatal(err)
		}
		selector := regexp.MustCompile(rpcDuration + `(_[a-z]+)?(\{([^}]*)\})?`)
		matcher := regexp.MustCompile(`([a-z_]+)\s*(=|!=)\s*"([^"]*)"`)
		grouping := regexp.MustCompile(`\bby\s*\(([^)]*)\)`)
		queries := 0
		for _, p := range dashboard.Panels {
			for _, target := range p.Targets {
				for _, sel := range selector.FindAllStringSubmatch(target.Expr, -1) {
					queries++
					name := rpcDuration + sel[1]
					var selected int
					for _, s := range all {
						if s.name != name {
							continue
						}
						ok := true
						for _, m := range matcher.FindAllStringSubmatch(sel[3], -1) {
							ok = ok && (s.labels[m[1]] == m[3]) == (m[2] == "=")
						}
						if ok {
							selected++
						}
					}
					// A != matcher selects nothing when its value is
					// never there: check that it is.
					for _, m := range matcher.FindAllStringSubmatch(sel[3], -1) {
						if m[2] == "!=" && !slices.ContainsFunc(all, func(s series) bool { return s.labels[m[1]] == m[3] }) {
							t.Errorf("panel %q: no series has %s=%q", p.Title, m[1], m[3])
						}
					}
					if selected == 0 {
						t.Errorf("panel %q: %s selects no series", p.Title, sel[0])
					}
				}
				for _, g := range grouping.FindAllStringSubmatch(target.Expr, -1) {
					if !strings.Contains(target.Expr, rpcDuration) {
						continue
					}
					for _, l := range strings.Split(g[1], ",") {
						l = strings.TrimSpace(l)
						if !slices.ContainsFunc(all, func(s series) bool { _, ok := s.labels[l]; return ok }) {
							t.Errorf("panel %q groups by %s, which no series has", p.Title, l)
						}
					}
				}
			}
		}
		if queries < 4 {
			t.Errorf("the dashboard queries %s %d times", rpcDuration, queries)
		}
	})
}
