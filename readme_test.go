package latchkey_test

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// The README's client examples are the tests' own code: each block after
// a `<!-- client: NAME from PATH -->` line must be the region of PATH
// between `// client: NAME` and `// end client: NAME`, so an example
// cannot drift from what CI runs.
func TestReadmeClientsAreTestedCode(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	marker := regexp.MustCompile("(?m)^<!-- client: (\\S+) from (\\S+) -->\n+```\\w+\n((?s:.*?))```$")
	found := marker.FindAllStringSubmatch(string(readme), -1)
	want := map[string]bool{"connect-go": false, "grpc-go": false, "connect-web": false}
	for _, m := range found {
		name, path, block := m[1], m[2], m[3]
		src, err := os.ReadFile(path)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		start, end := "// client: "+name+"\n", "// end client: "+name
		_, rest, ok := strings.Cut(string(src), start)
		region, _, ok2 := strings.Cut(rest, end)
		if !ok || !ok2 {
			t.Errorf("%s: %s has no region between %q and %q", name, path, start, end)
			continue
		}
		if strings.TrimRight(region, "\n") != strings.TrimRight(block, "\n") {
			t.Errorf("README's %s example differs from %s:\n--- README\n%s\n--- %s\n%s", name, path, block, path, region)
		}
		want[name] = true
	}
	for name, seen := range want {
		if !seen {
			t.Errorf("README has no %s example", name)
		}
	}
}
