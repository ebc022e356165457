package server_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"connectrpc.com/connect/v2"
	"connectrpc.com/connect/v2/connecthttp"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	latchkeyv1 "github.com/latchkey/latchkey/gen/latchkey/v1"
	"github.com/latchkey/latchkey/gen/latchkey/v1/latchkeyv1connect"
	"github.com/latchkey/latchkey/server"
	"github.com/latchkey/latchkey/telemetry"
)

// TestTracing: with a tracer provider, every RPC is a span, linked to the
// caller's W3C trace context (callers are not trusted to pick the trace a
// server's span belongs to: otelconnect's default), and the call's log
// line carries the span's trace id. The spans go to an in-memory exporter.
func TestTracing(t *testing.T) {
	spans := tracetest.NewInMemoryExporter()
	tracing := telemetry.NewTracingWith(sdktrace.WithSyncer(spans), "test")
	defer tracing.Shutdown(context.Background())
	var logs syncBuffer
	srv, operator := newServer(t, server.Config{
		TracerProvider: tracing.Provider,
		Logger:         slog.New(telemetry.WithTraceIDs(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))),
	})
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()

	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	withHeaders := func(next connect.ClientFunc) connect.ClientFunc {
		return func(ctx context.Context, spec connect.Spec) (connect.ClientStream, error) {
			if info, ok := connect.CallInfoForClientContext(ctx); ok {
				info.RequestHeader().Set("Authorization", "Bearer "+operator)
				info.RequestHeader().Set("Traceparent", "00-"+traceID+"-00f067aa0ba902b7-01")
			}
			return next(ctx, spec)
		}
	}
	auth := latchkeyv1connect.NewAuthServiceClient(connect.NewClient(connecthttp.NewTransport(http.DefaultClient, ts.URL), withHeaders))
	if _, err := auth.WhoAmI(t.Context(), &latchkeyv1.WhoAmIRequest{}); err != nil {
		t.Fatal(err)
	}
	var spanTrace string
	for _, s := range spans.GetSpans() {
		if s.Name != "latchkey.v1.AuthService/WhoAmI" {
			continue
		}
		spanTrace = s.SpanContext.TraceID().String()
		linked := false
		for _, l := range s.Links {
			linked = linked || l.SpanContext.TraceID().String() == traceID
		}
		if !linked {
			t.Errorf("the span has no link to the caller's trace %s", traceID)
		}
	}
	if spanTrace == "" {
		t.Fatalf("no span for WhoAmI among %d", len(spans.GetSpans()))
	}
	var line string
	for _, l := range strings.Split(logs.String(), "\n") {
		if strings.Contains(l, `"msg":"rpc"`) && strings.Contains(l, "WhoAmI") {
			line = l
		}
	}
	if !strings.Contains(line, `"trace_id":"`+spanTrace+`"`) {
		t.Fatalf("the call's log line has no trace id: %s", line)
	}
}
