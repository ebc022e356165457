package pepper_test

import (
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/latchkey/latchkey/internal/pepper"
)

// Replicas starting together on a new installation race to make the
// pepper: exactly one makes it and every other uses that one, never a
// pepper of its own (which would make the keys it issues unverifiable by
// the others).
func TestConcurrentStartsShareOnePepper(t *testing.T) {
	const rounds, starters = 20, 6
	for round := range rounds {
		path := filepath.Join(t.TempDir(), "latchkey.pepper")
		var (
			wg      sync.WaitGroup
			start   = make(chan struct{})
			peppers [starters][]pepper.Pepper
			created [starters]bool
			errs    [starters]error
		)
		for i := range starters {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				peppers[i], created[i], errs[i] = pepper.LoadOrCreate(path, true)
			}()
		}
		close(start)
		wg.Wait()
		onDisk, _, err := pepper.LoadOrCreate(path, false)
		if err != nil {
			t.Fatal(err)
		}
		makers := 0
		for i := range starters {
			if errs[i] != nil {
				t.Fatalf("round %d, starter %d: %v", round, i, errs[i])
			}
			if fingerprint(t, peppers[i]) != fingerprint(t, onDisk) {
				t.Fatalf("round %d: starter %d uses a pepper other than the file's", round, i)
			}
			if created[i] {
				makers++
			}
		}
		if makers != 1 {
			t.Fatalf("round %d: %d starters say they made the pepper, want 1", round, makers)
		}
		if entries, _ := os.ReadDir(filepath.Dir(path)); len(entries) != 1 {
			t.Fatalf("round %d: files left behind: %v", round, entries)
		}
	}
}
