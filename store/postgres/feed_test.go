package postgres_test

import (
	"sync"
	"testing"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/store/postgres"
	"github.com/latchkey/latchkey/store/storetest"
)

// sourceSink records how each change arrived.
type sourceSink struct {
	mu      sync.Mutex
	sources map[string]latchkey.ChangeSource // key id → source
}

func (s *sourceSink) ApplyChange(c latchkey.Change) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sources[c.KeyID] = c.Source
}

func (s *sourceSink) ResetChanges() {}

func (s *sourceSink) source(keyID string) (latchkey.ChangeSource, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	src, ok := s.sources[keyID]
	return src, ok
}

// TestFeedSaysHowAChangeArrived: a replica's feed marks a change made by
// another replica as learned from a notification or a poll, never as its
// own write, and a change of its own as its write. The cache's
// invalidation metrics are split by this source.
func TestFeedSaysHowAChangeArrived(t *testing.T) {
	dsn := newSchema(t)
	here, there := open(t, dsn), open(t, dsn)
	defer here.Close()
	defer there.Close()
	ctx := t.Context()
	account, system, err := here.Bootstrap(ctx, storetest.NewAccount("op"))
	if err != nil {
		t.Fatal(err)
	}
	actor := latchkey.Actor{Profile: latchkey.Bare{ID: system.ProfileID, Name: "system"}}
	sink := &sourceSink{sources: map[string]latchkey.ChangeSource{}}
	feed, err := here.Follow(sink)
	if err != nil {
		t.Fatal(err)
	}
	defer feed.Close()
	for deadline := time.Now().Add(5 * time.Second); !feed.Fresh(time.Now()); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the feed never became fresh")
		}
	}
	revokeThrough := func(s *postgres.Store) string {
		t.Helper()
		key, err := s.IssueKey(ctx, actor, latchkey.NewAPIKey{
			Key: latchkey.APIKey{
				Metadata:    latchkey.Metadata{ID: latchkey.NewID(latchkey.PrefixAPIKey), AccountID: account.ID, Name: "k"},
				Environment: latchkey.EnvironmentLive, TokenPrefix: "lk_live_01ABCDEF",
			},
			Secret: storetest.NewSecret(), DefaultMaxActiveKeys: 100,
		})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.RevokeKey(ctx, actor, account.ID, key.ID); err != nil {
			t.Fatal(err)
		}
		return key.ID
	}

	t.Run("another replica's change arrives by notification or poll", func(t *testing.T) {
		id := revokeThrough(there)
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
			if src, ok := sink.source(id); ok {
				if src != latchkey.ChangeFromNotification && src != latchkey.ChangeFromPoll {
					t.Fatalf("source %q, want notification or poll", src)
				}
				t.Logf("arrived by %s", src)
				return
			}
			if time.Now().After(deadline) {
				t.Fatal("the change never arrived")
			}
		}
	})
	t.Run("its own change arrives with the write", func(t *testing.T) {
		id := revokeThrough(here)
		src, ok := sink.source(id)
		if !ok {
			t.Fatal("the change had not arrived when the write returned")
		}
		// The notification can win the race with the write's own sync.
		if src != latchkey.ChangeFromWrite && src != latchkey.ChangeFromNotification {
			t.Fatalf("source %q, want write", src)
		}
	})
}
