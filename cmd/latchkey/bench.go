package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"connectrpc.com/connect/v2"
	"connectrpc.com/connect/v2/connecthttp"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	latchkeyv1 "github.com/latchkey/latchkey/gen/latchkey/v1"
	"github.com/latchkey/latchkey/gen/latchkey/v1/latchkeyv1connect"
)

// benchConfig is what `latchkey bench` runs with.
type benchConfig struct {
	url          string
	token        string
	clients      int
	duration     time.Duration
	keys         int
	protocols    []string
	issueClients int
	issueFor     time.Duration
	// baselineURL and baselineToken name a second server to measure
	// Verify on in the same run, for a ratio against it.
	baselineURL   string
	baselineToken string
}

func parseBenchConfig(args []string, getenv func(string) string, stderr io.Writer) (benchConfig, error) {
	var c benchConfig
	var protocols string
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.url, "url", "http://127.0.0.1:8080", "base URL of a running latchkey serve")
	fs.StringVar(&c.token, "token", getenv("LATCHKEY_TOKEN"), "operator key (default $LATCHKEY_TOKEN); the bench makes its own account with it")
	fs.IntVar(&c.clients, "clients", 16, "concurrent clients, each on its own connection")
	fs.DurationVar(&c.duration, "duration", 10*time.Second, "how long each Verify and health phase runs")
	fs.IntVar(&c.keys, "keys", 100, "keys to issue and verify in turn")
	fs.StringVar(&protocols, "protocols", "grpc,connect", "protocols to measure: grpc, connect")
	fs.IntVar(&c.issueClients, "issue-clients", 32, "concurrent clients of the Issue phase")
	fs.DurationVar(&c.issueFor, "issue-duration", 5*time.Second, "how long the Issue phase runs (0 skips it)")
	fs.StringVar(&c.baselineURL, "baseline-url", "", "base URL of a second server to compare Verify with, in turns within each phase (a build or configuration before a change)")
	fs.StringVar(&c.baselineToken, "baseline-token", getenv("LATCHKEY_BASELINE_TOKEN"), "the second server's operator key (default $LATCHKEY_BASELINE_TOKEN)")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if c.baselineURL != "" && c.baselineToken == "" {
		return c, errors.New("--baseline-url needs --baseline-token or LATCHKEY_BASELINE_TOKEN: the second server's operator key")
	}
	if c.token == "" {
		return c, errors.New("--token or LATCHKEY_TOKEN is required: the operator key")
	}
	if c.clients < 1 || c.keys < 1 || c.issueClients < 1 {
		return c, errors.New("--clients, --keys and --issue-clients must be positive")
	}
	for _, p := range strings.Split(protocols, ",") {
		switch p = strings.TrimSpace(p); p {
		case "grpc", "connect":
			c.protocols = append(c.protocols, p)
		default:
			return c, fmt.Errorf("--protocols: unknown protocol %q", p)
		}
	}
	return c, nil
}

