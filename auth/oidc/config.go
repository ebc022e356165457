package oidc

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"go.opentelemetry.io/otel/metric"
)

// Defaults for the zero values of Config.
const (
	// DefaultLeeway is the clock skew allowed between Latchkey and the
	// provider when checking exp, nbf and iat.
	DefaultLeeway = 30 * time.Second
	// MaxLeeway is the most leeway Config accepts: beyond it an expired
	// token stays usable long enough to matter.
	MaxLeeway = 5 * time.Minute
	// DefaultRefreshInterval is the least time between two fetches of the
	// provider's keys (or two discovery attempts).
	DefaultRefreshInterval = time.Minute
	// DefaultMaxKeyAge is how long a fetched key set is trusted before it
	// is fetched again in the background.
	DefaultMaxKeyAge = 15 * time.Minute
	// DefaultCacheSize is how many verified tokens are remembered.
	DefaultCacheSize = 10_000
	// fetchTimeout bounds one discovery or key fetch, whatever the
	// caller's context or HTTP client allow, so that a provider that
	// accepts connections but never answers cannot hold a request (or
	// the start of Latchkey) for long.
	fetchTimeout = 10 * time.Second
)

// DefaultAlgorithms returns the signature algorithms accepted when
// Config.Algorithms is empty, which are also the only ones it may name:
// every asymmetric algorithm go-oidc supports. There is no "none" and no
// HMAC (HS256, HS384, HS512): an HMAC key would have to be a secret shared
// with the provider, and accepting HMAC next to public keys is what lets a
// token "signed" with a public key pass. The slice is the caller's.
func DefaultAlgorithms() []string { return slices.Clone(asymmetric) }

// asymmetric is the list DefaultAlgorithms copies, kept unexported so that
// no importer can add to what New accepts.
var asymmetric = []string{
	"RS256", "RS384", "RS512",
	"PS256", "PS384", "PS512",
	"ES256", "ES384", "ES512",
	"EdDSA",
}

// Config is what a Verifier needs to know about the one OpenID Provider
// it trusts. Issuer and Audience are required; zero values of the other
// fields take the defaults.
type Config struct {
	// Issuer is the provider's issuer URL, exactly as its discovery
	// document and its tokens' "iss" spell it (a trailing slash counts).
	// It must be https, or http on a loopback host for development.
	Issuer string
	// Audience must be one of a token's "aud" values: the client id an ID
	// token is issued to, or the API audience of an access token.
	Audience string
	// Algorithms are the signature algorithms accepted, from
	// DefaultAlgorithms() (the default). New refuses "none", any HMAC
	// algorithm and any name it does not know.
	Algorithms []string
	// Leeway is the clock skew allowed for exp, nbf and iat: zero means
	// DefaultLeeway, a negative value means none. At most MaxLeeway.
	Leeway time.Duration
	// HTTPClient fetches the discovery document and the keys; nil means a
	// client with a 10 s timeout. Each fetch is bounded by 10 s anyway,
	// and redirects to where New would refuse an issuer (plain HTTP off
	// loopback) are not followed.
	HTTPClient *http.Client
	// Now is the clock, for tests; nil means time.Now.
	Now func() time.Time
	// Meter gets the instruments (see the package documentation); nil
	// means none.
	Meter metric.Meter
	// Logger is told of failed fetches; nil means slog.Default().
	Logger *slog.Logger
	// CacheSize bounds how many verified tokens are remembered: zero means
	// DefaultCacheSize, a negative value turns remembering off.
	CacheSize int
	// RefreshInterval is the least time between two fetches of the
	// provider's keys, whatever causes them (tokens naming unknown key
	// ids, the key set's age), and between two discovery attempts while
	// the provider cannot be reached: a flood of tokens with made-up key
	// ids causes at most one fetch per interval. Zero means
	// DefaultRefreshInterval.
	RefreshInterval time.Duration
	// MaxKeyAge is how long a fetched key set is used before it is fetched
	// again, in the background, so that a key the provider withdrew (say,
	// after a compromise) stops being trusted even if no new key id ever
	// shows up. A failed fetch keeps the old keys. Zero means
	// DefaultMaxKeyAge.
	MaxKeyAge time.Duration
}

