package client_test

import (
	"fmt"
	"os"
	"testing"

	"github.com/latchkey/latchkey/client/internal/latchkeytest"
	latchkeyv1 "github.com/latchkey/latchkey/gen/latchkey/v1"
)

// The tests run against the real server (latchkeytest), started once.
var (
	server      *latchkeytest.Server
	latchkeyURL string // the server's base URL
	serviceKey  string // a key holding api_keys:verify, as a protected service has
	// exampleCallerKey is the key a caller presents in the examples.
	exampleCallerKey string
)

func TestMain(m *testing.M) {
	s, err := latchkeytest.Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, "client tests:", err)
		os.Exit(1)
	}
	server, latchkeyURL, serviceKey = s, s.URL, s.ServiceKey
	// The examples read their configuration as a service would.
	os.Setenv("LATCHKEY_URL", s.URL)
	os.Setenv("LATCHKEY_SERVICE_KEY", s.ServiceKey)
	_, exampleCallerKey, err = s.Issue(&latchkeyv1.ApiKeySpec{Permissions: []string{"invoices:read"}})
	if err != nil {
		fmt.Fprintln(os.Stderr, "client tests:", err)
		os.Exit(1)
	}
	code := m.Run()
	s.Stop()
	os.Exit(code)
}

func issueWith(spec *latchkeyv1.ApiKeySpec) (string, string, error) { return server.Issue(spec) }

func mustIssue(t testing.TB, perms ...string) (string, string) {
	t.Helper()
	id, tok, err := server.Issue(&latchkeyv1.ApiKeySpec{Permissions: perms})
	if err != nil {
		t.Fatal(err)
	}
	return id, tok
}

func revoke(t testing.TB, id string) {
	t.Helper()
	if err := server.Revoke(id); err != nil {
		t.Fatal(err)
	}
}

func madeUp() string { return latchkeytest.MadeUp() }
