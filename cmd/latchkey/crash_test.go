package main

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect/v2"
	"connectrpc.com/connect/v2/connecthttp"

	latchkeyv1 "github.com/latchkey/latchkey/gen/latchkey/v1"
	"github.com/latchkey/latchkey/gen/latchkey/v1/latchkeyv1connect"
)

// crashRounds is how many times TestCrashSafety kills the server.
const crashRounds = 15

// TestCrashSafety builds the latchkey binary, loads it with several
// clients issuing and revoking keys, kills it with SIGKILL at a random
// moment, and restarts it on the database as the kill left it, many times
// over. After every restart each key whose Issue was answered must verify,
// each key whose Revoke was answered must stay revoked, and SQLite's
// integrity_check must say ok.
func TestCrashSafety(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills the real binary")
	}
	dir := t.TempDir()
	bin := buildLatchkey(t)
	db := filepath.Join(dir, "latchkey.db")

	// The first start prints the operator key, which makes the tenant.
	srv := startBinary(t, bin, "--db", db)
	if srv.operator == "" {
		t.Fatal("no operator key on the first start")
	}
	created, err := latchkeyv1connect.NewAccountServiceClient(srv.client(srv.operator)).CreateAccount(t.Context(),
		&latchkeyv1.CreateAccountRequest{Name: "crash", MaxActiveKeys: 1_000_000})
	if err != nil {
		t.Fatal(err)
	}
	tenant := created.GetSystemApiKey().GetSpec().GetToken()

	var (
		mu      sync.Mutex
		issued  = map[string]string{} // acknowledged keys: id → token
		revoked = map[string]bool{}   // acknowledged revocations
		unsure  = map[string]bool{}   // revocations cut off by the kill
	)
	for round := range crashRounds {
		keys := latchkeyv1connect.NewApiKeyServiceClient(srv.client(tenant))
		var clients sync.WaitGroup
		for c := range 6 {
			clients.Go(func() {
				var mine []string
				for i := 0; ; i++ {
					if i%3 == 2 && len(mine) > 0 {
						id := mine[0]
						mine = mine[1:]
						mu.Lock()
						unsure[id] = true
						mu.Unlock()
						_, err := keys.Revoke(context.Background(), &latchkeyv1.RevokeRequest{Id: id})
						if err != nil {
							return // the server is gone: this revocation may or may not have landed
						}
						mu.Lock()
						delete(unsure, id)
						revoked[id] = true
						mu.Unlock()
						continue
					}
					res, err := keys.Issue(context.Background(), &latchkeyv1.IssueRequest{
						Metadata: &latchkeyv1.AccountResourceMetadata{Name: "crash " + string(rune('a'+c))},
					})
					if err != nil {
						return
					}
					id := res.GetApiKey().GetMetadata().GetId()
					mine = append(mine, id)
					mu.Lock()
					issued[id] = res.GetApiKey().GetSpec().GetToken()
					mu.Unlock()
				}
			})
		}
		time.Sleep(time.Duration(50+rand.IntN(400)) * time.Millisecond)
		srv.kill(t)
		clients.Wait()

		// The restart meets the database exactly as the kill left it, its
		// write-ahead log included, as a restart after a crash would:
		// nothing opens it first, since the last connection to close
		// (integrity_check's) would replay and checkpoint the log and
		// hide a store that mishandles it.
		srv = startBinary(t, bin, "--db", db)
		if srv.operator != "" {
			t.Fatalf("round %d: a restart bootstrapped a second operator", round)
		}
		verify := latchkeyv1connect.NewAuthServiceClient(srv.client(tenant))
		for id, tok := range issued {
			res, err := verify.Verify(t.Context(), &latchkeyv1.VerifyRequest{Token: tok})
			if err != nil {
				t.Fatalf("round %d: Verify: %v", round, err)
			}
			switch {
			case unsure[id]:
			case revoked[id] && res.GetCode() != latchkeyv1.VerifyCode_VERIFY_CODE_REVOKED:
				t.Errorf("round %d: key %s was revoked and acknowledged, but verifies %v", round, id, res.GetCode())
			case !revoked[id] && !res.GetValid():
				t.Errorf("round %d: key %s was issued and acknowledged, but verifies %v", round, id, res.GetCode())
			}
		}
		checkIntegrity(t, db) // beside the running server, which keeps the log
		if t.Failed() {
			return
		}
	}
	srv.kill(t)
	checkIntegrity(t, db)
	t.Logf("%d rounds: %d keys issued and %d revoked with acknowledgement, %d revocations cut off by a kill",
		crashRounds, len(issued), len(revoked), len(unsure))
	if len(issued) < crashRounds*10 {
		t.Errorf("only %d keys were issued: the load did not run", len(issued))
	}
}