// withDefaults checks cfg and fills in its zero values.
func (cfg Config) withDefaults() (Config, error) {
	if cfg.Issuer == "" {
		return cfg, fmt.Errorf("oidc: the issuer is required")
	}
	if err := checkURL(cfg.Issuer, false); err != nil {
		return cfg, fmt.Errorf("oidc: issuer %q: %w", cfg.Issuer, err)
	}
	if cfg.Audience == "" {
		return cfg, fmt.Errorf("oidc: the audience is required")
	}
	algs, err := checkAlgorithms(cfg.Algorithms)
	if err != nil {
		return cfg, err
	}
	cfg.Algorithms = algs
	switch {
	case cfg.Leeway == 0:
		cfg.Leeway = DefaultLeeway
	case cfg.Leeway < 0:
		cfg.Leeway = 0
	case cfg.Leeway > MaxLeeway:
		return cfg, fmt.Errorf("oidc: leeway %s is more than %s", cfg.Leeway, MaxLeeway)
	}
	cfg.HTTPClient = guarded(cfg.HTTPClient)
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.CacheSize == 0 {
		cfg.CacheSize = DefaultCacheSize
	}
	if cfg.RefreshInterval <= 0 {
		cfg.RefreshInterval = DefaultRefreshInterval
	}
	if cfg.MaxKeyAge <= 0 {
		cfg.MaxKeyAge = DefaultMaxKeyAge
	}
	return cfg, nil
}

// checkAlgorithms returns the accepted algorithms without duplicates, or
// an error naming the first one that must not be accepted.
func checkAlgorithms(algs []string) ([]string, error) {
	if len(algs) == 0 {
		return DefaultAlgorithms(), nil
	}
	var out []string
	for _, a := range algs {
		switch {
		case strings.EqualFold(a, "none"):
			return nil, fmt.Errorf("oidc: algorithm %q is refused: an unsigned token proves nothing", a)
		case strings.HasPrefix(strings.ToUpper(a), "HS"):
			return nil, fmt.Errorf("oidc: algorithm %q is refused: HMAC needs a shared secret, and next to public keys it lets a token signed with a public key pass", a)
		case !slices.Contains(asymmetric, a):
			return nil, fmt.Errorf("oidc: algorithm %q is unknown (known: %s)", a, strings.Join(asymmetric, ", "))
		}
		if !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	return out, nil
}

// guarded returns a copy of client (a client with a 10 s timeout if nil)
// that follows no redirect checkURL would refuse, so that an https
// jwks_uri cannot hand the keys over to plain HTTP. The caller's client is
// left as it is.
func guarded(client *http.Client) *http.Client {
	var c http.Client
	if client == nil {
		c.Timeout = fetchTimeout
	} else {
		c = *client
	}
	next := c.CheckRedirect
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if err := checkURL(req.URL.String(), true); err != nil {
			return fmt.Errorf("refusing a redirect to %s: %w", req.URL.Redacted(), err)
		}
		if next != nil {
			return next(req, via)
		}
		if len(via) >= 10 {
			return errors.New("stopped after 10 redirects")
		}
		return nil
	}
	return &c
}

// checkURL accepts an absolute https URL, or an http one on a loopback
// host: keys fetched over plain HTTP from anywhere else could be replaced
// on the way, and with them every identity. An issuer has no query; a
// jwks_uri may (Azure AD B2C names its policy in one).
func checkURL(raw string, query bool) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("not a URL")
	}
	if u.Host == "" || u.User != nil || u.Fragment != "" || (u.RawQuery != "" || u.ForceQuery) && !query {
		return fmt.Errorf("must be an absolute URL with no user, query or fragment")
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if loopback(u.Hostname()) {
			return nil
		}
		return fmt.Errorf("must be https (http only on a loopback host)")
	default:
		return fmt.Errorf("must be https")
	}
}

func loopback(host string) bool {
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
