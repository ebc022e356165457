// Package pebbletest runs a real ACME server for tests: Pebble
// (github.com/letsencrypt/pebble/v2, Let's Encrypt's test CA), built from the
// module proxy and run as its own process on loopback, with a DNS server of
// the harness's own that answers every name with 127.0.0.1.
//
// Pebble really validates: its TLS-ALPN-01 check resolves the domain through
// that DNS server and opens a TLS connection to 127.0.0.1 on Options.TLSPort,
// where the server under test must answer the acme-tls/1 protocol with the
// challenge's certificate. Nothing is skipped (PEBBLE_VA_ALWAYS_VALID is never
// set); authorizations are never reused (PEBBLE_AUTHZREUSE=0), so a renewal
// is validated again too; the random validation sleeps are off.
//
// Pebble is the module in pebble/ (a module of its own holding only a tool
// line, so that Pebble's dependencies stay out of Latchkey's go.mod). The
// binary is built once per machine and source (cached under the user's cache
// directory, keyed by a hash of pebble/go.mod and go.sum), so a test pays
// the build the first time only; a Start then takes a few hundred
// milliseconds.
package pebbletest

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"

	"github.com/latchkey/latchkey/internal/testenv"
)

// Domain is a name for certificates: under .test (RFC 2606), so never a
// real one, and resolved by the harness's DNS server to 127.0.0.1 like every
// other name.
const Domain = "latchkey.test"

// Options say how Start sets Pebble up.
type Options struct {
	// TLSPort is the port of 127.0.0.1 that Pebble connects to for the
	// TLS-ALPN-01 challenge: the server under test's. Required.
	TLSPort int
	// Validity is how long the certificates Pebble issues are valid; zero
	// is Pebble's default (90 days). Pebble counts it in whole seconds.
	Validity time.Duration
}

// Server is a running Pebble.
type Server struct {
	// Directory is the ACME directory URL, https://127.0.0.1:PORT/dir.
	Directory string
	// DirectoryRootFile is a PEM file with the certificate of the
	// directory's HTTPS, for a client that must trust it (it is not the
	// CA that issues the ACME certificates: see IssuerRoots).
	DirectoryRootFile string

	management string
	client     *http.Client
	log        *lockedBuffer
	cmd        *exec.Cmd
	done       chan struct{}
}

// Start builds Pebble if it has not been built, starts it on free ports of
// 127.0.0.1, and stops it when t ends. When Pebble cannot be built (no
// module proxy and nothing cached) it skips t, or fails t in CI.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	if opts.TLSPort <= 0 || opts.TLSPort > 65535 {
		t.Fatalf("pebbletest: Options.TLSPort %d is not a port", opts.TLSPort)
	}
	if opts.Validity < 0 || (opts.Validity > 0 && opts.Validity < 2*time.Second) {
		t.Fatalf("pebbletest: Options.Validity %v is under two seconds", opts.Validity)
	}
	bin, err := Binary()
	if err != nil {
		testenv.Skip(t, "Pebble cannot be built: "+err.Error())
	}
	dir := t.TempDir()
	certFile, keyFile, pool := writeDirectoryCert(t, dir)
	dnsAddr := serveDNS(t)

	// Pebble cannot listen on port 0 and say which port it got, so the
	// harness picks free ports and tries again if one was taken meanwhile.
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		s, err := start(t, bin, dir, certFile, keyFile, pool, dnsAddr, opts)
		if err == nil {
			return s
		}
		lastErr = err
	}
	t.Fatalf("pebbletest: Pebble did not start: %v", lastErr)
	return nil
}

func start(t testing.TB, bin, dir, certFile, keyFile string, pool *x509.CertPool, dnsAddr string, opts Options) (*Server, error) {
	listen, management := freeAddr(t), freeAddr(t)
	profile := map[string]any{"description": "pebbletest"}
	if opts.Validity > 0 {
		profile["validityPeriod"] = int64(opts.Validity / time.Second)
	}
	config := map[string]any{"pebble": map[string]any{
		"listenAddress":           listen,
		"managementListenAddress": management,
		"certificate":             certFile,
		"privateKey":              keyFile,
		// HTTP-01 is not offered by the server under test; the port is
		// one nothing listens on.
		"httpPort":     1,
		"tlsPort":      opts.TLSPort,
		"keyAlgorithm": "ecdsa",
		"profiles":     map[string]any{"default": profile},
	}}
	data, err := json.Marshal(config)
	if err != nil {
		return nil, err
	}
	configFile := filepath.Join(dir, "pebble-config.json")
	if err := os.WriteFile(configFile, data, 0o600); err != nil {
		return nil, err
	}
	s := &Server{
		Directory:         "https://" + listen + "/dir",
		DirectoryRootFile: certFile,
		management:        "https://" + management,
		client: &http.Client{
			Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}},
			Timeout:   10 * time.Second,
		},
		log:  &lockedBuffer{},
		done: make(chan struct{}),
	}
	s.cmd = exec.Command(bin, "-config", configFile, "-dnsserver", dnsAddr)
	s.cmd.Env = append(os.Environ(),
		"PEBBLE_VA_NOSLEEP=1",      // no random sleep of up to 5 s before each validation
		"PEBBLE_AUTHZREUSE=0",      // every order is validated, renewals too
		"PEBBLE_WFE_NONCEREJECT=0", // no random badNonce answers
	)
	s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
	if err := s.cmd.Start(); err != nil {
		return nil, err
	}
	go func() { s.cmd.Wait(); close(s.done) }()

	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := s.client.Get(s.Directory)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		select {
		case <-s.done:
			return nil, fmt.Errorf("pebble exited:\n%s", s.log)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.stop()
			return nil, fmt.Errorf("pebble did not answer at %s: %v\n%s", s.Directory, err, s.log)
		}
	}
	t.Cleanup(func() {
		s.stop()
		if t.Failed() {
			t.Logf("pebble's log:\n%s", s.log)
		}
	})
	return s, nil
}

