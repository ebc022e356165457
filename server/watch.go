package server

import (
	"context"
	"net/netip"
	"sync"
	"time"

	"connectrpc.com/connect/v2"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/auth"
	latchkeyv1 "github.com/latchkey/latchkey/gen/latchkey/v1"
	"github.com/latchkey/latchkey/gen/latchkey/v1/latchkeyv1connect"
)

// DefaultWatchHeartbeat is the default of Config.WatchHeartbeat.
const DefaultWatchHeartbeat = 15 * time.Second

// MaxWatchesPerKey bounds the change streams one key holds at once.
const MaxWatchesPerKey = 8

// watchers counts the open change streams of each key.
type watchers struct {
	mu    sync.Mutex
	byKey map[string]int
}

// acquire takes a stream for keyID, or refuses with CodeResourceExhausted
// when the key holds MaxWatchesPerKey already; call release when it ends.
func (w *watchers) acquire(keyID string) (release func(), err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.byKey == nil {
		w.byKey = map[string]int{}
	}
	if w.byKey[keyID] >= MaxWatchesPerKey {
		return nil, latchkey.Errorf(latchkey.CodeResourceExhausted, "the API key holds %d change streams already; close one first", MaxWatchesPerKey)
	}
	w.byKey[keyID]++
	return func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		if w.byKey[keyID]--; w.byKey[keyID] == 0 {
			delete(w.byKey, keyID)
		}
	}, nil
}

// watchPage bounds the changes one read of the log brings to a stream.
const watchPage = 500

// changeBell wakes the change streams whenever the server's follower of
// the change log applies something: this replica's own writes, before
// they return, and other replicas' within the sync bound. The streams then
// read the log itself, which alone says what changed.
type changeBell struct {
	mu   sync.Mutex
	rung chan struct{}
}

func newChangeBell() *changeBell { return &changeBell{rung: make(chan struct{})} }

// wait returns a channel that is closed at the next ring. Take it before
// reading the log, so that no ring between the read and the wait is lost.
func (b *changeBell) wait() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.rung
}

func (b *changeBell) ring() {
	b.mu.Lock()
	defer b.mu.Unlock()
	close(b.rung)
	b.rung = make(chan struct{})
}

func (b *changeBell) ApplyChange(latchkey.Change) { b.ring() }
func (b *changeBell) ResetChanges()               { b.ring() }

// WatchKeyChanges streams the caller's account's changes (every account's
// for the operator) from the log, from a position.
func (h authHandler) WatchKeyChanges(ctx context.Context, req *latchkeyv1.WatchKeyChangesRequest, stream latchkeyv1connect.AuthServiceWatchKeyChangesServerStream) error {
	p, err := principal(ctx)
	if err != nil {
		return err
	}
	// A key may hold a few streams at once, not thousands: each costs a
	// read of the log on every change of the installation.
	release, err := h.watchers.acquire(watcherID(p))
	if err != nil {
		return err
	}
	defer release()
	info, _ := connect.CallInfoForServerContext(ctx)
	peer := peerAddr(info.PeerAddr) // for the address check of later rechecks
	scope := h.authz.VerifyScope(p)
	newest, err := h.store.LastChange(ctx)
	if err != nil {
		return err
	}
	pos := newest
	if req.AfterSequence != nil {
		pos = req.GetAfterSequence()
		if pos > newest {
			return latchkey.InvalidField("after_sequence", "no change has sequence %d yet: the newest is %d", pos, newest)
		}
	}
	if err := sendHeartbeat(stream, pos); err != nil {
		return err
	}
	beat := time.NewTicker(h.watchHeartbeat)
	defer beat.Stop()
	for {
		woken := h.bell.wait()
		changes, err := h.store.ReadChanges(ctx, pos, watchPage)
		if err != nil {
			return err
		}
		recheck := false
		for _, c := range changes {
			// The newest change is never pruned, so a first change that does
			// not follow pos means the ones between were.
			if c.Seq != pos+1 {
				if err := stream.Send(&latchkeyv1.WatchKeyChangesResponse{Event: &latchkeyv1.WatchKeyChangesResponse_ResetCache{
					ResetCache: &latchkeyv1.KeyChangesReset{Sequence: c.Seq - 1},
				}}); err != nil {
					return err
				}
			}
			pos = c.Seq
			// A key's change names its own profile too, so the caller's
			// profile stands for its key as well.
			if c.ProfileID == p.ProfileID || (c.Kind.IsAccountChange() && c.AccountID == p.AccountID) {
				recheck = true // the caller's own key, profile or account changed
			}
			if scope != "" && c.AccountID != scope {
				continue
			}
			if _, ok := changeKinds[c.Kind]; !ok {
				continue // a person's change, which no key's verdict depends on
			}
			if err := stream.Send(&latchkeyv1.WatchKeyChangesResponse{Event: &latchkeyv1.WatchKeyChangesResponse_Change{
				Change: toKeyChangeProto(c),
			}}); err != nil {
				return err
			}
		}
		if recheck {
			if err := h.stillAllowed(ctx, p, peer); err != nil {
				return err
			}
		}
		if len(changes) == watchPage {
			continue
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-woken:
		case <-beat.C:
			if err := h.stillAllowed(ctx, p, peer); err != nil {
				return err
			}
			if err := sendHeartbeat(stream, pos); err != nil {
				return err
			}
		}
	}
}