// bench drives a running server and prints throughput and latency of
// Verify next to those of the health check, the floor that the transport
// alone sets, measured in the same run on the same connections.
func bench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := parseBenchConfig(args, os.Getenv, stderr)
	if err != nil {
		return err
	}
	target, err := setUp(ctx, cfg.url, cfg.token, cfg.keys)
	if err != nil {
		return err
	}
	var baseline *benchServer
	if cfg.baselineURL != "" {
		if baseline, err = setUp(ctx, cfg.baselineURL, cfg.baselineToken, cfg.keys); err != nil {
			return fmt.Errorf("baseline: %w", err)
		}
	}
	system := target.system
	fmt.Fprintf(stdout, "latchkey bench: %s, %d clients, %s per phase, %d keys\n\n", cfg.url, cfg.clients, cfg.duration, cfg.keys)
	fmt.Fprintf(stdout, "%-8s %-8s %10s %10s %10s %10s %8s\n", "protocol", "call", "calls/s", "p50", "p90", "p99", "errors")
	for _, protocol := range cfg.protocols {
		clients := make([]*benchClient, cfg.clients)
		for i := range clients {
			clients[i] = newBenchClient(cfg.url, protocol, system)
		}
		health := runPhase(ctx, stderr, protocol+" health", clients, cfg.duration, func(ctx context.Context, c *benchClient, _ int) error {
			return c.healthCheck(ctx)
		})
		if baseline == nil {
			verify := target.verifyPhase(ctx, stderr, protocol, clients, cfg.duration)
			health.print(stdout, protocol, "health")
			verify.print(stdout, protocol, "verify")
			fmt.Fprintf(stdout, "%-8s %-8s %9.2fx of health throughput, p99 %s\n\n", protocol, "ratio", verify.rate()/health.rate(), verify.quantile(0.99))
			continue
		}
		// With a baseline, the two servers take turns, four times each a
		// quarter of the phase, so that a drift of the machine's speed
		// during the run weighs on both alike.
		baseClients := make([]*benchClient, cfg.clients)
		for i := range baseClients {
			baseClients[i] = newBenchClient(baseline.url, protocol, baseline.system)
		}
		var verify, base result
		for range 4 {
			base = base.merge(baseline.verifyPhase(ctx, stderr, protocol, baseClients, cfg.duration/4))
			verify = verify.merge(target.verifyPhase(ctx, stderr, protocol, clients, cfg.duration/4))
		}
		health.print(stdout, protocol, "health")
		verify.print(stdout, protocol, "verify")
		base.print(stdout, protocol, "baseline")
		fmt.Fprintf(stdout, "%-8s %-8s %9.3fx of the baseline's Verify throughput, p99 %s against %s\n\n", protocol, "ratio",
			verify.rate()/base.rate(), verify.quantile(0.99).Round(time.Microsecond), base.quantile(0.99).Round(time.Microsecond))
	}
	if cfg.issueFor > 0 {
		clients := make([]*benchClient, cfg.issueClients)
		for i := range clients {
			clients[i] = newBenchClient(cfg.url, "grpc", system)
		}
		issue := runPhase(ctx, stderr, "grpc issue", clients, cfg.issueFor, func(ctx context.Context, c *benchClient, i int) error {
			_, err := c.keys.Issue(ctx, &latchkeyv1.IssueRequest{Metadata: &latchkeyv1.AccountResourceMetadata{Name: "bench issue"}})
			return err
		})
		issue.print(stdout, "grpc", "issue")
		fmt.Fprintf(stdout, "(issue: %d concurrent clients, durable commits)\n", cfg.issueClients)
	}
	return nil
}

// benchServer is a server the bench measures, with the account and keys
// it made there.
type benchServer struct {
	url    string
	system string   // the bench account's system key
	tokens []string // the keys that Verify checks in turn
}

// setUp makes the bench's account on the server at url, with the operator
// key, and issues keys of it.
func setUp(ctx context.Context, url, operator string, keys int) (*benchServer, error) {
	setup := newBenchClient(url, "connect", operator)
	account, err := setup.accounts.CreateAccount(ctx, &latchkeyv1.CreateAccountRequest{
		Name: "bench " + time.Now().UTC().Format(time.RFC3339), MaxActiveKeys: 1_000_000,
	})
	if err != nil {
		return nil, fmt.Errorf("create the bench account on %s (is the token the operator key?): %w", url, err)
	}
	s := &benchServer{url: url, system: account.GetSystemApiKey().GetSpec().GetToken(), tokens: make([]string, keys)}
	admin := newBenchClient(url, "connect", s.system)
	for i := range s.tokens {
		res, err := admin.keys.Issue(ctx, &latchkeyv1.IssueRequest{
			Metadata: &latchkeyv1.AccountResourceMetadata{Name: fmt.Sprintf("bench-%d", i)},
			Spec:     &latchkeyv1.ApiKeySpec{Permissions: []string{"invoices:read"}},
		})
		if err != nil {
			return nil, fmt.Errorf("issue bench keys on %s: %w", url, err)
		}
		s.tokens[i] = res.GetApiKey().GetSpec().GetToken()
	}
	return s, nil
}

// verifyPhase verifies the server's keys in turn from every client for d.
func (s *benchServer) verifyPhase(ctx context.Context, progress io.Writer, protocol string, clients []*benchClient, d time.Duration) result {
	return runPhase(ctx, progress, protocol+" verify", clients, d, func(ctx context.Context, c *benchClient, i int) error {
		res, err := c.auth.Verify(ctx, &latchkeyv1.VerifyRequest{Token: s.tokens[i%len(s.tokens)], Permissions: []string{"invoices:read"}})
		if err == nil && !res.GetValid() {
			err = fmt.Errorf("verify answered %v", res.GetCode())
		}
		return err
	})
}

// benchClient is one simulated client on its own HTTP/2 connection.
type benchClient struct {
	conn     *connect.Client
	auth     latchkeyv1connect.AuthServiceClient
	keys     latchkeyv1connect.ApiKeyServiceClient
	accounts latchkeyv1connect.AccountServiceClient
}

