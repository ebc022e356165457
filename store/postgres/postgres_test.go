package postgres_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/store/postgres"
	"github.com/latchkey/latchkey/store/postgres/pgtest"
	"github.com/latchkey/latchkey/store/storetest"
)

var cursorKey = []byte("page tokens of the store tests")

// testDB is the URL of the database this run created; schemas counts the
// schemas made in it, one per store.
var (
	testDB  string
	schemas atomic.Int64
)

func TestMain(m *testing.M) {
	admin, err := pgtest.AdminOrError()
	if err != nil {
		fmt.Fprintln(os.Stderr, "postgres tests:", err)
		os.Exit(1)
	}
	if admin == "" {
		os.Exit(m.Run())
	}
	ctx := context.Background()
	var drop func(context.Context) error
	testDB, drop, err = pgtest.CreateDatabase(ctx, admin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "postgres tests:", err)
		os.Exit(1)
	}
	code := m.Run()
	if err := drop(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "postgres tests: drop:", err)
		code = 1
	}
	os.Exit(code)
}

// newSchema makes an empty schema in the test database and returns a URL
// whose connections use it, so that each store starts empty.
func newSchema(t *testing.T) string {
	t.Helper()
	if testDB == "" {
		t.Skip(pgtest.Env + " is not set")
	}
	name := fmt.Sprintf("s%d", schemas.Add(1))
	conn, err := pgx.Connect(t.Context(), testDB)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(t.Context(), "CREATE SCHEMA "+name); err != nil {
		t.Fatal(err)
	}
	sep := "?"
	if strings.Contains(testDB, "?") {
		sep = "&"
	}
	return testDB + sep + "search_path=" + name
}

func open(t *testing.T, dsn string) *postgres.Store {
	t.Helper()
	s, err := postgres.Open(t.Context(), dsn, postgres.Options{CursorKey: cursorKey})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) latchkey.Store {
		s := open(t, newSchema(t))
		t.Cleanup(func() { s.Close() })
		return s
	})
}

func TestReopen(t *testing.T) {
	schemaOf := map[string]string{}
	storetest.RunReopen(t, func(t *testing.T, path string) latchkey.Store {
		if schemaOf[path] == "" {
			schemaOf[path] = newSchema(t)
		}
		return open(t, schemaOf[path])
	})
}
