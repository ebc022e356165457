package client

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"connectrpc.com/connect/v2"
	"connectrpc.com/connect/v2/connecthttp"
	"golang.org/x/sync/singleflight"

	latchkeyv1 "github.com/latchkey/latchkey/gen/latchkey/v1"
	"github.com/latchkey/latchkey/gen/latchkey/v1/latchkeyv1connect"
)

// Defaults of Options.
const (
	DefaultCacheSize   = 10_000
	DefaultUnknownSize = 1_000
	DefaultTTL         = 5 * time.Minute
	DefaultStaleAfter  = 15 * time.Second
	DefaultTimeout     = 2 * time.Second
	DefaultSettle      = 2 * time.Second
)

// ErrUnavailable is returned, wrapped, when Latchkey cannot answer: the
// caller must refuse the request (fail closed), with 503 or unavailable.
var ErrUnavailable = errors.New("latchkey: cannot verify now")

// Options configures a Client. URL and Key are required.
type Options struct {
	// URL is Latchkey's API address, such as http://127.0.0.1:8080.
	URL string
	// Key is this service's own API key. It must hold api_keys:verify;
	// New checks that it does.
	Key string
	// HTTPClient carries the calls. The default speaks HTTP/2 (without TLS
	// to an http:// URL), so that many concurrent verifications share one
	// connection instead of opening one each.
	HTTPClient *http.Client
	// CacheSize bounds the verdicts kept, and UnknownSize the tokens kept
	// apart that name no key, so that a flood of made-up tokens cannot
	// evict real ones.
	CacheSize, UnknownSize int
	// TTL bounds how long a verdict is kept. A key's expiry and a rotated
	// token's grace period end its verdicts sooner; a change ends them at
	// once.
	TTL time.Duration
	// StaleAfter is how long the change stream may go unheard before the
	// cache is bypassed. Latchkey sends a heartbeat every 15 s; a stream
	// that fails is known down at once.
	StaleAfter time.Duration
	// Timeout bounds one call to Latchkey.
	Timeout time.Duration
	// Settle is how long after a key changed its verdicts are not cached:
	// with several replicas, the stream may come from one that has seen
	// the change while a Verify reaches one that has not yet (they catch
	// up within their --sync-bound, 1 s by default), and that answer must
	// not be kept. It is twice the default sync bound by default.
	Settle time.Duration
	// TrustedProxies are the addresses whose X-Forwarded-For the
	// middleware believes for the client's address. None by default: the
	// address is the connection's.
	TrustedProxies []netip.Prefix
	// QueryParameter, when set, lets the middleware also read the key from
	// the URL query parameter `api_key`. Off by default: a key in a URL is
	// kept by proxies, browsers and access logs.
	QueryParameter bool
	// Logger receives the stream's warnings; nil means slog.Default.
	Logger *slog.Logger
}

// Requirements are what a key must admit beyond being valid.
type Requirements struct {
	// Workspace, when set, must be granted to the key.
	Workspace string
	// Permissions must all be held by the key.
	Permissions []string
	// ClientIP is checked against the key's allowed CIDRs.
	ClientIP netip.Addr
}

// Result is a verdict. Its fields are shared with the cache: read them,
// do not change them.
type Result struct {
	// Valid is set when the key admits everything asked.
	Valid bool
	// Code says why, as Latchkey's Verify does.
	Code latchkeyv1.VerifyCode
	// The key, its account, its profile and its permissions, set when the
	// key was found.
	KeyID, AccountID, ProfileID string
	Permissions                 []string
}

// Client verifies API keys against Latchkey with a cache that the change
// stream keeps right. It is safe for concurrent use. Close it to stop the
// stream.
type Client struct {
	opts   Options
	auth   latchkeyv1connect.AuthServiceClient
	cache  *cache
	flight singleflight.Group
	calls  atomic.Int64 // Verify calls made to Latchkey
	heard  atomic.Int64 // Unix ns of the stream's last message; 0 while down
	// reconnecting is set once a first stream has spoken; follow's alone.
	reconnecting bool
	stop         context.CancelFunc
	done         chan struct{}
	closeOne     sync.Once
}

