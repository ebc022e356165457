package proto_test

import (
	"errors"
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
