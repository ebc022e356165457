package auth

import (
	"context"
	"errors"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/latchkey/latchkey"
)

// Last-used times are recorded without a write per call: a key's use is
// queued at most once per UseInterval, and the queue is written in one
// transaction every flush interval and at Close.
const (
	UseInterval          = time.Minute
	DefaultFlushInterval = 10 * time.Second
)

// usage queues last-used times for the store.
type usage struct {
	store  KeyStore
	logger *slog.Logger

	mu      sync.Mutex
	pending map[string]time.Time
	// rehashes wait for the same flush: hashes under the current pepper
	// of secrets that matched a hash made with an older one, by key id and
	// old hash, so that a long outage queues each at most once.
	rehashes map[string]latchkey.Rehash
	// flushed, when set, is told of each flush and whether it wrote.
	flushed func(ok bool)

	stop chan struct{}
	done chan struct{}
}

func newUsage(store KeyStore, logger *slog.Logger, every time.Duration, flushed func(ok bool)) *usage {
	u := &usage{store: store, logger: logger, flushed: flushed, pending: map[string]time.Time{}, stop: make(chan struct{}), done: make(chan struct{})}
	go u.loop(every)
	return u
}

// touch queues a use of the cached key e at now, unless one was queued in
// the last UseInterval. The common case is one atomic load.
func (u *usage) touch(e *cachedKey, now time.Time) {
	last := e.lastUse.Load()
	if now.UnixNano()-last < int64(UseInterval) || !e.lastUse.CompareAndSwap(last, now.UnixNano()) {
		return
	}
	u.mu.Lock()
	u.pending[e.cred.Key.ID] = now
	u.mu.Unlock()
}

func (u *usage) loop(every time.Duration) {
	defer close(u.done)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			u.flush(context.Background())
		case <-u.stop:
			return
		}
	}
}

// rehash queues r for the next flush.
func (u *usage) rehash(r latchkey.Rehash) {
	u.mu.Lock()
	if u.rehashes == nil {
		u.rehashes = map[string]latchkey.Rehash{}
	}
	u.rehashes[r.KeyID+"\x00"+string(r.Old.Hash)] = r
	u.mu.Unlock()
}

// flush writes the queued uses and rehashes.
func (u *usage) flush(ctx context.Context) error {
	return errors.Join(u.flushUses(ctx), u.flushRehashes(ctx))
}

// flushRehashes writes the queued rehashes in one write. On failure they
// are put back: until they land, the old pepper's hashes keep verifying.
func (u *usage) flushRehashes(ctx context.Context) error {
	u.mu.Lock()
	queued := u.rehashes
	u.rehashes = nil
	u.mu.Unlock()
	if len(queued) == 0 {
		return nil
	}
	// After a rotation every key in use is queued within one flush: small
	// transactions keep each one's row locks short, so that a revocation
	// or a rotation of the same keys never waits long behind them.
	ids := slices.Sorted(maps.Keys(queued))
	written := 0
	for chunk := range slices.Chunk(ids, rehashChunk) {
		batch := make([]latchkey.Rehash, len(chunk))
		for i, id := range chunk {
			batch[i] = queued[id]
		}
		if err := u.store.RehashKeys(ctx, batch); err != nil {
			left := ids[written:]
			u.logger.Warn("rehashing keys under the current pepper failed; will retry", "keys", len(left), "err", err)
			u.mu.Lock()
			if u.rehashes == nil {
				u.rehashes = map[string]latchkey.Rehash{}
			}
			for _, id := range left {
				if _, newer := u.rehashes[id]; !newer {
					u.rehashes[id] = queued[id]
				}
			}
			u.mu.Unlock()
			return err
		}
		written += len(chunk)
	}
	u.logger.Info("rehashed keys under the current pepper", "keys", written)
	return nil
}

// rehashChunk is how many rehashes one transaction writes.
const rehashChunk = 100

// flushUses writes the queued uses. On failure they are put back, so a brief
// database outage loses no use (a newer one queued meanwhile wins).
func (u *usage) flushUses(ctx context.Context) error {
	u.mu.Lock()
	batch := u.pending
	u.pending = map[string]time.Time{}
	u.mu.Unlock()
	if len(batch) == 0 {
		return nil
	}
	err := u.store.RecordKeyUse(ctx, batch)
	if u.flushed != nil {
		u.flushed(err == nil)
	}
	if err != nil {
		u.logger.Warn("recording key use failed; will retry", "keys", len(batch), "err", err)
		u.mu.Lock()
		for id, t := range batch {
			if cur, ok := u.pending[id]; !ok || t.After(cur) {
				u.pending[id] = t
			}
		}
		u.mu.Unlock()
	}
	return err
}

// close stops the loop and writes what is queued.
func (u *usage) close(ctx context.Context) error {
	select {
	case <-u.stop:
	default:
		close(u.stop)
	}
	<-u.done
	return u.flush(ctx)
}

// depth returns how many keys' uses wait to be written.
func (u *usage) depth() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.pending)
}
