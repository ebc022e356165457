package sqlite_test

import (
	"path/filepath"
	"testing"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/store/sqlite"
	"github.com/latchkey/latchkey/store/storetest"
)

var cursorKey = []byte("page tokens of the store tests")

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) latchkey.Store {
		s, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "latchkey.db"), sqlite.Options{CursorKey: cursorKey})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}

func TestReopen(t *testing.T) {
	storetest.RunReopen(t, func(t *testing.T, path string) latchkey.Store {
		s, err := sqlite.Open(t.Context(), path, sqlite.Options{CursorKey: cursorKey})
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}
