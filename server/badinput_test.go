package server_test

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"buf.build/gen/go/bufbuild/protovalidate/protocolbuffers/go/buf/validate"
	"connectrpc.com/connect/v2"
	"connectrpc.com/connect/v2/connecthttp"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	latchkeyv1 "github.com/latchkey/latchkey/gen/latchkey/v1"
	"github.com/latchkey/latchkey/gen/latchkey/v1/latchkeyv1connect"
)

// badInput is one request that is valid but for one field.
type badInput struct {
	field string // the field the violation must name, as a dotted path
	req   proto.Message
}

// targets are real resources of the tenant: a bad request aims at them, so
// if validation let it through, the call would write.
type targets struct{ key, workspace, profile, account string }

// badInputs lists, for every method, requests with exactly one invalid
// field. Every field that carries a rule must appear at least once.
func badInputs(tg targets) map[string][]badInput {
	long := func(n int) string { return strings.Repeat("a", n) }
	meta := func(f func(*latchkeyv1.AccountResourceMetadata)) *latchkeyv1.AccountResourceMetadata {
		m := &latchkeyv1.AccountResourceMetadata{Name: "valid name"}
		f(m)
		return m
	}
	tooManyLabels := map[string]string{}
	for i := range 65 {
		tooManyLabels[fmt.Sprintf("k%d", i)] = "v"
	}
	mask := func(paths ...string) *fieldmaskpb.FieldMask { return &fieldmaskpb.FieldMask{Paths: paths} }
	past := timestamppb.New(time.Now().Add(-time.Hour))
	// The store keeps int64 Unix nanoseconds, which end in April 2262.
	beyondStorage := timestamppb.New(time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC))
	const badPageToken = "bm90IGEgcGFnZSB0b2tlbg" // base64 of "not a page token"

	return map[string][]badInput{
		latchkeyv1connect.ApiKeyServiceIssueProcedure: {
			{"metadata", &latchkeyv1.IssueRequest{}},
			{"metadata", &latchkeyv1.IssueRequest{Metadata: &latchkeyv1.AccountResourceMetadata{ExternalId: "no name"}}},
			{"metadata.name", &latchkeyv1.IssueRequest{Metadata: meta(func(m *latchkeyv1.AccountResourceMetadata) { m.Name = long(129) })}},
			{"metadata.name", &latchkeyv1.IssueRequest{Metadata: meta(func(m *latchkeyv1.AccountResourceMetadata) { m.Name = "bell\a" })}},
			{"metadata.name", &latchkeyv1.IssueRequest{Metadata: meta(func(m *latchkeyv1.AccountResourceMetadata) { m.Name = "invoice\u202Egpj.exe" })}},
			{"metadata.name", &latchkeyv1.IssueRequest{Metadata: meta(func(m *latchkeyv1.AccountResourceMetadata) { m.Name = "\u200B" })}},
			{"metadata.name", &latchkeyv1.IssueRequest{Metadata: meta(func(m *latchkeyv1.AccountResourceMetadata) { m.Name = " \u00A0 " })}},
			{"metadata.external_id", &latchkeyv1.IssueRequest{Metadata: meta(func(m *latchkeyv1.AccountResourceMetadata) { m.ExternalId = "ext\u202E" })}},
			{"metadata.external_id", &latchkeyv1.IssueRequest{Metadata: meta(func(m *latchkeyv1.AccountResourceMetadata) { m.ExternalId = long(257) })}},
			{"metadata.labels", &latchkeyv1.IssueRequest{Metadata: meta(func(m *latchkeyv1.AccountResourceMetadata) { m.Labels = map[string]string{"Team": "a"} })}},
			{"metadata.labels", &latchkeyv1.IssueRequest{Metadata: meta(func(m *latchkeyv1.AccountResourceMetadata) { m.Labels = map[string]string{"team": "-a"} })}},
			{"metadata.labels", &latchkeyv1.IssueRequest{Metadata: meta(func(m *latchkeyv1.AccountResourceMetadata) { m.Labels = tooManyLabels })}},
			{"spec.description", &latchkeyv1.IssueRequest{Metadata: meta(func(*latchkeyv1.AccountResourceMetadata) {}), Spec: &latchkeyv1.ApiKeySpec{Description: long(1025)}}},
			{"spec.description", &latchkeyv1.IssueRequest{Metadata: meta(func(*latchkeyv1.AccountResourceMetadata) {}), Spec: &latchkeyv1.ApiKeySpec{Description: "safe\u202Eevil"}}},
			{"spec.permissions", &latchkeyv1.IssueRequest{Metadata: meta(func(*latchkeyv1.AccountResourceMetadata) {}), Spec: &latchkeyv1.ApiKeySpec{Permissions: []string{"Invoices:Read"}}}},
			{"spec.permissions", &latchkeyv1.IssueRequest{Metadata: meta(func(*latchkeyv1.AccountResourceMetadata) {}), Spec: &latchkeyv1.ApiKeySpec{Permissions: []string{"a:b", "a:b"}}}},
			{"spec.environment", &latchkeyv1.IssueRequest{Metadata: meta(func(*latchkeyv1.AccountResourceMetadata) {}), Spec: &latchkeyv1.ApiKeySpec{Environment: 9}}},
			{"spec.expire_time", &latchkeyv1.IssueRequest{Metadata: meta(func(*latchkeyv1.AccountResourceMetadata) {}), Spec: &latchkeyv1.ApiKeySpec{ExpireTime: past}}},
			{"spec.expire_time", &latchkeyv1.IssueRequest{Metadata: meta(func(*latchkeyv1.AccountResourceMetadata) {}), Spec: &latchkeyv1.ApiKeySpec{ExpireTime: beyondStorage}}},
			{"spec.allowed_cidrs", &latchkeyv1.IssueRequest{Metadata: meta(func(*latchkeyv1.AccountResourceMetadata) {}), Spec: &latchkeyv1.ApiKeySpec{AllowedCidrs: []string{"10.0.0.1/8"}}}},
			{"spec.allowed_cidrs", &latchkeyv1.IssueRequest{Metadata: meta(func(*latchkeyv1.AccountResourceMetadata) {}), Spec: &latchkeyv1.ApiKeySpec{AllowedCidrs: []string{"example.com"}}}},
			{"initial_workspace_ids", &latchkeyv1.IssueRequest{Metadata: meta(func(*latchkeyv1.AccountResourceMetadata) {}), InitialWorkspaceIds: []string{"ws_1"}}},
			{"initial_workspace_ids", &latchkeyv1.IssueRequest{Metadata: meta(func(*latchkeyv1.AccountResourceMetadata) {}), InitialWorkspaceIds: []string{tg.workspace, tg.workspace}}},
		},
		latchkeyv1connect.ApiKeyServiceGetProcedure: {
			{"id", &latchkeyv1.GetRequest{}},
			{"id", &latchkeyv1.GetRequest{Id: tg.workspace}},
		},
		latchkeyv1connect.ApiKeyServiceListProcedure: {
			{"page_size", &latchkeyv1.ListRequest{PageSize: 501}},
			{"page_size", &latchkeyv1.ListRequest{PageSize: -1}},
			{"page_token", &latchkeyv1.ListRequest{PageToken: badPageToken}},
			{"page_token", &latchkeyv1.ListRequest{PageToken: long(1025)}},
			{"state", &latchkeyv1.ListRequest{State: 99}},
			{"label_selector", &latchkeyv1.ListRequest{LabelSelector: "Team=a"}},
			{"label_selector", &latchkeyv1.ListRequest{LabelSelector: "team"}},
			{"workspace_id", &latchkeyv1.ListRequest{WorkspaceId: tg.key}},
			{"order", &latchkeyv1.ListRequest{Order: 99}},
		},
		latchkeyv1connect.ApiKeyServiceUpdateProcedure: {
			{"id", &latchkeyv1.UpdateRequest{Id: "key_", Spec: &latchkeyv1.ApiKeySpec{Description: "x"}, UpdateMask: mask("spec.description")}},
			{"update_mask", &latchkeyv1.UpdateRequest{Id: tg.key, Spec: &latchkeyv1.ApiKeySpec{Description: "x"}}},
			{"update_mask", &latchkeyv1.UpdateRequest{Id: tg.key, UpdateMask: mask()}},
			{"update_mask", &latchkeyv1.UpdateRequest{Id: tg.key, Spec: &latchkeyv1.ApiKeySpec{Environment: latchkeyv1.Environment_ENVIRONMENT_TEST}, UpdateMask: mask("spec.environment")}},
			{"update_mask", &latchkeyv1.UpdateRequest{Id: tg.key, Spec: &latchkeyv1.ApiKeySpec{System: true}, UpdateMask: mask("spec.system")}},
			{"metadata.name", &latchkeyv1.UpdateRequest{Id: tg.key, Metadata: &latchkeyv1.AccountResourceMetadata{}, UpdateMask: mask("metadata.name")}},
			{"metadata.name", &latchkeyv1.UpdateRequest{Id: tg.key, Metadata: &latchkeyv1.AccountResourceMetadata{Name: long(129)}, UpdateMask: mask("metadata.name")}},
			{"metadata.name", &latchkeyv1.UpdateRequest{Id: tg.key, Metadata: &latchkeyv1.AccountResourceMetadata{Name: "\u3000"}, UpdateMask: mask("metadata.name")}},
			{"metadata.name", &latchkeyv1.UpdateRequest{Id: tg.key, Metadata: &latchkeyv1.AccountResourceMetadata{Name: "ad\u200Dmin"}, UpdateMask: mask("metadata.name")}},
			{"metadata.external_id", &latchkeyv1.UpdateRequest{Id: tg.key, Metadata: &latchkeyv1.AccountResourceMetadata{ExternalId: "tab\t"}, UpdateMask: mask("metadata.external_id")}},
			{"metadata.external_id", &latchkeyv1.UpdateRequest{Id: tg.key, Metadata: &latchkeyv1.AccountResourceMetadata{ExternalId: "\uFEFFext"}, UpdateMask: mask("metadata.external_id")}},
			{"metadata.labels", &latchkeyv1.UpdateRequest{Id: tg.key, Metadata: &latchkeyv1.AccountResourceMetadata{Labels: map[string]string{"a": long(64)}}, UpdateMask: mask("metadata.labels")}},
			{"spec.description", &latchkeyv1.UpdateRequest{Id: tg.key, Spec: &latchkeyv1.ApiKeySpec{Description: long(1025)}, UpdateMask: mask("spec.description")}},
			{"spec.description", &latchkeyv1.UpdateRequest{Id: tg.key, Spec: &latchkeyv1.ApiKeySpec{Description: "\x1b[2Jcleared"}, UpdateMask: mask("spec.description")}},
			{"spec.permissions", &latchkeyv1.UpdateRequest{Id: tg.key, Spec: &latchkeyv1.ApiKeySpec{Permissions: []string{"read"}}, UpdateMask: mask("spec.permissions")}},
			{"spec.environment", &latchkeyv1.UpdateRequest{Id: tg.key, Spec: &latchkeyv1.ApiKeySpec{Environment: 7, Description: "x"}, UpdateMask: mask("spec.description")}},
			{"spec.expire_time", &latchkeyv1.UpdateRequest{Id: tg.key, Spec: &latchkeyv1.ApiKeySpec{ExpireTime: past}, UpdateMask: mask("spec.expire_time")}},
			{"spec.expire_time", &latchkeyv1.UpdateRequest{Id: tg.key, Spec: &latchkeyv1.ApiKeySpec{ExpireTime: beyondStorage}, UpdateMask: mask("spec.expire_time")}},
			{"spec.allowed_cidrs", &latchkeyv1.UpdateRequest{Id: tg.key, Spec: &latchkeyv1.ApiKeySpec{AllowedCidrs: []string{"::1/200"}}, UpdateMask: mask("spec.allowed_cidrs")}},
			{"etag", &latchkeyv1.UpdateRequest{Id: tg.key, Spec: &latchkeyv1.ApiKeySpec{Description: "x"}, UpdateMask: mask("spec.description"), Etag: long(129)}},
		},
		latchkeyv1connect.ApiKeyServiceRotateProcedure: {
			{"id", &latchkeyv1.RotateRequest{Id: tg.profile}},
			{"grace_period", &latchkeyv1.RotateRequest{Id: tg.key, GracePeriod: durationpb.New(-time.Second)}},
			{"grace_period", &latchkeyv1.RotateRequest{Id: tg.key, GracePeriod: durationpb.New(8 * 24 * time.Hour)}},
		},
		latchkeyv1connect.ApiKeyServiceRevokeProcedure: {
			{"id", &latchkeyv1.RevokeRequest{Id: strings.ToLower(tg.key)}},
		},
		latchkeyv1connect.ApiKeyServiceGrantWorkspaceProcedure: {
			{"id", &latchkeyv1.GrantWorkspaceRequest{Id: "", WorkspaceId: tg.workspace}},
			{"workspace_id", &latchkeyv1.GrantWorkspaceRequest{Id: tg.key, WorkspaceId: tg.key}},
		},
		latchkeyv1connect.ApiKeyServiceRevokeWorkspaceProcedure: {
			{"id", &latchkeyv1.RevokeWorkspaceRequest{Id: tg.workspace, WorkspaceId: tg.workspace}},
			{"workspace_id", &latchkeyv1.RevokeWorkspaceRequest{Id: tg.key, WorkspaceId: "ws"}},
		},
		latchkeyv1connect.ApiKeyServiceListGrantedWorkspacesProcedure: {
			{"id", &latchkeyv1.ListGrantedWorkspacesRequest{}},
			{"page_size", &latchkeyv1.ListGrantedWorkspacesRequest{Id: tg.key, PageSize: 1000}},
			{"page_token", &latchkeyv1.ListGrantedWorkspacesRequest{Id: tg.key, PageToken: badPageToken}},
			{"page_token", &latchkeyv1.ListGrantedWorkspacesRequest{Id: tg.key, PageToken: long(1025)}},
		},

		latchkeyv1connect.AuthServiceVerifyProcedure: {
			{"token", &latchkeyv1.VerifyRequest{Token: long(513)}},
			{"workspace_id", &latchkeyv1.VerifyRequest{Token: "x", WorkspaceId: "workspace"}},
			{"permissions", &latchkeyv1.VerifyRequest{Token: "x", Permissions: []string{"a:b:c"}}},
			{"permissions", &latchkeyv1.VerifyRequest{Token: "x", Permissions: slices.Repeat([]string{"a:b"}, 65)}},
			{"client_ip", &latchkeyv1.VerifyRequest{Token: "x", ClientIp: "10.0.0"}},
			{"client_ip", &latchkeyv1.VerifyRequest{Token: "x", ClientIp: "10.0.0.0/8"}},
		},
		latchkeyv1connect.AuthServiceWhoAmIProcedure: nil, // it has no fields
		latchkeyv1connect.AuthServiceWatchKeyChangesProcedure: {
			{"after_sequence", &latchkeyv1.WatchKeyChangesRequest{AfterSequence: proto.Int64(-1)}},
			// Past the newest change: refused by the handler, naming the field.
			{"after_sequence", &latchkeyv1.WatchKeyChangesRequest{AfterSequence: proto.Int64(1 << 40)}},
		},

		latchkeyv1connect.WorkspaceServiceCreateWorkspaceProcedure: {
			{"metadata", &latchkeyv1.CreateWorkspaceRequest{}},
			{"metadata", &latchkeyv1.CreateWorkspaceRequest{Metadata: &latchkeyv1.AccountResourceMetadata{}}},
			{"metadata.name", &latchkeyv1.CreateWorkspaceRequest{Metadata: &latchkeyv1.AccountResourceMetadata{Name: "line\nbreak"}}},
			{"metadata.name", &latchkeyv1.CreateWorkspaceRequest{Metadata: &latchkeyv1.AccountResourceMetadata{Name: "\u202Eprod"}}},
			{"metadata.name", &latchkeyv1.CreateWorkspaceRequest{Metadata: &latchkeyv1.AccountResourceMetadata{Name: "\u3164"}}},
			{"metadata.external_id", &latchkeyv1.CreateWorkspaceRequest{Metadata: meta(func(m *latchkeyv1.AccountResourceMetadata) { m.ExternalId = "nul\x00" })}},
			{"metadata.labels", &latchkeyv1.CreateWorkspaceRequest{Metadata: meta(func(m *latchkeyv1.AccountResourceMetadata) { m.Labels = map[string]string{"": "a"} })}},
			{"spec.description", &latchkeyv1.CreateWorkspaceRequest{Metadata: meta(func(*latchkeyv1.AccountResourceMetadata) {}), Spec: &latchkeyv1.WorkspaceSpec{Description: long(1025)}}},
			{"spec.description", &latchkeyv1.CreateWorkspaceRequest{Metadata: meta(func(*latchkeyv1.AccountResourceMetadata) {}), Spec: &latchkeyv1.WorkspaceSpec{Description: "a\u2066b"}}},
		},
		latchkeyv1connect.WorkspaceServiceGetWorkspaceProcedure: {
			{"id", &latchkeyv1.GetWorkspaceRequest{Id: tg.key}},
		},
		latchkeyv1connect.WorkspaceServiceListWorkspacesProcedure: {
			{"page_size", &latchkeyv1.ListWorkspacesRequest{PageSize: 501}},
			{"page_token", &latchkeyv1.ListWorkspacesRequest{PageToken: badPageToken}},
			{"page_token", &latchkeyv1.ListWorkspacesRequest{PageToken: long(1025)}},
			{"status", &latchkeyv1.ListWorkspacesRequest{Status: 42}},
			{"label_selector", &latchkeyv1.ListWorkspacesRequest{LabelSelector: "a=b,"}},
			{"order", &latchkeyv1.ListWorkspacesRequest{Order: -1}},
		},
		latchkeyv1connect.WorkspaceServiceUpdateWorkspaceProcedure: {
			{"id", &latchkeyv1.UpdateWorkspaceRequest{Spec: &latchkeyv1.WorkspaceSpec{Description: "x"}, UpdateMask: mask("spec.description")}},
			{"update_mask", &latchkeyv1.UpdateWorkspaceRequest{Id: tg.workspace, Spec: &latchkeyv1.WorkspaceSpec{Description: "x"}}},
			{"update_mask", &latchkeyv1.UpdateWorkspaceRequest{Id: tg.workspace, Spec: &latchkeyv1.WorkspaceSpec{Description: "x"}, UpdateMask: mask("spec.description", "metadata.id")}},
			{"metadata.name", &latchkeyv1.UpdateWorkspaceRequest{Id: tg.workspace, Metadata: &latchkeyv1.AccountResourceMetadata{}, UpdateMask: mask("metadata.name")}},
			{"metadata.name", &latchkeyv1.UpdateWorkspaceRequest{Id: tg.workspace, Metadata: &latchkeyv1.AccountResourceMetadata{Name: "  "}, UpdateMask: mask("metadata.name")}},
			{"metadata.external_id", &latchkeyv1.UpdateWorkspaceRequest{Id: tg.workspace, Metadata: &latchkeyv1.AccountResourceMetadata{ExternalId: long(300)}, UpdateMask: mask("metadata.external_id")}},
			{"metadata.labels", &latchkeyv1.UpdateWorkspaceRequest{Id: tg.workspace, Metadata: &latchkeyv1.AccountResourceMetadata{Labels: map[string]string{"a b": "c"}}, UpdateMask: mask("metadata.labels")}},
			{"spec.description", &latchkeyv1.UpdateWorkspaceRequest{Id: tg.workspace, Spec: &latchkeyv1.WorkspaceSpec{Description: long(2000)}, UpdateMask: mask("spec.description")}},
			{"spec.description", &latchkeyv1.UpdateWorkspaceRequest{Id: tg.workspace, Spec: &latchkeyv1.WorkspaceSpec{Description: "real\rfake"}, UpdateMask: mask("spec.description")}},
			{"etag", &latchkeyv1.UpdateWorkspaceRequest{Id: tg.workspace, Spec: &latchkeyv1.WorkspaceSpec{Description: "x"}, UpdateMask: mask("spec.description"), Etag: long(200)}},
		},
		latchkeyv1connect.WorkspaceServiceArchiveWorkspaceProcedure: {
			{"id", &latchkeyv1.ArchiveWorkspaceRequest{Id: tg.workspace + "0"}},
		},

		latchkeyv1connect.ProfileServiceCreateProfileProcedure: {
			{"metadata", &latchkeyv1.CreateProfileRequest{Spec: &latchkeyv1.ProfileSpec{Email: "new@example.com"}}},
			{"metadata.name", &latchkeyv1.CreateProfileRequest{Metadata: &latchkeyv1.AccountResourceMetadata{Name: long(129)}, Spec: &latchkeyv1.ProfileSpec{Email: "new@example.com"}}},
			{"metadata.name", &latchkeyv1.CreateProfileRequest{Metadata: &latchkeyv1.AccountResourceMetadata{Name: "ann\u202E"}, Spec: &latchkeyv1.ProfileSpec{Email: "new@example.com"}}},
			{"metadata.external_id", &latchkeyv1.CreateProfileRequest{Metadata: meta(func(m *latchkeyv1.AccountResourceMetadata) { m.ExternalId = long(257) }), Spec: &latchkeyv1.ProfileSpec{Email: "new@example.com"}}},
			{"metadata.labels", &latchkeyv1.CreateProfileRequest{Metadata: meta(func(m *latchkeyv1.AccountResourceMetadata) { m.Labels = map[string]string{"a": "B"} }), Spec: &latchkeyv1.ProfileSpec{Email: "new@example.com"}}},
			{"spec", &latchkeyv1.CreateProfileRequest{Metadata: meta(func(*latchkeyv1.AccountResourceMetadata) {})}},
			{"spec", &latchkeyv1.CreateProfileRequest{Metadata: meta(func(*latchkeyv1.AccountResourceMetadata) {}), Spec: &latchkeyv1.ProfileSpec{Name: "no email"}}},
			{"spec", &latchkeyv1.CreateProfileRequest{Metadata: meta(func(*latchkeyv1.AccountResourceMetadata) {}), Spec: &latchkeyv1.ProfileSpec{Email: "new@example.com", Type: latchkeyv1.ProfileType_PROFILE_TYPE_API_KEY}}},
			{"spec.type", &latchkeyv1.CreateProfileRequest{Metadata: meta(func(*latchkeyv1.AccountResourceMetadata) {}), Spec: &latchkeyv1.ProfileSpec{Email: "new@example.com", Type: 99}}},
			{"spec.email", &latchkeyv1.CreateProfileRequest{Metadata: meta(func(*latchkeyv1.AccountResourceMetadata) {}), Spec: &latchkeyv1.ProfileSpec{Email: "not an email"}}},
			{"spec.name", &latchkeyv1.CreateProfileRequest{Metadata: meta(func(*latchkeyv1.AccountResourceMetadata) {}), Spec: &latchkeyv1.ProfileSpec{Email: "new@example.com", Name: long(129)}}},
			{"spec.name", &latchkeyv1.CreateProfileRequest{Metadata: meta(func(*latchkeyv1.AccountResourceMetadata) {}), Spec: &latchkeyv1.ProfileSpec{Email: "new@example.com", Name: "A\u200Dnn"}}},
			{"spec.name", &latchkeyv1.CreateProfileRequest{Metadata: meta(func(*latchkeyv1.AccountResourceMetadata) {}), Spec: &latchkeyv1.ProfileSpec{Email: "new@example.com", Name: "\u2003"}}},
			{"spec.permissions", &latchkeyv1.CreateProfileRequest{Metadata: meta(func(*latchkeyv1.AccountResourceMetadata) {}), Spec: &latchkeyv1.ProfileSpec{Email: "new@example.com", Permissions: []string{"x:y", "x:y"}}}},
			{"spec.permissions", &latchkeyv1.CreateProfileRequest{Metadata: meta(func(*latchkeyv1.AccountResourceMetadata) {}), Spec: &latchkeyv1.ProfileSpec{Email: "new@example.com", Permissions: []string{"invoices:"}}}},
		},
		latchkeyv1connect.ProfileServiceUpdateProfileProcedure: {
			{"id", &latchkeyv1.UpdateProfileRequest{Id: tg.key, UpdateMask: mask("spec.name")}},
			{"metadata.name", &latchkeyv1.UpdateProfileRequest{Id: tg.profile, UpdateMask: mask("metadata.name")}},
			{"metadata.name", &latchkeyv1.UpdateProfileRequest{Id: tg.profile, UpdateMask: mask("metadata.name"), Metadata: &latchkeyv1.AccountResourceMetadata{Name: "a\u202Eb"}}},
			{"metadata.external_id", &latchkeyv1.UpdateProfileRequest{Id: tg.profile, UpdateMask: mask("metadata.external_id"), Metadata: meta(func(m *latchkeyv1.AccountResourceMetadata) { m.ExternalId = long(257) })}},
			{"metadata.labels", &latchkeyv1.UpdateProfileRequest{Id: tg.profile, UpdateMask: mask("metadata.labels"), Metadata: meta(func(m *latchkeyv1.AccountResourceMetadata) { m.Labels = map[string]string{"A": "b"} })}},
			{"spec.type", &latchkeyv1.UpdateProfileRequest{Id: tg.profile, UpdateMask: mask("spec.name"), Spec: &latchkeyv1.ProfileSpec{Type: 42}}},
			{"spec.email", &latchkeyv1.UpdateProfileRequest{Id: tg.profile, UpdateMask: mask("spec.email"), Spec: &latchkeyv1.ProfileSpec{Email: "not an email"}}},
			{"spec.email", &latchkeyv1.UpdateProfileRequest{Id: tg.profile, UpdateMask: mask("spec.email")}},
			{"spec.name", &latchkeyv1.UpdateProfileRequest{Id: tg.profile, UpdateMask: mask("spec.name"), Spec: &latchkeyv1.ProfileSpec{Name: "\u2003"}}},
			{"spec.permissions", &latchkeyv1.UpdateProfileRequest{Id: tg.profile, UpdateMask: mask("spec.permissions"), Spec: &latchkeyv1.ProfileSpec{Permissions: []string{"Read"}}}},
			{"update_mask", &latchkeyv1.UpdateProfileRequest{Id: tg.profile}},
			{"update_mask", &latchkeyv1.UpdateProfileRequest{Id: tg.profile, UpdateMask: mask("spec.type")}},
			{"etag", &latchkeyv1.UpdateProfileRequest{Id: tg.profile, UpdateMask: mask("spec.name"), Etag: long(129)}},
		},
		latchkeyv1connect.ProfileServiceSuspendProfileProcedure: {
			{"id", &latchkeyv1.SuspendProfileRequest{Id: "prof_"}},
		},
		latchkeyv1connect.ProfileServiceRestoreProfileProcedure: {
			{"id", &latchkeyv1.RestoreProfileRequest{Id: tg.account}},
		},
		latchkeyv1connect.ProfileServiceGetProfileProcedure: {
			{"id", &latchkeyv1.GetProfileRequest{Id: "prof_" + long(26)}},
		},
		latchkeyv1connect.ProfileServiceListProfilesProcedure: {
			{"page_size", &latchkeyv1.ListProfilesRequest{PageSize: 501}},
			{"page_token", &latchkeyv1.ListProfilesRequest{PageToken: badPageToken}},
			{"page_token", &latchkeyv1.ListProfilesRequest{PageToken: long(1025)}},
			{"type", &latchkeyv1.ListProfilesRequest{Type: 17}},
			{"label_selector", &latchkeyv1.ListProfilesRequest{LabelSelector: "a==b"}},
			{"order", &latchkeyv1.ListProfilesRequest{Order: 5}},
		},
		latchkeyv1connect.ProfileServiceGrantProfileWorkspaceProcedure: {
			{"id", &latchkeyv1.GrantProfileWorkspaceRequest{Id: tg.key, WorkspaceId: tg.workspace}},
			{"workspace_id", &latchkeyv1.GrantProfileWorkspaceRequest{Id: tg.profile}},
		},
		latchkeyv1connect.ProfileServiceRevokeProfileWorkspaceProcedure: {
			{"id", &latchkeyv1.RevokeProfileWorkspaceRequest{WorkspaceId: tg.workspace}},
			{"workspace_id", &latchkeyv1.RevokeProfileWorkspaceRequest{Id: tg.profile, WorkspaceId: tg.profile}},
		},
		latchkeyv1connect.ProfileServiceListProfileWorkspacesProcedure: {
			{"id", &latchkeyv1.ListProfileWorkspacesRequest{Id: tg.workspace}},
			{"page_size", &latchkeyv1.ListProfileWorkspacesRequest{Id: tg.profile, PageSize: 600}},
			{"page_token", &latchkeyv1.ListProfileWorkspacesRequest{Id: tg.profile, PageToken: badPageToken}},
			{"page_token", &latchkeyv1.ListProfileWorkspacesRequest{Id: tg.profile, PageToken: long(1025)}},
		},

		latchkeyv1connect.AccountServiceCreateAccountProcedure: {
			{"name", &latchkeyv1.CreateAccountRequest{}},
			{"name", &latchkeyv1.CreateAccountRequest{Name: long(129)}},
			{"name", &latchkeyv1.CreateAccountRequest{Name: "esc\x1b"}},
			{"name", &latchkeyv1.CreateAccountRequest{Name: "acme\u202E"}},
			{"name", &latchkeyv1.CreateAccountRequest{Name: "\u200B\u200C"}},
			{"name", &latchkeyv1.CreateAccountRequest{Name: " \u3000 "}},
			{"max_active_keys", &latchkeyv1.CreateAccountRequest{Name: "n", MaxActiveKeys: -1}},
			{"max_active_keys", &latchkeyv1.CreateAccountRequest{Name: "n", MaxActiveKeys: 1_000_001}},
			{"default_key_permissions", &latchkeyv1.CreateAccountRequest{Name: "n", DefaultKeyPermissions: []string{"Keys:Read"}}},
			{"default_key_permissions", &latchkeyv1.CreateAccountRequest{Name: "n", DefaultKeyPermissions: []string{"a:b", "a:b"}}},
			// No key of a tenant could hold it, so every Issue would fail.
			{"default_key_permissions", &latchkeyv1.CreateAccountRequest{Name: "n", DefaultKeyPermissions: []string{"accounts:manage"}}},
			{"owner_email", &latchkeyv1.CreateAccountRequest{Name: "n", OwnerEmail: "owner"}},
			{"owner_email", &latchkeyv1.CreateAccountRequest{Name: "n", OwnerEmail: long(250) + "@x.io"}},
		},
		latchkeyv1connect.AccountServiceUpdateAccountProcedure: {
			{"id", &latchkeyv1.UpdateAccountRequest{Id: "acct", UpdateMask: mask("metadata.name"), Metadata: &latchkeyv1.AccountResourceMetadata{Name: "n"}}},
			{"metadata.name", &latchkeyv1.UpdateAccountRequest{Id: tg.account, UpdateMask: mask("metadata.name"), Metadata: &latchkeyv1.AccountResourceMetadata{Name: "acme\u202E"}}},
			{"metadata.name", &latchkeyv1.UpdateAccountRequest{Id: tg.account, UpdateMask: mask("metadata.name")}},
			{"metadata.external_id", &latchkeyv1.UpdateAccountRequest{Id: tg.account, UpdateMask: mask("metadata.name"), Metadata: meta(func(m *latchkeyv1.AccountResourceMetadata) { m.ExternalId = long(257) })}},
			{"metadata.labels", &latchkeyv1.UpdateAccountRequest{Id: tg.account, UpdateMask: mask("metadata.name"), Metadata: meta(func(m *latchkeyv1.AccountResourceMetadata) { m.Labels = map[string]string{"": "a"} })}},
			{"spec.max_active_keys", &latchkeyv1.UpdateAccountRequest{Id: tg.account, UpdateMask: mask("spec.max_active_keys"), Spec: &latchkeyv1.AccountSpec{MaxActiveKeys: -1}}},
			{"spec.max_active_keys", &latchkeyv1.UpdateAccountRequest{Id: tg.account, UpdateMask: mask("spec.max_active_keys"), Spec: &latchkeyv1.AccountSpec{MaxActiveKeys: 1_000_001}}},
			{"spec.default_key_permissions", &latchkeyv1.UpdateAccountRequest{Id: tg.account, UpdateMask: mask("spec.default_key_permissions"), Spec: &latchkeyv1.AccountSpec{DefaultKeyPermissions: []string{"*:read"}}}},
			{"spec.default_key_permissions", &latchkeyv1.UpdateAccountRequest{Id: tg.account, UpdateMask: mask("spec.default_key_permissions"), Spec: &latchkeyv1.AccountSpec{DefaultKeyPermissions: []string{"accounts:*"}}}},
			{"update_mask", &latchkeyv1.UpdateAccountRequest{Id: tg.account}},
			{"update_mask", &latchkeyv1.UpdateAccountRequest{Id: tg.account, UpdateMask: mask("spec.operator")}},
			{"update_mask", &latchkeyv1.UpdateAccountRequest{Id: tg.account, UpdateMask: mask()}},
			{"etag", &latchkeyv1.UpdateAccountRequest{Id: tg.account, UpdateMask: mask("spec.max_active_keys"), Etag: long(129)}},
		},
		latchkeyv1connect.AccountServiceSuspendAccountProcedure: {
			{"id", &latchkeyv1.SuspendAccountRequest{Id: "acct_", Reason: "r"}},
			{"reason", &latchkeyv1.SuspendAccountRequest{Id: tg.account}},
			{"reason", &latchkeyv1.SuspendAccountRequest{Id: tg.account, Reason: long(513)}},
			{"reason", &latchkeyv1.SuspendAccountRequest{Id: tg.account, Reason: "unpaid\ninvoice"}},
			{"reason", &latchkeyv1.SuspendAccountRequest{Id: tg.account, Reason: "\u2003 "}},
		},
		latchkeyv1connect.AccountServiceRestoreAccountProcedure: {
			{"id", &latchkeyv1.RestoreAccountRequest{Id: tg.workspace, Reason: "r"}},
			{"reason", &latchkeyv1.RestoreAccountRequest{Id: tg.account}},
			{"reason", &latchkeyv1.RestoreAccountRequest{Id: tg.account, Reason: "paid\u202E"}},
		},
		latchkeyv1connect.AccountServiceGetAccountProcedure: {
			{"id", &latchkeyv1.GetAccountRequest{Id: "acct"}},
		},
		latchkeyv1connect.AccountServiceListAccountsProcedure: {
			{"page_size", &latchkeyv1.ListAccountsRequest{PageSize: 501}},
			{"page_token", &latchkeyv1.ListAccountsRequest{PageToken: badPageToken}},
			{"page_token", &latchkeyv1.ListAccountsRequest{PageToken: long(1025)}},
			{"order", &latchkeyv1.ListAccountsRequest{Order: 3}},
		},

		// No field, so no bad input: the row says the method was looked at.
		latchkeyv1connect.AuthServiceListMyProfilesProcedure: {},

		latchkeyv1connect.AuditServiceListAuditEventsProcedure: {
			{"page_size", &latchkeyv1.ListAuditEventsRequest{PageSize: 501}},
			{"page_token", &latchkeyv1.ListAuditEventsRequest{PageToken: badPageToken}},
			{"page_token", &latchkeyv1.ListAuditEventsRequest{PageToken: long(1025)}},
			{"target_id", &latchkeyv1.ListAuditEventsRequest{TargetId: "audit_" + long(26)}},
			{"order", &latchkeyv1.ListAuditEventsRequest{Order: 9}},
			{"action", &latchkeyv1.ListAuditEventsRequest{Action: "API_KEY.REVOKE"}},
			{"action", &latchkeyv1.ListAuditEventsRequest{Action: "revoke"}},
			{"action", &latchkeyv1.ListAuditEventsRequest{Action: "api_key." + strings.Repeat("x", 60)}},
			{"actor_id", &latchkeyv1.ListAuditEventsRequest{ActorId: tg.key}},
			{"start_time", &latchkeyv1.ListAuditEventsRequest{StartTime: beyondStorage}},
			{"start_time", &latchkeyv1.ListAuditEventsRequest{StartTime: timestamppb.New(time.Date(1969, 12, 31, 0, 0, 0, 0, time.UTC))}},
			{"end_time", &latchkeyv1.ListAuditEventsRequest{EndTime: beyondStorage}},
			{"end_time", &latchkeyv1.ListAuditEventsRequest{StartTime: past, EndTime: past}},
			{"end_time", &latchkeyv1.ListAuditEventsRequest{StartTime: timestamppb.Now(), EndTime: past}},
		},
	}
}

