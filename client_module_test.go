package latchkey_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// The client module (client/) is a module of its own, which `go test ./...`
// here does not descend into; this test runs its vet and tests, so that the
// README's one test command covers it, and shows what it brings to an
// importer.
func TestClientModule(t *testing.T) {
	if testing.Short() {
		t.Skip("the client module's tests build and start the server")
	}
	goBin := filepath.Join(runtime.GOROOT(), "bin", "go")
	repo, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	run := func(t *testing.T, dir string, args ...string) string {
		t.Helper()
		cmd := exec.CommandContext(t.Context(), goBin, args...)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("go %s in %s: %v\n%s", strings.Join(args, " "), dir, err, out)
		}
		return string(out)
	}
	t.Run("its vet and tests pass", func(t *testing.T) {
		dir := filepath.Join(repo, "client")
		run(t, dir, "vet", "./...")
		t.Log(run(t, dir, "test", "-count=1", "./..."))
	})
	t.Run("an importer gets neither the server nor its database drivers", func(t *testing.T) {
		dir := t.TempDir()
		gomod := "module example.com/downstream\n\ngo 1.26.8\n\n" +
			"require github.com/latchkey/latchkey/client v0.0.0\n\n" +
			"replace github.com/latchkey/latchkey/client => " + filepath.Join(repo, "client") + "\n" +
			"replace github.com/latchkey/latchkey/gen => " + filepath.Join(repo, "gen") + "\n"
		main := `package main

import (
	"context"
	"net/http"

	"github.com/latchkey/latchkey/client"
)

func main() {
	c, err := client.New(context.Background(), client.Options{URL: "http://127.0.0.1:8080", Key: "lk_live_..."})
	if err != nil {
		panic(err)
	}
	http.ListenAndServe("127.0.0.1:9000", c.Middleware(client.Route{Permissions: []string{"invoices:read"}})(http.NotFoundHandler()))
}
`
		for name, content := range map[string]string{"go.mod": gomod, "main.go": main} {
			if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		run(t, dir, "mod", "tidy")
		deps := run(t, dir, "list", "-deps", ".")
		graph := run(t, dir, "mod", "graph")
		t.Logf("go list -deps of an importer:\n%s\ngo mod graph:\n%s", deps, graph)
		for _, banned := range []string{"github.com/jackc/pgx", "modernc.org/sqlite", "github.com/pressly/goose", "github.com/latchkey/latchkey/server", "github.com/latchkey/latchkey/store"} {
			if strings.Contains(deps, banned) {
				t.Errorf("the importer compiles %s", banned)
			}
			if strings.Contains(graph, banned) {
				t.Errorf("the importer's module graph holds %s", banned)
			}
		}
		if strings.Contains(deps, "google.golang.org/grpc") {
			t.Error("the importer compiles grpc-go without using grpcclient")
		}
		for _, line := range strings.Split(graph, "\n") {
			if strings.HasPrefix(line, "github.com/latchkey/latchkey ") || strings.Contains(line, " github.com/latchkey/latchkey@") {
				t.Errorf("the importer's module graph holds the server's module: %s", line)
			}
		}
	})
}
