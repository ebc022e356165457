// Package cursor makes and checks the page tokens of keyset pagination.
// Every store backend uses it, so a page token means the same everywhere.
//
// A token holds the position of the last row of a page (its creation time
// and id) and a digest of the query it belongs to, sealed with an
// HMAC-SHA-256 under a server key. A token that was altered, made under
// another key or made for another query is refused, so a client can neither
// forge a position nor carry a token from one filter to another.
package cursor

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"strings"

	"github.com/latchkey/latchkey"
)

const (
	macLength   = 16 // bytes of HMAC kept: 128 bits are plenty for a tag
	queryLength = 8  // bytes of the query digest
	maxIDLength = 128
)

// Position is where a page ended: the sort key of its last row.
type Position struct {
	Time int64 // creation time in Unix nanoseconds
	ID   string
}

// Codec seals and opens page tokens under one key.
type Codec struct {
	key []byte
}

// New returns a Codec that seals tokens with key.
func New(key []byte) *Codec {
	return &Codec{key: append([]byte(nil), key...)}
}

// Query describes a list query for binding tokens to it: the list's name
// and every filter and the order, in a fixed sequence. Two queries whose
// parts differ get tokens that do not fit each other.
func Query(parts ...string) []byte {
	sum := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	return sum[:queryLength]
}

// Encode returns the page token for position pos of query.
func (c *Codec) Encode(query []byte, pos Position) string {
	buf := make([]byte, 0, 8+queryLength+len(pos.ID)+macLength)
	buf = binary.BigEndian.AppendUint64(buf, uint64(pos.Time))
	buf = append(buf, query[:queryLength]...)
	buf = append(buf, pos.ID...)
	buf = append(buf, c.mac(buf)...)
	return base64.RawURLEncoding.EncodeToString(buf)
}

// Decode opens token for query. An empty token is the first page (ok is
// false). Any token that was not made by Encode under this key for this
// query is a CodeInvalid error on "page_token".
func (c *Codec) Decode(query []byte, token string) (pos Position, ok bool, err error) {
	if token == "" {
		return Position{}, false, nil
	}
	bad := latchkey.InvalidField("page_token", "the page token is not one this list returned; start again without it")
	// Only Encode's string is valid, not another spelling of the same
	// bytes: Strict refuses different unused trailing bits, and the decoder
	// skips \r and \n even when strict, so those are refused first.
	if strings.ContainsAny(token, "\r\n") {
		return Position{}, false, bad
	}
	raw, decErr := base64.RawURLEncoding.Strict().DecodeString(token)
	if decErr != nil || len(raw) < 8+queryLength+1+macLength || len(raw) > 8+queryLength+maxIDLength+macLength {
		return Position{}, false, bad
	}
	body, tag := raw[:len(raw)-macLength], raw[len(raw)-macLength:]
	if !hmac.Equal(tag, c.mac(body)) || !hmac.Equal(body[8:8+queryLength], query[:queryLength]) {
		return Position{}, false, bad
	}
	return Position{Time: int64(binary.BigEndian.Uint64(body[:8])), ID: string(body[8+queryLength:])}, true, nil
}

func (c *Codec) mac(b []byte) []byte {
	m := hmac.New(sha256.New, c.key)
	m.Write(b)
	return m.Sum(nil)[:macLength]
}
