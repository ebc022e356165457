package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/mail"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/crypto/acme/autocert"

	"github.com/latchkey/latchkey/server"
	"github.com/latchkey/latchkey/store/postgres"
	"github.com/latchkey/latchkey/token"
)

// config is what `latchkey serve` runs with.
type config struct {
	addr            string
	db              string
	pepperFile      string
	tokenPrefix     string
	corsOrigins     []string
	tlsCert         string
	tlsKey          string
	maxActiveKeys   int64
	maxRequestBytes int
	shutdownTimeout time.Duration
	syncBound       time.Duration
	headerTimeout   time.Duration
	readTimeout     time.Duration
	drainDelay      time.Duration
	logFormat       string
	logLevel        slog.Level
	metricsAddr     string
	pprof           bool
	oidcIssuer      string
	oidcAudience    string
	console         bool
	// ACME (see acme.go): certificates obtained and renewed for these
	// domains instead of --tls-cert and --tls-key.
	acmeDomains   []string
	acmeEmail     string
	acmeDirectory string
	acmeCacheDir  string
	acmeCARoot    string
}

// parseConfig reads flags, falling back to LATCHKEY_* environment
// variables and then to the defaults.
func parseConfig(args []string, getenv func(string) string, stderr io.Writer) (config, error) {
	var c config
	var cors string
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.addr, "addr", "127.0.0.1:8080", "address to listen on")
	fs.StringVar(&c.db, "db", "./latchkey.db", "SQLite database file, or a postgres:// URL for replicas sharing PostgreSQL")
	fs.StringVar(&c.pepperFile, "pepper-file", "", "file holding the token pepper (SQLite default: beside the database, made 0600 on first start; required with PostgreSQL)")
	fs.DurationVar(&c.syncBound, "sync-bound", postgres.DefaultSyncBound, "with PostgreSQL: the longest a change made on another replica can go unseen by this one's cache; past it, verification reads the database or fails. Health says NOT_SERVING once the database has not answered for this long")
	fs.StringVar(&c.tokenPrefix, "token-prefix", server.DefaultTokenPrefix, "prefix of every token issued and accepted")
	fs.StringVar(&cors, "cors-origins", "", "comma-separated browser origins allowed to call (default: none)")
	fs.StringVar(&c.tlsCert, "tls-cert", "", "TLS certificate file (with --tls-key)")
	fs.StringVar(&c.tlsKey, "tls-key", "", "TLS private key file (with --tls-cert)")
	fs.Int64Var(&c.maxActiveKeys, "max-active-keys", server.DefaultMaxActiveKeys, "active keys per account, for accounts that set no limit")
	fs.IntVar(&c.maxRequestBytes, "max-request-bytes", server.DefaultMaxRequestBytes, "largest request body accepted")
	fs.DurationVar(&c.headerTimeout, "read-header-timeout", 5*time.Second, "how long a client may take to send a request's headers")
	fs.DurationVar(&c.readTimeout, "read-timeout", 30*time.Second, "how long a client may take to send a whole request, headers and body")
	fs.DurationVar(&c.shutdownTimeout, "shutdown-timeout", 30*time.Second, "how long a shutdown waits for calls in flight")
	fs.DurationVar(&c.drainDelay, "drain-delay", 0, "how long a shutdown keeps answering, with health NOT_SERVING, before it stops taking calls")
	fs.StringVar(&c.logFormat, "log-format", "json", "log format: json or text")
	fs.StringVar(&c.metricsAddr, "metrics-addr", "", "address of a separate listener serving Prometheus metrics at /metrics, such as 127.0.0.1:9090 (default: none)")
	fs.BoolVar(&c.pprof, "pprof", false, "also serve Go's profiles (net/http/pprof) at /debug/pprof/ on the --metrics-addr listener, for finding what a server spends its CPU on (default off: they show the process's internals and cost CPU while they run)")
	fs.StringVar(&c.oidcIssuer, "oidc-issuer", "", "issuer URL of the OpenID Provider whose JWTs sign people in, exactly as its tokens' iss (default: none, and a JWT is refused)")
	fs.StringVar(&c.oidcAudience, "oidc-audience", "", "with --oidc-issuer: the audience a person's JWT must name, such as the console's client id")
	fs.BoolVar(&c.console, "console", true, "serve the console, the web frontend for managing keys, at /")
	fs.Var(listFlag{&c.acmeDomains}, "acme-domain", "serve TLS with a certificate obtained and renewed over ACME (TLS-ALPN-01 on this port: the CA connects to port 443 of the domain, which must reach --addr) for this domain name; repeat the flag, or separate names with commas, for several. Turning it on accepts the CA's terms of service. Not with --tls-cert (default: none)")
	fs.StringVar(&c.acmeEmail, "acme-email", "", "with --acme-domain: contact address given to the CA for the ACME account (default: none)")
	fs.StringVar(&c.acmeDirectory, "acme-directory", autocert.DefaultACMEDirectory, "with --acme-domain: the ACME directory URL of the CA (https://)")
	fs.StringVar(&c.acmeCacheDir, "acme-cache-dir", "", "with --acme-domain and SQLite: directory holding the ACME account key and the certificates and their keys, made 0700 (default: beside the database, latchkey.acme for latchkey.db). With PostgreSQL they are kept in the database, sealed under a key derived from the pepper, and shared by the replicas")
	fs.StringVar(&c.acmeCARoot, "acme-ca-root", "", "with --acme-domain: PEM file of CA certificates to trust, besides the system's, for the HTTPS of --acme-directory, for a private ACME server such as Pebble or step-ca (default: the system's only)")
	fs.TextVar(&c.logLevel, "log-level", slog.LevelInfo, "least level logged: debug (every call), info, warn or error")

	envDomains := len(splitList(getenv("LATCHKEY_ACME_DOMAIN")))
	if err := parseFlags(fs, args, getenv); err != nil {
		return c, err
	}
	// A list flag appends, so on the command line it would add to the
	// environment's domains rather than win over them, as every flag does.
	fs.Visit(func(f *flag.Flag) {
		if f.Name == "acme-domain" {
			c.acmeDomains = c.acmeDomains[envDomains:]
		}
	})
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	for _, o := range strings.Split(cors, ",") {
		if o = strings.TrimSpace(o); o != "" {
			c.corsOrigins = append(c.corsOrigins, o)
		}
	}
	if c.postgres() {
		if c.pepperFile == "" {
			return c, errors.New("--pepper-file is required with a PostgreSQL --db: every replica must read the same pepper")
		}
		if c.syncBound < 10*time.Millisecond {
			return c, errors.New("--sync-bound must be at least 10ms")
		}
	}
	if c.pepperFile == "" {
		c.pepperFile = defaultPepperFile(c.db)
	}
	if (c.tlsCert == "") != (c.tlsKey == "") {
		return c, errors.New("--tls-cert and --tls-key go together")
	}
	if err := c.checkACME(); err != nil {
		return c, err
	}
	if err := token.ValidPrefix(c.tokenPrefix); err != nil {
		return c, fmt.Errorf("--token-prefix: %w", err)
	}
	if c.maxActiveKeys <= 0 {
		return c, errors.New("--max-active-keys must be positive")
	}
	if c.maxRequestBytes < 1024 {
		return c, errors.New("--max-request-bytes must be at least 1024")
	}
	// Zero would mean no limit to net/http, which a slow client could use
	// to hold connections open for ever.
	if c.headerTimeout <= 0 || c.readTimeout <= 0 {
		return c, errors.New("--read-header-timeout and --read-timeout must be positive")
	}
	if c.readTimeout < c.headerTimeout {
		return c, errors.New("--read-timeout covers the headers too and cannot be shorter than --read-header-timeout")
	}
	if c.pprof && c.metricsAddr == "" {
		return c, errors.New("--pprof serves on the --metrics-addr listener: give that too")
	}
	if (c.oidcIssuer == "") != (c.oidcAudience == "") {
		return c, errors.New("--oidc-issuer and --oidc-audience go together")
	}
	if c.logFormat != "json" && c.logFormat != "text" {
		return c, errors.New("--log-format must be json or text")
	}
	return c, nil
}

