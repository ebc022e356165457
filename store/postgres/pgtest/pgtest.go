// Package pgtest gives tests a PostgreSQL database of their own, made and
// dropped through the server named by the Env variable.
package pgtest

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
)

// Env names the variable holding the URL of a PostgreSQL database where
// tests may create and drop their own, such as
// postgres://postgres@127.0.0.1:5432/postgres. Without it the PostgreSQL
// tests skip.
const Env = "LATCHKEY_TEST_POSTGRES"

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