func newBenchClient(url, protocol, token string) *benchClient {
	protocols := new(http.Protocols)
	protocols.SetUnencryptedHTTP2(true)
	protocols.SetHTTP2(true)
	transport := &http.Transport{
		Protocols:   protocols,
		DialContext: (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
	}
	opts := []connecthttp.Option{}
	if protocol == "grpc" {
		opts = append(opts, connecthttp.WithGRPC())
	}
	conn := connect.NewClient(connecthttp.NewTransport(&http.Client{Transport: transport}, url, opts...),
		func(next connect.ClientFunc) connect.ClientFunc {
			return func(ctx context.Context, spec connect.Spec) (connect.ClientStream, error) {
				if info, ok := connect.CallInfoForClientContext(ctx); ok {
					info.RequestHeader().Set("Authorization", "Bearer "+token)
				}
				return next(ctx, spec)
			}
		})
	return &benchClient{
		conn:     conn,
		auth:     latchkeyv1connect.NewAuthServiceClient(conn),
		keys:     latchkeyv1connect.NewApiKeyServiceClient(conn),
		accounts: latchkeyv1connect.NewAccountServiceClient(conn),
	}
}

var healthCheckSpec = connect.Spec{
	StreamType: connect.StreamTypeUnary,
	Schema:     healthpb.File_grpc_health_v1_health_proto.Services().ByName("Health").Methods().ByName("Check"),
	Procedure:  "/grpc.health.v1.Health/Check",
}

func (c *benchClient) healthCheck(ctx context.Context) error {
	var res healthpb.HealthCheckResponse
	if err := c.conn.CallUnary(ctx, healthCheckSpec, &healthpb.HealthCheckRequest{}, &res); err != nil {
		return err
	}
	if res.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		return fmt.Errorf("health: %v", res.GetStatus())
	}
	return nil
}

// result is one phase's latencies.
type result struct {
	latencies []time.Duration
	errors    int64
	elapsed   time.Duration
	firstErr  error
}

// runPhase calls call from every client until d has passed, printing progress.
func runPhase(ctx context.Context, progress io.Writer, name string, clients []*benchClient, d time.Duration,
	call func(context.Context, *benchClient, int) error,
) result {
	// The phase ends by cancellation, not a deadline: a deadline would be
	// sent with every call (grpc-timeout), and a server that times out a
	// call just before the client does would count as an error.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	time.AfterFunc(d, cancel)
	var calls, failures atomic.Int64
	var mu sync.Mutex
	var res result
	var wg sync.WaitGroup
	start := time.Now()
	for w, c := range clients {
		wg.Go(func() {
			lat := make([]time.Duration, 0, 1<<16)
			for i := w * 7919; ctx.Err() == nil; i++ {
				t := time.Now()
				err := call(ctx, c, i)
				if ctx.Err() != nil {
					break // the phase ended during the call: not counted
				}
				if err != nil {
					failures.Add(1)
					mu.Lock()
					if res.firstErr == nil {
						res.firstErr = err
					}
					mu.Unlock()
					continue
				}
				lat = append(lat, time.Since(t))
				calls.Add(1)
			}
			mu.Lock()
			res.latencies = append(res.latencies, lat...)
			mu.Unlock()
		})
	}
	tick := time.NewTicker(time.Second)
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	fmt.Fprintf(progress, "\r%-16s starting", name)
loop:
	for {
		select {
		case <-tick.C:
			s := time.Since(start).Seconds()
			fmt.Fprintf(progress, "\r%-16s %5.0fs %9d calls %9.0f/s %6d errors", name, s, calls.Load(), float64(calls.Load())/s, failures.Load())
		case <-done:
			break loop
		}
	}
	tick.Stop()
	fmt.Fprintf(progress, "\r%-70s\r", "")
	res.elapsed = time.Since(start)
	res.errors = failures.Load()
	slices.Sort(res.latencies)
	return res
}

// merge is r and o as one phase: their calls over their summed time.
func (r result) merge(o result) result {
	r.latencies = append(r.latencies, o.latencies...)
	slices.Sort(r.latencies)
	r.errors += o.errors
	r.elapsed += o.elapsed
	if r.firstErr == nil {
		r.firstErr = o.firstErr
	}
	return r
}

func (r result) rate() float64 { return float64(len(r.latencies)) / r.elapsed.Seconds() }

func (r result) quantile(q float64) time.Duration {
	if len(r.latencies) == 0 {
		return 0
	}
	return r.latencies[min(len(r.latencies)-1, int(q*float64(len(r.latencies))))]
}

func (r result) print(w io.Writer, protocol, call string) {
	fmt.Fprintf(w, "%-8s %-8s %10.0f %10s %10s %10s %8d\n", protocol, call, r.rate(),
		r.quantile(0.5).Round(time.Microsecond), r.quantile(0.9).Round(time.Microsecond), r.quantile(0.99).Round(time.Microsecond), r.errors)
	if r.firstErr != nil {
		fmt.Fprintf(w, "         first error: %v\n", r.firstErr)
	}
}
