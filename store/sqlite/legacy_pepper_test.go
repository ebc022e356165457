package sqlite_test

import (
	"database/sql"
	"path/filepath"
	"testing"

	_ "modernc.org/sqlite"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/store/sqlite"
	"github.com/latchkey/latchkey/store/storetest"
)

// A database made before peppers had ids holds pepper 1's fingerprint in
// the settings row pepper_fingerprint. It is read as pepper 1's: the wrong
// pepper 1 is refused, a server without pepper 1 is refused while keys use
// it, and the row stays, so that an older binary still refuses the wrong
// pepper.
func TestLegacyPepperFingerprintIsPepperOnes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "legacy.db")
	open := func() *sqlite.Store {
		t.Helper()
		s, err := sqlite.Open(t.Context(), path, sqlite.Options{CursorKey: cursorKey})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	s := open()
	if _, _, err := s.Bootstrap(t.Context(), storetest.NewAccount("operator")); err != nil {
		t.Fatal(err)
	}
	s.Close()
	// Make it what the previous version left: the legacy row only.
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`DELETE FROM settings`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`INSERT INTO settings (name, value) VALUES ('pepper_fingerprint', 'legacy one')`); err != nil {
		t.Fatal(err)
	}

	s = open()
	defer s.Close()
	ctx := t.Context()
	if _, err := s.CheckPeppers(ctx, map[int]string{1: "another one"}); latchkey.ErrorCode(err) != latchkey.CodeFailedPrecondition {
		t.Fatalf("the wrong pepper 1 against a legacy row: %v", err)
	}
	if _, err := s.CheckPeppers(ctx, map[int]string{2: "two"}); latchkey.ErrorCode(err) != latchkey.CodeFailedPrecondition {
		t.Fatalf("a server without pepper 1: %v", err)
	}
	if _, err := s.CheckPeppers(ctx, map[int]string{1: "legacy one", 2: "two"}); err != nil {
		t.Fatalf("the right pepper 1 and a new pepper 2: %v", err)
	}
	uses, err := s.PepperUsage(ctx)
	if err != nil || len(uses) != 2 || !uses[0].Recorded || uses[0].Keys != 1 || !uses[1].Recorded {
		t.Fatalf("usage after the check: %+v, %v", uses, err)
	}
	var legacy string
	if err := db.QueryRow(`SELECT value FROM settings WHERE name = 'pepper_fingerprint'`).Scan(&legacy); err != nil || legacy != "legacy one" {
		t.Fatalf("the legacy row after the check: %q, %v", legacy, err)
	}
	db.Close()
}
