package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	latchkeyv1 "github.com/latchkey/latchkey/gen/latchkey/v1"
	"github.com/latchkey/latchkey/gen/latchkey/v1/latchkeyv1connect"
	"github.com/latchkey/latchkey/internal/testenv"
)

// gatewaysEnv turns the gateway test on; CI sets it after installing
// Debian's nginx and caddy. Without it the test skips, so that `go test
// ./...` passes on a machine with Go alone.
const gatewaysEnv = "LATCHKEY_TEST_GATEWAYS"

// TestGateways puts the real nginx and the real Caddy, with the
// configurations shipped in deploy/, in front of a small upstream, and
// checks what callers get through them: the upstream sees a request only
// with a key Latchkey admits for the route, and sees the identity Latchkey
// gave, never one the caller made up.
func TestGateways(t *testing.T) {
	if os.Getenv(gatewaysEnv) == "" {
		testenv.Skip(t, gatewaysEnv+" is not set (.ci/run sets it)")
	}
	srv := startServe(t, "--db", filepath.Join(t.TempDir(), "latchkey.db"), "--pepper-file", filepath.Join(t.TempDir(), "pepper"))
	tenant := tenantOf(t, srv)
	keys := latchkeyv1connect.NewApiKeyServiceClient(clientWithKey(srv.addr, tenant))
	issueSpec := func(spec *latchkeyv1.ApiKeySpec) (string, string) {
		res, err := keys.Issue(t.Context(), &latchkeyv1.IssueRequest{
			Metadata: &latchkeyv1.AccountResourceMetadata{Name: "gateway test"},
			Spec:     spec,
		})
		if err != nil {
			t.Fatal(err)
		}
		return res.GetApiKey().GetMetadata().GetId(), res.GetApiKey().GetSpec().GetToken()
	}
	issue := func(perms ...string) (string, string) {
		return issueSpec(&latchkeyv1.ApiKeySpec{Permissions: perms})
	}
	_, gatewayKey := issue("api_keys:verify")
	readerID, reader := issue("invoices:read")
	managerID, manager := issue("invoices:manage")
	revokedID, revoked := issue("invoices:read")
	if _, err := keys.Revoke(t.Context(), &latchkeyv1.RevokeRequest{Id: revokedID}); err != nil {
		t.Fatal(err)
	}
	// The test's calls come from 127.0.0.1: one key admits only that
	// address, the other only an address the caller can merely claim.
	localID, local := issueSpec(&latchkeyv1.ApiKeySpec{Permissions: []string{"invoices:read"}, AllowedCidrs: []string{"127.0.0.1/32"}})
	_, elsewhere := issueSpec(&latchkeyv1.ApiKeySpec{Permissions: []string{"invoices:read"}, AllowedCidrs: []string{"192.0.2.0/24"}})

	// The upstream answers with the Latchkey headers it was given.
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got := map[string]string{}
		for _, h := range []string{"Latchkey-Key-Id", "Latchkey-Account-Id", "Latchkey-Profile-Id", "Latchkey-Gateway-Key", "Latchkey_Key_Id"} {
			got[h] = r.Header.Get(h)
		}
		got["path"] = r.RequestURI
		json.NewEncoder(w).Encode(got)
	}))
	defer upstream.Close()
	backend := strings.TrimPrefix(upstream.URL, "http://")

	gateways := map[string]string{
		"nginx": startNginx(t, srv.addr, backend, gatewayKey),
		"caddy": startCaddy(t, srv.addr, backend, gatewayKey),
	}
	for name, base := range gateways {
		t.Run(name, func(t *testing.T) {
			call := func(path string, headers map[string]string) (int, map[string]string) {
				t.Helper()
				req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, base+path, nil)
				for k, v := range headers {
					req.Header.Set(k, v)
				}
				res, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer res.Body.Close()
				body, _ := io.ReadAll(res.Body)
				seen := map[string]string{}
				if res.StatusCode == http.StatusOK {
					if err := json.Unmarshal(body, &seen); err != nil {
						t.Fatalf("HTTP 200 not from the upstream: %s", body)
					}
				}
				return res.StatusCode, seen
			}
			t.Run("no key is 401", func(t *testing.T) {
				if status, _ := call("/invoices/1", nil); status != 401 {
					t.Fatalf("HTTP %d", status)
				}
			})
			t.Run("a revoked key is 401", func(t *testing.T) {
				if status, _ := call("/invoices/1", map[string]string{"Authorization": "Bearer " + revoked}); status != 401 {
					t.Fatalf("HTTP %d", status)
				}
			})
			t.Run("a key the route's permission admits reaches the upstream as itself", func(t *testing.T) {
				status, seen := call("/invoices/1", map[string]string{"Authorization": "Bearer " + reader})
				if status != 200 || seen["Latchkey-Key-Id"] != readerID || !strings.HasPrefix(seen["Latchkey-Account-Id"], "acct_") ||
					!strings.HasPrefix(seen["Latchkey-Profile-Id"], "prof_") {
					t.Fatalf("HTTP %d, the upstream saw %v", status, seen)
				}
				if seen["Latchkey-Gateway-Key"] != "" {
					t.Fatal("the gateway's own key reached the upstream")
				}
			})
			t.Run("x-api-key works too", func(t *testing.T) {
				if status, seen := call("/invoices/1", map[string]string{"X-Api-Key": reader}); status != 200 || seen["Latchkey-Key-Id"] != readerID {
					t.Fatalf("HTTP %d, the upstream saw %v", status, seen)
				}
			})
			t.Run("a route needing more is 403", func(t *testing.T) {
				if status, _ := call("/admin/1", map[string]string{"Authorization": "Bearer " + reader}); status != 403 {
					t.Fatalf("HTTP %d", status)
				}
			})
			t.Run("a path not in normal form is refused, so no route is checked under another's name", func(t *testing.T) {
				for _, path := range []string{"/admin/../invoices/1", "/admin/%2e%2e/invoices/1", "/admin%2f..%2finvoices/1", "/invoices/..%2f..%2fadmin/1", "/invoices//1", "/invoices/./1"} {
					status, seen := call(path, map[string]string{"Authorization": "Bearer " + reader})
					if status != 400 {
						t.Errorf("%s: HTTP %d (the upstream saw %q), want 400", path, status, seen["path"])
					}
				}
			})
			t.Run("a key is held to the caller's own address, whatever X-Forwarded-For claims", func(t *testing.T) {
				for _, claim := range []string{"", "192.0.2.7", "192.0.2.7, 192.0.2.8"} {
					h := map[string]string{"Authorization": "Bearer " + elsewhere}
					if claim != "" {
						h["X-Forwarded-For"] = claim
					}
					if status, seen := call("/invoices/1", h); status != 403 {
						t.Errorf("a key for 192.0.2.0/24, called from 127.0.0.1 claiming %q: HTTP %d (the upstream saw %v), want 403", claim, status, seen)
					}
				}
				status, seen := call("/invoices/1", map[string]string{"Authorization": "Bearer " + local, "X-Forwarded-For": "192.0.2.7"})
				if status != 200 || seen["Latchkey-Key-Id"] != localID {
					t.Errorf("a key for 127.0.0.1, called from there claiming 192.0.2.7: HTTP %d, the upstream saw %v", status, seen)
				}
			})
			t.Run("identity headers the caller sends never reach the upstream", func(t *testing.T) {
				// On every route: each protects itself.
				for _, route := range []struct{ path, id, token string }{{"/invoices/1", readerID, reader}, {"/admin/1", managerID, manager}} {
					forged := map[string]string{
						"Authorization":        "Bearer " + route.token,
						"Latchkey-Key-Id":      "key_forged",
						"Latchkey-Account-Id":  "acct_forged",
						"Latchkey-Profile-Id":  "prof_forged",
						"Latchkey-Gateway-Key": "lk_forged",
						// Some servers read underscores as dashes.
						"Latchkey_Key_Id": "key_forged",
					}
					if status, seen := call(route.path, forged); status != 200 || seen["Latchkey-Key-Id"] != route.id || strings.Contains(fmt.Sprint(seen), "forged") {
						t.Errorf("%s: HTTP %d, the upstream saw %v", route.path, status, seen)
					}
					delete(forged, "Authorization")
					if status, _ := call(route.path, forged); status != 401 {
						t.Errorf("%s: forged identity without a key: HTTP %d", route.path, status)
					}
				}
			})
		})
	}
	t.Run("with Latchkey down, nothing gets through", func(t *testing.T) {
		if err := srv.stop(); err != nil {
			t.Fatal(err)
		}
		for name, base := range gateways {
			req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, base+"/invoices/1", nil)
			req.Header.Set("Authorization", "Bearer "+reader)
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode < 500 {
				t.Errorf("%s: HTTP %d with Latchkey stopped, want a 5xx", name, res.StatusCode)
			}
		}
	})
}

