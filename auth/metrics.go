package auth

import (
	"context"
	"sync"
	"sync/atomic"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"

	"github.com/latchkey/latchkey"
)

// counter is one attribute set of a counter. Counting is an atomic add
// in memory; the meter reads the count when it collects (the instrument
// is an observable counter, exported just as a counter is). An SDK
// counter's Add, even with its attribute set bound, resolves the set and
// looks its point up in a map on every call, through a deep call chain:
// a few hundred nanoseconds each, and a Verify counts four times (the
// caller's key and the verified one, each an outcome and a cache lookup).
type counter struct{ n *atomic.Int64 }

func (c counter) add(context.Context) { c.n.Add(1) }

// counters is a counter instrument and the attribute sets counted under
// it, each bound once.
type counters struct {
	mu     sync.Mutex
	points []point
}

type point struct {
	set attribute.Set
	n   *atomic.Int64
}

// newCounters makes the instrument name on meter. A point is reported
// once it has counted something, as an SDK counter's would be.
func newCounters(meter metric.Meter, name, description string) *counters {
	cs := new(counters)
	meter.Int64ObservableCounter(name, metric.WithDescription(description),
		metric.WithInt64Callback(func(_ context.Context, o metric.Int64Observer) error {
			cs.mu.Lock()
			defer cs.mu.Unlock()
			for _, p := range cs.points {
				if n := p.n.Load(); n != 0 {
					o.Observe(n, metric.WithAttributeSet(p.set))
				}
			}
			return nil
		}))
	return cs
}

func bound(cs *counters, kv ...attribute.KeyValue) counter {
	c := counter{n: new(atomic.Int64)}
	cs.mu.Lock()
	cs.points = append(cs.points, point{set: attribute.NewSet(kv...), n: c.n})
	cs.mu.Unlock()
	return c
}

// outcomeNames name the outcomes in metrics, as VerifyCode does.
var outcomeNames = [...]string{
	OutcomeUnspecified:      "unspecified",
	OutcomeValid:            "valid",
	OutcomeMalformed:        "malformed",
	OutcomeNotFound:         "not_found",
	OutcomeRevoked:          "revoked",
	OutcomeExpired:          "expired",
	OutcomeIPNotAllowed:     "ip_not_allowed",
	OutcomeWorkspaceDenied:  "workspace_denied",
	OutcomePermissionDenied: "permission_denied",
	OutcomeAccountSuspended: "account_suspended",
}

// verifierMetrics are the verifier's instruments.
type verifierMetrics struct {
	outcomes                [len(outcomeNames)]counter
	hits, misses            counter
	drops                   map[dropKind]counter
	evicted, evictedMissing counter
	storeErrors             counter
	flushOK, flushFailed    counter
	lag                     metric.Float64Histogram
}

// newVerifierMetrics makes the verifier's instruments on meter (none when
// nil), but for the gauges, which observeGauges adds.
func newVerifierMetrics(meter metric.Meter) verifierMetrics {
	meter = orNoop(meter)
	var m verifierMetrics
	outcomes := newCounters(meter, "latchkey.verify.outcomes",
		"Verifications by outcome, for callers and AuthService.Verify alike (a refused token is an OK RPC).")
	for o, name := range outcomeNames {
		m.outcomes[o] = bound(outcomes, attribute.String("outcome", name))
	}
	lookups := newCounters(meter, "latchkey.verify.cache.lookups",
		"Key lookups of verification, by whether the cache answered.")
	m.hits = bound(lookups, attribute.String("result", "hit"))
	m.misses = bound(lookups, attribute.String("result", "miss"))
	drops := newCounters(meter, "latchkey.verify.cache.invalidations",
		"Invalidations of the verification cache by the change log, by scope (one key, every key of an account: a suspension or a restore, or all: an archived workspace, a feed that may have missed changes) and by source (this server's write, a notification, a poll, or a reset of the feed).")
	m.drops = map[dropKind]counter{}
	for _, scope := range []string{"key", "account", "all"} {
		for _, source := range []latchkey.ChangeSource{latchkey.ChangeFromWrite, latchkey.ChangeFromNotification, latchkey.ChangeFromPoll, "", sourceReset} {
			name := string(source)
			if source == "" {
				name = "unknown"
			}
			m.drops[dropKind{scope, source}] = bound(drops, attribute.String("scope", scope), attribute.String("source", name))
		}
	}
	evictions := newCounters(meter, "latchkey.verify.cache.evictions",
		"Entries the verification cache dropped to make room, by cache (keys, or unknown ids): a steady rate means the cache is smaller than the keys in use.")
	m.evicted = bound(evictions, attribute.String("cache", "keys"))
	m.evictedMissing = bound(evictions, attribute.String("cache", "missing"))
	errs := newCounters(meter, "latchkey.verify.store.errors",
		"Verifications that failed because the store could not answer.")
	m.storeErrors = bound(errs)
	flushes := newCounters(meter, "latchkey.last_used.flushes",
		"Writes of the queued last-used times, by whether they landed (a failed one is retried).")
	m.flushOK = bound(flushes, attribute.String("result", "ok"))
	m.flushFailed = bound(flushes, attribute.String("result", "failed"))
	m.lag, _ = meter.Float64Histogram("latchkey.change_feed.lag",
		metric.WithUnit("s"),
		metric.WithDescription("From a change's commit (by the writer's clock) to its invalidation of this server's cache: near zero for this replica's own writes, the feed's lag for another replica's (clock skew between replicas shows here too)."),
		metric.WithExplicitBucketBoundaries(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
	return m
}

// observeGauges adds the gauges, once what they read exists: size reports
// how many keys the cache holds, queued how many last-used times wait to
// be written.
func observeGauges(meter metric.Meter, size, queued func() int) {
	meter = orNoop(meter)
	meter.Int64ObservableGauge("latchkey.verify.cache.keys",
		metric.WithDescription("Keys held by the verification cache."),
		metric.WithInt64Callback(func(_ context.Context, o metric.Int64Observer) error {
			o.Observe(int64(size()))
			return nil
		}))
	meter.Int64ObservableGauge("latchkey.last_used.queued",
		metric.WithDescription("Keys whose last-used time waits to be written."),
		metric.WithInt64Callback(func(_ context.Context, o metric.Int64Observer) error {
			o.Observe(int64(queued()))
			return nil
		}))
}

// dropKind is an invalidation's scope ("key" or "all") and source.
type dropKind struct {
	scope  string
	source latchkey.ChangeSource
}

// sourceReset is the source of a reset: the feed may have missed changes
// (it started, reconnected, or found the log pruned past it).
const sourceReset latchkey.ChangeSource = "reset"

// dropped counts an invalidation.
func (m verifierMetrics) dropped(scope string, source latchkey.ChangeSource) {
	c, ok := m.drops[dropKind{scope, source}]
	if !ok {
		c = m.drops[dropKind{scope, ""}]
	}
	c.add(context.Background())
}

// evictedOne counts an entry the cache dropped to make room.
func (m verifierMetrics) evictedOne(missing bool) {
	if missing {
		m.evictedMissing.add(context.Background())
	} else {
		m.evicted.add(context.Background())
	}
}

// flushed counts a flush of last-used times.
func (m verifierMetrics) flushed(ok bool) {
	if ok {
		m.flushOK.add(context.Background())
	} else {
		m.flushFailed.add(context.Background())
	}
}

func orNoop(meter metric.Meter) metric.Meter {
	if meter == nil {
		return noop.NewMeterProvider().Meter("")
	}
	return meter
}