// New returns a Client and starts following Latchkey's change stream. It
// fails when Latchkey does not accept opts.Key as a key holding
// api_keys:verify, so that a service misconfigured refuses to start
// instead of refusing every caller.
func New(ctx context.Context, opts Options) (*Client, error) {
	if opts.URL == "" || opts.Key == "" {
		return nil, errors.New("latchkey client: Options.URL and Options.Key are required")
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = newHTTPClient()
	}
	if opts.CacheSize <= 0 {
		opts.CacheSize = DefaultCacheSize
	}
	if opts.UnknownSize <= 0 {
		opts.UnknownSize = DefaultUnknownSize
	}
	if opts.TTL <= 0 {
		opts.TTL = DefaultTTL
	}
	if opts.StaleAfter <= 0 {
		opts.StaleAfter = DefaultStaleAfter
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.Settle <= 0 {
		opts.Settle = DefaultSettle
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	c := &Client{
		opts:  opts,
		auth:  latchkeyv1connect.NewAuthServiceClient(connect.NewClient(connecthttp.NewTransport(opts.HTTPClient, opts.URL), withKey(opts.Key))),
		cache: newCache(opts.CacheSize, opts.UnknownSize),
		done:  make(chan struct{}),
	}
	// The service's own key must verify, with the permission to verify.
	res, err := c.call(ctx, opts.Key, Requirements{Permissions: []string{"api_keys:verify"}})
	if err != nil {
		return nil, fmt.Errorf("latchkey client: checking the service's own key: %w", err)
	}
	if !res.Valid {
		return nil, fmt.Errorf("latchkey client: the service's own key is refused: %s", codeName(res.Code))
	}
	streamCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	c.stop = stop
	go c.follow(streamCtx)
	return c, nil
}

// Close stops the change stream.
func (c *Client) Close() error {
	c.closeOne.Do(func() {
		c.stop()
		<-c.done
	})
	return nil
}

// Verify says whether token admits req. A token that fails is a Result,
// not an error; the error is kept for Latchkey not answering (it wraps
// ErrUnavailable), when the caller must refuse. A token of the wrong shape
// is refused without a call; a cached verdict answers without one while
// the change stream is up.
func (c *Client) Verify(ctx context.Context, token string, req Requirements) (Result, error) {
	if !wellFormed(token) {
		return Result{Code: latchkeyv1.VerifyCode_VERIFY_CODE_MALFORMED}, nil
	}
	key := cacheKey(token, req)
	fresh := c.fresh()
	if fresh {
		if res, ok := c.cache.get(key, time.Now()); ok {
			return res, nil
		}
	}
	v, err, _ := c.flight.Do(string(key[:]), func() (any, error) {
		// A caller that missed just before another call stored the answer
		// finds it here, so concurrent misses make one call.
		if fresh {
			if res, ok := c.cache.get(key, time.Now()); ok {
				return verdict{Result: res}, nil
			}
		}
		// The generation is read by the call itself, not by each caller
		// that joins it: a caller joining after a drop must not store an
		// answer read before it. The answer is stored before the waiting
		// callers are answered, so that a caller arriving just after finds
		// it.
		gen := c.cache.generation()
		// Shared by every caller waiting on it: one leaving must not fail
		// the others.
		res, err := c.call(context.WithoutCancel(ctx), token, req)
		if err == nil && fresh {
			c.cache.put(key, res, gen, time.Now(), c.opts.TTL, c.opts.Settle)
		}
		return res, err
	})
	if err != nil {
		return Result{}, err
	}
	return v.(verdict).Result, nil
}

// Calls returns how many Verify calls reached Latchkey, for tests and
// metrics: with a warm cache it stays still.
func (c *Client) Calls() int64 { return c.calls.Load() }

// verdict is a Result with when it stops holding.
type verdict struct {
	Result
	until time.Time // zero: no time limit of its own
}

// call asks Latchkey.
func (c *Client) call(ctx context.Context, token string, req Requirements) (verdict, error) {
	c.calls.Add(1)
	ctx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
	defer cancel()
	in := &latchkeyv1.VerifyRequest{Token: token, WorkspaceId: req.Workspace, Permissions: req.Permissions}
	if req.ClientIP.IsValid() {
		in.ClientIp = req.ClientIP.String()
	}
	out, err := c.auth.Verify(ctx, in)
	if err != nil {
		return verdict{}, fmt.Errorf("%w: %v", ErrUnavailable, connectMessage(err))
	}
	v := verdict{Result: Result{
		Valid: out.GetValid(), Code: out.GetCode(),
		KeyID: out.GetApiKey().GetMetadata().GetId(), AccountID: out.GetAccountId(),
		ProfileID: out.GetProfileId(), Permissions: out.GetPermissions(),
	}}
	// A verdict holds no longer than the key, nor than the old token of a
	// rotation still in its grace period (the cache cannot tell which of
	// the two tokens this is).
	if t := out.GetApiKey().GetSpec().GetExpireTime(); t != nil {
		v.until = t.AsTime()
	}
	if t := out.GetApiKey().GetInfo().GetPreviousTokenExpireTime(); t != nil && (v.until.IsZero() || t.AsTime().Before(v.until)) {
		v.until = t.AsTime()
	}
	return v, nil
}

// connectMessage keeps an error's code and message, never the request.
func connectMessage(err error) string {
	var ce *connect.Error
	if errors.As(err, &ce) {
		return ce.Code().String() + ": " + ce.Message()
	}
	return err.Error()
}

func codeName(c latchkeyv1.VerifyCode) string { return c.String() }

// withKey presents the service's key on every call.
func withKey(key string) connect.ClientInterceptor {
	return func(next connect.ClientFunc) connect.ClientFunc {
		return func(ctx context.Context, spec connect.Spec) (connect.ClientStream, error) {
			if info, ok := connect.CallInfoForClientContext(ctx); ok {
				info.RequestHeader().Set("Authorization", "Bearer "+key)
			}
			return next(ctx, spec)
		}
	}
}

// newHTTPClient speaks HTTP/2, also without TLS, over few connections.
func newHTTPClient() *http.Client {
	protocols := new(http.Protocols)
	protocols.SetHTTP2(true)
	protocols.SetUnencryptedHTTP2(true)
	return &http.Client{Transport: &http.Transport{
		Protocols:           protocols,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConnsPerHost: 16,
		IdleConnTimeout:     90 * time.Second,
	}}
}
