package server_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect/v2"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	latchkeyv1 "github.com/latchkey/latchkey/gen/latchkey/v1"
	"github.com/latchkey/latchkey/server"
)

// watch opens a change stream as c and hands its messages to a channel,
// which closes with the error that ended the stream.
type watch struct {
	events chan *latchkeyv1.WatchKeyChangesResponse
	err    chan error
	cancel context.CancelFunc
}

// openWatch opens a stream from now, or after *after when it is set.
func openWatch(t *testing.T, c clients, after *int64) *watch {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	stream, err := c.auth.WatchKeyChanges(ctx, &latchkeyv1.WatchKeyChangesRequest{AfterSequence: after})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	w := &watch{events: make(chan *latchkeyv1.WatchKeyChangesResponse, 1024), err: make(chan error, 1), cancel: cancel}
	go func() {
		defer stream.Close()
		for {
			res, err := stream.Receive()
			if err != nil {
				w.err <- err
				close(w.events)
				return
			}
			w.events <- res
		}
	}()
	t.Cleanup(cancel)
	return w
}

// next returns the next message that is not a heartbeat, or fails.
func (w *watch) next(t *testing.T) *latchkeyv1.WatchKeyChangesResponse {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case res, ok := <-w.events:
			if !ok {
				t.Fatalf("the stream ended: %v", <-w.err)
			}
			if res.GetHeartbeat() == nil {
				return res
			}
		case <-deadline:
			t.Fatal("no change within 5s")
		}
	}
}

// first returns the stream's opening message, which must be a heartbeat.
func (w *watch) first(t *testing.T) int64 {
	t.Helper()
	select {
	case res, ok := <-w.events:
		if !ok {
			t.Fatalf("the stream ended: %v", <-w.err)
		}
		if res.GetHeartbeat() == nil {
			t.Fatalf("the stream opened with %v, want a heartbeat", res)
		}
		return res.GetHeartbeat().GetSequence()
	case <-time.After(5 * time.Second):
		t.Fatal("no opening heartbeat within 5s")
	}
	return 0
}

// quiet fails if a change arrives within d.
func (w *watch) quiet(t *testing.T, d time.Duration) {
	t.Helper()
	deadline := time.After(d)
	for {
		select {
		case res := <-w.events:
			if res.GetHeartbeat() == nil {
				t.Fatalf("unexpected %v", res)
			}
		case <-deadline:
			return
		}
	}
}

// end waits for the stream to end and returns the error that ended it. It
// fails if the stream is still open after 10 s, so that a stream that never
// ends fails the test instead of hanging it.
func (w *watch) end(t *testing.T) error {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case _, ok := <-w.events:
			if !ok {
				return <-w.err
			}
		case <-deadline:
			t.Fatal("the stream is still open")
			return nil
		}
	}
}

