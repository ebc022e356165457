package latchkey

import "github.com/oklog/ulid/v2"

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

// ValidID reports whether id has the given prefix followed by a ULID.
func ValidID(prefix, id string) bool {
	return len(id) == len(prefix)+1+ULIDLength && id[:len(prefix)] == prefix && id[len(prefix)] == '_' &&
		ValidULID(id[len(prefix)+1:])
}

// ULIDLength is the length of a ULID in Crockford base32.
const ULIDLength = 26

// ValidULID reports whether s is a ULID in canonical form: 26 characters
// of upper-case Crockford base32, the first at most '7' so that the value
// fits 128 bits. It is hand-written because token parsing calls it on
// every verification.
func ValidULID(s string) bool {
	if len(s) != ULIDLength || s[0] > '7' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
		case c >= 'A' && c <= 'Z' && c != 'I' && c != 'L' && c != 'O' && c != 'U':
		default:
			return false
		}
	}
	return true
}
