package auth_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/auth"
	"github.com/latchkey/latchkey/token"
)

// meterReader is a meter whose counts a test reads back.
type meterReader struct {
	t      *testing.T
	reader *sdkmetric.ManualReader
	meter  *sdkmetric.MeterProvider
}

func newMeterReader(t *testing.T) *meterReader {
	r := sdkmetric.NewManualReader()
	return &meterReader{t: t, reader: r, meter: sdkmetric.NewMeterProvider(sdkmetric.WithReader(r))}
}

// metric is the metric name as the meter holds it now, or nil.
func (m *meterReader) metric(name string) *metricdata.Metrics {
	m.t.Helper()
	var rm metricdata.ResourceMetrics
	if err := m.reader.Collect(context.Background(), &rm); err != nil {
		m.t.Fatal(err)
	}
	for _, sm := range rm.ScopeMetrics {
		for i := range sm.Metrics {
			if sm.Metrics[i].Name == name {
				return &sm.Metrics[i]
			}
		}
	}
	return nil
}

// count is the value of the counter name at the point whose attributes
// include every key, value pair of kv (none: the first point); 0 when it
// never moved.
func (m *meterReader) count(name string, kv ...string) int64 {
	m.t.Helper()
	mt := m.metric(name)
	if mt == nil {
		return 0
	}
	sum, ok := mt.Data.(metricdata.Sum[int64])
	if !ok {
		m.t.Fatalf("%s is a %T, not an int64 counter", name, mt.Data)
	}
points:
	for _, p := range sum.DataPoints {
		for i := 0; i+1 < len(kv); i += 2 {
			if v, ok := p.Attributes.Value(attribute.Key(kv[i])); !ok || v.AsString() != kv[i+1] {
				continue points
			}
		}
		return p.Value
	}
	return 0
}

// histogram is the count and sum of the float64 histogram name.
func (m *meterReader) histogram(name string) (uint64, float64) {
	m.t.Helper()
	if mt := m.metric(name); mt != nil {
		if h, ok := mt.Data.(metricdata.Histogram[float64]); ok && len(h.DataPoints) > 0 {
			return h.DataPoints[0].Count, h.DataPoints[0].Sum
		}
	}
	return 0, 0
}

