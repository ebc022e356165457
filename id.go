package latchkey

import (
	"regexp"
	"strings"

	"github.com/oklog/ulid/v2"
)

// ID prefixes of every resource. An id is its prefix, an underscore and a
// ULID, so ids sort by creation time and name their kind.
const (
	PrefixAccount   = "acct"
	PrefixProfile   = "prof"
	PrefixWorkspace = "ws"
	PrefixAPIKey    = "key"
	PrefixAudit     = "evt"
)

// NewID returns a fresh id with the given prefix, e.g. "key_01J...".
func NewID(prefix string) string {
	return prefix + "_" + ulid.Make().String()
}

var ulidPattern = regexp.MustCompile(`^[0-9A-HJKMNP-TV-Z]{26}$`)

// ValidID reports whether id has the given prefix followed by a ULID.
func ValidID(prefix, id string) bool {
	rest, ok := strings.CutPrefix(id, prefix+"_")
	return ok && ulidPattern.MatchString(rest)
}
