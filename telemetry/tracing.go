package telemetry

import (
	"context"
	"log/slog"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.26.0"
	"go.opentelemetry.io/otel/trace"
)

// Tracing is a tracer provider that exports spans over OTLP.
type Tracing struct {
	// Provider makes the tracers spans are started from.
	Provider trace.TracerProvider
	sdk      *sdktrace.TracerProvider
}

// TracingConfigured reports whether the standard OTLP variables ask for
// traces: OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT.
func TracingConfigured(getenv func(string) string) bool {
	return getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != ""
}

// NewTracing exports spans over OTLP/HTTP, configured by the standard
// OTEL_EXPORTER_OTLP_* variables, in batches. W3C trace context is read
// from and written to calls.
func NewTracing(ctx context.Context, version string) (*Tracing, error) {
	exporter, err := otlptracehttp.New(ctx)
	if err != nil {
		return nil, err
	}
	return NewTracingWith(sdktrace.WithBatcher(exporter), version), nil
}

// NewTracingWith is NewTracing with another span processor, such as a
// test's in-memory exporter.
func NewTracingWith(processor sdktrace.TracerProviderOption, version string) *Tracing {
	res := resource.NewSchemaless(semconv.ServiceName("latchkey"), semconv.ServiceVersion(version))
	provider := sdktrace.NewTracerProvider(processor, sdktrace.WithResource(res))
	otel.SetTextMapPropagator(propagation.TraceContext{})
	return &Tracing{Provider: provider, sdk: provider}
}

// Shutdown flushes and stops the exporter.
func (t *Tracing) Shutdown(ctx context.Context) error { return t.sdk.Shutdown(ctx) }

// WithTraceIDs wraps a log handler so that every line logged with the
// context of a traced call carries its trace_id and span_id.
func WithTraceIDs(h slog.Handler) slog.Handler { return traceHandler{h} }

type traceHandler struct{ slog.Handler }

func (h traceHandler) Handle(ctx context.Context, r slog.Record) error {
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		r.AddAttrs(slog.String("trace_id", sc.TraceID().String()), slog.String("span_id", sc.SpanID().String()))
	}
	return h.Handler.Handle(ctx, r)
}

func (h traceHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return traceHandler{h.Handler.WithAttrs(attrs)}
}

func (h traceHandler) WithGroup(name string) slog.Handler {
	return traceHandler{h.Handler.WithGroup(name)}
}
