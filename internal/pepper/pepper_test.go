package pepper_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/latchkey/latchkey/internal/pepper"
)

func TestPepperIsCreatedOnceWithOwnerOnlyMode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "latchkey.pepper")
	first, created, err := pepper.LoadOrCreate(path, true)
	if err != nil || !created {
		t.Fatalf("first load: created=%v err=%v", created, err)
	}
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Fatalf("pepper file mode %v, want 0600", info.Mode().Perm())
	}
	second, created, err := pepper.LoadOrCreate(path, true)
	if err != nil || created {
		t.Fatalf("second load: created=%v err=%v", created, err)
	}
	if !bytes.Equal(first, second) {
		t.Fatal("the pepper changed between loads")
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Fatalf("temporary files left behind: %v", entries)
	}
}

func TestPepperMissingWithoutCreate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "latchkey.pepper")
	if _, _, err := pepper.LoadOrCreate(path, false); err == nil {
		t.Fatal("a missing pepper loaded")
	}
	if _, err := os.Stat(path); err == nil {
		t.Fatal("a pepper was created although creation was not allowed")
	}
}

func TestPepperRefusesOpenModeAndGarbage(t *testing.T) {
	dir := t.TempDir()
	open := filepath.Join(dir, "open.pepper")
	if err := os.WriteFile(open, []byte(strings.Repeat("A", 44)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := pepper.LoadOrCreate(open, true); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("world-readable pepper: err = %v", err)
	}
	garbage := filepath.Join(dir, "garbage.pepper")
	if err := os.WriteFile(garbage, []byte("not base64 at all!"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, _, err := pepper.LoadOrCreate(garbage, true)
	if err == nil {
		t.Fatal("garbage pepper accepted")
	}
	if strings.Contains(err.Error(), "not base64 at all") {
		t.Fatalf("the error echoes the file's contents: %v", err)
	}
}
