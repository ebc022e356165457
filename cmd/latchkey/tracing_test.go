package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"

	latchkeyv1 "github.com/latchkey/latchkey/gen/latchkey/v1"
	"github.com/latchkey/latchkey/gen/latchkey/v1/latchkeyv1connect"
)

// TestTracesOverOTLP: with OTEL_EXPORTER_OTLP_ENDPOINT set, serve exports
// its spans over OTLP/HTTP, flushed at the latest when it stops. The
// receiving end is a stand-in for a collector that keeps what it is sent:
// no OpenTelemetry Collector can be installed here.
func TestTracesOverOTLP(t *testing.T) {
	var mu sync.Mutex
	var posts, bytes int
	collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.Method == http.MethodPost && r.URL.Path == "/v1/traces" && r.Header.Get("Content-Type") == "application/x-protobuf" {
			mu.Lock()
			posts++
			bytes += len(body)
			mu.Unlock()
		}
	}))
	defer collector.Close()
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", collector.URL)
	srv := startServe(t, "--db", filepath.Join(t.TempDir(), "latchkey.db"), "--pepper-file", filepath.Join(t.TempDir(), "pepper"))
	tenant := tenantOf(t, srv)
	auth := latchkeyv1connect.NewAuthServiceClient(clientWithKey(srv.addr, tenant))
	if _, err := auth.WhoAmI(t.Context(), &latchkeyv1.WhoAmIRequest{}); err != nil {
		t.Fatal(err)
	}
	if err := srv.stop(); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if posts == 0 || bytes == 0 {
		t.Fatalf("%d OTLP posts with %d bytes of spans, want some", posts, bytes)
	}
}
