package main

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	latchkeyv1 "github.com/latchkey/latchkey/gen/latchkey/v1"
	"github.com/latchkey/latchkey/gen/latchkey/v1/latchkeyv1connect"
)

// TestExampleDownstream runs examples/downstream, a service protected by
// the client module's middleware, against a real Latchkey, end to end: its
// routes admit the keys their permissions allow, and a revocation stops a
// key at once.
func TestExampleDownstream(t *testing.T) {
	srv := startServe(t, "--db", filepath.Join(t.TempDir(), "latchkey.db"), "--pepper-file", filepath.Join(t.TempDir(), "pepper"))
	defer srv.stop()
	tenant := tenantOf(t, srv)
	keys := latchkeyv1connect.NewApiKeyServiceClient(clientWithKey(srv.addr, tenant))
	issue := func(perms ...string) (string, string) {
		res, err := keys.Issue(t.Context(), &latchkeyv1.IssueRequest{
			Metadata: &latchkeyv1.AccountResourceMetadata{Name: "downstream"}, Spec: &latchkeyv1.ApiKeySpec{Permissions: perms},
		})
		if err != nil {
			t.Fatal(err)
		}
		return res.GetApiKey().GetMetadata().GetId(), res.GetApiKey().GetSpec().GetToken()
	}
	_, service := issue("api_keys:verify")
	readerID, reader := issue("invoices:read")
	_, writer := issue("invoices:read", "invoices:write")

	bin := filepath.Join(t.TempDir(), "downstream")
	build := exec.CommandContext(t.Context(), filepath.Join(runtime.GOROOT(), "bin", "go"), "build", "-o", bin, ".")
	build.Dir = filepath.Join("..", "..", "examples", "downstream")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build examples/downstream: %v\n%s", err, out)
	}
	addr := freeAddr(t)
	cmd := exec.Command(bin, "-addr", addr)
	cmd.Env = append(os.Environ(), "LATCHKEY_URL=http://"+srv.addr, "LATCHKEY_SERVICE_KEY="+service)
	var log lockedBuffer
	cmd.Stderr = &log
	runProcess(t, "examples/downstream", cmd, addr, log.String)

	call := func(method, key string) (int, map[string]any) {
		t.Helper()
		req, _ := http.NewRequestWithContext(t.Context(), method, "http://"+addr+"/invoices", nil)
		if key != "" {
			req.Header.Set("Authorization", "Bearer "+key)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		var out map[string]any
		json.Unmarshal(body, &out)
		return res.StatusCode, out
	}
	if status, _ := call(http.MethodGet, ""); status != 401 {
		t.Fatalf("GET without a key: HTTP %d", status)
	}
	if status, out := call(http.MethodGet, reader); status != 200 || out["key"] != readerID || !strings.HasPrefix(out["account"].(string), "acct_") {
		t.Fatalf("GET as a reader: HTTP %d %v", status, out)
	}
	if status, _ := call(http.MethodPost, reader); status != 403 {
		t.Fatalf("POST as a reader: HTTP %d", status)
	}
	if status, _ := call(http.MethodPost, writer); status != 201 {
		t.Fatalf("POST as a writer: HTTP %d", status)
	}
	if _, err := keys.Revoke(t.Context(), &latchkeyv1.RevokeRequest{Id: readerID}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Second)
	for {
		status, _ := call(http.MethodGet, reader)
		if status == 401 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a revoked key still got HTTP %d a second after Revoke answered", status)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