// watcherID names the caller for the bound on its streams: its key, or a
// person's profile.
func watcherID(p *auth.Principal) string {
	if p.Method == auth.MethodAPIKey {
		return p.KeyID
	}
	return p.ProfileID
}

// stillAllowed asks whether the caller's key or profile, as the store
// holds it now, may go on watching.
func (h authHandler) stillAllowed(ctx context.Context, p *auth.Principal, peer netip.Addr) error {
	if p.Method != auth.MethodAPIKey {
		return h.personStillAllowed(ctx, p)
	}
	cred, err := h.store.GetCredential(ctx, p.KeyID)
	if err != nil {
		if latchkey.ErrorCode(err) == latchkey.CodeNotFound {
			return latchkey.Errorf(latchkey.CodeUnauthenticated, "unknown API key")
		}
		return err
	}
	return h.authz.StillAllowed(&cred, latchkeyv1connect.AuthServiceWatchKeyChangesProcedure, peer, h.now())
}

func sendHeartbeat(stream latchkeyv1connect.AuthServiceWatchKeyChangesServerStream, pos int64) error {
	return stream.Send(&latchkeyv1.WatchKeyChangesResponse{Event: &latchkeyv1.WatchKeyChangesResponse_Heartbeat{
		Heartbeat: &latchkeyv1.KeyChangesHeartbeat{Sequence: pos},
	}})
}

// changeKinds maps the store's kinds to the wire's.
var changeKinds = map[latchkey.ChangeKind]latchkeyv1.KeyChangeKind{
	latchkey.ChangeKeyUpdated:        latchkeyv1.KeyChangeKind_KEY_CHANGE_KIND_KEY_UPDATED,
	latchkey.ChangeKeyRotated:        latchkeyv1.KeyChangeKind_KEY_CHANGE_KIND_KEY_ROTATED,
	latchkey.ChangeKeyRevoked:        latchkeyv1.KeyChangeKind_KEY_CHANGE_KIND_KEY_REVOKED,
	latchkey.ChangeGrantsChanged:     latchkeyv1.KeyChangeKind_KEY_CHANGE_KIND_GRANTS_CHANGED,
	latchkey.ChangeWorkspaceArchived: latchkeyv1.KeyChangeKind_KEY_CHANGE_KIND_WORKSPACE_ARCHIVED,
	latchkey.ChangeAccountSuspended:  latchkeyv1.KeyChangeKind_KEY_CHANGE_KIND_ACCOUNT_SUSPENDED,
	latchkey.ChangeAccountRestored:   latchkeyv1.KeyChangeKind_KEY_CHANGE_KIND_ACCOUNT_RESTORED,
}

func toKeyChangeProto(c latchkey.Change) *latchkeyv1.KeyChange {
	return &latchkeyv1.KeyChange{
		Sequence:    c.Seq,
		AccountId:   c.AccountID,
		Kind:        changeKinds[c.Kind],
		ApiKeyId:    c.KeyID,
		ProfileId:   c.ProfileID,
		WorkspaceId: c.WorkspaceID,
		ChangeTime:  timestamppb.New(c.Time),
	}
}

// personStillAllowed asks whether a person may go on: their sign-in not
// expired, and their profile and account, as the store holds them now,
// neither suspended, the profile still holding what the stream needs.
func (h authHandler) personStillAllowed(ctx context.Context, p *auth.Principal) error {
	if !p.Expires.IsZero() && !h.now().Before(p.Expires) {
		return latchkey.Errorf(latchkey.CodeUnauthenticated, "your sign-in has expired: sign in again")
	}
	prof, err := h.store.GetProfile(ctx, p.AccountID, p.ProfileID)
	if err != nil {
		if latchkey.ErrorCode(err) == latchkey.CodeNotFound {
			return latchkey.Errorf(latchkey.CodeUnauthenticated, "your profile is gone")
		}
		return err
	}
	account, err := h.store.GetAccount(ctx, p.AccountID)
	if err != nil {
		return err
	}
	now, err := auth.PersonPrincipal(&latchkey.PersonProfile{
		Profile: prof, AccountName: account.Name, AccountOperator: account.Operator, AccountSuspended: account.Suspended(),
	})
	if err != nil {
		return err
	}
	return h.authz.Call(now, latchkeyv1connect.AuthServiceWatchKeyChangesProcedure)
}
