package auth_test

import (
	"regexp"
	"strings"
	"testing"

	"github.com/latchkey/latchkey/auth"
)

// FuzzPermission checks the permission rules on any pair of strings: a
// well-formed permission (what the proto rule admits, spelled again here
// as the test's own oracle) grants itself, `*` grants every one, and
// nothing but `*` grants across resources.
func FuzzPermission(f *testing.F) {
	wellFormed := regexp.MustCompile(`^(\*|[a-z0-9_]+:(\*|[a-z0-9_]+))$`)
	for _, p := range [][2]string{{"invoices:manage", "invoices:read"}, {"*", "keys:*"}, {"keys:*", "*"}, {"a:b", "a:c"}, {"", ":"}} {
		f.Add(p[0], p[1])
	}
	f.Fuzz(func(t *testing.T, held, wanted string) {
		granted := auth.Allows([]string{held}, wanted)
		if wellFormed.MatchString(wanted) {
			if !auth.Allows([]string{wanted}, wanted) || !auth.Allows([]string{"*"}, wanted) {
				t.Fatalf("%q does not grant itself, or * does not grant it", wanted)
			}
		}
		if granted && held != "*" && held != wanted {
			hr, _, _ := strings.Cut(held, ":")
			wr, _, _ := strings.Cut(wanted, ":")
			if hr != wr || wanted == "*" {
				t.Fatalf("%q grants %q across resources", held, wanted)
			}
		}
	})
}

// FuzzParseCIDR checks that any accepted allow-list entry is a valid
// prefix that holds its own address and prints to a form read back the
// same.
func FuzzParseCIDR(f *testing.F) {
	for _, s := range []string{"10.0.0.0/8", "192.168.1.7", "2001:db8::/32", "::ffff:10.0.0.0/104", "::1", "1.2.3.4/33", "", "/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := auth.ParseCIDR(s)
		if err != nil {
			return
		}
		if !p.IsValid() || p.Bits() > p.Addr().BitLen() || p.Addr().Is4In6() {
			t.Fatalf("ParseCIDR(%q) = %v", s, p)
		}
		if !p.Contains(p.Masked().Addr()) {
			t.Fatalf("ParseCIDR(%q) = %v does not hold its own network", s, p)
		}
		again, err := auth.ParseCIDR(p.String())
		if err != nil || again != p {
			t.Fatalf("%q parsed to %v, printed and parsed again to %v, %v", s, p, again, err)
		}
	})
}
