package pepper_test

import (
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
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
	if fingerprint(t, first) != fingerprint(t, second) {
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

// fingerprint tells peppers apart without reading their secrets.
func fingerprint(t *testing.T, peppers []pepper.Pepper) string {
	t.Helper()
	h, err := pepper.NewHasherOf(peppers)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Join(slices.Collect(maps.Values(h.Fingerprints())), ",")
}

func TestAddMakesANewCurrentPepperAndKeepsTheOldOnes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "latchkey.pepper")
	first, _, err := pepper.LoadOrCreate(path, true)
	if err != nil {
		t.Fatal(err)
	}
	added, err := pepper.Add(path, false, 0)
	if err != nil {
		t.Fatal(err)
	}
	if added.ID != 2 {
		t.Fatalf("added pepper %d, want 2", added.ID)
	}
	both, err := pepper.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(both) != 2 || both[0].ID != 1 || both[1].ID != 2 {
		t.Fatalf("file holds %v, want peppers 1 and 2", both)
	}
	// The first pepper is the same secret as before the rewrite.
	if fingerprint(t, both[:1]) != fingerprint(t, first) {
		t.Fatal("adding a pepper changed pepper 1")
	}
	if info, _ := os.Stat(path); info.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v after add, want 0600", info.Mode().Perm())
	}
	h, err := pepper.NewHasherOf(both)
	if err != nil {
		t.Fatal(err)
	}
	if h.Current() != 2 {
		t.Fatalf("current pepper %d, want 2", h.Current())
	}
	if entries, _ := os.ReadDir(filepath.Dir(path)); len(entries) != 1 {
		t.Fatalf("files left behind: %v", entries)
	}
}

func TestAddToAMissingFileMakesPepperOne(t *testing.T) {
	path := filepath.Join(t.TempDir(), "latchkey.pepper")
	p, err := pepper.Add(path, false, 0)
	if err != nil || p.ID != 1 {
		t.Fatalf("Add = %v, %v; want pepper 1", p, err)
	}
}

func TestRemoveKeepsTheCurrentPepper(t *testing.T) {
	path := filepath.Join(t.TempDir(), "latchkey.pepper")
	if _, _, err := pepper.LoadOrCreate(path, true); err != nil {
		t.Fatal(err)
	}
	if err := pepper.Remove(path, 1); err == nil {
		t.Fatal("the only (current) pepper was removed")
	}
	if _, err := pepper.Add(path, false, 0); err != nil {
		t.Fatal(err)
	}
	if err := pepper.Remove(path, 2); err == nil {
		t.Fatal("the current pepper was removed")
	}
	if err := pepper.Remove(path, 7); err == nil {
		t.Fatal("a pepper the file lacks was removed")
	}
	if err := pepper.Remove(path, 1); err != nil {
		t.Fatal(err)
	}
	left, err := pepper.Load(path)
	if err != nil || len(left) != 1 || left[0].ID != 2 {
		t.Fatalf("after removing 1: %v, %v", left, err)
	}
}

func TestLoadReadsEveryForm(t *testing.T) {
	secret := strings.Repeat("A", 44) // 33 bytes of base64
	for name, tc := range map[string]struct {
		contents string
		ids      []int
	}{
		"a bare line is pepper 1":     {secret + "\n", []int{1}},
		"lines with ids, any order":   {"3 " + secret + "\n1 " + secret + "\n", []int{1, 3}},
		"comments and blank lines":    {"# peppers\n\n2 " + secret + "\n", []int{2}},
		"one line with an id":         {"5 " + secret, []int{5}},
		"spaces around the line kept": {"  4   " + secret + "  \n", []int{4}},
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "p")
			if err := os.WriteFile(path, []byte(tc.contents), 0o600); err != nil {
				t.Fatal(err)
			}
			got, err := pepper.Load(path)
			if err != nil {
				t.Fatal(err)
			}
			var ids []int
			for _, p := range got {
				ids = append(ids, p.ID)
			}
			if !slices.Equal(ids, tc.ids) {
				t.Fatalf("ids %v, want %v", ids, tc.ids)
			}
		})
	}
}

