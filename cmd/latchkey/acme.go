package main

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/acme"
	"golang.org/x/crypto/acme/autocert"

	"github.com/latchkey/latchkey/store/postgres"
)

// acmeTLS is the serving listener's TLS when its certificates come from
// ACME: autocert obtains them on the first handshake that names a domain,
// answers the TLS-ALPN-01 challenge on the same port, and renews them in
// the background, a third of their lifetime before they expire (30 days
// for Let's Encrypt's 90), without a restart.
type acmeTLS struct {
	config *tls.Config
	// close stops talking to the CA (autocert's renewal timers cannot be
	// stopped, so their requests fail instead) and closes the cache.
	close func()
}

// acmeCacheKey is the key that seals the certificates in a PostgreSQL
// database: HMAC-SHA-256 of a purpose under the page-cursor key, which is
// itself derived from the current pepper and so shared by every replica
// (the pepper is not handed past loadHasher). After a pepper rotation the
// key is another, the sealed entries read as misses, and the certificate
// is obtained once more.
func acmeCacheKey(cursorKey []byte) []byte {
	mac := hmac.New(sha256.New, cursorKey)
	mac.Write([]byte("latchkey acme certificate cache v1"))
	return mac.Sum(nil)
}

// newACME sets up ACME for the domains of cfg.
func newACME(ctx context.Context, cfg config, cursorKey []byte, logger *slog.Logger) (*acmeTLS, error) {
	transport := http.DefaultTransport.(*http.Transport).Clone()
	if cfg.acmeCARoot != "" {
		pool, err := caRoots(cfg.acmeCARoot)
		if err != nil {
			return nil, err
		}
		transport.TLSClientConfig = &tls.Config{RootCAs: pool}
	}
	ca := &stoppableTransport{next: transport}

	var cache autocert.Cache
	closeCache := func() {}
	if cfg.postgres() {
		pg, err := postgres.OpenCertCache(ctx, cfg.db, postgres.CertCacheOptions{
			Key:    acmeCacheKey(cursorKey),
			Stale:  func(_ string, data []byte) bool { return certDue(data, time.Now()) },
			Logger: logger,
		})
		if err != nil {
			return nil, fmt.Errorf("ACME certificate cache in %s: %w", cfg.dbName(), err)
		}
		cache, closeCache = pg, pg.Close
	} else {
		if err := cacheDir(cfg.acmeCacheDir); err != nil {
			return nil, err
		}
		cache = autocert.DirCache(cfg.acmeCacheDir)
	}

	manager := &autocert.Manager{
		// Turning ACME on is accepting the CA's terms: there is no one to
		// ask at a handshake.
		Prompt:     autocert.AcceptTOS,
		Cache:      loggingCache{cache, logger},
		HostPolicy: autocert.HostWhitelist(cfg.acmeDomains...),
		Email:      cfg.acmeEmail,
		Client: &acme.Client{
			DirectoryURL: cfg.acmeDirectory,
			HTTPClient:   &http.Client{Transport: ca, Timeout: time.Minute},
			UserAgent:    "latchkey/" + buildVersion(),
		},
	}
	config := manager.TLSConfig() // offers h2, http/1.1 and acme-tls/1
	getCertificate := config.GetCertificate
	fallback := cfg.acmeDomains[0]
	config.GetCertificate = func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
		// A client that sends no server name (one dialling an IP address,
		// such as a load balancer's health check) gets the first domain's
		// certificate rather than a failed handshake.
		if hello.ServerName == "" {
			named := *hello
			named.ServerName = fallback
			hello = &named
		}
		return getCertificate(hello)
	}
	if _, port, err := net.SplitHostPort(cfg.addr); err == nil && port != "443" {
		logger.Info("ACME validates TLS-ALPN-01 on port 443 of each domain: port 443 must reach this listener", "addr", cfg.addr)
	}
	return &acmeTLS{config: config, close: func() { ca.stopped.Store(true); closeCache() }}, nil
}

// caRoots returns the system's roots with those of file added.
func caRoots(file string) (*x509.CertPool, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("--acme-ca-root: %w", err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("--acme-ca-root %s holds no PEM certificate", file)
	}
	return pool, nil
}

// cacheDir makes the certificate directory, 0700, and refuses one that
// others may read: it holds the TLS private keys and the ACME account's.
func cacheDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("--acme-cache-dir: %w", err)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("--acme-cache-dir: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("--acme-cache-dir %s is not a directory", dir)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return fmt.Errorf("--acme-cache-dir %s can be read by others (mode %04o) and holds TLS private keys: chmod 700 it", dir, fi.Mode().Perm())
	}
	return nil
}

// certDue reports whether the certificate in a cache entry (autocert's:
// the private key's PEM, then the chain's) is due for renewal at now, as
// autocert judges it with no RenewBefore: in the last third of its
// lifetime, capped at 30 days. An entry with no certificate (the account
// key) is never due.
func certDue(data []byte, now time.Time) bool {
	leaf := leafOf(data)
	if leaf == nil {
		return false
	}
	threshold := min(leaf.NotAfter.Sub(leaf.NotBefore)/3, 30*24*time.Hour)
	return !now.Before(leaf.NotAfter.Add(-threshold))
}

// leafOf returns the first certificate of a cache entry, or nil.
func leafOf(data []byte) *x509.Certificate {
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			return nil
		}
		if block.Type == "CERTIFICATE" {
			leaf, err := x509.ParseCertificate(block.Bytes)
			if err != nil {
				return nil
			}
			return leaf
		}
	}
}

// loggingCache logs each certificate stored, and each challenge answered:
// autocert says nothing when it obtains or renews one.
type loggingCache struct {
	autocert.Cache
	logger *slog.Logger
}

func (c loggingCache) Put(ctx context.Context, name string, data []byte) error {
	err := c.Cache.Put(ctx, name, data)
	if domain, ok := strings.CutSuffix(name, "+token"); ok {
		c.logger.Info("ACME TLS-ALPN-01 challenge certificate placed, for the CA to validate", "domain", domain, "err", err)
		return err
	}
	leaf := leafOf(data)
	if leaf == nil {
		return err // the account key
	}
	if err != nil {
		c.logger.Warn("ACME certificate obtained but not stored: it is served, but obtained anew at the next start", "domain", strings.Join(leaf.DNSNames, ","), "err", err)
		return err
	}
	c.logger.Info("ACME certificate stored", "domain", strings.Join(leaf.DNSNames, ","), "serial", leaf.SerialNumber.Text(16),
		"issuer", leaf.Issuer.CommonName, "not_after", leaf.NotAfter.UTC().Format(time.RFC3339))
	return nil
}

// stoppableTransport refuses every request once stopped, so that a renewal
// timer left by a server that has stopped does not reach the CA.
type stoppableTransport struct {
	next    http.RoundTripper
	stopped atomic.Bool
}

var errACMEStopped = errors.New("the server has stopped: no more ACME requests")

func (t *stoppableTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if t.stopped.Load() {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, errACMEStopped
	}
	return t.next.RoundTrip(req)
}
