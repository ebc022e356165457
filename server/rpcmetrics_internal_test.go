package server

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"connectrpc.com/connect/v2"
	"connectrpc.com/connect/v2/connecthttp"
	"connectrpc.com/otelconnect"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	latchkeyv1 "github.com/latchkey/latchkey/gen/latchkey/v1"
	"github.com/latchkey/latchkey/gen/latchkey/v1/latchkeyv1connect"
	"github.com/latchkey/latchkey/telemetry"
)

// TestRPCTelemetryChoice: with metrics and no tracer, the RPC durations
// are rpcDurations' (no otelconnect in the call's context); with a tracer,
// otelconnect's, metrics or not; with neither, there is no interceptor.
func TestRPCTelemetryChoice(t *testing.T) {
	metrics, err := telemetry.NewMetrics("test")
	if err != nil {
		t.Fatal(err)
	}
	defer metrics.Shutdown(context.Background())
	tracer := tracenoop.NewTracerProvider()
	for _, c := range []struct {
		name        string
		srv         *Server
		otelconnect bool
	}{
		{"metrics alone", &Server{meters: metrics.Provider}, false},
		{"metrics and traces", &Server{meters: metrics.Provider, tracer: tracer}, true},
		{"traces alone", &Server{tracer: tracer}, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			ic, err := c.srv.rpcTelemetry()
			if err != nil || ic == nil {
				t.Fatalf("rpcTelemetry: %v, %v", ic, err)
			}
			var viaOtelconnect bool
			err = ic(func(ctx context.Context, _ connect.Spec, _ connect.ServerStream) error {
				_, viaOtelconnect = otelconnect.LabelerFromContext(ctx)
				return nil
			})(context.Background(), connect.Spec{Procedure: latchkeyv1connect.AuthServiceVerifyProcedure}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if viaOtelconnect != c.otelconnect {
				t.Errorf("the call went through otelconnect: %v, want %v", viaOtelconnect, c.otelconnect)
			}
		})
	}
	if ic, err := (&Server{}).rpcTelemetry(); ic != nil || err != nil {
		t.Errorf("without meters or tracer: %v, %v", ic, err)
	}
}

// TestRPCAttributes: the cached sets are the ones rpcAttributes builds,
// for every protocol and code, and an unusual protocol or outcome is
// named as otelconnect names it.
func TestRPCAttributes(t *testing.T) {
	metrics, err := telemetry.NewMetrics("test")
	if err != nil {
		t.Fatal(err)
	}
	defer metrics.Shutdown(context.Background())
	d, err := newRPCDurations(metrics.Provider)
	if err != nil {
		t.Fatal(err)
	}
	const procedure = latchkeyv1connect.AuthServiceVerifyProcedure
	set := func(opts []metric.RecordOption) attribute.Set {
		t.Helper()
		if len(opts) != 1 {
			t.Fatalf("%d options", len(opts))
		}
		return metric.NewRecordConfig(opts).Attributes()
	}
	want := func(kvs ...attribute.KeyValue) attribute.Set { return attribute.NewSet(kvs...) }
	method := attribute.String("rpc.method", "latchkey.v1.AuthService/Verify")
	for _, c := range []struct {
		protocol string
		err      error
		want     attribute.Set
	}{
		{connect.ProtocolNameConnect, nil, want(method, attribute.String("rpc.system.name", "connectrpc"), attribute.String("rpc.response.status_code", "OK"))},
		{connect.ProtocolNameGRPC, nil, want(method, attribute.String("rpc.system.name", "grpc"), attribute.String("rpc.response.status_code", "OK"))},
		{connect.ProtocolNameGRPCWeb, connect.NewError(connect.CodeInvalidArgument, "x"), want(method, attribute.String("rpc.system.name", "grpc"),
			attribute.String("rpc.response.status_code", "INVALID_ARGUMENT"), attribute.String("error.type", "INVALID_ARGUMENT"))},
		{connect.ProtocolNameConnect, errors.New("not a connect error"), want(method, attribute.String("rpc.system.name", "connectrpc"),
			attribute.String("rpc.response.status_code", "UNKNOWN"), attribute.String("error.type", "UNKNOWN"))},
		{connect.ProtocolNameConnect, connect.NewError(connect.CodeUnauthenticated, "x"), want(method, attribute.String("rpc.system.name", "connectrpc"),
			attribute.String("rpc.response.status_code", "UNAUTHENTICATED"), attribute.String("error.type", "UNAUTHENTICATED"))},
		{"", nil, want(method, attribute.String("rpc.system.name", ""), attribute.String("rpc.response.status_code", "OK"))},
		{"carrier-pigeon", connect.NewError(connect.CodeUnavailable, "x"), want(method, attribute.String("rpc.system.name", "carrier-pigeon"),
			attribute.String("rpc.response.status_code", "UNAVAILABLE"), attribute.String("error.type", "UNAVAILABLE"))},
		{connect.ProtocolNameConnect, connecthttp.NewNotModifiedError(), want(method, attribute.String("rpc.system.name", "connectrpc"),
			attribute.String("rpc.response.status_code", "OK"), attribute.Int("http.response.status_code", http.StatusNotModified))},
	} {
		got := set(d.options(procedure, c.protocol, c.err))
		if !got.Equals(&c.want) {
			t.Errorf("%s, %v: %v, want %v", c.protocol, c.err, got.Encoded(attribute.DefaultEncoder()), c.want.Encoded(attribute.DefaultEncoder()))
		}
	}
	// Every cached set is what rpcAttributes builds for it.
	for p, protocol := range []string{connect.ProtocolNameGRPC, connect.ProtocolNameConnect} {
		for code := connect.Code(0); code <= connect.CodeUnauthenticated; code++ {
			var err error
			if code != 0 {
				err = connect.NewError(code, "x")
			}
			got, want := set(d.options(procedure, protocol, err)), rpcAttributes(procedure, protocol, err)
			if !got.Equals(&want) {
				t.Errorf("protocol %d, code %v: %v, want %v", p, code, got.Encoded(attribute.DefaultEncoder()), want.Encoded(attribute.DefaultEncoder()))
			}
		}
	}
}