// process is one running latchkey process.
type process struct {
	cmd      *exec.Cmd
	addr     string
	operator string
	http     *http.Client
	ready    chan struct{}   // closed once it serves
	log      strings.Builder // stderr up to then, for a failure message
}

// buildLatchkey builds the latchkey binary into a temporary directory.
func buildLatchkey(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "latchkey")
	build := exec.CommandContext(t.Context(), filepath.Join(runtime.GOROOT(), "bin", "go"), "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// startBinary runs `latchkey serve` with args and waits until it serves.
func startBinary(t *testing.T, bin string, args ...string) *process {
	t.Helper()
	p := launchBinary(t, bin, args...)
	p.waitReady(t)
	return p
}

// launchBinary starts `latchkey serve` with args without waiting for it.
func launchBinary(t *testing.T, bin string, args ...string) *process {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"serve", "--addr", "127.0.0.1:0"}, args...)...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	p := &process{cmd: cmd, http: &http.Client{Transport: &http.Transport{}, Timeout: 10 * time.Second}, ready: make(chan struct{})}
	go func() {
		// Reads to the end, so the process never blocks on a full pipe.
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			if m := operatorLine.FindStringSubmatch(line); m != nil {
				p.operator = m[1]
				continue // the operator key stays out of the test log
			}
			if p.addr == "" {
				p.log.WriteString(line + "\n")
				var entry struct{ Msg, Addr string }
				if json.Unmarshal([]byte(line), &entry) == nil && entry.Msg == "serving" {
					p.addr = entry.Addr
					close(p.ready)
				}
			}
		}
	}()
	return p
}

// waitReady waits until the process serves.
func (p *process) waitReady(t *testing.T) {
	t.Helper()
	select {
	case <-p.ready:
	case <-time.After(30 * time.Second):
		t.Fatalf("latchkey did not start:\n%s", p.log.String())
	}
}

// client returns a Connect client that presents tok.
func (b *process) client(tok string) *connect.Client {
	withKey := func(next connect.ClientFunc) connect.ClientFunc {
		return func(ctx context.Context, spec connect.Spec) (connect.ClientStream, error) {
			if info, ok := connect.CallInfoForClientContext(ctx); ok {
				info.RequestHeader().Set("Authorization", "Bearer "+tok)
			}
			return next(ctx, spec)
		}
	}
	return connect.NewClient(connecthttp.NewTransport(b.http, "http://"+b.addr), withKey)
}

// kill sends SIGKILL and waits for the process to be gone.
func (b *process) kill(t *testing.T) {
	t.Helper()
	if err := b.cmd.Process.Signal(os.Kill); err != nil {
		t.Fatal(err)
	}
	var exit *exec.ExitError
	if err := b.cmd.Wait(); !errors.As(err, &exit) {
		t.Fatalf("after SIGKILL: %v", err)
	}
	b.http.CloseIdleConnections()
}

// checkIntegrity runs SQLite's integrity_check on db, write-ahead log
// included.
func checkIntegrity(t *testing.T, db string) {
	t.Helper()
	conn, err := sql.Open("sqlite", db)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var result string
	if err := conn.QueryRowContext(t.Context(), "PRAGMA integrity_check").Scan(&result); err != nil {
		t.Fatal(err)
	}
	if result != "ok" {
		t.Fatalf("integrity_check: %s", result)
	}
}
