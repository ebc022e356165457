package latchkey_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
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

// guarantees is the README's Guarantees section, up to the next heading.
func guarantees(t *testing.T) string {
	t.Helper()
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(readme), "\n## Guarantees\n")
	if !ok {
		t.Fatal("README has no Guarantees section")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	return section
}

// Every test the README's Guarantees section names must exist, so that a
// promise cannot outlive the test that proved it.
func TestReadmeGuaranteesNameRealTests(t *testing.T) {
	section := guarantees(t)
	var sources strings.Builder
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "node_modules" || d.Name() == ".git" || d.Name() == "gen") {
			return filepath.SkipDir
		}
		if strings.HasSuffix(path, ".go") {
			src, err := os.ReadFile(path)
			sources.Write(src)
			return err
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	names := regexp.MustCompile("`((?:Test|Fuzz|test|Run)[A-Z][A-Za-z0-9]*)`").FindAllStringSubmatch(section, -1)
	if len(names) < 10 {
		t.Fatalf("found only %d test names in Guarantees", len(names))
	}
	for _, m := range names {
		if !regexp.MustCompile(`\nfunc (\([^)]*\) )?` + m[1] + `\(`).MatchString(sources.String()) {
			t.Errorf("Guarantees names %s, which no test file defines", m[1])
		}
	}
}

// The configurations the README shows are the ones shipped: each block
// after a `<!-- file: PATH -->` line must be PATH as it is.
func TestReadmeFilesAreShipped(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	marker := regexp.MustCompile("(?m)^<!-- file: (\\S+) -->\n+```\\w+\n((?s:.*?))```$")
	found := marker.FindAllStringSubmatch(string(readme), -1)
	if len(found) < 3 {
		t.Fatalf("README shows %d shipped files, want the nginx and Caddy configurations", len(found))
	}
	for _, m := range found {
		src, err := os.ReadFile(m[1])
		if err != nil {
			t.Errorf("%s: %v", m[1], err)
			continue
		}
		if strings.TrimRight(string(src), "\n") != strings.TrimRight(m[2], "\n") {
			t.Errorf("README's %s differs from the file", m[1])
		}
	}
}

// Every promise of the Guarantees table is checked by a mutant: a patch in
// .ci/mutants that breaks it, whose header names the promise and tests
// that must then fail (.ci/mutants/run, in CI, makes sure they do). Each
// mutant's tests include one that the promise's row names, so that the row
// does not cite a test that was never shown to catch anything.
func TestGuaranteesAreCheckedByMutants(t *testing.T) {
	section := guarantees(t)
	// A row is | **Promise.** what it says | proved by | mutants |; the
	// last two cells are cut from the right, since a claim may hold "|".
	rows := map[string]string{}     // promise → its "proved by" cell
	listed := map[string][]string{} // promise → the mutants its row names
	for _, m := range regexp.MustCompile(`(?m)^\| \*\*([^*]+?)\.\*\*(.*) \|$`).FindAllStringSubmatch(section, -1) {
		rest := m[2]
		i := strings.LastIndex(rest, " | ")
		j := strings.LastIndex(rest[:max(i, 0)], " | ")
		if i < 0 || j < 0 {
			t.Errorf("the row of %q does not have three cells", m[1])
			continue
		}
		rows[m[1]] = rest[j+3 : i]
		for _, name := range regexp.MustCompile("`([a-z0-9-]+)`").FindAllStringSubmatch(rest[i+3:], -1) {
			listed[m[1]] = append(listed[m[1]], name[1])
		}
	}
	if len(rows) < 10 {
		t.Fatalf("found only %d promises in the Guarantees table", len(rows))
	}
	patches, err := filepath.Glob(".ci/mutants/*.patch")
	if err != nil {
		t.Fatal(err)
	}
	testName := regexp.MustCompile(`\b(?:Test|Fuzz)[A-Z][A-Za-z0-9]*`)
	checked := map[string][]string{} // promise → its patches, in file order
	for _, p := range patches {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		header, _, _ := strings.Cut(string(b), "\ndiff --git ")
		promise := regexp.MustCompile(`(?m)^Promise: (.+)$`).FindStringSubmatch(header)
		if promise == nil {
			t.Errorf("%s has no Promise line", p)
			continue
		}
		cell, ok := rows[promise[1]]
		if !ok {
			t.Errorf("%s names the promise %q, which the Guarantees table does not hold", p, promise[1])
			continue
		}
		named := false
		for _, test := range regexp.MustCompile(`(?m)^Test: (.+)$`).FindAllStringSubmatch(header, -1) {
			for _, name := range testName.FindAllString(test[1], -1) {
				// The store suite runs as TestConformance; the row names
				// its parts (testQuota in store/storetest).
				if strings.Contains(cell, "`"+name+"`") || name == "TestConformance" && strings.Contains(cell, "store/storetest") {
					named = true
				}
			}
		}
		if !named {
			t.Errorf("%s: none of its tests is named in the row of %q", p, promise[1])
		}
		checked[promise[1]] = append(checked[promise[1]], strings.TrimSuffix(filepath.Base(p), ".patch"))
	}
	for promise := range rows {
		if len(checked[promise]) == 0 {
			t.Errorf("no mutant in .ci/mutants breaks the promise %q", promise)
		}
		if !slices.Equal(listed[promise], checked[promise]) {
			t.Errorf("the row of %q lists the mutants %v; .ci/mutants holds %v", promise, listed[promise], checked[promise])
		}
	}
}