// capturedCall makes one Connect call and returns the context and spec
// its server interceptors saw, for benchmarks of one interceptor alone.
func capturedCall(b *testing.B) (context.Context, connect.Spec) {
	var ctx context.Context
	var spec connect.Spec
	rpc := connect.NewServer(func(next connect.ServerFunc) connect.ServerFunc {
		return func(c context.Context, s connect.Spec, _ connect.ServerStream) error {
			ctx, spec = c, s
			return connect.NewError(connect.CodeUnavailable, "captured")
		}
	})
	latchkeyv1connect.RegisterAuthServiceHandler(rpc, authHandler{})
	mux := http.NewServeMux()
	connecthttp.Mount(mux, rpc)
	ts := httptest.NewServer(mux)
	defer ts.Close()
	client := latchkeyv1connect.NewAuthServiceClient(connect.NewClient(connecthttp.NewTransport(http.DefaultClient, ts.URL)))
	client.Verify(b.Context(), &latchkeyv1.VerifyRequest{Token: "t"})
	if ctx == nil {
		b.Fatal("no call captured")
	}
	return ctx, spec
}

// BenchmarkRPCTelemetry is the cost of the outermost interceptor alone,
// around a handler that does nothing, with metrics on and tracing off:
// otelconnect with the options that might make it cheaper, and
// rpcDurations.
func BenchmarkRPCTelemetry(b *testing.B) {
	ctx, spec := capturedCall(b)
	metrics, err := telemetry.NewMetrics("bench")
	if err != nil {
		b.Fatal(err)
	}
	defer metrics.Shutdown(context.Background())
	otel := func(opts ...otelconnect.Option) connect.ServerInterceptor {
		ic, err := otelconnect.NewServerInterceptor(append([]otelconnect.Option{otelconnect.WithMeterProvider(metrics.Provider)}, opts...)...)
		if err != nil {
			b.Fatal(err)
		}
		return ic
	}
	lean, err := newRPCDurations(metrics.Provider)
	if err != nil {
		b.Fatal(err)
	}
	none := func(next connect.ServerFunc) connect.ServerFunc { return next }
	for _, c := range []struct {
		name string
		ic   connect.ServerInterceptor
	}{
		{"none", none},
		{"otelconnect", otel(otelconnect.WithoutTracing())},
		{"otelconnect/no-op-tracer", otel(otelconnect.WithTracerProvider(tracenoop.NewTracerProvider()))},
		{"otelconnect/keep-all-attribute-filter", otel(otelconnect.WithoutTracing(),
			otelconnect.WithAttributeFilter(func(connect.Spec, attribute.KeyValue) bool { return true }))},
		{"rpcDurations", lean.intercept},
	} {
		for _, outcome := range []error{nil, connect.NewError(connect.CodeUnauthenticated, "no")} {
			name := c.name + "/ok"
			if outcome != nil {
				name = c.name + "/error"
			}
			call := c.ic(func(context.Context, connect.Spec, connect.ServerStream) error { return outcome })
			b.Run(name, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					call(ctx, spec, nil)
				}
			})
		}
	}
}
