package postgres

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// Instrument gives the store's instruments to meter: the connections of
// the pool, by state. Call it once, before serving.
func (s *Store) Instrument(meter metric.Meter) error {
	_, err := meter.Int64ObservableGauge("latchkey.store.pool.connections",
		metric.WithDescription("Connections of the database pool, by state: in_use, idle; and acquisitions that had to wait for one, total (waited)."),
		metric.WithInt64Callback(func(_ context.Context, o metric.Int64Observer) error {
			st := s.pool.Stat()
			o.Observe(int64(st.AcquiredConns()), metric.WithAttributes(attribute.String("state", "in_use")))
			o.Observe(int64(st.IdleConns()), metric.WithAttributes(attribute.String("state", "idle")))
			o.Observe(st.EmptyAcquireCount(), metric.WithAttributes(attribute.String("state", "waited")))
			return nil
		}))
	return err
}
