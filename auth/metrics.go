package auth

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
}

// verifierMetrics are the verifier's instruments.
type verifierMetrics struct {
	outcomes         [len(outcomeNames)]counter
	hits, misses     counter
	dropKey, dropAll counter
	storeErrors      counter
}

// newVerifierMetrics makes the verifier's instruments on meter (none when
// nil); size reports how many keys the cache holds.
func newVerifierMetrics(meter metric.Meter, size func() int) verifierMetrics {
	if meter == nil {
		meter = noop.NewMeterProvider().Meter("")
	}
	var m verifierMetrics
	outcomes, _ := meter.Int64Counter("latchkey.verify.outcomes",
		metric.WithDescription("Verifications by outcome, for callers and AuthService.Verify alike (a refused token is an OK RPC)."))
	for o, name := range outcomeNames {
		m.outcomes[o] = bound(outcomes, attribute.String("outcome", name))
	}
	lookups, _ := meter.Int64Counter("latchkey.verify.cache.lookups",
		metric.WithDescription("Key lookups of verification, by whether the cache answered."))
	m.hits = bound(lookups, attribute.String("result", "hit"))
	m.misses = bound(lookups, attribute.String("result", "miss"))
	drops, _ := meter.Int64Counter("latchkey.verify.cache.invalidations",
		metric.WithDescription("Invalidations of the verification cache by the change log: of one key, or of everything (an archived workspace, a feed that may have missed changes)."))
	m.dropKey = bound(drops, attribute.String("scope", "key"))
	m.dropAll = bound(drops, attribute.String("scope", "all"))
	errs, _ := meter.Int64Counter("latchkey.verify.store.errors",
		metric.WithDescription("Verifications that failed because the store could not answer."))
	m.storeErrors = bound(errs)
	meter.Int64ObservableGauge("latchkey.verify.cache.keys",
		metric.WithDescription("Keys held by the verification cache."),
		metric.WithInt64Callback(func(_ context.Context, o metric.Int64Observer) error {
			o.Observe(int64(size()))
			return nil
		}))
	return m
}
