package postgres

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"golang.org/x/crypto/acme/autocert"
)

// CertCacheOptions configures OpenCertCache.
type CertCacheOptions struct {
	// Key seals every entry with AES-256-GCM: 32 bytes, the same on every
	// replica. An entry that it cannot open (sealed under another key) is
	// a cache miss, and is replaced by the next Put.
	Key []byte
	// Stale reports whether an entry that was found is one its reader is
	// about to replace, such as a certificate due for renewal. A stale
	// entry is returned under the lock, as a miss is, so that one replica
	// renews while the others wait for its result. Nil means never.
	Stale func(name string, data []byte) bool
	// LockWait is how long a Get waits for another replica that is
	// obtaining the same entry; past it, the Get returns what it found
	// (a miss, or the stale entry) without the lock. 0 means 2 minutes.
	LockWait time.Duration
	// LockHold is how long a lock taken by a Get is held waiting for the
	// Put that ends it, should the issuance fail and no Put come. 0 means
	// 5 minutes, autocert's own bound on an issuance.
	LockHold time.Duration
	// Logger receives the cache's warnings; nil means slog.Default.
	Logger *slog.Logger
}

// CertCache is an autocert.Cache in the database, shared by the replicas,
// so that the certificate of a domain is obtained once for all of them:
// a Get that misses (or finds a stale entry) takes a PostgreSQL advisory
// lock on the entry's name, reads again once it has the lock, and when the
// entry is still missing keeps the lock until the Put of the entry (or
// LockHold), so that only the replica holding it talks to the ACME server
// and the others, waiting on the lock, then read what it obtained.
//
// Entries are sealed with AES-256-GCM, the entry's name as additional data,
// so that a dump of the database alone hands out no TLS private key, and an
// entry cannot be passed off under another name. The TLS-ALPN-01 challenge
// certificates ("+token" entries) are shared too, so that a replica behind
// the same load balancer as the one that placed the order can answer the
// CA's validation, but never locked: they are read during a handshake.
//
// The cache has a small pool of its own, so that the connections that hold
// locks through an issuance are not taken from the store's.
type CertCache struct {
	pool  *pgxpool.Pool
	db    *sql.DB
	aead  cipher.AEAD
	opts  CertCacheOptions
	mu    sync.Mutex
	held  map[string]*heldLock
	warns sync.Map // names whose unreadable entry was already logged
}

// heldLock is an advisory lock this process holds until a Put.
type heldLock struct {
	conn  *pgxpool.Conn
	timer *time.Timer
}

// certCacheMaxConns bounds the cache's pool: a lock held per domain being
// obtained, and the reads and writes.
const certCacheMaxConns = 4

// OpenCertCache connects to the database at dsn, as Open does (applying any
// migration it lacks), for a certificate cache.
func OpenCertCache(ctx context.Context, dsn string, opts CertCacheOptions) (*CertCache, error) {
	if len(opts.Key) != 32 {
		return nil, errors.New("postgres: the certificate cache key must be 32 bytes")
	}
	block, err := aes.NewCipher(opts.Key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	if opts.LockWait <= 0 {
		opts.LockWait = 2 * time.Minute
	}
	if opts.LockHold <= 0 {
		opts.LockHold = 5 * time.Minute
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", redact(err))
	}
	cfg.MaxConns = certCacheMaxConns
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", redact(err))
	}
	db := stdlib.OpenDBFromPool(pool)
	if err := migrate(ctx, db); err != nil {
		db.Close()
		pool.Close()
		return nil, fmt.Errorf("postgres: migrate: %w", redact(err))
	}
	return &CertCache{pool: pool, db: db, aead: aead, opts: opts, held: make(map[string]*heldLock)}, nil
}

// Close releases the locks still held and closes the connections.
func (c *CertCache) Close() {
	c.mu.Lock()
	names := make([]string, 0, len(c.held))
	for name := range c.held {
		names = append(names, name)
	}
	c.mu.Unlock()
	for _, name := range names {
		c.release(name)
	}
	c.db.Close()
	c.pool.Close()
}

// Get returns the entry under name, or autocert.ErrCacheMiss when there is
// none (or none this cache's key opens). Any other error is the database's,
// never a miss: a replica that cannot read the cache must not go and
// obtain a certificate the others already have.
func (c *CertCache) Get(ctx context.Context, name string) ([]byte, error) {
	data, found, err := c.read(ctx, name)
	if err != nil {
		return nil, err
	}
	if found && !c.stale(name, data) {
		return data, nil
	}
	if isToken(name) {
		return answer(data, found)
	}
	c.mu.Lock()
	_, mine := c.held[name]
	c.mu.Unlock()
	if mine {
		// This process is obtaining the entry already: autocert makes the
		// other callers of this process wait for it.
		return answer(data, found)
	}
	conn, err := c.lock(ctx, name)
	if err != nil {
		if ctx.Err() == nil && errors.Is(err, errLockWait) {
			c.opts.Logger.Warn("another replica has been obtaining an ACME certificate cache entry for too long; obtaining it here too",
				"name", name, "waited", c.opts.LockWait)
			return answer(data, found)
		}
		return nil, err
	}
	again, foundAgain, err := c.read(ctx, name)
	if err != nil {
		c.unlock(conn, name)
		return nil, err
	}
	if foundAgain && (!c.stale(name, again) || !bytes.Equal(again, data)) {
		// Another replica put it while this one waited for the lock.
		c.unlock(conn, name)
		return again, nil
	}
	c.mu.Lock()
	c.held[name] = &heldLock{conn: conn, timer: time.AfterFunc(c.opts.LockHold, func() { c.release(name) })}
	c.mu.Unlock()
	return answer(again, foundAgain)
}

