// Package storetest is the conformance suite of latchkey.Store: written
// once against the interface and run against every backend, so that SQLite
// and PostgreSQL keep the same promises.
package storetest

import (
	"crypto/rand"
	"errors"
	"testing"
	"time"

	"github.com/latchkey/latchkey"
)

// Opener returns a fresh, empty store for one test. The backend registers
// the store's cleanup with t.Cleanup.
type Opener func(t *testing.T) latchkey.Store

// Run runs the whole suite against the stores that open returns. Each
// subtest opens its own store and runs in parallel with the others.
func Run(t *testing.T, open Opener) {
	tests := []struct {
		name string
		fn   func(t *testing.T, open Opener)
	}{
		{"accounts", testAccounts},
		{"profiles", testProfiles},
		{"workspaces", testWorkspaces},
		{"grants", testGrants},
		{"issue", testIssue},
		{"quota", testQuota},
		{"update key", testUpdateKey},
		{"rotate", testRotate},
		{"revoke", testRevoke},
		{"credentials", testCredentials},
		{"isolation", testIsolation},
		{"paging", testPaging},
		{"list filters", testListFilters},
		{"audit", testAudit},
		{"audit filters", testAuditFilters},
		{"concurrent writers", testConcurrentWriters},
		{"pepper check", testPepperCheck},
		{"pepper usage", testPepperUsage},
		{"pepper retirement", testPepperRetire},
		{"rehash", testRehash},
		{"change log", testChangeLog},
		{"cache follows the store", testCacheFollowsTheStore},
		{"account state", testAccountState},
		{"update account", testUpdateAccount},
		{"suspend account", testSuspendAccount},
		{"restore account", testRestoreAccount},
		{"concurrent suspensions", testConcurrentSuspensions},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.fn(t, open)
		})
	}
}

// fixture is a store with the operator account and one customer account.
type fixture struct {
	store    latchkey.Store
	operator latchkey.Account
	account  latchkey.Account // a customer account
	system   latchkey.APIKey  // the customer account's system key
	actor    latchkey.Actor
	// operatorActor is the operator's system key, which suspends and
	// restores accounts.
	operatorActor latchkey.Actor
}

func newFixture(t *testing.T, open Opener) *fixture {
	t.Helper()
	s := open(t)
	op, opKey, err := s.Bootstrap(t.Context(), NewAccount("operator"))
	must(t, err)
	actor := latchkey.Actor{Profile: latchkey.Bare{ID: opKey.ProfileID, Name: opKey.Name}, RequestID: "req-fixture"}
	acct, system, err := s.CreateAccount(t.Context(), actor, NewAccount("acme"))
	must(t, err)
	return &fixture{
		store: s, operator: op, account: acct, system: system, operatorActor: actor,
		actor: latchkey.Actor{Profile: latchkey.Bare{ID: system.ProfileID, Name: system.Name}, RequestID: "req-test"},
	}
}

// NewAccount describes an account named name with its system key, for a
// store's own tests as for the suite.
func NewAccount(name string) latchkey.NewAccount {
	return latchkey.NewAccount{Name: name, SystemKey: latchkey.NewAPIKey{
		Key: latchkey.APIKey{
			Metadata:    latchkey.Metadata{ID: latchkey.NewID(latchkey.PrefixAPIKey), Name: "system"},
			Permissions: []string{"*"},
			System:      true,
			Environment: latchkey.EnvironmentLive,
			TokenPrefix: "lk_live_01ABCDEF",
		},
		Secret: NewSecret(),
	}}
}

// NewSecret returns a random secret hash.
func NewSecret() latchkey.SecretHash {
	h := make([]byte, 32)
	rand.Read(h)
	return latchkey.SecretHash{Hash: h, PepperVersion: 1}
}

