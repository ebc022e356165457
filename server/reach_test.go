package server_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect/v2"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	latchkeyv1 "github.com/latchkey/latchkey/gen/latchkey/v1"
	"github.com/latchkey/latchkey/gen/latchkey/v1/latchkeyv1connect"
)

// The second dimension of authorization: what a caller may change depends
// on the target as well as on the method. Each caller and target below is
// spelled out by hand, and the expected outcome of every pair is written
// down, not computed: the test must not share the rule it checks.

// reachPrincipal is a caller or a target: permissions and the names of
// the workspaces granted to it.
type reachPrincipal struct {
	perms      []string
	workspaces []string
}

// reachCallers are the callers of the matrix. Every one holds the
// permissions the change methods need; they differ in reach.
var reachCallers = map[string]reachPrincipal{
	"limited":           {perms: []string{"api_keys:manage", "profiles:manage"}, workspaces: []string{"w1"}},
	"workspace manager": {perms: []string{"api_keys:manage", "profiles:manage", "workspaces:manage"}},
	"wide":              {perms: []string{"api_keys:*", "profiles:*", "workspaces:*", "invoices:*"}},
	"system key":        {}, // the account's own system key, `*`
}

// reachTargets are the targets. "system key" is the account's system key
// (or, for profile methods, its system profile); "user ..." are USER
// profiles, targets of the profile methods only.
var reachTargets = map[string]reachPrincipal{
	"bare":                   {},
	"weaker":                 {perms: []string{"api_keys:read"}, workspaces: []string{"w1"}},
	"equal to limited":       {perms: []string{"api_keys:manage", "profiles:manage"}, workspaces: []string{"w1"}},
	"a permission beyond":    {perms: []string{"invoices:write"}},
	"a wildcard beyond":      {perms: []string{"api_keys:*"}},
	"another workspace":      {workspaces: []string{"w2"}},
	"an archived workspace":  {workspaces: []string{"archived"}},
	"system key":             {},
	"user in w1":             {workspaces: []string{"w1"}},
	"user in another space":  {workspaces: []string{"w2"}},
	"user in archived space": {workspaces: []string{"archived"}},
	"user holding beyond":    {perms: []string{"invoices:write"}},
}

// within lists, for each target, the callers whose reach holds it. Every
// other pair must be refused with PERMISSION_DENIED.
var within = map[string][]string{
	"bare":                   {"limited", "workspace manager", "wide", "system key"},
	"weaker":                 {"limited", "workspace manager", "wide", "system key"},
	"equal to limited":       {"limited", "workspace manager", "wide", "system key"},
	"a permission beyond":    {"wide", "system key"},
	"a wildcard beyond":      {"wide", "system key"},
	"another workspace":      {"workspace manager", "wide", "system key"},
	"an archived workspace":  {"limited", "workspace manager", "wide", "system key"},
	"system key":             {"system key"},
	"user in w1":             {"limited", "workspace manager", "wide", "system key"},
	"user in another space":  {"workspace manager", "wide", "system key"},
	"user in archived space": {"limited", "workspace manager", "wide", "system key"},
	"user holding beyond":    {"wide", "system key"},
}

// reachTarget is one target made fresh for one cell of the matrix.
type reachTarget struct {
	key     string // API key id; empty for a user profile
	profile string // the key's own profile, the system profile, or the user
	w1      string // a workspace every caller may grant
}

// reachRule is one method's row: either how to call it on a target, or
// why the method has no target whose reach could matter.
type reachRule struct {
	profiles bool // the method takes a profile, not a key
	call     func(ctx context.Context, c clients, tg reachTarget) error
	// systemOutcome is the outcome for the system key on itself, where the
	// method has a rule of its own (the system key cannot be revoked).
	systemOutcome connect.Code
	// usersOnly marks the methods that take a user's profile only: within
	// reach, any other profile answers FAILED_PRECONDITION.
	usersOnly bool
	noTarget  string
}

