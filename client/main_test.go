package client_test

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
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect/v2"
	"connectrpc.com/connect/v2/connecthttp"

	latchkeyv1 "github.com/latchkey/latchkey/gen/latchkey/v1"
	"github.com/latchkey/latchkey/gen/latchkey/v1/latchkeyv1connect"
)

// The tests run against the real server, built from this repository's
// main module and started once: the client module itself does not import
// the server, so that its importers never get the server's dependencies.
var (
	latchkeyURL string // the server's base URL
	tenantKey   string // the system key of the tests' account
	serviceKey  string // a key holding api_keys:verify, as a protected service has
)

func TestMain(m *testing.M) {
	stop, err := startLatchkey()
	if err != nil {
		fmt.Fprintln(os.Stderr, "client tests:", err)
		os.Exit(1)
	}
	code := m.Run()
	stop()
	os.Exit(code)
}

var operatorLine = regexp.MustCompile(`^operator key \(shown once\): (lk_live_\S+)$`)

func startLatchkey() (stop func(), err error) {
	dir, err := os.MkdirTemp("", "latchkey-client-test")
	if err != nil {
		return nil, err
	}
	bin := filepath.Join(dir, "latchkey")
	build := exec.Command("go", "build", "-o", bin, "./cmd/latchkey")
	build.Dir = ".."
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
	stop = func() {
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
		os.RemoveAll(dir)
	}
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
		stop()
		return nil, fmt.Errorf("latchkey did not start")
	}
	go func() { // keep draining, so the server never blocks on its log
		for lines.Scan() {
		}
	}()
	latchkeyURL = "http://" + addr
	created, err := latchkeyv1connect.NewAccountServiceClient(admin(operator)).CreateAccount(context.Background(),
		&latchkeyv1.CreateAccountRequest{Name: "client tests", MaxActiveKeys: 100_000})
	if err != nil {
		stop()
		return nil, err
	}
	tenantKey = created.GetSystemApiKey().GetSpec().GetToken()
	_, serviceKey, err = issue("api_keys:verify")
	if err != nil {
		stop()
		return nil, err
	}
	return stop, nil
}

// admin returns a Connect client of the server that presents key.
func admin(key string) *connect.Client {
	withKey := func(next connect.ClientFunc) connect.ClientFunc {
		return func(ctx context.Context, spec connect.Spec) (connect.ClientStream, error) {
			if info, ok := connect.CallInfoForClientContext(ctx); ok {
				info.RequestHeader().Set("Authorization", "Bearer "+key)
			}
			return next(ctx, spec)
		}
	}
	return connect.NewClient(connecthttp.NewTransport(http.DefaultClient, latchkeyURL), withKey)
}

// issue makes a key of the tests' account and returns its id and token.
func issue(perms ...string) (string, string, error) {
	return issueWith(&latchkeyv1.ApiKeySpec{Permissions: perms})
}

func issueWith(spec *latchkeyv1.ApiKeySpec) (string, string, error) {
	res, err := latchkeyv1connect.NewApiKeyServiceClient(admin(tenantKey)).Issue(context.Background(), &latchkeyv1.IssueRequest{
		Metadata: &latchkeyv1.AccountResourceMetadata{Name: "client test"}, Spec: spec,
	})
	if err != nil {
		return "", "", err
	}
	return res.GetApiKey().GetMetadata().GetId(), res.GetApiKey().GetSpec().GetToken(), nil
}

func mustIssue(t testing.TB, perms ...string) (string, string) {
	t.Helper()
	id, tok, err := issue(perms...)
	if err != nil {
		t.Fatal(err)
	}
	return id, tok
}

func revoke(t testing.TB, id string) {
	t.Helper()
	if _, err := latchkeyv1connect.NewApiKeyServiceClient(admin(tenantKey)).Revoke(context.Background(), &latchkeyv1.RevokeRequest{Id: id}); err != nil {
		t.Fatal(err)
	}
}

// madeUp is a token of the right shape that names no key.
func madeUp() string {
	return "lk_live_01JD0000000000000000000000_" + strings.Repeat("a", 38)
}
