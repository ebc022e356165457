// Package pgtest gives tests a PostgreSQL database of their own, made and
// dropped through the server named by the Env variable.
package pgtest

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/latchkey/latchkey/internal/testenv"
)

// Env names the variable holding the URL of a PostgreSQL database where
// tests may create and drop their own, such as
// postgres://postgres@127.0.0.1:5432/postgres. Without it the PostgreSQL
// tests skip, except in CI (see Admin).
const Env = "LATCHKEY_TEST_POSTGRES"

// Admin returns the URL in Env. Without it the test skips, but in CI
// (CI set, as CI services and .ci/run set it) it fails: a PostgreSQL test
// that silently did not run proves nothing, and CI always sets Env.
func Admin(t testing.TB) string {
	t.Helper()
	admin, err := AdminOrError()
	if err != nil {
		t.Fatal(err)
	}
	if admin == "" {
		t.Skip(Env + " is not set")
	}
	return admin
}

// AdminOrError is Admin for TestMain: "" and no error when the tests may
// skip, an error when CI is set and Env is not.
func AdminOrError() (string, error) {
	admin := os.Getenv(Env)
	if admin == "" && testenv.InCI() {
		return "", fmt.Errorf("%s is not set, and in CI (CI=%s) the PostgreSQL tests must run, not skip", Env, os.Getenv("CI"))
	}
	return admin, nil
}

var made atomic.Int64

// CreateDatabase creates an empty database through the admin URL and
// returns its URL and a function that drops it, with any connection still
// open to it.
func CreateDatabase(ctx context.Context, admin string) (dbURL string, drop func(context.Context) error, err error) {
	u, err := url.Parse(admin)
	if err != nil {
		return "", nil, fmt.Errorf("pgtest: %s: %w", Env, err)
	}
	name := fmt.Sprintf("latchkey_test_%d_%d_%d", time.Now().UnixNano(), os.Getpid(), made.Add(1))
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		return "", nil, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		return "", nil, err
	}
	drop = func(ctx context.Context) error {
		conn, err := pgx.Connect(ctx, admin)
		if err != nil {
			return err
		}
		defer conn.Close(context.WithoutCancel(ctx))
		_, err = conn.Exec(ctx, "DROP DATABASE "+name+" WITH (FORCE)")
		return err
	}
	u.Path = "/" + name
	return u.String(), drop, nil
}