// TestVerifierMetrics checks that each counter moves by exactly what
// happened: an outcome per verification, a store error instead of an
// outcome, each flush of last-used times by whether it landed, and each
// invalidation by its scope.
func TestVerifierMetrics(t *testing.T) {
	ctx := context.Background()
	m := newMemStore()
	meter := newMeterReader(t)
	v := auth.NewVerifier(m, memHasher, "lk", auth.VerifierOptions{Meter: meter.meter.Meter("test"), FlushInterval: time.Hour})
	t.Cleanup(func() { v.Close(ctx) })
	valid := m.put(t, []string{"invoices:read"}, nil)
	outcome := func(name string) int64 { return meter.count("latchkey.verify.outcomes", "outcome", name) }

	t.Run("each verification counts its outcome once", func(t *testing.T) {
		for range 3 {
			v.Verify(ctx, valid.Reveal(), auth.Requirements{})
		}
		v.Verify(ctx, valid.Reveal(), auth.Requirements{Permissions: []string{"invoices:write"}})
		v.Verify(ctx, "not a token", auth.Requirements{})
		for name, want := range map[string]int64{"valid": 3, "permission_denied": 1, "malformed": 1, "not_found": 0, "revoked": 0} {
			if got := outcome(name); got != want {
				t.Errorf("outcome %s counted %d times, want %d", name, got, want)
			}
		}
		if got := meter.count("latchkey.verify.store.errors"); got != 0 {
			t.Errorf("store errors = %d with a store that answered", got)
		}
	})
	t.Run("a store failure is a store error, not an outcome", func(t *testing.T) {
		other := m.put(t, nil, nil)
		m.mu.Lock()
		m.credErr = errors.New("database unavailable")
		m.mu.Unlock()
		before := outcome("unspecified") + outcome("not_found")
		if _, err := v.Verify(ctx, other.Reveal(), auth.Requirements{}); err == nil {
			t.Fatal("Verify answered with a failing store")
		}
		m.mu.Lock()
		m.credErr = nil
		m.mu.Unlock()
		if got := meter.count("latchkey.verify.store.errors"); got != 1 {
			t.Errorf("store errors = %d, want 1", got)
		}
		if after := outcome("unspecified") + outcome("not_found"); after != before {
			t.Errorf("the failure was counted as an outcome too")
		}
	})
	t.Run("flushes count whether they landed", func(t *testing.T) {
		m := newMemStore()
		boom := errors.New("database unavailable")
		m.useErrs = []error{boom, boom} // the first two writes fail; each is retried
		meter := newMeterReader(t)
		v := auth.NewVerifier(m, memHasher, "lk", auth.VerifierOptions{Meter: meter.meter.Meter("test"), FlushInterval: 10 * time.Millisecond})
		t.Cleanup(func() { v.Close(ctx) })
		v.Verify(ctx, m.put(t, nil, nil).Reveal(), auth.Requirements{})
		ok := func() int64 { return meter.count("latchkey.last_used.flushes", "result", "ok") }
		failed := func() int64 { return meter.count("latchkey.last_used.flushes", "result", "failed") }
		// Three flushes write: two that fail and the retry that lands.
		// Nothing else is queued, so no fourth flush counts.
		for deadline := time.Now().Add(5 * time.Second); ok()+failed() < 3; time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("after 5s: %d flushes ok, %d failed", ok(), failed())
			}
		}
		if ok() != 1 || failed() != 2 {
			t.Fatalf("flushes ok %d, failed %d; want 1 and 2", ok(), failed())
		}
	})
	t.Run("invalidations count by scope and source", func(t *testing.T) {
		drops := func(scope, source string) int64 {
			return meter.count("latchkey.verify.cache.invalidations", "scope", scope, "source", source)
		}
		type point struct{ scope, source string }
		before := map[point]int64{}
		points := []point{{"key", "write"}, {"key", "notification"}, {"key", "poll"}, {"account", "notification"}, {"account", "poll"}, {"all", "poll"}, {"all", "reset"}, {"all", "write"}}
		for _, p := range points {
			before[p] = drops(p.scope, p.source)
		}
		v.ApplyChange(latchkey.Change{Kind: latchkey.ChangeKeyRevoked, KeyID: valid.KeyID(), Source: latchkey.ChangeFromWrite})
		v.ApplyChange(latchkey.Change{Kind: latchkey.ChangeKeyRevoked, KeyID: valid.KeyID(), Source: latchkey.ChangeFromNotification})
		v.ApplyChange(latchkey.Change{Kind: latchkey.ChangeKeyRevoked, KeyID: valid.KeyID(), Source: latchkey.ChangeFromNotification})
		v.ApplyChange(latchkey.Change{Kind: latchkey.ChangeWorkspaceArchived, AccountID: "acc_t", Source: latchkey.ChangeFromPoll})
		v.ApplyChange(latchkey.Change{Kind: latchkey.ChangeAccountSuspended, AccountID: "acc_t", Source: latchkey.ChangeFromNotification})
		v.ApplyChange(latchkey.Change{Kind: latchkey.ChangeGrantsChanged, ProfileID: "prf_person", Source: latchkey.ChangeFromPoll}) // drops nothing
		v.ResetChanges()
		want := map[point]int64{{"key", "write"}: 1, {"key", "notification"}: 2, {"account", "notification"}: 1, {"account", "poll"}: 1, {"all", "reset"}: 1}
		for _, p := range points {
			if got := drops(p.scope, p.source) - before[p]; got != want[p] {
				t.Errorf("invalidations of scope %s from %s: +%d, want +%d", p.scope, p.source, got, want[p])
			}
		}
	})
	t.Run("entries dropped to make room count as evictions", func(t *testing.T) {
		m := newMemStore()
		meter := newMeterReader(t)
		v := auth.NewVerifier(m, memHasher, "lk", auth.VerifierOptions{Meter: meter.meter.Meter("test"), CacheKeys: 2, CacheMissing: 1, FlushInterval: time.Hour})
		t.Cleanup(func() { v.Close(ctx) })
		for range 5 {
			v.Verify(ctx, m.put(t, nil, nil).Reveal(), auth.Requirements{}) // 5 keys in a cache of 2
		}
		for range 3 {
			tok, err := token.New("lk", latchkey.EnvironmentLive, latchkey.NewID(latchkey.PrefixAPIKey))
			if err != nil {
				t.Fatal(err)
			}
			v.Verify(ctx, tok.Reveal(), auth.Requirements{}) // 3 unknown ids in a cache of 1
		}
		if keys, missing := meter.count("latchkey.verify.cache.evictions", "cache", "keys"), meter.count("latchkey.verify.cache.evictions", "cache", "missing"); keys != 3 || missing != 2 {
			t.Fatalf("evictions: %d keys, %d unknown ids; want 3 and 2", keys, missing)
		}
	})
	t.Run("a change with a commit time records the feed's lag", func(t *testing.T) {
		now := time.Now()
		clk := &clock{now: now}
		meter := newMeterReader(t)
		v := auth.NewVerifier(newMemStore(), memHasher, "lk", auth.VerifierOptions{Meter: meter.meter.Meter("test"), Now: clk.Now, FlushInterval: time.Hour})
		t.Cleanup(func() { v.Close(ctx) })
		v.ApplyChange(latchkey.Change{Kind: latchkey.ChangeKeyRevoked, KeyID: valid.KeyID(), Time: now.Add(-2 * time.Second)})
		v.ApplyChange(latchkey.Change{Kind: latchkey.ChangeKeyRevoked, KeyID: valid.KeyID()}) // no time: nothing to measure
		n, sum := meter.histogram("latchkey.change_feed.lag")
		if n != 1 || sum != 2 {
			t.Fatalf("lag recorded %d times, summing %vs; want once, 2s", n, sum)
		}
	})
}
