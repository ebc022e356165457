package auth_test

import (
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/auth"
)

// BenchmarkVerifyStoreSize verifies the same 1,000 keys in a store of
// 1,000 keys and in one of 1,000,000, with the cache warm (hit) and with
// a cache of one entry, so that every call reads the store (miss). Both
// must cost the same at either size.
//
//	go test ./auth -run XXX -bench VerifyStoreSize -benchmem -benchtime 20000x
func BenchmarkVerifyStoreSize(b *testing.B) {
	for _, size := range []int{1_000, 1_000_000} {
		for _, mode := range []string{"hit", "miss"} {
			b.Run(fmt.Sprintf("keys=%d/%s", size, mode), func(b *testing.B) {
				opts := auth.VerifierOptions{}
				if mode == "miss" {
					opts.CacheKeys = 1
				}
				f := newFixtureWith(b, opts)
				raws := f.issueMany(b, 1_000)
				f.seedFiller(b, size-len(raws))
				req := auth.Requirements{Permissions: []string{"invoices:read"}}
				for _, raw := range raws {
					f.verify(b, raw)
				}
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					i++
					v, err := f.verifier.Verify(b.Context(), raws[i%len(raws)], req)
					if err != nil || v.Outcome != auth.OutcomeValid {
						b.Fatal(v.Outcome, err)
					}
				}
			})
		}
	}
}

// issueMany issues n keys through the store, from many goroutines so that
// their commits are grouped, and returns their tokens.
func (f *fixture) issueMany(b *testing.B, n int) []string {
	raws := make([]string, n)
	errs := make([]error, 32)
	var wg sync.WaitGroup
	for w := range errs {
		wg.Go(func() {
			for i := w; i < n && errs[w] == nil; i += 32 {
				var in latchkey.NewAPIKey
				raws[i], in = f.newKey(b, "k")
				_, errs[w] = f.store.IssueKey(b.Context(), f.actor, in)
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		b.Fatal(err)
	}
	return raws
}

// seedFiller inserts n keys straight into the database in one statement,
// with ids that sort among the real ones: through IssueKey a million keys
// would take minutes.
func (f *fixture) seedFiller(b *testing.B, n int) {
	if n <= 0 {
		return
	}
	db, err := sql.Open("sqlite", f.path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	_, err = db.ExecContext(b.Context(), `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
		INSERT INTO api_keys (id, account_id, profile_id, name, environment, token_prefix, secret_hash,
			pepper_version, create_time, update_time, etag)
		SELECT printf('key_01%024X', abs(random())), ?, ?, 'filler', 1, 'lk_live_filler', zeroblob(32), 1, i, i, 'e' FROM n`,
		n, f.account, f.actor.Profile.ID)
	if err != nil {
		b.Fatal(err)
	}
}
