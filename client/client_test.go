package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/latchkey/latchkey/client"
	latchkeyv1 "github.com/latchkey/latchkey/gen/latchkey/v1"
	"github.com/latchkey/latchkey/gen/latchkey/v1/latchkeyv1connect"
)

// cuttable is an HTTP client whose connections to Latchkey the test can
// cut, and refuse until restored.
type cuttable struct {
	mu    sync.Mutex
	cut   bool
	conns []net.Conn
}

func (c *cuttable) client() *http.Client {
	protocols := new(http.Protocols)
	protocols.SetUnencryptedHTTP2(true)
	dialer := &net.Dialer{Timeout: time.Second}
	return &http.Client{Transport: &http.Transport{
		Protocols: protocols,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c.mu.Lock()
			defer c.mu.Unlock()
			if c.cut {
				return nil, errors.New("cut by the test")
			}
			conn, err := dialer.DialContext(ctx, network, addr)
			if err == nil {
				c.conns = append(c.conns, conn)
			}
			return conn, err
		},
	}}
}

func (c *cuttable) setCut(cut bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cut = cut
	if cut {
		for _, conn := range c.conns {
			conn.Close()
		}
		c.conns = nil
	}
}

func newClient(t testing.TB, opts client.Options) *client.Client {
	t.Helper()
	opts.URL, opts.Key = latchkeyURL, serviceKey
	c, err := client.New(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	waitFresh(t, c)
	return c
}

// waitFresh waits until the client's stream has spoken, so that its cache
// is in use.
func waitFresh(t testing.TB, c *client.Client) {
	t.Helper()
	_, tok := mustIssue(t)
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		before := c.Calls()
		c.Verify(context.Background(), tok, client.Requirements{})
		c.Verify(context.Background(), tok, client.Requirements{})
		if c.Calls()-before <= 1 {
			return
		}
	}
	t.Fatal("the client's cache never came into use")
}

func wantCode(t *testing.T, res client.Result, err error, want latchkeyv1.VerifyCode) {
	t.Helper()
	if err != nil || res.Code != want || res.Valid != (want == latchkeyv1.VerifyCode_VERIFY_CODE_VALID) {
		t.Fatalf("verdict %v (valid %v), %v; want %v", res.Code, res.Valid, err, want)
	}
}

func TestNew(t *testing.T) {
	t.Run("refuses a service key without api_keys:verify", func(t *testing.T) {
		_, weak := mustIssue(t, "api_keys:read")
		if _, err := client.New(t.Context(), client.Options{URL: latchkeyURL, Key: weak}); err == nil {
			t.Fatal("New accepted a key that cannot verify")
		}
	})
	t.Run("refuses a revoked service key", func(t *testing.T) {
		id, tok := mustIssue(t, "api_keys:verify")
		revoke(t, id)
		if _, err := client.New(t.Context(), client.Options{URL: latchkeyURL, Key: tok}); err == nil {
			t.Fatal("New accepted a revoked key")
		}
	})
	t.Run("fails when Latchkey cannot be reached", func(t *testing.T) {
		_, err := client.New(t.Context(), client.Options{URL: "http://127.0.0.1:1", Key: serviceKey, Timeout: time.Second})
		if !errors.Is(err, client.ErrUnavailable) {
			t.Fatalf("New = %v, want ErrUnavailable", err)
		}
	})
}

