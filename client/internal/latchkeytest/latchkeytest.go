// Package latchkeytest starts the real Latchkey server for the client
// module's tests: built from this repository's main module, which the
// client module does not import, so that its importers never get the
// server's dependencies.
package latchkeytest

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"time"

	"connectrpc.com/connect/v2"
	"connectrpc.com/connect/v2/connecthttp"

	latchkeyv1 "github.com/latchkey/latchkey/gen/latchkey/v1"
	"github.com/latchkey/latchkey/gen/latchkey/v1/latchkeyv1connect"
)

// Server is a running Latchkey with an account for the tests.
type Server struct {
	// URL is the server's base URL.
	URL string
	// TenantKey is the system key of the tests' account.
	TenantKey string
	// ServiceKey holds api_keys:verify, as a protected service's key does.
	ServiceKey string
	// operator is the operator's key, for the few tests that need it
	// (accounts of their own, suspensions); it is never printed.
	operator string
	stop     func()
}

var operatorLine = regexp.MustCompile(`^operator key \(shown once\): (lk_live_\S+)$`)

// Start builds and starts the server. Stop it with Stop.
func Start() (*Server, error) {
	dir, err := os.MkdirTemp("", "latchkey-client-test")
	if err != nil {
		return nil, err
	}
	_, here, _, _ := runtime.Caller(0)
	repo := filepath.Join(filepath.Dir(here), "..", "..", "..")
	bin := filepath.Join(dir, "latchkey")
	build := exec.Command("go", "build", "-o", bin, "./cmd/latchkey")
	build.Dir = repo
	if out, err := build.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("build latchkey: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "serve", "--addr", "127.0.0.1:0", "--db", filepath.Join(dir, "db"), "--pepper-file", filepath.Join(dir, "pepper"))
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &Server{stop: func() {
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
		os.RemoveAll(dir)
	}}
	var operator, addr string
	lines := bufio.NewScanner(stderr)
	deadline := time.Now().Add(20 * time.Second)
	for (operator == "" || addr == "") && time.Now().Before(deadline) && lines.Scan() {
		if m := operatorLine.FindStringSubmatch(lines.Text()); m != nil {
			operator = m[1]
		}
		var entry struct{ Msg, Addr string }
		if json.Unmarshal(lines.Bytes(), &entry) == nil && entry.Msg == "serving" {
			addr = entry.Addr
		}
	}
	if operator == "" || addr == "" {
		s.Stop()
		return nil, fmt.Errorf("latchkey did not start")
	}
	go func() { // keep draining, so the server never blocks on its log
		for lines.Scan() {
		}
	}()
	s.URL, s.operator = "http://"+addr, operator
	created, err := s.NewAccount("client tests")
	if err != nil {
		s.Stop()
		return nil, err
	}
	s.TenantKey = created.SystemKey
	if _, s.ServiceKey, err = s.Issue(&latchkeyv1.ApiKeySpec{Permissions: []string{"api_keys:verify"}}); err != nil {
		s.Stop()
		return nil, err
	}
	return s, nil
}

// Stop stops the server and removes its files.
func (s *Server) Stop() { s.stop() }

// Admin returns a Connect client of the server that presents key.
func (s *Server) Admin(key string) *connect.Client {
	withKey := func(next connect.ClientFunc) connect.ClientFunc {
		return func(ctx context.Context, spec connect.Spec) (connect.ClientStream, error) {
			if info, ok := connect.CallInfoForClientContext(ctx); ok {
				info.RequestHeader().Set("Authorization", "Bearer "+key)
			}
			return next(ctx, spec)
		}
	}
	return connect.NewClient(connecthttp.NewTransport(http.DefaultClient, s.URL), withKey)
}

// Issue makes a key of the tests' account and returns its id and token.
func (s *Server) Issue(spec *latchkeyv1.ApiKeySpec) (string, string, error) {
	return s.IssueWith(s.TenantKey, spec)
}

// IssueWith makes a key of the account of key (a system key, or one
// that may issue spec) and returns its id and token.
func (s *Server) IssueWith(key string, spec *latchkeyv1.ApiKeySpec) (string, string, error) {
	res, err := latchkeyv1connect.NewApiKeyServiceClient(s.Admin(key)).Issue(context.Background(), &latchkeyv1.IssueRequest{
		Metadata: &latchkeyv1.AccountResourceMetadata{Name: "client test"}, Spec: spec,
	})
	if err != nil {
		return "", "", err
	}
	return res.GetApiKey().GetMetadata().GetId(), res.GetApiKey().GetSpec().GetToken(), nil
}

// IssueOperator makes a key of the operator account, as a service that
// verifies the keys of every account holds (a tenant's key verifies only
// its own account's keys), and returns its id and token.
func (s *Server) IssueOperator(spec *latchkeyv1.ApiKeySpec) (string, string, error) {
	return s.IssueWith(s.operator, spec)
}

// Account is a tenant account made by NewAccount.
type Account struct {
	ID string
	// SystemKey is the account's system key, which issues its other keys
	// (IssueWith).
	SystemKey string
}

// NewAccount creates a tenant account with the operator's key. A test
// that suspends an account makes one of its own: the tests share the
// server, and suspending theirs would refuse every other test's keys.
func (s *Server) NewAccount(name string) (Account, error) {
	res, err := latchkeyv1connect.NewAccountServiceClient(s.Admin(s.operator)).CreateAccount(context.Background(),
		&latchkeyv1.CreateAccountRequest{Name: name, MaxActiveKeys: 100_000})
	if err != nil {
		return Account{}, err
	}
	return Account{ID: res.GetAccount().GetMetadata().GetId(), SystemKey: res.GetSystemApiKey().GetSpec().GetToken()}, nil
}

// Suspend suspends an account with the operator's key: every key of it is
// refused, and Verify answers VERIFY_CODE_ACCOUNT_SUSPENDED for them.
func (s *Server) Suspend(accountID, reason string) error {
	_, err := latchkeyv1connect.NewAccountServiceClient(s.Admin(s.operator)).SuspendAccount(context.Background(),
		&latchkeyv1.SuspendAccountRequest{Id: accountID, Reason: reason})
	return err
}

// Restore ends an account's suspension with the operator's key.
func (s *Server) Restore(accountID, reason string) error {
	_, err := latchkeyv1connect.NewAccountServiceClient(s.Admin(s.operator)).RestoreAccount(context.Background(),
		&latchkeyv1.RestoreAccountRequest{Id: accountID, Reason: reason})
	return err
}

// Revoke revokes a key of the tests' account.
func (s *Server) Revoke(id string) error {
	_, err := latchkeyv1connect.NewApiKeyServiceClient(s.Admin(s.TenantKey)).Revoke(context.Background(), &latchkeyv1.RevokeRequest{Id: id})
	return err
}

// MadeUp is a token of the right shape that names no key.
func MadeUp() string {
	return "lk_live_01JD0000000000000000000000_" + strings.Repeat("a", 38)
}