// newKey describes a key of the fixture's account; opts adjust it.
func (f *fixture) newKey(name string, opts ...func(*latchkey.NewAPIKey)) latchkey.NewAPIKey {
	in := latchkey.NewAPIKey{
		Key: latchkey.APIKey{
			Metadata:    latchkey.Metadata{ID: latchkey.NewID(latchkey.PrefixAPIKey), AccountID: f.account.ID, Name: name},
			Permissions: []string{"invoices:read"},
			Environment: latchkey.EnvironmentLive,
			CreatedBy:   f.system.ProfileID,
			TokenPrefix: "lk_live_01ABCDEF",
		},
		Secret:               NewSecret(),
		DefaultMaxActiveKeys: 1000,
	}
	for _, o := range opts {
		o(&in)
	}
	return in
}

func (f *fixture) issue(t *testing.T, name string, opts ...func(*latchkey.NewAPIKey)) latchkey.APIKey {
	t.Helper()
	k, err := f.store.IssueKey(t.Context(), f.actor, f.newKey(name, opts...))
	must(t, err)
	return k
}

func (f *fixture) workspace(t *testing.T, name string) latchkey.Workspace {
	t.Helper()
	w, err := f.store.CreateWorkspace(t.Context(), f.actor, latchkey.Workspace{
		Metadata: latchkey.Metadata{AccountID: f.account.ID, Name: name},
	})
	must(t, err)
	return w
}

// counts is what a failed write must leave unchanged.
type counts struct{ keys, profiles, events int }

func (f *fixture) counts(t *testing.T) counts {
	t.Helper()
	all := func(state latchkey.KeyState) int {
		return len(collect(t, func(tok string) (latchkey.Page[latchkey.APIKey], error) {
			return f.store.ListKeys(t.Context(), latchkey.KeyQuery{AccountID: f.account.ID, State: state, Page: latchkey.PageRequest{Size: latchkey.MaxPageSize, Token: tok}})
		}))
	}
	return counts{
		keys: all(latchkey.KeyStateActive) + all(latchkey.KeyStateRevoked) + all(latchkey.KeyStateExpired),
		profiles: len(collect(t, func(tok string) (latchkey.Page[latchkey.Profile], error) {
			return f.store.ListProfiles(t.Context(), latchkey.ProfileQuery{AccountID: f.account.ID, Page: latchkey.PageRequest{Size: latchkey.MaxPageSize, Token: tok}})
		})),
		events: len(f.events(t, "")),
	}
}

func (f *fixture) events(t *testing.T, targetID string) []latchkey.AuditEvent {
	t.Helper()
	return collect(t, func(tok string) (latchkey.Page[latchkey.AuditEvent], error) {
		return f.store.ListAuditEvents(t.Context(), latchkey.AuditQuery{AccountID: f.account.ID, TargetID: targetID, Page: latchkey.PageRequest{Size: latchkey.MaxPageSize, Token: tok}})
	})
}

// collect reads every page of a list.
func collect[T any](t *testing.T, page func(token string) (latchkey.Page[T], error)) []T {
	t.Helper()
	var all []T
	tok := ""
	for {
		p, err := page(tok)
		must(t, err)
		all = append(all, p.Items...)
		if p.NextToken == "" {
			return all
		}
		tok = p.NextToken
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// wantCode fails the test unless err carries code.
func wantCode(t *testing.T, err error, code latchkey.Code) {
	t.Helper()
	if got := latchkey.ErrorCode(err); got != code {
		t.Fatalf("error %v has code %q, want %q", err, got, code)
	}
}

// wantField fails the test unless err is CodeInvalid naming field.
func wantField(t *testing.T, err error, field string) {
	t.Helper()
	var e *latchkey.Error
	if !errors.As(err, &e) || e.Code != latchkey.CodeInvalid || e.Field != field {
		t.Fatalf("error %v, want invalid %s", err, field)
	}
}

// wantSameTime compares stored times to the microsecond a backend keeps.
func wantSameTime(t *testing.T, what string, got, want time.Time) {
	t.Helper()
	if got.Sub(want).Abs() > time.Microsecond {
		t.Fatalf("%s = %v, want %v", what, got, want)
	}
}
