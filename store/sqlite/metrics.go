package sqlite

import (
	"context"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// commitMetrics are the committer's instruments.
type commitMetrics struct {
	batch    metric.Int64Histogram
	duration metric.Float64Histogram
}

// Instrument gives the store's instruments to meter: the size of each
// group commit's batch and how long its commit took, and the read pool's
// connections. Call it once, before serving.
func (s *Store) Instrument(meter metric.Meter) error {
	batch, err := meter.Int64Histogram("latchkey.store.commit.batch",
		metric.WithDescription("Writes per group commit (SQLite): each transaction holds up to 256, committed with one fsync."),
		metric.WithExplicitBucketBoundaries(1, 2, 4, 8, 16, 32, 64, 128, 256))
	if err != nil {
		return err
	}
	duration, err := meter.Float64Histogram("latchkey.store.commit.duration",
		metric.WithUnit("s"),
		metric.WithDescription("How long each group commit's COMMIT took (SQLite), the fsync included."),
		metric.WithExplicitBucketBoundaries(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1))
	if err != nil {
		return err
	}
	s.commitMetrics.Store(&commitMetrics{batch: batch, duration: duration})
	_, err = meter.Int64ObservableGauge("latchkey.store.pool.connections",
		metric.WithDescription("Connections of the database pool, by state: in_use, idle; and calls that waited for one, total (waited)."),
		metric.WithInt64Callback(func(_ context.Context, o metric.Int64Observer) error {
			st := s.reader.Stats()
			o.Observe(int64(st.InUse), metric.WithAttributes(attribute.String("state", "in_use")))
			o.Observe(int64(st.Idle), metric.WithAttributes(attribute.String("state", "idle")))
			o.Observe(st.WaitCount, metric.WithAttributes(attribute.String("state", "waited")))
			return nil
		}))
	return err
}

// recordCommit records one group commit of n writes that took d.
func (s *Store) recordCommit(n int, d time.Duration) {
	if m := s.commitMetrics.Load(); m != nil {
		m.batch.Record(context.Background(), int64(n))
		m.duration.Record(context.Background(), d.Seconds())
	}
}