// acme reports whether certificates come from ACME.
func (c config) acme() bool { return len(c.acmeDomains) > 0 }

// checkACME checks the --acme-* flags and fills in the cache directory's
// default.
func (c *config) checkACME() error {
	if !c.acme() {
		if c.acmeEmail != "" || c.acmeCacheDir != "" || c.acmeCARoot != "" || c.acmeDirectory != autocert.DefaultACMEDirectory {
			return errors.New("--acme-email, --acme-directory, --acme-cache-dir and --acme-ca-root go with --acme-domain, which is not given")
		}
		return nil
	}
	if c.tlsCert != "" {
		return errors.New("--acme-domain and --tls-cert/--tls-key cannot go together: with --acme-domain the certificate is obtained over ACME; give one or the other")
	}
	seen := make(map[string]bool)
	domains := c.acmeDomains[:0:0]
	for _, d := range c.acmeDomains {
		name, err := acmeDomain(d)
		if err != nil {
			return fmt.Errorf("--acme-domain %q: %w", d, err)
		}
		if !seen[name] {
			seen[name] = true
			domains = append(domains, name)
		}
	}
	c.acmeDomains = domains
	if c.acmeEmail != "" {
		if a, err := mail.ParseAddress(c.acmeEmail); err != nil || a.Address != c.acmeEmail || a.Name != "" {
			return fmt.Errorf("--acme-email %q is not an email address such as ops@example.com", c.acmeEmail)
		}
	}
	if u, err := url.Parse(c.acmeDirectory); err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil {
		return fmt.Errorf("--acme-directory %q is not an https:// URL, such as %s", c.acmeDirectory, autocert.DefaultACMEDirectory)
	}
	if c.postgres() {
		if c.acmeCacheDir != "" {
			return errors.New("--acme-cache-dir is for SQLite: with a PostgreSQL --db the certificates are kept in the database, shared by the replicas")
		}
	} else if c.acmeCacheDir == "" {
		c.acmeCacheDir = filepath.Join(filepath.Dir(c.db), strings.TrimSuffix(filepath.Base(c.db), filepath.Ext(c.db))+".acme")
	}
	return nil
}

