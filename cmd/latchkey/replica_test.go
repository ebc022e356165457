package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	latchkeyv1 "github.com/latchkey/latchkey/gen/latchkey/v1"
	"github.com/latchkey/latchkey/gen/latchkey/v1/latchkeyv1connect"
	"github.com/latchkey/latchkey/internal/pepper"
	"github.com/latchkey/latchkey/store/postgres/pgtest"
)

// newPostgresDB creates an empty database for the test, dropped at its
// end, and returns its URL and a connection to it for the test's own SQL.
func newPostgresDB(t *testing.T) (string, *pgx.Conn) {
	t.Helper()
	admin := pgtest.Admin(t)
	ctx := context.Background()
	dsn, drop, err := pgtest.CreateDatabase(ctx, admin)
	if err != nil {
		t.Fatal(err)
	}
	db, err := pgx.Connect(ctx, dsn)
	if err != nil {
		drop(ctx)
		t.Fatal(err)
	}
	t.Cleanup(func() {
		db.Close(ctx)
		if err := drop(ctx); err != nil {
			t.Errorf("drop database: %v", err)
		}
	})
	return dsn, db
}

// TestReplicas runs three real replicas on one PostgreSQL database. They
// start at once and bootstrap one operator between them. Then keys are
// revoked on one replica while the others, their caches warm, are asked
// until they refuse: the time from Revoke's answer to the first refusal is
// the revocation lag, measured with notifications, with the listeners'
// connections killed, with them killed over and over, and with
// notifications turned off so that the poll alone carries changes. A
// rotation without grace, a permission withdrawn, a workspace grant
// withdrawn and a workspace archived are measured the same way, and so are
// an account suspended and restored by the operator: the time until the
// others answer VERIFY_CODE_ACCOUNT_SUSPENDED for its key, then VALID
// again. No lag may reach the sync bound. A fourth replica, cut off from the database,
// must stop trusting its cache once the bound has passed.
func TestReplicas(t *testing.T) {
	dsn, db := newPostgresDB(t)
	pepperFile := filepath.Join(t.TempDir(), "latchkey.pepper")
	if _, _, err := pepper.LoadOrCreate(pepperFile, true); err != nil {
		t.Fatal(err)
	}
	const bound = time.Second
	bin := buildLatchkey(t)
	var replicas []*replica
	for range 3 {
		replicas = append(replicas, launchReplica(t, bin, "--db", dsn, "--pepper-file", pepperFile, "--sync-bound", bound.String()))
	}
	// every is each replica the test started, the cut-off one included:
	// all of them must still serve, stop cleanly and log no panic.
	every := slices.Clone(replicas)
	for _, r := range replicas {
		r.waitReady(t)
	}

	var operator string
	for _, r := range replicas {
		if r.operator != "" {
			if operator != "" {
				t.Fatal("two replicas bootstrapped an operator")
			}
			operator = r.operator
		}
	}
	var operators int
	if err := db.QueryRow(t.Context(), "SELECT count(*) FROM accounts WHERE operator").Scan(&operators); err != nil || operators != 1 || operator == "" {
		t.Fatalf("%d operator accounts (%v), operator key printed: %t", operators, err, operator != "")
	}

	created, err := latchkeyv1connect.NewAccountServiceClient(replicas[0].client(operator)).CreateAccount(t.Context(),
		&latchkeyv1.CreateAccountRequest{Name: "replicas", MaxActiveKeys: 100_000})
	if err != nil {
		t.Fatal(err)
	}
	tenant := created.GetSystemApiKey().GetSpec().GetToken()
	keys := latchkeyv1connect.NewApiKeyServiceClient(replicas[0].client(tenant))
	var verifiers []latchkeyv1connect.AuthServiceClient
	for _, r := range replicas[1:] {
		verifiers = append(verifiers, latchkeyv1connect.NewAuthServiceClient(r.client(tenant)))
	}

	workspaces := latchkeyv1connect.NewWorkspaceServiceClient(replicas[0].client(tenant))
	accounts := latchkeyv1connect.NewAccountServiceClient(replicas[0].client(operator))

	// measure warms the other replicas' caches with req, which must pass,
	// makes a change on the first replica with apply, and returns how long
	// each other replica still passed req after apply answered.
	measure := func(t *testing.T, req *latchkeyv1.VerifyRequest, apply func(t *testing.T)) []time.Duration {
		t.Helper()
		for _, v := range verifiers {
			for range 2 { // the second answer comes from the cache
				if r, err := v.Verify(t.Context(), req); err != nil || !r.GetValid() {
					t.Fatalf("before the change, a replica does not pass the request: %v, %v", r.GetCode(), err)
				}
			}
		}
		apply(t)
		changed := time.Now()
		lags := make([]time.Duration, len(verifiers))
		var wg sync.WaitGroup
		for i, v := range verifiers {
			wg.Go(func() {
				for {
					r, err := v.Verify(context.Background(), req)
					if err != nil || !r.GetValid() {
						// Refused, or failed closed: either way not accepted.
						lags[i] = time.Since(changed)
						return
					}
					if time.Since(changed) > 5*bound {
						lags[i] = time.Since(changed)
						return
					}
				}
			})
		}
		wg.Wait()
		return lags
	}
	const valid = latchkeyv1.VerifyCode_VERIFY_CODE_VALID
	// measureCode is measure for a change that brings a verdict of its
	// own: local (the first replica) and each of vs answer req with from
	// (twice, the second from the cache), apply makes the change on the
	// first replica, and each of vs is asked until it answers to. The lag
	// is from apply's answer to that answer; any other answer meanwhile, an
	// error included, fails the test. local must answer to at once: the
	// change is in force on its writer before the call answers.
	measureCode := func(t *testing.T, local latchkeyv1connect.AuthServiceClient, vs []latchkeyv1connect.AuthServiceClient, req *latchkeyv1.VerifyRequest, from, to latchkeyv1.VerifyCode, apply func(t *testing.T)) []time.Duration {
		t.Helper()
		for _, v := range append([]latchkeyv1connect.AuthServiceClient{local}, vs...) {
			for range 2 {
				if r, err := v.Verify(t.Context(), req); err != nil || r.GetCode() != from {
					t.Fatalf("before the change, a replica answers %v, %v; want %v", r.GetCode(), err, from)
				}
			}
		}
		apply(t)
		changed := time.Now()
		lags := make([]time.Duration, len(vs))
		var wg sync.WaitGroup
		for i, v := range vs {
			wg.Go(func() {
				for {
					r, err := v.Verify(context.Background(), req)
					if err == nil && r.GetCode() == to {
						lags[i] = time.Since(changed)
						return
					}
					if err != nil || r.GetCode() != from {
						t.Errorf("between %v and %v, a replica answered %v, %v", from, to, r.GetCode(), err)
						lags[i] = time.Since(changed)
						return
					}
					if time.Since(changed) > 5*bound {
						lags[i] = time.Since(changed)
						return
					}
				}
			})
		}
		if r, err := local.Verify(t.Context(), req); err != nil || r.GetCode() != to {
			t.Errorf("right after the call answered, the replica that made it answers %v, %v; want %v", r.GetCode(), err, to)
		}
		wg.Wait()
		return lags
	}
	issue := func(t *testing.T, spec *latchkeyv1.ApiKeySpec) (id, tok string) {
		t.Helper()
		res, err := keys.Issue(t.Context(), &latchkeyv1.IssueRequest{Metadata: &latchkeyv1.AccountResourceMetadata{Name: "lag"}, Spec: spec})
		if err != nil {
			t.Fatal(err)
		}
		return res.GetApiKey().GetMetadata().GetId(), res.GetApiKey().GetSpec().GetToken()
	}
	newWorkspace := func(t *testing.T) string {
		t.Helper()
		res, err := workspaces.CreateWorkspace(t.Context(), &latchkeyv1.CreateWorkspaceRequest{Metadata: &latchkeyv1.AccountResourceMetadata{Name: "lag"}})
		if err != nil {
			t.Fatal(err)
		}
		return res.GetWorkspace().GetMetadata().GetId()
	}
	// grantedKey issues a key granted a new workspace, and the request
	// that it passes only in that workspace.
	grantedKey := func(t *testing.T) (id, ws string, req *latchkeyv1.VerifyRequest) {
		t.Helper()
		id, tok := issue(t, nil)
		ws = newWorkspace(t)
		if _, err := keys.GrantWorkspace(t.Context(), &latchkeyv1.GrantWorkspaceRequest{Id: id, WorkspaceId: ws}); err != nil {
			t.Fatal(err)
		}
		return id, ws, &latchkeyv1.VerifyRequest{Token: tok, WorkspaceId: ws}
	}
	// lag is the revocation lag: a fresh key revoked on the first replica.
	lag := func(t *testing.T) []time.Duration {
		t.Helper()
		id, tok := issue(t, nil)
		return measure(t, &latchkeyv1.VerifyRequest{Token: tok}, func(t *testing.T) {
			if _, err := keys.Revoke(t.Context(), &latchkeyv1.RevokeRequest{Id: id}); err != nil {
				t.Fatal(err)
			}
		})
	}
	// changes are the other writes that withdraw what a key could do;
	// each is measured as revocation is.
	changes := []struct {
		name string
		lag  func(t *testing.T) []time.Duration
	}{
		{"rotation without grace", func(t *testing.T) []time.Duration {
			id, tok := issue(t, nil)
			return measure(t, &latchkeyv1.VerifyRequest{Token: tok}, func(t *testing.T) {
				if _, err := keys.Rotate(t.Context(), &latchkeyv1.RotateRequest{Id: id}); err != nil {
					t.Fatal(err)
				}
			})
		}},
		{"permission withdrawn", func(t *testing.T) []time.Duration {
			id, tok := issue(t, &latchkeyv1.ApiKeySpec{Permissions: []string{"invoices:read"}})
			return measure(t, &latchkeyv1.VerifyRequest{Token: tok, Permissions: []string{"invoices:read"}}, func(t *testing.T) {
				_, err := keys.Update(t.Context(), &latchkeyv1.UpdateRequest{Id: id,
					Spec:       &latchkeyv1.ApiKeySpec{Permissions: []string{"reports:read"}},
					UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"spec.permissions"}}})
				if err != nil {
					t.Fatal(err)
				}
			})
		}},
		{"workspace grant withdrawn", func(t *testing.T) []time.Duration {
			id, ws, req := grantedKey(t)
			return measure(t, req, func(t *testing.T) {
				if _, err := keys.RevokeWorkspace(t.Context(), &latchkeyv1.RevokeWorkspaceRequest{Id: id, WorkspaceId: ws}); err != nil {
					t.Fatal(err)
				}
			})
		}},
		{"workspace archived", func(t *testing.T) []time.Duration {
			_, ws, req := grantedKey(t)
			return measure(t, req, func(t *testing.T) {
				if _, err := workspaces.ArchiveWorkspace(t.Context(), &latchkeyv1.ArchiveWorkspaceRequest{Id: ws}); err != nil {
					t.Fatal(err)
				}
			})
		}},
	}
	killListeners := func(t *testing.T) int {
		t.Helper()
		var n int
		err := db.QueryRow(t.Context(), `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
			WHERE datname = current_database() AND query LIKE 'LISTEN %'`).Scan(&n)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	report := func(t *testing.T, name string, lags []time.Duration) {
		t.Helper()
		slices.Sort(lags)
		p := func(q float64) time.Duration { return lags[int(q*float64(len(lags)-1))] }
		t.Logf("%s: %d changes seen by %d replicas: lag p50 %v, p99 %v, max %v",
			name, len(lags)/len(verifiers), len(verifiers), p(0.5).Round(time.Microsecond), p(0.99).Round(time.Microsecond), lags[len(lags)-1].Round(time.Microsecond))
		if lags[len(lags)-1] >= bound {
			t.Errorf("%s: a replica still accepted what the change withdrew for %v, past the %v bound", name, lags[len(lags)-1], bound)
		}
	}

	t.Run("with notifications", func(t *testing.T) {
		var lags []time.Duration
		for range 100 {
			lags = append(lags, lag(t)...)
		}
		report(t, "notifications", lags)
	})
	t.Run("other changes, with notifications", func(t *testing.T) {
		for _, c := range changes {
			t.Run(c.name, func(t *testing.T) {
				var lags []time.Duration
				for range 10 {
					lags = append(lags, c.lag(t)...)
				}
				report(t, c.name, lags)
			})
		}
	})
	t.Run("account suspended and restored, with notifications", func(t *testing.T) {
		// An account of its own, so that suspending it refuses nothing the
		// other subtests use. Its keys are verified with the operator's
		// key, as a service that checks every account's keys does: a key
		// of the suspended account could not call Verify at all.
		res, err := accounts.CreateAccount(t.Context(), &latchkeyv1.CreateAccountRequest{Name: "suspended", MaxActiveKeys: 10})
		if err != nil {
			t.Fatal(err)
		}
		accountID := res.GetAccount().GetMetadata().GetId()
		req := &latchkeyv1.VerifyRequest{Token: res.GetSystemApiKey().GetSpec().GetToken()}
		var opVerifiers []latchkeyv1connect.AuthServiceClient
		for _, r := range replicas[1:] {
			opVerifiers = append(opVerifiers, latchkeyv1connect.NewAuthServiceClient(r.client(operator)))
		}
		local := latchkeyv1connect.NewAuthServiceClient(replicas[0].client(operator))
		var suspended, restored []time.Duration
		for i := range 10 {
			suspended = append(suspended, measureCode(t, local, opVerifiers, req, valid, latchkeyv1.VerifyCode_VERIFY_CODE_ACCOUNT_SUSPENDED, func(t *testing.T) {
				if _, err := accounts.SuspendAccount(t.Context(), &latchkeyv1.SuspendAccountRequest{Id: accountID, Reason: fmt.Sprintf("lag %d", i)}); err != nil {
					t.Fatal(err)
				}
			})...)
			// Another account's keys are untouched by the suspension.
			for _, v := range verifiers {
				if r, err := v.Verify(t.Context(), &latchkeyv1.VerifyRequest{Token: tenant}); err != nil || !r.GetValid() {
					t.Fatalf("while another account is suspended, a replica refuses the tenant's key: %v, %v", r.GetCode(), err)
				}
			}
			restored = append(restored, measureCode(t, local, opVerifiers, req, latchkeyv1.VerifyCode_VERIFY_CODE_ACCOUNT_SUSPENDED, valid, func(t *testing.T) {
				if _, err := accounts.RestoreAccount(t.Context(), &latchkeyv1.RestoreAccountRequest{Id: accountID, Reason: fmt.Sprintf("lag %d", i)}); err != nil {
					t.Fatal(err)
				}
			})...)
		}
		report(t, "account suspended", suspended)
		report(t, "account restored", restored)
	})
	t.Run("a change stream on one replica sees a revocation made on another", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		stream, err := latchkeyv1connect.NewAuthServiceClient(replicas[1].client(tenant)).WatchKeyChanges(ctx, &latchkeyv1.WatchKeyChangesRequest{})
		if err != nil {
			t.Fatal(err)
		}
		defer stream.Close()
		if res, err := stream.Receive(); err != nil || res.GetHeartbeat() == nil {
			t.Fatalf("opening message %v, %v; want a heartbeat", res, err)
		}
		issued, err := keys.Issue(t.Context(), &latchkeyv1.IssueRequest{Metadata: &latchkeyv1.AccountResourceMetadata{Name: "watched"}})
		if err != nil {
			t.Fatal(err)
		}
		id := issued.GetApiKey().GetMetadata().GetId()
		if _, err := keys.Revoke(t.Context(), &latchkeyv1.RevokeRequest{Id: id}); err != nil {
			t.Fatal(err)
		}
		revoked := time.Now()
		for {
			res, err := stream.Receive()
			if err != nil {
				t.Fatalf("the stream ended before the revocation arrived: %v", err)
			}
			if c := res.GetChange(); c.GetApiKeyId() == id && c.GetKind() == latchkeyv1.KeyChangeKind_KEY_CHANGE_KIND_KEY_REVOKED {
				if lag := time.Since(revoked); lag > bound {
					t.Errorf("the revocation reached the other replica's stream after %v, past the %v bound", lag, bound)
				}
				t.Logf("revocation on replica 0 reached a stream on replica 1 after %v", time.Since(revoked))
				return
			}
		}
	})
	t.Run("after the listeners' connections are killed", func(t *testing.T) {
		var lags []time.Duration
		for range 20 {
			if n := killListeners(t); n == 0 {
				// A listener still reconnecting is no listener to kill.
				time.Sleep(50 * time.Millisecond)
			}
			lags = append(lags, lag(t)...)
		}
		report(t, "listeners killed before each revocation", lags)
	})
	t.Run("with the listeners killed over and over", func(t *testing.T) {
		// The killer has its own connection: canceling a query closes it.
		killerConn, err := pgx.Connect(t.Context(), dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer killerConn.Close(context.Background())
		ctx, stop := context.WithCancel(t.Context())
		var killer sync.WaitGroup
		killer.Go(func() {
			for ctx.Err() == nil {
				_, _ = killerConn.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
					WHERE datname = current_database() AND query LIKE 'LISTEN %'`)
				time.Sleep(5 * time.Millisecond)
			}
		})
		var lags []time.Duration
		for range 20 {
			lags = append(lags, lag(t)...)
		}
		stop()
		killer.Wait()
		report(t, "listeners killed every 5 ms", lags)
	})
	t.Run("without notifications, the poll alone", func(t *testing.T) {
		// As on a Postgres-compatible database without LISTEN/NOTIFY: the
		// store still records each change in key_changes, but its trigger
		// sends nothing, so only the poll can carry the change. (Replacing
		// a function that no trigger calls would leave notifications on
		// and prove nothing: the test's own listener checks they are off.)
		listener, err := pgx.Connect(t.Context(), dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer listener.Close(context.Background())
		if _, err := listener.Exec(t.Context(), "LISTEN latchkey_key_changes"); err != nil {
			t.Fatal(err)
		}
		setNotify := func(t *testing.T, body string) {
			t.Helper()
			_, err := db.Exec(t.Context(), `CREATE OR REPLACE FUNCTION notify_key_change() RETURNS trigger AS $$
				BEGIN `+body+` RETURN NULL; END;
				$$ LANGUAGE plpgsql`)
			if err != nil {
				t.Fatal(err)
			}
		}
		setNotify(t, "")
		// Notifications come back for the subtests after this one.
		defer setNotify(t, "PERFORM pg_notify('latchkey_key_changes', NEW.seq::text);")
		var lags []time.Duration
		for range 20 {
			lags = append(lags, lag(t)...)
		}
		report(t, "no notifications", lags)
		// Twenty revocations committed: a notification of any of them
		// would be waiting on the listener's connection already. (The
		// timeout closes that connection.)
		quiet, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
		defer cancel()
		if n, err := listener.WaitForNotification(quiet); err == nil {
			t.Fatalf("a notification (%q) was sent while they were meant to be off: the poll was not alone", n.Payload)
		}
		// And a listener does hear one once they are back, so the silence
		// above was theirs.
		setNotify(t, "PERFORM pg_notify('latchkey_key_changes', NEW.seq::text);")
		control, err := pgx.Connect(t.Context(), dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer control.Close(context.Background())
		if _, err := control.Exec(t.Context(), "LISTEN latchkey_key_changes"); err != nil {
			t.Fatal(err)
		}
		id, _ := issue(t, nil)
		if _, err := keys.Revoke(t.Context(), &latchkeyv1.RevokeRequest{Id: id}); err != nil {
			t.Fatal(err)
		}
		heard, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		if _, err := control.WaitForNotification(heard); err != nil {
			t.Fatalf("a listener heard nothing with notifications back on: %v", err)
		}
	})
	// The cut-off replica and its proxy belong to the whole test, not to
	// its subtest, so that the last check still finds it running.
	px := pgtest.NewProxy(t, dsn)
	cutoff := launchReplica(t, bin, "--db", px.URL, "--pepper-file", pepperFile, "--sync-bound", bound.String())
	cutoff.waitReady(t)
	every = append(every, cutoff)
	t.Run("a replica cut off from the database fails closed after the bound", func(t *testing.T) {
		verify := latchkeyv1connect.NewAuthServiceClient(cutoff.client(tenant))
		res, err := keys.Issue(t.Context(), &latchkeyv1.IssueRequest{Metadata: &latchkeyv1.AccountResourceMetadata{Name: "cut off"}})
		if err != nil {
			t.Fatal(err)
		}
		tok := res.GetApiKey().GetSpec().GetToken()
		accepted := func() bool {
			r, err := verify.Verify(t.Context(), &latchkeyv1.VerifyRequest{Token: tok})
			return err == nil && r.GetValid()
		}
		recovered := func(t *testing.T) {
			t.Helper()
			deadline := time.Now().Add(10 * bound)
			for !accepted() {
				if time.Now().After(deadline) {
					t.Fatal("the replica did not recover once the database was back")
				}
				time.Sleep(50 * time.Millisecond)
			}
		}
		// Failing closed is proved only by a verdict that was cached when
		// the database went away: right after the cut, within the bound,
		// the key must still verify, which only the cache can do. The
		// replica's feed drops its cache when it starts following and when
		// its listener (re)connects, which may come after the warming
		// calls; then the cut is undone and tried again.
		var cut time.Time
		for attempt := 1; ; attempt++ {
			if !accepted() || !accepted() {
				t.Fatal("the key does not verify before the cut")
			}
			px.Cut()
			cut = time.Now()
			if accepted() {
				break
			}
			if attempt == 5 {
				t.Fatal("no verdict was ever cached when the database went away")
			}
			t.Logf("attempt %d: the verdict was not cached when the database went away; again", attempt)
			px.Restore()
			recovered(t)
			time.Sleep(2 * bound) // the listener's reconnection, and its reset
		}
		time.Sleep(time.Until(cut.Add(bound + bound/4)))
		for range 10 {
			if accepted() {
				t.Fatalf("%v after the database became unreachable, a cached key was still accepted", time.Since(cut))
			}
		}
		px.Restore()
		recovered(t)
	})
	t.Run("every replica still serves, stops cleanly and logged no panic", func(t *testing.T) {
		// A replica that died would pass the lag tables (a refused call
		// counts as not accepted), so each must still verify; and the
		// whole log is read, to its end, only once the process is gone.
		for i, r := range every {
			res, err := latchkeyv1connect.NewAuthServiceClient(r.client(tenant)).Verify(t.Context(), &latchkeyv1.VerifyRequest{Token: tenant})
			if err != nil || !res.GetValid() {
				t.Errorf("replica %d no longer verifies the tenant's key: %v, %v", i, res.GetCode(), err)
			}
		}
		for i, r := range every {
			if err := r.stop(); err != nil {
				t.Errorf("replica %d did not stop cleanly: %v", i, err)
			}
			if log := r.full.String(); strings.Contains(log, "panic") {
				t.Errorf("replica %d panicked:\n%s", i, log)
			}
		}
	})
}

// replica is a latchkey process whose whole stderr is kept, not only the
// lines up to "serving", so that a panic at any time is seen.
type replica struct {
	*process
	full *lockedBuffer // every line but the operator key's
	eof  chan struct{} // closed once stderr has been read to its end
}

// launchReplica starts `latchkey serve` with args without waiting for it.
func launchReplica(t *testing.T, bin string, args ...string) *replica {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"serve", "--addr", "127.0.0.1:0"}, args...)...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r := &replica{
		process: &process{cmd: cmd, http: &http.Client{Transport: &http.Transport{}, Timeout: 10 * time.Second}, ready: make(chan struct{})},
		full:    &lockedBuffer{},
		eof:     make(chan struct{}),
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); <-r.eof; _ = cmd.Wait() })
	go func() {
		defer close(r.eof)
		// Reads to the end, so the process never blocks on a full pipe.
		sc := bufio.NewScanner(stderr)
		sc.Buffer(nil, 1<<20) // a panic's stack can make long lines
		for sc.Scan() {
			line := sc.Text()
			if m := operatorLine.FindStringSubmatch(line); m != nil {
				r.operator = m[1]
				continue // the operator key stays out of the test log
			}
			r.full.Write([]byte(line + "\n"))
			if r.addr == "" {
				r.log.WriteString(line + "\n")
				var entry struct{ Msg, Addr string }
				if json.Unmarshal([]byte(line), &entry) == nil && entry.Msg == "serving" {
					r.addr = entry.Addr
					close(r.ready)
				}
			}
		}
	}()
	return r
}

// stop sends SIGTERM, reads the log to its end and returns how the
// process exited.
func (r *replica) stop() error {
	if err := r.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	select {
	case <-r.eof:
	case <-time.After(30 * time.Second):
		return fmt.Errorf("still running 30 s after SIGTERM")
	}
	return r.cmd.Wait()
}