func TestVerify(t *testing.T) {
	c := newClient(t, client.Options{})
	id, tok := mustIssue(t, "invoices:read")
	ctx := t.Context()

	t.Run("a valid key is cached", func(t *testing.T) {
		res, err := c.Verify(ctx, tok, client.Requirements{Permissions: []string{"invoices:read"}})
		wantCode(t, res, err, latchkeyv1.VerifyCode_VERIFY_CODE_VALID)
		if res.KeyID != id || res.AccountID == "" || res.ProfileID == "" {
			t.Fatalf("result %+v", res)
		}
		before := c.Calls()
		for range 100 {
			res, err = c.Verify(ctx, tok, client.Requirements{Permissions: []string{"invoices:read"}})
		}
		wantCode(t, res, err, latchkeyv1.VerifyCode_VERIFY_CODE_VALID)
		if c.Calls() != before {
			t.Fatalf("%d calls reached Latchkey for a cached key", c.Calls()-before)
		}
	})
	t.Run("requirements are part of the verdict", func(t *testing.T) {
		res, err := c.Verify(ctx, tok, client.Requirements{Permissions: []string{"invoices:write"}})
		wantCode(t, res, err, latchkeyv1.VerifyCode_VERIFY_CODE_PERMISSION_DENIED)
	})
	t.Run("a malformed token is refused without a call", func(t *testing.T) {
		before := c.Calls()
		for _, bad := range []string{"", "nope", tok[:len(tok)-1], "Bearer " + tok, "lk_prod_" + tok[8:]} {
			res, err := c.Verify(ctx, bad, client.Requirements{})
			wantCode(t, res, err, latchkeyv1.VerifyCode_VERIFY_CODE_MALFORMED)
		}
		if c.Calls() != before {
			t.Fatal("a malformed token reached Latchkey")
		}
	})
	t.Run("unknown tokens are cached apart", func(t *testing.T) {
		res, err := c.Verify(ctx, madeUp(), client.Requirements{})
		if err != nil || res.Valid {
			t.Fatalf("a made-up token: %+v, %v", res, err)
		}
		before := c.Calls()
		c.Verify(ctx, madeUp(), client.Requirements{})
		if c.Calls() != before {
			t.Fatal("the same unknown token reached Latchkey twice")
		}
	})
	t.Run("a revocation ends the cached verdict within the stream's lag", func(t *testing.T) {
		var lags []time.Duration
		for range 20 {
			id, tok := mustIssue(t, "invoices:read")
			for range 2 {
				res, err := c.Verify(ctx, tok, client.Requirements{})
				wantCode(t, res, err, latchkeyv1.VerifyCode_VERIFY_CODE_VALID)
			}
			revoke(t, id)
			revoked := time.Now()
			for {
				res, err := c.Verify(ctx, tok, client.Requirements{})
				if err != nil {
					t.Fatal(err)
				}
				if !res.Valid {
					lags = append(lags, time.Since(revoked))
					break
				}
				if time.Since(revoked) > time.Second {
					t.Fatal("a revoked key still verified a second after Revoke answered")
				}
			}
		}
		worst := lags[0]
		for _, l := range lags {
			worst = max(worst, l)
		}
		// The speed is BenchmarkRevocationLag's to report; the test holds
		// the bound: never a second past Revoke's answer.
		t.Logf("revocation reached the client's cache within %v (worst of %d)", worst, len(lags))
	})
	t.Run("an archived workspace ends the cached verdicts it granted", func(t *testing.T) {
		// The change names no key: the client must drop every verdict,
		// since any key may have been granted the workspace.
		admin := server.Admin(server.TenantKey)
		ws, err := latchkeyv1connect.NewWorkspaceServiceClient(admin).CreateWorkspace(ctx, &latchkeyv1.CreateWorkspaceRequest{
			Metadata: &latchkeyv1.AccountResourceMetadata{Name: "archived by the client test"},
		})
		if err != nil {
			t.Fatal(err)
		}
		wsID := ws.GetWorkspace().GetMetadata().GetId()
		res, err := latchkeyv1connect.NewApiKeyServiceClient(admin).Issue(ctx, &latchkeyv1.IssueRequest{
			Metadata:            &latchkeyv1.AccountResourceMetadata{Name: "granted the workspace"},
			InitialWorkspaceIds: []string{wsID},
		})
		if err != nil {
			t.Fatal(err)
		}
		tok := res.GetApiKey().GetSpec().GetToken()
		need := client.Requirements{Workspace: wsID}
		for range 2 {
			got, err := c.Verify(ctx, tok, need)
			wantCode(t, got, err, latchkeyv1.VerifyCode_VERIFY_CODE_VALID)
		}
		if _, err := latchkeyv1connect.NewWorkspaceServiceClient(admin).ArchiveWorkspace(ctx, &latchkeyv1.ArchiveWorkspaceRequest{Id: wsID}); err != nil {
			t.Fatal(err)
		}
		archived := time.Now()
		for {
			got, err := c.Verify(ctx, tok, need)
			if err != nil {
				t.Fatal(err)
			}
			if !got.Valid {
				wantCode(t, got, err, latchkeyv1.VerifyCode_VERIFY_CODE_WORKSPACE_DENIED)
				break
			}
			if time.Since(archived) > time.Second {
				t.Fatal("a key still verified for an archived workspace a second after the archive answered")
			}
		}
	})
	t.Run("a suspension ends the cached verdicts of the account's keys, a restore brings them back", func(t *testing.T) {
		// A service that verifies the keys of every account (its own key
		// is of the operator account) hears of it on the change stream: a
		// cached VALID verdict of the account's key becomes
		// VERIFY_CODE_ACCOUNT_SUSPENDED promptly, the middleware refuses it
		// with 403, and after the restore it is VALID again, while another
		// account's cached verdict stays. The account's own service, whose
		// key is of the account too, may not verify at all meanwhile: it
		// fails closed (ErrUnavailable) instead of answering from its
		// cache. The account is the subtest's own: the tests share one
		// server, and suspending their account would refuse every other
		// test's keys.
		ctx := t.Context()
		acct, err := server.NewAccount("suspended by the client test")
		if err != nil {
			t.Fatal(err)
		}
		_, svc, err := server.IssueOperator(&latchkeyv1.ApiKeySpec{Permissions: []string{"api_keys:verify"}})
		if err != nil {
			t.Fatal(err)
		}
		_, ownKey, err := server.IssueWith(acct.SystemKey, &latchkeyv1.ApiKeySpec{Permissions: []string{"api_keys:verify"}})
		if err != nil {
			t.Fatal(err)
		}
		// One server, no replicas to settle: a short Settle lets the
		// suspended verdict be cached too, so that the restore must drop
		// it, and lets the account's own service cache again soon after
		// its stream is back.
		newService := func(key string) *client.Client {
			c, err := client.New(ctx, client.Options{URL: latchkeyURL, Key: key, Settle: 20 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c.Close() })
			return c
		}
		c, own := newService(svc), newService(ownKey)
		waitFresh(t, c)
		_, tok, err := server.IssueWith(acct.SystemKey, &latchkeyv1.ApiKeySpec{Permissions: []string{"invoices:read"}})
		if err != nil {
			t.Fatal(err)
		}
		_, other := mustIssue(t, "invoices:read") // of the tests' account
		need := client.Requirements{Permissions: []string{"invoices:read"}}
		// cachedAs waits until tok's verdict at c is want and answered
		// from c's cache.
		cachedAs := func(t *testing.T, c *client.Client, tok string, want latchkeyv1.VerifyCode) {
			t.Helper()
			for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
				res, err := c.Verify(ctx, tok, need)
				wantCode(t, res, err, want)
				before := c.Calls()
				res, err = c.Verify(ctx, tok, need)
				wantCode(t, res, err, want)
				if c.Calls() == before {
					return
				}
				if time.Now().After(deadline) {
					t.Fatalf("a %v verdict was never cached", want)
				}
			}
		}
		// until asks for tok's verdict until it is want, and returns how long
		// that took from since; it may pass through from only, within a
		// second.
		until := func(t *testing.T, since time.Time, from, want latchkeyv1.VerifyCode) time.Duration {
			t.Helper()
			for {
				res, err := c.Verify(ctx, tok, need)
				if err != nil {
					t.Fatal(err)
				}
				if res.Code == want {
					wantCode(t, res, err, want)
					return time.Since(since)
				}
				if res.Code != from {
					t.Fatalf("verdict %v between %v and %v", res.Code, from, want)
				}
				if time.Since(since) > time.Second {
					t.Fatalf("still %v a second after the call answered; want %v", from, want)
				}
			}
		}
		mux := c.Middleware(client.Route{Permissions: []string{"invoices:read"}})(whoHandler)
		srv := httptest.NewServer(mux)
		defer srv.Close()

		var suspendLags, restoreLags []time.Duration
		for i := range 5 {
			cachedAs(t, c, tok, latchkeyv1.VerifyCode_VERIFY_CODE_VALID)
			cachedAs(t, c, other, latchkeyv1.VerifyCode_VERIFY_CODE_VALID)
			cachedAs(t, own, tok, latchkeyv1.VerifyCode_VERIFY_CODE_VALID)
			if err := server.Suspend(acct.ID, fmt.Sprintf("client test %d", i)); err != nil {
				t.Fatal(err)
			}
			suspended := time.Now()
			suspendLags = append(suspendLags, until(t, suspended, latchkeyv1.VerifyCode_VERIFY_CODE_VALID, latchkeyv1.VerifyCode_VERIFY_CODE_ACCOUNT_SUSPENDED))
			for {
				res, err := own.Verify(ctx, tok, need)
				if errors.Is(err, client.ErrUnavailable) {
					break
				}
				wantCode(t, res, err, latchkeyv1.VerifyCode_VERIFY_CODE_VALID) // from its cache, until its stream ends
				if time.Since(suspended) > time.Second {
					t.Fatal("a second after the suspension, the account's own service still admits its key from the cache")
				}
			}
			// The suspension names its account: the other account's verdict
			// is still the cached one.
			before := c.Calls()
			res, err := c.Verify(ctx, other, need)
			wantCode(t, res, err, latchkeyv1.VerifyCode_VERIFY_CODE_VALID)
			if c.Calls() != before {
				t.Fatal("another account's cached verdict was dropped by the suspension")
			}
			status, body, _ := get(t, srv.URL, map[string]string{"Authorization": "Bearer " + tok})
			var wire struct{ Code, Message string }
			if err := json.Unmarshal([]byte(body), &wire); err != nil || status != http.StatusForbidden ||
				wire.Code != "permission_denied" || !strings.Contains(wire.Message, "suspended") {
				t.Fatalf("the middleware answered a suspended account's key with HTTP %d %s; want 403, permission_denied, suspended", status, body)
			}
			cachedAs(t, c, tok, latchkeyv1.VerifyCode_VERIFY_CODE_ACCOUNT_SUSPENDED)
			if err := server.Restore(acct.ID, fmt.Sprintf("client test %d", i)); err != nil {
				t.Fatal(err)
			}
			restored := time.Now()
			restoreLags = append(restoreLags, until(t, restored, latchkeyv1.VerifyCode_VERIFY_CODE_ACCOUNT_SUSPENDED, latchkeyv1.VerifyCode_VERIFY_CODE_VALID))
			for {
				res, err := own.Verify(ctx, tok, need)
				if err == nil {
					wantCode(t, res, err, latchkeyv1.VerifyCode_VERIFY_CODE_VALID)
					break
				}
				if !errors.Is(err, client.ErrUnavailable) || time.Since(restored) > time.Second {
					t.Fatalf("after the restore, the account's own service: %v", err)
				}
			}
		}
		t.Logf("suspension reached the client's cache within %v, the restore within %v (worst of %d each)",
			slices.Max(suspendLags), slices.Max(restoreLags), len(suspendLags))
	})
	t.Run("concurrent misses are one call", func(t *testing.T) {
		// A client of its own: the archive above made c drop everything
		// and store nothing for Options.Settle, so that a caller scheduled
		// after the one call answered would miss again and make a second.
		// newClient returns once its cache stores verdicts.
		c := newClient(t, client.Options{})
		_, fresh := mustIssue(t)
		before := c.Calls()
		var wg sync.WaitGroup
		var valid atomic.Int64
		start := make(chan struct{})
		for range 64 {
			wg.Go(func() {
				<-start
				if res, err := c.Verify(ctx, fresh, client.Requirements{}); err == nil && res.Valid {
					valid.Add(1)
				}
			})
		}
		close(start)
		wg.Wait()
		if valid.Load() != 64 || c.Calls()-before != 1 {
			t.Fatalf("%d of 64 valid, %d calls reached Latchkey; want 64 and 1", valid.Load(), c.Calls()-before)
		}
	})
}

