package main

import (
	"context"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	latchkeyv1 "github.com/latchkey/latchkey/gen/latchkey/v1"
	"github.com/latchkey/latchkey/gen/latchkey/v1/latchkeyv1connect"
	"github.com/latchkey/latchkey/store/postgres/pgtest"
	"github.com/latchkey/latchkey/token"
)

// newPostgresDB creates an empty database for the test, dropped at its
// end, and returns its URL and a connection to it for the test's own SQL.
func newPostgresDB(t *testing.T) (string, *pgx.Conn) {
	t.Helper()
	admin := os.Getenv(pgtest.Env)
	if admin == "" {
		t.Skip(pgtest.Env + " is not set")
	}
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
// connections killed, and with them killed over and over so that the poll
// alone carries changes. No lag may reach the sync bound.
func TestReplicas(t *testing.T) {
	dsn, db := newPostgresDB(t)
	pepper := filepath.Join(t.TempDir(), "latchkey.pepper")
	if _, _, err := token.LoadOrCreatePepper(pepper, true); err != nil {
		t.Fatal(err)
	}
	const bound = time.Second
	bin := buildLatchkey(t)
	var replicas []*process
	for range 3 {
		replicas = append(replicas, launchBinary(t, bin, "--db", dsn, "--pepper-file", pepper, "--sync-bound", bound.String()))
	}
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

	// lag issues a key, warms the other replicas' caches with it, revokes
	// it on the first replica and returns how long each other replica
	// still accepted it.
	lag := func(t *testing.T) []time.Duration {
		t.Helper()
		res, err := keys.Issue(t.Context(), &latchkeyv1.IssueRequest{Metadata: &latchkeyv1.AccountResourceMetadata{Name: "lag"}})
		if err != nil {
			t.Fatal(err)
		}
		tok := res.GetApiKey().GetSpec().GetToken()
		for _, v := range verifiers {
			for range 2 { // the second answer comes from the cache
				if r, err := v.Verify(t.Context(), &latchkeyv1.VerifyRequest{Token: tok}); err != nil || !r.GetValid() {
					t.Fatalf("a fresh key does not verify: %v, %v", r.GetCode(), err)
				}
			}
		}
		if _, err := keys.Revoke(t.Context(), &latchkeyv1.RevokeRequest{Id: res.GetApiKey().GetMetadata().GetId()}); err != nil {
			t.Fatal(err)
		}
		revoked := time.Now()
		lags := make([]time.Duration, len(verifiers))
		var wg sync.WaitGroup
		for i, v := range verifiers {
			wg.Go(func() {
				for {
					r, err := v.Verify(context.Background(), &latchkeyv1.VerifyRequest{Token: tok})
					if err != nil || !r.GetValid() {
						// Refused, or failed closed: either way not accepted.
						lags[i] = time.Since(revoked)
						return
					}
					if time.Since(revoked) > 5*bound {
						lags[i] = time.Since(revoked)
						return
					}
				}
			})
		}
		wg.Wait()
		return lags
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
		t.Logf("%s: %d revocations seen by 2 replicas: lag p50 %v, p99 %v, max %v",
			name, len(lags)/2, p(0.5).Round(time.Microsecond), p(0.99).Round(time.Microsecond), lags[len(lags)-1].Round(time.Microsecond))
		if lags[len(lags)-1] >= bound {
			t.Errorf("%s: a replica accepted a revoked key for %v, past the %v bound", name, lags[len(lags)-1], bound)
		}
	}

	t.Run("with notifications", func(t *testing.T) {
		var lags []time.Duration
		for range 100 {
			lags = append(lags, lag(t)...)
		}
		report(t, "notifications", lags)
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
		// triggers still record each change but send nothing.
		_, err := db.Exec(t.Context(), `CREATE OR REPLACE FUNCTION record_key_change(changed TEXT) RETURNS void AS $$
			DECLARE next BIGINT;
			BEGIN
				UPDATE change_counter SET seq = seq + 1 WHERE id = 1 RETURNING seq INTO next;
				INSERT INTO key_changes (seq, key_id) VALUES (next, changed);
			END;
			$$ LANGUAGE plpgsql`)
		if err != nil {
			t.Fatal(err)
		}
		var lags []time.Duration
		for range 20 {
			lags = append(lags, lag(t)...)
		}
		report(t, "no notifications", lags)
	})
	t.Run("a replica cut off from the database fails closed after the bound", func(t *testing.T) {
		px := newCutProxy(t, dsn)
		cutoff := startBinary(t, bin, "--db", px.dsn, "--pepper-file", pepper, "--sync-bound", bound.String())
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
		if !accepted() || !accepted() {
			t.Fatal("the key does not verify before the cut")
		}
		px.cut()
		cut := time.Now()
		time.Sleep(bound + bound/4)
		for range 10 {
			if accepted() {
				t.Fatalf("%v after the database became unreachable, a cached key was still accepted", time.Since(cut))
			}
		}
		px.restore()
		deadline := time.Now().Add(10 * bound)
		for !accepted() {
			if time.Now().After(deadline) {
				t.Fatal("the replica did not recover once the database was back")
			}
			time.Sleep(50 * time.Millisecond)
		}
	})
	for _, r := range replicas {
		if strings.Contains(r.log.String(), "panic") {
			t.Errorf("a replica panicked:\n%s", r.log.String())
		}
	}
}

// cutProxy forwards TCP to the database of a URL until cut, which closes
// every connection and refuses new ones until restore: a database that
// became unreachable, as a network partition makes it.
type cutProxy struct {
	dsn   string // the URL, through the proxy
	mu    sync.Mutex
	down  bool
	conns []net.Conn
}

func newCutProxy(t *testing.T, dsn string) *cutProxy {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	target := u.Host
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	u.Host = ln.Addr().String()
	p := &cutProxy{dsn: u.String()}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.mu.Lock()
			if p.down {
				p.mu.Unlock()
				c.Close()
				continue
			}
			up, err := net.Dial("tcp", target)
			if err != nil {
				p.mu.Unlock()
				c.Close()
				continue
			}
			p.conns = append(p.conns, c, up)
			p.mu.Unlock()
			go func() { _, _ = io.Copy(up, c); up.Close() }()
			go func() { _, _ = io.Copy(c, up); c.Close() }()
		}
	}()
	return p
}

func (p *cutProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = true
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

func (p *cutProxy) restore() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = false
}