// TestBadInput sends, for every method, requests invalid in one field each,
// and expects invalid_argument naming exactly that field and a database
// that has not changed by a byte.
func TestBadInput(t *testing.T) {
	e := newEnv(t)
	tn := e.newTenant("acme")
	key, _ := tn.issue(t, &latchkeyv1.IssueRequest{})
	ws := tn.workspace(t, "target")
	prof, err := tn.c.profiles.CreateProfile(t.Context(), &latchkeyv1.CreateProfileRequest{
		Metadata: &latchkeyv1.AccountResourceMetadata{Name: "target"},
		Spec:     &latchkeyv1.ProfileSpec{Email: "target@example.com"},
	})
	if err != nil {
		t.Fatal(err)
	}
	table := badInputs(targets{
		key:       key.GetMetadata().GetId(),
		workspace: ws.GetMetadata().GetId(),
		profile:   prof.GetProfile().GetMetadata().GetId(),
		account:   tn.account.GetMetadata().GetId(),
	})

	methods := map[string]protoreflect.MethodDescriptor{}
	protoregistry.GlobalFiles.RangeFilesByPackage("latchkey.v1", func(fd protoreflect.FileDescriptor) bool {
		for i := range fd.Services().Len() {
			svc := fd.Services().Get(i)
			for j := range svc.Methods().Len() {
				m := svc.Methods().Get(j)
				methods[fmt.Sprintf("/%s/%s", svc.FullName(), m.Name())] = m
			}
		}
		return true
	})

	t.Run("every method and every rule is covered", func(t *testing.T) {
		for procedure, m := range methods {
			cases, ok := table[procedure]
			if !ok {
				t.Errorf("%s is missing from the bad-input table", procedure)
				continue
			}
			for _, field := range ruledFields(m.Input(), "") {
				if !slices.ContainsFunc(cases, func(c badInput) bool { return c.field == field }) {
					t.Errorf("%s: no bad input for %s, which carries a rule", procedure, field)
				}
			}
		}
	})

	db, err := sql.Open("sqlite", "file:"+e.dbPath+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	before := snapshot(t, db)

	procedures := slices.Sorted(func(yield func(string) bool) {
		for p := range table {
			if !yield(p) {
				return
			}
		}
	})
	for _, procedure := range procedures {
		m := methods[procedure]
		caller := tn.system
		if m.Parent().Name() == "AccountService" {
			caller = e.operator
		}
		client := connect.NewClient(connecthttp.NewTransport(e.http, e.url), withHeader("Authorization", "Bearer "+caller))
		for i, bad := range table[procedure] {
			name := fmt.Sprintf("%s/%s#%d", strings.TrimPrefix(procedure, "/latchkey.v1."), bad.field, i)
			t.Run(name, func(t *testing.T) {
				res, err := protoregistry.GlobalTypes.FindMessageByName(m.Output().FullName())
				if err != nil {
					t.Fatal(err)
				}
				err = callAny(t.Context(), client, m, procedure, bad.req, res.New().Interface())
				fields := violationFields(t, err)
				// A rule on an enclosing message may also speak for the field.
				elsewhere := func(f string) bool { return f != bad.field && !strings.HasPrefix(bad.field, f+".") }
				if !slices.Contains(fields, bad.field) || slices.ContainsFunc(fields, elsewhere) {
					t.Errorf("violations on %v, want on %s alone (error %v)", fields, bad.field, err)
				}
				if after := snapshot(t, db); after != before {
					before = after // so that one failure is reported once
					t.Errorf("the database changed")
				}
			})
		}
	}
}

// ruledFields lists the dotted paths of fields under md that carry a
// buf.validate rule, descending into latchkey.v1 messages.
func ruledFields(md protoreflect.MessageDescriptor, prefix string) []string {
	var out []string
	for i := range md.Fields().Len() {
		f := md.Fields().Get(i)
		path := prefix + string(f.Name())
		if proto.HasExtension(f.Options(), validate.E_Field) {
			out = append(out, path)
		}
		if f.Message() != nil && !f.IsMap() && f.Message().ParentFile().Package() == "latchkey.v1" {
			out = append(out, ruledFields(f.Message(), path+".")...)
		}
	}
	return out
}

// violationFields returns the fields an invalid_argument error names, and
// fails for any other outcome.
func violationFields(t *testing.T, err error) []string {
	t.Helper()
	wantCode(t, err, connect.CodeInvalidArgument)
	var fields []string
	for _, v := range violations(err) {
		var names []string
		for _, el := range v.GetField().GetElements() {
			names = append(names, el.GetFieldName())
		}
		fields = append(fields, strings.Join(names, "."))
	}
	return fields
}

// snapshot hashes every row of every table but the last-used times, which
// the server records in the background for the caller's own key.
func snapshot(t *testing.T, db *sql.DB) string {
	t.Helper()
	tables, err := db.QueryContext(t.Context(), `SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name`)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for tables.Next() {
		var name string
		if err := tables.Scan(&name); err != nil {
			t.Fatal(err)
		}
		names = append(names, name)
	}
	if err := tables.Err(); err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	for _, name := range names {
		rows, err := db.QueryContext(t.Context(), `SELECT * FROM "`+name+`"`)
		if err != nil {
			t.Fatal(err)
		}
		cols, _ := rows.Columns()
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		var lines []string
		for rows.Next() {
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			var line strings.Builder
			for i, c := range cols {
				if c != "last_used_time" {
					fmt.Fprintf(&line, "%s=%v;", c, vals[i])
				}
			}
			lines = append(lines, line.String())
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		rows.Close()
		// Tables without rowids have no insertion order to rely on.
		slices.Sort(lines)
		fmt.Fprintf(h, "%s:%d\n%s\n", name, len(lines), strings.Join(lines, "\n"))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// TestExpireTimeBeyondStorage is the exploit of issue 13: the store keeps
// int64 Unix nanoseconds, so a year 9999 expiry came back as 1816 and
// killed the key, and a year near 2611 wrapped to 2027. Such times are
// refused on the field; the last instant before the contract's bound
// (2200), to the nanosecond, round-trips.
func TestExpireTimeBeyondStorage(t *testing.T) {
	e := newEnv(t)
	tn := e.newTenant("acme")
	key, _ := tn.issue(t, &latchkeyv1.IssueRequest{})
	lastAllowed := time.Date(2199, 12, 31, 23, 59, 59, 999_999_999, time.UTC)

	for name, at := range map[string]time.Time{
		"year 9999":                   time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC),
		"year 2611, which would wrap": time.Date(2611, 6, 1, 0, 0, 0, 0, time.UTC),
		"the bound itself":            time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC),
	} {
		t.Run("issue expiring at "+name+" is refused on spec.expire_time", func(t *testing.T) {
			_, err := tn.c.keys.Issue(t.Context(), &latchkeyv1.IssueRequest{
				Metadata: &latchkeyv1.AccountResourceMetadata{Name: "far future"},
				Spec:     &latchkeyv1.ApiKeySpec{ExpireTime: timestamppb.New(at)},
			})
			wantViolation(t, err, "spec.expire_time")
		})
		t.Run("update to expire at "+name+" is refused on spec.expire_time", func(t *testing.T) {
			_, err := tn.c.keys.Update(t.Context(), &latchkeyv1.UpdateRequest{
				Id:         key.GetMetadata().GetId(),
				Spec:       &latchkeyv1.ApiKeySpec{ExpireTime: timestamppb.New(at)},
				UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"spec.expire_time"}},
			})
			wantViolation(t, err, "spec.expire_time")
		})
	}
	wantKept := func(t *testing.T, id string) {
		t.Helper()
		got, err := tn.c.keys.Get(t.Context(), &latchkeyv1.GetRequest{Id: id})
		if err != nil {
			t.Fatal(err)
		}
		if at := got.GetApiKey().GetSpec().GetExpireTime().AsTime(); !at.Equal(lastAllowed) {
			t.Errorf("expire_time = %v, want %v", at, lastAllowed)
		}
		if state := got.GetApiKey().GetInfo().GetState(); state != latchkeyv1.ApiKeyState_API_KEY_STATE_ACTIVE {
			t.Errorf("state = %v, want active", state)
		}
	}
	t.Run("issue expiring just before the bound keeps that time and stays active", func(t *testing.T) {
		issued, _ := tn.issue(t, &latchkeyv1.IssueRequest{Spec: &latchkeyv1.ApiKeySpec{ExpireTime: timestamppb.New(lastAllowed)}})
		wantKept(t, issued.GetMetadata().GetId())
	})
	t.Run("update to expire just before the bound keeps that time and stays active", func(t *testing.T) {
		_, err := tn.c.keys.Update(t.Context(), &latchkeyv1.UpdateRequest{
			Id:         key.GetMetadata().GetId(),
			Spec:       &latchkeyv1.ApiKeySpec{ExpireTime: timestamppb.New(lastAllowed)},
			UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"spec.expire_time"}},
		})
		if err != nil {
			t.Fatal(err)
		}
		wantKept(t, key.GetMetadata().GetId())
	})
}

