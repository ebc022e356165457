// Package telemetry sets up what the binary exports about itself: an
// OpenTelemetry meter provider whose instruments are served in Prometheus
// exposition by a handler of their own, with the Go runtime's and the
// process's collectors and a build-info gauge beside them. The instruments
// themselves live where their events happen (auth, the store decorator,
// the RPC interceptor).
package telemetry

import (
	"context"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/exemplar"
)

// Metrics is a meter provider and the handler that serves its instruments.
type Metrics struct {
	// Provider makes the meters instruments are created from.
	Provider metric.MeterProvider
	// Handler serves every metric in Prometheus exposition: mount it at
	// /metrics on a listener of its own.
	Handler http.Handler
	sdk     *sdkmetric.MeterProvider
}

// NewMetrics returns a meter provider exported to Prometheus, and records
// version as latchkey_build_info.
func NewMetrics(version string) (*Metrics, error) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	build := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "latchkey_build_info",
		Help:        "Always 1; the labels say which build runs.",
		ConstLabels: prometheus.Labels{"version": version},
	})
	build.Set(1)
	reg.MustRegister(build)
	exporter, err := otelprom.New(otelprom.WithRegisterer(reg), otelprom.WithoutScopeInfo())
	if err != nil {
		return nil, err
	}
	// No exemplars: /metrics is served in the Prometheus text format,
	// which has none, so the SDK's default (offering every measurement made
	// in a sampled span's context to a reservoir) would be work thrown
	// away. It is not free even with no span: the trace-based filter looks
	// for one in the call's context on every count and every duration
	// recorded, a few of each per Verify.
	provider := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exporter),
		sdkmetric.WithExemplarFilter(exemplar.AlwaysOffFilter))
	return &Metrics{
		Provider: provider,
		Handler:  promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}),
		sdk:      provider,
	}, nil
}

// Shutdown stops the meter provider.
func (m *Metrics) Shutdown(ctx context.Context) error { return m.sdk.Shutdown(ctx) }