func (s *Server) stop() {
	s.cmd.Process.Kill()
	<-s.done
}

// IssuerRoots returns a pool holding the root of the CA that signs the
// certificates Pebble issues (a new one each time Pebble starts), from its
// management interface: what a client must trust to call a server that
// holds one.
func (s *Server) IssuerRoots(t testing.TB) *x509.CertPool {
	t.Helper()
	resp, err := s.client.Get(s.management + "/roots/0")
	if err != nil {
		t.Fatalf("pebbletest: root: %v", err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("pebbletest: root: %s %v", resp.Status, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		t.Fatalf("pebbletest: the root is not PEM:\n%s", data)
	}
	return pool
}

// Issued returns how many certificates Pebble has issued, from its log.
func (s *Server) Issued() int {
	return strings.Count(s.log.String(), "Issued certificate serial ")
}

// Log returns what Pebble has logged so far.
func (s *Server) Log() string { return s.log.String() }

// freeAddr returns an address of 127.0.0.1 with a port that was free a
// moment ago.
func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// writeDirectoryCert writes a self-signed certificate for 127.0.0.1 and its
// key, for the HTTPS of Pebble's directory and management interface.
func writeDirectoryCert(t testing.TB, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "pebbletest directory"},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:     []string{"localhost"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "directory-cert.pem"), filepath.Join(dir, "directory-key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

// serveDNS answers DNS over TCP (the transport Pebble's resolver uses) on a
// free port of 127.0.0.1 until t ends: every A question with 127.0.0.1,
// every other question with no answer.
func serveDNS(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { l.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer conn.Close()
				answerDNS(conn)
			}()
		}
	}()
	return l.Addr().String()
}

// answerDNS answers the length-prefixed messages of one TCP connection.
func answerDNS(conn net.Conn) {
	for {
		conn.SetDeadline(time.Now().Add(10 * time.Second))
		var size [2]byte
		if _, err := io.ReadFull(conn, size[:]); err != nil {
			return
		}
		query := make([]byte, binary.BigEndian.Uint16(size[:]))
		if _, err := io.ReadFull(conn, query); err != nil {
			return
		}
		reply, err := dnsReply(query)
		if err != nil {
			return
		}
		out := binary.BigEndian.AppendUint16(nil, uint16(len(reply)))
		if _, err := conn.Write(append(out, reply...)); err != nil {
			return
		}
	}
}

func dnsReply(query []byte) ([]byte, error) {
	var p dnsmessage.Parser
	h, err := p.Start(query)
	if err != nil {
		return nil, err
	}
	q, err := p.Question()
	if err != nil {
		return nil, err
	}
	b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true, RecursionDesired: h.RecursionDesired})
	b.EnableCompression()
	if err := b.StartQuestions(); err != nil {
		return nil, err
	}
	if err := b.Question(q); err != nil {
		return nil, err
	}
	if err := b.StartAnswers(); err != nil {
		return nil, err
	}
	if q.Type == dnsmessage.TypeA && q.Class == dnsmessage.ClassINET {
		rh := dnsmessage.ResourceHeader{Name: q.Name, Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET, TTL: 1}
		if err := b.AResource(rh, dnsmessage.AResource{A: [4]byte{127, 0, 0, 1}}); err != nil {
			return nil, err
		}
	}
	return b.Finish()
}

// lockedBuffer collects Pebble's output, written by exec's copying
// goroutines while tests read it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

var built struct {
	once sync.Once
	path string
	err  error
}

// Binary returns the path of the Pebble binary, building it the first time
// on this machine (for pebble/'s go.mod and go.sum).
func Binary() (string, error) {
	built.once.Do(func() { built.path, built.err = build() })
	return built.path, built.err
}

func build() (string, error) {
	_, file, _, ok := runtime.Caller(0)
	if !ok || !filepath.IsAbs(file) {
		return "", fmt.Errorf("cannot find the source of pebbletest (built with -trimpath?): %q", file)
	}
	src := filepath.Join(filepath.Dir(file), "pebble")
	h := sha256.New()
	fmt.Fprintln(h, runtime.GOOS, runtime.GOARCH, runtime.Version())
	for _, name := range []string{"go.mod", "go.sum"} {
		data, err := os.ReadFile(filepath.Join(src, name))
		if err != nil {
			return "", err
		}
		fmt.Fprintln(h, name, len(data))
		h.Write(data)
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	dir := filepath.Join(cache, "latchkey-pebbletest", hex.EncodeToString(h.Sum(nil))[:20])
	bin := filepath.Join(dir, "pebble")
	if fi, err := os.Stat(bin); err == nil && fi.Mode().IsRegular() {
		return bin, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	goCmd, err := exec.LookPath("go")
	if err != nil {
		goCmd = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	// Into a name of its own, then renamed: test binaries of other
	// packages may build at the same time.
	suffix := make([]byte, 4)
	rand.Read(suffix)
	tmp := filepath.Join(dir, "pebble."+hex.EncodeToString(suffix))
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, goCmd, "build", "-o", tmp, "github.com/letsencrypt/pebble/v2/cmd/pebble")
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=readonly -buildvcs=false")
	if out, err := cmd.CombinedOutput(); err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("go build in %s: %v\n%s", src, err, out)
	}
	if err := os.Rename(tmp, bin); err != nil {
		os.Remove(tmp)
		return "", errors.Join(err, os.Remove(tmp))
	}
	return bin, nil
}
