package proto_test

import (
	"testing"

	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
)

// secretFields returns the paths of the fields under md that carry a
// secret: a field named `token`, or one marked `debug_redact`. It descends
// into every message field, once per message type.
func secretFields(md protoreflect.MessageDescriptor, prefix string, seen map[protoreflect.FullName]bool) []string {
	if seen[md.FullName()] {
		return nil
	}
	seen[md.FullName()] = true
	var out []string
	for i := range md.Fields().Len() {
		f := md.Fields().Get(i)
		path := prefix + string(f.Name())
		opts, _ := f.Options().(*descriptorpb.FieldOptions)
		if f.Name() == "token" || opts.GetDebugRedact() {
			out = append(out, path)
		}
		if f.Message() != nil {
			out = append(out, secretFields(f.Message(), path+".", seen)...)
		}
	}
	return out
}

// TestNoSecretTravelsInAURL walks every latchkey.v1 method: Connect serves
// a NO_SIDE_EFFECTS method over HTTP GET with the request in the query
// string, which proxies and access logs keep, so a request that carries a
// secret must not be NO_SIDE_EFFECTS.
func TestNoSecretTravelsInAURL(t *testing.T) {
	withSecret := 0
	for name, svc := range services(t) {
		for i := range svc.Methods().Len() {
			m := svc.Methods().Get(i)
			secrets := secretFields(m.Input(), "", map[protoreflect.FullName]bool{})
			if len(secrets) == 0 {
				continue
			}
			withSecret++
			t.Run(name+"/"+string(m.Name()), func(t *testing.T) {
				opts, _ := m.Options().(*descriptorpb.MethodOptions)
				if opts.GetIdempotencyLevel() == descriptorpb.MethodOptions_NO_SIDE_EFFECTS {
					t.Errorf("%s is NO_SIDE_EFFECTS, so Connect accepts it as GET, but its request carries %v", m.FullName(), secrets)
				}
			})
		}
	}
	t.Run("the walk finds Verify's token", func(t *testing.T) {
		verify := services(t)["AuthService"].Methods().ByName("Verify")
		got := secretFields(verify.Input(), "", map[protoreflect.FullName]bool{})
		if len(got) != 1 || got[0] != "token" {
			t.Errorf("secrets of VerifyRequest = %v, want [token]", got)
		}
		if withSecret < 3 {
			t.Errorf("%d methods carry a secret, want Verify, Issue and Update at least", withSecret)
		}
	})
}
