package postgres_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/store/postgres"
	"github.com/latchkey/latchkey/store/postgres/pgtest"
	"github.com/latchkey/latchkey/store/storetest"
)

func TestClassify(t *testing.T) {
	for _, tt := range []struct {
		name string
		err  error
		want latchkey.Code
	}{
		{"disk full is storage full", &pgconn.PgError{Code: "53100"}, latchkey.CodeResourceExhausted},
		{"admin shutdown is unavailable", &pgconn.PgError{Code: "57P01"}, latchkey.CodeUnavailable},
		{"crash shutdown is unavailable", &pgconn.PgError{Code: "57P02"}, latchkey.CodeUnavailable},
		{"cannot connect now is unavailable", &pgconn.PgError{Code: "57P03"}, latchkey.CodeUnavailable},
		{"a connection exception is unavailable", &pgconn.PgError{Code: "08006"}, latchkey.CodeUnavailable},
		{"too many connections is unavailable", &pgconn.PgError{Code: "53300"}, latchkey.CodeUnavailable},
		{"a refused dial is unavailable", fmt.Errorf("query: %w", &net.OpError{Op: "dial", Err: errors.New("connection refused")}), latchkey.CodeUnavailable},
		{"a connection cut mid-answer is unavailable", fmt.Errorf("failed to receive message: %w", io.ErrUnexpectedEOF), latchkey.CodeUnavailable},
		{"a unique violation is not the database's trouble", &pgconn.PgError{Code: "23505"}, ""},
		{"a serialization failure is not the database's trouble", &pgconn.PgError{Code: "40001"}, ""},
		{"a syntax error is not the database's trouble", &pgconn.PgError{Code: "42601"}, ""},
		{"an unknown error is not the database's trouble", errors.New("something else"), ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := postgres.Classify(tt.err); got != tt.want {
				t.Errorf("Classify(%v) = %q, want %q", tt.err, got, tt.want)
			}
		})
	}
}

// TestUnreachable opens a store through a proxy, cuts the proxy, and asks
// the store to write and read.
func TestUnreachable(t *testing.T) {
	px := pgtest.NewProxy(t, newSchema(t))
	s := open(t, px.URL)
	defer s.Close()
	_, opKey, err := s.Bootstrap(t.Context(), storetest.NewAccount("operator"))
	if err != nil {
		t.Fatal(err)
	}
	actor := latchkey.Actor{Profile: latchkey.Bare{ID: opKey.ProfileID}, RequestID: "req-outage"}
	calls := map[string]func() error{
		"a write": func() error {
			_, _, err := s.CreateAccount(t.Context(), actor, storetest.NewAccount("during"))
			return err
		},
		"a credential read": func() error {
			_, err := s.GetCredential(t.Context(), opKey.ID)
			return err
		},
		"a list": func() error {
			_, err := s.ListAccounts(t.Context(), latchkey.PageRequest{Size: 10})
			return err
		},
	}

	px.Cut()
	t.Run("every call is unavailable, the driver's text only in the cause", func(t *testing.T) {
		for name, call := range calls {
			err := call()
			var e *latchkey.Error
			if !errors.As(err, &e) || e.Code != latchkey.CodeUnavailable {
				t.Errorf("%s: %v (code %q), want unavailable", name, err, latchkey.ErrorCode(err))
				continue
			}
			if e.Cause == nil || strings.Contains(e.Error(), e.Cause.Error()) {
				t.Errorf("%s: error %q, cause %v: the cause must be kept, and kept out of the message", name, e.Error(), e.Cause)
			}
		}
	})
	px.Restore()
	t.Run("calls work at once when the database is back", func(t *testing.T) {
		for name, call := range calls {
			if err := call(); err != nil {
				t.Errorf("%s: %v", name, err)
			}
		}
	})
}

// TestFeedOutageLog runs a change feed through a proxy that is cut for
// many poll intervals, from before the feed starts: the feed logs one
// warning per loop when the outage starts and one line when it ends.
func TestFeedOutageLog(t *testing.T) {
	px := pgtest.NewProxy(t, newSchema(t))
	var log syncBuffer
	const bound = 200 * time.Millisecond
	s, err := postgres.Open(t.Context(), px.URL, postgres.Options{
		CursorKey: cursorKey, SyncBound: bound,
		Logger: slog.New(slog.NewTextHandler(&log, &slog.HandlerOptions{Level: slog.LevelInfo})),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	// Cut before the feed starts: its first read of the sequence fails too.
	px.Cut()
	feed, err := s.Follow(nopSink{})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(8 * bound / 4)
	px.Restore()
	waitFor(t, &log, "reading the change sequence works again")
	time.Sleep(bound / 2) // the listener connects and the poller polls
	px.Cut()
	time.Sleep(10 * bound / 4)
	px.Restore()
	waitFor(t, &log, "polling key changes works again")
	waitFor(t, &log, "key change listener is listening again")
	feed.Close()

	got := log.String()
	for msg, want := range map[string]int{
		"reading the change sequence failed":      1,
		"reading the change sequence works again": 1,
		"polling key changes failed":              1,
		"polling key changes works again":         1,
		"key change listener lost its connection": 1,
		"key change listener is listening again":  1,
	} {
		if n := strings.Count(got, msg); n != want {
			t.Errorf("%d lines %q, want %d; the log:\n%s", n, msg, want, got)
		}
	}
	if !strings.Contains(got, "outage=") {
		t.Errorf("the end of an outage does not say how long it lasted:\n%s", got)
	}
}

type nopSink struct{}

func (nopSink) ApplyChange(latchkey.Change) {}
func (nopSink) ResetChanges()               {}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func waitFor(t *testing.T, log *syncBuffer, msg string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(log.String(), msg) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q in the log:\n%s", msg, log.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}
