package postgres_test

import (
	"testing"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// TestPoolMetrics: the pool gauge reports a connection held as in use and
// returns it to idle when it is released.
func TestPoolMetrics(t *testing.T) {
	s := open(t, newSchema(t))
	defer s.Close()
	reader := sdkmetric.NewManualReader()
	if err := s.Instrument(sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader)).Meter("test")); err != nil {
		t.Fatal(err)
	}
	states := func() map[string]int64 {
		t.Helper()
		var rm metricdata.ResourceMetrics
		if err := reader.Collect(t.Context(), &rm); err != nil {
			t.Fatal(err)
		}
		out := map[string]int64{}
		for _, sm := range rm.ScopeMetrics {
			for _, m := range sm.Metrics {
				if g, ok := m.Data.(metricdata.Gauge[int64]); ok && m.Name == "latchkey.store.pool.connections" {
					for _, p := range g.DataPoints {
						state, _ := p.Attributes.Value("state")
						out[state.AsString()] = p.Value
					}
				}
			}
		}
		return out
	}
	before := states()
	for _, state := range []string{"in_use", "idle", "waited"} {
		if _, ok := before[state]; !ok {
			t.Fatalf("no %s point in %v", state, before)
		}
	}
	release, err := s.HoldConnection(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	held := states()
	release()
	released := states()
	if held["in_use"] != before["in_use"]+1 {
		t.Errorf("in_use while the test holds a connection: %d, want %d", held["in_use"], before["in_use"]+1)
	}
	if released["in_use"] != before["in_use"] || released["idle"] < 1 {
		t.Errorf("after the release: %v, want in_use %d and an idle connection", released, before["in_use"])
	}
}