// reachTable has a row for every method that is not free of side
// effects. TestReachMatrix fails for a method missing from it.
var reachTable = map[string]reachRule{
	latchkeyv1connect.ApiKeyServiceUpdateProcedure: {call: func(ctx context.Context, c clients, tg reachTarget) error {
		_, err := c.keys.Update(ctx, &latchkeyv1.UpdateRequest{
			Id:         tg.key,
			Spec:       &latchkeyv1.ApiKeySpec{Description: "changed"},
			UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"spec.description"}},
		})
		return err
	}},
	latchkeyv1connect.ApiKeyServiceRotateProcedure: {call: func(ctx context.Context, c clients, tg reachTarget) error {
		// With a grace period, so that the system key rotating itself can
		// go on calling.
		res, err := c.keys.Rotate(ctx, &latchkeyv1.RotateRequest{Id: tg.key, GracePeriod: durationpb.New(time.Hour)})
		if err == nil && res.GetApiKey().GetSpec().GetToken() == "" {
			return fmt.Errorf("Rotate answered without a token")
		}
		return err
	}},
	latchkeyv1connect.ApiKeyServiceRevokeProcedure: {systemOutcome: connect.CodeFailedPrecondition, call: func(ctx context.Context, c clients, tg reachTarget) error {
		_, err := c.keys.Revoke(ctx, &latchkeyv1.RevokeRequest{Id: tg.key})
		return err
	}},
	latchkeyv1connect.ApiKeyServiceGrantWorkspaceProcedure: {call: func(ctx context.Context, c clients, tg reachTarget) error {
		_, err := c.keys.GrantWorkspace(ctx, &latchkeyv1.GrantWorkspaceRequest{Id: tg.key, WorkspaceId: tg.w1})
		return err
	}},
	latchkeyv1connect.ApiKeyServiceRevokeWorkspaceProcedure: {call: func(ctx context.Context, c clients, tg reachTarget) error {
		_, err := c.keys.RevokeWorkspace(ctx, &latchkeyv1.RevokeWorkspaceRequest{Id: tg.key, WorkspaceId: tg.w1})
		return err
	}},
	latchkeyv1connect.ProfileServiceGrantProfileWorkspaceProcedure: {profiles: true, call: func(ctx context.Context, c clients, tg reachTarget) error {
		_, err := c.profiles.GrantProfileWorkspace(ctx, &latchkeyv1.GrantProfileWorkspaceRequest{Id: tg.profile, WorkspaceId: tg.w1})
		return err
	}},
	latchkeyv1connect.ProfileServiceRevokeProfileWorkspaceProcedure: {profiles: true, call: func(ctx context.Context, c clients, tg reachTarget) error {
		_, err := c.profiles.RevokeProfileWorkspace(ctx, &latchkeyv1.RevokeProfileWorkspaceRequest{Id: tg.profile, WorkspaceId: tg.w1})
		return err
	}},

	latchkeyv1connect.ProfileServiceUpdateProfileProcedure: {profiles: true, usersOnly: true, call: func(ctx context.Context, c clients, tg reachTarget) error {
		_, err := c.profiles.UpdateProfile(ctx, &latchkeyv1.UpdateProfileRequest{
			Id:         tg.profile,
			Spec:       &latchkeyv1.ProfileSpec{Name: "changed"},
			UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"spec.name"}},
		})
		return err
	}},
	latchkeyv1connect.ProfileServiceSuspendProfileProcedure: {profiles: true, usersOnly: true, call: func(ctx context.Context, c clients, tg reachTarget) error {
		_, err := c.profiles.SuspendProfile(ctx, &latchkeyv1.SuspendProfileRequest{Id: tg.profile})
		return err
	}},
	latchkeyv1connect.ProfileServiceRestoreProfileProcedure: {profiles: true, usersOnly: true, call: func(ctx context.Context, c clients, tg reachTarget) error {
		_, err := c.profiles.RestoreProfile(ctx, &latchkeyv1.RestoreProfileRequest{Id: tg.profile})
		return err
	}},

	latchkeyv1connect.ApiKeyServiceIssueProcedure:               {noTarget: "creates a key; what it may give is TestIssue's"},
	latchkeyv1connect.AuthServiceVerifyProcedure:                {noTarget: "changes no resource; its answer follows the server's own rule (TestOperatorPermissionsOutsideTheOperatorAccount)"},
	latchkeyv1connect.WorkspaceServiceCreateWorkspaceProcedure:  {noTarget: "creates a workspace, which nobody reaches until granted"},
	latchkeyv1connect.WorkspaceServiceUpdateWorkspaceProcedure:  {noTarget: "needs workspaces:manage, which reaches every workspace"},
	latchkeyv1connect.WorkspaceServiceArchiveWorkspaceProcedure: {noTarget: "needs workspaces:manage, which reaches every workspace; archiving only takes reach away"},
	latchkeyv1connect.ProfileServiceCreateProfileProcedure:      {noTarget: "creates a user profile with no permission and no workspace"},
	latchkeyv1connect.AccountServiceCreateAccountProcedure:      {noTarget: "operator only (accounts:manage); the new account is nobody's target"},
	latchkeyv1connect.AccountServiceUpdateAccountProcedure:      {noTarget: "its target is an account's default key permissions, whose reach TestDefaultKeyPermissions covers"},
	latchkeyv1connect.AccountServiceSuspendAccountProcedure:     {noTarget: "operator only (accounts:manage), on a whole account but the operator's (TestSuspendedAccount)"},
	latchkeyv1connect.AccountServiceRestoreAccountProcedure:     {noTarget: "operator only (accounts:manage); it gives back only what the account held"},
}

