package oidc

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
)

// counter is a counter with its attributes bound once, so that counting
// on the hot path allocates nothing.
type counter struct {
	c    metric.Int64Counter
	opts []metric.AddOption
}

func (c counter) add(ctx context.Context) { c.c.Add(ctx, 1, c.opts...) }

func bound(c metric.Int64Counter, kv ...attribute.KeyValue) counter {
	return counter{c: c, opts: []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(kv...))}}
}

// metrics are the verifier's instruments. Every attribute takes one of a
// fixed set of values, whatever the tokens say.
type metrics struct {
	results                      [numResults]counter
	hit, miss                    counter
	refreshOK, refreshFailed     counter
	discoveryOK, discoveryFailed counter
}

func newMetrics(meter metric.Meter) *metrics {
	if meter == nil {
		meter = noop.NewMeterProvider().Meter("")
	}
	m := &metrics{}
	results, _ := meter.Int64Counter("latchkey.oidc.verifications",
		metric.WithDescription("Verifications of bearer JWTs, by result: valid, or the reason for refusing (unavailable when the provider's keys could not be fetched)."))
	for r, name := range resultNames {
		m.results[r] = bound(results, attribute.String("result", name))
	}
	lookups, _ := meter.Int64Counter("latchkey.oidc.cache.lookups",
		metric.WithDescription("Lookups of verified JWTs, by whether a token verified before answered (no signature check) or not."))
	m.hit = bound(lookups, attribute.String("result", "hit"))
	m.miss = bound(lookups, attribute.String("result", "miss"))
	refreshes, _ := meter.Int64Counter("latchkey.oidc.jwks.refreshes",
		metric.WithDescription("Fetches of the provider's keys (JWKS), by result; failed ones keep the keys fetched before."))
	m.refreshOK = bound(refreshes, attribute.String("result", "ok"))
	m.refreshFailed = bound(refreshes, attribute.String("result", "failed"))
	discoveries, _ := meter.Int64Counter("latchkey.oidc.discoveries",
		metric.WithDescription("Fetches of the provider's discovery document, by result; until one succeeds, every JWT is refused as unavailable."))
	m.discoveryOK = bound(discoveries, attribute.String("result", "ok"))
	m.discoveryFailed = bound(discoveries, attribute.String("result", "failed"))
	return m
}

// observeCache adds the gauge of remembered verifications, once the
// cache exists.
func observeCache(meter metric.Meter, size func() int) {
	if meter == nil {
		return
	}
	meter.Int64ObservableGauge("latchkey.oidc.cache.tokens",
		metric.WithDescription("Verified JWTs remembered: near CacheSize means the cache is smaller than the people signed in."),
		metric.WithInt64Callback(func(_ context.Context, o metric.Int64Observer) error {
			o.Observe(int64(size()))
			return nil
		}))
}

func (m *metrics) refreshed(ok bool) {
	if ok {
		m.refreshOK.add(context.Background())
	} else {
		m.refreshFailed.add(context.Background())
	}
}

func (m *metrics) discovered(ok bool) {
	if ok {
		m.discoveryOK.add(context.Background())
	} else {
		m.discoveryFailed.add(context.Background())
	}
}
