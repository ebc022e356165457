package sqlite_test

import (
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/tmpfstest"
	"github.com/latchkey/latchkey/store/sqlite"
	"github.com/latchkey/latchkey/store/storetest"
)

// TestFullDisk fills the file system under a real database with keys
// issued by concurrent writers, so that the group committer meets
// SQLITE_FULL in the middle of batches, and checks what the callers were
// told and what the database kept.
func TestFullDisk(t *testing.T) {
	dir := tmpfstest.Mount(t, 8<<10)
	path := filepath.Join(dir, "latchkey.db")
	s := openAt(t, path)
	defer func() { s.Close() }()
	_, opKey, err := s.Bootstrap(t.Context(), storetest.NewAccount("operator"))
	if err != nil {
		t.Fatal(err)
	}
	operator := latchkey.Actor{Profile: latchkey.Bare{ID: opKey.ProfileID}, RequestID: "req-full"}
	account, system, err := s.CreateAccount(t.Context(), operator, storetest.NewAccount("acme"))
	if err != nil {
		t.Fatal(err)
	}
	actor := latchkey.Actor{Profile: latchkey.Bare{ID: system.ProfileID}, RequestID: "req-full"}
	newKey := func(name string) latchkey.NewAPIKey {
		return latchkey.NewAPIKey{
			Key: latchkey.APIKey{
				Metadata:    latchkey.Metadata{ID: latchkey.NewID(latchkey.PrefixAPIKey), AccountID: account.ID, Name: name},
				Permissions: []string{"invoices:read"},
				Environment: latchkey.EnvironmentLive,
				CreatedBy:   system.ProfileID,
				TokenPrefix: "lk_live_01ABCDEF",
			},
			Secret:               storetest.NewSecret(),
			DefaultMaxActiveKeys: 1_000_000,
		}
	}

	filler := tmpfstest.Fill(t, dir, 1<<20)
	var (
		mu     sync.Mutex
		acked  []latchkey.APIKey
		failed = map[string]error{}  // key id → the error its Issue got
		names  = map[string]string{} // failed key id → its name
	)
	var writers sync.WaitGroup
	for w := range 8 {
		writers.Go(func() {
			misses := 0
			for i := 0; i < 20_000 && misses < 3; i++ {
				in := newKey(fmt.Sprintf("w%d-%d", w, i))
				k, err := s.IssueKey(t.Context(), actor, in)
				mu.Lock()
				if err == nil {
					acked = append(acked, k)
				} else {
					failed[in.Key.ID] = err
					names[in.Key.ID] = in.Key.Name
					misses++
				}
				mu.Unlock()
			}
		})
	}
	writers.Wait()
	t.Logf("%d keys acknowledged before and between %d failures", len(acked), len(failed))
	if len(failed) == 0 {
		t.Fatal("the disk never filled: no Issue failed")
	}
	if len(acked) == 0 {
		t.Fatal("no key was issued: the filler left no room at all")
	}

	t.Run("a write on a full disk is resource_exhausted, saying storage is full", func(t *testing.T) {
		for id, err := range failed {
			var e *latchkey.Error
			if !errors.As(err, &e) || e.Code != latchkey.CodeResourceExhausted {
				t.Fatalf("Issue of %s: %v (code %q), want resource_exhausted", id, err, latchkey.ErrorCode(err))
			}
			if !strings.Contains(e.Message, "storage is full") {
				t.Errorf("message %q does not say the storage is full", e.Message)
			}
			if strings.Contains(e.Error(), "disk is full") || e.Cause == nil || !strings.Contains(e.Cause.Error(), "full") {
				t.Errorf("the driver's text must be in the cause alone: error %q, cause %v", e.Error(), e.Cause)
			}
		}
	})
	t.Run("a failed Issue leaves no key, no profile and no audit event", func(t *testing.T) {
		profiles := map[string]bool{}
		for tok := ""; ; {
			page, err := s.ListProfiles(t.Context(), latchkey.ProfileQuery{AccountID: account.ID, Page: latchkey.PageRequest{Size: latchkey.MaxPageSize, Token: tok}})
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range page.Items {
				profiles[p.Name] = true
			}
			if tok = page.NextToken; tok == "" {
				break
			}
		}
		for id := range failed {
			if _, err := s.GetKey(t.Context(), account.ID, id); latchkey.ErrorCode(err) != latchkey.CodeNotFound {
				t.Errorf("key %s, whose Issue failed: %v, want not_found", id, err)
			}
			if profiles[names[id]] {
				t.Errorf("the profile of key %s, whose Issue failed, exists", id)
			}
			events, err := s.ListAuditEvents(t.Context(), latchkey.AuditQuery{AccountID: account.ID, TargetID: id, Page: latchkey.PageRequest{Size: 10}})
			if err != nil {
				t.Fatal(err)
			}
			if len(events.Items) > 0 {
				t.Errorf("key %s, whose Issue failed, has %d audit events", id, len(events.Items))
			}
		}
		for _, k := range acked {
			if !profiles[k.Name] {
				t.Errorf("acknowledged key %s has no profile", k.ID)
			}
		}
	})
	t.Run("acknowledged keys verify while the disk is full", func(t *testing.T) {
		for _, k := range acked {
			if _, err := s.GetCredential(t.Context(), k.ID); err != nil {
				t.Fatalf("acknowledged key %s: %v", k.ID, err)
			}
		}
	})
	t.Run("once space is freed, writes work again", func(t *testing.T) {
		if err := os.Remove(filler); err != nil {
			t.Fatal(err)
		}
		k, err := s.IssueKey(t.Context(), actor, newKey("after"))
		if err != nil {
			t.Fatalf("Issue after freeing space: %v", err)
		}
		acked = append(acked, k)
	})
	t.Run("after a reopen every acknowledged key is there and integrity_check is ok", func(t *testing.T) {
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		s = openAt(t, path)
		for _, k := range acked {
			if _, err := s.GetCredential(t.Context(), k.ID); err != nil {
				t.Fatalf("acknowledged key %s after reopening: %v", k.ID, err)
			}
		}
		db, err := sql.Open("sqlite", path)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		var result string
		if err := db.QueryRowContext(t.Context(), "PRAGMA integrity_check").Scan(&result); err != nil || result != "ok" {
			t.Fatalf("integrity_check: %q, %v", result, err)
		}
	})
}

func openAt(t *testing.T, path string) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(t.Context(), path, sqlite.Options{CursorKey: cursorKey})
	if err != nil {
		t.Fatal(err)
	}
	return s
}
