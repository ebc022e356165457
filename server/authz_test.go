package server_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect/v2"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/auth"
	latchkeyv1 "github.com/latchkey/latchkey/gen/latchkey/v1"
	"github.com/latchkey/latchkey/gen/latchkey/v1/latchkeyv1connect"
)

// succeeds is the expected outcome of a call that must not fail.
const succeeds connect.Code = 0

// fixture is what one matrix row acts on: resources of the row's home
// account, made fresh for the row so that a write cannot disturb another.
type fixture struct {
	label   string // the label value that marks the fixture's resources
	account string
	// tenant is the account the resources are in, which is account but
	// for the rows whose home is the operator account.
	tenant    string
	key       string
	token     string
	workspace string
	profile   string
}

// authzRule is one method's row of the authorization matrix.
type authzRule struct {
	// perm is the permission the method needs; "" lets any key call it.
	perm string
	// also lists what else a caller needs for the call to succeed, under
	// the no-escalation rules (granting a workspace needs workspaces:manage).
	also []string
	// operator marks methods whose home is the operator account.
	operator bool
	// otherAccount is the outcome for a key of another account that holds
	// every needed permission: NOT_FOUND for another account's resources,
	// success where the call only reaches the caller's own account.
	otherAccount connect.Code
	call         func(ctx context.Context, c clients, fx fixture) error
}

// reachFixture is what a caller needs besides the method's permission to
// change the fixture's key, which is granted a workspace: reach over it
// (TestReachMatrix covers reach itself).
var reachFixture = []string{auth.WorkspacesManage}