// Put stores data under name, and releases the lock the Get that missed
// it took.
func (c *CertCache) Put(ctx context.Context, name string, data []byte) error {
	defer c.release(name)
	sealed, err := c.seal(name, data)
	if err != nil {
		return err
	}
	_, err = c.pool.Exec(ctx, `INSERT INTO acme_cache (name, data, update_time) VALUES ($1, $2, $3)
		ON CONFLICT (name) DO UPDATE SET data = EXCLUDED.data, update_time = EXCLUDED.update_time`,
		name, sealed, time.Now().Unix())
	if err != nil {
		return fmt.Errorf("postgres: certificate cache: put %s: %w", name, err)
	}
	return nil
}

// Delete removes the entry under name, if there is one.
func (c *CertCache) Delete(ctx context.Context, name string) error {
	if _, err := c.pool.Exec(ctx, `DELETE FROM acme_cache WHERE name = $1`, name); err != nil {
		return fmt.Errorf("postgres: certificate cache: delete %s: %w", name, err)
	}
	return nil
}

func (c *CertCache) stale(name string, data []byte) bool {
	return c.opts.Stale != nil && !isToken(name) && c.opts.Stale(name, data)
}

// read returns the entry under name, opened; an entry that cannot be
// opened is as good as missing.
func (c *CertCache) read(ctx context.Context, name string) (data []byte, found bool, err error) {
	var sealed []byte
	err = c.pool.QueryRow(ctx, `SELECT data FROM acme_cache WHERE name = $1`, name).Scan(&sealed)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("postgres: certificate cache: get %s: %w", name, err)
	}
	data, err = c.open(name, sealed)
	if err != nil {
		if _, logged := c.warns.LoadOrStore(name, true); !logged {
			c.opts.Logger.Warn("an ACME certificate cache entry cannot be opened with this pepper (it was sealed under another, or altered); it is obtained anew",
				"name", name)
		}
		return nil, false, nil
	}
	return data, true, nil
}

var errLockWait = errors.New("postgres: certificate cache: the lock was not free in time")

// lock takes the advisory lock of name on a connection of its own, which
// holds it until unlock. It polls, rather than waits in
// pg_advisory_lock, so that giving up does not cancel a query and lose the
// connection.
func (c *CertCache) lock(ctx context.Context, name string) (*pgxpool.Conn, error) {
	conn, err := c.pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("postgres: certificate cache: %w", err)
	}
	deadline := time.Now().Add(c.opts.LockWait)
	for {
		var got bool
		if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock(hashtextextended(current_schema() || $1, 0))`, lockName(name)).Scan(&got); err != nil {
			conn.Release()
			return nil, fmt.Errorf("postgres: certificate cache: lock %s: %w", name, err)
		}
		if got {
			return conn, nil
		}
		if time.Now().After(deadline) {
			conn.Release()
			return nil, errLockWait
		}
		select {
		case <-ctx.Done():
			conn.Release()
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// unlock releases the advisory lock of name that conn holds, and returns
// conn to the pool; a connection that may still hold it is closed instead,
// which releases it.
func (c *CertCache) unlock(conn *pgxpool.Conn, name string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_unlock(hashtextextended(current_schema() || $1, 0))`, lockName(name)); err != nil {
		conn.Hijack().Close(ctx)
		return
	}
	conn.Release()
}

// release ends the lock this process holds on name, if it holds one.
func (c *CertCache) release(name string) {
	c.mu.Lock()
	h, ok := c.held[name]
	delete(c.held, name)
	c.mu.Unlock()
	if ok {
		h.timer.Stop()
		c.unlock(h.conn, name)
	}
}

// lockName is the text whose hash, after the current schema's name, is the
// advisory lock of an entry: with the schema, installations in schemas of
// one database do not wait for one another.
func lockName(name string) string {
	return " latchkey acme cache " + name
}

func (c *CertCache) seal(name string, data []byte) ([]byte, error) {
	nonce := make([]byte, c.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	out := make([]byte, 0, 1+len(nonce)+len(data)+c.aead.Overhead())
	out = append(append(out, sealVersion), nonce...)
	return c.aead.Seal(out, nonce, data, additionalData(name)), nil
}

func (c *CertCache) open(name string, sealed []byte) ([]byte, error) {
	n := c.aead.NonceSize()
	if len(sealed) < 1+n || sealed[0] != sealVersion {
		return nil, errors.New("not a sealed entry")
	}
	return c.aead.Open(nil, sealed[1:1+n], sealed[1+n:], additionalData(name))
}

// sealVersion is the first byte of a sealed entry, so that another format
// can follow.
const sealVersion = 1

func additionalData(name string) []byte {
	return []byte("latchkey acme cache v1\x00" + name)
}

// isToken reports whether name is autocert's entry for a TLS-ALPN-01
// challenge certificate.
func isToken(name string) bool { return strings.HasSuffix(name, "+token") }

// found1 is Get's answer for what it found.
func answer(data []byte, found bool) ([]byte, error) {
	if !found {
		return nil, autocert.ErrCacheMiss
	}
	return data, nil
}