// TestReachMatrix calls every method that changes a key or a profile, as
// every kind of caller, on every kind of target: the call succeeds exactly
// when the target's permissions and workspaces are within the caller's,
// and a refused call changes nothing.
func TestReachMatrix(t *testing.T) {
	t.Run("every method with side effects is in the table", func(t *testing.T) {
		protoregistry.GlobalFiles.RangeFilesByPackage("latchkey.v1", func(fd protoreflect.FileDescriptor) bool {
			for i := range fd.Services().Len() {
				svc := fd.Services().Get(i)
				for j := range svc.Methods().Len() {
					m := svc.Methods().Get(j)
					procedure := fmt.Sprintf("/%s/%s", svc.FullName(), m.Name())
					opts, _ := m.Options().(*descriptorpb.MethodOptions)
					_, listed := reachTable[procedure]
					readOnly := opts.GetIdempotencyLevel() == descriptorpb.MethodOptions_NO_SIDE_EFFECTS
					if !readOnly && !listed {
						t.Errorf("%s has side effects and is missing from reachTable", procedure)
					}
					if readOnly && listed {
						t.Errorf("%s is free of side effects but listed in reachTable", procedure)
					}
				}
			}
			return true
		})
	})
	for target := range reachTargets {
		for _, caller := range within[target] {
			if _, ok := reachCallers[caller]; !ok {
				t.Fatalf("within[%q] names an unknown caller %q", target, caller)
			}
		}
	}

	e := newEnv(t)
	tn := e.newTenantWithLimit("reach", 100000)
	workspaces := map[string]string{}
	for _, name := range []string{"w1", "w2", "archived"} {
		workspaces[name] = tn.workspace(t, name).GetMetadata().GetId()
	}
	who, err := tn.c.auth.WhoAmI(t.Context(), &latchkeyv1.WhoAmIRequest{})
	if err != nil {
		t.Fatal(err)
	}
	system := who.GetApiKey()
	grant := func(profile string, names []string) {
		t.Helper()
		for _, name := range names {
			if _, err := tn.c.profiles.GrantProfileWorkspace(t.Context(), &latchkeyv1.GrantProfileWorkspaceRequest{Id: profile, WorkspaceId: workspaces[name]}); err != nil {
				t.Fatal(err)
			}
		}
	}
	callers := map[string]clients{"system key": tn.c}
	for name, c := range reachCallers {
		if name == "system key" {
			continue
		}
		key, tok := tn.issue(t, &latchkeyv1.IssueRequest{Spec: &latchkeyv1.ApiKeySpec{Permissions: c.perms}})
		grant(key.GetMetadata().GetProfileId(), c.workspaces)
		callers[name] = e.as(tok)
	}
	var users []string
	// newTarget makes a target afresh, so that one cell's write cannot
	// decide another's.
	newTarget := func(t *testing.T, name string) reachTarget {
		t.Helper()
		tp := reachTargets[name]
		tg := reachTarget{w1: workspaces["w1"]}
		switch {
		case name == "system key":
			tg.key, tg.profile = system.GetMetadata().GetId(), system.GetMetadata().GetProfileId()
			return tg
		case strings.HasPrefix(name, "user "):
			res, err := tn.c.profiles.CreateProfile(t.Context(), &latchkeyv1.CreateProfileRequest{
				Metadata: &latchkeyv1.AccountResourceMetadata{Name: name},
				Spec:     &latchkeyv1.ProfileSpec{Email: fmt.Sprintf("user%d@example.com", len(users)), Permissions: tp.perms},
			})
			if err != nil {
				t.Fatal(err)
			}
			tg.profile = res.GetProfile().GetMetadata().GetId()
			users = append(users, tg.profile)
		default:
			key, _ := tn.issue(t, &latchkeyv1.IssueRequest{Spec: &latchkeyv1.ApiKeySpec{Permissions: tp.perms}})
			tg.key, tg.profile = key.GetMetadata().GetId(), key.GetMetadata().GetProfileId()
		}
		grant(tg.profile, tp.workspaces)
		return tg
	}

	type cell struct {
		procedure, caller, target string
		tg                        reachTarget
	}
	var cells []cell
	for _, procedure := range slices.Sorted(maps.Keys(reachTable)) {
		rule := reachTable[procedure]
		if rule.call == nil {
			continue
		}
		for _, target := range slices.Sorted(maps.Keys(reachTargets)) {
			if strings.HasPrefix(target, "user ") && !rule.profiles {
				continue
			}
			for _, caller := range slices.Sorted(maps.Keys(reachCallers)) {
				cells = append(cells, cell{procedure: procedure, caller: caller, target: target})
			}
		}
	}
	// Every target is made before the workspace "archived" is archived,
	// since an archived workspace cannot be granted.
	for i := range cells {
		cells[i].tg = newTarget(t, cells[i].target)
	}
	if _, err := tn.c.workspaces.ArchiveWorkspace(t.Context(), &latchkeyv1.ArchiveWorkspaceRequest{Id: workspaces["archived"]}); err != nil {
		t.Fatal(err)
	}

	allowed, refused := 0, 0
	for _, c := range cells {
		rule := reachTable[c.procedure]
		name := strings.TrimPrefix(c.procedure, "/latchkey.v1.") + "/" + c.caller + " on " + c.target
		t.Run(name, func(t *testing.T) {
			before := reachSnapshot(t, tn, c.tg)
			err := rule.call(t.Context(), callers[c.caller], c.tg)
			switch {
			case !slices.Contains(within[c.target], c.caller):
				refused++
				wantCode(t, err, connect.CodePermissionDenied)
				if !strings.Contains(err.Error(), "holds more than the caller") {
					t.Errorf("refusal %q does not say the target holds more", err)
				}
				var ce *connect.Error
				errors.As(err, &ce)
				for _, perm := range append(reachTargets[c.target].perms, "*") {
					if strings.Contains(ce.Message(), perm) {
						t.Errorf("refusal %q names the permission %s", err, perm)
					}
				}
				if after := reachSnapshot(t, tn, c.tg); after != before {
					t.Errorf("a refused call changed the target:\nbefore %s\nafter  %s", before, after)
				}
			case rule.usersOnly && !strings.HasPrefix(c.target, "user "):
				allowed++
				wantCode(t, err, connect.CodeFailedPrecondition)
			case c.target == "system key" && c.caller == "system key" && rule.systemOutcome != 0:
				allowed++
				wantCode(t, err, rule.systemOutcome)
			default:
				allowed++
				if err != nil {
					t.Fatalf("error %v, want success", err)
				}
			}
		})
	}
	t.Logf("reach matrix: %d cells, %d within reach, %d refused", len(cells), allowed, refused)
}

// reachSnapshot is what a refused call must leave as it was: the target's
// key (etag, state, token prefix), its grants and the account's audit
// trail.
func reachSnapshot(t *testing.T, tn tenant, tg reachTarget) string {
	t.Helper()
	var b strings.Builder
	if tg.key != "" {
		res, err := tn.c.keys.Get(t.Context(), &latchkeyv1.GetRequest{Id: tg.key})
		if err != nil {
			t.Fatal(err)
		}
		k := res.GetApiKey()
		fmt.Fprintf(&b, "etag=%s state=%s prefix=%s description=%q ", k.GetMetadata().GetEtag(), k.GetInfo().GetState(),
			k.GetInfo().GetTokenPrefix(), k.GetSpec().GetDescription())
	}
	ws, err := tn.c.profiles.ListProfileWorkspaces(t.Context(), &latchkeyv1.ListProfileWorkspacesRequest{Id: tg.profile, PageSize: 500})
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range ws.GetWorkspaces() {
		fmt.Fprintf(&b, "ws=%s ", w.GetMetadata().GetName())
	}
	fmt.Fprintf(&b, "audit=%d", tn.auditCount(t))
	return b.String()
}
