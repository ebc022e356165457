package main

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect/v2"
	"connectrpc.com/connect/v2/connecthttp"

	"github.com/latchkey/latchkey"
	latchkeyv1 "github.com/latchkey/latchkey/gen/latchkey/v1"
	"github.com/latchkey/latchkey/gen/latchkey/v1/latchkeyv1connect"
	"github.com/latchkey/latchkey/token"
)

// scrape reads the Prometheus exposition at url into series → value.
func scrape(t *testing.T, url string) map[string]float64 {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: HTTP %d", url, res.StatusCode)
	}
	out := map[string]float64{}
	lines := bufio.NewScanner(res.Body)
	for lines.Scan() {
		line := lines.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("bad line %q", line)
		}
		out[line[:i]] = v
	}
	return out
}

// metricsAddr finds the metrics listener's address in the server's log.
func metricsAddr(t *testing.T, srv started) string {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		for _, line := range strings.Split(srv.stderr.String(), "\n") {
			var entry struct{ Msg, Addr string }
			if json.Unmarshal([]byte(line), &entry) == nil && entry.Msg == "serving metrics" {
				return entry.Addr
			}
		}
	}
	t.Fatalf("no metrics listener in the log:\n%s", srv.stderr)
	return ""
}

// TestMetrics scrapes /metrics before and after a scripted scenario and
// checks that each counter moved by what the scenario did.
func TestMetrics(t *testing.T) {
	srv := startServe(t, "--db", filepath.Join(t.TempDir(), "latchkey.db"), "--pepper-file", filepath.Join(t.TempDir(), "pepper"),
		"--metrics-addr", "127.0.0.1:0")
	defer srv.stop()
	url := "http://" + metricsAddr(t, srv) + "/metrics"
	tenant := tenantOf(t, srv)
	keys := latchkeyv1connect.NewApiKeyServiceClient(clientWithKey(srv.addr, tenant))
	auth := latchkeyv1connect.NewAuthServiceClient(clientWithKey(srv.addr, tenant))
	issued, err := keys.Issue(t.Context(), &latchkeyv1.IssueRequest{Metadata: &latchkeyv1.AccountResourceMetadata{Name: "m"}})
	if err != nil {
		t.Fatal(err)
	}
	tok := issued.GetApiKey().GetSpec().GetToken()
	made, err := token.New("lk", latchkey.EnvironmentLive, latchkey.NewID(latchkey.PrefixAPIKey))
	if err != nil {
		t.Fatal(err)
	}
	unknown := made.Reveal() // well formed, names no key: a miss

	before := scrape(t, url)
	verify := func(token string) {
		t.Helper()
		if _, err := auth.Verify(t.Context(), &latchkeyv1.VerifyRequest{Token: token}); err != nil {
			t.Fatal(err)
		}
	}
	verify(tok) // a miss, then valid
	verify(tok) // a hit, valid
	verify(unknown)
	if _, err := keys.Revoke(t.Context(), &latchkeyv1.RevokeRequest{Id: issued.GetApiKey().GetMetadata().GetId()}); err != nil {
		t.Fatal(err)
	}
	verify(tok) // a miss after the invalidation, revoked
	// A call refused before any verification, over gRPC: an RPC error,
	// no outcome.
	protocols := new(http.Protocols)
	protocols.SetUnencryptedHTTP2(true)
	anonymous := latchkeyv1connect.NewAuthServiceClient(connect.NewClient(connecthttp.NewTransport(
		&http.Client{Transport: &http.Transport{Protocols: protocols}}, "http://"+srv.addr, connecthttp.WithGRPC())))
	if _, err := anonymous.Verify(t.Context(), &latchkeyv1.VerifyRequest{Token: tok}); connect.CodeOf(err) != connect.CodeUnauthenticated {
		t.Fatalf("Verify without a credential: %v", err)
	}
	after := scrape(t, url)

	// Every call's caller (the tenant's system key, cached by the Issue
	// before) is verified too: 5 calls, 5 hits and 5 valid outcomes.
	const verifyRPC = `rpc_server_call_duration_seconds_count{rpc_method="latchkey.v1.AuthService/Verify",rpc_response_status_code="OK",rpc_system_name="connectrpc"}`
	for series, want := range map[string]float64{
		`latchkey_verify_outcomes_total{outcome="valid"}`:                                     5 + 2,
		`latchkey_verify_outcomes_total{outcome="not_found"}`:                                 1,
		`latchkey_verify_outcomes_total{outcome="revoked"}`:                                   1,
		`latchkey_verify_cache_lookups_total{result="hit"}`:                                   5 + 1,
		`latchkey_verify_cache_lookups_total{result="miss"}`:                                  3,
		`latchkey_verify_cache_invalidations_total{scope="key",source="write"}`:               1,
		`latchkey_store_call_duration_seconds_count{code="ok",method="RevokeKey"}`:            1,
		`latchkey_store_call_duration_seconds_count{code="ok",method="GetCredential"}`:        2,
		`latchkey_store_call_duration_seconds_count{code="not_found",method="GetCredential"}`: 1,
		verifyRPC: 4,
		`rpc_server_call_duration_seconds_count{error_type="UNAUTHENTICATED",rpc_method="latchkey.v1.AuthService/Verify",rpc_response_status_code="UNAUTHENTICATED",rpc_system_name="grpc"}`: 1,
	} {
		if got := after[series] - before[series]; got != want {
			t.Errorf("%s moved by %v, want %v", series, got, want)
		}
	}
	// The revocation is one write, so at least one group commit; its change
	// reached the cache through the feed.
	for _, series := range []string{`latchkey_store_commit_batch_count`, `latchkey_change_feed_lag_seconds_count`} {
		if after[series]-before[series] < 1 {
			t.Errorf("%s moved by %v, want at least 1", series, after[series]-before[series])
		}
	}
	for _, series := range []string{`latchkey_store_pool_connections{state="idle"}`, `latchkey_last_used_queued`} {
		if _, ok := after[series]; !ok {
			t.Errorf("no %s", series)
		}
	}
	if after[`latchkey_verify_cache_keys`] < 1 {
		t.Errorf("the cache size gauge says %v", after[`latchkey_verify_cache_keys`])
	}
	var build bool
	for series := range after {
		build = build || strings.HasPrefix(series, "latchkey_build_info{")
	}
	if !build {
		t.Error("no latchkey_build_info")
	}
	t.Run("the Grafana dashboard queries only metrics the server exports", func(t *testing.T) {
		b, err := os.ReadFile(filepath.Join("..", "..", "deploy", "grafana", "latchkey.json"))
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
		exported := map[string]bool{}
		for series := range after {
			name, _, _ := strings.Cut(series, "{")
			exported[name] = true
		}
		metricName := regexp.MustCompile(`\b(latchkey|rpc|go|process)_[a-z0-9_]+\b`)
		// Label matchers and grouping clauses name labels, not metrics.
		labels := regexp.MustCompile(`\{[^}]*\}|\b(by|without)\s*\([^)]*\)`)
		queries := 0
		for _, p := range dashboard.Panels {
			for _, target := range p.Targets {
				queries++
				for _, name := range metricName.FindAllString(labels.ReplaceAllString(target.Expr, ""), -1) {
					if !exported[name] {
						t.Errorf("panel %q queries %s, which the server does not export", p.Title, name)
					}
				}
			}
		}
		if queries < 8 {
			t.Errorf("the dashboard has %d queries", queries)
		}
	})
	t.Run("the API port does not serve metrics", func(t *testing.T) {
		res, err := http.Get("http://" + srv.addr + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode == http.StatusOK {
			t.Fatal("/metrics answered on the API port")
		}
	})
}

// TestPprof: Go's profiles are served on the metrics listener with
// --pprof only, never on the API port, and --pprof needs --metrics-addr.
func TestPprof(t *testing.T) {
	get := func(url string) int {
		t.Helper()
		res, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	for _, on := range []bool{false, true} {
		args := []string{"--db", filepath.Join(t.TempDir(), "latchkey.db"), "--metrics-addr", "127.0.0.1:0"}
		want := http.StatusNotFound
		if on {
			args, want = append(args, "--pprof"), http.StatusOK
		}
		srv := startServe(t, args...)
		metrics := "http://" + metricsAddr(t, srv)
		if code := get(metrics + "/debug/pprof/"); code != want {
			t.Errorf("--pprof %v: GET /debug/pprof/ on the metrics listener answered %d, want %d", on, code, want)
		}
		if on {
			if code := get(metrics + "/debug/pprof/heap"); code != http.StatusOK {
				t.Errorf("GET /debug/pprof/heap answered %d", code)
			}
		}
		if code := get("http://" + srv.addr + "/debug/pprof/"); code == http.StatusOK {
			t.Errorf("--pprof %v: the API port serves /debug/pprof/", on)
		}
		if err := srv.stop(); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := parseConfig([]string{"--pprof"}, func(string) string { return "" }, io.Discard); err == nil {
		t.Error("--pprof without --metrics-addr was accepted")
	}
}
