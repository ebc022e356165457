package server_test

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"

	"google.golang.org/protobuf/proto"

	latchkeyv1 "github.com/latchkey/latchkey/gen/latchkey/v1"
	"github.com/latchkey/latchkey/server"
	"github.com/latchkey/latchkey/telemetry"
)

// BenchmarkVerifyTelemetry is the server's CPU per Verify, from the HTTP
// request to the response, with no network: a cached key verified over
// the Connect protocol by a server without telemetry and by one with
// metrics on (no tracer), as `latchkey serve --metrics-addr` runs, and a
// second server without telemetry. They run one after the other in one
// process: rerun the binary many times and compare within each run, so
// that a ratio holds on a busy machine where loopback throughput does not.
func BenchmarkVerifyTelemetry(b *testing.B) {
	metrics, err := telemetry.NewMetrics("bench")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { metrics.Shutdown(b.Context()) })
	for _, c := range []struct {
		name string
		cfg  server.Config
	}{
		{"off", server.Config{}},
		{"metrics", server.Config{MeterProvider: metrics.Provider}},
		// A second server without telemetry, after: the noise (A/A), and
		// what the first case owes to running first.
		{"off-again", server.Config{}},
	} {
		srv, operator := newServer(b, c.cfg)
		srv.SetServing(true)
		mux := http.NewServeMux()
		srv.Mount(mux)
		body, err := proto.Marshal(&latchkeyv1.VerifyRequest{Token: operator})
		if err != nil {
			b.Fatal(err)
		}
		call := func() int {
			req := httptest.NewRequest(http.MethodPost, "/latchkey.v1.AuthService/Verify", bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/proto")
			req.Header.Set("Authorization", "Bearer "+operator)
			rec := httptest.NewRecorder()
			mux.ServeHTTP(rec, req)
			return rec.Code
		}
		if code := call(); code != http.StatusOK { // and the key is cached
			b.Fatalf("%s: Verify answered %d", c.name, code)
		}
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if call() != http.StatusOK {
					b.Fatal("Verify failed")
				}
			}
		})
	}
}