func TestLoadRefusesBadFilesWithoutEchoingThem(t *testing.T) {
	secret := strings.Repeat("Q", 44)
	for name, contents := range map[string]string{
		"empty":             "\n# nothing\n",
		"short pepper":      "1 " + strings.Repeat("Q", 40) + "\n2 " + secret,
		"id zero":           "0 " + secret,
		"id past the bound": "1001 " + secret,
		"duplicate id":      "1 " + secret + "\n1 " + secret,
		"no id on a line":   "1 " + secret + "\n" + secret,
		"not base64":        "1 " + secret + "\n2 sEcReT!!" + secret,
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "p")
			if err := os.WriteFile(path, []byte(contents), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := pepper.Load(path)
			if err == nil {
				t.Fatal("loaded")
			}
			if strings.Contains(err.Error(), "QQQQ") || strings.Contains(err.Error(), "sEcReT") {
				t.Fatalf("the error echoes the file: %v", err)
			}
		})
	}
}

func TestPepperPrintsAsItsIDOnly(t *testing.T) {
	path := filepath.Join(t.TempDir(), "p")
	secret := strings.Repeat("Z", 44)
	if err := os.WriteFile(path, []byte("9 "+secret), 0o600); err != nil {
		t.Fatal(err)
	}
	peppers, err := pepper.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := base64.StdEncoding.DecodeString(secret)
	var logged strings.Builder
	// Held in an unexported field, as a config struct would hold it.
	type holder struct{ peppers []pepper.Pepper }
	held := holder{peppers}
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("loaded", "pepper", peppers[0], "all", peppers)
	slog.New(slog.NewTextHandler(&logged, nil)).Info("loaded", "pepper", peppers[0], "all", peppers, "holder", held)
	format := "%d %x %q" // not a literal at the call, so vet does not catch it
	for _, s := range []string{
		fmt.Sprint(peppers), fmt.Sprintf("%v %+v %#v %s", peppers[0], peppers[0], peppers[0], peppers[0]),
		fmt.Sprintf(format, peppers[0], peppers[0], peppers[0]), fmt.Sprintf("%v %+v %#v", held, held, held), logged.String(),
	} {
		if strings.Contains(s, "ZZZ") || strings.Contains(s, string(raw)) || strings.Contains(s, hex.EncodeToString(raw)[:12]) {
			t.Fatalf("a pepper printed its secret: %q", s)
		}
		if strings.Contains(s, fmt.Sprint(raw[:4])[1:8]) {
			t.Fatalf("a pepper printed its secret's bytes: %q", s)
		}
	}
}

func TestStagedPepperIsHeldButNotCurrentUntilPromoted(t *testing.T) {
	path := filepath.Join(t.TempDir(), "latchkey.pepper")
	if _, _, err := pepper.LoadOrCreate(path, true); err != nil {
		t.Fatal(err)
	}
	staged, err := pepper.Add(path, true, 0)
	if err != nil || !staged.Staged || staged.ID != 2 {
		t.Fatalf("Add staged = %v, %v", staged, err)
	}
	current := func() int {
		t.Helper()
		peppers, err := pepper.Load(path)
		if err != nil {
			t.Fatal(err)
		}
		h, err := pepper.NewHasherOf(peppers)
		if err != nil {
			t.Fatal(err)
		}
		if !h.Holds(2) {
			t.Fatal("the staged pepper is not held")
		}
		return h.Current()
	}
	if got := current(); got != 1 {
		t.Fatalf("current %d with pepper 2 staged, want 1", got)
	}
	if err := pepper.Remove(path, 1); err == nil {
		t.Fatal("the current pepper was removed while the newer one is staged")
	}
	if err := pepper.Promote(path, 1); err == nil {
		t.Fatal("a pepper that is not staged was promoted")
	}
	if err := pepper.Promote(path, 2); err != nil {
		t.Fatal(err)
	}
	if got := current(); got != 2 {
		t.Fatalf("current %d after promoting 2", got)
	}
}

func TestEveryPepperStagedIsRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "p")
	if err := os.WriteFile(path, []byte("1 "+strings.Repeat("A", 44)+" staged\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := pepper.Load(path); err == nil {
		t.Fatal("a file with no current pepper loaded")
	}
	if err := os.WriteFile(path, []byte("1 "+strings.Repeat("A", 44)+" later\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := pepper.Load(path); err == nil {
		t.Fatal("a mark other than staged was accepted")
	}
}
