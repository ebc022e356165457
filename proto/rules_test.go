package proto_test

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"buf.build/go/protovalidate"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	latchkeyv1 "github.com/latchkey/latchkey/gen/latchkey/v1"
)

const (
	keyID = "key_01JD0000000000000000000000"
	wsID  = "ws_01JD0000000000000000000000"
)

// violatedFields returns the field paths that msg violates.
func violatedFields(t *testing.T, v protovalidate.Validator, msg proto.Message) []string {
	t.Helper()
	err := v.Validate(msg)
	if err == nil {
		return nil
	}
	var verr *protovalidate.ValidationError
	if !errors.As(err, &verr) {
		t.Fatalf("validate: %v", err)
	}
	var paths []string
	for _, violation := range verr.Violations {
		paths = append(paths, protovalidate.FieldPathString(violation.Proto.GetField()))
	}
	return paths
}

var (
	// expiryBound is the first expire time the contract refuses.
	expiryBound = time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)
	year9999    = time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC)
)

func withExpiry(m *latchkeyv1.IssueRequest, at time.Time) *latchkeyv1.IssueRequest {
	m.Spec.ExpireTime = timestamppb.New(at)
	return m
}

func withName(m *latchkeyv1.IssueRequest, name string) *latchkeyv1.IssueRequest {
	m.Metadata.Name = name
	return m
}

func withDescription(m *latchkeyv1.IssueRequest, description string) *latchkeyv1.IssueRequest {
	m.Spec.Description = description
	return m
}