// authzTable is the one table the matrix is built from. A method of any
// latchkey.v1 service missing from it fails TestAuthorizationMatrix.
var authzTable = map[string]authzRule{
	// The Create and List rows look at what they got: another account's
	// caller creates in its own account and lists none of the fixture's
	// resources, which the row reports as NOT_FOUND in the fixture's.
	latchkeyv1connect.ApiKeyServiceIssueProcedure: {perm: auth.APIKeysManage, otherAccount: connect.CodeNotFound, call: func(ctx context.Context, c clients, fx fixture) error {
		res, err := c.keys.Issue(ctx, &latchkeyv1.IssueRequest{Metadata: &latchkeyv1.AccountResourceMetadata{Name: "matrix"}})
		if err != nil {
			return err
		}
		return inAccount(res.GetApiKey().GetMetadata(), fx)
	}},
	latchkeyv1connect.ApiKeyServiceGetProcedure: {perm: auth.APIKeysRead, otherAccount: connect.CodeNotFound, call: func(ctx context.Context, c clients, fx fixture) error {
		_, err := c.keys.Get(ctx, &latchkeyv1.GetRequest{Id: fx.key})
		return err
	}},
	latchkeyv1connect.ApiKeyServiceListProcedure: {perm: auth.APIKeysRead, otherAccount: connect.CodeNotFound, call: func(ctx context.Context, c clients, fx fixture) error {
		res, err := c.keys.List(ctx, &latchkeyv1.ListRequest{LabelSelector: fx.selector()})
		if err != nil {
			return err
		}
		return listsOnly(len(res.GetApiKeys()), res.GetApiKeys(), fx.key, func(k *latchkeyv1.ApiKey) string { return k.GetMetadata().GetId() })
	}},
	latchkeyv1connect.ApiKeyServiceUpdateProcedure: {perm: auth.APIKeysManage, also: reachFixture, otherAccount: connect.CodeNotFound, call: func(ctx context.Context, c clients, fx fixture) error {
		_, err := c.keys.Update(ctx, &latchkeyv1.UpdateRequest{
			Id:         fx.key,
			Spec:       &latchkeyv1.ApiKeySpec{Description: "changed"},
			UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"spec.description"}},
		})
		return err
	}},
	latchkeyv1connect.ApiKeyServiceRotateProcedure: {perm: auth.APIKeysManage, also: reachFixture, otherAccount: connect.CodeNotFound, call: func(ctx context.Context, c clients, fx fixture) error {
		_, err := c.keys.Rotate(ctx, &latchkeyv1.RotateRequest{Id: fx.key})
		return err
	}},
	latchkeyv1connect.ApiKeyServiceRevokeProcedure: {perm: auth.APIKeysManage, also: reachFixture, otherAccount: connect.CodeNotFound, call: func(ctx context.Context, c clients, fx fixture) error {
		_, err := c.keys.Revoke(ctx, &latchkeyv1.RevokeRequest{Id: fx.key})
		return err
	}},
	latchkeyv1connect.ApiKeyServiceGrantWorkspaceProcedure: {perm: auth.APIKeysManage, also: []string{auth.WorkspacesManage}, otherAccount: connect.CodeNotFound, call: func(ctx context.Context, c clients, fx fixture) error {
		_, err := c.keys.GrantWorkspace(ctx, &latchkeyv1.GrantWorkspaceRequest{Id: fx.key, WorkspaceId: fx.workspace})
		return err
	}},
	latchkeyv1connect.ApiKeyServiceRevokeWorkspaceProcedure: {perm: auth.APIKeysManage, also: []string{auth.WorkspacesManage}, otherAccount: connect.CodeNotFound, call: func(ctx context.Context, c clients, fx fixture) error {
		_, err := c.keys.RevokeWorkspace(ctx, &latchkeyv1.RevokeWorkspaceRequest{Id: fx.key, WorkspaceId: fx.workspace})
		return err
	}},
	latchkeyv1connect.ApiKeyServiceListGrantedWorkspacesProcedure: {perm: auth.APIKeysRead, otherAccount: connect.CodeNotFound, call: func(ctx context.Context, c clients, fx fixture) error {
		_, err := c.keys.ListGrantedWorkspaces(ctx, &latchkeyv1.ListGrantedWorkspacesRequest{Id: fx.key})
		return err
	}},

	// Verify answers in its body; a verdict other than valid is reported
	// as NOT_FOUND so the table can say what another account sees.
	latchkeyv1connect.AuthServiceVerifyProcedure: {perm: auth.APIKeysVerify, otherAccount: connect.CodeNotFound, call: func(ctx context.Context, c clients, fx fixture) error {
		res, err := c.auth.Verify(ctx, &latchkeyv1.VerifyRequest{Token: fx.token})
		if err == nil && !res.GetValid() {
			return connect.NewError(connect.CodeNotFound, "verdict "+res.GetCode().String())
		}
		return err
	}},
	latchkeyv1connect.AuthServiceWhoAmIProcedure: {call: func(ctx context.Context, c clients, _ fixture) error {
		_, err := c.auth.WhoAmI(ctx, &latchkeyv1.WhoAmIRequest{})
		return err
	}},
	// Any caller lists the profiles it may act as: a key, its own.
	latchkeyv1connect.AuthServiceListMyProfilesProcedure: {call: func(ctx context.Context, c clients, _ fixture) error {
		res, err := c.auth.ListMyProfiles(ctx, &latchkeyv1.ListMyProfilesRequest{})
		if err == nil && len(res.GetProfiles()) != 1 {
			return fmt.Errorf("a key lists %d profiles, want its own", len(res.GetProfiles()))
		}
		return err
	}},
	// A stream of the caller's own account's changes: it opens with a
	// heartbeat, and a refusal ends it before that.
	latchkeyv1connect.AuthServiceWatchKeyChangesProcedure: {perm: auth.APIKeysVerify, call: func(ctx context.Context, c clients, _ fixture) error {
		stream, err := c.auth.WatchKeyChanges(ctx, &latchkeyv1.WatchKeyChangesRequest{})
		if err != nil {
			return err
		}
		defer stream.Close()
		res, err := stream.Receive()
		if err == nil && res.GetHeartbeat() == nil {
			return fmt.Errorf("the stream opened with %v, not a heartbeat", res)
		}
		return err
	}},

	latchkeyv1connect.WorkspaceServiceCreateWorkspaceProcedure: {perm: auth.WorkspacesManage, otherAccount: connect.CodeNotFound, call: func(ctx context.Context, c clients, fx fixture) error {
		res, err := c.workspaces.CreateWorkspace(ctx, &latchkeyv1.CreateWorkspaceRequest{Metadata: &latchkeyv1.AccountResourceMetadata{Name: "matrix"}})
		if err != nil {
			return err
		}
		return inAccount(res.GetWorkspace().GetMetadata(), fx)
	}},
	latchkeyv1connect.WorkspaceServiceGetWorkspaceProcedure: {perm: auth.WorkspacesRead, otherAccount: connect.CodeNotFound, call: func(ctx context.Context, c clients, fx fixture) error {
		_, err := c.workspaces.GetWorkspace(ctx, &latchkeyv1.GetWorkspaceRequest{Id: fx.workspace})
		return err
	}},
	latchkeyv1connect.WorkspaceServiceListWorkspacesProcedure: {perm: auth.WorkspacesRead, otherAccount: connect.CodeNotFound, call: func(ctx context.Context, c clients, fx fixture) error {
		res, err := c.workspaces.ListWorkspaces(ctx, &latchkeyv1.ListWorkspacesRequest{LabelSelector: fx.selector()})
		if err != nil {
			return err
		}
		return listsOnly(len(res.GetWorkspaces()), res.GetWorkspaces(), fx.workspace, func(w *latchkeyv1.Workspace) string { return w.GetMetadata().GetId() })
	}},
	latchkeyv1connect.WorkspaceServiceUpdateWorkspaceProcedure: {perm: auth.WorkspacesManage, otherAccount: connect.CodeNotFound, call: func(ctx context.Context, c clients, fx fixture) error {
		_, err := c.workspaces.UpdateWorkspace(ctx, &latchkeyv1.UpdateWorkspaceRequest{
			Id:         fx.workspace,
			Spec:       &latchkeyv1.WorkspaceSpec{Description: "changed"},
			UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"spec.description"}},
		})
		return err
	}},
	latchkeyv1connect.WorkspaceServiceArchiveWorkspaceProcedure: {perm: auth.WorkspacesManage, otherAccount: connect.CodeNotFound, call: func(ctx context.Context, c clients, fx fixture) error {
		_, err := c.workspaces.ArchiveWorkspace(ctx, &latchkeyv1.ArchiveWorkspaceRequest{Id: fx.workspace})
		return err
	}},

	latchkeyv1connect.ProfileServiceCreateProfileProcedure: {perm: auth.ProfilesManage, otherAccount: connect.CodeNotFound, call: func(ctx context.Context, c clients, fx fixture) error {
		res, err := c.profiles.CreateProfile(ctx, &latchkeyv1.CreateProfileRequest{
			Metadata: &latchkeyv1.AccountResourceMetadata{Name: "matrix"},
			Spec:     &latchkeyv1.ProfileSpec{Email: "matrix@example.com"},
		})
		if err != nil {
			return err
		}
		return inAccount(res.GetProfile().GetMetadata(), fx)
	}},
	latchkeyv1connect.ProfileServiceGetProfileProcedure: {perm: auth.ProfilesRead, otherAccount: connect.CodeNotFound, call: func(ctx context.Context, c clients, fx fixture) error {
		_, err := c.profiles.GetProfile(ctx, &latchkeyv1.GetProfileRequest{Id: fx.profile})
		return err
	}},
	latchkeyv1connect.ProfileServiceListProfilesProcedure: {perm: auth.ProfilesRead, otherAccount: connect.CodeNotFound, call: func(ctx context.Context, c clients, fx fixture) error {
		res, err := c.profiles.ListProfiles(ctx, &latchkeyv1.ListProfilesRequest{LabelSelector: fx.selector()})
		if err != nil {
			return err
		}
		return listsOnly(len(res.GetProfiles()), res.GetProfiles(), fx.profile, func(p *latchkeyv1.Profile) string { return p.GetMetadata().GetId() })
	}},
	latchkeyv1connect.ProfileServiceGrantProfileWorkspaceProcedure: {perm: auth.ProfilesManage, also: []string{auth.WorkspacesManage}, otherAccount: connect.CodeNotFound, call: func(ctx context.Context, c clients, fx fixture) error {
		_, err := c.profiles.GrantProfileWorkspace(ctx, &latchkeyv1.GrantProfileWorkspaceRequest{Id: fx.profile, WorkspaceId: fx.workspace})
		return err
	}},
	latchkeyv1connect.ProfileServiceRevokeProfileWorkspaceProcedure: {perm: auth.ProfilesManage, also: []string{auth.WorkspacesManage}, otherAccount: connect.CodeNotFound, call: func(ctx context.Context, c clients, fx fixture) error {
		_, err := c.profiles.RevokeProfileWorkspace(ctx, &latchkeyv1.RevokeProfileWorkspaceRequest{Id: fx.profile, WorkspaceId: fx.workspace})
		return err
	}},
	latchkeyv1connect.ProfileServiceUpdateProfileProcedure: {perm: auth.ProfilesManage, otherAccount: connect.CodeNotFound, call: func(ctx context.Context, c clients, fx fixture) error {
		_, err := c.profiles.UpdateProfile(ctx, &latchkeyv1.UpdateProfileRequest{
			Id:         fx.profile,
			Spec:       &latchkeyv1.ProfileSpec{Name: "changed"},
			UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"spec.name"}},
		})
		return err
	}},
	// The person is suspended and restored at once, so that the rows
	// after this one find the fixture as it was.
	latchkeyv1connect.ProfileServiceSuspendProfileProcedure: {perm: auth.ProfilesManage, otherAccount: connect.CodeNotFound, call: func(ctx context.Context, c clients, fx fixture) error {
		if _, err := c.profiles.SuspendProfile(ctx, &latchkeyv1.SuspendProfileRequest{Id: fx.profile}); err != nil {
			return err
		}
		_, err := c.profiles.RestoreProfile(ctx, &latchkeyv1.RestoreProfileRequest{Id: fx.profile})
		return err
	}},
	latchkeyv1connect.ProfileServiceRestoreProfileProcedure: {perm: auth.ProfilesManage, otherAccount: connect.CodeNotFound, call: func(ctx context.Context, c clients, fx fixture) error {
		_, err := c.profiles.RestoreProfile(ctx, &latchkeyv1.RestoreProfileRequest{Id: fx.profile})
		return err
	}},
	latchkeyv1connect.ProfileServiceListProfileWorkspacesProcedure: {perm: auth.ProfilesRead, otherAccount: connect.CodeNotFound, call: func(ctx context.Context, c clients, fx fixture) error {
		_, err := c.profiles.ListProfileWorkspaces(ctx, &latchkeyv1.ListProfileWorkspacesRequest{Id: fx.profile})
		return err
	}},

	// Tenants can never hold accounts:manage, so another account is
	// refused outright.
	latchkeyv1connect.AccountServiceCreateAccountProcedure: {perm: auth.AccountsManage, operator: true, otherAccount: connect.CodePermissionDenied, call: func(ctx context.Context, c clients, _ fixture) error {
		_, err := c.accounts.CreateAccount(ctx, &latchkeyv1.CreateAccountRequest{Name: "matrix"})
		return err
	}},
	latchkeyv1connect.AccountServiceListAccountsProcedure: {perm: auth.AccountsManage, operator: true, otherAccount: connect.CodePermissionDenied, call: func(ctx context.Context, c clients, _ fixture) error {
		_, err := c.accounts.ListAccounts(ctx, &latchkeyv1.ListAccountsRequest{})
		return err
	}},
	latchkeyv1connect.AccountServiceGetAccountProcedure: {otherAccount: connect.CodeNotFound, call: func(ctx context.Context, c clients, fx fixture) error {
		_, err := c.accounts.GetAccount(ctx, &latchkeyv1.GetAccountRequest{Id: fx.account})
		return err
	}},
	// An account's own keys change its default key permissions with
	// api_keys:manage; another account's keys do not see it.
	latchkeyv1connect.AccountServiceUpdateAccountProcedure: {perm: auth.APIKeysManage, otherAccount: connect.CodeNotFound, call: func(ctx context.Context, c clients, fx fixture) error {
		_, err := c.accounts.UpdateAccount(ctx, &latchkeyv1.UpdateAccountRequest{
			Id:         fx.account,
			Spec:       &latchkeyv1.AccountSpec{DefaultKeyPermissions: []string{}},
			UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"spec.default_key_permissions"}},
		})
		return err
	}},
	// The operator suspends a tenant (the fixture's), and restores it at
	// once so that the rows after this one find it working.
	latchkeyv1connect.AccountServiceSuspendAccountProcedure: {perm: auth.AccountsManage, operator: true, otherAccount: connect.CodePermissionDenied, call: func(ctx context.Context, c clients, fx fixture) error {
		if _, err := c.accounts.SuspendAccount(ctx, &latchkeyv1.SuspendAccountRequest{Id: fx.tenant, Reason: "matrix"}); err != nil {
			return err
		}
		_, err := c.accounts.RestoreAccount(ctx, &latchkeyv1.RestoreAccountRequest{Id: fx.tenant, Reason: "matrix"})
		return err
	}},
	latchkeyv1connect.AccountServiceRestoreAccountProcedure: {perm: auth.AccountsManage, operator: true, otherAccount: connect.CodePermissionDenied, call: func(ctx context.Context, c clients, fx fixture) error {
		_, err := c.accounts.RestoreAccount(ctx, &latchkeyv1.RestoreAccountRequest{Id: fx.tenant, Reason: "matrix"})
		return err
	}},

	latchkeyv1connect.AuditServiceListAuditEventsProcedure: {perm: auth.AuditRead, otherAccount: connect.CodeNotFound, call: func(ctx context.Context, c clients, fx fixture) error {
		res, err := c.audit.ListAuditEvents(ctx, &latchkeyv1.ListAuditEventsRequest{TargetId: fx.key})
		if err != nil {
			return err
		}
		if len(res.GetAuditEvents()) == 0 {
			return connect.NewError(connect.CodeNotFound, "no audit event of the fixture's key")
		}
		for _, ev := range res.GetAuditEvents() {
			if ev.GetAccountId() != fx.account || ev.GetTarget().GetId() != fx.key {
				return fmt.Errorf("event %s of account %s, target %s", ev.GetId(), ev.GetAccountId(), ev.GetTarget().GetId())
			}
		}
		return nil
	}},
}