// TestFailClosed cuts the client off from Latchkey: nothing cached is
// trusted once the stream is down, a verification that cannot ask fails,
// and a key revoked meanwhile is refused once Latchkey is back.
func TestFailClosed(t *testing.T) {
	var link cuttable
	c := newClient(t, client.Options{HTTPClient: link.client(), Timeout: 500 * time.Millisecond})
	id, tok := mustIssue(t)
	for range 2 {
		res, err := c.Verify(t.Context(), tok, client.Requirements{})
		wantCode(t, res, err, latchkeyv1.VerifyCode_VERIFY_CODE_VALID)
	}
	link.setCut(true)
	revoke(t, id) // the client cannot hear it
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err := c.Verify(t.Context(), tok, client.Requirements{})
		if errors.Is(err, client.ErrUnavailable) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("with the stream cut, Verify still answers from the cache: %v", err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	link.setCut(false)
	waitFresh(t, c)
	res, err := c.Verify(t.Context(), tok, client.Requirements{})
	wantCode(t, res, err, latchkeyv1.VerifyCode_VERIFY_CODE_REVOKED)
}

// TestSilentStream: a stream that stays open but says nothing for longer
// than StaleAfter (a dead network path sends no error) is not trusted:
// every verification asks Latchkey.
func TestSilentStream(t *testing.T) {
	c, err := client.New(t.Context(), client.Options{URL: latchkeyURL, Key: serviceKey, StaleAfter: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, tok := mustIssue(t)
	time.Sleep(300 * time.Millisecond) // the opening heartbeat is old now; the next is 15s away
	before := c.Calls()
	for range 3 {
		res, err := c.Verify(t.Context(), tok, client.Requirements{})
		wantCode(t, res, err, latchkeyv1.VerifyCode_VERIFY_CODE_VALID)
	}
	if got := c.Calls() - before; got != 3 {
		t.Fatalf("%d calls for 3 verifications past StaleAfter, want 3", got)
	}
}
