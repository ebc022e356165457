package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect/v2"
	"connectrpc.com/connect/v2/connecthttp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"

	latchkeyv1 "github.com/latchkey/latchkey/gen/latchkey/v1"
	"github.com/latchkey/latchkey/gen/latchkey/v1/latchkeyv1connect"
	"github.com/latchkey/latchkey/internal/pebbletest"
	"github.com/latchkey/latchkey/internal/pepper"
)

// acmeValidity is how long Pebble's certificates are valid in these tests:
// autocert renews in the last third of the lifetime, so about 10 s after
// issue.
const acmeValidity = 15 * time.Second

// freePort returns a port of 127.0.0.1 that was free a moment ago: Pebble
// must be told the server's port before the server starts.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// servedCert makes a new TLS connection to addr for pebbletest.Domain,
// trusting only roots, calls WhoAmI over it with key (when key is not
// empty) and returns the certificate the server presented and the
// protocol negotiated.
func servedCert(t *testing.T, addr string, roots *x509.CertPool, key string) (*x509.Certificate, string) {
	t.Helper()
	var (
		mu    sync.Mutex
		state tls.ConnectionState
	)
	transport := &http.Transport{
		TLSClientConfig: &tls.Config{
			RootCAs:    roots,
			ServerName: pebbletest.Domain,
			VerifyConnection: func(cs tls.ConnectionState) error {
				mu.Lock()
				defer mu.Unlock()
				state = cs
				return nil
			},
		},
		ForceAttemptHTTP2: true,
	}
	defer transport.CloseIdleConnections()
	httpClient := &http.Client{Transport: transport, Timeout: 30 * time.Second}
	if key == "" {
		resp, err := httpClient.Get("https://" + addr + "/healthz")
		if err != nil {
			t.Fatalf("GET /healthz over TLS: %v", err)
		}
		resp.Body.Close()
	} else {
		client := latchkeyv1connect.NewAuthServiceClient(connect.NewClient(
			connecthttp.NewTransport(httpClient, "https://"+addr),
			func(next connect.ClientFunc) connect.ClientFunc {
				return func(ctx context.Context, spec connect.Spec) (connect.ClientStream, error) {
					info, _ := connect.CallInfoForClientContext(ctx)
					info.RequestHeader().Set("Authorization", "Bearer "+key)
					return next(ctx, spec)
				}
			},
		))
		who, err := client.WhoAmI(t.Context(), &latchkeyv1.WhoAmIRequest{})
		if err != nil || !who.GetAccount().GetSpec().GetOperator() {
			t.Fatalf("WhoAmI over TLS = %v, %v", who, err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(state.PeerCertificates) == 0 {
		t.Fatal("the connection recorded no certificate")
	}
	return state.PeerCertificates[0], state.NegotiatedProtocol
}

// checkIssued fails t unless leaf is for exactly pebbletest.Domain and
// issued by Pebble. (That it chains to Pebble's root the handshake checked:
// the client trusts that root only.)
func checkIssued(t *testing.T, leaf *x509.Certificate) {
	t.Helper()
	if len(leaf.DNSNames) != 1 || leaf.DNSNames[0] != pebbletest.Domain {
		t.Fatalf("the certificate names %v, want [%s]", leaf.DNSNames, pebbletest.Domain)
	}
	if !strings.Contains(leaf.Issuer.CommonName, "Pebble") {
		t.Fatalf("the certificate's issuer is %q, not Pebble's", leaf.Issuer.CommonName)
	}
}

// TestACME obtains a certificate from a real ACME server, Pebble, which
// validates the TLS-ALPN-01 challenge on the serving port; serves Connect
// and gRPC calls over it; renews it without a restart; and, restarted,
// serves the cached one without a new order.
func TestACME(t *testing.T) {
	port := freePort(t)
	ca := pebbletest.Start(t, pebbletest.Options{TLSPort: port, Validity: acmeValidity})
	dir := t.TempDir()
	args := []string{"--db", filepath.Join(dir, "latchkey.db"), "--addr", "127.0.0.1:" + strconv.Itoa(port),
		"--acme-domain", pebbletest.Domain, "--acme-email", "ops@example.com",
		"--acme-directory", ca.Directory, "--acme-ca-root", ca.DirectoryRootFile}
	s := startServe(t, args...)
	defer func() { s.stop() }()
	m := operatorLine.FindStringSubmatch(s.stderr.String())
	if m == nil {
		t.Fatalf("no operator line:\n%s", s.stderr)
	}
	operator := m[1]
	if !strings.Contains(s.stderr.String(), `"acme":true`) {
		t.Fatalf("the serving line does not say ACME is on:\n%s", s.stderr)
	}
	roots := ca.IssuerRoots(t)

	var first *x509.Certificate
	t.Run("the first call gets a certificate Pebble issued for the domain after validating the challenge", func(t *testing.T) {
		leaf, proto := servedCert(t, s.addr, roots, operator)
		checkIssued(t, leaf)
		if proto != "h2" {
			t.Fatalf("negotiated %q, want h2 (gRPC needs it)", proto)
		}
		if n := ca.Issued(); n != 1 {
			t.Fatalf("Pebble issued %d certificates, want 1", n)
		}
		// autocert answers TLS-ALPN-01 only (it serves no HTTP-01
		// handler): the server placed that challenge, and Pebble's
		// validation, which connected to the server's port, passed.
		if !strings.Contains(s.stderr.String(), `"msg":"ACME TLS-ALPN-01 challenge certificate placed, for the CA to validate","domain":"`+pebbletest.Domain+`"`) {
			t.Fatalf("the server logged no TLS-ALPN-01 challenge:\n%s", s.stderr)
		}
		if !strings.Contains(ca.Log(), "set VALID by completed challenge") {
			t.Fatalf("Pebble's log shows no validated challenge:\n%s", ca.Log())
		}
		first = leaf
	})
	if first == nil {
		t.FailNow()
	}

	t.Run("gRPC calls work over the certificate", func(t *testing.T) {
		conn, err := grpc.NewClient(s.addr, grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: roots, ServerName: pebbletest.Domain})))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		ctx := metadata.AppendToOutgoingContext(t.Context(), "authorization", "Bearer "+operator)
		who, err := whoAmI(ctx, conn)
		if err != nil || !who.GetAccount().GetSpec().GetOperator() {
			t.Fatalf("gRPC WhoAmI over TLS = %v, %v", who, err)
		}
	})

	t.Run("the certificate and keys are cached in a directory only the owner can read", func(t *testing.T) {
		cacheDir := filepath.Join(dir, "latchkey.acme")
		fi, err := os.Stat(cacheDir)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o700 {
			t.Fatalf("%s has mode %04o, want 0700", cacheDir, fi.Mode().Perm())
		}
		fi, err = os.Stat(filepath.Join(cacheDir, pebbletest.Domain))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm()&0o077 != 0 {
			t.Fatalf("the cached certificate has mode %04o, readable by others", fi.Mode().Perm())
		}
	})

	t.Run("a handshake without a server name gets the domain's certificate", func(t *testing.T) {
		conn, err := tls.Dial("tcp", s.addr, &tls.Config{InsecureSkipVerify: true})
		if err != nil {
			t.Fatalf("a handshake without SNI failed: %v", err)
		}
		defer conn.Close()
		if got := conn.ConnectionState().PeerCertificates[0].SerialNumber; got.Cmp(first.SerialNumber) != 0 {
			t.Fatalf("served serial %x, want the domain's %x", got, first.SerialNumber)
		}
	})

	t.Run("a handshake for a domain not given is refused", func(t *testing.T) {
		conn, err := tls.Dial("tcp", s.addr, &tls.Config{InsecureSkipVerify: true, ServerName: "other.test"})
		if err == nil {
			conn.Close()
			t.Fatal("a handshake for other.test succeeded")
		}
		if n := ca.Issued(); n != 1 {
			t.Fatalf("Pebble issued %d certificates, want still 1", n)
		}
	})

	var renewed *x509.Certificate
	t.Run("the certificate renews before it expires, without a restart", func(t *testing.T) {
		deadline := first.NotAfter.Add(5 * time.Second)
		for time.Now().Before(deadline) {
			leaf, _ := servedCert(t, s.addr, roots, operator)
			if leaf.SerialNumber.Cmp(first.SerialNumber) != 0 {
				checkIssued(t, leaf)
				if !leaf.NotAfter.After(first.NotAfter) {
					t.Fatalf("the renewed certificate expires at %v, not after the first's %v", leaf.NotAfter, first.NotAfter)
				}
				if time.Now().After(first.NotAfter) {
					t.Fatalf("the new certificate was served only after the first expired (%v)", first.NotAfter)
				}
				renewed = leaf
				break
			}
			time.Sleep(250 * time.Millisecond)
		}
		if renewed == nil {
			t.Fatalf("still serving serial %x at %v, past its expiry %v", first.SerialNumber, time.Now(), first.NotAfter)
		}
		if n := ca.Issued(); n != 2 {
			t.Fatalf("Pebble issued %d certificates, want 2", n)
		}
		if n := strings.Count(s.stderr.String(), `"msg":"ACME certificate stored"`); n != 2 {
			t.Fatalf("%d \"ACME certificate stored\" lines, want 2:\n%s", n, s.stderr)
		}
	})
	if renewed == nil {
		t.FailNow()
	}

	t.Run("restarted, the server serves the cached certificate without a new order", func(t *testing.T) {
		if err := s.stop(); err != nil {
			t.Fatal(err)
		}
		before := ca.Issued()
		s = startServe(t, args...)
		leaf, _ := servedCert(t, s.addr, roots, operator)
		if leaf.SerialNumber.Cmp(renewed.SerialNumber) != 0 {
			t.Fatalf("after a restart the server serves serial %x, want the cached %x", leaf.SerialNumber, renewed.SerialNumber)
		}
		if n := ca.Issued(); n != before {
			t.Fatalf("Pebble issued %d certificates after the restart, want none", n-before)
		}
	})
}