func TestWatchKeyChanges(t *testing.T) {
	e := newEnv(t)
	acme := e.newTenant("acme")
	globex := e.newTenant("globex")
	key, _ := acme.issue(t, &latchkeyv1.IssueRequest{})
	other, _ := globex.issue(t, &latchkeyv1.IssueRequest{})
	_, watcherTok := acme.issue(t, &latchkeyv1.IssueRequest{Spec: &latchkeyv1.ApiKeySpec{Permissions: []string{"api_keys:verify"}}})
	watcher := e.as(watcherTok)

	w := openWatch(t, watcher, nil)
	start := w.first(t)
	all := openWatch(t, e.as(e.operator), nil)
	all.first(t)

	t.Run("a revocation arrives with what a watcher needs", func(t *testing.T) {
		if _, err := acme.c.keys.Revoke(t.Context(), &latchkeyv1.RevokeRequest{Id: key.GetMetadata().GetId()}); err != nil {
			t.Fatal(err)
		}
		c := w.next(t).GetChange()
		if c.GetKind() != latchkeyv1.KeyChangeKind_KEY_CHANGE_KIND_KEY_REVOKED || c.GetApiKeyId() != key.GetMetadata().GetId() ||
			c.GetProfileId() != key.GetMetadata().GetProfileId() || c.GetAccountId() != acme.account.GetMetadata().GetId() ||
			c.GetSequence() != start+1 || c.GetChangeTime() == nil {
			t.Fatalf("change %v, want the revocation of %s at sequence %d", c, key.GetMetadata().GetId(), start+1)
		}
		if got := all.next(t).GetChange(); got.GetSequence() != c.GetSequence() {
			t.Fatalf("the operator's stream got %v", got)
		}
	})
	t.Run("another account's changes reach only the operator", func(t *testing.T) {
		if _, err := globex.c.keys.Revoke(t.Context(), &latchkeyv1.RevokeRequest{Id: other.GetMetadata().GetId()}); err != nil {
			t.Fatal(err)
		}
		if got := all.next(t).GetChange(); got.GetApiKeyId() != other.GetMetadata().GetId() {
			t.Fatalf("the operator's stream got %v", got)
		}
		w.quiet(t, 300*time.Millisecond)
	})
	t.Run("every kind arrives, in order", func(t *testing.T) {
		k, _ := acme.issue(t, &latchkeyv1.IssueRequest{})
		id := k.GetMetadata().GetId()
		ws := acme.workspace(t, "billing")
		wsID := ws.GetMetadata().GetId()
		steps := []struct {
			kind latchkeyv1.KeyChangeKind
			do   func() error
		}{
			{latchkeyv1.KeyChangeKind_KEY_CHANGE_KIND_KEY_UPDATED, func() error {
				_, err := acme.c.keys.Update(t.Context(), &latchkeyv1.UpdateRequest{Id: id, Spec: &latchkeyv1.ApiKeySpec{Description: "d"},
					UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"spec.description"}}})
				return err
			}},
			{latchkeyv1.KeyChangeKind_KEY_CHANGE_KIND_KEY_ROTATED, func() error {
				_, err := acme.c.keys.Rotate(t.Context(), &latchkeyv1.RotateRequest{Id: id})
				return err
			}},
			{latchkeyv1.KeyChangeKind_KEY_CHANGE_KIND_GRANTS_CHANGED, func() error {
				_, err := acme.c.keys.GrantWorkspace(t.Context(), &latchkeyv1.GrantWorkspaceRequest{Id: id, WorkspaceId: wsID})
				return err
			}},
			{latchkeyv1.KeyChangeKind_KEY_CHANGE_KIND_WORKSPACE_ARCHIVED, func() error {
				_, err := acme.c.workspaces.ArchiveWorkspace(t.Context(), &latchkeyv1.ArchiveWorkspaceRequest{Id: wsID})
				return err
			}},
		}
		var last int64
		for _, step := range steps {
			if err := step.do(); err != nil {
				t.Fatal(err)
			}
			c := w.next(t).GetChange()
			if c.GetKind() != step.kind || c.GetSequence() <= last {
				t.Fatalf("got %v, want %v after sequence %d", c, step.kind, last)
			}
			last = c.GetSequence()
		}
	})
	t.Run("a stream resumes after a sequence", func(t *testing.T) {
		again := openWatch(t, watcher, proto.Int64(start))
		if got := again.first(t); got != start {
			t.Fatalf("opening heartbeat at %d, want %d", got, start)
		}
		if c := again.next(t).GetChange(); c.GetSequence() != start+1 || c.GetApiKeyId() != key.GetMetadata().GetId() {
			t.Fatalf("the first change after %d is %v", start, c)
		}
	})
	t.Run("an idle stream sends heartbeats", func(t *testing.T) {
		idle := openWatch(t, watcher, nil)
		pos := idle.first(t)
		select {
		case res := <-idle.events:
			if res.GetHeartbeat().GetSequence() != pos {
				t.Fatalf("got %v, want a heartbeat at %d", res, pos)
			}
		case <-time.After(3 * time.Second):
			t.Fatal("no heartbeat within 3s of a 200ms interval")
		}
	})
	t.Run("a sequence past the newest is invalid_argument", func(t *testing.T) {
		stream, err := watcher.auth.WatchKeyChanges(t.Context(), &latchkeyv1.WatchKeyChangesRequest{AfterSequence: proto.Int64(1 << 40)})
		if err == nil {
			defer stream.Close()
			_, err = stream.Receive()
		}
		wantCode(t, err, connect.CodeInvalidArgument)
	})
	t.Run("a key holds a bounded number of streams", func(t *testing.T) {
		_, tok := acme.issue(t, &latchkeyv1.IssueRequest{Spec: &latchkeyv1.ApiKeySpec{Permissions: []string{"api_keys:verify"}}})
		c := e.as(tok)
		var open []*watch
		for range server.MaxWatchesPerKey {
			w := openWatch(t, c, nil)
			w.first(t)
			open = append(open, w)
		}
		stream, err := c.auth.WatchKeyChanges(t.Context(), &latchkeyv1.WatchKeyChangesRequest{})
		if err == nil {
			defer stream.Close()
			_, err = stream.Receive()
		}
		wantCode(t, err, connect.CodeResourceExhausted)
		open[0].cancel()
		for range open[0].events {
		}
		// One closed, one may open.
		deadline := time.Now().Add(5 * time.Second)
		for {
			stream, err := c.auth.WatchKeyChanges(t.Context(), &latchkeyv1.WatchKeyChangesRequest{})
			if err == nil {
				_, err = stream.Receive()
				stream.Close()
			}
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("after one stream closed, another is refused: %v", err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
	t.Run("the stream ends when the watcher's key expires", func(t *testing.T) {
		_, tok := acme.issue(t, &latchkeyv1.IssueRequest{Spec: &latchkeyv1.ApiKeySpec{
			Permissions: []string{"api_keys:verify"},
			ExpireTime:  timestamppb.New(e.clock.Now().Add(time.Minute)),
		}})
		doomed := openWatch(t, e.as(tok), nil)
		doomed.first(t)
		// No change names the key: the next heartbeat finds it expired.
		e.clock.Advance(2 * time.Minute)
		for range doomed.events {
		}
		wantCode(t, <-doomed.err, connect.CodeUnauthenticated)
	})
}

// TestWatchKeyChangesAtOnce runs streams on a server whose heartbeat is an
// hour away, so that nothing but the changes themselves can move a stream:
// what must happen when a change commits is not left to the next heartbeat,
// which in the other tests comes every 200 ms and would hide the delay.
func TestWatchKeyChangesAtOnce(t *testing.T) {
	srv, operator := newServer(t, server.Config{WatchHeartbeat: time.Hour})
	ts := httptest.NewUnstartedServer(srv.Handler())
	ts.EnableHTTP2 = true
	ts.StartTLS()
	t.Cleanup(ts.Close)
	e := &env{t: t, url: ts.URL, http: ts.Client(), clock: &clock{}, operator: operator}
	acme := e.newTenantWithLimit("acme", 1000)

	t.Run("the stream ends when the watcher's own key is revoked", func(t *testing.T) {
		k, tok := acme.issue(t, &latchkeyv1.IssueRequest{Spec: &latchkeyv1.ApiKeySpec{Permissions: []string{"api_keys:verify"}}})
		doomed := openWatch(t, e.as(tok), nil)
		doomed.first(t)
		if _, err := acme.c.keys.Revoke(t.Context(), &latchkeyv1.RevokeRequest{Id: k.GetMetadata().GetId()}); err != nil {
			t.Fatal(err)
		}
		wantCode(t, doomed.end(t), connect.CodeUnauthenticated)
	})
	t.Run("the stream ends when the watcher loses api_keys:verify", func(t *testing.T) {
		k, tok := acme.issue(t, &latchkeyv1.IssueRequest{Spec: &latchkeyv1.ApiKeySpec{Permissions: []string{"api_keys:verify"}}})
		doomed := openWatch(t, e.as(tok), nil)
		doomed.first(t)
		if _, err := acme.c.keys.Update(t.Context(), &latchkeyv1.UpdateRequest{Id: k.GetMetadata().GetId(),
			Spec: &latchkeyv1.ApiKeySpec{Permissions: []string{"api_keys:read"}}, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"spec.permissions"}}}); err != nil {
			t.Fatal(err)
		}
		wantCode(t, doomed.end(t), connect.CodePermissionDenied)
	})
	t.Run("the stream ends when the watcher's key loses the caller's address", func(t *testing.T) {
		k, tok := acme.issue(t, &latchkeyv1.IssueRequest{Spec: &latchkeyv1.ApiKeySpec{
			Permissions: []string{"api_keys:verify"}, AllowedCidrs: []string{"127.0.0.0/8", "::1"},
		}})
		doomed := openWatch(t, e.as(tok), nil)
		doomed.first(t)
		if _, err := acme.c.keys.Update(t.Context(), &latchkeyv1.UpdateRequest{Id: k.GetMetadata().GetId(),
			Spec: &latchkeyv1.ApiKeySpec{AllowedCidrs: []string{"192.0.2.0/24"}}, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"spec.allowed_cidrs"}}}); err != nil {
			t.Fatal(err)
		}
		wantCode(t, doomed.end(t), connect.CodePermissionDenied)
	})
	t.Run("the stream ends when the watcher's account is suspended", func(t *testing.T) {
		globex := e.newTenant("globex")
		_, tok := globex.issue(t, &latchkeyv1.IssueRequest{Spec: &latchkeyv1.ApiKeySpec{Permissions: []string{"api_keys:verify"}}})
		doomed := openWatch(t, e.as(tok), nil)
		doomed.first(t)
		// Another account's suspension leaves the stream alone.
		initech := e.newTenant("initech")
		if _, err := e.as(e.operator).accounts.SuspendAccount(t.Context(), &latchkeyv1.SuspendAccountRequest{Id: initech.account.GetMetadata().GetId(), Reason: "not this one"}); err != nil {
			t.Fatal(err)
		}
		doomed.quiet(t, 100*time.Millisecond)
		if _, err := e.as(e.operator).accounts.SuspendAccount(t.Context(), &latchkeyv1.SuspendAccountRequest{Id: globex.account.GetMetadata().GetId(), Reason: "unpaid"}); err != nil {
			t.Fatal(err)
		}
		err := doomed.end(t)
		wantCode(t, err, connect.CodePermissionDenied)
		if !strings.Contains(err.Error(), "account is suspended") {
			t.Errorf("the stream ended with %v, which does not say why", err)
		}
	})
	t.Run("a stream resuming more than a page behind gets every change", func(t *testing.T) {
		_, tok := acme.issue(t, &latchkeyv1.IssueRequest{Spec: &latchkeyv1.ApiKeySpec{Permissions: []string{"api_keys:verify"}}})
		watcher := e.as(tok)
		key, _ := acme.issue(t, &latchkeyv1.IssueRequest{})
		w := openWatch(t, watcher, nil)
		from := w.first(t)
		w.cancel()
		// More changes than the stream reads from the log at once (500):
		// the stream must read on without waiting for another change.
		const behind = 600
		for i := range behind {
			if _, err := acme.c.keys.Update(t.Context(), &latchkeyv1.UpdateRequest{Id: key.GetMetadata().GetId(),
				Spec: &latchkeyv1.ApiKeySpec{Description: fmt.Sprint(i)}, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"spec.description"}}}); err != nil {
				t.Fatal(err)
			}
		}
		back := openWatch(t, watcher, proto.Int64(from))
		back.first(t)
		for i := range int64(behind) {
			if c := back.next(t).GetChange(); c.GetSequence() != from+1+i || c.GetApiKeyId() != key.GetMetadata().GetId() {
				t.Fatalf("change %d after %d is %v", i+1, from, c)
			}
		}
	})
}