// lackingFor gives, for each permission a method needs, a caller's
// permissions that hold everything else a tenant can hold but not that
// one: every other permission of Latchkey's own that does not imply it,
// and another service's wildcard. It is written out by hand rather than
// computed with auth's rule, so that a bug in the rule (say, manage
// granting every verb) fails the matrix instead of bending it.
var lackingFor = map[string][]string{
	"api_keys:read":     {"api_keys:verify", "workspaces:read", "workspaces:manage", "profiles:read", "profiles:manage", "audit:read", "invoices:*"},
	"api_keys:manage":   {"api_keys:read", "api_keys:verify", "workspaces:read", "workspaces:manage", "profiles:read", "profiles:manage", "audit:read", "invoices:*"},
	"api_keys:verify":   {"api_keys:read", "api_keys:manage", "workspaces:read", "workspaces:manage", "profiles:read", "profiles:manage", "audit:read", "invoices:*"},
	"workspaces:read":   {"api_keys:read", "api_keys:manage", "api_keys:verify", "profiles:read", "profiles:manage", "audit:read", "invoices:*"},
	"workspaces:manage": {"api_keys:read", "api_keys:manage", "api_keys:verify", "workspaces:read", "profiles:read", "profiles:manage", "audit:read", "invoices:*"},
	"profiles:read":     {"api_keys:read", "api_keys:manage", "api_keys:verify", "workspaces:read", "workspaces:manage", "audit:read", "invoices:*"},
	"profiles:manage":   {"api_keys:read", "api_keys:manage", "api_keys:verify", "workspaces:read", "workspaces:manage", "profiles:read", "audit:read", "invoices:*"},
	"audit:read":        {"api_keys:read", "api_keys:manage", "api_keys:verify", "workspaces:read", "workspaces:manage", "profiles:read", "profiles:manage", "invoices:*"},
	// In the operator account: everything a tenant could hold.
	"accounts:manage": {"api_keys:*", "workspaces:*", "profiles:*", "audit:*", "invoices:*"},
}