// TestACMEReplicas runs two replicas on one PostgreSQL database, started
// before any certificate exists and asked at once: one certificate is
// obtained, from one order, and both serve it. Pebble validates the
// challenge on the first replica's port, whichever replica placed the
// order: the challenge's certificate is shared through the database, as
// it must be behind a load balancer.
func TestACMEReplicas(t *testing.T) {
	dsn, db := newPostgresDB(t)
	pepperFile := filepath.Join(t.TempDir(), "latchkey.pepper")
	if _, _, err := pepper.LoadOrCreate(pepperFile, true); err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	ca := pebbletest.Start(t, pebbletest.Options{TLSPort: port})
	common := []string{"--db", dsn, "--pepper-file", pepperFile,
		"--acme-domain", pebbletest.Domain, "--acme-directory", ca.Directory, "--acme-ca-root", ca.DirectoryRootFile}
	a := startServe(t, append([]string{"--addr", "127.0.0.1:" + strconv.Itoa(port)}, common...)...)
	defer a.stop()
	b := startServe(t, common...)
	defer b.stop()
	roots := ca.IssuerRoots(t)
	defer func() {
		if t.Failed() {
			t.Logf("replica a:\n%s\nreplica b:\n%s", a.stderr, b.stderr)
		}
	}()

	t.Run("asked at once, the replicas obtain one certificate and both serve it", func(t *testing.T) {
		var wg sync.WaitGroup
		leaves := make([]*x509.Certificate, 2)
		for i, addr := range []string{b.addr, a.addr} {
			wg.Go(func() { leaves[i], _ = servedCert(t, addr, roots, "") })
		}
		wg.Wait()
		if t.Failed() {
			return
		}
		checkIssued(t, leaves[0])
		if leaves[0].SerialNumber.Cmp(leaves[1].SerialNumber) != 0 {
			t.Fatalf("the replicas serve serials %x and %x, want one certificate", leaves[0].SerialNumber, leaves[1].SerialNumber)
		}
		if n := ca.Issued(); n != 1 {
			t.Fatalf("Pebble issued %d certificates for two replicas, want 1", n)
		}
		stored := strings.Count(a.stderr.String()+b.stderr.String(), `"msg":"ACME certificate stored"`)
		if stored != 1 {
			t.Fatalf("%d replicas stored a certificate, want 1", stored)
		}
	})

	t.Run("the database holds the certificate's key sealed", func(t *testing.T) {
		rows, err := db.Query(t.Context(), `SELECT name, data FROM acme_cache`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		names := 0
		for rows.Next() {
			var name string
			var data []byte
			if err := rows.Scan(&name, &data); err != nil {
				t.Fatal(err)
			}
			names++
			if strings.Contains(string(data), "PRIVATE KEY") || strings.Contains(string(data), "CERTIFICATE") {
				t.Fatalf("the cache entry %s is in clear", name)
			}
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		if names == 0 {
			t.Fatal("the database holds no ACME cache entry")
		}
	})
}

func TestACMEFlags(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"with --tls-cert", []string{"--acme-domain", "api.example.com", "--tls-cert", "c.pem", "--tls-key", "k.pem"}, "cannot go together"},
		{"a URL as the domain", []string{"--acme-domain", "https://api.example.com"}, "bare domain name"},
		{"an IP address", []string{"--acme-domain", "192.0.2.1"}, "IP address"},
		{"a wildcard", []string{"--acme-domain", "*.example.com"}, "wildcard"},
		{"a single label", []string{"--acme-domain", "localhost"}, "two labels"},
		{"a bad label", []string{"--acme-domain", "api_x.example.com"}, "letters, digits and hyphens"},
		{"an email that is not one", []string{"--acme-domain", "api.example.com", "--acme-email", "ops"}, "not an email address"},
		{"an http directory", []string{"--acme-domain", "api.example.com", "--acme-directory", "http://ca.example.com/dir"}, "https:// URL"},
		{"a cache directory with PostgreSQL", []string{"--db", "postgres://db.example.com/latchkey", "--pepper-file", "p", "--acme-domain", "api.example.com", "--acme-cache-dir", "/tmp/x"}, "for SQLite"},
		{"ACME flags without a domain", []string{"--acme-email", "ops@example.com"}, "go with --acme-domain"},
	} {
		t.Run(tc.name+" is refused", func(t *testing.T) {
			_, err := parseConfig(tc.args, func(string) string { return "" }, &strings.Builder{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("parseConfig(%q) = %v, want an error saying %q", tc.args, err, tc.want)
			}
		})
	}

	t.Run("domains repeat, split on commas, lowercase and lose duplicates", func(t *testing.T) {
		cfg, err := parseConfig([]string{"--acme-domain", "API.example.com,b.example.com.", "--acme-domain", "api.example.com"}, func(string) string { return "" }, &strings.Builder{})
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(cfg.acmeDomains, " "); got != "api.example.com b.example.com" {
			t.Fatalf("domains = %q", got)
		}
		if cfg.acmeCacheDir != "latchkey.acme" {
			t.Fatalf("the default cache directory is %q, want latchkey.acme beside latchkey.db", cfg.acmeCacheDir)
		}
	})

	t.Run("the command line wins over LATCHKEY_ACME_DOMAIN", func(t *testing.T) {
		env := func(k string) string {
			if k == "LATCHKEY_ACME_DOMAIN" {
				return "env.example.com,env2.example.com"
			}
			return ""
		}
		cfg, err := parseConfig(nil, env, &strings.Builder{})
		if err != nil || strings.Join(cfg.acmeDomains, " ") != "env.example.com env2.example.com" {
			t.Fatalf("from the environment: %v, %v", cfg.acmeDomains, err)
		}
		cfg, err = parseConfig([]string{"--acme-domain", "flag.example.com"}, env, &strings.Builder{})
		if err != nil || strings.Join(cfg.acmeDomains, " ") != "flag.example.com" {
			t.Fatalf("with the flag too: %v, %v", cfg.acmeDomains, err)
		}
	})

	t.Run("a cache directory others can read is refused at start", func(t *testing.T) {
		dir := t.TempDir()
		cache := filepath.Join(dir, "open")
		if err := os.Mkdir(cache, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(cache, 0o755); err != nil {
			t.Fatal(err)
		}
		err := run(t.Context(), []string{"serve", "--addr", "127.0.0.1:0", "--db", filepath.Join(dir, "latchkey.db"),
			"--acme-domain", "api.example.com", "--acme-cache-dir", cache}, &strings.Builder{})
		if err == nil || !strings.Contains(err.Error(), "chmod 700") {
			t.Fatalf("serve with a 0755 cache directory = %v", err)
		}
	})

	t.Run("an unreadable --acme-ca-root is refused at start", func(t *testing.T) {
		dir := t.TempDir()
		notPEM := filepath.Join(dir, "root.pem")
		if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o600); err != nil {
			t.Fatal(err)
		}
		err := run(t.Context(), []string{"serve", "--addr", "127.0.0.1:0", "--db", filepath.Join(dir, "latchkey.db"),
			"--acme-domain", "api.example.com", "--acme-ca-root", notPEM}, &strings.Builder{})
		if err == nil || !strings.Contains(err.Error(), "holds no PEM certificate") {
			t.Fatalf("serve with a --acme-ca-root that is not PEM = %v", err)
		}
	})
}

// TestACMEStoppedServerDoesNotCallTheCA checks the transport that renewal
// timers left behind by a stopped server go through.
func TestACMEStoppedServerDoesNotCallTheCA(t *testing.T) {
	calls := 0
	tr := &stoppableTransport{next: roundTripFunc(func(*http.Request) (*http.Response, error) {
		calls++
		return &http.Response{StatusCode: http.StatusOK, Body: http.NoBody}, nil
	})}
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, "https://ca.example.com/dir", nil)
	if _, err := tr.RoundTrip(req); err != nil || calls != 1 {
		t.Fatalf("before the stop: %v, %d calls", err, calls)
	}
	tr.stopped.Store(true)
	if _, err := tr.RoundTrip(req); !errors.Is(err, errACMEStopped) || calls != 1 {
		t.Fatalf("after the stop: %v, %d calls", err, calls)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TestCertDue checks the renewal window the PostgreSQL cache locks on
// against autocert's: the last third of the lifetime, capped at 30 days.
func TestCertDue(t *testing.T) {
	now := time.Now()
	for _, tc := range []struct {
		name              string
		notBefore, notAft time.Time
		want              bool
	}{
		{"a fresh 90-day certificate is not due", now.Add(-time.Hour), now.Add(90*24*time.Hour - time.Hour), false},
		{"a 90-day certificate 31 days from expiry is not due", now.Add(-59 * 24 * time.Hour), now.Add(31 * 24 * time.Hour), false},
		{"a 90-day certificate 29 days from expiry is due", now.Add(-61 * 24 * time.Hour), now.Add(29 * 24 * time.Hour), true},
		{"a 6-day certificate 1 day from expiry is due", now.Add(-5 * 24 * time.Hour), now.Add(24 * time.Hour), true},
		{"a 6-day certificate 3 days from expiry is not due", now.Add(-3 * 24 * time.Hour), now.Add(3 * 24 * time.Hour), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := certDue(certPEM(t, tc.notBefore, tc.notAft), now); got != tc.want {
				t.Fatalf("certDue = %v, want %v", got, tc.want)
			}
		})
	}
	if certDue([]byte("-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n"), now) {
		t.Fatal("an entry without a certificate (the account key) is due")
	}
}

// certPEM returns a cache entry as autocert writes it, a key and then a
// self-signed certificate valid from notBefore to notAfter.
func certPEM(t *testing.T, notBefore, notAfter time.Time) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), DNSNames: []string{"api.example.com"}, NotBefore: notBefore, NotAfter: notAfter}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return append(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}),
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
}