// TestWatchKeyChangesAfterPruning: a watcher that comes back to a position
// whose changes were pruned gets a reset before the changes that are left.
func TestWatchKeyChangesAfterPruning(t *testing.T) {
	e := newEnv(t)
	acme := e.newTenantWithLimit("acme", 1000)
	_, watcherTok := acme.issue(t, &latchkeyv1.IssueRequest{Spec: &latchkeyv1.ApiKeySpec{Permissions: []string{"api_keys:verify"}}})
	watcher := e.as(watcherTok)
	key, _ := acme.issue(t, &latchkeyv1.IssueRequest{})
	update := func() {
		t.Helper()
		if _, err := acme.c.keys.Update(t.Context(), &latchkeyv1.UpdateRequest{Id: key.GetMetadata().GetId(),
			Spec: &latchkeyv1.ApiKeySpec{Description: "d"}, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"spec.description"}}}); err != nil {
			t.Fatal(err)
		}
	}
	w := openWatch(t, watcher, nil)
	away := w.first(t)
	w.cancel()
	update() // away+1, soon older than the log keeps
	e.clock.Advance(11 * time.Minute)
	for range 300 { // crosses a multiple of 256, whose write prunes
		update()
	}

	back := openWatch(t, watcher, proto.Int64(away))
	back.first(t)
	res := back.next(t)
	if res.GetResetCache() == nil {
		t.Fatalf("the first message after pruned changes is %v, want a reset", res)
	}
	c := back.next(t).GetChange()
	if c.GetSequence() != res.GetResetCache().GetSequence()+1 || c.GetSequence() <= away+1 {
		t.Fatalf("after a reset at %d came %v", res.GetResetCache().GetSequence(), c)
	}
}
