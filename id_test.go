package latchkey_test

import (
	"strings"
	"testing"

	"github.com/latchkey/latchkey"
)

func TestValidID(t *testing.T) {
	id := latchkey.NewID(latchkey.PrefixAPIKey)
	if !latchkey.ValidID(latchkey.PrefixAPIKey, id) {
		t.Fatalf("ValidID(%q) = false", id)
	}
	ulid := strings.TrimPrefix(id, "key_")
	for _, bad := range []string{
		"", "key_", "ws_" + ulid, "key-" + ulid, "key_" + strings.ToLower(ulid), "key_" + ulid[:25],
		"key_" + ulid + "0", "key_8" + ulid[1:], "key_I" + ulid[1:], "key_U" + ulid[1:],
	} {
		if latchkey.ValidID(latchkey.PrefixAPIKey, bad) {
			t.Errorf("ValidID(%q) = true", bad)
		}
	}
}