func TestRequestRules(t *testing.T) {
	v, err := protovalidate.New()
	if err != nil {
		t.Fatal(err)
	}
	validIssue := func() *latchkeyv1.IssueRequest {
		return &latchkeyv1.IssueRequest{
			Metadata: &latchkeyv1.AccountResourceMetadata{Name: "ci", Labels: map[string]string{"env": "prod"}},
			Spec: &latchkeyv1.ApiKeySpec{
				Permissions:  []string{"api_keys:read", "billing:*", "*"},
				AllowedCidrs: []string{"10.0.0.0/8", "2001:db8::/32", "192.0.2.7", "::1"},
				ExpireTime:   timestamppb.New(time.Now().Add(time.Hour)),
			},
			InitialWorkspaceIds: []string{wsID},
		}
	}
	tests := []struct {
		name  string
		msg   proto.Message
		field string // "" means valid
	}{
		{"valid issue", validIssue(), ""},
		{"issue without metadata", func() proto.Message { m := validIssue(); m.Metadata = nil; return m }(), "metadata"},
		{"issue without name", func() proto.Message { m := validIssue(); m.Metadata.Name = ""; return m }(), "metadata"},
		{"issue with a long name", func() proto.Message { m := validIssue(); m.Metadata.Name = strings.Repeat("n", 129); return m }(), "metadata.name"},
		{"issue with a control character in the name", func() proto.Message { m := validIssue(); m.Metadata.Name = "a\nb"; return m }(), "metadata.name"},
		{"issue with an upper-case label key", func() proto.Message {
			m := validIssue()
			m.Metadata.Labels = map[string]string{"Env": "prod"}
			return m
		}(), `metadata.labels["Env"]`},
		{"issue with a bad permission", func() proto.Message { m := validIssue(); m.Spec.Permissions = []string{"Admin"}; return m }(), "spec.permissions[0]"},
		{"issue with duplicate permissions", func() proto.Message {
			m := validIssue()
			m.Spec.Permissions = []string{"a:b", "a:b"}
			return m
		}(), "spec.permissions"},
		{"issue with a CIDR with host bits", func() proto.Message { m := validIssue(); m.Spec.AllowedCidrs = []string{"10.0.0.1/8"}; return m }(), "spec.allowed_cidrs[0]"},
		{"issue with a host name as CIDR", func() proto.Message { m := validIssue(); m.Spec.AllowedCidrs = []string{"example.com"}; return m }(), "spec.allowed_cidrs[0]"},
		{"issue expiring in the past", func() proto.Message {
			m := validIssue()
			m.Spec.ExpireTime = timestamppb.New(time.Now().Add(-time.Hour))
			return m
		}(), "spec.expire_time"},
		{"issue with an unknown environment", func() proto.Message { m := validIssue(); m.Spec.Environment = 9; return m }(), "spec.environment"},
		{"issue with a bad workspace id", func() proto.Message { m := validIssue(); m.InitialWorkspaceIds = []string{"ws_x"}; return m }(), "initial_workspace_ids[0]"},
		{"get with a workspace id", &latchkeyv1.GetRequest{Id: wsID}, "id"},
		{"list with a huge page", &latchkeyv1.ListRequest{PageSize: 501}, "page_size"},
		{"list with a bad selector", &latchkeyv1.ListRequest{LabelSelector: "env"}, "label_selector"},
		{"list with a good selector", &latchkeyv1.ListRequest{LabelSelector: "env=prod,team=ai"}, ""},
		{"rotate with 8 days of grace", &latchkeyv1.RotateRequest{Id: keyID, GracePeriod: durationpb.New(8 * 24 * time.Hour)}, "grace_period"},
		{"rotate with negative grace", &latchkeyv1.RotateRequest{Id: keyID, GracePeriod: durationpb.New(-time.Second)}, "grace_period"},
		{"rotate with 7 days of grace", &latchkeyv1.RotateRequest{Id: keyID, GracePeriod: durationpb.New(7 * 24 * time.Hour)}, ""},
		{"update without a mask", &latchkeyv1.UpdateRequest{Id: keyID}, "update_mask"},
		{"update of the environment", &latchkeyv1.UpdateRequest{Id: keyID, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"spec.environment"}}}, "update_mask"},
		{"update of the name", &latchkeyv1.UpdateRequest{Id: keyID, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"metadata.name"}}}, ""},
		{"verify with a bad client ip", &latchkeyv1.VerifyRequest{Token: "x", ClientIp: "300.1.1.1"}, "client_ip"},
		{"verify with any token text", &latchkeyv1.VerifyRequest{Token: "not a token"}, ""},
		{"profile with a bad email", &latchkeyv1.CreateProfileRequest{
			Metadata: &latchkeyv1.AccountResourceMetadata{Name: "ann"},
			Spec:     &latchkeyv1.ProfileSpec{Email: "not-an-email"},
		}, "spec.email"},
		{"profile of type api key", &latchkeyv1.CreateProfileRequest{
			Metadata: &latchkeyv1.AccountResourceMetadata{Name: "ann"},
			Spec:     &latchkeyv1.ProfileSpec{Email: "ann@example.com", Type: latchkeyv1.ProfileType_PROFILE_TYPE_API_KEY},
		}, "spec"},
		{"account without a name", &latchkeyv1.CreateAccountRequest{}, "name"},
		{"audit with a bad target", &latchkeyv1.ListAuditEventsRequest{TargetId: "key_"}, "target_id"},

		// Times the store cannot hold: it keeps int64 Unix nanoseconds, which
		// end in April 2262, and the contract stops before 2200.
		{"issue expiring in 9999", withExpiry(validIssue(), year9999), "spec.expire_time"},
		{"issue expiring past 2262, where nanoseconds overflow", withExpiry(validIssue(), time.Date(2262, 4, 12, 0, 0, 0, 0, time.UTC)), "spec.expire_time"},
		{"issue expiring in 2611, which would wrap to 2027", withExpiry(validIssue(), time.Date(2611, 6, 1, 0, 0, 0, 0, time.UTC)), "spec.expire_time"},
		{"issue expiring at the largest seconds a Timestamp holds", func() proto.Message {
			m := validIssue()
			m.Spec.ExpireTime = &timestamppb.Timestamp{Seconds: math.MaxInt64}
			return m
		}(), "spec.expire_time"},
		{"issue expiring at the bound", withExpiry(validIssue(), expiryBound), "spec.expire_time"},
		{"issue expiring just before the bound", withExpiry(validIssue(), expiryBound.Add(-time.Nanosecond)), ""},
		{"update of the expiry to 9999", &latchkeyv1.UpdateRequest{
			Id:         keyID,
			Spec:       &latchkeyv1.ApiKeySpec{ExpireTime: timestamppb.New(year9999)},
			UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"spec.expire_time"}},
		}, "spec.expire_time"},

		// Display spoofing: names are single-line, visible text.
		{"issue with a right-to-left override in the name", withName(validIssue(), "invoice\u202Egpj.exe"), "metadata.name"},
		{"issue with a zero-width space in the name", withName(validIssue(), "ad\u200Bmin"), "metadata.name"},
		{"issue with a name of a zero-width space only", withName(validIssue(), "\u200B"), "metadata.name"},
		{"issue with a byte-order mark in the name", withName(validIssue(), "\uFEFFci"), "metadata.name"},
		{"issue with a soft hyphen in the name", withName(validIssue(), "c\u00ADi"), "metadata.name"},
		{"issue with a line separator in the name", withName(validIssue(), "ci\u2028prod"), "metadata.name"},
		{"issue with a C1 control in the name", withName(validIssue(), "ci\u009B31m"), "metadata.name"},
		{"issue with a blank name", withName(validIssue(), "   "), "metadata.name"},
		{"issue with a name of no-break and ideographic spaces", withName(validIssue(), "\u00A0\u3000\u2003"), "metadata.name"},
		{"issue with a name of a Hangul filler", withName(validIssue(), "\u3164"), "metadata.name"},
		{"issue with a name of combining marks only", withName(validIssue(), "\u0301\uFE0F"), "metadata.name"},
		{"issue with a name of letters from many scripts", withName(validIssue(), "Zoë – 東京 ops ✓ (prod)"), ""},
		{"issue with a name with inner and outer spaces", withName(validIssue(), " ci key "), ""},
		{"issue with a right-to-left override in the external id", func() proto.Message {
			m := validIssue()
			m.Metadata.ExternalId = "ext\u202E1"
			return m
		}(), "metadata.external_id"},
		{"issue with a zero-width joiner in the external id", func() proto.Message {
			m := validIssue()
			m.Metadata.ExternalId = "ext\u200D1"
			return m
		}(), "metadata.external_id"},
		{"issue with a right-to-left override in a label value", func() proto.Message {
			m := validIssue()
			m.Metadata.Labels = map[string]string{"env": "prod\u202E"}
			return m
		}(), `metadata.labels["env"]`},
		{"issue with a non-ASCII letter in a label key", func() proto.Message {
			m := validIssue()
			m.Metadata.Labels = map[string]string{"énv": "prod"}
			return m
		}(), `metadata.labels["énv"]`},
		{"issue with a right-to-left override in the description", withDescription(validIssue(), "safe\u202Eevil"), "spec.description"},
		{"issue with an escape sequence in the description", withDescription(validIssue(), "\x1b[2Jcleared"), "spec.description"},
		{"issue with a carriage return in the description", withDescription(validIssue(), "real\rfake"), "spec.description"},
		{"issue with lines and tabs in the description", withDescription(validIssue(), "line one\n\tline two\n"), ""},
		{"issue with a blank description", withDescription(validIssue(), " \n "), ""},
		{"update of the name to a blank one", &latchkeyv1.UpdateRequest{
			Id:         keyID,
			Metadata:   &latchkeyv1.AccountResourceMetadata{Name: "\u2003"},
			UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"metadata.name"}},
		}, "metadata.name"},
		{"workspace with a right-to-left override in the name", &latchkeyv1.CreateWorkspaceRequest{
			Metadata: &latchkeyv1.AccountResourceMetadata{Name: "\u202Eprod"},
		}, "metadata.name"},
		{"workspace with a format character in the description", &latchkeyv1.CreateWorkspaceRequest{
			Metadata: &latchkeyv1.AccountResourceMetadata{Name: "prod"},
			Spec:     &latchkeyv1.WorkspaceSpec{Description: "a\u2066b"},
		}, "spec.description"},
		{"account with a right-to-left override in the name", &latchkeyv1.CreateAccountRequest{Name: "acme\u202E"}, "name"},
		{"account with a zero-width name", &latchkeyv1.CreateAccountRequest{Name: "\u200B\u200C"}, "name"},
		{"account with a blank name", &latchkeyv1.CreateAccountRequest{Name: " \u3000 "}, "name"},
		{"profile with a zero-width joiner in the display name", &latchkeyv1.CreateProfileRequest{
			Metadata: &latchkeyv1.AccountResourceMetadata{Name: "ann"},
			Spec:     &latchkeyv1.ProfileSpec{Email: "ann@example.com", Name: "A\u200Dnn"},
		}, "spec.name"},
		{"profile with a blank display name", &latchkeyv1.CreateProfileRequest{
			Metadata: &latchkeyv1.AccountResourceMetadata{Name: "ann"},
			Spec:     &latchkeyv1.ProfileSpec{Email: "ann@example.com", Name: "  "},
		}, "spec.name"},
		{"profile without a display name", &latchkeyv1.CreateProfileRequest{
			Metadata: &latchkeyv1.AccountResourceMetadata{Name: "ann"},
			Spec:     &latchkeyv1.ProfileSpec{Email: "ann@example.com"},
		}, ""},
		{"profile with a right-to-left override in the email", &latchkeyv1.CreateProfileRequest{
			Metadata: &latchkeyv1.AccountResourceMetadata{Name: "ann"},
			Spec:     &latchkeyv1.ProfileSpec{Email: "ann\u202E@example.com"},
		}, "spec.email"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := violatedFields(t, v, tt.msg)
			switch {
			case tt.field == "" && len(got) > 0:
				t.Errorf("want valid, got violations on %v", got)
			case tt.field != "" && (len(got) != 1 || got[0] != tt.field):
				t.Errorf("want one violation on %q, got %v", tt.field, got)
			}
		})
	}
}

// TestPermissionRule: a permission is `*`, `resource:*` or
// `resource:verb`, lowercase [a-z0-9_]. The proto rule is the only place
// this is decided; auth only compares what it let through.
func TestPermissionRule(t *testing.T) {
	v, err := protovalidate.New()
	if err != nil {
		t.Fatal(err)
	}
	issue := func(perm string) *latchkeyv1.IssueRequest {
		return &latchkeyv1.IssueRequest{
			Metadata: &latchkeyv1.AccountResourceMetadata{Name: "ci"},
			Spec:     &latchkeyv1.ApiKeySpec{Permissions: []string{perm}},
		}
	}
	for _, p := range []string{"*", "a:b", "api_keys:*", "x_1:y_2"} {
		if got := violatedFields(t, v, issue(p)); len(got) != 0 {
			t.Errorf("permission %q refused: %v", p, got)
		}
	}
	for _, p := range []string{"", "a", "A:b", "a:b:c", "*:read", "a:", ":b", "a :b"} {
		if got := violatedFields(t, v, issue(p)); len(got) != 1 || got[0] != "spec.permissions[0]" {
			t.Errorf("permission %q: violations %v, want spec.permissions[0]", p, got)
		}
	}
}