// inAccount reports a resource outside the fixture's account as NOT_FOUND
// there.
func inAccount(meta *latchkeyv1.AccountResourceMetadata, fx fixture) error {
	if meta.GetAccountId() != fx.account {
		return connect.NewError(connect.CodeNotFound, "created in account "+meta.GetAccountId())
	}
	return nil
}

// listsOnly checks a list filtered by the fixture's label: exactly the
// fixture's resource, or nothing (reported as NOT_FOUND).
func listsOnly[T any](n int, items []T, want string, id func(T) string) error {
	switch {
	case n == 0:
		return connect.NewError(connect.CodeNotFound, "the list holds none of the fixture's resources")
	case n == 1 && id(items[0]) == want:
		return nil
	default:
		return fmt.Errorf("the list holds %d resources, want only %s", n, want)
	}
}

// TestAuthorizationMatrix calls every RPC with every kind of credential:
// none, malformed, unknown, revoked, expired, another account's, a key of
// a suspended account holding everything, one lacking the permission and
// one holding it.
func TestAuthorizationMatrix(t *testing.T) {
	t.Run("every method is in the table", func(t *testing.T) {
		seen := 0
		protoregistry.GlobalFiles.RangeFilesByPackage("latchkey.v1", func(fd protoreflect.FileDescriptor) bool {
			for i := range fd.Services().Len() {
				svc := fd.Services().Get(i)
				for j := range svc.Methods().Len() {
					procedure := fmt.Sprintf("/%s/%s", svc.FullName(), svc.Methods().Get(j).Name())
					if _, ok := authzTable[procedure]; !ok {
						t.Errorf("%s is missing from authzTable", procedure)
					}
					seen++
				}
			}
			return true
		})
		if seen != len(authzTable) {
			t.Errorf("the services have %d methods, the table %d rows", seen, len(authzTable))
		}
	})

	e := newEnv(t)
	home := e.newTenantWithLimit("home", 1000)
	other := e.newTenantWithLimit("other", 1000)
	operator := tenant{c: e.as(e.operator)}
	who, err := operator.c.auth.WhoAmI(t.Context(), &latchkeyv1.WhoAmIRequest{})
	if err != nil {
		t.Fatal(err)
	}
	operator.account = who.GetAccount()

	// keys memoizes a key per account and permission set: many rows share
	// the same caller.
	keys := map[string]string{}
	keyWith := func(tn tenant, perms []string) string {
		t.Helper()
		perms = slices.Compact(slices.Sorted(slices.Values(perms)))
		id := tn.account.GetMetadata().GetId() + "|" + strings.Join(perms, ",")
		if tok, ok := keys[id]; ok {
			return tok
		}
		_, tok := tn.issue(t, &latchkeyv1.IssueRequest{Spec: &latchkeyv1.ApiKeySpec{Permissions: perms}})
		keys[id] = tok
		return tok
	}
	lacking := func(need string) []string {
		t.Helper()
		perms, ok := lackingFor[need]
		if !ok && need != "" {
			t.Fatalf("lackingFor has no row for %s", need)
		}
		return perms
	}

	revoked, revokedTok := home.issue(t, &latchkeyv1.IssueRequest{})
	if _, err := home.c.keys.Revoke(t.Context(), &latchkeyv1.RevokeRequest{Id: revoked.GetMetadata().GetId()}); err != nil {
		t.Fatal(err)
	}
	_, expiredTok := home.issue(t, &latchkeyv1.IssueRequest{Spec: &latchkeyv1.ApiKeySpec{ExpireTime: timestamppb.New(e.clock.Now().Add(time.Hour))}})
	// A suspended account's key holds `*` and is refused all the same, on
	// every method, saying why; the account's system key is too.
	suspended := e.newTenant("suspended")
	suspendedTok := keyWith(suspended, []string{"*"})
	if _, err := operator.c.accounts.SuspendAccount(t.Context(), &latchkeyv1.SuspendAccountRequest{
		Id: suspended.account.GetMetadata().GetId(), Reason: "the matrix's suspended caller",
	}); err != nil {
		t.Fatal(err)
	}
	malformed := []byte(home.system)
	malformed[len(malformed)-10] ^= 1 // breaks the checksum

	procedures := make([]string, 0, len(authzTable))
	for p := range authzTable {
		procedures = append(procedures, p)
	}
	slices.Sort(procedures)
	for _, procedure := range procedures {
		rule := authzTable[procedure]
		t.Run(strings.TrimPrefix(procedure, "/latchkey.v1."), func(t *testing.T) {
			owner := home
			if rule.operator {
				owner = operator
			}
			fx := newFixture(t, home)
			if rule.operator {
				fx.account = operator.account.GetMetadata().GetId()
			}
			holds := append([]string{rule.perm}, rule.also...)
			if rule.perm == "" {
				holds = nil
			}
			otherHolds := holds
			if rule.operator {
				otherHolds = []string{"*"}
			}
			lackingOutcome := connect.CodePermissionDenied
			if rule.perm == "" {
				lackingOutcome = succeeds
			}
			cases := []struct {
				name    string
				tok     string
				want    connect.Code
				message string // in the error, when set
				setup   func() func()
			}{
				{name: "no credential", want: connect.CodeUnauthenticated},
				{name: "malformed token", tok: string(malformed), want: connect.CodeUnauthenticated},
				{name: "unknown key", tok: unknownToken(t), want: connect.CodeUnauthenticated},
				{name: "revoked key", tok: revokedTok, want: connect.CodeUnauthenticated},
				{name: "expired key", tok: expiredTok, want: connect.CodeUnauthenticated, setup: func() func() {
					e.clock.Advance(2 * time.Hour)
					return func() { e.clock.Advance(-2 * time.Hour) }
				}},
				{name: "key lacking the permission", tok: keyWith(owner, append(lacking(rule.perm), rule.also...)), want: lackingOutcome},
				{name: "key of another account", tok: keyWith(other, otherHolds), want: rule.otherAccount},
				{name: "key of a suspended account", tok: suspendedTok, want: connect.CodePermissionDenied, message: "account is suspended"},
				{name: "system key of a suspended account", tok: suspended.system, want: connect.CodePermissionDenied, message: "account is suspended"},
				// Last, because it may change the fixture.
				{name: "key holding the permission", tok: keyWith(owner, holds), want: succeeds},
			}
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					if tc.setup != nil {
						defer tc.setup()()
					}
					err := rule.call(t.Context(), e.as(tc.tok), fx)
					if tc.want == succeeds {
						if err != nil {
							t.Fatalf("error %v, want success", err)
						}
						return
					}
					wantCode(t, err, tc.want)
					if !strings.Contains(connect.CodeOf(err).String()+": "+err.Error(), tc.message) {
						t.Errorf("error %q does not say %q", err, tc.message)
					}
				})
			}
		})
	}
}