// freeAddr returns a loopback address nothing listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// shipped reads a file of deploy/ and puts the test's addresses where the
// shipped one has its examples.
func shipped(t *testing.T, name, latchkey, backend, listen, exampleListen string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "deploy", name))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for _, r := range [][2]string{{"127.0.0.1:8080", latchkey}, {"127.0.0.1:9000", backend}, {exampleListen, listen}} {
		if !strings.Contains(s, r[0]) {
			t.Fatalf("deploy/%s has no %s to replace", name, r[0])
		}
		s = strings.ReplaceAll(s, r[0], r[1])
	}
	return s
}

// startNginx runs nginx with deploy/nginx and returns its base URL.
func startNginx(t *testing.T, latchkey, backend, gatewayKey string) string {
	t.Helper()
	bin, err := exec.LookPath("nginx")
	if err != nil {
		t.Fatalf("%s is set but nginx is not installed: %v", gatewaysEnv, err)
	}
	dir := t.TempDir()
	listen := freeAddr(t)
	write := func(name, content string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("latchkey.conf", shipped(t, "nginx/latchkey.conf", latchkey, backend, listen, "127.0.0.1:8081"))
	protect, err := os.ReadFile(filepath.Join("..", "..", "deploy", "nginx", "latchkey-protect.conf"))
	if err != nil {
		t.Fatal(err)
	}
	write("latchkey-protect.conf", string(protect))
	write("latchkey-gateway-key.conf", fmt.Sprintf("proxy_set_header Latchkey-Gateway-Key %q;\n", gatewayKey))
	// The frame a distribution's nginx.conf gives conf.d/, in the test's
	// directory; workers run as the test's user so they can read it.
	user := ""
	if os.Geteuid() == 0 {
		user = "user root;"
	}
	write("nginx.conf", fmt.Sprintf(`%s
daemon off;
pid %[2]s/nginx.pid;
error_log %[2]s/error.log;
events {}
http {
    access_log %[2]s/access.log;
    client_body_temp_path %[2]s/body;
    proxy_temp_path %[2]s/proxy;
    fastcgi_temp_path %[2]s/fastcgi;
    uwsgi_temp_path %[2]s/uwsgi;
    scgi_temp_path %[2]s/scgi;
    include %[2]s/latchkey.conf;
}
`, user, dir))
	cmd := exec.Command(bin, "-p", dir, "-c", filepath.Join(dir, "nginx.conf"))
	runProcess(t, "nginx", cmd, listen, func() string {
		b, _ := os.ReadFile(filepath.Join(dir, "error.log"))
		return string(b)
	})
	return "http://" + listen
}

// startCaddy runs caddy with deploy/caddy/Caddyfile and returns its base
// URL.
func startCaddy(t *testing.T, latchkey, backend, gatewayKey string) string {
	t.Helper()
	bin, err := exec.LookPath("caddy")
	if err != nil {
		t.Fatalf("%s is set but caddy is not installed: %v", gatewaysEnv, err)
	}
	dir := t.TempDir()
	listen := freeAddr(t)
	config := filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(config, []byte(shipped(t, "caddy/Caddyfile", latchkey, backend, listen, "127.0.0.1:8082")), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "run", "--config", config, "--adapter", "caddyfile")
	cmd.Env = append(os.Environ(), "LATCHKEY_GATEWAY_KEY="+gatewayKey, "HOME="+dir, "XDG_DATA_HOME="+dir, "XDG_CONFIG_HOME="+dir)
	var log lockedBuffer
	cmd.Stderr = &log
	runProcess(t, "caddy", cmd, listen, log.String)
	return "http://" + listen
}

// runProcess starts cmd, stops it when the test ends, and waits until it
// accepts connections on listen.
func runProcess(t *testing.T, name string, cmd *exec.Cmd, listen string, logs func() string) {
	t.Helper()
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	exited := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
	})
	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
	defer cancel()
	for {
		if conn, err := net.Dial("tcp", listen); err == nil {
			conn.Close()
			return
		}
		select {
		case <-exited:
			t.Fatalf("%s exited: %v\n%s", name, waitErr, logs())
		case <-ctx.Done():
			t.Fatalf("%s does not listen on %s:\n%s", name, listen, logs())
		case <-time.After(20 * time.Millisecond):
		}
	}
}