// TestSpoofedNamesAreRefused is the display-spoofing exploit of issue 13:
// a name with a right-to-left override, a zero-width character or nothing
// but white space is refused on the name, for every resource that has one.
func TestSpoofedNamesAreRefused(t *testing.T) {
	e := newEnv(t)
	tn := e.newTenant("acme")
	key, _ := tn.issue(t, &latchkeyv1.IssueRequest{})
	ws := tn.workspace(t, "prod")
	for what, name := range map[string]string{
		"a right-to-left override": "invoice\u202Egpj.exe",
		"a zero-width space":       "ad\u200Bmin",
		"a zero-width joiner only": "\u200D",
		"white space only":         " \t ",
		"Unicode spaces only":      "\u00A0\u2003\u3000",
	} {
		t.Run("an issued key named with "+what, func(t *testing.T) {
			_, err := tn.c.keys.Issue(t.Context(), &latchkeyv1.IssueRequest{Metadata: &latchkeyv1.AccountResourceMetadata{Name: name}})
			wantViolation(t, err, "metadata.name")
		})
		t.Run("a key renamed with "+what, func(t *testing.T) {
			_, err := tn.c.keys.Update(t.Context(), &latchkeyv1.UpdateRequest{
				Id:         key.GetMetadata().GetId(),
				Metadata:   &latchkeyv1.AccountResourceMetadata{Name: name},
				UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"metadata.name"}},
			})
			wantViolation(t, err, "metadata.name")
		})
		t.Run("a workspace renamed with "+what, func(t *testing.T) {
			_, err := tn.c.workspaces.UpdateWorkspace(t.Context(), &latchkeyv1.UpdateWorkspaceRequest{
				Id:         ws.GetMetadata().GetId(),
				Metadata:   &latchkeyv1.AccountResourceMetadata{Name: name},
				UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"metadata.name"}},
			})
			wantViolation(t, err, "metadata.name")
		})
		t.Run("an account named with "+what, func(t *testing.T) {
			_, err := e.as(e.operator).accounts.CreateAccount(t.Context(), &latchkeyv1.CreateAccountRequest{Name: name})
			wantViolation(t, err, "name")
		})
	}
	t.Run("names in any script, with inner spaces, are accepted", func(t *testing.T) {
		const name = "Zoë – 東京 ops ✓"
		issued, _ := tn.issue(t, &latchkeyv1.IssueRequest{Metadata: &latchkeyv1.AccountResourceMetadata{Name: name}})
		if got := issued.GetMetadata().GetName(); got != name {
			t.Errorf("name = %q, want %q", got, name)
		}
	})
}

// callAny calls a unary or a server-streaming method and returns its error:
// a stream's is the one that ends it.
func callAny(ctx context.Context, client *connect.Client, m protoreflect.MethodDescriptor, procedure string, req, res any) error {
	if !m.IsStreamingServer() {
		return client.CallUnary(ctx, connect.Spec{StreamType: connect.StreamTypeUnary, Schema: m, Procedure: procedure}, req, res)
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	stream, err := client.CallServerStream(ctx, connect.Spec{StreamType: connect.StreamTypeServer, Schema: m, Procedure: procedure}, req)
	if err != nil {
		return err
	}
	defer stream.Close()
	for {
		if err := stream.Receive(res); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
	}
}
