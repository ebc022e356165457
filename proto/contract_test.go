// Package proto_test checks the generated API against the contract in
// ../shared/API.md: every service and method exists, and every request
// message carries buf.validate rules that compile.
package proto_test

import (
	"errors"
	"slices"
	"testing"

	"buf.build/gen/go/bufbuild/protovalidate/protocolbuffers/go/buf/validate"
	"buf.build/go/protovalidate"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/dynamicpb"

	_ "github.com/latchkey/latchkey/gen/latchkey/v1"
)

// contract lists the services and methods that API.md names.
var contract = map[string][]string{
	"ApiKeyService":    {"Issue", "Get", "List", "Update", "Rotate", "Revoke", "GrantWorkspace", "RevokeWorkspace", "ListGrantedWorkspaces"},
	"AuthService":      {"Verify", "WhoAmI", "WatchKeyChanges", "ListMyProfiles"}, // the last two: version two
	"WorkspaceService": {"CreateWorkspace", "GetWorkspace", "ListWorkspaces", "UpdateWorkspace", "ArchiveWorkspace"},
	"ProfileService":   {"CreateProfile", "GetProfile", "ListProfiles", "GrantProfileWorkspace", "RevokeProfileWorkspace", "ListProfileWorkspaces", "SuspendProfile", "RestoreProfile", "UpdateProfile"}, // the last three: version two (UpdateProfile: permissions "changed under the reach rules")
	"AccountService":   {"CreateAccount", "GetAccount", "ListAccounts", "UpdateAccount", "SuspendAccount", "RestoreAccount"},                                                                             // the last three: version two
	"AuditService":     {"ListAuditEvents"},
}

func services(t *testing.T) map[string]protoreflect.ServiceDescriptor {
	t.Helper()
	found := map[string]protoreflect.ServiceDescriptor{}
	protoregistry.GlobalFiles.RangeFilesByPackage("latchkey.v1", func(f protoreflect.FileDescriptor) bool {
		for i := range f.Services().Len() {
			s := f.Services().Get(i)
			found[string(s.Name())] = s
		}
		return true
	})
	return found
}

func TestContractMethodsExist(t *testing.T) {
	found := services(t)
	for name, methods := range contract {
		svc, ok := found[name]
		if !ok {
			t.Errorf("service latchkey.v1.%s is missing", name)
			continue
		}
		var got []string
		for i := range svc.Methods().Len() {
			got = append(got, string(svc.Methods().Get(i).Name()))
		}
		slices.Sort(got)
		want := slices.Sorted(slices.Values(methods))
		if !slices.Equal(got, want) {
			t.Errorf("latchkey.v1.%s methods = %v, want %v", name, got, want)
		}
	}
	if len(found) != len(contract) {
		t.Errorf("latchkey.v1 has %d services, the contract names %d", len(found), len(contract))
	}
}

// hasRules reports whether a message or any field of it carries a
// buf.validate option.
func hasRules(md protoreflect.MessageDescriptor) bool {
	if proto.HasExtension(md.Options(), validate.E_Message) {
		return true
	}
	for i := range md.Fields().Len() {
		if proto.HasExtension(md.Fields().Get(i).Options(), validate.E_Field) {
			return true
		}
	}
	return false
}

func TestEveryRequestCarriesValidationRules(t *testing.T) {
	validator, err := protovalidate.New()
	if err != nil {
		t.Fatal(err)
	}
	for name, svc := range services(t) {
		for i := range svc.Methods().Len() {
			in := svc.Methods().Get(i).Input()
			t.Run(name+"/"+string(in.Name()), func(t *testing.T) {
				if in.Fields().Len() > 0 && !hasRules(in) {
					t.Errorf("%s has fields but no buf.validate rules", in.FullName())
				}
				// An empty request exercises every rule: a rule that does not
				// compile fails here rather than on the first real call.
				err := validator.Validate(dynamicpb.NewMessage(in))
				var verr *protovalidate.ValidationError
				if err != nil && !errors.As(err, &verr) {
					t.Errorf("validating an empty %s: %v", in.FullName(), err)
				}
			})
		}
	}
}
