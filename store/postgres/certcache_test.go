package postgres_test

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"golang.org/x/crypto/acme/autocert"

	"github.com/latchkey/latchkey/store/postgres"
)

var cacheKey = bytes.Repeat([]byte{7}, 32)

func openCertCache(t *testing.T, dsn string, opts postgres.CertCacheOptions) *postgres.CertCache {
	t.Helper()
	if opts.Key == nil {
		opts.Key = cacheKey
	}
	c, err := postgres.OpenCertCache(t.Context(), dsn, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// getAsync runs c.Get in a goroutine; its result comes on the channel.
func getAsync(c *postgres.CertCache, name string) <-chan getResult {
	out := make(chan getResult, 1)
	go func() {
		data, err := c.Get(context.Background(), name)
		out <- getResult{data, err}
	}()
	return out
}

type getResult struct {
	data []byte
	err  error
}

func TestCertCache(t *testing.T) {
	var _ autocert.Cache = (*postgres.CertCache)(nil)

	t.Run("a missing entry is a miss and a put one is found", func(t *testing.T) {
		c := openCertCache(t, newSchema(t), postgres.CertCacheOptions{})
		if _, err := c.Get(t.Context(), "example.com"); err != autocert.ErrCacheMiss {
			t.Fatalf("Get of a missing entry = %v, want autocert.ErrCacheMiss itself", err)
		}
		if err := c.Put(t.Context(), "example.com", []byte("key and chain")); err != nil {
			t.Fatal(err)
		}
		if data, err := c.Get(t.Context(), "example.com"); err != nil || string(data) != "key and chain" {
			t.Fatalf("Get = %q, %v", data, err)
		}
		if err := c.Delete(t.Context(), "example.com"); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Get(t.Context(), "example.com"); err != autocert.ErrCacheMiss {
			t.Fatalf("Get after Delete = %v, want a miss", err)
		}
	})

	t.Run("the database holds the entry sealed, and another key cannot open it", func(t *testing.T) {
		dsn := newSchema(t)
		c := openCertCache(t, dsn, postgres.CertCacheOptions{})
		secret := []byte("-----BEGIN EC PRIVATE KEY-----\nsecret\n")
		if err := c.Put(t.Context(), "example.com", secret); err != nil {
			t.Fatal(err)
		}
		conn, err := pgx.Connect(t.Context(), dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(context.Background())
		var stored []byte
		if err := conn.QueryRow(t.Context(), `SELECT data FROM acme_cache WHERE name = 'example.com'`).Scan(&stored); err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(stored, []byte("PRIVATE KEY")) || bytes.Contains(stored, []byte("secret")) {
			t.Fatalf("the database holds the entry in clear: %q", stored)
		}
		// After a pepper rotation the key is another: a miss, not an error.
		other := openCertCache(t, dsn, postgres.CertCacheOptions{Key: bytes.Repeat([]byte{8}, 32), LockWait: time.Second})
		if _, err := other.Get(t.Context(), "example.com"); err != autocert.ErrCacheMiss {
			t.Fatalf("Get under another key = %v, want a miss", err)
		}
		// An entry moved to another name does not open either.
		if _, err := conn.Exec(t.Context(), `INSERT INTO acme_cache (name, data, update_time) VALUES ('other.example.com', $1, 0)`, stored); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Get(t.Context(), "other.example.com"); err != autocert.ErrCacheMiss {
			t.Fatalf("Get of an entry copied to another name = %v, want a miss", err)
		}
	})

	t.Run("a replica that misses waits for the Put of the one obtaining the entry", func(t *testing.T) {
		dsn := newSchema(t)
		first := openCertCache(t, dsn, postgres.CertCacheOptions{})
		second := openCertCache(t, dsn, postgres.CertCacheOptions{})
		if _, err := first.Get(t.Context(), "example.com"); err != autocert.ErrCacheMiss {
			t.Fatalf("first Get = %v, want a miss", err)
		}
		waiting := getAsync(second, "example.com")
		select {
		case r := <-waiting:
			t.Fatalf("the second replica's Get did not wait for the first's Put: %q, %v", r.data, r.err)
		case <-time.After(500 * time.Millisecond):
		}
		if err := first.Put(t.Context(), "example.com", []byte("obtained once")); err != nil {
			t.Fatal(err)
		}
		select {
		case r := <-waiting:
			if r.err != nil || string(r.data) != "obtained once" {
				t.Fatalf("the second replica's Get = %q, %v; want the first's entry", r.data, r.err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("the second replica's Get still waits after the Put")
		}
	})

	t.Run("a stale entry is returned under the lock, and the others wait for its renewal", func(t *testing.T) {
		dsn := newSchema(t)
		stale := func(_ string, data []byte) bool { return string(data) == "old" }
		first := openCertCache(t, dsn, postgres.CertCacheOptions{Stale: stale})
		second := openCertCache(t, dsn, postgres.CertCacheOptions{Stale: stale})
		if err := first.Put(t.Context(), "example.com", []byte("old")); err != nil {
			t.Fatal(err)
		}
		if data, err := first.Get(t.Context(), "example.com"); err != nil || string(data) != "old" {
			t.Fatalf("Get of a stale entry = %q, %v; want it", data, err)
		}
		waiting := getAsync(second, "example.com")
		select {
		case r := <-waiting:
			t.Fatalf("the second replica did not wait for the renewal: %q, %v", r.data, r.err)
		case <-time.After(500 * time.Millisecond):
		}
		if err := first.Put(t.Context(), "example.com", []byte("new")); err != nil {
			t.Fatal(err)
		}
		if r := <-waiting; r.err != nil || string(r.data) != "new" {
			t.Fatalf("the second replica's Get = %q, %v; want the renewed entry", r.data, r.err)
		}
	})

	t.Run("challenge certificates are shared and never locked", func(t *testing.T) {
		dsn := newSchema(t)
		first := openCertCache(t, dsn, postgres.CertCacheOptions{})
		second := openCertCache(t, dsn, postgres.CertCacheOptions{})
		if _, err := first.Get(t.Context(), "example.com+token"); err != autocert.ErrCacheMiss {
			t.Fatalf("Get of a missing token = %v, want a miss", err)
		}
		if _, err := second.Get(t.Context(), "example.com+token"); err != autocert.ErrCacheMiss {
			t.Fatalf("a second Get of a missing token = %v, want a miss at once", err)
		}
		if err := first.Put(t.Context(), "example.com+token", []byte("challenge")); err != nil {
			t.Fatal(err)
		}
		if data, err := second.Get(t.Context(), "example.com+token"); err != nil || string(data) != "challenge" {
			t.Fatalf("the other replica's Get of the token = %q, %v", data, err)
		}
	})

	t.Run("a replica stops waiting after LockWait, and a lock is released after LockHold", func(t *testing.T) {
		dsn := newSchema(t)
		first := openCertCache(t, dsn, postgres.CertCacheOptions{LockHold: 2 * time.Second})
		second := openCertCache(t, dsn, postgres.CertCacheOptions{LockWait: 300 * time.Millisecond})
		if _, err := first.Get(t.Context(), "example.com"); err != autocert.ErrCacheMiss {
			t.Fatalf("first Get = %v", err)
		}
		start := time.Now()
		if _, err := second.Get(t.Context(), "example.com"); err != autocert.ErrCacheMiss {
			t.Fatalf("Get past LockWait = %v, want a miss", err)
		}
		if waited := time.Since(start); waited < 300*time.Millisecond {
			t.Fatalf("the second Get waited %v, less than LockWait", waited)
		}
		// The first replica's issuance failed: no Put. Its lock goes after
		// LockHold, and a replica that waits longer than that gets it.
		third := openCertCache(t, dsn, postgres.CertCacheOptions{LockWait: time.Minute})
		if _, err := third.Get(t.Context(), "example.com"); err != autocert.ErrCacheMiss {
			t.Fatalf("Get after LockHold = %v", err)
		}
		if waited := time.Since(start); waited > 30*time.Second {
			t.Fatalf("a Get waited %v for a lock held for LockHold (2s): it was not released", waited)
		}
		// The third holds it now, and the second waits for it again.
		start = time.Now()
		if _, err := second.Get(t.Context(), "example.com"); err != autocert.ErrCacheMiss {
			t.Fatalf("Get past LockWait = %v, want a miss", err)
		}
		if waited := time.Since(start); waited < 300*time.Millisecond {
			t.Fatalf("the second Get waited %v with the third holding the lock, less than LockWait", waited)
		}
	})

	t.Run("a database error is an error, not a miss", func(t *testing.T) {
		c, err := postgres.OpenCertCache(t.Context(), newSchema(t), postgres.CertCacheOptions{Key: cacheKey})
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
		if _, err := c.Get(t.Context(), "example.com"); err == nil || errors.Is(err, autocert.ErrCacheMiss) {
			t.Fatalf("Get on a closed pool = %v, want an error that is not a miss", err)
		}
	})

	t.Run("a key of the wrong size is refused", func(t *testing.T) {
		if _, err := postgres.OpenCertCache(t.Context(), "postgres://127.0.0.1/none", postgres.CertCacheOptions{Key: []byte("short")}); err == nil {
			t.Fatal("OpenCertCache took a 5-byte key")
		}
	})
}