// acmeDomain checks a domain name for a certificate and returns it in the
// form autocert compares: lowercase, with no trailing dot.
func acmeDomain(d string) (string, error) {
	name := strings.TrimSuffix(strings.ToLower(strings.TrimSpace(d)), ".")
	switch {
	case strings.Contains(name, "/") || strings.Contains(name, ":"):
		return "", errors.New("give a bare domain name, such as api.example.com, not a URL or host:port")
	case net.ParseIP(name) != nil:
		return "", errors.New("an IP address cannot have a certificate from ACME here: give a domain name")
	case strings.HasPrefix(name, "*."):
		return "", errors.New("a wildcard certificate needs the DNS-01 challenge, which Latchkey does not answer: name each domain")
	case !strings.Contains(name, "."):
		return "", errors.New("give a name of two labels or more, such as api.example.com")
	case len(name) > 253:
		return "", errors.New("longer than 253 characters")
	}
	for _, label := range strings.Split(name, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return "", fmt.Errorf("the label %q must be 1 to 63 characters that do not start or end with a hyphen", label)
		}
		for _, r := range label {
			if (r < 'a' || r > 'z') && (r < '0' || r > '9') && r != '-' {
				return "", fmt.Errorf("the label %q may hold only letters, digits and hyphens (give an internationalised name in its xn-- form)", label)
			}
		}
	}
	return name, nil
}

// listFlag is a flag that may be repeated, each value a comma-separated
// list, such as --acme-domain.
type listFlag struct{ list *[]string }

func (l listFlag) String() string {
	if l.list == nil {
		return ""
	}
	return strings.Join(*l.list, ",")
}

func (l listFlag) Set(v string) error {
	*l.list = append(*l.list, splitList(v)...)
	return nil
}

// splitList splits a comma-separated list, dropping empty items.
func splitList(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// postgres reports whether --db names a PostgreSQL database.
func (c config) postgres() bool {
	return strings.HasPrefix(c.db, "postgres://") || strings.HasPrefix(c.db, "postgresql://")
}

// dbName is --db as it may be logged: without a password.
func (c config) dbName() string {
	if !c.postgres() {
		return c.db
	}
	u, err := url.Parse(c.db)
	if err != nil {
		return "postgres (unparsable URL)"
	}
	return u.Redacted()
}

// parseFlags sets fs's flags from their LATCHKEY_* environment variables
// and then from args, so that flags given on the command line win.
func parseFlags(fs *flag.FlagSet, args []string, getenv func(string) string) error {
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		name := "LATCHKEY_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v := getenv(name); v != "" {
			if err := f.Value.Set(v); err != nil && envErr == nil {
				envErr = fmt.Errorf("%s: %w", name, err)
			}
		}
	})
	if envErr != nil {
		return envErr
	}
	return fs.Parse(args)
}

// defaultPepperFile is where a SQLite database's pepper file lives when
// --pepper-file is not given: beside the database, named after it.
func defaultPepperFile(db string) string {
	return filepath.Join(filepath.Dir(db), strings.TrimSuffix(filepath.Base(db), filepath.Ext(db))+".pepper")
}
