package main

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect/v2"
	"connectrpc.com/connect/v2/connecthttp"

	latchkeyv1 "github.com/latchkey/latchkey/gen/latchkey/v1"
	"github.com/latchkey/latchkey/gen/latchkey/v1/latchkeyv1connect"
	"github.com/latchkey/latchkey/internal/pepper"
)

// lockedBuffer is the stderr of a server running in a goroutine.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
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

// started is one `latchkey serve` running in-process.
type started struct {
	addr   string
	stderr *lockedBuffer
	stop   func() error
	// shutdown starts a graceful stop, as SIGTERM does, without waiting.
	shutdown func()
}

func startServe(t testing.TB, args ...string) started {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	stderr := &lockedBuffer{}
	done := make(chan error, 1)
	go func() { done <- run(ctx, append([]string{"serve", "--addr", "127.0.0.1:0"}, args...), stderr) }()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		for _, line := range strings.Split(stderr.String(), "\n") {
			var entry struct{ Msg, Addr string }
			if json.Unmarshal([]byte(line), &entry) == nil && entry.Msg == "serving" {
				return started{addr: entry.Addr, stderr: stderr, stop: func() error { cancel(); return <-done }, shutdown: cancel}
			}
		}
		select {
		case err := <-done:
			cancel()
			t.Fatalf("serve exited: %v\n%s", err, stderr)
		case <-time.After(20 * time.Millisecond):
		}
	}
	cancel()
	t.Fatalf("serve did not start:\n%s", stderr)
	return started{}
}

// client: connect-go
// newAuthClient returns a Connect client of AuthService at baseURL that
// presents apiKey on every call. The other services' clients are made the
// same way, from the generated latchkeyv1connect package. Its transport
// speaks HTTP/2, also to an http:// URL, so that concurrent calls share a
// connection: http.DefaultClient opens one per concurrent call and leaves
// thousands in TIME-WAIT under load. To verify keys on a hot path, use the
// client module (github.com/latchkey/latchkey/client), which caches.
func newAuthClient(baseURL, apiKey string) latchkeyv1connect.AuthServiceClient {
	withKey := func(next connect.ClientFunc) connect.ClientFunc {
		return func(ctx context.Context, spec connect.Spec) (connect.ClientStream, error) {
			if info, ok := connect.CallInfoForClientContext(ctx); ok {
				info.RequestHeader().Set("Authorization", "Bearer "+apiKey)
			}
			return next(ctx, spec)
		}
	}
	protocols := new(http.Protocols)
	protocols.SetHTTP2(true)
	protocols.SetUnencryptedHTTP2(true)
	httpClient := &http.Client{Transport: &http.Transport{Protocols: protocols}, Timeout: 10 * time.Second}
	return latchkeyv1connect.NewAuthServiceClient(connect.NewClient(
		connecthttp.NewTransport(httpClient, baseURL), withKey))
}

// end client: connect-go

var operatorLine = regexp.MustCompile(`(?m)^operator key \(shown once\): (lk_live_\S+)$`)

func TestServe(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "latchkey.db")

	first := startServe(t, "--db", db)
	m := operatorLine.FindStringSubmatch(first.stderr.String())
	if m == nil {
		t.Fatalf("no operator line on first start:\n%s", first.stderr)
	}
	client := newAuthClient("http://"+first.addr, m[1])
	who, err := client.WhoAmI(t.Context(), &latchkeyv1.WhoAmIRequest{})
	if err != nil || !who.GetAccount().GetSpec().GetOperator() {
		t.Fatalf("WhoAmI with the operator key = %v, %v", who, err)
	}
	if err := first.stop(); err != nil {
		t.Fatalf("graceful stop: %v", err)
	}
	// The pepper file is private and the log never showed the token.
	pepperFile := filepath.Join(dir, "latchkey.pepper")
	info, err := os.Stat(pepperFile)
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("pepper file: %v, %v", info, err)
	}
	if strings.Count(first.stderr.String(), m[1]) != 1 {
		t.Error("the operator token appears more than once on stderr")
	}

	t.Run("a second start shows no token", func(t *testing.T) {
		second := startServe(t, "--db", db)
		if err := second.stop(); err != nil {
			t.Fatal(err)
		}
		if operatorLine.MatchString(second.stderr.String()) {
			t.Error("second start printed an operator key")
		}
	})

	t.Run("a database with keys refuses to start without its pepper", func(t *testing.T) {
		if err := os.Rename(pepperFile, pepperFile+".bak"); err != nil {
			t.Fatal(err)
		}
		defer os.Rename(pepperFile+".bak", pepperFile)
		err := run(t.Context(), []string{"serve", "--addr", "127.0.0.1:0", "--db", db}, &lockedBuffer{})
		if err == nil || !strings.Contains(err.Error(), "pepper") {
			t.Fatalf("start without pepper: %v", err)
		}
		if _, statErr := os.Stat(pepperFile); statErr == nil {
			t.Error("a new pepper was made for a database with keys")
		}
	})

	t.Run("a database with keys refuses to start with another pepper", func(t *testing.T) {
		other := filepath.Join(t.TempDir(), "other.pepper")
		if _, _, err := pepper.LoadOrCreate(other, true); err != nil {
			t.Fatal(err)
		}
		err := run(t.Context(), []string{"serve", "--addr", "127.0.0.1:0", "--db", db, "--pepper-file", other}, &lockedBuffer{})
		if err == nil || !strings.Contains(err.Error(), "not the one the database") {
			t.Fatalf("start with another pepper: %v", err)
		}
	})

	t.Run("flags come from the environment too", func(t *testing.T) {
		cfg, err := parseConfig([]string{"--addr", "127.0.0.1:9"}, func(k string) string {
			return map[string]string{"LATCHKEY_ADDR": "0.0.0.0:1", "LATCHKEY_TOKEN_PREFIX": "acme"}[k]
		}, &lockedBuffer{})
		if err != nil || cfg.addr != "127.0.0.1:9" || cfg.tokenPrefix != "acme" {
			t.Errorf("config = %+v, %v", cfg, err)
		}
		if _, err := parseConfig(nil, func(k string) string {
			return map[string]string{"LATCHKEY_TOKEN_PREFIX": "Bad_Prefix"}[k]
		}, &lockedBuffer{}); err == nil {
			t.Error("a bad token prefix was accepted")
		}
	})

	t.Run("PostgreSQL needs a pepper file and never logs the password", func(t *testing.T) {
		none := func(string) string { return "" }
		const url = "postgres://latchkey:s3cret@db.internal:5432/latchkey"
		if _, err := parseConfig([]string{"--db", url}, none, &lockedBuffer{}); err == nil || !strings.Contains(err.Error(), "--pepper-file") {
			t.Errorf("a PostgreSQL --db without --pepper-file: %v", err)
		}
		cfg, err := parseConfig([]string{"--db", url, "--pepper-file", "p"}, none, &lockedBuffer{})
		if err != nil {
			t.Fatal(err)
		}
		if name := cfg.dbName(); strings.Contains(name, "s3cret") || !strings.Contains(name, "db.internal") {
			t.Errorf("dbName() = %q", name)
		}
	})

	t.Run("timeouts that would let a slow client hold a connection are refused", func(t *testing.T) {
		for _, args := range [][]string{
			{"--read-header-timeout", "0s"},
			{"--read-timeout", "0s"},
			{"--read-header-timeout", "10s", "--read-timeout", "5s"},
		} {
			if _, err := parseConfig(args, func(string) string { return "" }, &lockedBuffer{}); err == nil {
				t.Errorf("%v was accepted", args)
			}
		}
	})
}
