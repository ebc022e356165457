package client_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/latchkey/latchkey/client"
)

// discard is a ResponseWriter that keeps nothing, so that the benchmark
// counts the middleware's allocations alone.
type discard struct{ h http.Header }

func (d discard) Header() http.Header       { return d.h }
func (discard) Write(b []byte) (int, error) { return len(b), nil }
func (discard) WriteHeader(int)             {}

var ok = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})

// BenchmarkMiddlewareHit is one request through the middleware with the
// key's verdict cached: the target is at most 1 µs and 2 allocations.
func BenchmarkMiddlewareHit(b *testing.B) {
	c := newClient(b, client.Options{})
	_, tok := mustIssue(b, "invoices:read")
	h := c.Middleware(client.Route{Permissions: []string{"invoices:read"}})(ok)
	req := httptest.NewRequest(http.MethodGet, "/invoices/1", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	w := discard{h: http.Header{}}
	h.ServeHTTP(w, req) // warm the cache
	before := c.Calls()
	b.ReportAllocs()
	for b.Loop() {
		h.ServeHTTP(w, req)
	}
	if c.Calls() != before {
		b.Fatalf("%d calls reached Latchkey on cache hits", c.Calls()-before)
	}
}

// BenchmarkEndpoint serves one small endpoint over loopback HTTP without
// auth and behind the middleware with cached keys, in the same run; the
// target is at least 0.9× the throughput without auth.
func BenchmarkEndpoint(b *testing.B) {
	c := newClient(b, client.Options{})
	_, tok := mustIssue(b, "invoices:read")
	hello := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello") })
	for _, tt := range []struct {
		name    string
		handler http.Handler
	}{
		{"without auth", hello},
		{"with the middleware", c.Middleware(client.Route{Permissions: []string{"invoices:read"}})(hello)},
	} {
		b.Run(tt.name, func(b *testing.B) {
			srv := httptest.NewServer(tt.handler)
			defer srv.Close()
			hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, srv.URL, nil)
					req.Header.Set("Authorization", "Bearer "+tok)
					res, err := hc.Do(req)
					if err != nil {
						b.Fatal(err)
					}
					io.Copy(io.Discard, res.Body)
					res.Body.Close()
					if res.StatusCode != http.StatusOK {
						b.Fatalf("HTTP %d", res.StatusCode)
					}
				}
			})
		})
	}
}

// BenchmarkHotKeys verifies 1,000 distinct keys in turn, warm: it reports
// how many verifications reached Latchkey per verification (near zero).
func BenchmarkHotKeys(b *testing.B) {
	c := newClient(b, client.Options{})
	toks := make([]string, 1000)
	for i := range toks {
		_, toks[i] = mustIssue(b, "invoices:read")
		if _, err := c.Verify(context.Background(), toks[i], client.Requirements{}); err != nil {
			b.Fatal(err)
		}
	}
	before := c.Calls()
	i := 0
	for b.Loop() {
		if res, err := c.Verify(context.Background(), toks[i%len(toks)], client.Requirements{}); err != nil || !res.Valid {
			b.Fatal(res, err)
		}
		i++
	}
	b.ReportMetric(float64(c.Calls()-before)/float64(b.N), "calls/op")
}

// BenchmarkRevocationLag measures how long a revoked key's cached verdict
// goes on after Revoke answered, with the stream up: the target is a p99
// of at most 100 ms. It reports p50 and p99 over b.N revocations.
func BenchmarkRevocationLag(b *testing.B) {
	c := newClient(b, client.Options{})
	var lags []time.Duration
	for b.Loop() {
		id, tok := mustIssue(b, "invoices:read")
		for range 2 {
			if res, err := c.Verify(context.Background(), tok, client.Requirements{}); err != nil || !res.Valid {
				b.Fatal(res, err)
			}
		}
		revoke(b, id)
		revoked := time.Now()
		for {
			res, err := c.Verify(context.Background(), tok, client.Requirements{})
			if err != nil {
				b.Fatal(err)
			}
			if !res.Valid {
				break
			}
		}
		lags = append(lags, time.Since(revoked))
	}
	slices.Sort(lags)
	b.ReportMetric(float64(lags[len(lags)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lags[len(lags)*99/100].Microseconds())/1000, "p99-ms")
}
