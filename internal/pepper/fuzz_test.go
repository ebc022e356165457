package pepper_test

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/latchkey/latchkey/internal/pepper"
)

// FuzzLoad feeds pepper files to Load: it must never panic, an error must
// never echo what may be a secret of the file, and a file that
// loads has a current pepper, which Add can extend.
func FuzzLoad(f *testing.F) {
	secret := strings.Repeat("A", 44)
	for _, seed := range []string{
		secret + "\n",
		"1 " + secret + "\n2 " + secret + " staged\n",
		"# c\n\n3 " + secret,
		"1 " + secret + " staged",
		"1 " + secret + "\n1 " + secret,
		"x " + secret,
		"",
	} {
		f.Add(seed)
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, contents string) {
		path := filepath.Join(dir, "p")
		if err := os.WriteFile(path, []byte(contents), 0o600); err != nil {
			t.Fatal(err)
		}
		peppers, err := pepper.Load(path)
		if err != nil {
			// Whatever could be a secret: a base64 field of 12 bytes or
			// more. A field of digits alone is a pepper id, which errors
			// name (a secret of digits alone is not base64 of random bytes).
			for _, field := range strings.Fields(contents) {
				if strings.Trim(field, "0123456789") == "" {
					continue
				}
				if _, b64 := base64.StdEncoding.DecodeString(field); b64 == nil && len(field) >= 16 && strings.Contains(err.Error(), field) {
					t.Fatalf("the error echoes the file: %v", err)
				}
			}
			return
		}
		h, err := pepper.NewHasherOf(peppers)
		if err != nil {
			t.Fatalf("a file that loads makes no hasher: %v", err)
		}
		if _, err := pepper.Add(path, false, 0); err != nil && peppers[len(peppers)-1].ID < pepper.MaxID {
			t.Fatalf("add to a file that loads: %v", err)
		}
		again, err := pepper.Load(path)
		if err != nil {
			t.Fatalf("the file Add wrote does not load: %v", err)
		}
		after, err := pepper.NewHasherOf(again)
		if err != nil || (peppers[len(peppers)-1].ID < pepper.MaxID && after.Current() <= h.Current()) {
			t.Fatalf("after add: current %d, before %d (%v)", after.Current(), h.Current(), err)
		}
	})
}