// selector picks the fixture's resources out of a list.
func (fx fixture) selector() string { return "fixture=" + fx.label }

// newFixture makes a key, a workspace granted to it and a profile in the
// tenant's account, each labelled as the fixture's.
func newFixture(t *testing.T, tn tenant) fixture {
	t.Helper()
	label := strings.ToLower(latchkey.NewID("fx"))
	meta := func() *latchkeyv1.AccountResourceMetadata {
		return &latchkeyv1.AccountResourceMetadata{Name: "matrix", Labels: map[string]string{"fixture": label}}
	}
	key, tok := tn.issue(t, &latchkeyv1.IssueRequest{Metadata: meta()})
	wsRes, err := tn.c.workspaces.CreateWorkspace(t.Context(), &latchkeyv1.CreateWorkspaceRequest{Metadata: meta()})
	if err != nil {
		t.Fatal(err)
	}
	ws := wsRes.GetWorkspace()
	if _, err := tn.c.keys.GrantWorkspace(t.Context(), &latchkeyv1.GrantWorkspaceRequest{Id: key.GetMetadata().GetId(), WorkspaceId: ws.GetMetadata().GetId()}); err != nil {
		t.Fatal(err)
	}
	prof, err := tn.c.profiles.CreateProfile(t.Context(), &latchkeyv1.CreateProfileRequest{
		Metadata: meta(),
		Spec:     &latchkeyv1.ProfileSpec{Email: strings.ToLower(ws.GetMetadata().GetId()) + "@example.com"},
	})
	if err != nil {
		t.Fatal(err)
	}
	return fixture{
		label:     label,
		account:   tn.account.GetMetadata().GetId(),
		tenant:    tn.account.GetMetadata().GetId(),
		key:       key.GetMetadata().GetId(),
		token:     tok,
		workspace: ws.GetMetadata().GetId(),
		profile:   prof.GetProfile().GetMetadata().GetId(),
	}
}
