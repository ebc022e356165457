package server

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"time"

	"connectrpc.com/connect/v2"
	"connectrpc.com/connect/v2/connecthttp"
	"connectrpc.com/otelconnect"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/semconv/v1.43.0/rpcconv"
)

// rpcTelemetry returns the outermost interceptor, the one that measures
// every RPC (and traces it), or nil when there is neither a meter nor a
// tracer provider. Outermost, so that a duration or a span covers the whole
// call, its code is the one the caller got, and every log line of the call
// can carry the trace id.
//
// This is the one place that chooses between otelconnect and rpcDurations.
// With a tracer provider, otelconnect records the spans and the durations
// both: traces need it. With metrics alone, rpcDurations records the same
// histogram otelconnect would (the same name, unit, buckets, attribute keys
// and values, so /metrics reads the same, which TestRPCDurationsAsOtelconnect
// checks), without what otelconnect does per call even when tracing is off:
// a span started on a no-op tracer, the propagator's look at the headers,
// two context values, a call state of a kilobyte, and an attribute set
// sorted and hashed anew: 1.7 µs and 6 allocations a call, against 0.3 µs
// and none (BenchmarkRPCTelemetry), which was most of what metrics cost
// Verify's throughput (README, "Performance"). None of otelconnect's
// options removes that work: WithoutTracing is the no-op tracer, peer
// attributes are off already, and an attribute filter adds a call per
// attribute. When otelconnect is upgraded, TestRPCDurationsAsOtelconnect
// says whether its series still match.
func (s *Server) rpcTelemetry() (connect.ServerInterceptor, error) {
	switch {
	case s.tracer != nil:
		opts := []otelconnect.Option{otelconnect.WithTracerProvider(s.tracer), otelconnect.WithoutMetrics()}
		if s.meters != nil {
			opts[1] = otelconnect.WithMeterProvider(s.meters)
		}
		return otelconnect.NewServerInterceptor(opts...)
	case s.meters != nil:
		d, err := newRPCDurations(s.meters)
		if err != nil {
			return nil, err
		}
		return d.intercept, nil
	}
	return nil, nil
}

// What otelconnect (v0.12) names its meter, so that a reader that shows
// the instrumentation scope sees no difference either.
const (
	otelconnectScope   = "connectrpc.com/otelconnect"
	otelconnectVersion = "semver:0.12.0"
)

// rpcDurationBuckets are otelconnect's bucket boundaries (the semantic
// conventions' recommendation), in seconds.
var rpcDurationBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10}

// rpcDurations records rpc.server.call.duration by procedure, protocol
// and code as otelconnect does, with each attribute set built once.
type rpcDurations struct {
	histogram metric.Float64Histogram
	// procedures holds a *procedureSets for each procedure called so far.
	procedures sync.Map
}

// rpcProtocols are the protocols whose sets are cached, by otelconnect's
// name for them: gRPC-Web counts as gRPC.
var rpcProtocols = [...]string{"grpc", "connectrpc"}

// procedureSets holds one procedure's record options, ready to pass to
// Record, by protocol (the index into rpcProtocols) and code (0 for OK).
type procedureSets struct {
	options [len(rpcProtocols)][connect.CodeUnauthenticated + 1][]metric.RecordOption
}

func newRPCDurations(meters metric.MeterProvider) (*rpcDurations, error) {
	inst := rpcconv.ServerCallDuration{}
	h, err := meters.Meter(otelconnectScope, metric.WithInstrumentationVersion(otelconnectVersion)).
		Float64Histogram(inst.Name(),
			metric.WithUnit(inst.Unit()),
			metric.WithDescription(inst.Description()),
			metric.WithExplicitBucketBoundaries(rpcDurationBuckets...))
	if err != nil {
		return nil, err
	}
	return &rpcDurations{histogram: h}, nil
}

func (d *rpcDurations) intercept(next connect.ServerFunc) connect.ServerFunc {
	return func(ctx context.Context, spec connect.Spec, stream connect.ServerStream) error {
		start := time.Now()
		err := next(ctx, spec, stream)
		elapsed := time.Since(start).Seconds()
		protocol := ""
		if info, ok := connect.CallInfoForServerContext(ctx); ok {
			protocol = info.Protocol
		}
		d.histogram.Record(ctx, elapsed, d.options(spec.Procedure, protocol, err)...)
		return err
	}
}

// options returns the record options of a call: from the cache, but for a
// protocol or an outcome otelconnect names unusually (an HTTP 304 for a
// Connect GET, a code outside Connect's).
func (d *rpcDurations) options(procedure, protocol string, err error) []metric.RecordOption {
	p := -1
	switch protocol {
	case connect.ProtocolNameGRPC, connect.ProtocolNameGRPCWeb:
		p = 0
	case connect.ProtocolNameConnect:
		p = 1
	}
	code := connect.Code(0)
	if err != nil {
		code = connect.CodeOf(err)
		if connecthttp.IsNotModifiedError(err) || code < 1 || code > connect.CodeUnauthenticated {
			p = -1
		}
	}
	if p < 0 {
		return []metric.RecordOption{metric.WithAttributeSet(rpcAttributes(procedure, protocol, err))}
	}
	sets, ok := d.procedures.Load(procedure)
	if !ok {
		sets, _ = d.procedures.LoadOrStore(procedure, newProcedureSets(procedure))
	}
	return sets.(*procedureSets).options[p][code]
}

func newProcedureSets(procedure string) *procedureSets {
	sets := new(procedureSets)
	for p, protocol := range []string{connect.ProtocolNameGRPC, connect.ProtocolNameConnect} {
		sets.options[p][0] = []metric.RecordOption{metric.WithAttributeSet(rpcAttributes(procedure, protocol, nil))}
		for code := connect.CodeCanceled; code <= connect.CodeUnauthenticated; code++ {
			set := rpcAttributes(procedure, protocol, connect.NewError(code, ""))
			sets.options[p][code] = []metric.RecordOption{metric.WithAttributeSet(set)}
		}
	}
	return sets
}

// rpcAttributes are the attributes otelconnect (v0.12) gives a server's
// call duration, without peer attributes (it adds them to spans only, and
// only when asked) or a Labeler's (nothing here uses one).
func rpcAttributes(procedure, protocol string, err error) attribute.Set {
	switch protocol {
	case connect.ProtocolNameGRPC, connect.ProtocolNameGRPCWeb:
		protocol = "grpc"
	case connect.ProtocolNameConnect:
		protocol = "connectrpc"
	}
	attrs := []attribute.KeyValue{
		semconv.RPCSystemNameKey.String(protocol),
		semconv.RPCMethodKey.String(strings.TrimLeft(procedure, "/")),
	}
	switch {
	case err == nil:
		attrs = append(attrs, semconv.RPCResponseStatusCodeKey.String("OK"))
	case connecthttp.IsNotModifiedError(err):
		attrs = append(attrs, semconv.RPCResponseStatusCodeKey.String("OK"),
			semconv.HTTPResponseStatusCodeKey.Int(http.StatusNotModified))
	default:
		code := strings.ToUpper(connect.CodeOf(err).String())
		attrs = append(attrs, semconv.RPCResponseStatusCodeKey.String(code), semconv.ErrorTypeKey.String(code))
	}
	return attribute.NewSet(attrs...)
}
