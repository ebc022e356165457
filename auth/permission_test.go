package auth_test

import (
	"testing"

	"github.com/latchkey/latchkey/auth"
)

func TestAllows(t *testing.T) {
	tests := []struct {
		held   []string
		wanted string
		want   bool
	}{
		{[]string{"*"}, "api_keys:manage", true},
		{[]string{"*"}, "*", true},
		{[]string{"api_keys:*"}, "api_keys:verify", true},
		{[]string{"api_keys:*"}, "api_keys:*", true},
		{[]string{"api_keys:*"}, "*", false},
		{[]string{"api_keys:manage"}, "api_keys:read", true},
		{[]string{"api_keys:manage"}, "api_keys:verify", false},
		{[]string{"api_keys:read"}, "api_keys:manage", false},
		{[]string{"api_keys:read", "api_keys:manage", "api_keys:verify"}, "api_keys:*", false},
		{[]string{"workspaces:manage"}, "api_keys:read", false},
		{[]string{"billing:read"}, "billing:read", true},
		{nil, "billing:read", false},
		{[]string{"api_keys"}, "api_keys:read", false},
	}
	for _, tt := range tests {
		if got := auth.Allows(tt.held, tt.wanted); got != tt.want {
			t.Errorf("Allows(%v, %q) = %v, want %v", tt.held, tt.wanted, got, tt.want)
		}
	}
}
