package sqlite_test

import (
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/sqlstore"
	"github.com/latchkey/latchkey/store/sqlite"
)

// resetCounter is a sink that counts resets and the changes it is given.
type resetCounter struct {
	mu      sync.Mutex
	resets  int
	applied []int64
}

func (r *resetCounter) ApplyChange(c latchkey.Change) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.applied = append(r.applied, c.Seq)
}

func (r *resetCounter) ResetChanges() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.resets++
}

// The change log keeps sqlstore.ChangeRetention: a follower that stayed
// away longer, while the writes went on, finds a hole where the pruned
// changes were and resets its sink, then applies what is left.
func TestPrunedChangesResetAFollowerThatWasAway(t *testing.T) {
	var now atomic.Int64
	now.Store(time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC).UnixNano())
	clock := func() time.Time { return time.Unix(0, now.Load()) }
	s, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "latchkey.db"), sqlite.Options{CursorKey: cursorKey, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	system := latchkey.NewAPIKey{Key: latchkey.APIKey{
		Metadata:    latchkey.Metadata{ID: latchkey.NewID(latchkey.PrefixAPIKey), Name: "system"},
		Permissions: []string{"*"}, System: true, Environment: latchkey.EnvironmentLive, TokenPrefix: "lk_live_0123456",
	}, Secret: latchkey.SecretHash{Hash: []byte("s"), PepperVersion: 1}}
	account, key, err := s.Bootstrap(t.Context(), latchkey.NewAccount{Name: "op", SystemKey: system})
	if err != nil {
		t.Fatal(err)
	}
	actor := latchkey.Actor{Profile: latchkey.Bare{ID: key.ProfileID, Name: "system"}}
	update := func(n int) {
		t.Helper()
		for range n {
			if _, err := s.UpdateKey(t.Context(), actor, latchkey.KeyUpdate{
				AccountID: account.ID, ID: key.ID, Paths: []string{"spec.description"}, Key: latchkey.APIKey{Description: "x"},
			}); err != nil {
				t.Fatal(err)
			}
		}
	}

	sink := &resetCounter{}
	away := s.NewFollower(sink)
	if err := away.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	away.Stop() // it follows no more writes until it syncs itself
	sink.resets = 0
	update(10) // seq 1..10, soon older than the retention
	now.Add(int64(sqlstore.ChangeRetention + time.Minute))
	update(300) // seq 11..310; the write of 256 prunes the ten old ones

	if err := away.Sync(t.Context(), latchkey.ChangeFromPoll); err != nil {
		t.Fatal(err)
	}
	if sink.resets != 1 {
		t.Errorf("resets = %d, want 1 for the hole the pruning left", sink.resets)
	}
	if len(sink.applied) == 0 || sink.applied[0] != 11 || sink.applied[len(sink.applied)-1] != 310 {
		t.Fatalf("applied seq %v..., want 11 to 310", sink.applied[:min(3, len(sink.applied))])
	}
	// Within the retention nothing is pruned: a follower at the present
	// reads every later change without a hole.
	sink.resets, sink.applied = 0, nil
	update(300)
	if err := away.Sync(t.Context(), latchkey.ChangeFromPoll); err != nil {
		t.Fatal(err)
	}
	if sink.resets != 0 || len(sink.applied) != 300 {
		t.Errorf("within the retention: %d resets, %d changes, want 0 and 300", sink.resets, len(sink.applied))
	}
}
